/*
 * smctrace.match._engine -- the SMC-relevance rule applied to capture files, in C.
 *
 * Walks pcap records and pcapng packet blocks inside one buffer, parses every frame once,
 * applies the rule (smc_match.h, shared with the eBPF filter), drops segments seen twice,
 * and returns the segments that cross as tuples, so Python runs once per buffer and once
 * per segment that matters, never per frame.  Live capture uses the same parser and
 * duplicate filter on the frames the kernel filter kept (Engine.feed), and can read them
 * from the capture socket itself (Engine.drain: recvmmsg(2), no Python per frame).
 *
 * The Python twin is smctrace/match/engine.py (over smctrace/match/reference.py); the
 * case table and the equivalence tests hold both to the same results.
 *
 * A segment tuple (smctrace.match.SEGMENT_FIELDS):
 *   (time, number, interface, src, dst, sport, dport, seq, ack, flags, smc_option,
 *    payload, payload_len, frame, linktype, orig_len)
 * frame is the kept bytes of the frame when the engine was made with keep_frames, else
 * None.  Every read is bounds-checked: the input is untrusted.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <math.h>
#include <net/if_arp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int32_t s32;
typedef int64_t s64;
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#include "smc_rule.h"

struct frame_ctx {
	const u8 *d;
	u32 len;
};

static inline u32 be16_at(const struct frame_ctx *f, u32 off)
{
	return ((u32)f->d[off] << 8) | f->d[off + 1];
}

static inline u32 be32_at(const struct frame_ctx *f, u32 off)
{
	return ((u32)f->d[off] << 24) | ((u32)f->d[off + 1] << 16) | ((u32)f->d[off + 2] << 8) |
	       f->d[off + 3];
}

struct engine;
#define MATCH_CTX const struct frame_ctx *
#define MATCH_LEN(ctx) ((ctx)->len)
#define MATCH_U8(ctx, off) ((u32)(ctx)->d[(off)])
#define MATCH_U16(ctx, off) be16_at((ctx), (off))
#define MATCH_U32(ctx, off) be32_at((ctx), (off))
#define MATCH_STATE struct engine *
#define MATCH_GRACE_NS(st) engine_grace_ns(st)

struct match_key;
struct match_conn;
static struct match_conn *match_follow_lookup(struct engine *e, const struct match_key *k);
static struct match_conn *match_follow_insert(struct engine *e, const struct match_key *k,
					      const struct match_conn *c);
static void match_follow_delete(struct engine *e, const struct match_key *k);
static struct match_conn *match_pending_lookup(struct engine *e, const struct match_key *k);
static void match_pending_insert(struct engine *e, const struct match_key *k,
				 const struct match_conn *c);
static void match_pending_delete(struct engine *e, const struct match_key *k);
static void match_pending_release(struct engine *e, const struct match_key *k);
static struct match_conn *match_promote(struct engine *e, const struct match_key *k,
					struct match_conn *c);
static void match_count(struct engine *e, int counter);
static u64 engine_grace_ns(const struct engine *e);
struct match_segment;
static void match_plain_syn(struct engine *e, const struct match_segment *seg);

#include "smc_match.h"

#define STATUS_STOP 0 /* Python must look at the record/block at `offset` */
#define STATUS_END 1  /* the buffer was walked to its end */

#define MAX_UNSUPPORTED_KINDS 16

/* --- the user's filter expression: classic BPF compiled by libpcap --------------------------- */

#define MAX_FILTER_PROGRAMS 16 /* link types with a compiled program */
#define BPF_MEMWORDS 16

struct bpf_insn_ {
	u16 code;
	u8 jt, jf;
	u32 k;
};

struct filter_program {
	long linktype;
	u32 len;
	struct bpf_insn_ *insns;
};

/* Run a classic-BPF program on a frame as libpcap's pcap_offline_filter() does (its
 * bpf_filter.c): a load beyond the captured bytes, a division by zero or an unknown
 * instruction rejects the frame.  Returns the program's result (0: rejected). */
static u32 bpf_run(const struct bpf_insn_ *insns, u32 len, const u8 *p, u32 caplen,
		   u32 wirelen)
{
	u32 A = 0, X = 0, mem[BPF_MEMWORDS];
	memset(mem, 0, sizeof(mem));
	for (u32 pc = 0; pc < len; pc++) {
		const struct bpf_insn_ *in = &insns[pc];
		u32 k = in->k, off;
		switch (in->code) {
		case 0x06: return k;                       /* ret #k */
		case 0x16: return A;                       /* ret a */
		case 0x20:                                 /* ld [k] */
			if (k > caplen || 4 > caplen - k) return 0;
			A = (u32)p[k] << 24 | (u32)p[k + 1] << 16 | (u32)p[k + 2] << 8 | p[k + 3];
			break;
		case 0x28:                                 /* ldh [k] */
			if (k > caplen || 2 > caplen - k) return 0;
			A = (u32)p[k] << 8 | p[k + 1];
			break;
		case 0x30:                                 /* ldb [k] */
			if (k >= caplen) return 0;
			A = p[k];
			break;
		case 0x40:                                 /* ld [x + k] */
			off = X + k;
			if (off < X || off > caplen || 4 > caplen - off) return 0;
			A = (u32)p[off] << 24 | (u32)p[off + 1] << 16 | (u32)p[off + 2] << 8 |
			    p[off + 3];
			break;
		case 0x48:                                 /* ldh [x + k] */
			off = X + k;
			if (off < X || off > caplen || 2 > caplen - off) return 0;
			A = (u32)p[off] << 8 | p[off + 1];
			break;
		case 0x50:                                 /* ldb [x + k] */
			off = X + k;
			if (off < X || off >= caplen) return 0;
			A = p[off];
			break;
		case 0x80: A = wirelen; break;             /* ld #len */
		case 0x81: X = wirelen; break;             /* ldx #len */
		case 0x00: A = k; break;                   /* ld #k */
		case 0x01: X = k; break;                   /* ldx #k */
		case 0x60: if (k >= BPF_MEMWORDS) return 0; A = mem[k]; break;
		case 0x61: if (k >= BPF_MEMWORDS) return 0; X = mem[k]; break;
		case 0x02: if (k >= BPF_MEMWORDS) return 0; mem[k] = A; break;
		case 0x03: if (k >= BPF_MEMWORDS) return 0; mem[k] = X; break;
		case 0xb1:                                 /* ldxb 4*([k]&0xf) */
			if (k >= caplen) return 0;
			X = (u32)(p[k] & 0xf) << 2;
			break;
		case 0x05: pc += k; break;                 /* ja */
		case 0x25: pc += (A > k) ? in->jt : in->jf; break;
		case 0x35: pc += (A >= k) ? in->jt : in->jf; break;
		case 0x15: pc += (A == k) ? in->jt : in->jf; break;
		case 0x45: pc += (A & k) ? in->jt : in->jf; break;
		case 0x2d: pc += (A > X) ? in->jt : in->jf; break;
		case 0x3d: pc += (A >= X) ? in->jt : in->jf; break;
		case 0x1d: pc += (A == X) ? in->jt : in->jf; break;
		case 0x4d: pc += (A & X) ? in->jt : in->jf; break;
		case 0x0c: A += X; break;
		case 0x1c: A -= X; break;
		case 0x2c: A *= X; break;
		case 0x3c: if (X == 0) return 0; A /= X; break;
		case 0x9c: if (X == 0) return 0; A %= X; break;
		case 0x5c: A &= X; break;
		case 0x4c: A |= X; break;
		case 0xac: A ^= X; break;
		case 0x6c: A = X < 32 ? A << X : 0; break;
		case 0x7c: A = X < 32 ? A >> X : 0; break;
		case 0x04: A += k; break;
		case 0x14: A -= k; break;
		case 0x24: A *= k; break;
		case 0x34: if (k == 0) return 0; A /= k; break;
		case 0x94: if (k == 0) return 0; A %= k; break;
		case 0x54: A &= k; break;
		case 0x44: A |= k; break;
		case 0xa4: A ^= k; break;
		case 0x64: A = k < 32 ? A << k : 0; break;
		case 0x74: A = k < 32 ? A >> k : 0; break;
		case 0x84: A = (u32)(-(s64)A); break;     /* neg */
		case 0x07: X = A; break;                   /* tax */
		case 0x87: A = X; break;                   /* txa */
		default: return 0;
		}
	}
	return 0; /* fell off the end (a program libpcap made never does) */
}

/* --- tables: a hash of keys with an LRU list, by index ----------------------------------- */

/* Where a frame came from: what a segment tuple carries besides the frame's bytes (kept
 * with a held frame until it crosses). */
struct frame_info {
	double time;
	u32 number, interface, orig_len;
	long linktype;
};

struct slot {
	struct match_key key;
	struct match_conn conn;
	s32 chain; /* next slot in the same bucket, -1 = none */
	s32 older, newer; /* LRU neighbours, -1 = none */
	u8 used;
	/* pending table only: the held SYN */
	u16 held_len;
	struct frame_info held_info;
	u8 held[SMC_HELD_HEADER_BYTES];
};

enum table_kind {
	TABLE_FOLLOW,
	TABLE_PENDING, /* evictions count as unanswered SYNs */
	TABLE_PICKUPS, /* evictions count as unanswered pick-ups */
};

/* A pick-up held until its connection shows more (rule.HELD_PICKUPS). */
struct held_pickup {
	s64 time_ns;
	struct frame_info info;
	u32 len;
	u8 d[SMC_HELD_PICKUP_BYTES];
};

struct table {
	struct slot *slots;
	s32 *buckets;
	u32 capacity;
	u32 nbuckets; /* power of two */
	u32 count;
	u32 fresh;     /* slots [fresh, capacity) were never used (calloc keeps them untouched) */
	s32 free_head; /* used, then freed slots, chained through `chain` */
	s32 oldest, newest;
	enum table_kind kind;
};

struct sample {
	PyObject *items[SMC_UNANSWERED_SAMPLE];
	int count;
};

struct receive_buffers;

struct engine {
	PyObject_HEAD
	/* the user's filter: an object with instructions(linktype) -> [(code, jt, jf, k)],
	 * asked once per link type; NULL: every frame */
	PyObject *filter;
	struct filter_program programs[MAX_FILTER_PROGRAMS];
	int nprograms;
	u64 filtered; /* frames the filter rejected */
	/* --duration offline: frames more than `duration` seconds after the first one are
	 * not traced (counted in `beyond`; the reader stops at the next chunk) */
	double duration, first_time;
	u64 beyond;
	struct table follow;
	struct table pending;
	struct table pickups;
	struct held_pickup *held_pickups; /* by slot of `pickups` */
	u64 unanswered_pickups;
	struct sample pickup_sample; /* 4-tuples of unanswered pick-ups */
	u64 counters[MATCH_COUNTERS];
	u32 dup_hash[SMC_DUPLICATE_SLOTS];
	s64 dup_time[SMC_DUPLICATE_SLOTS];
	u32 syn_memory[SMC_PLAIN_SYN_MEMORY];
	u64 plain_syns;
	u64 plain_connections;
	u64 duplicates;
	u64 cut_headers;  /* TCP segments whose headers the snap length cut */
	u64 cut_payload;  /* CLC payload cut by the snap length */
	u64 unsupported[MAX_UNSUPPORTED_KINDS][2]; /* (linktype, frames) */
	int unsupported_kinds;
	u64 frames;       /* frames walked or fed */
	u64 kept;         /* segments handed out */
	struct sample sample; /* 4-tuples of unanswered SYNs */
	int keep_frames;
	u64 grace_ns;
	/* the frame being processed (for held SYNs) */
	const struct frame_ctx *cur_frame;
	const struct frame_info *cur_info;
	int released; /* a held SYN was released by the current frame */
	struct slot released_syn;
	struct receive_buffers *rx; /* Engine.drain's, made on first use */
};

_Static_assert(sizeof(struct match_key) == 40, "key_hash reads the key as five words");

/* Every TCP frame looks its flow up: five multiply-xor rounds over the key's 64-bit
 * words (a byte-wise hash cost a sixth of the whole scan). */
static inline u32 key_hash(const struct match_key *k)
{
	u64 w[5];
	memcpy(w, k, sizeof(w));
	u64 h = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 5; i++) {
		h ^= w[i];
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 29;
	}
	return (u32)(h ^ (h >> 32));
}

static int table_init(struct table *t, u32 capacity, enum table_kind kind)
{
	u32 nb = 1;
	while (nb < capacity * 2)
		nb <<= 1;
	t->slots = calloc(capacity, sizeof(struct slot)); /* pages are touched only when used */
	t->buckets = malloc((size_t)nb * sizeof(s32));
	if (!t->slots || !t->buckets)
		return -1;
	memset(t->buckets, 0xff, nb * sizeof(s32)); /* -1: empty */
	t->capacity = capacity;
	t->nbuckets = nb;
	t->count = 0;
	t->fresh = 0;
	t->free_head = -1;
	t->oldest = t->newest = -1;
	t->kind = kind;
	return 0;
}

static void table_free(struct table *t)
{
	free(t->slots);
	free(t->buckets);
	t->slots = NULL;
	t->buckets = NULL;
}

static s32 table_find(struct table *t, const struct match_key *k)
{
	if (!t->count)
		return -1;
	s32 i = t->buckets[key_hash(k) & (t->nbuckets - 1)];
	while (i >= 0) {
		if (memcmp(&t->slots[i].key, k, sizeof(*k)) == 0)
			return i;
		i = t->slots[i].chain;
	}
	return -1;
}

static void lru_unlink(struct table *t, s32 i)
{
	struct slot *s = &t->slots[i];
	if (s->older >= 0)
		t->slots[s->older].newer = s->newer;
	else
		t->oldest = s->newer;
	if (s->newer >= 0)
		t->slots[s->newer].older = s->older;
	else
		t->newest = s->older;
}

static void lru_append(struct table *t, s32 i)
{
	struct slot *s = &t->slots[i];
	s->older = t->newest;
	s->newer = -1;
	if (t->newest >= 0)
		t->slots[t->newest].newer = i;
	else
		t->oldest = i;
	t->newest = i;
}

static void table_remove(struct table *t, s32 i)
{
	u32 b = key_hash(&t->slots[i].key) & (t->nbuckets - 1);
	s32 *link = &t->buckets[b];
	while (*link >= 0 && *link != i)
		link = &t->slots[*link].chain;
	if (*link == i)
		*link = t->slots[i].chain;
	lru_unlink(t, i);
	t->slots[i].used = 0;
	t->slots[i].chain = t->free_head;
	t->free_head = i;
	t->count--;
}

static void note_sample(struct sample *sample, const struct match_key *k);

static s32 table_insert(struct engine *e, struct table *t, const struct match_key *k,
			const struct match_conn *c)
{
	s32 i = table_find(t, k);
	if (i >= 0) {
		lru_unlink(t, i);
		lru_append(t, i);
		t->slots[i].conn = *c;
		return i;
	}
	if (t->free_head < 0 && t->fresh < t->capacity) {
		t->slots[t->fresh].chain = t->free_head;
		t->free_head = (s32)t->fresh++;
	}
	if (t->free_head < 0) { /* full: the least recently used entry goes */
		s32 victim = t->oldest;
		if (victim < 0)
			return -1;
		if (t->kind == TABLE_PENDING) {
			e->counters[MATCH_COUNT_UNANSWERED]++;
			note_sample(&e->sample, &t->slots[victim].key);
		} else if (t->kind == TABLE_PICKUPS) {
			e->unanswered_pickups++;
			note_sample(&e->pickup_sample, &t->slots[victim].key);
		}
		table_remove(t, victim);
	}
	i = t->free_head;
	t->free_head = t->slots[i].chain;
	struct slot *s = &t->slots[i];
	s->key = *k;
	s->conn = *c;
	s->used = 1;
	u32 b = key_hash(k) & (t->nbuckets - 1);
	s->chain = t->buckets[b];
	t->buckets[b] = i;
	lru_append(t, i);
	t->count++;
	return i;
}

/* The state machine's hooks. */
static struct match_conn *match_follow_lookup(struct engine *e, const struct match_key *k)
{
	s32 i = table_find(&e->follow, k);
	if (i < 0)
		return NULL;
	lru_unlink(&e->follow, i);
	lru_append(&e->follow, i);
	return &e->follow.slots[i].conn;
}

static struct match_conn *match_follow_insert(struct engine *e, const struct match_key *k,
					      const struct match_conn *c)
{
	s32 i = table_insert(e, &e->follow, k, c);
	return i < 0 ? NULL : &e->follow.slots[i].conn;
}

static void match_follow_delete(struct engine *e, const struct match_key *k)
{
	s32 i = table_find(&e->follow, k);
	if (i >= 0)
		table_remove(&e->follow, i);
}

static struct match_conn *match_pending_lookup(struct engine *e, const struct match_key *k)
{
	s32 i = table_find(&e->pending, k);
	return i < 0 ? NULL : &e->pending.slots[i].conn;
}

static void match_pending_insert(struct engine *e, const struct match_key *k,
				 const struct match_conn *c)
{
	s32 i = table_insert(e, &e->pending, k, c);
	if (i < 0 || !e->cur_frame)
		return;
	struct slot *s = &e->pending.slots[i];
	u32 n = e->cur_frame->len < SMC_HELD_HEADER_BYTES ? e->cur_frame->len
						       : SMC_HELD_HEADER_BYTES;
	memcpy(s->held, e->cur_frame->d, n);
	s->held_len = (u16)n;
	s->held_info = *e->cur_info;
}

static void match_pending_delete(struct engine *e, const struct match_key *k)
{
	s32 i = table_find(&e->pending, k);
	if (i >= 0)
		table_remove(&e->pending, i);
}

/* Forget a pending SYN that got its answer; its held frame crosses before the answer. */
static int release_held(struct engine *e, const struct match_key *k)
{
	s32 i = table_find(&e->pending, k);
	if (i < 0)
		return 0;
	e->released_syn = e->pending.slots[i];
	e->released = 1;
	table_remove(&e->pending, i);
	return 1;
}

static void match_pending_release(struct engine *e, const struct match_key *k)
{
	release_held(e, k);
}

static struct match_conn *match_promote(struct engine *e, const struct match_key *k,
					struct match_conn *c)
{
	struct match_conn conn = *c;
	if (!release_held(e, k))
		return NULL;
	conn.pending = 0;
	return match_follow_insert(e, k, &conn);
}

static u64 engine_grace_ns(const struct engine *e)
{
	return e->grace_ns;
}

static void match_count(struct engine *e, int counter)
{
	e->counters[counter]++;
}

/* --- frames -------------------------------------------------------------------------------- */

/* IP version after the link layer (0: not IP) and its offset (reference.locate_ip). */
static u32 locate_ip(const struct frame_ctx *f, long linktype, u32 tags, u32 *ip_off)
{
	u32 family;
	switch (linktype) {
	case SMC_LINKTYPE_ETHERNET:
		return match_after_ethertype(f, 12, 14, tags, ip_off);
	case SMC_LINKTYPE_LINUX_SLL:
		return match_after_ethertype(f, 14, 16, tags, ip_off);
	case SMC_LINKTYPE_LINUX_SLL2:
		if (f->len < 20)
			return 0;
		return match_after_ethertype(f, 0, 20, tags, ip_off);
	case SMC_LINKTYPE_RAW:
	case SMC_LINKTYPE_RAW_ALT_12:
	case SMC_LINKTYPE_RAW_ALT_14:
		if (f->len < 1 || (f->d[0] >> 4 != 4 && f->d[0] >> 4 != 6))
			return 0;
		*ip_off = 0;
		return f->d[0] >> 4;
	case SMC_LINKTYPE_IPV4:
		*ip_off = 0;
		return 4;
	case SMC_LINKTYPE_IPV6:
		*ip_off = 0;
		return 6;
	case SMC_LINKTYPE_NULL:
	case SMC_LINKTYPE_LOOP:
		if (f->len < 4)
			return 0;
		/* NULL is in the capturing host's byte order, LOOP in network order, and
		 * writers mix them up: a family fits in 16 bits, so more is the other order. */
		family = (u32)f->d[0] | ((u32)f->d[1] << 8) | ((u32)f->d[2] << 16) |
			 ((u32)f->d[3] << 24);
		if (family > 0xFFFF)
			family = __builtin_bswap32(family);
		*ip_off = 4;
		if (family == SMC_NULL_FAMILY_INET)
			return 4;
		if (SMC_IS_NULL_FAMILY_INET6(family))
			return 6;
		return 0;
	default:
		return 0;
	}
}

/* Was this a TCP segment whose header the capture cut short? (for the warning only) */
static int tcp_header_cut(const struct frame_ctx *f, u32 ip_off, u32 version)
{
	if (version == 4) {
		if (ip_off + 20 > f->len || f->d[ip_off + 9] != SMC_IPPROTO_TCP)
			return 0;
		u32 total = be16_at(f, ip_off + 2);
		return total && ip_off + total > f->len;
	}
	if (version == 6 && ip_off + 40 <= f->len) {
		u32 payload = be16_at(f, ip_off + 4);
		return payload && ip_off + 40 + payload > f->len && f->d[ip_off + 6] == SMC_IPPROTO_TCP;
	}
	return 0;
}

static void count_unsupported(struct engine *e, long linktype)
{
	for (int i = 0; i < e->unsupported_kinds; i++) {
		if (e->unsupported[i][0] == (u64)linktype) {
			e->unsupported[i][1]++;
			return;
		}
	}
	if (e->unsupported_kinds < MAX_UNSUPPORTED_KINDS) {
		e->unsupported[e->unsupported_kinds][0] = (u64)linktype;
		e->unsupported[e->unsupported_kinds][1] = 1;
		e->unsupported_kinds++;
	}
}

static int parse_frame(struct engine *e, const struct frame_ctx *f, long linktype,
		       struct match_segment *seg)
{
	u32 ip_off = 0;
	memset(seg, 0, sizeof(*seg));
	if (!SMC_IS_SUPPORTED_LINKTYPE(linktype)) {
		if (e)
			count_unsupported(e, linktype);
		return 0;
	}
	u32 version = locate_ip(f, linktype, 0, &ip_off);
	if (!version)
		return 0;
	if (!match_parse_ip(f, ip_off, version, seg)) {
		if (e && tcp_header_cut(f, ip_off, version))
			e->cut_headers++;
		return 0;
	}
	return 1;
}

static inline u32 fnv1a(u32 h, const u8 *p, u32 n)
{
	for (u32 i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* reference.Deduplicator.fingerprint: addresses, ports, seq, ack, flags, payload length
 * (16 bits) and the first payload bytes, in that order, big-endian. */
static u32 fingerprint(const struct frame_ctx *f, const struct match_segment *seg)
{
	u8 head[15];
	u32 alen = seg->version == 4 ? 4 : 16;
	u32 h = fnv1a(2166136261u, f->d + seg->src_off, 2 * alen);
	u32 n = seg->captured_end - seg->payload_off;
	head[0] = seg->sport >> 8;
	head[1] = seg->sport;
	head[2] = seg->dport >> 8;
	head[3] = seg->dport;
	for (int i = 0; i < 4; i++) {
		head[4 + i] = seg->seq >> (24 - 8 * i);
		head[8 + i] = seg->ack >> (24 - 8 * i);
	}
	head[12] = seg->flags;
	head[13] = (seg->payload_len >> 8) & 0xff;
	head[14] = seg->payload_len & 0xff;
	h = fnv1a(h, head, sizeof(head));
	return fnv1a(h, f->d + seg->payload_off,
		     n < SMC_DUPLICATE_PAYLOAD_BYTES ? n : SMC_DUPLICATE_PAYLOAD_BYTES);
}

static int is_duplicate(struct engine *e, const struct frame_ctx *f,
			const struct match_segment *seg, s64 now)
{
	u32 h = fingerprint(f, seg);
	u32 slot = h & (SMC_DUPLICATE_SLOTS - 1);
	s64 delta = now - e->dup_time[slot];
	if (e->dup_hash[slot] == h && e->dup_time[slot] &&
	    (delta < 0 ? -delta : delta) <= SMC_DUPLICATE_WINDOW_NS)
		return 1;
	e->dup_hash[slot] = h;
	e->dup_time[slot] = now ? now : 1;
	return 0;
}

/* Count a client SYN without the SMC option once per (flow, ISN): a direct-mapped
 * memory of recent keys drops retransmitted SYNs (reference.PlainSynMemory). */
static void match_plain_syn(struct engine *e, const struct match_segment *seg)
{
	e->plain_syns++;
	u8 seq[4] = {seg->seq >> 24, seg->seq >> 16, seg->seq >> 8, seg->seq};
	u32 key = fnv1a(key_hash(&seg->key), seq, 4);
	if (key == 0)
		key = 1; /* 0 marks an empty slot */
	if (e->syn_memory[key & (SMC_PLAIN_SYN_MEMORY - 1)] != key) {
		e->syn_memory[key & (SMC_PLAIN_SYN_MEMORY - 1)] = key;
		e->plain_connections++;
	}
}

static PyObject *address_text(int family, const u32 *words)
{
	char text[INET6_ADDRSTRLEN];
	u8 raw[16];
	int n = family == 4 ? 1 : 4;
	for (int i = 0; i < n; i++) {
		raw[4 * i] = words[i] >> 24;
		raw[4 * i + 1] = words[i] >> 16;
		raw[4 * i + 2] = words[i] >> 8;
		raw[4 * i + 3] = words[i];
	}
	if (!inet_ntop(family == 4 ? AF_INET : AF_INET6, raw, text, sizeof(text)))
		return PyUnicode_FromString("?");
	return PyUnicode_FromString(text);
}

static void note_sample(struct sample *sample, const struct match_key *k)
{
	if (sample->count >= SMC_UNANSWERED_SAMPLE)
		return;
	PyObject *lo = address_text(k->family, k->addr_lo);
	PyObject *hi = address_text(k->family, k->addr_hi);
	PyObject *item = lo && hi ? Py_BuildValue("(OiOi)", lo, k->port_lo, hi, k->port_hi) : NULL;
	Py_XDECREF(lo);
	Py_XDECREF(hi);
	if (item)
		sample->items[sample->count++] = item;
	else
		PyErr_Clear();
}

/* The segment tuple for a parsed frame (see the header comment). */
static PyObject *segment_tuple(struct engine *e, const struct frame_ctx *f,
			       const struct match_segment *seg, u32 keep,
			       const struct frame_info *info)
{
	u32 keep_bytes = match_keep_bytes(seg, keep);
	u32 payload_end = keep_bytes > seg->payload_off ? keep_bytes : seg->payload_off;
	const u32 *src = seg->dir ? seg->key.addr_hi : seg->key.addr_lo;
	const u32 *dst = seg->dir ? seg->key.addr_lo : seg->key.addr_hi;
	int option = (seg->flags & SMC_TCP_SYN) ? match_has_smc_option(f, seg) : 0;
	PyObject *src_text = address_text(seg->key.family, src);
	PyObject *dst_text = address_text(seg->key.family, dst);
	PyObject *payload = PyBytes_FromStringAndSize((const char *)f->d + seg->payload_off,
						      payload_end - seg->payload_off);
	PyObject *frame = e->keep_frames
		? PyBytes_FromStringAndSize((const char *)f->d, keep_bytes)
		: (Py_INCREF(Py_None), Py_None);
	PyObject *out = NULL;
	if (src_text && dst_text && payload && frame)
		out = Py_BuildValue("(dIIOOIIkkiOOIOlI)", info->time, info->number,
				    info->interface, src_text,
				    dst_text, (unsigned)seg->sport, (unsigned)seg->dport,
				    (unsigned long)seg->seq, (unsigned long)seg->ack, (int)seg->flags,
				    option ? Py_True : Py_False, payload,
				    (unsigned)seg->payload_len, frame, info->linktype, info->orig_len);
	Py_XDECREF(src_text);
	Py_XDECREF(dst_text);
	Py_XDECREF(payload);
	Py_XDECREF(frame);
	return out;
}

static void clear_programs(struct engine *e)
{
	for (int i = 0; i < e->nprograms; i++)
		free(e->programs[i].insns);
	e->nprograms = 0;
}

/* The filter's program for a link type, compiled (by the filter object) the first time. */
static const struct filter_program *filter_program_for(struct engine *e, long linktype)
{
	for (int i = 0; i < e->nprograms; i++)
		if (e->programs[i].linktype == linktype)
			return &e->programs[i];
	if (e->nprograms >= MAX_FILTER_PROGRAMS) {
		PyErr_SetString(PyExc_ValueError, "too many link types for one filter");
		return NULL;
	}
	PyObject *list = PyObject_CallMethod(e->filter, "instructions", "l", linktype);
	if (!list)
		return NULL;
	PyObject *seq = PySequence_Fast(list, "instructions() must return a sequence");
	Py_DECREF(list);
	if (!seq)
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	struct bpf_insn_ *insns = n > 0 && n <= 4096 ? calloc((size_t)n, sizeof(*insns)) : NULL;
	if (!insns) {
		Py_DECREF(seq);
		PyErr_SetString(PyExc_ValueError, "a filter program has 1 to 4096 instructions");
		return NULL;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		unsigned int code, jt, jf;
		unsigned long k;
		if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "IIIk", &code, &jt, &jf,
				      &k)) {
			free(insns);
			Py_DECREF(seq);
			return NULL;
		}
		/* jumps stay inside the program (libpcap's bpf_validate does the same) */
		int jump = (code & 0x07) == 0x05;
		if (code > 0xffff || jt > 0xff || jf > 0xff || k > 0xffffffffUL ||
		    (jump && code == 0x05 && k >= (unsigned long)(n - i - 1)) ||
		    (jump && code != 0x05 && (jt >= (unsigned)(n - i - 1) ||
					      jf >= (unsigned)(n - i - 1)))) {
			free(insns);
			Py_DECREF(seq);
			PyErr_SetString(PyExc_ValueError, "invalid filter instruction");
			return NULL;
		}
		insns[i] = (struct bpf_insn_){(u16)code, (u8)jt, (u8)jf, (u32)k};
	}
	Py_DECREF(seq);
	struct filter_program *prog = &e->programs[e->nprograms++];
	prog->linktype = linktype;
	prog->len = (u32)n;
	prog->insns = insns;
	return prog;
}

static int append_segment(struct engine *e, const struct frame_ctx *f,
			  const struct match_segment *seg, u32 verdict,
			  const struct frame_info *info, PyObject *out)
{
	PyObject *t = segment_tuple(e, f, seg, verdict, info);
	if (!t || PyList_Append(out, t) < 0) {
		Py_XDECREF(t);
		return -1;
	}
	Py_DECREF(t);
	e->kept++;
	return 0;
}

/* A held frame (a SYN or a pick-up) crosses: only its bytes were kept, so it is parsed
 * again. */
static int append_held(struct engine *e, const u8 *d, u32 len, u32 keep,
		       const struct frame_info *info, PyObject *out)
{
	struct frame_ctx hf = {d, len};
	struct match_segment hs;
	if (!parse_frame(NULL, &hf, info->linktype, &hs))
		return 0;
	return append_segment(e, &hf, &hs, keep, info, out);
}

/* The held pick-up in slot i of `pickups` crosses now (its answer came, its wait is over,
 * or the input ended). */
static int release_pickup(struct engine *e, s32 i, PyObject *out)
{
	struct held_pickup *h = &e->held_pickups[i];
	int rc = append_held(e, h->d, h->len, KEEP_PAYLOAD, &h->info, out);
	table_remove(&e->pickups, i);
	return rc;
}

/* Hold a pick-up (0), or say it cannot be held (1: too long, or no room at all). */
static int hold_pickup(struct engine *e, const struct frame_ctx *f,
		       const struct match_segment *seg, const struct frame_info *info, s64 now)
{
	u32 n = match_keep_bytes(seg, KEEP_PAYLOAD); /* within the frame */
	if (n > SMC_HELD_PICKUP_BYTES)
		return 1;
	struct match_conn none;
	memset(&none, 0, sizeof(none));
	s32 i = table_insert(e, &e->pickups, &seg->key, &none);
	if (i < 0)
		return 1;
	struct held_pickup *h = &e->held_pickups[i];
	h->time_ns = now;
	h->info = *info;
	h->len = n;
	memcpy(h->d, f->d, n);
	return 0;
}

/* rule.packet_ns: packet time in ns, saturated (a pcapng can hold 2^64 s; converting an
 * out-of-range double to an integer is undefined in C). */
static s64 packet_ns(double time)
{
	double ns = time * 1e9;
	if (ns >= 9223372036854775807.0)
		return INT64_MAX;
	if (ns <= -9223372036854775807.0)
		return -INT64_MAX;
	return (s64)ns;
}

/* One frame: parse, apply the rule (if `rule`), drop duplicates, append what crosses to
 * `out`.  Returns -1 on a Python error. */
static int process_frame(struct engine *e, const u8 *data, u32 len,
			 const struct frame_info *info, int rule, PyObject *out)
{
	struct frame_ctx f = {data, len};
	struct match_segment seg;
	u32 verdict = KEEP_PAYLOAD;
	s64 now = packet_ns(info->time);
	e->frames++;
	if (e->frames == 1)
		e->first_time = info->time;
	if (info->time - e->first_time > e->duration) {
		e->beyond++;
		return 0;
	}
	if (e->filter) {
		const struct filter_program *prog = filter_program_for(e, info->linktype);
		if (!prog)
			return -1;
		if (!bpf_run(prog->insns, prog->len, data, len,
			     info->orig_len ? info->orig_len : len)) {
			e->filtered++;
			return 0;
		}
	}
	/* Held pick-ups whose wait is over cross now, in the order they came. */
	while (rule && e->pickups.count) {
		s32 oldest = e->pickups.oldest;
		if (now - e->held_pickups[oldest].time_ns < SMC_PICKUP_WAIT_NS)
			break;
		if (release_pickup(e, oldest, out) < 0)
			return -1;
	}
	if (!parse_frame(e, &f, info->linktype, &seg))
		return 0;
	u32 pickup = 0;
	if (rule) {
		e->cur_frame = &f;
		e->cur_info = info;
		e->released = 0;
		verdict = match_step(&f, e, &seg, (u64)now);
		e->cur_frame = NULL;
		if (e->released) {
			const struct slot *held = &e->released_syn;
			e->released = 0;
			if (append_held(e, held->held, held->held_len, KEEP_HEADERS, &held->held_info,
					out) < 0)
				return -1;
		}
		pickup = verdict & KEEP_PICKUP;
		verdict &= KEEP_AMOUNT;
		if (verdict == KEEP_DROP || verdict == KEEP_HOLD)
			return 0;
	}
	if (is_duplicate(e, &f, &seg, now)) {
		e->duplicates++;
		return 0;
	}
	if (rule && verdict == KEEP_PAYLOAD) {
		u32 captured = seg.captured_end - seg.payload_off;
		u32 wanted = seg.payload_len < SMC_PAYLOAD_CAP ? seg.payload_len : SMC_PAYLOAD_CAP;
		if (captured < wanted)
			e->cut_payload++;
	}
	/* a segment of a held pick-up's connection: its answer */
	s32 answered = table_find(&e->pickups, &seg.key);
	if (answered >= 0 && release_pickup(e, answered, out) < 0)
		return -1;
	if (pickup && verdict == KEEP_PAYLOAD && hold_pickup(e, &f, &seg, info, now) == 0)
		return 0;
	return append_segment(e, &f, &seg, verdict, info, out);
}

/* --- Python type --------------------------------------------------------------------------- */

static inline u32 load32(const u8 *p, int swapped)
{
	u32 value;
	memcpy(&value, p, 4);
	return swapped ? __builtin_bswap32(value) : value;
}

static void engine_dealloc(struct engine *e)
{
	free(e->rx);
	table_free(&e->follow);
	table_free(&e->pending);
	table_free(&e->pickups);
	free(e->held_pickups);
	clear_programs(e);
	Py_CLEAR(e->filter);
	for (int i = 0; i < e->sample.count; i++)
		Py_DECREF(e->sample.items[i]);
	for (int i = 0; i < e->pickup_sample.count; i++)
		Py_DECREF(e->pickup_sample.items[i]);
	Py_TYPE(e)->tp_free((PyObject *)e);
}

static int engine_init(struct engine *e, PyObject *args, PyObject *kwds)
{
	static char *names[] = {"grace", "max_connections", "max_pending", "keep_frames", NULL};
	double grace = (double)SMC_GRACE_NS / 1e9;
	unsigned int max_connections = SMC_MAX_CONNECTIONS, max_pending = SMC_MAX_PENDING;
	int keep_frames = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|dIIp", names, &grace, &max_connections,
					 &max_pending, &keep_frames))
		return -1;
	if (max_connections < 1 || max_pending < 1 || max_connections > (1u << 26) ||
	    max_pending > (1u << 26) || !(grace >= 0) || grace > 1e9) {
		PyErr_SetString(PyExc_ValueError, "table sizes must be 1..2^26 and grace >= 0");
		return -1;
	}
	table_free(&e->follow);
	table_free(&e->pending);
	table_free(&e->pickups);
	free(e->held_pickups);
	/* calloc: pages of held frames are touched only when a pick-up is held there */
	e->held_pickups = calloc(SMC_HELD_PICKUPS, sizeof(struct held_pickup));
	if (table_init(&e->follow, max_connections, TABLE_FOLLOW) < 0 ||
	    table_init(&e->pending, max_pending, TABLE_PENDING) < 0 ||
	    table_init(&e->pickups, SMC_HELD_PICKUPS, TABLE_PICKUPS) < 0 || !e->held_pickups) {
		PyErr_NoMemory();
		return -1;
	}
	e->duration = INFINITY;
	e->grace_ns = (u64)(grace * 1e9);
	e->keep_frames = keep_frames;
	return 0;
}

PyDoc_STRVAR(scan_pcap_doc,
	     "scan_pcap(buf, start, end, swapped, linktype, max_caplen, units, number, out)\n"
	     "    -> (status, offset, frames_walked)\n\n"
	     "Walk classic pcap records in buf[start:end], appending the segments that cross\n"
	     "to the list `out`.  `units` is 1e6 or 1e9 (timestamp fraction per second),\n"
	     "`number` the frame number of the last frame before `start`.  status 1: walked\n"
	     "to the end of the buffer; 0: the record at offset is incomplete or its captured\n"
	     "length exceeds max_caplen, and Python decides.");

static PyObject *engine_scan_pcap(struct engine *e, PyObject *args)
{
	Py_buffer buf;
	Py_ssize_t start, end, pos, frames = 0;
	int swapped, status = STATUS_END;
	long linktype;
	unsigned long max_caplen, number;
	double units;
	PyObject *out;
	if (!PyArg_ParseTuple(args, "y*nnplkdkO!", &buf, &start, &end, &swapped, &linktype,
			      &max_caplen, &units, &number, &PyList_Type, &out))
		return NULL;
	if (start < 0 || start > end || end > buf.len || !(units > 0)) {
		PyBuffer_Release(&buf);
		PyErr_SetString(PyExc_ValueError, "bad range or units");
		return NULL;
	}
	const u8 *base = buf.buf;
	pos = start;
	for (;;) {
		u32 caplen;
		if (end - pos < SMC_PCAP_RECORD_HEADER_LEN)
			break;
		caplen = load32(base + pos + 8, swapped);
		if (caplen > max_caplen ||
		    (size_t)caplen > (size_t)(end - pos - SMC_PCAP_RECORD_HEADER_LEN)) {
			status = STATUS_STOP;
			break;
		}
		frames++;
		struct frame_info info = {
			.time = (double)load32(base + pos, swapped) +
				(double)load32(base + pos + 4, swapped) / units,
			.number = (u32)(number + frames),
			.orig_len = load32(base + pos + 12, swapped),
			.linktype = linktype,
		};
		if (process_frame(e, base + pos + SMC_PCAP_RECORD_HEADER_LEN, caplen, &info, 1,
				  out) < 0) {
			PyBuffer_Release(&buf);
			return NULL;
		}
		pos += SMC_PCAP_RECORD_HEADER_LEN + (Py_ssize_t)caplen;
	}
	if (status == STATUS_END && pos != end)
		status = STATUS_STOP; /* a partial record header at the end */
	PyBuffer_Release(&buf);
	return Py_BuildValue("(inn)", status, pos, frames);
}

PyDoc_STRVAR(scan_pcapng_doc,
	     "scan_pcapng(buf, start, end, swapped, interfaces, last_time, number, out)\n"
	     "    -> (status, offset, frames_walked, last_time)\n\n"
	     "Walk pcapng EPB/SPB blocks in buf[start:end].  `interfaces` is a sequence of\n"
	     "(linktype, units, tsoffset, snaplen) per interface of the current section;\n"
	     "`last_time` the time of the last EPB (SPBs have none of their own).  status 0:\n"
	     "the block at offset is not a packet block, incomplete or inconsistent, and\n"
	     "Python decides.");

struct interface_info {
	long linktype;
	double units;
	u64 units_int; /* 0: more than 64 bits */
	double tsoffset;
	u32 snaplen;
};

/* formats.pcapng_time: whole seconds and fraction apart, in the same order. */
static double pcapng_time(u64 stamp, const struct interface_info *i)
{
	if (i->units_int == 0)
		return 0.0 + (double)stamp / i->units + i->tsoffset;
	return (double)(stamp / i->units_int) + (double)(stamp % i->units_int) / i->units +
	       i->tsoffset;
}

static PyObject *engine_scan_pcapng(struct engine *e, PyObject *args)
{
	Py_buffer buf;
	Py_ssize_t start, end, pos, frames = 0, n_if;
	int swapped, status = STATUS_END;
	double last_time;
	unsigned long number;
	PyObject *interfaces, *out, *seq = NULL;
	struct interface_info *info = NULL;
	if (!PyArg_ParseTuple(args, "y*nnpOdkO!", &buf, &start, &end, &swapped, &interfaces,
			      &last_time, &number, &PyList_Type, &out))
		return NULL;
	if (start < 0 || start > end || end > buf.len) {
		PyErr_SetString(PyExc_ValueError, "bad range");
		goto fail;
	}
	seq = PySequence_Fast(interfaces, "interfaces must be a sequence");
	if (!seq)
		goto fail;
	n_if = PySequence_Fast_GET_SIZE(seq);
	info = PyMem_Calloc(n_if ? n_if : 1, sizeof(*info));
	if (!info) {
		PyErr_NoMemory();
		goto fail;
	}
	for (Py_ssize_t i = 0; i < n_if; i++) {
		unsigned long snaplen;
		PyObject *units;
		if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "lOdk", &info[i].linktype,
				      &units, &info[i].tsoffset, &snaplen))
			goto fail;
		info[i].units = PyFloat_AsDouble(units);
		if (info[i].units == -1.0 && PyErr_Occurred())
			goto fail;
		if (!(info[i].units > 0)) {
			PyErr_SetString(PyExc_ValueError, "interface units must be positive");
			goto fail;
		}
		info[i].units_int = PyLong_Check(units) ? PyLong_AsUnsignedLongLong(units) : 0;
		if (PyErr_Occurred()) { /* more than 64 bits */
			PyErr_Clear();
			info[i].units_int = 0;
		}
		info[i].snaplen = (u32)snaplen;
	}
	const u8 *base = buf.buf;
	pos = start;
	for (;;) {
		u32 block_type, total, body_len, caplen, interface, orig_len;
		const u8 *body;
		double time;
		if (end - pos < 12)
			break;
		block_type = load32(base + pos, swapped);
		total = load32(base + pos + 4, swapped);
		if (total < 12 || total % 4 || (size_t)total > (size_t)(end - pos) ||
		    load32(base + pos + total - 4, swapped) != total) {
			status = STATUS_STOP;
			break;
		}
		body = base + pos + 8;
		body_len = total - 12;
		if (block_type == SMC_PCAPNG_EPB) {
			if (body_len < SMC_PCAPNG_EPB_FIXED) {
				status = STATUS_STOP;
				break;
			}
			interface = load32(body, swapped);
			caplen = load32(body + 12, swapped);
			orig_len = load32(body + 16, swapped);
			if ((Py_ssize_t)interface >= n_if || caplen > body_len - SMC_PCAPNG_EPB_FIXED) {
				status = STATUS_STOP;
				break;
			}
			u64 stamp = ((u64)load32(body + 4, swapped) << 32) | load32(body + 8, swapped);
			time = pcapng_time(stamp, &info[interface]);
			last_time = time;
			body += SMC_PCAPNG_EPB_FIXED;
		} else if (block_type == SMC_PCAPNG_SPB) {
			if (body_len < SMC_PCAPNG_SPB_FIXED || n_if == 0) {
				status = STATUS_STOP;
				break;
			}
			interface = 0;
			orig_len = load32(body, swapped);
			caplen = orig_len < body_len - SMC_PCAPNG_SPB_FIXED ? orig_len
									  : body_len - SMC_PCAPNG_SPB_FIXED;
			if (info[0].snaplen && caplen > info[0].snaplen)
				caplen = info[0].snaplen;
			time = last_time;
			body += SMC_PCAPNG_SPB_FIXED;
		} else {
			status = STATUS_STOP;
			break;
		}
		frames++;
		struct frame_info frame = {time, (u32)(number + frames), interface, orig_len,
					   info[interface].linktype};
		if (process_frame(e, body, caplen, &frame, 1, out) < 0)
			goto fail;
		pos += (Py_ssize_t)total;
	}
	if (status == STATUS_END && pos != end)
		status = STATUS_STOP;
	Py_DECREF(seq);
	PyMem_Free(info);
	PyBuffer_Release(&buf);
	return Py_BuildValue("(innd)", status, pos, frames, last_time);
fail:
	Py_XDECREF(seq);
	PyMem_Free(info);
	PyBuffer_Release(&buf);
	return NULL;
}

PyDoc_STRVAR(feed_doc,
	     "feed(data, linktype, time, number, interface, orig_len, rule, out) -> None\n\n"
	     "One frame: parse it, apply the rule if `rule` (a live frame was already\n"
	     "filtered by the kernel), drop it if it is a duplicate, append what crosses to\n"
	     "the list `out`.");

static PyObject *engine_feed(struct engine *e, PyObject *args)
{
	Py_buffer data;
	long linktype;
	double time;
	unsigned long number, interface, orig_len;
	int rule;
	PyObject *out;
	if (!PyArg_ParseTuple(args, "y*ldkkkpO!", &data, &linktype, &time, &number, &interface,
			      &orig_len, &rule, &PyList_Type, &out))
		return NULL;
	struct frame_info info = {time, (u32)number, (u32)interface, (u32)orig_len, linktype};
	int rc = data.len > UINT32_MAX ? 0
		 : process_frame(e, data.buf, (u32)data.len, &info, rule, out);
	PyBuffer_Release(&data);
	if (rc < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* --- live capture: frames straight from an AF_PACKET socket ------------------------------ */

/* What smctrace/live/capture.py does per frame in Python (its fallback), done here for a
 * whole batch: recvmmsg(2), PACKET_AUXDATA (wire length, an out-of-band VLAN tag) and
 * SO_TIMESTAMPNS, the frame rebuilt as libpcap would show it (the VLAN tag put back for
 * Ethernet-like devices; a LINKTYPE_LINUX_SLL2 header in front for every other device and
 * for "any"), loopback's outgoing copies dropped, then the same path as feed(). */

#define RX_BATCH 64	   /* frames per recvmmsg(2) */
#define RX_HEADROOM 24	   /* room in front of a frame for an SLL2 header or a VLAN tag */
#define RX_CONTROL 128	   /* control bytes per frame: auxdata and a timespec */
#define SLL2_HEADER_LEN 20
#ifndef SO_TIMESTAMPNS
#define SO_TIMESTAMPNS 35
#endif
#ifndef TP_STATUS_VLAN_TPID_VALID
#define TP_STATUS_VLAN_TPID_VALID (1 << 6)
#endif

struct receive_buffers {
	u32 snaplen;
	struct mmsghdr msgs[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct sockaddr_ll addr[RX_BATCH];
	u8 control[RX_BATCH][RX_CONTROL] __attribute__((aligned(8)));
	u8 data[]; /* RX_BATCH frames of RX_HEADROOM + snaplen bytes */
};

static struct receive_buffers *receive_buffers(struct engine *e, u32 snaplen)
{
	if (e->rx && e->rx->snaplen == snaplen)
		return e->rx;
	free(e->rx);
	e->rx = malloc(sizeof(struct receive_buffers) +
		       (size_t)RX_BATCH * (RX_HEADROOM + snaplen));
	if (!e->rx)
		return NULL;
	e->rx->snaplen = snaplen;
	return e->rx;
}

/* The frame tuple for -w: (time, linktype, data, orig_len, interface, number). */
static int append_frame(PyObject *frames, double time, long linktype, const u8 *d, u32 len,
			u32 orig_len, u32 interface, u32 number)
{
	PyObject *t = Py_BuildValue("(dly#III)", time, linktype, (const char *)d,
				    (Py_ssize_t)len, orig_len, interface, number);
	if (!t || PyList_Append(frames, t) < 0) {
		Py_XDECREF(t);
		return -1;
	}
	Py_DECREF(t);
	return 0;
}

PyDoc_STRVAR(drain_doc,
	     "drain(fd, interface, ethernet, snaplen, number, max_frames, out, frames=None)\n"
	     "    -> (frames_read, errno)\n\n"
	     "Read at most max_frames frames from the non-blocking AF_PACKET socket fd (with\n"
	     "PACKET_AUXDATA and SO_TIMESTAMPNS on) with recvmmsg(2), rebuild each frame as\n"
	     "LiveCapture does (ethernet: LINKTYPE_ETHERNET with an out-of-band VLAN tag put\n"
	     "back, else LINKTYPE_LINUX_SLL2), number them from number + 1, and feed them as\n"
	     "feed(..., rule=False, out) does.  With a list `frames`, also append each frame as\n"
	     "(time, linktype, data, orig_len, interface, number).  errno: EAGAIN when the\n"
	     "socket was drained, 0 when max_frames were read, else the error that stopped\n"
	     "the reading (the frames before it were fed).");

static PyObject *engine_drain(struct engine *e, PyObject *args, PyObject *kwds)
{
	static char *names[] = {"fd", "interface", "ethernet", "snaplen", "number",
				"max_frames", "out", "frames", NULL};
	int fd, ethernet, error = 0;
	unsigned int interface, snaplen;
	unsigned long number, max_frames;
	PyObject *out, *frames = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "iIpIkkO!|O", names, &fd, &interface,
					 &ethernet, &snaplen, &number, &max_frames, &PyList_Type,
					 &out, &frames))
		return NULL;
	if (frames != Py_None && !PyList_Check(frames)) {
		PyErr_SetString(PyExc_TypeError, "frames must be a list or None");
		return NULL;
	}
	if (snaplen < 64 || snaplen > 262144) {
		PyErr_SetString(PyExc_ValueError, "snaplen must be 64..262144");
		return NULL;
	}
	struct receive_buffers *rx = receive_buffers(e, snaplen);
	if (!rx)
		return PyErr_NoMemory();
	long linktype = ethernet ? SMC_LINKTYPE_ETHERNET : SMC_LINKTYPE_LINUX_SLL2;
	u32 stride = RX_HEADROOM + snaplen;
	unsigned long done = 0, read = 0;
	while (read < max_frames) {
		unsigned int want = max_frames - read < RX_BATCH ? max_frames - read : RX_BATCH;
		for (unsigned int i = 0; i < want; i++) {
			rx->iov[i].iov_base = rx->data + (size_t)i * stride + RX_HEADROOM;
			rx->iov[i].iov_len = snaplen;
			struct msghdr *h = &rx->msgs[i].msg_hdr;
			h->msg_name = &rx->addr[i];
			h->msg_namelen = sizeof(rx->addr[i]);
			h->msg_iov = &rx->iov[i];
			h->msg_iovlen = 1;
			h->msg_control = rx->control[i];
			h->msg_controllen = RX_CONTROL;
			h->msg_flags = 0;
		}
		int got;
		Py_BEGIN_ALLOW_THREADS
		got = recvmmsg(fd, rx->msgs, want, MSG_DONTWAIT, NULL);
		Py_END_ALLOW_THREADS
		if (got < 0) {
			if (errno == EINTR)
				continue;
			error = errno == EWOULDBLOCK ? EAGAIN : errno;
			break;
		}
		read += (unsigned long)got;
		for (int i = 0; i < got; i++) {
			const struct sockaddr_ll *a = &rx->addr[i];
			struct msghdr *h = &rx->msgs[i].msg_hdr;
			u8 *d = rx->data + (size_t)i * stride + RX_HEADROOM;
			u32 len = rx->msgs[i].msg_len, wire_len = len;
			double stamp = 0.0;
			int vlan = 0;
			u16 tpid = ETH_P_8021Q, tci = 0;
			/* Each frame passes lo twice; the filters drop the outgoing copy, this is
			 * the safety net for filters that cannot (like libpcap). */
			if (a->sll_pkttype == PACKET_OUTGOING && a->sll_hatype == ARPHRD_LOOPBACK)
				continue;
			for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
				if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA &&
				    c->cmsg_len >= CMSG_LEN(sizeof(struct tpacket_auxdata))) {
					struct tpacket_auxdata aux;
					memcpy(&aux, CMSG_DATA(c), sizeof(aux));
					wire_len = aux.tp_len;
					if (aux.tp_status & TP_STATUS_VLAN_VALID) {
						vlan = 1;
						tci = aux.tp_vlan_tci;
						if (aux.tp_status & TP_STATUS_VLAN_TPID_VALID)
							tpid = aux.tp_vlan_tpid;
					}
				} else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS &&
					   c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
					struct timespec ts;
					memcpy(&ts, CMSG_DATA(c), sizeof(ts));
					stamp = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
				}
			}
			if (stamp == 0.0) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				stamp = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
			}
			if (ethernet) {
				if (vlan && len >= 12) {
					/* The NIC or the kernel took the tag out of the frame; put it back
					 * where it was so the frame reads as it was on the wire. */
					memmove(d - 4, d, 12);
					d -= 4;
					d[12] = tpid >> 8;
					d[13] = tpid & 0xff;
					d[14] = tci >> 8;
					d[15] = tci & 0xff;
					len += 4;
					wire_len += 4;
				}
			} else {
				u32 halen = a->sll_halen < 8 ? a->sll_halen : 8;
				u32 ifindex = (u32)a->sll_ifindex;
				u16 hatype = a->sll_hatype;
				d -= SLL2_HEADER_LEN;
				memcpy(d, &a->sll_protocol, 2); /* already in network order */
				d[2] = d[3] = 0;
				d[4] = ifindex >> 24;
				d[5] = ifindex >> 16;
				d[6] = ifindex >> 8;
				d[7] = ifindex;
				d[8] = hatype >> 8;
				d[9] = hatype & 0xff;
				d[10] = a->sll_pkttype;
				d[11] = (u8)halen;
				memset(d + 12, 0, 8);
				memcpy(d + 12, a->sll_addr, halen);
				len += SLL2_HEADER_LEN;
				wire_len += SLL2_HEADER_LEN;
			}
			u32 orig_len = wire_len > len ? wire_len : len;
			if (len > snaplen)
				len = snaplen;
			u32 n = (u32)(number + ++done);
			if (frames != Py_None &&
			    append_frame(frames, stamp, linktype, d, len, orig_len, interface, n) < 0)
				return NULL;
			struct frame_info info = {stamp, n, interface, orig_len, linktype};
			if (process_frame(e, d, len, &info, 0, out) < 0)
				return NULL;
		}
		if ((unsigned int)got < want) {
			error = EAGAIN; /* fewer than asked for: the queue is empty */
			break;
		}
	}
	return Py_BuildValue("(ki)", done, error);
}

PyDoc_STRVAR(verdict_doc,
	     "verdict(data, linktype, time_ns) -> (keep, release, keep_bytes, pickup)\n\n"
	     "The rule's verdict on one frame (no duplicate filter): keep is a Keep value.");

static PyObject *engine_verdict(struct engine *e, PyObject *args)
{
	Py_buffer data;
	long linktype;
	long long now;
	if (!PyArg_ParseTuple(args, "y*lL", &data, &linktype, &now))
		return NULL;
	struct frame_ctx f = {data.buf, (u32)data.len};
	struct match_segment seg;
	u32 verdict = KEEP_DROP, bytes = 0;
	struct frame_info info = {.time = (double)now / 1e9, .linktype = linktype};
	if (parse_frame(e, &f, linktype, &seg)) {
		e->cur_frame = &f;
		e->cur_info = &info;
		e->released = 0;
		verdict = match_step(&f, e, &seg, (u64)now);
		e->cur_frame = NULL;
		e->released = 0;
		bytes = match_keep_bytes(&seg, verdict);
	}
	PyBuffer_Release(&data);
	return Py_BuildValue("(iOIO)", (int)(verdict & KEEP_AMOUNT),
			     (verdict & KEEP_RELEASE) ? Py_True : Py_False, bytes,
			     (verdict & KEEP_PICKUP) ? Py_True : Py_False);
}

PyDoc_STRVAR(finish_doc,
	     "finish(out) -> None\n\nEnd of input: SYNs still waiting for an answer are unanswered;\n"
	     "held pick-ups cross (appended to the list `out`, in the order they came).");

static PyObject *engine_finish(struct engine *e, PyObject *args)
{
	PyObject *out;
	if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &out))
		return NULL;
	while (e->pending.oldest >= 0) {
		s32 i = e->pending.oldest;
		e->counters[MATCH_COUNT_UNANSWERED]++;
		note_sample(&e->sample, &e->pending.slots[i].key);
		table_remove(&e->pending, i);
	}
	while (e->pickups.oldest >= 0)
		if (release_pickup(e, e->pickups.oldest, out) < 0)
			return NULL;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(set_filter_doc,
	     "set_filter(filter) -> None\n\n"
	     "Keep only frames the user's filter expression accepts, before anything else:\n"
	     "filter.instructions(linktype) gives its classic-BPF program for a link type\n"
	     "(libpcap's compilation, asked once per link type); None: every frame.");

static PyObject *engine_set_filter(struct engine *e, PyObject *filter)
{
	clear_programs(e);
	Py_CLEAR(e->filter);
	if (filter != Py_None) {
		Py_INCREF(filter);
		e->filter = filter;
	}
	Py_RETURN_NONE;
}

PyDoc_STRVAR(set_duration_doc,
	     "set_duration(seconds) -> None\n\n"
	     "Trace only frames at most `seconds` of packet time after the first frame (None:\n"
	     "all); later ones are counted as `beyond`.");

static PyObject *engine_set_duration(struct engine *e, PyObject *arg)
{
	double d = INFINITY;
	if (arg != Py_None) {
		d = PyFloat_AsDouble(arg);
		if (d == -1.0 && PyErr_Occurred())
			return NULL;
		if (!(d >= 0)) {
			PyErr_SetString(PyExc_ValueError, "duration must be >= 0");
			return NULL;
		}
	}
	e->duration = d;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(counters_doc, "counters() -> dict\n\nWhat the engine counted so far.");

static PyObject *engine_counters(struct engine *e, PyObject *noargs)
{
	(void)noargs;
	PyObject *unsupported = PyDict_New(), *sample = PyList_New(0), *out = NULL;
	PyObject *pickup_sample = PyList_New(0);
	if (!unsupported || !sample || !pickup_sample)
		goto done;
	for (int i = 0; i < e->unsupported_kinds; i++) {
		PyObject *k = PyLong_FromUnsignedLongLong(e->unsupported[i][0]);
		PyObject *v = PyLong_FromUnsignedLongLong(e->unsupported[i][1]);
		int rc = k && v ? PyDict_SetItem(unsupported, k, v) : -1;
		Py_XDECREF(k);
		Py_XDECREF(v);
		if (rc < 0)
			goto done;
	}
	for (int i = 0; i < e->sample.count; i++)
		if (PyList_Append(sample, e->sample.items[i]) < 0)
			goto done;
	for (int i = 0; i < e->pickup_sample.count; i++)
		if (PyList_Append(pickup_sample, e->pickup_sample.items[i]) < 0)
			goto done;
	out = Py_BuildValue("{sKsKsKsKsKsKsKsKsKsKsIsIsOsOsKsIsOsKsK}",
			    "frames", e->frames, "kept", e->kept,
			    "plain_syns", e->plain_syns,
			    "plain_connections", e->plain_connections,
			    "smc_syns", e->counters[MATCH_COUNT_SMC_SYN],
			    "answered", e->counters[MATCH_COUNT_ANSWERED],
			    "unanswered", e->counters[MATCH_COUNT_UNANSWERED],
			    "duplicates", e->duplicates, "cut_headers", e->cut_headers,
			    "cut_payload", e->cut_payload, "followed", e->follow.count,
			    "pending", e->pending.count, "unsupported", unsupported,
			    "unanswered_sample", sample,
			    "unanswered_pickups", e->unanswered_pickups,
			    "held_pickups", e->pickups.count,
			    "unanswered_pickup_sample", pickup_sample, "filtered", e->filtered,
			    "beyond", e->beyond);
done:
	Py_XDECREF(unsupported);
	Py_XDECREF(sample);
	Py_XDECREF(pickup_sample);
	return out;
}

PyDoc_STRVAR(constants_doc,
	     "constants() -> dict\n\nThe rule's numbers this engine was compiled with (a test\n"
	     "holds them to smctrace.match.rule, so a stale build cannot go unnoticed).");

static PyObject *engine_constants(PyObject *self, PyObject *noargs)
{
	(void)self;
	(void)noargs;
	return Py_BuildValue(
		"{sIsIsIsIsIsIsIsIsIsIsLsKsIsIsIsL}", "SMC_OPTION_EXID", (unsigned)SMC_OPTION_EXID,
		"EYECATCHER_SMCR", (unsigned)SMC_EYECATCHER_SMCR, "EYECATCHER_SMCD",
		(unsigned)SMC_EYECATCHER_SMCD, "CLC_MIN_LEN", (unsigned)SMC_CLC_MIN_LEN,
		"CLC_MAX_LEN", (unsigned)SMC_CLC_MAX_LEN, "PAYLOAD_CAP", (unsigned)SMC_PAYLOAD_CAP,
		"CLC_PHASE_BYTES", (unsigned)SMC_CLC_PHASE_BYTES, "MAX_VLAN_TAGS",
		(unsigned)SMC_MAX_VLAN_TAGS, "MAX_IPV6_EXT_HEADERS", (unsigned)SMC_MAX_IPV6_EXT_HEADERS,
		"DUPLICATE_SLOTS", (unsigned)SMC_DUPLICATE_SLOTS, "DUPLICATE_WINDOW_NS",
		(long long)SMC_DUPLICATE_WINDOW_NS, "GRACE_NS", (unsigned long long)SMC_GRACE_NS,
		"MAX_CONNECTIONS", (unsigned)SMC_MAX_CONNECTIONS, "MAX_PENDING",
		(unsigned)SMC_MAX_PENDING, "HELD_PICKUPS", (unsigned)SMC_HELD_PICKUPS,
		"PICKUP_WAIT_NS", (long long)SMC_PICKUP_WAIT_NS);
}

static PyMethodDef module_methods[] = {
	{"constants", engine_constants, METH_NOARGS, constants_doc},
	{NULL, NULL, 0, NULL},
};

static PyMethodDef engine_methods[] = {
	{"scan_pcap", (PyCFunction)engine_scan_pcap, METH_VARARGS, scan_pcap_doc},
	{"scan_pcapng", (PyCFunction)engine_scan_pcapng, METH_VARARGS, scan_pcapng_doc},
	{"feed", (PyCFunction)engine_feed, METH_VARARGS, feed_doc},
	{"drain", (PyCFunction)(void (*)(void))engine_drain, METH_VARARGS | METH_KEYWORDS,
	 drain_doc},
	{"verdict", (PyCFunction)engine_verdict, METH_VARARGS, verdict_doc},
	{"finish", (PyCFunction)engine_finish, METH_VARARGS, finish_doc},
	{"counters", (PyCFunction)engine_counters, METH_NOARGS, counters_doc},
	{"set_filter", (PyCFunction)engine_set_filter, METH_O, set_filter_doc},
	{"set_duration", (PyCFunction)engine_set_duration, METH_O, set_duration_doc},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject EngineType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "smctrace.match._engine.Engine",
	.tp_doc = "The SMC-relevance rule over capture files and live frames (see engine.py).",
	.tp_basicsize = sizeof(struct engine),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)engine_init,
	.tp_dealloc = (destructor)engine_dealloc,
	.tp_methods = engine_methods,
};

static struct PyModuleDef engine_module = {
	PyModuleDef_HEAD_INIT, "smctrace.match._engine",
	"The SMC-relevance rule in C (see smc_match.h and engine.py).", -1, module_methods,
};

PyMODINIT_FUNC PyInit__engine(void)
{
	PyObject *m;
	if (PyType_Ready(&EngineType) < 0)
		return NULL;
	m = PyModule_Create(&engine_module);
	if (!m)
		return NULL;
	Py_INCREF(&EngineType);
	if (PyModule_AddObject(m, "Engine", (PyObject *)&EngineType) < 0) {
		Py_DECREF(&EngineType);
		Py_DECREF(m);
		return NULL;
	}
	return m;
}

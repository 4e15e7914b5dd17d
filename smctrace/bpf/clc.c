// SPDX-License-Identifier: GPL-2.0-only
/*
 * smctrace socket filter: lets only the SMC CLC handshake of TCP connections cross into
 * user space.  Loaded with BCC as a BPF_PROG_TYPE_SOCKET_FILTER program and attached to
 * AF_PACKET sockets; the return value is the number of bytes of the frame to keep
 * (0 = drop).  The rule is smctrace/match/smc_match.h (shared with the offline engine),
 * its constants smc_rule.h (generated from smctrace/match/rule.py); the loader puts both
 * in front of this file, so `smctrace --ebpf` prints exactly what is compiled.
 *
 * What crosses (wire format: clc-protocol.md sections 1, 2 and 6):
 *   - SYN carrying the SMC TCP option (kind 254, even length >= 6, ExID E2D4C3D9):
 *     headers only, at most SMC_SYN_RATE per second per CPU (bursts of SMC_SYN_BURST);
 *     beyond that a SYN is only remembered in the pending table and counted, so a flood of
 *     unanswered SYNs costs user space nothing.  The pending table is apart from the
 *     followed connections: a flood evicts only other pending SYNs.
 *   - SYN-ACK of a pending or followed connection: headers (with the option the
 *     connection is followed; without, it is a fallback in the TCP handshake and is
 *     forgotten).
 *   - Payload of a followed connection while its CLC phase lasts: headers + payload
 *     (capped at SMC_PAYLOAD_CAP).  Everything within SMC_CLC_PHASE_BYTES of a
 *     direction's first CLC byte crosses (continuations of split messages, segments out
 *     of order or resent, a split late Decline); the CLC headers are followed, also split
 *     across segments, to end the phase early: after a Decline's last byte, at bytes that
 *     are not CLC where a header must start (their first 8 bytes cross, once), or
 *     SMC_GRACE_NS after a Confirm.
 *   - FIN / RST of a pending or followed connection: headers; the connection is
 *     forgotten.
 *   - A payload starting with a plausible CLC header even without state (capture started
 *     mid-handshake, or the table evicted the connection): kept, and followed from there.
 *   Everything else: 0 bytes.  On lo each frame passes twice (outgoing, then incoming):
 *   only the incoming copy is looked at.
 *
 * Compile-time parameters (-D), besides those of smc_rule.h:
 *   SMC_L2_MODE   0: frames start at the IP header (SOCK_DGRAM sockets: header-less
 *                    devices such as tun/wireguard, "-i any"; BPF test runs)
 *                 1: frames start with an Ethernet header
 *
 * Frames are read with load_byte/half/word (LD_ABS/LD_IND): socket filters have no direct
 * packet access, and a read past the end ends the program with 0 (= drop).  Lengths are
 * nevertheless checked before every read.
 */
#include "smc_rule.h"

#define L2_NONE 0
#define L2_ETHERNET 1
#ifndef SMC_L2_MODE
#define SMC_L2_MODE L2_ETHERNET
#endif

/* The rule's hooks are defined below, after the tables they use. */
struct match_key;
struct match_conn;
struct match_segment;
#define MATCH_CTX struct __sk_buff *
#define MATCH_LEN(ctx) ((ctx)->len)
#define MATCH_U8(ctx, off) ((u32)load_byte((ctx), (off)))
#define MATCH_U16(ctx, off) ((u32)load_half((ctx), (off)))
#define MATCH_U32(ctx, off) ((u32)load_word((ctx), (off)))
#define MATCH_STATE void *
#define MATCH_GRACE_NS(st) SMC_GRACE_NS
static __always_inline struct match_conn *match_follow_lookup(void *st, const struct match_key *k);
static __always_inline struct match_conn *match_follow_insert(void *st, const struct match_key *k,
							      const struct match_conn *c);
static __always_inline void match_follow_delete(void *st, const struct match_key *k);
static __always_inline struct match_conn *match_pending_lookup(void *st, const struct match_key *k);
static __always_inline void match_pending_insert(void *st, const struct match_key *k,
						 const struct match_conn *c);
static __always_inline void match_pending_delete(void *st, const struct match_key *k);
static __always_inline void match_pending_release(void *st, const struct match_key *k);
static __always_inline struct match_conn *match_promote(void *st, const struct match_key *k,
							struct match_conn *c);
static __always_inline void match_count(void *st, int counter);
static __always_inline void match_plain_syn(void *st, const struct match_segment *seg);

#include "smc_match.h"

/* Counters, per CPU; user space sums them. The indices are SMC_COUNTER_* (smc_rule.h):
 * frames the filter looked at and kept, the state machine's MATCH_COUNT_* (SMC SYNs,
 * answered, unanswered), SYNs without the option, SMC SYNs over the rate. */
#define COUNTER_MATCH SMC_COUNTER_SMC_SYNS /* + MATCH_COUNT_* */
_Static_assert(MATCH_COUNT_SMC_SYN == 0 &&
	       SMC_COUNTER_ANSWERED == COUNTER_MATCH + MATCH_COUNT_ANSWERED &&
	       SMC_COUNTER_UNANSWERED == COUNTER_MATCH + MATCH_COUNT_UNANSWERED &&
	       SMC_COUNTER_PLAIN_SYNS == COUNTER_MATCH + MATCH_COUNTERS,
	       "rule.FILTER_COUNTERS lists the state machine's counters in MATCH_COUNT_* order");

BPF_TABLE("lru_hash", struct match_key, struct match_conn, smc_follow, SMC_MAX_CONNECTIONS);
BPF_TABLE("lru_hash", struct match_key, struct match_conn, smc_pending, SMC_MAX_PENDING);
BPF_PERCPU_ARRAY(smc_counters, u64, SMC_FILTER_COUNTERS);

/* Token bucket for SMC SYNs, per CPU: credit in nanoseconds of the rate. */
struct syn_bucket {
	u64 last_ns;
	u64 credit_ns;
};
BPF_PERCPU_ARRAY(smc_syn_bucket, struct syn_bucket, 1);

#define SYN_COST_NS (1000000000ull / SMC_SYN_RATE)
#define SYN_CREDIT_MAX_NS (SYN_COST_NS * SMC_SYN_BURST)

static __always_inline void count(u32 index)
{
	u64 *value = smc_counters.lookup(&index);
	if (value)
		*value += 1;
}

static __always_inline struct match_conn *match_follow_lookup(void *st, const struct match_key *k)
{
	return smc_follow.lookup((struct match_key *)k);
}

static __always_inline struct match_conn *match_follow_insert(void *st, const struct match_key *k,
							      const struct match_conn *c)
{
	smc_follow.update((struct match_key *)k, (struct match_conn *)c);
	return smc_follow.lookup((struct match_key *)k);
}

static __always_inline void match_follow_delete(void *st, const struct match_key *k)
{
	smc_follow.delete((struct match_key *)k);
}

static __always_inline struct match_conn *match_pending_lookup(void *st, const struct match_key *k)
{
	return smc_pending.lookup((struct match_key *)k);
}

static __always_inline void match_pending_insert(void *st, const struct match_key *k,
						 const struct match_conn *c)
{
	smc_pending.update((struct match_key *)k, (struct match_conn *)c);
}

static __always_inline void match_pending_delete(void *st, const struct match_key *k)
{
	smc_pending.delete((struct match_key *)k);
}

static __always_inline void match_pending_release(void *st, const struct match_key *k)
{
	smc_pending.delete((struct match_key *)k); /* its SYN crossed already, or was deferred */
}

static __always_inline struct match_conn *match_promote(void *st, const struct match_key *k,
							struct match_conn *c)
{
	struct match_conn copy = *c;
	copy.pending = 0;
	smc_follow.update((struct match_key *)k, &copy);
	smc_pending.delete((struct match_key *)k);
	return smc_follow.lookup((struct match_key *)k);
}

static __always_inline void match_count(void *st, int counter)
{
	count(COUNTER_MATCH + counter);
}

static __always_inline void match_plain_syn(void *st, const struct match_segment *seg)
{
	count(SMC_COUNTER_PLAIN_SYNS);
}

/* May this SMC SYN cross now?  (KEEP_HOLD: the offline engine holds it instead.) */
static __always_inline int syn_token(u64 now)
{
	u32 zero = 0;
	struct syn_bucket *b = smc_syn_bucket.lookup(&zero);
	if (!b)
		return 1;
	u64 credit = b->credit_ns + (now - b->last_ns);
	if (b->last_ns == 0 || credit > SYN_CREDIT_MAX_NS)
		credit = SYN_CREDIT_MAX_NS;
	b->last_ns = now;
	if (credit < SYN_COST_NS) {
		b->credit_ns = credit;
		return 0;
	}
	b->credit_ns = credit - SYN_COST_NS;
	return 1;
}

static __always_inline u32 decide(struct __sk_buff *skb)
{
	struct match_segment seg = {};
	u32 version, ip_off = 0;

	if (skb->pkt_type == SMC_PACKET_OUTGOING && skb->ifindex == SMC_LOOPBACK_IFINDEX)
		return 0;
	if (SMC_L2_MODE == L2_NONE) {
		if (skb->len < 1)
			return 0;
		version = load_byte(skb, 0) >> 4;
	} else {
		/* A tag the NIC or the kernel took out of the frame counts as one of the
		 * rule's SMC_MAX_VLAN_TAGS, as it would on the wire. */
		version = match_after_ethertype(skb, 12, 14, skb->vlan_present ? 1 : 0, &ip_off);
	}
	if (!match_parse_ip(skb, ip_off, version, &seg))
		return 0;
	u64 now = bpf_ktime_get_ns();
	u32 verdict = match_step(skb, 0, &seg, now) & KEEP_AMOUNT;
	if (verdict == KEEP_HOLD) {
		if (!syn_token(now)) {
			count(SMC_COUNTER_SYNS_DEFERRED);
			return 0;
		}
		verdict = KEEP_HEADERS;
	}
	return match_keep_bytes(&seg, verdict);
}

int smc_clc_filter(struct __sk_buff *skb)
{
	count(SMC_COUNTER_SEEN_BY_FILTER);
	u32 keep = decide(skb);
	if (keep)
		count(SMC_COUNTER_KEPT_BY_FILTER);
	return keep;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * smc_match.h -- the SMC-relevance rule in C, shared by the two C engines:
 *
 *   smctrace/match/_engine.c   offline (capture files) and the live frame parser
 *   smctrace/bpf/clc.c         the eBPF socket filter (compiled by BCC)
 *
 * It is a step-by-step twin of smctrace/match/reference.py (the Python reference; read
 * its docstrings for the why) and takes every constant from smc_rule.h, which is
 * generated from smctrace/match/rule.py.  tests/support/match_cases.py runs one case
 * table against all engines.
 *
 * Written for the eBPF verifier: every load is preceded by an explicit length check, all
 * loops have constant bounds, per-direction state is reached through constant offsets
 * (the callers branch on the direction), and nothing recurses.
 *
 * The including engine defines, before including this file:
 *   MATCH_CTX                       the frame (struct __sk_buff *, or a byte buffer)
 *   MATCH_LEN(ctx)                  its length in bytes
 *   MATCH_U8/U16/U32(ctx, off)      big-endian loads (the callers have checked bounds)
 *   MATCH_STATE                     the engine's tables (passed through untouched)
 *   MATCH_GRACE_NS(st)              the late-Decline grace, in nanoseconds
 *   match_follow_lookup(st, key)    -> struct match_conn * or NULL
 *   match_follow_insert(st, key, c) -> struct match_conn * (the stored copy) or NULL
 *   match_follow_delete(st, key)
 *   match_pending_lookup/insert/delete(st, key[, c])   the same for pending SYNs
 *   match_promote(st, key, c)       pending -> followed; -> the followed copy or NULL
 *   match_pending_release(st, key)  a pending SYN was answered and is forgotten
 *                                   (both: its held SYN, if any, crosses first)
 *   match_count(st, counter)        bump a MATCH_COUNT_* counter
 *   match_plain_syn(st, seg)        a client SYN without the SMC option was seen
 */
#ifndef SMC_MATCH_H
#define SMC_MATCH_H

/* Verdicts: how much of the frame crosses (reference.Keep). */
#define KEEP_DROP 0
#define KEEP_HEADERS 1
#define KEEP_HEAD8 2
#define KEEP_PAYLOAD 3
#define KEEP_HOLD 4
#define KEEP_AMOUNT 0x0f  /* the KEEP_* value without the flags below */
#define KEEP_RELEASE 0x10 /* or-ed in: the connection's held SYN crosses first */
/* or-ed in: this segment began following a connection whose start was not seen (the
 * offline engine holds it until the connection shows more; the kernel filter passes it) */
#define KEEP_PICKUP 0x20

#define MATCH_NO_DIR 2 /* client_dir when the SYN was not seen */

/* Counters every engine keeps (match_count). */
#define MATCH_COUNT_SMC_SYN 0    /* new SMC-option SYNs (pending connections) */
#define MATCH_COUNT_ANSWERED 1   /* pending connections that got an answer */
#define MATCH_COUNT_UNANSWERED 2 /* pending connections forgotten without one */
#define MATCH_COUNTERS 3

struct match_key {
	u32 addr_lo[4]; /* the end whose (address, port) compares lower */
	u32 addr_hi[4];
	u16 port_lo;
	u16 port_hi;
	u8 family; /* 4 or 6 */
	u8 pad[3];
};

struct match_dir {
	u64 partial;   /* header bytes at `next` seen so far, big-endian */
	u32 base;      /* sequence number of the direction's first CLC byte */
	u32 limit;     /* payload from here on is not CLC */
	u32 next;      /* where the next CLC header starts */
	u8 partial_len;
	u8 anchored;
	u8 closed;     /* the phase ended before the direction was anchored */
	u8 pad;
};

struct match_conn {
	struct match_dir dir0; /* from the lower end */
	struct match_dir dir1;
	u64 confirm_ns; /* when a Confirm was seen, 0 = not yet */
	u64 syn_ns;
	u32 client_isn;
	u8 client_dir; /* MATCH_NO_DIR: the SYN was not seen */
	u8 pending;
	u8 pad[2];
};

/* One TCP segment, located in the frame. */
struct match_segment {
	struct match_key key;
	u32 seq;
	u32 ack;
	u32 tcp_off;      /* TCP header */
	u32 payload_off;  /* TCP payload */
	u32 captured_end; /* end of the captured payload (bounded by the IP length) */
	u32 payload_len;  /* payload length on the wire */
	u32 src_off;      /* source address (the destination follows) */
	u16 sport;
	u16 dport;
	u8 flags;
	u8 dir;     /* 0: from the lower end */
	u8 version; /* 4 or 6 */
	u8 pad;
};

static __always_inline int match_seq_before(u32 a, u32 b)
{
	return (s32)(a - b) < 0;
}

/* --- parsing (reference.parse) ---------------------------------------------------------- */

/* Follow VLAN tags from the EtherType at type_off; returns the IP version (0: not IP) and
 * sets *ip_off.  `tags` counts tags already taken out of band. */
static __always_inline u32 match_after_ethertype(MATCH_CTX ctx, u32 type_off, u32 ip_off,
						 u32 tags, u32 *out_off)
{
	u32 len = MATCH_LEN(ctx);
	u32 ethertype;
	if (type_off + 2 > len)
		return 0;
	ethertype = MATCH_U16(ctx, type_off);
#pragma unroll
	for (int i = 0; i < SMC_MAX_VLAN_TAGS + 1; i++) {
		if (!SMC_IS_VLAN_TPID(ethertype))
			break;
		tags++;
		if (tags > SMC_MAX_VLAN_TAGS || ip_off + 4 > len)
			return 0;
		ethertype = MATCH_U16(ctx, ip_off + 2);
		ip_off += 4;
	}
	if (SMC_IS_VLAN_TPID(ethertype))
		return 0;
	*out_off = ip_off;
	if (ethertype == SMC_ETHERTYPE_IPV4)
		return 4;
	if (ethertype == SMC_ETHERTYPE_IPV6)
		return 6;
	return 0;
}

/* The TCP segment of an IP packet at ip_off; 0 if not first-fragment TCP or cut. */
static __always_inline int match_parse_ip(MATCH_CTX ctx, u32 ip_off, u32 version,
					  struct match_segment *seg)
{
	u32 len = MATCH_LEN(ctx);
	u32 l4 = 0, ip_end = 0;
	u32 src[4] = {}, dst[4] = {};

	if (version == 4) {
		if (ip_off + 20 > len)
			return 0;
		u32 vihl = MATCH_U8(ctx, ip_off);
		u32 ihl = (vihl & 0x0f) * 4;
		if (vihl >> 4 != 4 || ihl < 20 || ip_off + ihl > len)
			return 0;
		if (MATCH_U8(ctx, ip_off + 9) != SMC_IPPROTO_TCP)
			return 0;
		if (MATCH_U16(ctx, ip_off + 6) & 0x1fff)
			return 0; /* not the first fragment */
		u32 total = MATCH_U16(ctx, ip_off + 2);
		if (total == 0)
			ip_end = len; /* TSO / BIG TCP on the sender: the capture is all there is */
		else if (total < ihl)
			return 0;
		else
			ip_end = ip_off + total;
		src[0] = MATCH_U32(ctx, ip_off + 12);
		dst[0] = MATCH_U32(ctx, ip_off + 16);
		seg->src_off = ip_off + 12;
		seg->key.family = 4;
		l4 = ip_off + ihl;
	} else if (version == 6) {
		if (ip_off + 40 > len || MATCH_U8(ctx, ip_off) >> 4 != 6)
			return 0;
		u32 payload = MATCH_U16(ctx, ip_off + 4);
		ip_end = payload ? ip_off + 40 + payload : len;
		u32 limit = ip_end < len ? ip_end : len;
#pragma unroll
		for (int i = 0; i < 4; i++) {
			src[i] = MATCH_U32(ctx, ip_off + 8 + 4 * i);
			dst[i] = MATCH_U32(ctx, ip_off + 24 + 4 * i);
		}
		u32 nexthdr = MATCH_U8(ctx, ip_off + 6);
		u32 cursor = ip_off + 40;
		int found = 0;
		for (int i = 0; i < SMC_MAX_IPV6_EXT_HEADERS + 1; i++) {
			if (nexthdr == SMC_IPPROTO_TCP) {
				found = 1;
				break;
			}
			if (cursor + 8 > limit)
				return 0; /* every extension header is at least 8 bytes */
			u32 hlen;
			if (SMC_IS_IPV6_EXT_GENERIC(nexthdr)) {
				hlen = (MATCH_U8(ctx, cursor + 1) + 1) * 8;
			} else if (nexthdr == SMC_IPV6_EXT_FRAGMENT) {
				if (MATCH_U16(ctx, cursor + 2) & 0xfff8)
					return 0; /* not the first fragment */
				hlen = 8;
			} else if (nexthdr == SMC_IPV6_EXT_AH) {
				hlen = (MATCH_U8(ctx, cursor + 1) + 2) * 4;
			} else {
				return 0; /* ESP, no next header, UDP, ...: no TCP header */
			}
			nexthdr = MATCH_U8(ctx, cursor);
			cursor += hlen;
		}
		if (!found)
			return 0;
		seg->src_off = ip_off + 8;
		seg->key.family = 6;
		l4 = cursor;
	} else {
		return 0;
	}

	u32 captured_end = ip_end < len ? ip_end : len;
	if (l4 + 20 > captured_end)
		return 0;
	u32 doff = (MATCH_U8(ctx, l4 + 12) >> 4) * 4;
	/* A header longer than the IP packet is malformed; one cut by the snap length is
	 * truncated: either way there is no segment. */
	if (doff < 20 || l4 + doff > captured_end)
		return 0;
	u32 sport = MATCH_U16(ctx, l4);
	u32 dport = MATCH_U16(ctx, l4 + 2);
	seg->sport = sport;
	seg->dport = dport;
	seg->seq = MATCH_U32(ctx, l4 + 4);
	seg->ack = MATCH_U32(ctx, l4 + 8);
	seg->flags = MATCH_U8(ctx, l4 + 13);
	seg->tcp_off = l4;
	seg->payload_off = l4 + doff;
	seg->captured_end = captured_end;
	seg->payload_len = ip_end - (l4 + doff);
	seg->version = version;

	/* The key is direction-normalised: (address, port) pairs compared as big-endian
	 * numbers, lower first (reference.flow_key compares the same bytes). */
	int src_lower = 0, decided = 0;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (!decided && src[i] != dst[i]) {
			src_lower = src[i] < dst[i];
			decided = 1;
		}
	}
	if (!decided)
		src_lower = sport <= dport;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		seg->key.addr_lo[i] = src_lower ? src[i] : dst[i];
		seg->key.addr_hi[i] = src_lower ? dst[i] : src[i];
	}
	seg->key.port_lo = src_lower ? sport : dport;
	seg->key.port_hi = src_lower ? dport : sport;
	seg->dir = src_lower ? 0 : 1;
	return 1;
}

/* Does the TCP header carry the SMC option (reference.has_smc_option)? */
static __always_inline int match_has_smc_option(MATCH_CTX ctx, const struct match_segment *seg)
{
	u32 off = seg->tcp_off + 20;
	u32 end = seg->payload_off;
#pragma nounroll
	for (int i = 0; i < SMC_TCP_MAX_OPTION_BYTES; i++) {
		if (off >= end)
			return 0;
		u32 kind = MATCH_U8(ctx, off);
		if (kind == SMC_TCPOPT_EOL)
			return 0;
		if (kind == SMC_TCPOPT_NOP) {
			off += 1;
			continue;
		}
		if (off + 2 > end)
			return 0;
		u32 olen = MATCH_U8(ctx, off + 1);
		if (olen < 2 || off + olen > end)
			return 0; /* malformed option list: stop like the kernel does */
		if (kind == SMC_TCPOPT_EXP && olen >= SMC_OPTION_MIN_LEN && !(olen & 1) &&
		    MATCH_U32(ctx, off + 2) == SMC_OPTION_EXID)
			return 1;
		off += olen;
	}
	return 0;
}

/* --- the CLC header test (rule.header_length) ------------------------------------------- */

static __always_inline u32 match_header_length(u64 header)
{
	u32 eyecatcher = header >> 32;
	u32 type = (header >> 24) & 0xff;
	u32 length = (header >> 8) & 0xffff;
	u32 version = (header & 0xff) >> 4;
	if (eyecatcher != SMC_EYECATCHER_SMCR && eyecatcher != SMC_EYECATCHER_SMCD)
		return 0;
	if (type < SMC_CLC_TYPE_PROPOSAL || type > SMC_CLC_TYPE_DECLINE ||
	    version < SMC_CLC_VERSION_MIN)
		return 0;
	if (length < SMC_CLC_MIN_LEN || length > SMC_CLC_MAX_LEN)
		return 0;
	return length;
}

/* The CLC header at the start of the segment's payload, if plausible (0: not). */
static __always_inline u32 match_payload_header(MATCH_CTX ctx, const struct match_segment *seg)
{
	u32 off = seg->payload_off;
	if (seg->captured_end - off < SMC_CLC_HEADER_LEN)
		return 0;
	u64 header = ((u64)MATCH_U32(ctx, off) << 32) | MATCH_U32(ctx, off + 4);
	return match_header_length(header);
}

/* --- the state machine (reference.Matcher) ---------------------------------------------- */

static __always_inline void match_anchor(struct match_dir *d, u32 seq)
{
	if (d->closed)
		return;
	d->anchored = 1;
	d->base = seq;
	d->next = seq;
	d->limit = seq + SMC_CLC_PHASE_BYTES;
	d->partial = 0;
	d->partial_len = 0;
}

static __always_inline void match_end_dir(struct match_dir *d)
{
	if (d->anchored) {
		if (match_seq_before(d->next, d->limit))
			d->limit = d->next;
	} else {
		d->closed = 1;
	}
}

static __always_inline void match_end_phase(struct match_conn *c)
{
	match_end_dir(&c->dir0);
	match_end_dir(&c->dir1);
}

/* A payload segment of a followed connection in direction d (reference._payload). */
static __always_inline u32 match_payload(MATCH_CTX ctx, MATCH_STATE st,
					 const struct match_segment *seg, struct match_conn *c,
					 struct match_dir *d, u64 now)
{
	u32 start = seg->payload_off;
	u32 captured = seg->captured_end - start;
	u32 seq = seg->seq;

	/* Signed: confirm_ns is `now | 1`, one past a frame of the same nanosecond. */
	if (c->confirm_ns && (s64)(now - c->confirm_ns) > (s64)MATCH_GRACE_NS(st))
		match_end_phase(c); /* no late Decline came: the handshake is over */
	if (!d->anchored) {
		if (!match_payload_header(ctx, seg))
			return KEEP_DROP;
		match_anchor(d, seq);
		if (!d->anchored)
			return KEEP_DROP;
	}
	if ((s32)(seq + seg->payload_len - d->base) <= 0)
		return KEEP_DROP; /* entirely before the direction's first CLC byte */
	if (!match_seq_before(seq, d->limit))
		return KEEP_DROP; /* beyond the CLC phase */

	u32 keep = KEEP_PAYLOAD;
#pragma unroll
	for (int m = 0; m < SMC_MAX_MESSAGES_PER_SEGMENT; m++) {
		s32 rel = (s32)(d->next + d->partial_len - seq);
		if (rel < 0) {
			/* A hole before this segment: a CLC header right at its start
			 * resynchronises (the capture missed a message). */
			if (d->partial_len || !match_payload_header(ctx, seg))
				break;
			d->next = seq;
			rel = 0;
		}
		if ((u32)rel >= captured)
			break;
		u32 avail = captured - (u32)rel;
		u32 off = start + (u32)rel;
		/* Gather the missing header bytes, one by one (at most 8). */
#pragma unroll
		for (int i = 0; i < SMC_CLC_HEADER_LEN; i++) {
			if (d->partial_len >= SMC_CLC_HEADER_LEN || (u32)i >= avail)
				break;
			d->partial = (d->partial << 8) | MATCH_U8(ctx, off + i);
			d->partial_len++;
		}
		if (d->partial_len < SMC_CLC_HEADER_LEN)
			break; /* the header continues in the next segment */
		u64 header = d->partial;
		d->partial = 0;
		d->partial_len = 0;
		u32 length = match_header_length(header);
		if (!length) {
			/* Not CLC where a header must start: the phase is over.  The first such
			 * segment shows its first bytes; a message before it in the segment is
			 * needed whole. */
			keep = d->next == seq ? KEEP_HEAD8 : KEEP_PAYLOAD;
			match_end_phase(c);
			break;
		}
		d->next += length;
		u32 type = (header >> 24) & 0xff;
		if (type == SMC_CLC_TYPE_DECLINE) {
			match_end_phase(c);
			break;
		}
		if (type == SMC_CLC_TYPE_CONFIRM && !c->confirm_ns)
			c->confirm_ns = now | 1; /* never 0 = "not yet" */
	}
	return keep;
}

static __always_inline void match_new_conn(struct match_conn *c)
{
	__builtin_memset(c, 0, sizeof(*c));
	c->client_dir = MATCH_NO_DIR;
}

/* A SYN or SYN-ACK (reference._syn). */
static __always_inline u32 match_syn(MATCH_CTX ctx, MATCH_STATE st,
				     const struct match_segment *seg, u64 now)
{
	int option = match_has_smc_option(ctx, seg);
	struct match_conn *c = match_follow_lookup(st, &seg->key);
	struct match_conn *p = match_pending_lookup(st, &seg->key);
	struct match_conn *known = c ? c : p;

	if (!(seg->flags & SMC_TCP_ACK)) { /* the client's SYN */
		if (known && known->client_dir == seg->dir && known->client_isn == seg->seq)
			return KEEP_DROP; /* retransmitted, or the same SYN seen twice */
		if (p) {
			match_count(st, MATCH_COUNT_UNANSWERED);
			match_pending_delete(st, &seg->key);
		}
		if (c)
			match_follow_delete(st, &seg->key); /* a new connection on this 4-tuple */
		if (!option) {
			match_plain_syn(st, seg);
			return KEEP_DROP;
		}
		struct match_conn fresh;
		match_new_conn(&fresh);
		fresh.pending = 1;
		fresh.client_dir = seg->dir;
		fresh.client_isn = seg->seq;
		fresh.syn_ns = now;
		if (seg->dir)
			match_anchor(&fresh.dir1, seg->seq + 1);
		else
			match_anchor(&fresh.dir0, seg->seq + 1);
		match_count(st, MATCH_COUNT_SMC_SYN);
		match_pending_insert(st, &seg->key, &fresh);
		return KEEP_HOLD;
	}
	/* the server's SYN-ACK */
	u32 release = p ? KEEP_RELEASE : 0;
	if (!option) {
		if (!known)
			return KEEP_DROP;
		if (p) {
			match_count(st, MATCH_COUNT_ANSWERED);
			match_pending_release(st, &seg->key);
		}
		if (c)
			match_follow_delete(st, &seg->key);
		return KEEP_HEADERS | release; /* fallback in the TCP handshake */
	}
	if (!known) { /* the SYN was not seen */
		struct match_conn fresh;
		match_new_conn(&fresh);
		fresh.client_dir = seg->dir ? 0 : 1;
		c = match_follow_insert(st, &seg->key, &fresh);
	} else if (p) {
		match_count(st, MATCH_COUNT_ANSWERED);
		c = match_promote(st, &seg->key, p);
	}
	if (!c)
		return KEEP_HEADERS | release;
	if (seg->dir) {
		if (!c->dir1.anchored)
			match_anchor(&c->dir1, seg->seq + 1);
	} else {
		if (!c->dir0.anchored)
			match_anchor(&c->dir0, seg->seq + 1);
	}
	return KEEP_HEADERS | release;
}

/* The rule for one parsed segment: a KEEP_* verdict, possibly | KEEP_RELEASE | KEEP_PICKUP. */
static __always_inline u32 match_step(MATCH_CTX ctx, MATCH_STATE st,
				      const struct match_segment *seg, u64 now)
{
	if (seg->flags & SMC_TCP_SYN)
		return match_syn(ctx, st, seg, now);

	u32 release = 0, pickup = 0;
	struct match_conn *c = match_follow_lookup(st, &seg->key);
	if (!c) {
		/* Only a CLC header or FIN/RST can answer a pending SYN here (looking up the
		 * pending table for every ordinary data segment would cost every frame). */
		u32 header = match_payload_header(ctx, seg);
		struct match_conn *p = (header || (seg->flags & (SMC_TCP_FIN | SMC_TCP_RST)))
			? match_pending_lookup(st, &seg->key) : 0;
		if (p) {
			match_count(st, MATCH_COUNT_ANSWERED);
			c = match_promote(st, &seg->key, p);
			release = KEEP_RELEASE;
			if (!c)
				return KEEP_HEADERS | release;
		} else if (header) {
			/* A CLC header without a SYN: the capture began mid-handshake (or the
			 * table forgot the connection). */
			struct match_conn fresh;
			match_new_conn(&fresh);
			if (seg->dir)
				match_anchor(&fresh.dir1, seg->seq);
			else
				match_anchor(&fresh.dir0, seg->seq);
			c = match_follow_insert(st, &seg->key, &fresh);
			if (!c)
				return KEEP_PAYLOAD | KEEP_PICKUP;
			pickup = KEEP_PICKUP;
		} else {
			return KEEP_DROP;
		}
	}
	u32 keep = KEEP_DROP;
	if (seg->payload_len > 0) {
		if (seg->dir)
			keep = match_payload(ctx, st, seg, c, &c->dir1, now);
		else
			keep = match_payload(ctx, st, seg, c, &c->dir0, now);
	}
	if (seg->flags & (SMC_TCP_FIN | SMC_TCP_RST)) {
		match_follow_delete(st, &seg->key);
		if (keep < KEEP_HEADERS)
			keep = KEEP_HEADERS;
	}
	return keep | release | pickup;
}

/* Bytes of the frame a verdict keeps (reference.TcpView.keep_bytes). */
static __always_inline u32 match_keep_bytes(const struct match_segment *seg, u32 keep)
{
	u32 captured = seg->captured_end - seg->payload_off;
	switch (keep & KEEP_AMOUNT) {
	case KEEP_HEADERS:
		return seg->payload_off;
	case KEEP_HEAD8:
		return seg->payload_off + (captured < SMC_CLC_HEADER_LEN ? captured : SMC_CLC_HEADER_LEN);
	case KEEP_PAYLOAD:
		return seg->payload_off + (captured < SMC_PAYLOAD_CAP ? captured : SMC_PAYLOAD_CAP);
	default:
		return 0;
	}
}

#endif /* SMC_MATCH_H */

// SPDX-License-Identifier: GPL-2.0-only
/*
 * smctrace socket filter: lets only the SMC CLC handshake of TCP connections cross into
 * user space.  Loaded with BCC as a BPF_PROG_TYPE_SOCKET_FILTER program and attached to
 * AF_PACKET sockets; the return value is the number of bytes of the frame to keep
 * (0 = drop).
 *
 * What crosses (wire format: docs clc-protocol.md sections 1, 2 and 6):
 *   - SYN / SYN-ACK carrying the SMC TCP option (kind 254, len >= 6, ExID E2D4C3D9):
 *     headers only; the connection is remembered in an LRU hash.
 *   - SYN-ACK without the option for a remembered connection: headers (fallback without
 *     CLC); the connection is forgotten.
 *   - Payload of a remembered connection while its CLC phase lasts: headers + payload
 *     (capped).  The phase is followed from the CLC headers themselves: per direction the
 *     sequence number where the next CLC header must start is tracked, so continuation
 *     segments of a message split across segments are recognised without looking like
 *     CLC.  The phase ends at a Decline, a grace period after the client's Confirm (a
 *     late Decline after SMC-R first contact can still come), or at the first payload
 *     that is not CLC or lies beyond a hole longer than any CLC message (whose headers
 *     are kept once).
 *   - FIN / RST of a remembered connection: headers; the connection is forgotten.
 *   - A payload starting with a plausible CLC header even without state (capture started
 *     mid-handshake, or the LRU evicted the connection): kept, and the connection is
 *     remembered from there.
 *   Everything else: 0 bytes.
 *
 * Compile-time parameters (-D):
 *   SMC_L2_MODE          0: frames start at the IP header (SOCK_DGRAM sockets: header-less
 *                           devices such as tun/wireguard, "-i any"; BPF test runs)
 *                        1: frames start with an Ethernet header, up to 2 VLAN tags in it
 *   SMC_SNAP_PAYLOAD     payload bytes kept per segment (default 1024)
 *   SMC_CONFIRM_GRACE_MS how long after the client's Confirm a Decline is still expected
 *   SMC_MAX_CONNECTIONS  LRU size of the connection table
 *
 * Frames are read with load_byte/half/word (LD_ABS/LD_IND): socket filters have no direct
 * packet access, and a read past the end ends the program with 0 (= drop), which is the
 * right answer for a frame too short to hold what we look for.  Lengths are nevertheless
 * checked before every read that could legitimately fall outside the frame.
 */
/* BCC already includes uapi/linux/bpf.h.  The few other constants are stable kernel ABI
 * and defined here: including uapi/linux/in.h and friends costs ~0.3 s of compile time,
 * which is most of the start-up budget. */
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define ETH_P_QINQ1 0x9100 /* pre-standard QinQ outer tag */
#define PACKET_OUTGOING 4
#define IPPROTO_TCP 6

#ifndef SMC_L2_MODE
#define SMC_L2_MODE 1
#endif
#ifndef SMC_SNAP_PAYLOAD
#define SMC_SNAP_PAYLOAD 1024
#endif
#ifndef SMC_CONFIRM_GRACE_MS
/* A late Decline (SMC-R first contact, link set-up failed) came 5.31 s after the Confirm
 * on a real 6.12 client (first LLC wait 5 s + short wait); smctrace passes the user-space
 * tracker's value. After a successful handshake TCP carries no data, so a generous grace
 * costs nothing. */
#define SMC_CONFIRM_GRACE_MS 10000
#endif
#ifndef SMC_MAX_CONNECTIONS
#define SMC_MAX_CONNECTIONS 65536
#endif

#define L2_NONE 0
#define L2_ETHERNET 1

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_EXP 254
#define TCPOPT_SMC_MAGIC 0xE2D4C3D9u
#define TCP_MAX_OPTION_BYTES 40

#define CLC_EYECATCHER_SMCR 0xE2D4C3D9u
#define CLC_EYECATCHER_SMCD 0xE2D4C3C4u
#define CLC_HEADER_LEN 8
#define CLC_MIN_LEN 28   /* v1 Decline */
#define CLC_MAX_LEN 652  /* largest v2 Proposal */
#define CLC_TYPE_CONFIRM 3
#define CLC_TYPE_DECLINE 4
/* CLC messages looked at within one segment; Linux sends each message on its own, a
 * coalesced segment holds at most a few. */
#define CLC_MAX_MESSAGES_PER_SEGMENT 4

#define IPV6_MAX_EXT_HEADERS 6
#define LOOPBACK_IFINDEX 1 /* the kernel gives lo this index in every netns */

enum counter_index { COUNTER_SEEN = 0, COUNTER_KEPT = 1, COUNTER_MAX = 2 };

enum clc_phase { PHASE_CLC = 0, PHASE_ENDED = 1 };

/* Connection key, direction-normalised: the (address, port) pair that compares lower
 * is "lo".  Addresses are kept as loaded by load_word (host order), IPv4 in word 0. */
struct conn_key {
    u32 addr_lo[4];
    u32 addr_hi[4];
    u16 port_lo;
    u16 port_hi;
    u8 family;   /* 4 or 6 */
    u8 pad[3];
};

struct conn_state {
    u64 confirm_ns;      /* when the client's Confirm was seen, 0 = not yet */
    u32 next_clc_seq[2]; /* per direction (0 = lo->hi): seq where the next CLC header starts */
    u8 have_next[2];     /* next_clc_seq[d] is known */
    u8 phase;            /* enum clc_phase */
    u8 pad[5];
};

BPF_TABLE("lru_hash", struct conn_key, struct conn_state, smc_connections, SMC_MAX_CONNECTIONS);
BPF_PERCPU_ARRAY(smc_counters, u64, COUNTER_MAX);

/* Everything the decision needs about one TCP segment. */
struct segment {
    struct conn_key key;
    u32 seq;
    u32 tcp_off;      /* offset of the TCP header from the start of the frame */
    u32 payload_off;  /* offset of the TCP payload from the start of the frame */
    u32 payload_len;  /* payload bytes in this frame (bounded by the IP length) */
    u8 flags;
    u8 dir;           /* 0: lo -> hi, 1: hi -> lo */
};

static __always_inline void count(u32 index)
{
    u64 *value = smc_counters.lookup(&index);
    if (value)
        *value += 1;
}

static __always_inline int seq_before(u32 a, u32 b)
{
    return (s32)(a - b) < 0;
}

/* Per-direction accessors with constant indexes: a variable index into a stack or map
 * value array makes clang emit pointer arithmetic the verifier rejects. */
static __always_inline void set_next_clc_seq(struct conn_state *st, u32 dir, u32 seq)
{
    if (dir) {
        st->next_clc_seq[1] = seq;
        st->have_next[1] = 1;
    } else {
        st->next_clc_seq[0] = seq;
        st->have_next[0] = 1;
    }
}

static __always_inline int get_next_clc_seq(const struct conn_state *st, u32 dir, u32 *seq)
{
    if (dir) {
        *seq = st->next_clc_seq[1];
        return st->have_next[1];
    }
    *seq = st->next_clc_seq[0];
    return st->have_next[0];
}

/* Offset of the IP header, and which IP version to expect (0 = not IP). */
static __always_inline u32 l3_offset(struct __sk_buff *skb, u32 *ip_version)
{
    if (SMC_L2_MODE == L2_NONE) {
        if (skb->len < 1)
            return 0;
        *ip_version = load_byte(skb, 0) >> 4;
        return 0;
    }
    if (skb->len < ETH_HLEN)
        return 0;
    u32 type_off = 12;
    u32 ethertype = load_half(skb, type_off);
    /* 802.1Q / 802.1ad tags still in the frame (QinQ inner tag, transmitted frames). */
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD && ethertype != ETH_P_QINQ1)
            break;
        type_off += 4;
        if (skb->len < type_off + 2)
            return 0;
        ethertype = load_half(skb, type_off);
    }
    if (ethertype == ETH_P_IP)
        *ip_version = 4;
    else if (ethertype == ETH_P_IPV6)
        *ip_version = 6;
    return type_off + 2;
}

/* Fills *seg from the frame; returns 0 when it is not a TCP segment we can look at. */
static __always_inline int parse_segment(struct __sk_buff *skb, struct segment *seg)
{
    u32 ip_version = 0;
    u32 l3 = l3_offset(skb, &ip_version);
    u32 l4, ip_end, nexthdr;
    u32 src[4] = {}, dst[4] = {};

    if (ip_version == 4) {
        if (skb->len < l3 + 20)
            return 0;
        u32 ihl = (load_byte(skb, l3) & 0x0f) * 4;
        if (ihl < 20 || load_byte(skb, l3 + 9) != IPPROTO_TCP)
            return 0;
        /* A non-first fragment has no TCP header at its start. */
        if (load_half(skb, l3 + 6) & 0x1fff)
            return 0;
        u32 total = load_half(skb, l3 + 2);
        /* 0 = GSO super-packet larger than 64 KiB: the frame length is the truth. */
        ip_end = total ? l3 + total : skb->len;
        src[0] = load_word(skb, l3 + 12);
        dst[0] = load_word(skb, l3 + 16);
        seg->key.family = 4;
        l4 = l3 + ihl;
    } else if (ip_version == 6) {
        if (skb->len < l3 + 40)
            return 0;
        u32 payload = load_half(skb, l3 + 4);
        ip_end = payload ? l3 + 40 + payload : skb->len;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            src[i] = load_word(skb, l3 + 8 + 4 * i);
            dst[i] = load_word(skb, l3 + 24 + 4 * i);
        }
        nexthdr = load_byte(skb, l3 + 6);
        l4 = l3 + 40;
        /* Bounded walk over extension headers up to TCP. */
#pragma unroll
        for (int i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
            if (nexthdr == IPPROTO_TCP)
                break;
            if (skb->len < l4 + 8)
                return 0;
            u32 next = load_byte(skb, l4);
            if (nexthdr == 0 /* hop-by-hop */ || nexthdr == 43 /* routing */ ||
                nexthdr == 60 /* destination options */) {
                l4 += (load_byte(skb, l4 + 1) + 1) * 8;
            } else if (nexthdr == 44 /* fragment */) {
                if (load_half(skb, l4 + 2) & 0xfff8)
                    return 0; /* non-first fragment */
                l4 += 8;
            } else if (nexthdr == 51 /* authentication header */) {
                l4 += (load_byte(skb, l4 + 1) + 2) * 4;
            } else {
                return 0; /* ESP, no next header, or not TCP */
            }
            nexthdr = next;
        }
        if (nexthdr != IPPROTO_TCP)
            return 0;
        seg->key.family = 6;
    } else {
        return 0;
    }

    if (ip_end > skb->len)
        ip_end = skb->len; /* Ethernet padding is below ip_end; a short frame is cut here */
    if (skb->len < l4 + 20 || ip_end < l4 + 20)
        return 0;
    u32 doff = (load_byte(skb, l4 + 12) >> 4) * 4;
    if (doff < 20 || ip_end < l4 + doff)
        return 0;
    u32 sport = load_half(skb, l4);
    u32 dport = load_half(skb, l4 + 2);
    seg->seq = load_word(skb, l4 + 4);
    seg->flags = load_byte(skb, l4 + 13);
    seg->tcp_off = l4;
    seg->payload_off = l4 + doff;
    seg->payload_len = ip_end - (l4 + doff);

    /* Direction normalisation: compare (address, port) of both ends. */
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

/* Does the TCP header carry the SMC experimental option anywhere among its options? */
static __always_inline int has_smc_option(struct __sk_buff *skb, const struct segment *seg)
{
    u32 off = seg->tcp_off + 20;
    u32 end = seg->payload_off;
    /* One option per iteration; 40 iterations cover 40 bytes of single-byte NOPs.  Not
     * unrolled: the kernel verifies bounded loops, and unrolling doubles compile time. */
#pragma nounroll
    for (int i = 0; i < TCP_MAX_OPTION_BYTES; i++) {
        if (off >= end)
            return 0;
        u32 kind = load_byte(skb, off);
        if (kind == TCPOPT_EOL)
            return 0;
        if (kind == TCPOPT_NOP) {
            off += 1;
            continue;
        }
        if (off + 2 > end)
            return 0;
        u32 len = load_byte(skb, off + 1);
        if (len < 2 || off + len > end)
            return 0; /* malformed option list: stop like the kernel does */
        if (kind == TCPOPT_EXP && len >= 6 && load_word(skb, off + 2) == TCPOPT_SMC_MAGIC)
            return 1;
        off += len;
    }
    return 0;
}

/* Length of the CLC message whose header starts at frame offset off, or 0 when the bytes
 * there are not a plausible CLC header (eyecatcher, type 1-4, version 1-2, length
 * 28..652).  The caller guarantees the 8 header bytes are inside the frame. */
static __always_inline u32 clc_message_len(struct __sk_buff *skb, u32 off, u32 *type)
{
    u32 eyecatcher = load_word(skb, off);
    if (eyecatcher != CLC_EYECATCHER_SMCR && eyecatcher != CLC_EYECATCHER_SMCD)
        return 0;
    u32 msg_type = load_byte(skb, off + 4);
    u32 len = load_half(skb, off + 5);
    u32 version = load_byte(skb, off + 7) >> 4;
    if (msg_type < 1 || msg_type > 4 || version < 1 || version > 2)
        return 0;
    if (len < CLC_MIN_LEN || len > CLC_MAX_LEN)
        return 0;
    *type = msg_type;
    return len;
}

static __always_inline u32 keep_headers(const struct segment *seg)
{
    return seg->payload_off;
}

static __always_inline u32 keep_payload(const struct segment *seg)
{
    u32 len = seg->payload_len;
    if (len > SMC_SNAP_PAYLOAD)
        len = SMC_SNAP_PAYLOAD;
    return seg->payload_off + len;
}

/*
 * Payload of a remembered connection in its CLC phase.  Walks the CLC headers that start
 * inside this segment (at the sequence number where the direction's next header is
 * expected), advancing that expectation by each message's length, and ends the phase at
 * a Decline or at bytes that are not CLC.  Returns the bytes to keep.
 */
static __always_inline u32 follow_clc_payload(struct __sk_buff *skb, const struct segment *seg,
                                              struct conn_state *st)
{
    u32 seg_start = seg->seq;
    u32 seg_end = seg->seq + seg->payload_len;
    u32 next = 0;
    if (!get_next_clc_seq(st, seg->dir, &next))
        next = seg_start;
    u32 type = 0;

    if (seq_before(next, seg_start)) {
        /* Bytes before this segment were never seen here (reordering, capture loss).
         * Resynchronise if a CLC header starts the segment.  A hole shorter than a CLC
         * message may be a reordered continuation: show it by the headers alone and wait
         * for the missing segment.  A longer hole cannot be CLC (a direction never has
         * more than one message outstanding): the handshake is over. */
        if (seg->payload_len >= CLC_HEADER_LEN && clc_message_len(skb, seg->payload_off, &type))
            next = seg_start;
        else {
            if (seg_start - next > CLC_MAX_LEN)
                st->phase = PHASE_ENDED;
            return keep_headers(seg);
        }
    }
    if (!seq_before(next, seg_end))
        return keep_payload(seg); /* inside the current message: continuation or resend */

#pragma unroll
    for (int i = 0; i < CLC_MAX_MESSAGES_PER_SEGMENT; i++) {
        u32 off = seg->payload_off + (next - seg_start);
        if (off + CLC_HEADER_LEN > seg->payload_off + seg->payload_len)
            break; /* header split across segments: keep, and look again at the next one */
        u32 len = clc_message_len(skb, off, &type);
        if (len == 0) {
            st->phase = PHASE_ENDED;
            /* Application data: its first segment's headers show where it started.  If a
             * CLC message preceded it in this segment, that message is needed whole. */
            if (next == seg_start)
                return keep_headers(seg);
            break;
        }
        next += len;
        if (type == CLC_TYPE_DECLINE) {
            st->phase = PHASE_ENDED;
            break;
        }
        if (type == CLC_TYPE_CONFIRM && st->confirm_ns == 0)
            st->confirm_ns = bpf_ktime_get_ns() | 1; /* never 0 = "not yet" */
        if (!seq_before(next, seg_end))
            break;
    }
    set_next_clc_seq(st, seg->dir, next);
    return keep_payload(seg);
}

static __always_inline u32 decide(struct __sk_buff *skb)
{
    struct segment seg = {};
    struct conn_state *st;
    u32 type = 0;

    /* On lo every frame passes twice (outgoing, then incoming): look at it once. */
    if (skb->pkt_type == PACKET_OUTGOING && skb->ifindex == LOOPBACK_IFINDEX)
        return 0;
    if (!parse_segment(skb, &seg))
        return 0;

    if (seg.flags & TCP_SYN) {
        int smc = has_smc_option(skb, &seg);
        if (!(seg.flags & TCP_ACK)) {
            if (!smc) {
                /* A new incarnation without SMC must not inherit an old entry. */
                if (smc_connections.lookup(&seg.key))
                    smc_connections.delete(&seg.key);
                return 0;
            }
            struct conn_state fresh = {};
            set_next_clc_seq(&fresh, seg.dir, seg.seq + 1);
            smc_connections.update(&seg.key, &fresh);
            return keep_headers(&seg);
        }
        st = smc_connections.lookup(&seg.key);
        if (!smc) {
            if (!st)
                return 0;
            /* The server declined SMC in the TCP handshake: no CLC will follow. */
            smc_connections.delete(&seg.key);
            return keep_headers(&seg);
        }
        if (!st) {
            struct conn_state fresh = {};
            smc_connections.update(&seg.key, &fresh);
            st = smc_connections.lookup(&seg.key);
            if (!st)
                return keep_headers(&seg);
        }
        set_next_clc_seq(st, seg.dir, seg.seq + 1);
        return keep_headers(&seg);
    }

    st = smc_connections.lookup(&seg.key);
    if (!st) {
        /* Stateless pick-up: a CLC header at the start of the payload. */
        if (seg.payload_len < CLC_HEADER_LEN || !clc_message_len(skb, seg.payload_off, &type))
            return 0;
        struct conn_state fresh = {};
        smc_connections.update(&seg.key, &fresh);
        st = smc_connections.lookup(&seg.key);
        if (!st)
            return keep_payload(&seg);
    }

    u32 keep = 0;
    if (seg.payload_len > 0 && st->phase == PHASE_CLC) {
        if (st->confirm_ns &&
            bpf_ktime_get_ns() - st->confirm_ns > (u64)SMC_CONFIRM_GRACE_MS * 1000000)
            st->phase = PHASE_ENDED; /* no late Decline came: the handshake is over */
        else
            keep = follow_clc_payload(skb, &seg, st);
    }
    if (seg.flags & (TCP_FIN | TCP_RST)) {
        smc_connections.delete(&seg.key);
        if (keep < seg.payload_off)
            keep = keep_headers(&seg);
    }
    return keep;
}

int smc_clc_filter(struct __sk_buff *skb)
{
    count(COUNTER_SEEN);
    u32 keep = decide(skb);
    if (keep)
        count(COUNTER_KEPT);
    return keep;
}

"""The SMC-relevance rule: which frames can matter for SMC, and every constant of it.

This module is the one place where the rule's numbers live.  Four engines apply the rule:

* the Python reference (:mod:`smctrace.match.reference`), also the offline fallback;
* the offline C engine (``smctrace/match/_engine.c``), which walks capture files;
* the eBPF socket filter (``smctrace/bpf/clc.c``), which runs in the kernel;
* the classic-BPF program (:mod:`smctrace.match.cbpf`), stateless.

The two C engines share their code (``smctrace/match/smc_match.h``) and take the constants
from :func:`c_header`, which the build (setup.py) and the eBPF loader write in front of
them; the cBPF generator and the Python reference import them from here.  One case table
(``tests/support/match_cases.py``) is run against all four.

The rule, per TCP connection (key: the 4-tuple, both directions):

1. Only first-fragment TCP over IPv4/IPv6 is looked at: at most :data:`MAX_VLAN_TAGS`
   VLAN tags, IPv6 extension headers of the kinds below, at most
   :data:`MAX_IPV6_EXT_HEADERS` of them.
2. A SYN carrying the SMC option (kind 254, even length >= 6, ExID E2D4C3D9) makes the
   connection *pending*; the SYN is held (offline) or passed under a rate limit (live).
   A SYN without the option forgets the 4-tuple.
3. An answer (SYN-ACK, payload, FIN/RST) makes a pending connection *followed*.  A SYN-ACK
   without the option ends it (fallback in the TCP handshake): its headers cross.
4. A followed connection's payload crosses (capped at :data:`PAYLOAD_CAP` bytes) while it
   lies within :data:`CLC_PHASE_BYTES` of the direction's first CLC byte and before the
   phase ended; the CLC headers are followed (also split across segments) to end the
   phase at a Decline, at bytes that are not CLC where a header must start (their first
   :data:`CLC_HEADER_LEN` bytes cross), or :data:`LATE_DECLINE_GRACE` after a Confirm.
5. FIN/RST of a followed connection: its headers cross and the connection is forgotten.
6. A payload that starts with a plausible CLC header (eyecatcher, type 1-4, version >= 1,
   length :data:`CLC_MIN_LEN`-:data:`CLC_MAX_LEN`) is followed even without a SYN.
"""

from __future__ import annotations

from typing import Final

# --- the SMC TCP option (reference section 1) ---------------------------------------------
TCPOPT_EOL: Final = 0
TCPOPT_NOP: Final = 1
TCPOPT_EXP: Final = 254
SMC_OPTION_EXID: Final = 0xE2D4C3D9  # "SMCR" in EBCDIC
SMC_OPTION_MIN_LEN: Final = 6  # kind, length, 4-byte ExID; Linux also wants it even
TCP_MAX_OPTION_BYTES: Final = 40

# --- the CLC header (reference section 2) -------------------------------------------------
EYECATCHER_SMCR: Final = 0xE2D4C3D9  # "SMCR"
EYECATCHER_SMCD: Final = 0xE2D4C3C4  # "SMCD"
EYECATCHER_R: Final = EYECATCHER_SMCR.to_bytes(4, "big")
EYECATCHER_D: Final = EYECATCHER_SMCD.to_bytes(4, "big")
CLC_HEADER_LEN: Final = 8
CLC_TRAILER_LEN: Final = 4
CLC_MIN_LEN: Final = 28  # a v1 Decline, the shortest message
CLC_MAX_LEN: Final = 652  # the largest v2 Proposal (sizeof smc_clc_msg_proposal_area)
CLC_TYPE_PROPOSAL: Final = 1
CLC_TYPE_ACCEPT: Final = 2
CLC_TYPE_CONFIRM: Final = 3
CLC_TYPE_DECLINE: Final = 4
CLC_VERSION_MIN: Final = 1  # Linux rejects version 0 and handles >= 2 by the v2 rules

# --- what crosses, and for how long -------------------------------------------------------
PAYLOAD_CAP: Final = 1024  # payload bytes kept per segment (a segment holds few messages)
# A direction's CLC bytes: Proposal (<= 652) + Confirm (<= 196) + Decline (44) = 892 for
# the client, less for the server.  Payload beyond this many bytes from the direction's
# first CLC byte cannot be CLC, whatever got lost on the way.
CLC_PHASE_BYTES: Final = 2048
MAX_MESSAGES_PER_SEGMENT: Final = 4  # CLC headers followed within one segment
# A Decline may follow the client's Confirm when the SMC-R link cannot be brought up over
# RoCE.  The reference says "up to ~3 s"; the 6.12 client in the real capture D7 declined
# TIMEOUT_CL 5.31 s after its Confirm (first LLC wait 5 s, then the 1 s short wait).
LATE_DECLINE_GRACE: Final = 10.0  # seconds, SMC-R (and the kernel filters, for any path)
LATE_DECLINE_GRACE_SMCD: Final = 2.0  # SMC-D has no LLC: only a quick server-side failure

# --- link layer and IP ----------------------------------------------------------------------
ETHERTYPE_IPV4: Final = 0x0800
ETHERTYPE_IPV6: Final = 0x86DD
VLAN_TPIDS: Final = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad, pre-standard QinQ
# Tags counted in the frame as on the wire (a tag the NIC took out of band counts too):
# a service tag and a customer tag (QinQ) is the deepest stack seen in practice.
MAX_VLAN_TAGS: Final = 2
IPPROTO_TCP: Final = 6
# TCP header flags
TCP_FIN: Final = 0x01
TCP_SYN: Final = 0x02
TCP_RST: Final = 0x04
TCP_PSH: Final = 0x08
TCP_ACK: Final = 0x10
# BSD loopback (LINKTYPE_NULL / LOOP) address families; AF_INET6 differs between BSDs.
NULL_FAMILY_INET: Final = 2
NULL_FAMILIES_INET6: Final = (24, 28, 30)
# IPv6 extension headers whose length is (byte 1 + 1) * 8: hop-by-hop, routing,
# destination options, mobility, HIP, shim6, and the two experimental numbers.
IPV6_EXT_GENERIC: Final = (0, 43, 60, 135, 139, 140, 253, 254)
IPV6_EXT_FRAGMENT: Final = 44
IPV6_EXT_AH: Final = 51  # length (byte 1 + 2) * 4
# More extension headers than this is no real TCP packet (Linux itself sends at most a
# hop-by-hop, a routing, two destination-options and a fragment header).
MAX_IPV6_EXT_HEADERS: Final = 8

# Live, each frame passes lo twice (outgoing, then incoming): the kernel filters look only
# at the incoming copy.
PACKET_OUTGOING: Final = 4  # the frame's packet type when the host sent it
LOOPBACK_IFINDEX: Final = 1  # the kernel gives lo this index in every network namespace

# --- state -----------------------------------------------------------------------------------
MAX_CONNECTIONS: Final = 65536  # followed connections (LRU)
MAX_PENDING: Final = 65536  # SYNs waiting for an answer (LRU, apart: a flood evicts only them)
# Live, the kernel passes SYNs with the SMC option at most at this rate per CPU (and
# bursts of SYN_BURST); beyond it a SYN is only remembered, and its connection is still
# followed from its answer on.
SYN_RATE: Final = 2000
SYN_BURST: Final = 4000
# Offline, a CLC segment that begins following a connection whose start was not seen (a
# "pick-up": the capture began mid-handshake, or a flood of Proposals on fresh 4-tuples)
# is held in the engine until its connection shows another segment, or for at most
# PICKUP_WAIT of capture time (twice the kernel's 2 s CLC wait: an answer comes by then).
# Up to HELD_PICKUPS are held; beyond that the oldest is counted, with a sample, and not
# decoded, so a flood costs what the engine costs, not what decoding costs.
HELD_PICKUPS: Final = 4096
PICKUP_WAIT: Final = 4.0  # seconds
HELD_HEADER_BYTES: Final = 256  # bytes of a held SYN kept (its headers; a SYN has no data)
# A held pick-up keeps its headers and the capped payload; a longer one is not held.
HELD_PICKUP_BYTES: Final = HELD_HEADER_BYTES + PAYLOAD_CAP
# Recent plain (flow, ISN) pairs remembered, so a retransmitted plain SYN counts once.
PLAIN_SYN_MEMORY: Final = 4096
# The kernel filter's counters, in index order: clc.c counts into SMC_COUNTER_<NAME>, user
# space reads them by these names. smc_syns, answered and unanswered are the shared state
# machine's counters, in its MATCH_COUNT_* order.
FILTER_COUNTERS: Final = ("seen_by_filter", "kept_by_filter", "smc_syns", "answered",
                          "unanswered", "plain_syns", "syns_deferred")
UNANSWERED_SAMPLE: Final = 8  # 4-tuples of unanswered SYNs (and pick-ups) kept to report

# --- duplicates --------------------------------------------------------------------------
# The same segment seen twice (two interfaces, "-i any", a bridge and its port, captures
# merged from both ends) within this time is one segment.  A genuine retransmission comes
# later: Linux's earliest (a tail loss probe) is 10 ms after the original, an RTO 200 ms.
DUPLICATE_WINDOW: Final = 0.005  # seconds
DUPLICATE_SLOTS: Final = 4096  # recent segments remembered (direct-mapped)
DUPLICATE_PAYLOAD_BYTES: Final = 64  # payload bytes that go into a segment's fingerprint

NANOSECONDS: Final = 1_000_000_000
PACKET_NS_MAX: Final = (1 << 63) - 1


def packet_ns(time: float) -> int:
    """A packet time in nanoseconds for the state machines, saturated to 64 signed bits
    (a pcapng can hold times of 2**64 seconds; the C engine saturates the same way)."""
    ns = time * NANOSECONDS
    if ns >= PACKET_NS_MAX:
        return PACKET_NS_MAX
    if ns <= -PACKET_NS_MAX:
        return -PACKET_NS_MAX
    return int(ns)


def plausible_clc_header(data: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """The length of the CLC message whose header starts at ``data[offset:]``, or 0 when
    the 8 bytes there are not a plausible CLC header (the same test in every engine)."""
    if offset < 0 or offset + CLC_HEADER_LEN > len(data):
        return 0
    return header_length(int.from_bytes(data[offset : offset + CLC_HEADER_LEN], "big"))


def header_length(header: int) -> int:
    """:func:`plausible_clc_header` on the header's 8 bytes as one big-endian integer."""
    eyecatcher = header >> 32
    if eyecatcher != EYECATCHER_SMCR and eyecatcher != EYECATCHER_SMCD:
        return 0
    msg_type = (header >> 24) & 0xFF
    length = (header >> 8) & 0xFFFF
    version = (header & 0xFF) >> 4
    if not CLC_TYPE_PROPOSAL <= msg_type <= CLC_TYPE_DECLINE or version < CLC_VERSION_MIN:
        return 0
    if not CLC_MIN_LEN <= length <= CLC_MAX_LEN:
        return 0
    return length


def _predicate(name: str, values: tuple[int, ...]) -> str:
    test = " || ".join(f"(x) == {value:#x}" for value in values)
    return f"#define {name}(x) ({test})"


def c_header() -> str:
    """The rule's constants for the C engines (``smc_rule.h``), generated from this module
    (and the link types and capture-file numbers the offline engine needs, from
    :mod:`smctrace.frame` and :mod:`smctrace.capture.formats`).

    Parameters a user may change (payload cap, grace, table sizes, rates) are wrapped in
    ``#ifndef`` so ``-D`` defines override them.
    """
    from smctrace import frame
    from smctrace.capture import formats

    linktypes = {name: getattr(frame, name) for name in dir(frame)
                 if name.startswith("LINKTYPE_") and isinstance(getattr(frame, name), int)}
    fixed: dict[str, int | str] = {
        "SMC_TCPOPT_EOL": TCPOPT_EOL,
        "SMC_TCPOPT_NOP": TCPOPT_NOP,
        "SMC_TCPOPT_EXP": TCPOPT_EXP,
        "SMC_OPTION_EXID": f"{SMC_OPTION_EXID:#x}u",
        "SMC_OPTION_MIN_LEN": SMC_OPTION_MIN_LEN,
        "SMC_TCP_MAX_OPTION_BYTES": TCP_MAX_OPTION_BYTES,
        "SMC_EYECATCHER_SMCR": f"{EYECATCHER_SMCR:#x}u",
        "SMC_EYECATCHER_SMCD": f"{EYECATCHER_SMCD:#x}u",
        "SMC_CLC_HEADER_LEN": CLC_HEADER_LEN,
        "SMC_CLC_MIN_LEN": CLC_MIN_LEN,
        "SMC_CLC_MAX_LEN": CLC_MAX_LEN,
        "SMC_CLC_TYPE_PROPOSAL": CLC_TYPE_PROPOSAL,
        "SMC_CLC_TYPE_CONFIRM": CLC_TYPE_CONFIRM,
        "SMC_CLC_TYPE_DECLINE": CLC_TYPE_DECLINE,
        "SMC_CLC_VERSION_MIN": CLC_VERSION_MIN,
        "SMC_CLC_PHASE_BYTES": CLC_PHASE_BYTES,
        "SMC_MAX_MESSAGES_PER_SEGMENT": MAX_MESSAGES_PER_SEGMENT,
        "SMC_ETHERTYPE_IPV4": f"{ETHERTYPE_IPV4:#x}",
        "SMC_ETHERTYPE_IPV6": f"{ETHERTYPE_IPV6:#x}",
        "SMC_MAX_VLAN_TAGS": MAX_VLAN_TAGS,
        "SMC_IPPROTO_TCP": IPPROTO_TCP,
        "SMC_TCP_FIN": f"{TCP_FIN:#04x}",
        "SMC_TCP_SYN": f"{TCP_SYN:#04x}",
        "SMC_TCP_RST": f"{TCP_RST:#04x}",
        "SMC_TCP_ACK": f"{TCP_ACK:#04x}",
        "SMC_NULL_FAMILY_INET": NULL_FAMILY_INET,
        "SMC_PACKET_OUTGOING": PACKET_OUTGOING,
        "SMC_LOOPBACK_IFINDEX": LOOPBACK_IFINDEX,
        "SMC_IPV6_EXT_FRAGMENT": IPV6_EXT_FRAGMENT,
        "SMC_IPV6_EXT_AH": IPV6_EXT_AH,
        "SMC_MAX_IPV6_EXT_HEADERS": MAX_IPV6_EXT_HEADERS,
        "SMC_DUPLICATE_WINDOW_NS": f"{int(DUPLICATE_WINDOW * NANOSECONDS)}ll",
        "SMC_DUPLICATE_SLOTS": DUPLICATE_SLOTS,
        "SMC_DUPLICATE_PAYLOAD_BYTES": DUPLICATE_PAYLOAD_BYTES,
        "SMC_HELD_HEADER_BYTES": HELD_HEADER_BYTES,
        # HELD_PICKUP_BYTES, as an expression: a -D SMC_PAYLOAD_CAP changes it too
        "SMC_HELD_PICKUP_BYTES": "(SMC_HELD_HEADER_BYTES + SMC_PAYLOAD_CAP)",
        "SMC_PLAIN_SYN_MEMORY": PLAIN_SYN_MEMORY,
        "SMC_UNANSWERED_SAMPLE": UNANSWERED_SAMPLE,
        **{f"SMC_COUNTER_{name.upper()}": index for index, name in enumerate(FILTER_COUNTERS)},
        "SMC_FILTER_COUNTERS": len(FILTER_COUNTERS),
        **{f"SMC_{name}": value for name, value in sorted(linktypes.items())},
        "SMC_PCAPNG_EPB": f"{formats.PCAPNG_EPB}u",
        "SMC_PCAPNG_SPB": f"{formats.PCAPNG_SPB}u",
        "SMC_PCAPNG_EPB_FIXED": formats.PCAPNG_EPB_FIXED,
        "SMC_PCAPNG_SPB_FIXED": formats.PCAPNG_SPB_FIXED,
        "SMC_PCAP_RECORD_HEADER_LEN": formats.PCAP_RECORD_HEADER_LEN,
    }
    tunable: dict[str, int | str] = {
        "SMC_PAYLOAD_CAP": PAYLOAD_CAP,
        "SMC_GRACE_NS": f"{int(LATE_DECLINE_GRACE * NANOSECONDS)}ull",
        "SMC_MAX_CONNECTIONS": MAX_CONNECTIONS,
        "SMC_MAX_PENDING": MAX_PENDING,
        "SMC_SYN_RATE": SYN_RATE,
        "SMC_SYN_BURST": SYN_BURST,
        "SMC_HELD_PICKUPS": HELD_PICKUPS,
        "SMC_PICKUP_WAIT_NS": f"{int(PICKUP_WAIT * NANOSECONDS)}ll",
    }
    lines = [
        "/* smc_rule.h: generated from smctrace/match/rule.py (do not edit). */",
        "#ifndef SMC_RULE_H",
        "#define SMC_RULE_H",
        *(f"#define {name} {value}" for name, value in fixed.items()),
        _predicate("SMC_IS_VLAN_TPID", VLAN_TPIDS),
        _predicate("SMC_IS_IPV6_EXT_GENERIC", IPV6_EXT_GENERIC),
        _predicate("SMC_IS_NULL_FAMILY_INET6", NULL_FAMILIES_INET6),
        _predicate("SMC_IS_SUPPORTED_LINKTYPE", tuple(sorted(frame.SUPPORTED_LINKTYPES))),
    ]
    for name, value in tunable.items():
        lines += [f"#ifndef {name}", f"#define {name} {value}", "#endif"]
    lines.append("#endif /* SMC_RULE_H */")
    return "\n".join(lines) + "\n"



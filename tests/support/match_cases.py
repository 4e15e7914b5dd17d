"""THE case table of the SMC-relevance rule, run against every engine.

Each :class:`Case` is a sequence of frames of one conversation (client ``c``, server
``s``; sequence numbers advance by themselves) with, per frame, what the rule keeps of it
(:class:`smctrace.match.reference.Keep`).  Engines:

* ``reference``  the Python reference (smctrace/match/reference.py)
* ``c``          the offline C engine (smctrace/match/_engine.c)
* ``ebpf``       the eBPF filter (smctrace/bpf/clc.c) through BPF_PROG_TEST_RUN
* ``cbpf``       the classic-BPF program, in the kernel (a veth pair) and interpreted

The C engines report a held SYN's release; the kernel filters cannot hold, so a HOLD is
HEADERS for them (the rate limit is far away in the tests).  Where an engine must differ
the row says so in ``engines``: the classic-BPF program is stateless, so it never keeps a
SYN-ACK without the option, FIN/RST, a continuation segment, or the first bytes of data
that end the phase, and it keeps every payload that starts with a CLC header.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from smctrace.match.reference import Keep
from smctrace.match.rule import EYECATCHER_D, EYECATCHER_R, LATE_DECLINE_GRACE
from tests.support.synth import tcp_frame

ACK, PSH, SYN, FIN, RST = 0x10, 0x08, 0x02, 0x01, 0x04
DROP, HEADERS, HEAD8, PAYLOAD, HOLD = (Keep.DROP, Keep.HEADERS, Keep.HEAD8, Keep.PAYLOAD,
                                       Keep.HOLD)
ENGINES = ("reference", "c", "ebpf", "cbpf")
KERNEL_ENGINES = ("ebpf", "cbpf")
TEST_GRACE = 0.2  # seconds: the late-Decline grace every engine is built with here

SMCR, SMCD = EYECATCHER_R, EYECATCHER_D
CLIENT, SERVER = ("10.1.0.1", 40001), ("10.1.0.2", 5201)
CLIENT6, SERVER6 = ("fd00::1", 40001), ("fd00::2", 5201)


def clc(msg_type: int, length: int, version: int = 2, eyecatcher: bytes = SMCR) -> bytes:
    """A CLC message with a valid header and trailer and a zero body."""
    header = eyecatcher + struct.pack("!BHB", msg_type, length, version << 4)
    return header + bytes(length - 12) + eyecatcher


PROPOSAL = clc(1, 92)
BIG_PROPOSAL = clc(1, 300)
ACCEPT = clc(2, 68, version=1)
CONFIRM = clc(3, 68, version=1)
DECLINE = clc(4, 44)
DECLINE_V1 = clc(4, 28, version=1)
APP_DATA = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n"


@dataclass(slots=True)
class Step:
    """One frame of a case and what the rule keeps of it."""

    sender: str  # "c" or "s"
    expect: Keep
    flags: int = ACK
    payload: bytes = b""
    release: bool = False  # the C engines release the held SYN before this frame
    pickup: bool = False  # this frame begins following a connection whose start was not seen
    engines: dict[str, Keep] = field(default_factory=dict)  # where an engine differs
    at: int | None = None  # sequence offset from the sender's next byte (None: next)
    advance: bool = True  # the sender's sequence advances past this payload
    after_grace: bool = False  # this frame comes after the late-Decline grace
    options: dict[str, Any] = field(default_factory=dict)  # more tcp_frame arguments
    cut: int | None = None  # the frame truncated to this many bytes
    pad: int = 0  # trailer bytes after the IP packet (Ethernet padding)

    def expected(self, engine: str) -> Keep:
        if engine in self.engines:
            return self.engines[engine]
        if engine in KERNEL_ENGINES and self.expect == HOLD:
            return HEADERS
        return self.expect


@dataclass(slots=True)
class Case:
    name: str
    steps: list[Step]
    ipv6: bool = False
    ethernet_only: bool = False  # needs an Ethernet header (VLAN tags)


def c(expect: Keep, flags: int = ACK, payload: bytes = b"", **kw: Any) -> Step:
    return Step("c", expect, flags, payload, **kw)


def s(expect: Keep, flags: int = ACK, payload: bytes = b"", **kw: Any) -> Step:
    return Step("s", expect, flags, payload, **kw)


NOT_CBPF = {"cbpf": DROP}  # the stateless program cannot keep this frame


def handshake() -> list[Step]:
    """SYN and SYN-ACK with the option, then the client's ACK."""
    return [c(HOLD, SYN, options={"smc_option": True}),
            s(HEADERS, SYN | ACK, release=True, options={"smc_option": True}),
            c(DROP)]


def pieces(sender: str, message: bytes, cuts: list[int], *, reverse: bool = False,
           expect: Keep = PAYLOAD, pickup: bool = False) -> list[Step]:
    """``message`` sent in pieces cut at ``cuts``; the cBPF program keeps only a piece
    that starts with the header; ``pickup``: the first piece picks the connection up."""
    bounds = [0, *cuts, len(message)]
    steps = [Step(sender, expect, ACK, message[a:b], at=a, advance=False,
                  engines={} if a == 0 and b - a >= 8 else dict(NOT_CBPF),
                  pickup=pickup and a == 0)
             for a, b in itertools.pairwise(bounds)]
    if reverse:
        steps.reverse()
    steps.append(Step(sender, DROP, at=len(message), options={"no_frame": True}))
    return steps


def _single(name: str, expect: Keep, engines: dict[str, Keep] | None = None,
            ethernet_only: bool = False, ipv6: bool = False, pickup: bool = False,
            **frame: Any) -> Case:
    flags = frame.pop("flags", ACK)
    payload = frame.pop("payload", b"")
    cut = frame.pop("cut", None)
    pad = frame.pop("pad", 0)
    step = Step("c", expect, flags, payload, engines=engines or {}, options=frame, cut=cut,
                pad=pad, pickup=pickup)
    return Case(name, [step], ipv6=ipv6, ethernet_only=ethernet_only)


def _syn(raw_options: str) -> dict[str, Any]:
    return {"flags": SYN, "tcp_options": bytes.fromhex(raw_options)}


SYN_OPT: dict[str, Any] = {"flags": SYN, "smc_option": True}

# --- single frames: parsing, the option, the CLC header -----------------------------------
SINGLE = [
    _single("syn with SMC option", HOLD, **SYN_OPT),
    _single("syn-ack with SMC option (no SYN seen)", HEADERS, flags=SYN | ACK,
            smc_option=True),
    _single("syn without option", DROP, flags=SYN),
    _single("syn-ack without option", DROP, flags=SYN | ACK),
    _single("SMC option first, no NOPs", HOLD, **_syn("fe06e2d4c3d9020405b4")),
    _single("SMC option after 34 NOPs (40 option bytes)", HOLD,
            **_syn("01" * 34 + "fe06e2d4c3d9")),
    _single("SMC option with extra data (even length 8)", HOLD, **_syn("fe08e2d4c3d90000")),
    _single("SMC option of odd length 7", DROP, **_syn("fe07e2d4c3d900")),
    _single("TFO experimental option", DROP, **_syn("fe06f989aabb")),
    _single("kind 254 too short", DROP, **_syn("fe04e2d4")),
    _single("SMC option after end-of-list", DROP, **_syn("00000000fe06e2d4c3d9")),
    _single("SMC option after a bad length", DROP, **_syn("0801fe06e2d4c3d9")),
    _single("SMC option running past the header", DROP, **_syn("0101fe0ae2d4c3d9")),
    _single("IPv4 options", HOLD, ip_options=bytes.fromhex("94040000" * 3), **SYN_OPT),
    _single("IPv4 first fragment", HOLD, more_fragments=True, **SYN_OPT),
    _single("IPv4 non-first fragment", DROP, frag_offset=8, **SYN_OPT),
    _single("VLAN tag", HOLD, vlans=[7], ethernet_only=True, **SYN_OPT),
    _single("QinQ tags", HOLD, vlans=[100, 7], ethernet_only=True, **SYN_OPT),
    _single("three VLAN tags: more than the rule walks", DROP, vlans=[100, 7, 8],
            ethernet_only=True, **SYN_OPT),
    _single("VLAN ordinary data", DROP, payload=APP_DATA, vlans=[7], ethernet_only=True),
    _single("ordinary data", DROP, flags=ACK | PSH, payload=APP_DATA),
    _single("pure ACK", DROP),
    _single("FIN without state", DROP, flags=FIN | ACK),
    _single("RST without state", DROP, flags=RST),
    _single("CLC Proposal (stateless pick-up)", PAYLOAD, pickup=True, payload=PROPOSAL),
    _single("CLC Accept SMC-D eyecatcher", PAYLOAD, pickup=True, payload=clc(2, 48, 1, SMCD)),
    _single("CLC Decline v1", PAYLOAD, pickup=True, payload=DECLINE_V1),
    _single("largest CLC length", PAYLOAD, pickup=True, payload=clc(1, 652)),
    _single("CLC over the payload cap", PAYLOAD, pickup=True, payload=clc(1, 652) + clc(1, 652)),
    _single("CLC type 0", DROP, payload=clc(0, 92)),
    _single("CLC type 5", DROP, payload=clc(5, 92)),
    _single("CLC version 0", DROP, payload=clc(1, 92, version=0)),
    _single("CLC version 3 (handled by the v2 rules)", PAYLOAD, pickup=True,
            payload=clc(1, 92, version=3)),
    _single("CLC length 27", DROP, payload=clc(1, 27)),
    _single("CLC length 653", DROP, payload=clc(1, 653)),
    _single("bad eyecatcher", DROP, payload=b"\xe2\xd4\xc3\xc5" + PROPOSAL[4:]),
    _single("7-byte payload", DROP, payload=PROPOSAL[:7]),
    _single("CLC payload cut short in the frame", PAYLOAD, pickup=True, payload=PROPOSAL, cut=-40),
    _single("SYN with SMC option and padding", HOLD, pad=12, **SYN_OPT),
    _single("truncated TCP header", DROP, cut=-30, **SYN_OPT),
    _single("truncated IP header", DROP, cut=10, **SYN_OPT),
    _single("IPv6 syn with SMC option", HOLD, ipv6=True, **SYN_OPT),
    _single("IPv6 syn without option", DROP, ipv6=True, flags=SYN),
    _single("IPv6 hop-by-hop + routing + destination options", HOLD, ipv6=True,
            ipv6_ext_headers=[(0, bytes(4)), (43, bytes(14)), (60, bytes(20))], **SYN_OPT),
    _single("IPv6 mobility, HIP and shim6 headers", HOLD, ipv6=True,
            ipv6_ext_headers=[(135, bytes(6)), (139, bytes(6)), (140, bytes(6))], **SYN_OPT),
    _single("IPv6 authentication header", HOLD, ipv6=True,
            ipv6_ext_headers=[(51, bytes(14))], **SYN_OPT),
    _single("IPv6 first fragment", HOLD, ipv6=True, more_fragments=True, **SYN_OPT),
    _single("IPv6 non-first fragment", DROP, ipv6=True, frag_offset=4, **SYN_OPT),
    _single("IPv6 ESP", DROP, ipv6=True, ipv6_ext_headers=[(50, bytes(14))], **SYN_OPT),
    _single("IPv6 eight extension headers (the rule's limit)", HOLD, ipv6=True,
            ipv6_ext_headers=[(60, bytes(6))] * 8, **SYN_OPT),
    _single("IPv6 nine extension headers", DROP, ipv6=True,
            ipv6_ext_headers=[(60, bytes(6))] * 9, **SYN_OPT),
    _single("IPv6 CLC Proposal", PAYLOAD, pickup=True, ipv6=True, payload=PROPOSAL),
    _single("IPv6 ordinary data", DROP, ipv6=True, payload=APP_DATA),
    _single("IPv6 VLAN", HOLD, ipv6=True, vlans=[9], ethernet_only=True, **SYN_OPT),
]

# --- conversations ---------------------------------------------------------------------------
FIN_C = c(HEADERS, FIN | ACK, engines=NOT_CBPF)

SEQUENCES = [
    Case("successful handshake, late Decline in the grace, then ordinary TCP", [
        *handshake(),
        c(PAYLOAD, payload=PROPOSAL), s(DROP), s(PAYLOAD, payload=ACCEPT),
        c(PAYLOAD, payload=CONFIRM), s(PAYLOAD, payload=DECLINE),
        c(DROP, payload=APP_DATA), s(DROP, payload=APP_DATA), FIN_C, s(DROP, FIN | ACK)]),
    Case("data after the Confirm shows its first bytes once", [
        *handshake(), c(PAYLOAD, payload=PROPOSAL), s(PAYLOAD, payload=ACCEPT),
        c(PAYLOAD, payload=CONFIRM), c(HEAD8, payload=APP_DATA, engines=NOT_CBPF),
        c(DROP, payload=APP_DATA), s(DROP, payload=APP_DATA),
        s(HEADERS, RST, engines=NOT_CBPF)]),
    Case("a Decline ends the CLC phase of both directions", [
        *handshake(), c(PAYLOAD, payload=PROPOSAL), s(PAYLOAD, payload=DECLINE),
        c(DROP, payload=APP_DATA), s(DROP, payload=APP_DATA), s(DROP),
        c(DROP, payload=APP_DATA)]),
    Case("a client Decline as the first CLC message", [
        *handshake(), c(PAYLOAD, payload=DECLINE_V1), c(DROP, payload=APP_DATA),
        s(DROP, payload=APP_DATA)]),
    Case("fallback in the TCP handshake: SYN-ACK without the option", [
        c(HOLD, SYN, options={"smc_option": True}),
        s(HEADERS, SYN | ACK, release=True, engines=NOT_CBPF), c(DROP),
        c(DROP, payload=APP_DATA), s(DROP, payload=APP_DATA)]),
    Case("an ordinary connection never crosses", [
        c(DROP, SYN), s(DROP, SYN | ACK), c(DROP),
        *[step for _ in range(10) for step in (c(DROP, payload=APP_DATA),
                                               s(DROP, payload=APP_DATA * 10))],
        c(DROP, FIN | ACK)]),
    Case("a message split across segments: the continuations cross", [
        *handshake(), *pieces("c", BIG_PROPOSAL, [100, 250]),
        *pieces("s", ACCEPT, [30]),
        # the Confirm coalesced with application data: kept whole, and the phase ends
        c(PAYLOAD, payload=CONFIRM + APP_DATA), c(DROP, payload=APP_DATA)]),
    Case("a header split before its 8th byte is followed", [
        *handshake(), *pieces("c", PROPOSAL, [3, 50]), *pieces("s", DECLINE, [5]),
        c(DROP, payload=APP_DATA), s(DROP, payload=APP_DATA)]),
    Case("pieces of a message arrive in reverse order", [
        *handshake(), *pieces("c", BIG_PROPOSAL, [16, 32, 48, 100, 200], reverse=True),
        s(PAYLOAD, payload=ACCEPT), c(PAYLOAD, payload=CONFIRM)]),
    Case("a split header in reverse order: kept within the phase's bytes", [
        *handshake(), *pieces("c", PROPOSAL, [3, 40], reverse=True),
        s(PAYLOAD, payload=ACCEPT), *pieces("c", CONFIRM, [5, 30], reverse=True)]),
    Case("a late Decline split across segments, after the Confirm", [
        *handshake(), c(PAYLOAD, payload=PROPOSAL), s(PAYLOAD, payload=ACCEPT),
        c(PAYLOAD, payload=CONFIRM), *pieces("c", DECLINE, [20]),
        c(DROP, payload=APP_DATA), s(DROP, payload=APP_DATA)]),
    Case("a late Decline whose header is split before its 8th byte", [
        *handshake(), c(PAYLOAD, payload=PROPOSAL), s(PAYLOAD, payload=ACCEPT),
        c(PAYLOAD, payload=CONFIRM), *pieces("s", DECLINE, [4, 9]),
        s(DROP, payload=APP_DATA)]),
    Case("two messages in one segment", [
        *handshake(), c(PAYLOAD, payload=PROPOSAL), s(PAYLOAD, payload=ACCEPT + DECLINE),
        s(DROP, payload=APP_DATA)]),
    Case("retransmissions and a segment beyond a hole", [
        *handshake(), c(PAYLOAD, payload=PROPOSAL, advance=False),
        c(PAYLOAD, payload=PROPOSAL),  # the retransmission
        s(PAYLOAD, payload=ACCEPT[20:], at=20, advance=False, engines=NOT_CBPF),
        s(PAYLOAD, payload=ACCEPT[:20], at=0, advance=False),
        s(DROP, at=len(ACCEPT), options={"no_frame": True}),
        c(PAYLOAD, payload=CONFIRM), c(PAYLOAD, payload=CONFIRM, at=-len(CONFIRM),
                                       advance=False)]),
    Case("a partial overlapping retransmission", [
        *handshake(), c(PAYLOAD, payload=BIG_PROPOSAL[:120], advance=False),
        c(PAYLOAD, payload=BIG_PROPOSAL[60:200], at=60, advance=False, engines=NOT_CBPF),
        c(PAYLOAD, payload=BIG_PROPOSAL[100:], at=100, advance=False, engines=NOT_CBPF),
        c(DROP, at=len(BIG_PROPOSAL), options={"no_frame": True}),
        s(PAYLOAD, payload=ACCEPT)]),
    Case("data far beyond any CLC message is not CLC", [
        *handshake(), c(PAYLOAD, payload=PROPOSAL), c(DROP, payload=APP_DATA, at=5000),
        c(DROP, payload=APP_DATA, at=6000),
        # data where the Accept must start: the phase ends there
        s(HEAD8, payload=APP_DATA, engines=NOT_CBPF), s(DROP, payload=APP_DATA)]),
    Case("picked up mid-handshake (no SYN seen)", [
        *pieces("s", clc(2, 160, 2), [100], pickup=True), c(PAYLOAD, payload=CONFIRM),
        c(HEAD8, payload=APP_DATA, engines=NOT_CBPF), c(DROP, payload=APP_DATA)]),
    Case("a new SYN without the option forgets the old connection", [
        *handshake(), c(DROP, SYN, at=1000), c(DROP, payload=APP_DATA)]),
    Case("a late Decline after the grace does not cross", [
        *handshake(), c(PAYLOAD, payload=PROPOSAL), s(PAYLOAD, payload=ACCEPT),
        c(PAYLOAD, payload=CONFIRM),
        s(DROP, payload=DECLINE, after_grace=True, engines={"cbpf": PAYLOAD}), FIN_C]),
    Case("a retransmitted SYN (or the same SYN seen twice) is dropped", [
        c(HOLD, SYN, options={"smc_option": True}, advance=False),
        c(DROP, SYN, options={"smc_option": True}, engines={"cbpf": HEADERS}),
        s(HEADERS, SYN | ACK, release=True, options={"smc_option": True}),
        c(DROP, SYN, at=-1, options={"smc_option": True}, engines={"cbpf": HEADERS})]),
    Case("a refused connection: the server resets the pending SYN", [
        c(HOLD, SYN, options={"smc_option": True}),
        s(HEADERS, RST | ACK, release=True, engines=NOT_CBPF), c(DROP, payload=APP_DATA)]),
    Case("a one-way capture: the Proposal answers the pending SYN", [
        c(HOLD, SYN, options={"smc_option": True}), c(DROP),
        c(PAYLOAD, payload=PROPOSAL, release=True), c(PAYLOAD, payload=CONFIRM),
        c(HEADERS, FIN | ACK, engines=NOT_CBPF)]),
    Case("a pending SYN is not answered by ordinary data", [
        c(HOLD, SYN, options={"smc_option": True}), c(DROP, payload=APP_DATA),
        s(HEADERS, SYN | ACK, release=True, options={"smc_option": True})]),
    Case("an unanswered SYN replaced by a new one with another ISN", [
        c(HOLD, SYN, options={"smc_option": True}, advance=False),
        c(HOLD, SYN, at=77777, options={"smc_option": True}),
        s(HEADERS, SYN | ACK, release=True, options={"smc_option": True})]),
    Case("not CLC where a header must start: the first bytes cross, once", [
        *handshake(), c(HEAD8, payload=clc(5, 92), engines=NOT_CBPF),
        c(DROP, payload=PROPOSAL, engines={"cbpf": PAYLOAD}),
        s(DROP, payload=ACCEPT, engines={"cbpf": PAYLOAD})]),
    Case("IPv6: handshake, split Proposal, Decline", [
        *handshake(), *pieces("c", BIG_PROPOSAL, [4, 150]), s(PAYLOAD, payload=DECLINE),
        c(DROP, payload=APP_DATA)], ipv6=True),
]

CASES = SINGLE + SEQUENCES


@dataclass(slots=True)
class Built:
    """A step's frame (None: a bookkeeping step without a frame) and its keep bytes."""

    frame: bytes | None
    step: Step


def build_case(case: Case, linktype: int, port: int = CLIENT[1]) -> Iterator[Built]:
    """The frames of ``case``, for frames of ``linktype`` (Ethernet or raw IP)."""
    client, server = (CLIENT6, SERVER6) if case.ipv6 else (CLIENT, SERVER)
    seq = {"c": 1000, "s": 90000}
    for step in case.steps:
        a, b = (client, server) if step.sender == "c" else (server, client)
        sport, dport = (port, server[1]) if step.sender == "c" else (server[1], port)
        options = dict(step.options)
        no_frame = options.pop("no_frame", False)
        base = seq[step.sender]
        if step.at is not None:
            if no_frame:  # bookkeeping: move the sender's next byte
                seq[step.sender] = (base + step.at) % (1 << 32)
                yield Built(None, step)
                continue
            this_seq = (base + step.at) % (1 << 32)
        else:
            this_seq = base
        frame = tcp_frame(a[0], b[0], sport, dport, seq=this_seq, flags=step.flags,
                          payload=step.payload, linktype=linktype, **options)
        if step.cut is not None:
            frame = frame[: step.cut]
        frame += bytes(step.pad)
        if step.advance:
            seq[step.sender] = (this_seq + len(step.payload)
                                + (1 if step.flags & (SYN | FIN) else 0)) % (1 << 32)
        yield Built(frame, step)


def case_time(index: int, after_grace_steps: int) -> int:
    """Packet time of the index-th frame, in ns (1 ms apart, plus each grace passed)."""
    return 1_800_000_000 * 10**9 + index * 10**6 + after_grace_steps * int(
        (TEST_GRACE + 0.05) * 10**9)


assert TEST_GRACE < LATE_DECLINE_GRACE

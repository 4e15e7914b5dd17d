"""The capture filters without traffic.

The eBPF program (smctrace/bpf/clc.c) runs in the kernel through BPF_PROG_TEST_RUN; the
classic-BPF program runs in smctrace's user-space interpreter (and in the kernel in
test_live_socket.py).  Both see the same frame table for the stateless decisions; the
stateful sequences are eBPF only.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from smctrace.frame import LINKTYPE_ETHERNET, LINKTYPE_RAW
from smctrace.live import LiveCapture, cbpf
from smctrace.live.bcc_backend import BccFilter, FilterParams, bcc_problem
from smctrace.live.netdev import LinkLayer
from smctrace.live.testrun import run_socket_filter
from smctrace.packet import ACK, FIN, PSH, RST, SYN
from tests.support.synth import tcp_frame

SMCR = bytes.fromhex("e2d4c3d9")
SMCD = bytes.fromhex("e2d4c3c4")
SNAP = 1024

CLIENT = ("10.1.0.1", 40001)
SERVER = ("10.1.0.2", 5201)
CLIENT6 = ("fd00::1", 40001)
SERVER6 = ("fd00::2", 5201)

BPF_UNAVAILABLE = bcc_problem()
needs_bcc = pytest.mark.skipif(
    BPF_UNAVAILABLE is not None, reason=f"eBPF backend unavailable: {BPF_UNAVAILABLE}"
)


def clc(msg_type: int, length: int, version: int = 2, eyecatcher: bytes = SMCR) -> bytes:
    """A CLC message with a valid header and trailer and a zero body."""
    header = eyecatcher + struct.pack("!BHB", msg_type, length, version << 4)
    return header + bytes(length - 12) + eyecatcher


PROPOSAL = clc(1, 92)
ACCEPT = clc(2, 68, version=1)
CONFIRM = clc(3, 68, version=1)
DECLINE = clc(4, 44)
APP_DATA = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n"


@dataclass(slots=True)
class Case:
    """One frame and what the filters must keep of it."""

    name: str
    expect: str  # "drop", "headers" (up to the TCP payload) or "payload" (headers + payload)
    kwargs: dict[str, Any] = field(default_factory=dict)
    ethernet_only: bool = False  # needs an Ethernet header (VLAN tags)
    cut: int | None = None  # truncate the frame to this many bytes (from its start)
    pad: int = 0  # bytes of Ethernet-style trailer padding after the IP packet


def syn_options(raw: str) -> dict[str, Any]:
    return {"flags": SYN, "tcp_options": bytes.fromhex(raw)}


STATELESS_CASES = [
    Case("syn with SMC option", "headers", {"flags": SYN, "smc_option": True}),
    Case("syn-ack with SMC option", "headers", {"flags": SYN | ACK, "smc_option": True}),
    Case("syn without option", "drop", {"flags": SYN}),
    Case("syn-ack without option", "drop", {"flags": SYN | ACK}),
    Case("SMC option first, no NOPs", "headers", syn_options("fe06e2d4c3d9020405b4")),
    Case("SMC option after 34 NOPs (40 option bytes)", "headers",
         syn_options("01" * 34 + "fe06e2d4c3d9")),
    Case("SMC option with extra data (len 8)", "headers", syn_options("fe08e2d4c3d90000")),
    Case("TFO experimental option", "drop", syn_options("fe06f989aabb")),
    Case("kind 254 too short", "drop", syn_options("fe04e2d4")),
    Case("SMC option after end-of-list", "drop", syn_options("00000000fe06e2d4c3d9")),
    Case("SMC option after a bad length", "drop", syn_options("0801fe06e2d4c3d9")),
    Case("SMC option running past the header", "drop", syn_options("0101fe0ae2d4c3d9")),
    Case("IPv4 options", "headers",
         {"flags": SYN, "smc_option": True, "ip_options": bytes.fromhex("94040000" * 3)}),
    Case("IPv4 first fragment", "headers",
         {"flags": SYN, "smc_option": True, "more_fragments": True}),
    Case("IPv4 non-first fragment", "drop",
         {"flags": SYN, "smc_option": True, "frag_offset": 8}),
    Case("VLAN tag", "headers", {"flags": SYN, "smc_option": True, "vlans": [7]},
         ethernet_only=True),
    Case("QinQ tags", "headers", {"flags": SYN, "smc_option": True, "vlans": [100, 7]},
         ethernet_only=True),
    Case("VLAN ordinary data", "drop", {"payload": APP_DATA, "vlans": [7]},
         ethernet_only=True),
    Case("ordinary data", "drop", {"flags": ACK | PSH, "payload": APP_DATA}),
    Case("pure ACK", "drop", {}),
    Case("FIN without state", "drop", {"flags": FIN | ACK}),
    Case("RST without state", "drop", {"flags": RST}),
    Case("CLC Proposal (stateless pick-up)", "payload", {"payload": PROPOSAL}),
    Case("CLC Accept SMC-D eyecatcher", "payload", {"payload": clc(2, 48, 1, SMCD)}),
    Case("CLC Decline v1", "payload", {"payload": clc(4, 28, 1)}),
    Case("largest CLC length", "payload", {"payload": clc(1, 652)}),
    Case("CLC over the payload cap", "payload",
         {"payload": clc(1, 652) + clc(1, 652)}),
    Case("CLC type 0", "drop", {"payload": clc(0, 92)}),
    Case("CLC type 5", "drop", {"payload": clc(5, 92)}),
    Case("CLC version 0", "drop", {"payload": clc(1, 92, version=0)}),
    Case("CLC version 3", "drop", {"payload": clc(1, 92, version=3)}),
    Case("CLC length 27", "drop", {"payload": clc(1, 27)}),
    Case("CLC length 653", "drop", {"payload": clc(1, 653)}),
    Case("bad eyecatcher", "drop", {"payload": b"\xe2\xd4\xc3\xc5" + PROPOSAL[4:]}),
    Case("7-byte payload", "drop", {"payload": PROPOSAL[:7]}),
    Case("CLC payload cut short in the frame", "payload", {"payload": PROPOSAL}, cut=-40),
    Case("SYN with SMC option and padding", "headers",
         {"flags": SYN, "smc_option": True}, pad=12),
    Case("truncated TCP header", "drop", {"flags": SYN, "smc_option": True}, cut=-30),
    Case("truncated IP header", "drop", {"flags": SYN, "smc_option": True}, cut=10),
]

IPV6_CASES = [
    Case("IPv6 syn with SMC option", "headers", {"flags": SYN, "smc_option": True}),
    Case("IPv6 syn-ack with SMC option", "headers", {"flags": SYN | ACK, "smc_option": True}),
    Case("IPv6 syn without option", "drop", {"flags": SYN}),
    Case("IPv6 hop-by-hop + routing + destination options", "headers",
         {"flags": SYN, "smc_option": True,
          "ipv6_ext_headers": [(0, bytes(4)), (43, bytes(14)), (60, bytes(20))]}),
    Case("IPv6 authentication header", "headers",
         {"flags": SYN, "smc_option": True, "ipv6_ext_headers": [(51, bytes(14))]}),
    Case("IPv6 first fragment", "headers",
         {"flags": SYN, "smc_option": True, "more_fragments": True}),
    Case("IPv6 non-first fragment", "drop",
         {"flags": SYN, "smc_option": True, "frag_offset": 4}),
    Case("IPv6 ESP", "drop",
         {"flags": SYN, "smc_option": True, "ipv6_ext_headers": [(50, bytes(14))]}),
    Case("IPv6 seven extension headers", "drop",
         {"flags": SYN, "smc_option": True, "ipv6_ext_headers": [(60, bytes(6))] * 7}),
    Case("IPv6 CLC Proposal", "payload", {"payload": PROPOSAL}),
    Case("IPv6 ordinary data", "drop", {"payload": APP_DATA}),
    Case("IPv6 VLAN", "headers", {"flags": SYN, "smc_option": True, "vlans": [9]},
         ethernet_only=True),
]


def build(case: Case, link_layer: LinkLayer, ipv6: bool, port: int) -> tuple[bytes, int]:
    """The frame for ``case`` and the number of bytes a filter must keep."""
    client, server = (CLIENT6, SERVER6) if ipv6 else (CLIENT, SERVER)
    linktype = LINKTYPE_ETHERNET if link_layer == LinkLayer.ETHERNET else LINKTYPE_RAW
    kwargs = dict(case.kwargs)
    payload: bytes = kwargs.get("payload", b"")
    frame = tcp_frame(client[0], server[0], port, server[1], linktype=linktype, seq=1000,
                      **kwargs)
    headers = len(frame) - len(payload)
    if case.cut is not None:
        frame = frame[: case.cut]
    frame += bytes(case.pad)
    if case.expect == "drop":
        return frame, 0
    if case.expect == "headers":
        return frame, headers
    return frame, min(len(frame), headers + min(len(payload), SNAP))


def frame_cases() -> Iterator[Any]:
    for link_layer in (LinkLayer.ETHERNET, LinkLayer.NONE):
        for ipv6, cases in ((False, STATELESS_CASES), (True, IPV6_CASES)):
            for case in cases:
                if case.ethernet_only and link_layer != LinkLayer.ETHERNET:
                    continue
                yield pytest.param(case, link_layer, ipv6,
                                   id=f"{link_layer.name.lower()}-{case.name}")


# -- classic BPF, in the user-space interpreter ------------------------------------------


@pytest.mark.parametrize(("case", "link_layer", "ipv6"), list(frame_cases()))
def test_cbpf_stateless_match(case: Case, link_layer: LinkLayer, ipv6: bool) -> None:
    frame, expected = build(case, link_layer, ipv6, port=40000)
    program = cbpf.cbpf_program(link_layer, SNAP)
    assert cbpf.run_program(program, frame) == expected


def test_cbpf_program_size_and_listing() -> None:
    for link_layer in LinkLayer:
        program = cbpf.cbpf_program(link_layer)
        assert len(program) <= cbpf.BPF_MAXINSNS
        # Every jump must land inside the program.
        for index, (code, jt, jf, k) in enumerate(program):
            if code & 0x07 == cbpf.BPF_JMP:
                targets = [k] if code & 0xF0 == cbpf.BPF_JA else [jt, jf]
                assert all(index + 1 + t < len(program) for t in targets)
        text = cbpf.listing(program)
        assert text.splitlines()[0] == "(000) ld       #pkttype"
        assert len(text.splitlines()) == len(program)
    assert len(cbpf.assemble(cbpf.cbpf_program())) == 8 * len(cbpf.cbpf_program())


def test_cbpf_drops_outgoing_copy_on_loopback() -> None:
    frame = tcp_frame(*CLIENT[:1], SERVER[0], CLIENT[1], SERVER[1], flags=SYN,
                      smc_option=True)
    program = cbpf.cbpf_program()
    outgoing_lo = cbpf.PacketMeta(pkttype=cbpf.PACKET_OUTGOING, ifindex=1, hatype=772)
    incoming_lo = cbpf.PacketMeta(pkttype=0, ifindex=1, hatype=772)
    outgoing_eth = cbpf.PacketMeta(pkttype=cbpf.PACKET_OUTGOING, ifindex=2)
    assert cbpf.run_program(program, frame, outgoing_lo) == 0
    assert cbpf.run_program(program, frame, incoming_lo) > 0
    assert cbpf.run_program(program, frame, outgoing_eth) > 0


def test_cbpf_attaches_in_kernel() -> None:
    import socket

    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        for link_layer in LinkLayer:
            cbpf.attach_filter(sock, cbpf.cbpf_program(link_layer))


# -- eBPF, in the kernel via BPF_PROG_TEST_RUN -------------------------------------------


@pytest.fixture(scope="module")
def ebpf() -> Iterator[dict[LinkLayer, BccFilter]]:
    if BPF_UNAVAILABLE is not None:
        pytest.skip(f"eBPF backend unavailable: {BPF_UNAVAILABLE}")
    filters = {layer: BccFilter(layer, FilterParams(snap_payload=SNAP)) for layer in LinkLayer}
    yield filters
    for bpf_filter in filters.values():
        bpf_filter.close()


def run(bpf_filter: BccFilter, frame: bytes) -> int:
    return run_socket_filter(bpf_filter.fd, frame)


@needs_bcc
@pytest.mark.parametrize(("case", "link_layer", "ipv6"), list(frame_cases()))
def test_ebpf_stateless_match(
    ebpf: dict[LinkLayer, BccFilter], case: Case, link_layer: LinkLayer, ipv6: bool
) -> None:
    bpf_filter = ebpf[link_layer]
    bpf_filter.clear_connections()
    frame, expected = build(case, link_layer, ipv6, port=40000)
    assert run(bpf_filter, frame) == expected


class Conversation:
    """Frames of one TCP connection with sequence numbers kept per direction."""

    def __init__(self, bpf_filter: BccFilter, ipv6: bool = False, port: int = 40001,
                 link_layer: LinkLayer = LinkLayer.NONE) -> None:
        self.bpf_filter = bpf_filter
        self.ipv6 = ipv6
        client, server = (CLIENT6, SERVER6) if ipv6 else (CLIENT, SERVER)
        self.ends = {"c": (client[0], port), "s": server}
        self.seq = {"c": 1_000_000, "s": 4_294_960_000}  # the server's wraps around 2^32
        self.linktype = LINKTYPE_RAW if link_layer == LinkLayer.NONE else LINKTYPE_ETHERNET

    def frame(self, sender: str, flags: int = ACK | PSH, payload: bytes = b"",
              smc_option: bool = False, seq: int | None = None) -> tuple[bytes, int]:
        receiver = "s" if sender == "c" else "c"
        src, dst = self.ends[sender], self.ends[receiver]
        frame = tcp_frame(src[0], dst[0], src[1], dst[1], seq=self.seq[sender] if seq is None
                          else seq, flags=flags, payload=payload, smc_option=smc_option,
                          linktype=self.linktype)
        if seq is None:
            self.seq[sender] += len(payload) + (1 if flags & (SYN | FIN) else 0)
        return frame, len(frame) - len(payload)

    def send(self, sender: str, flags: int = ACK | PSH, payload: bytes = b"",
             smc_option: bool = False, seq: int | None = None) -> str:
        """Runs the frame through the filter; answers drop/headers/payload."""
        frame, headers = self.frame(sender, flags, payload, smc_option, seq)
        kept = run(self.bpf_filter, frame)
        if kept == 0:
            return "drop"
        if kept == headers:
            return "headers"
        assert kept == headers + min(len(payload), SNAP), (kept, headers, len(payload))
        return "payload"

    def handshake(self) -> list[str]:
        return [self.send("c", SYN, smc_option=True), self.send("s", SYN | ACK, smc_option=True),
                self.send("c", ACK)]


@pytest.fixture
def l3(ebpf: dict[LinkLayer, BccFilter]) -> BccFilter:
    bpf_filter = ebpf[LinkLayer.NONE]
    bpf_filter.clear_connections()
    return bpf_filter


@needs_bcc
@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_successful_handshake_then_silence(l3: BccFilter, ipv6: bool) -> None:
    conv = Conversation(l3, ipv6=ipv6)
    assert conv.handshake() == ["headers", "headers", "drop"]
    assert l3.connections() == 1
    assert conv.send("c", payload=PROPOSAL) == "payload"
    assert conv.send("s", ACK) == "drop"
    assert conv.send("s", payload=ACCEPT) == "payload"
    assert conv.send("c", payload=CONFIRM) == "payload"
    # Within the grace period a late Decline still crosses ...
    assert conv.send("s", payload=DECLINE) == "payload"
    # ... and after it the connection is ordinary TCP.
    assert conv.send("c", payload=APP_DATA) == "drop"
    assert conv.send("s", payload=APP_DATA) == "drop"
    assert conv.send("c", FIN | ACK) == "headers"
    assert l3.connections() == 0
    assert conv.send("s", FIN | ACK) == "drop"


@needs_bcc
def test_data_after_confirm_keeps_headers_once(l3: BccFilter) -> None:
    conv = Conversation(l3)
    conv.handshake()
    for sender, message in (("c", PROPOSAL), ("s", ACCEPT), ("c", CONFIRM)):
        assert conv.send(sender, payload=message) == "payload"
    assert conv.send("c", payload=APP_DATA) == "headers"
    assert conv.send("c", payload=APP_DATA) == "drop"
    assert conv.send("s", payload=APP_DATA) == "drop"
    assert conv.send("s", RST) == "headers"
    assert l3.connections() == 0


@needs_bcc
def test_decline_ends_the_clc_phase(l3: BccFilter) -> None:
    conv = Conversation(l3)
    conv.handshake()
    assert conv.send("c", payload=PROPOSAL) == "payload"
    assert conv.send("s", payload=DECLINE) == "payload"
    for _ in range(3):
        assert conv.send("c", payload=APP_DATA) == "drop"
        assert conv.send("s", payload=APP_DATA) == "drop"
        assert conv.send("s", ACK) == "drop"


@needs_bcc
def test_client_decline_right_after_handshake(l3: BccFilter) -> None:
    conv = Conversation(l3)
    conv.handshake()
    assert conv.send("c", payload=clc(4, 28, 1)) == "payload"
    assert conv.send("c", payload=APP_DATA) == "drop"


@needs_bcc
def test_fallback_in_tcp_handshake(l3: BccFilter) -> None:
    conv = Conversation(l3)
    assert conv.send("c", SYN, smc_option=True) == "headers"
    assert conv.send("s", SYN | ACK) == "headers"  # no option: fallback without CLC
    assert l3.connections() == 0
    assert conv.send("c", ACK) == "drop"
    assert conv.send("c", payload=APP_DATA) == "drop"
    assert conv.send("s", payload=APP_DATA) == "drop"


@needs_bcc
def test_ordinary_connection_never_crosses(l3: BccFilter) -> None:
    conv = Conversation(l3)
    assert [conv.send("c", SYN), conv.send("s", SYN | ACK), conv.send("c", ACK)] == ["drop"] * 3
    for _ in range(50):
        assert conv.send("c", payload=APP_DATA) == "drop"
        assert conv.send("s", payload=APP_DATA * 10) == "drop"
    assert conv.send("c", FIN | ACK) == "drop"
    assert l3.connections() == 0


@needs_bcc
def test_split_clc_message_continuation_is_kept(l3: BccFilter) -> None:
    conv = Conversation(l3)
    conv.handshake()
    proposal = clc(1, 300)
    assert conv.send("c", payload=proposal[:100]) == "payload"
    # The continuation does not start with a CLC header but is CLC.
    assert conv.send("c", payload=proposal[100:250]) == "payload"
    assert conv.send("c", payload=proposal[250:]) == "payload"
    # The Accept's tail and the Confirm... from the server: the Accept split over two
    # segments, the second also holding nothing else.
    assert conv.send("s", payload=ACCEPT[:30]) == "payload"
    assert conv.send("s", payload=ACCEPT[30:]) == "payload"
    # The client's Confirm coalesced with a first chunk of application data: kept whole
    # (the Confirm is needed), and the phase ends.
    assert conv.send("c", payload=CONFIRM + APP_DATA) == "payload"
    assert conv.send("c", payload=APP_DATA) == "drop"


@needs_bcc
def test_two_messages_in_one_segment(l3: BccFilter) -> None:
    conv = Conversation(l3)
    conv.handshake()
    assert conv.send("c", payload=PROPOSAL) == "payload"
    assert conv.send("s", payload=ACCEPT + clc(4, 44)) == "payload"  # Accept + Decline
    assert conv.send("s", payload=APP_DATA) == "drop"


@needs_bcc
def test_retransmission_and_gap(l3: BccFilter) -> None:
    conv = Conversation(l3)
    conv.handshake()
    start = conv.seq["c"]
    assert conv.send("c", payload=PROPOSAL) == "payload"
    assert conv.send("c", payload=PROPOSAL, seq=start) == "payload"  # retransmission
    # A segment beyond a hole: headers only (the hole shows), no state change ...
    accept_seq = conv.seq["s"]
    assert conv.send("s", payload=ACCEPT[20:], seq=accept_seq + 20) == "headers"
    # ... then the missing segment arrives and the message continues.
    assert conv.send("s", payload=ACCEPT[:20], seq=accept_seq) == "payload"
    conv.seq["s"] += len(ACCEPT)
    assert conv.send("c", payload=CONFIRM) == "payload"


@needs_bcc
def test_long_hole_ends_the_clc_phase(l3: BccFilter) -> None:
    conv = Conversation(l3)
    conv.handshake()
    assert conv.send("c", payload=PROPOSAL) == "payload"
    # 5000 bytes missing: more than any CLC message, so this is application data.
    assert conv.send("c", payload=APP_DATA, seq=conv.seq["c"] + 5000) == "headers"
    assert conv.send("c", payload=APP_DATA, seq=conv.seq["c"] + 6000) == "drop"
    assert conv.send("s", payload=APP_DATA) == "drop"


@needs_bcc
def test_pick_up_mid_handshake(l3: BccFilter) -> None:
    conv = Conversation(l3)
    conv.seq = {"c": 7000, "s": 9000}
    # No SYN seen: the Accept is recognised by its header, its continuation by the state
    # the pick-up created.
    assert conv.send("s", payload=clc(2, 160, 2)[:100]) == "payload"
    assert l3.connections() == 1
    assert conv.send("s", payload=clc(2, 160, 2)[100:]) == "payload"
    assert conv.send("c", payload=CONFIRM) == "payload"
    assert conv.send("c", payload=APP_DATA) == "headers"
    assert conv.send("c", payload=APP_DATA) == "drop"


@needs_bcc
def test_new_syn_without_option_forgets_old_state(l3: BccFilter) -> None:
    conv = Conversation(l3)
    conv.handshake()
    assert l3.connections() == 1
    conv.seq = {"c": 123, "s": 456}
    assert conv.send("c", SYN) == "drop"
    assert l3.connections() == 0
    assert conv.send("c", payload=APP_DATA) == "drop"


@needs_bcc
def test_ethernet_program_follows_state_too(ebpf: dict[LinkLayer, BccFilter]) -> None:
    bpf_filter = ebpf[LinkLayer.ETHERNET]
    bpf_filter.clear_connections()
    conv = Conversation(bpf_filter, link_layer=LinkLayer.ETHERNET)
    assert conv.handshake() == ["headers", "headers", "drop"]
    assert conv.send("c", payload=PROPOSAL) == "payload"
    assert conv.send("s", payload=DECLINE) == "payload"
    assert conv.send("c", payload=APP_DATA) == "drop"


@needs_bcc
def test_counters_count_seen_and_kept(l3: BccFilter) -> None:
    seen_before, kept_before = l3.counters()
    conv = Conversation(l3)
    results = [*conv.handshake(), conv.send("c", payload=PROPOSAL)]
    results += [conv.send("c", payload=APP_DATA) for _ in range(5)]
    seen, kept = l3.counters()
    assert seen - seen_before == len(results)
    assert kept - kept_before == sum(result != "drop" for result in results)


@pytest.fixture(scope="module")
def short_grace_lru() -> Iterator[BccFilter]:
    if BPF_UNAVAILABLE is not None:
        pytest.skip(f"eBPF backend unavailable: {BPF_UNAVAILABLE}")
    params = FilterParams(snap_payload=SNAP, confirm_grace_ms=100, max_connections=64)
    bpf_filter = BccFilter(LinkLayer.NONE, params)
    yield bpf_filter
    bpf_filter.close()


@needs_bcc
def test_late_decline_after_grace_is_dropped(short_grace_lru: BccFilter) -> None:
    short_grace_lru.clear_connections()
    conv = Conversation(short_grace_lru)
    conv.handshake()
    for sender, message in (("c", PROPOSAL), ("s", ACCEPT), ("c", CONFIRM)):
        assert conv.send(sender, payload=message) == "payload"
    time.sleep(0.2)
    assert conv.send("s", payload=DECLINE) == "drop"
    assert conv.send("c", FIN | ACK) == "headers"


@needs_bcc
def test_syn_flood_state_is_bounded(short_grace_lru: BccFilter) -> None:
    short_grace_lru.clear_connections()
    for port in range(1000, 1500):
        assert Conversation(short_grace_lru, port=port).send("c", SYN, smc_option=True) \
            == "headers"
    assert short_grace_lru.connections() <= 64
    # A handshake still works under the flood.
    conv = Conversation(short_grace_lru, port=2000)
    assert conv.handshake() == ["headers", "headers", "drop"]
    assert conv.send("c", payload=PROPOSAL) == "payload"


@needs_bcc
def test_ebpf_program_cost_per_ordinary_frame(l3: BccFilter) -> None:
    """Reported, not asserted tightly: the kernel's own timing of 10,000 runs."""
    from smctrace.live.testrun import bpf_prog_test_run

    frame = tcp_frame(CLIENT[0], SERVER[0], CLIENT[1], SERVER[1], payload=APP_DATA,
                      linktype=LINKTYPE_RAW)
    dummy = bytes(12) + b"\x08\x00"
    result = bpf_prog_test_run(l3.fd, dummy + frame, repeat=10_000)
    assert result.retval == 0
    assert result.duration_ns < 5_000, f"{result.duration_ns} ns per frame"
    print(f"eBPF filter: {result.duration_ns} ns per ordinary data frame")


def test_not_root_message_is_one_line() -> None:
    """The capability check names what is missing (runs as root here: nothing)."""
    from smctrace.live.capabilities import missing_for_capture

    if os.geteuid() == 0:
        assert missing_for_capture(need_bpf=True) == []


# -- classic BPF, in the kernel: the same table through a veth pair ----------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
def test_cbpf_in_kernel_matches_table() -> None:
    """Each Ethernet case is sent through a veth pair in a private netns to a capture with
    the classic-BPF filter, followed by a marker frame that is always kept; what arrives
    before the marker is what the kernel's run of the filter kept of the case."""
    from tests.test_live_socket import Lab, inside

    lab = Lab()
    try:
        lab.create()
    except Exception as exc:  # no netns support: say why
        lab.destroy()
        pytest.skip(f"cannot create a test network namespace: {exc}")
    try:
        sender = lab.sender_socket()
        capture = LiveCapture([lab.receiver], backend="cbpf", snaplen=4096)
        with inside(lab.netns):
            capture.attach()
        results: dict[str, tuple[int, list[int]]] = {}
        for index, param in enumerate(frame_cases()):
            case, link_layer, ipv6 = param.values
            if link_layer != LinkLayer.ETHERNET or (case.cut is not None and 0 < case.cut < 14):
                continue
            frame, expected = build(case, link_layer, ipv6, port=40000)
            marker = tcp_frame("10.200.0.1", "10.200.0.2", 1000 + index, 9, flags=SYN,
                               smc_option=True)
            sender.send(frame)
            sender.send(marker)
            kept: list[int] = []
            for got in capture.frames(lambda: False, poll_interval=0.5):
                assert got is not None, f"marker of {case.name} never arrived"
                if got.data == marker:
                    break
                kept.append(len(got.data))
            results[f"{case.name} ({'v6' if ipv6 else 'v4'})"] = (expected, kept)
        capture.close()
        sender.close()
    finally:
        lab.destroy()
    wrong = {name: r for name, r in results.items() if r[1] != ([r[0]] if r[0] else [])}
    assert not wrong
    assert len(results) > 40

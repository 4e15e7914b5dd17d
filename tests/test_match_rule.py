"""The one case table of the SMC-relevance rule, run against all four engines.

Every case of tests/support/match_cases.py runs, frame by frame, through the Python
reference, the offline C engine, the eBPF program (BPF_PROG_TEST_RUN, state kept in its
maps across the frames of a case) and the classic-BPF program (in the kernel, on a veth
pair, and in the interpreter), for frames that start with an Ethernet header and for
frames that start at the IP header.  Each must keep exactly the bytes the table says.
"""

from __future__ import annotations

import re
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from smctrace.frame import LINKTYPE_ETHERNET, LINKTYPE_RAW, LinkLayer
from smctrace.match import cbpf, reference, rule
from smctrace.match.bcc import BccFilter, FilterParams, bcc_problem
from smctrace.match.engine import NATIVE, NativeEngine
from tests.support import match_cases as table
from tests.support import netlab
from tests.support.bpf_testrun import run_socket_filter
from tests.support.cbpf_interpreter import run_program

SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID = 263, 8, 0x10
Result = tuple[int, bool, bool]  # bytes kept; held SYN released, pick-up (offline engines)
Runner = Callable[[table.Case, int], list[Result | None]]

BCC_PROBLEM = bcc_problem()
LINKTYPES = {"ethernet": LINKTYPE_ETHERNET, "ip": LINKTYPE_RAW}


def case_params() -> Iterator[Any]:
    for case in table.CASES:
        for l2, linktype in LINKTYPES.items():
            if case.ethernet_only and linktype != LINKTYPE_ETHERNET:
                continue
            yield pytest.param(case, linktype, id=f"{l2}-{case.name}")


def expected(case: table.Case, linktype: int, engine: str) -> list[Result | None]:
    """What the table says ``engine`` keeps of each frame of ``case``."""
    out: list[Result | None] = []
    for built in table.build_case(case, linktype):
        if built.frame is None:
            out.append(None)
            continue
        keep = built.step.expected(engine)
        view = reference.parse(built.frame, linktype)
        kept = 0 if view is None else view.keep_bytes(keep)
        offline = engine in ("reference", "c")
        out.append((kept, built.step.release and offline, built.step.pickup and offline))
    return out


def packet_times(case: table.Case, linktype: int) -> Iterator[tuple[bytes | None, int, bool]]:
    """(frame, packet time in ns, whether the grace passed just before it)."""
    graces = 0
    for index, built in enumerate(table.build_case(case, linktype)):
        waited = built.step.after_grace
        graces += waited
        yield built.frame, table.case_time(index, graces), waited


# --- the runners ------------------------------------------------------------------------


def run_reference(case: table.Case, linktype: int) -> list[Result | None]:
    matcher = reference.Matcher(grace=table.TEST_GRACE)
    out: list[Result | None] = []
    for frame, now, _ in packet_times(case, linktype):
        if frame is None:
            out.append(None)
            continue
        verdict, view = matcher.verdict(frame, linktype, now)
        out.append((0 if view is None else view.keep_bytes(verdict.keep), verdict.release,
                    verdict.pickup))
    return out


def run_c(case: table.Case, linktype: int) -> list[Result | None]:
    assert NativeEngine is not None
    engine = NativeEngine(grace=table.TEST_GRACE)
    out: list[Result | None] = []
    for frame, now, _ in packet_times(case, linktype):
        if frame is None:
            out.append(None)
            continue
        _keep, release, kept, pickup = engine.verdict(frame, linktype, now)
        out.append((kept, release, pickup))
    return out


@pytest.fixture(scope="module")
def ebpf() -> Iterator[dict[int, BccFilter]]:
    if BCC_PROBLEM is not None:
        pytest.skip(f"eBPF engine unavailable: {BCC_PROBLEM}")
    params = FilterParams(confirm_grace_ms=int(table.TEST_GRACE * 1000))
    filters = {LINKTYPE_ETHERNET: BccFilter(LinkLayer.ETHERNET, params),
               LINKTYPE_RAW: BccFilter(LinkLayer.NONE, params)}
    yield filters
    for bcc_filter in filters.values():
        bcc_filter.close()


def ebpf_runner(filters: dict[int, BccFilter]) -> Runner:
    def run(case: table.Case, linktype: int) -> list[Result | None]:
        bcc_filter = filters[linktype]
        bcc_filter.clear_connections()
        out: list[Result | None] = []
        for frame, _now, waited in packet_times(case, linktype):
            if waited:
                time.sleep(table.TEST_GRACE + 0.05)  # the kernel's clock, not the packet's
            out.append(None if frame is None else (run_socket_filter(bcc_filter.fd, frame),
                                                   False, False))
        return out

    return run


def run_cbpf_interpreted(case: table.Case, linktype: int) -> list[Result | None]:
    link_layer = LinkLayer.ETHERNET if linktype == LINKTYPE_ETHERNET else LinkLayer.NONE
    program = cbpf.cbpf_program(link_layer)
    return [None if frame is None else (run_program(program, frame), False, False)
            for frame, _now, _ in packet_times(case, linktype)]


class KernelCbpf:
    """The classic-BPF program attached in the kernel to one end of a veth pair; frames
    are sent into the other end, each followed by a marker frame the program always
    keeps, so a dropped frame shows without waiting for a timeout."""

    MARKER = table.tcp_frame("192.0.2.99", "192.0.2.98", 9, 9, payload=table.PROPOSAL)

    def __init__(self, lab: netlab.NetLab) -> None:
        ns = lab.namespace("cbpf")
        sender, receiver = lab.veth(ns)
        with netlab.entered(ns):
            self.send_sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            self.send_sock.bind((sender, 0))
            self.receivers = {}
            for linktype, kind, link_layer in (
                    (LINKTYPE_ETHERNET, socket.SOCK_RAW, LinkLayer.ETHERNET),
                    (LINKTYPE_RAW, socket.SOCK_DGRAM, LinkLayer.NONE)):
                sock = socket.socket(socket.AF_PACKET, kind, 0)
                cbpf.attach_filter(sock, cbpf.cbpf_program(link_layer))
                sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
                sock.bind((receiver, 0x0003))
                sock.settimeout(2.0)
                self.receivers[linktype] = sock

    def _send(self, frame: bytes, linktype: int) -> None:
        if linktype == LINKTYPE_RAW:  # put an Ethernet header in front of the IP packet
            ethertype = 0x0800 if frame and frame[0] >> 4 == 4 else 0x86DD
            frame = bytes(6) + bytes.fromhex("020000000001") + struct.pack("!H", ethertype) \
                + frame
        self.send_sock.send(frame)

    def _drain(self) -> None:
        """Both sockets see every frame: empty them before each test frame."""
        for sock in self.receivers.values():
            sock.setblocking(False)
            try:
                while sock.recv(65535):
                    pass
            except BlockingIOError:
                pass
            sock.settimeout(2.0)

    def kept(self, frame: bytes, linktype: int) -> int:
        sock = self.receivers[linktype]
        self._drain()
        self._send(frame, linktype)
        self._send(self.MARKER if linktype == LINKTYPE_ETHERNET else self.MARKER[14:],
                   linktype)
        marker = self.MARKER if linktype == LINKTYPE_ETHERNET else self.MARKER[14:]
        first, tag = self._receive(sock)
        if first == marker:
            return 0
        self._receive(sock)  # the marker
        return len(first) + tag

    @staticmethod
    def _receive(sock: socket.socket) -> tuple[bytes, int]:
        """A frame, and 4 if the kernel took a VLAN tag out of it (veth offloads it)."""
        data, ancillary, _flags, _address = sock.recvmsg(65535, 256)
        for level, kind, value in ancillary:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(value) >= 4:
                (status,) = struct.unpack_from("=I", value)
                if status & TP_STATUS_VLAN_VALID:
                    return data, 4
        return data, 0

    def close(self) -> None:
        self.send_sock.close()
        for sock in self.receivers.values():
            sock.close()


@pytest.fixture(scope="module")
def kernel_cbpf() -> Iterator[KernelCbpf]:
    problem = netlab.available()
    if problem:
        pytest.skip(problem)
    with netlab.NetLab("smct-cbpf") as lab:
        kernel = KernelCbpf(lab)
        yield kernel
        kernel.close()


def run_cbpf_kernel(kernel: KernelCbpf) -> Runner:
    def run(case: table.Case, linktype: int) -> list[Result | None]:
        # A frame shorter than an Ethernet header cannot be sent: not run (None).
        return [None if frame is None or len(frame) < 14 else
                (kernel.kept(frame, linktype), False, False)
                for frame, _now, _ in packet_times(case, linktype)]

    return run


def compare(case: table.Case, linktype: int, engine: str, run: Runner) -> None:
    want = expected(case, linktype, engine)
    got = run(case, linktype)
    steps = [b.step for b in table.build_case(case, linktype)]
    for index, (w, g, step) in enumerate(zip(want, got, steps, strict=True)):
        if g is None and engine == "cbpf":
            continue  # a frame the kernel cannot send
        assert g == w, (f"{engine}: frame {index} ({step.sender} flags {step.flags:#x}, "
                        f"{len(step.payload)} payload bytes): kept {g}, table says {w} "
                        f"({step.expected(engine).name})")


# --- the table against each engine ------------------------------------------------------


@pytest.mark.parametrize(("case", "linktype"), list(case_params()))
def test_reference(case: table.Case, linktype: int) -> None:
    compare(case, linktype, "reference", run_reference)


@pytest.mark.skipif(not NATIVE, reason="the C engine is not built")
@pytest.mark.parametrize(("case", "linktype"), list(case_params()))
def test_c_engine(case: table.Case, linktype: int) -> None:
    compare(case, linktype, "c", run_c)


@pytest.mark.parametrize(("case", "linktype"), list(case_params()))
def test_ebpf(case: table.Case, linktype: int, ebpf: dict[int, BccFilter]) -> None:
    compare(case, linktype, "ebpf", ebpf_runner(ebpf))


@pytest.mark.parametrize(("case", "linktype"), list(case_params()))
def test_cbpf_interpreted(case: table.Case, linktype: int) -> None:
    compare(case, linktype, "cbpf", run_cbpf_interpreted)


@pytest.mark.parametrize(("case", "linktype"), list(case_params()))
def test_cbpf_in_kernel(case: table.Case, linktype: int, kernel_cbpf: KernelCbpf) -> None:
    compare(case, linktype, "cbpf", run_cbpf_kernel(kernel_cbpf))


# --- one rule, one place ------------------------------------------------------------------


@pytest.mark.skipif(not NATIVE, reason="the C engine is not built")
def test_c_engine_was_built_from_the_rule() -> None:
    from smctrace.match import _engine  # type: ignore[attr-defined]

    built = _engine.constants()
    assert built == {
        "SMC_OPTION_EXID": rule.SMC_OPTION_EXID, "EYECATCHER_SMCR": rule.EYECATCHER_SMCR,
        "EYECATCHER_SMCD": rule.EYECATCHER_SMCD, "CLC_MIN_LEN": rule.CLC_MIN_LEN,
        "CLC_MAX_LEN": rule.CLC_MAX_LEN, "PAYLOAD_CAP": rule.PAYLOAD_CAP,
        "CLC_PHASE_BYTES": rule.CLC_PHASE_BYTES, "MAX_VLAN_TAGS": rule.MAX_VLAN_TAGS,
        "MAX_IPV6_EXT_HEADERS": rule.MAX_IPV6_EXT_HEADERS,
        "DUPLICATE_SLOTS": rule.DUPLICATE_SLOTS,
        "DUPLICATE_WINDOW_NS": int(rule.DUPLICATE_WINDOW * 1e9),
        "GRACE_NS": int(rule.LATE_DECLINE_GRACE * 1e9),
        "MAX_CONNECTIONS": rule.MAX_CONNECTIONS, "MAX_PENDING": rule.MAX_PENDING,
        "HELD_PICKUPS": rule.HELD_PICKUPS, "PICKUP_WAIT_NS": int(rule.PICKUP_WAIT * 1e9),
    }, "rebuild the C engine (pip install -e .): it was compiled from an older rule"


def test_the_programs_take_their_constants_from_the_rule() -> None:
    from smctrace.match.bcc import bpf_c_source

    source = bpf_c_source()
    assert rule.c_header() in source
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", source.replace(rule.c_header(), ""), flags=re.S)
    for literal in ("E2D4C3D9", "e2d4c3d9", "652", "1024", "0x8100", "0x86DD"):
        assert literal.lower() not in code.lower(), literal
    listing = cbpf.listing(cbpf.cbpf_program())
    assert f"#{rule.SMC_OPTION_EXID:#x}" in listing


def test_cbpf_drops_the_outgoing_copy_on_loopback() -> None:
    from tests.support.cbpf_interpreter import PacketMeta

    frame = table.tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, payload=table.PROPOSAL)
    program = cbpf.cbpf_program(LinkLayer.ETHERNET)
    assert run_program(program, frame, PacketMeta(pkttype=0, ifindex=1)) > 0
    assert run_program(program, frame, PacketMeta(pkttype=4, ifindex=1)) == 0
    assert run_program(program, frame, PacketMeta(pkttype=4, ifindex=2)) > 0


def test_cbpf_counts_a_vlan_tag_taken_out_of_band() -> None:
    from tests.support.cbpf_interpreter import PacketMeta

    program = cbpf.cbpf_program(LinkLayer.ETHERNET)
    for tags, kept in ((1, True), (2, False)):
        frame = table.tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, payload=table.PROPOSAL,
                                vlans=list(range(7, 7 + tags)))
        assert (run_program(program, frame, PacketMeta(vlan_avail=1)) > 0) == kept

"""The live receive paths agree: the C engine's recvmmsg path (``Engine.drain``) and the
Python fallback (``LiveCapture.frames`` + ``engine.feed``) give identical segments and
frames for the same frames.

Two captures listen on the same device at once (each socket gets its own copy of every
frame, with the same kernel timestamp), the replayer (tests/support/replay.py) sends the
real-kernel captures and VLAN-tagged handshakes into a veth pair, onto ``lo`` and out of a
tun device (no link header: SLL2 frames), in a namespace this test creates and removes;
then one capture is read with each path and everything is compared, times included.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smctrace.frame import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, Frame
from smctrace.live import LiveCapture
from smctrace.match.bcc import bcc_problem
from smctrace.match.engine import NATIVE, new_engine
from smctrace.packet import ACK, FIN, PSH, SYN
from tests.support import netlab
from tests.support.replay import capture_frames, write_blob
from tests.support.synth import tcp_frame

REPO = Path(__file__).resolve().parents[1]
CAPTURES = sorted((REPO / "tests" / "data" / "real-kernel").glob("*.pcap"))
BCC_PROBLEM = bcc_problem()

pytestmark = pytest.mark.skipif(not NATIVE, reason="the C engine is not built")


class Lab:
    def __init__(self, lab: netlab.NetLab) -> None:
        self.lab = lab
        self.ns = lab.namespace("recv")
        self.sender, self.receiver = lab.veth(self.ns)
        self.tun, _ = lab.tun(self.ns)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    problem = netlab.available()
    if problem:
        pytest.skip(problem)
    with netlab.NetLab("smct-recv") as net:
        try:
            yield Lab(net)
        except netlab.NetLabError as exc:
            pytest.skip(f"cannot create a network namespace: {exc}")


def clc(msg_type: int, length: int) -> bytes:
    eyecatcher = bytes.fromhex("e2d4c3d9")
    return (eyecatcher + bytes([msg_type]) + length.to_bytes(2, "big") + b"\x20"
            + bytes(length - 12) + eyecatcher)


def vlan_handshake(vlans: tuple[int, ...], port: int) -> list[bytes]:
    """An SMC handshake's frames with VLAN tags (the outer one the kernel takes out of
    band on receive, an inner one stays in the frame)."""
    def frame(client: bool, seq: int, flags: int, payload: bytes = b"",
              smc: bool = False) -> bytes:
        src, dst, sport, dport = (("10.42.0.1", "10.42.0.2", port, 7001) if client
                                  else ("10.42.0.2", "10.42.0.1", 7001, port))
        return tcp_frame(src, dst, sport, dport, seq=seq, flags=flags, payload=payload,
                         smc_option=smc, vlans=vlans)

    return [frame(True, 1000, SYN, smc=True), frame(False, 5000, SYN | ACK, smc=True),
            frame(True, 1001, ACK | PSH, clc(1, 92)), frame(False, 5001, ACK | PSH, clc(2, 68)),
            frame(True, 1093, ACK | PSH, clc(3, 68)), frame(True, 1161, FIN | ACK)]


def ethernet_frames() -> list[bytes]:
    return (capture_frames(CAPTURES) + vlan_handshake((42,), 40001)
            + vlan_handshake((100, 42), 40002))


def ip_packets() -> list[bytes]:
    """The real captures' IPv4/IPv6 packets without their Ethernet header (for tun)."""
    return [data[14:] for data in capture_frames(CAPTURES)
            if data[12:14] in (b"\x08\x00", b"\x86\xdd")]


def replay(lab: Lab, interface: str, frames: list[bytes], tmp_path: Path) -> None:
    blob = tmp_path / "frames.frames"
    write_blob(blob, frames)
    subprocess.run(lab.lab.argv(lab.ns, sys.executable, "-m", "tests.support.replay",
                                interface, str(blob)),
                   check=True, capture_output=True, timeout=120, cwd=REPO)


def read_all(capture: LiveCapture, native: bool) -> tuple[list[Any], list[Frame], int]:
    """Everything queued on the capture's sockets, through one receive path."""
    engine = new_engine(keep_frames=True)
    segments: list[Any] = []
    frames: list[Frame] = []
    count = 0
    quiet_since = time.monotonic()

    def stop() -> bool:
        return time.monotonic() - quiet_since > 0.5

    for batch in capture.batches(engine, stop, poll_interval=0.05, keep_frames=True,
                                 native=native):
        if batch.count:
            quiet_since = time.monotonic()
        count += batch.count
        segments += batch.segments
        frames += batch.frames
    return segments, frames, count


def both_paths(lab: Lab, interfaces: list[str], backend: str, send_on: str,
               frames: list[bytes], tmp_path: Path) -> tuple[Any, Any]:
    captures = [LiveCapture(interfaces, backend=backend) for _ in range(2)]
    try:
        with netlab.entered(lab.ns):
            for capture in captures:
                capture.attach()
        replay(lab, send_on, frames, tmp_path)
        time.sleep(0.2)
        return read_all(captures[0], native=True), read_all(captures[1], native=False)
    finally:
        for capture in captures:
            capture.close()


Case = tuple[Callable[[Lab], list[str]], Callable[[Lab], str], Callable[[], list[bytes]],
             int]
CASES: dict[str, Case] = {
    # name: (interfaces, device sent on, frames, link type of the frames read)
    "veth": (lambda lab: [lab.receiver], lambda lab: lab.sender, ethernet_frames,
             LINKTYPE_ETHERNET),
    "lo": (lambda lab: ["lo"], lambda lab: "lo", ethernet_frames, LINKTYPE_ETHERNET),
    "tun": (lambda lab: [lab.tun], lambda lab: lab.tun, ip_packets, LINKTYPE_LINUX_SLL2),
    "any": (lambda lab: ["any"], lambda lab: lab.sender, ethernet_frames,
            LINKTYPE_LINUX_SLL2),
    "two": (lambda lab: [lab.receiver, lab.sender], lambda lab: lab.sender,
            ethernet_frames, LINKTYPE_ETHERNET),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("backend", [
    "cbpf",
    pytest.param("bcc", marks=pytest.mark.skipif(
        BCC_PROBLEM is not None, reason=f"eBPF backend unavailable: {BCC_PROBLEM}")),
])
def test_native_and_python_receive_paths_agree(lab: Lab, case: str, backend: str,
                                               tmp_path: Path) -> None:
    if backend == "bcc" and case not in ("veth", "tun"):
        pytest.skip("one Ethernet and one header-less device suffice for the eBPF filter")
    interfaces, send_on, make, linktype = CASES[case]
    (c_segments, c_frames, c_count), (py_segments, py_frames, py_count) = both_paths(
        lab, interfaces(lab), backend, send_on(lab), make(), tmp_path)
    assert c_count == py_count == len(c_frames) > 10
    assert c_frames == py_frames
    assert c_segments == py_segments
    assert len(c_segments) > 10
    assert {frame.linktype for frame in c_frames} == {linktype}
    assert [frame.number for frame in c_frames] == list(range(1, c_count + 1))
    if case == "veth":
        tagged = [f for f in c_frames if f.data[12:14] in (b"\x81\x00", b"\x88\xa8")]
        assert len(tagged) >= 8  # both VLAN handshakes, their tags back in the frames
        assert any(f.data[12:18] == bytes.fromhex("88a80064" "8100") for f in tagged)
        assert all(f.orig_len >= len(f.data) for f in c_frames)

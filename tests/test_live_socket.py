"""Live capture end to end, inside a private network namespace.

A veth pair lives in a throw-away netns; LiveCapture listens on one end, a raw AF_PACKET
socket on the other end sends synthetic SMC handshake frames mixed with 10,000+ ordinary
TCP frames.  Nothing is ever sent outside the test namespace.  Sockets are created while
the test thread is switched into the namespace (setns affects only the calling thread) and
keep working after it switches back.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smctrace.frame import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, Frame
from smctrace.live import LiveCapture, LiveError, program_source
from smctrace.match.bcc import bcc_problem
from smctrace.packet import ACK, FIN, PSH, SYN
from tests.support import netlab
from tests.support.synth import tcp_frame

SENDER_MAC = bytes.fromhex("020000000001")
RECEIVER_MAC = bytes.fromhex("020000000002")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root (netns, AF_PACKET)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 'ip' is not installed"),
]

BCC_PROBLEM = bcc_problem()
BACKENDS = [
    pytest.param("cbpf"),
    pytest.param("bcc", marks=pytest.mark.skipif(
        BCC_PROBLEM is not None, reason=f"eBPF backend unavailable: {BCC_PROBLEM}")),
]

inside = netlab.entered  # this thread in a namespace for a ``with`` block


class Lab:
    """A namespace with a veth pair (sender end, capture end) and lo up, made with
    :class:`tests.support.netlab.NetLab`."""

    def __init__(self, net: netlab.NetLab) -> None:
        self.net = net
        self.netns = net.namespace("live")
        self.sender, self.receiver = net.veth(
            self.netns, macs=(SENDER_MAC.hex(":"), RECEIVER_MAC.hex(":")))

    def add_tun(self) -> tuple[str, int]:
        """A tun device in the namespace, up; its name and the fd whose writes arrive on
        it as received IP packets (closed with the lab)."""
        return self.net.tun(self.netns)

    def delete(self, device: str) -> None:
        self.net.run(self.netns, "ip", "link", "del", device)

    def sender_socket(self, device: str | None = None) -> socket.socket:
        with inside(self.netns):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            sock.bind((device or self.sender, 0))
        return sock

    def capture(self, interfaces: list[str], backend: str) -> LiveCapture:
        capture = LiveCapture(interfaces, backend=backend)
        with inside(self.netns):
            capture.attach()
        return capture


@pytest.fixture
def lab() -> Iterator[Lab]:
    problem = netlab.available()
    if problem:
        pytest.skip(problem)
    with netlab.NetLab("smctl") as net:
        try:
            lab = Lab(net)
        except netlab.NetLabError as exc:
            pytest.skip(f"cannot create a test network namespace: {exc}")
        yield lab


def clc(msg_type: int, length: int, version: int = 2) -> bytes:
    eyecatcher = bytes.fromhex("e2d4c3d9")
    return eyecatcher + struct.pack("!BHB", msg_type, length, version << 4) + bytes(
        length - 12) + eyecatcher


def smc_handshake(client: str, server: str, port: int, vlans: tuple[int, ...] = ()
                  ) -> list[tuple[str, bytes]]:
    """(what, frame) of an SMC-R handshake with a late fallback-free close."""
    c_seq, s_seq = 1000, 5000

    def frame(from_client: bool, seq: int, flags: int, payload: bytes = b"",
              smc: bool = False) -> bytes:
        src, dst = (client, server) if from_client else (server, client)
        sport, dport = (port, 5201) if from_client else (5201, port)
        return tcp_frame(src, dst, sport, dport, seq=seq, flags=flags, payload=payload,
                         smc_option=smc, vlans=vlans)

    proposal, accept, confirm = clc(1, 92), clc(2, 68, 1), clc(3, 68, 1)
    return [
        ("syn", frame(True, c_seq, SYN, smc=True)),
        ("syn-ack", frame(False, s_seq, SYN | ACK, smc=True)),
        ("ack", frame(True, c_seq + 1, ACK)),
        ("proposal", frame(True, c_seq + 1, ACK | PSH, proposal)),
        ("accept", frame(False, s_seq + 1, ACK | PSH, accept)),
        ("confirm", frame(True, c_seq + 93, ACK | PSH, confirm)),
        ("ack2", frame(False, s_seq + 69, ACK)),
        ("fin", frame(True, c_seq + 161, FIN | ACK)),
        ("fin2", frame(False, s_seq + 69, FIN | ACK)),
    ]


# What each backend lets through of smc_handshake(): the stateless cBPF keeps the SMC
# SYN/SYN-ACK and the CLC messages; eBPF also the first FIN (and forgets the connection).
EXPECTED = {
    "cbpf": ["syn", "syn-ack", "proposal", "accept", "confirm"],
    "bcc": ["syn", "syn-ack", "proposal", "accept", "confirm", "fin"],
}


def ordinary_frames(count: int) -> Iterator[bytes]:
    payload = b"x" * 100
    for index in range(count):
        port = 10000 + index % 20000
        kind = index % 4
        if kind == 0:
            yield tcp_frame("10.9.0.1", "10.9.0.2", port, 80, seq=index, flags=SYN)
        elif kind == 1:
            yield tcp_frame("10.9.0.2", "10.9.0.1", 80, port, seq=index, flags=SYN | ACK)
        elif kind == 2:
            yield tcp_frame("10.9.0.1", "10.9.0.2", port, 80, seq=index, payload=payload)
        else:
            yield tcp_frame("fd09::1", "fd09::2", port, 443, seq=index, payload=payload)


def collect(capture: LiveCapture, want: int, settle: float = 0.5, limit: float = 5.0
            ) -> list[Frame]:
    """Frames until ``want`` arrived and ``settle`` s passed without more (or ``limit``)."""
    frames: list[Frame] = []
    started = time.monotonic()
    last_frame = started

    def stop() -> bool:
        now = time.monotonic()
        if now - started > limit:
            return True
        return len(frames) >= want and now - last_frame > settle

    for frame in capture.frames(stop, poll_interval=0.05):
        if frame is not None:
            frames.append(frame)
            last_frame = time.monotonic()
    return frames


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_smc_frames_cross(lab: Lab, backend: str) -> None:
    ordinary = list(ordinary_frames(10_000))
    handshakes = [smc_handshake("10.2.0.1", "10.2.0.2", 40000),
                  smc_handshake("fd02::1", "fd02::2", 40001)]
    sender = lab.sender_socket()
    with lab.capture([lab.receiver], backend) as capture:
        assert capture.backend_used == backend
        assert capture.notice is None
        # Interleave: a handshake frame every ~500 ordinary frames.
        expected: list[bytes] = []
        smc = [(what, frame) for handshake in handshakes for what, frame in handshake]
        for index, frame in enumerate(ordinary):
            sender.send(frame)
            if index % 500 == 0 and smc:
                what, smc_frame = smc.pop(0)
                sender.send(smc_frame)
                if what in EXPECTED[backend]:
                    expected.append(smc_frame)
        for what, smc_frame in smc:
            sender.send(smc_frame)
            if what in EXPECTED[backend]:
                expected.append(smc_frame)
        frames = collect(capture, len(expected))
        stats = capture.stats()
    sender.close()

    assert [f.linktype for f in frames] == [LINKTYPE_ETHERNET] * len(frames)
    # The filter keeps headers (and payload for CLC): every frame is a prefix of one sent.
    assert len(frames) == len(expected)
    for sent, frame in zip(expected, frames, strict=True):
        assert sent.startswith(frame.data)
        assert frame.orig_len == len(sent)
    assert [f.number for f in frames] == list(range(1, len(frames) + 1))
    assert all(abs(f.time - time.time()) < 60 for f in frames)
    assert stats["received"] == len(expected)
    assert stats["dropped"] == 0
    if backend == "bcc":
        assert stats["kept"] == len(expected)
        assert stats["seen_by_filter"] >= len(ordinary) + sum(map(len, handshakes))
    else:
        assert stats["seen_by_filter"] == -1
        assert stats["kept"] == len(expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_vlan_tag_is_restored(lab: Lab, backend: str) -> None:
    sender = lab.sender_socket()
    syn = smc_handshake("10.3.0.1", "10.3.0.2", 40002, vlans=(42,))[0][1]
    with lab.capture([lab.receiver], backend) as capture:
        sender.send(syn)
        frames = collect(capture, 1)
    sender.close()
    assert len(frames) == 1
    assert frames[0].data[12:16] == struct.pack("!HH", 0x8100, 42)
    assert syn.startswith(frames[0].data)


@pytest.mark.parametrize("backend", BACKENDS)
def test_loopback_frames_counted_once(lab: Lab, backend: str) -> None:
    sender = lab.sender_socket("lo")
    # A CLC message crosses every time (the same SYN twice would be one SYN to the rule).
    proposal = smc_handshake("127.0.0.1", "127.0.0.1", 40003)[3][1]
    with lab.capture(["lo"], backend) as capture:
        for _ in range(3):
            sender.send(proposal)
        frames = collect(capture, 3)
    sender.close()
    assert len(frames) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_any_interface_gives_sll2(lab: Lab, backend: str) -> None:
    sender = lab.sender_socket()
    syn = smc_handshake("10.4.0.1", "10.4.0.2", 40004)[3][1]  # the Proposal: crosses twice
    with inside(lab.netns):
        receiver_index = socket.if_nametoindex(lab.receiver)
        sender_index = socket.if_nametoindex(lab.sender)
    with lab.capture(["any"], backend) as capture:
        for frame in ordinary_frames(2000):
            sender.send(frame)
        sender.send(syn)
        # Seen leaving the sender end and arriving at the receiver end, like tcpdump -i any.
        frames = collect(capture, 2)
    sender.close()
    assert len(frames) == 2
    indexes = set()
    for frame in frames:
        assert frame.linktype == LINKTYPE_LINUX_SLL2
        protocol, _, ifindex, hatype, _pkttype, halen, _ = struct.unpack_from(
            "!HHIHBB8s", frame.data)
        assert (protocol, hatype, halen) == (0x0800, 1, 6)
        assert syn[14:].startswith(frame.data[20:])
        indexes.add(ifindex)
    assert indexes == {receiver_index, sender_index}


@pytest.mark.parametrize("backend", BACKENDS)
def test_interface_removed_mid_trace(lab: Lab, backend: str) -> None:
    capture = lab.capture([lab.receiver], backend)
    try:
        ticks = 0

        def stop() -> bool:
            return ticks > 50

        with pytest.raises(LiveError, match=f"interface {lab.receiver} went away"):
            for frame in capture.frames(stop, poll_interval=0.02):
                assert frame is None
                ticks += 1
                if ticks == 2:
                    lab.delete(lab.sender)
    finally:
        capture.close()


def test_missing_interface_is_one_line_error() -> None:
    capture = LiveCapture(["smctrace-nope0"], backend="cbpf")
    with pytest.raises(LiveError, match="interface smctrace-nope0 does not exist"):
        capture.attach()
    capture.close()


def test_any_cannot_be_combined() -> None:
    with pytest.raises(LiveError, match="-i any"):
        LiveCapture(["any", "lo"]).attach()


@pytest.mark.parametrize("backend", BACKENDS)
def test_program_source(backend: str) -> None:
    text = program_source(backend, ["lo"])
    if backend == "bcc":
        assert "#define SMC_L2_MODE 1" in text
        assert "smc_clc_filter" in text
    else:
        assert "(000) ld       #pkttype" in text
    assert "lo" in text.splitlines()[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_attach_time_is_measured(lab: Lab, backend: str) -> None:
    """attach() records how long it took (scripts/bench_live.py startup reports it
    against tcpdump; no timing is asserted here)."""
    capture = lab.capture([lab.receiver], backend)
    capture.close()
    assert capture.backend_used == backend and capture.attach_seconds > 0


@pytest.mark.parametrize("suffix", [".pcap", ".pcapng"])
def test_traced_frames_saved(lab: Lab, tmp_path: Any, suffix: str) -> None:
    from smctrace.capture.pcapfile import CaptureFile
    from smctrace.output.pcap import FrameWriter

    sender = lab.sender_socket()
    handshake = smc_handshake("10.5.0.1", "10.5.0.2", 40005)
    path = str(tmp_path / f"trace{suffix}")
    with lab.capture([lab.receiver], "cbpf") as capture:
        writer = FrameWriter(path, capture.snaplen)
        for name, linktype in capture.interface_link_types():
            writer.add_interface(name, linktype)
        for _, frame in handshake:
            sender.send(frame)
        frames = collect(capture, len(EXPECTED["cbpf"]))
        for frame in frames:
            writer.write(frame.interface, frame.time, frame.data, frame.orig_len)
        writer.close()
    sender.close()
    with CaptureFile(path) as saved:
        read_back = list(saved.frames())
    assert [(f.data, f.orig_len, f.linktype) for f in read_back] == [
        (f.data, f.orig_len, f.linktype) for f in frames
    ]
    assert all(abs(a.time - b.time) < 1e-6 for a, b in zip(read_back, frames, strict=True))


@pytest.mark.parametrize("backend", BACKENDS)
def test_headerless_device(lab: Lab, backend: str) -> None:
    """A tun device has no link header: frames come out as SLL2 and the filter reads the
    IP header at offset 0."""
    from smctrace.frame import LINKTYPE_RAW

    tun_name, tun = lab.add_tun()
    syn = tcp_frame("10.6.0.1", "10.6.0.2", 40006, 5201, seq=1, flags=SYN,
                    smc_option=True, linktype=LINKTYPE_RAW)
    ordinary = [tcp_frame("10.6.0.1", "10.6.0.2", port, 80, payload=b"y" * 64,
                          linktype=LINKTYPE_RAW) for port in range(2000, 2500)]
    with lab.capture([tun_name], backend) as capture:
        for packet in ordinary:
            os.write(tun, packet)
        os.write(tun, syn)
        frames = collect(capture, 1)
    assert len(frames) == 1
    frame = frames[0]
    assert frame.linktype == LINKTYPE_LINUX_SLL2
    protocol, _, _, hatype, _, _, _ = struct.unpack_from("!HHIHBB8s", frame.data)
    assert (protocol, hatype) == (0x0800, 0xFFFE)  # ARPHRD_NONE
    assert frame.data[20:] == syn


@pytest.mark.parametrize("backend", BACKENDS)
def test_receive_queue_overflow_is_counted(lab: Lab, backend: str) -> None:
    sender = lab.sender_socket()
    syn = smc_handshake("10.7.0.1", "10.7.0.2", 40007)[3][1]  # the Proposal: crosses each time
    capture = LiveCapture([lab.receiver], backend=backend, buffer_bytes=4096)
    with inside(lab.netns):
        capture.attach()
    try:
        for _ in range(2000):  # nobody reads: the tiny queue overflows
            sender.send(syn)
        time.sleep(0.1)
        frames = collect(capture, 1, settle=0.2)
        stats = capture.stats()
    finally:
        capture.close()
        sender.close()
    assert stats["received"] == 2000  # passed the filter, including the dropped ones
    assert stats["dropped"] > 0
    assert len(frames) == stats["received"] - stats["dropped"]
    assert capture.stats() == stats  # still answers after close, accumulated


def test_program_source_for_unknown_interface() -> None:
    assert "ldh      [12]" in program_source("cbpf", ["smctrace-nope0"])


def test_auto_falls_back_to_cbpf_without_headers(lab: Lab, monkeypatch: Any) -> None:
    monkeypatch.setenv("BCC_KERNEL_SOURCE", "/nonexistent")
    capture = lab.capture([lab.receiver], "auto")
    capture.close()
    assert capture.backend_used == "cbpf"
    assert capture.notice is not None
    assert "\n" not in capture.notice
    assert "BCC_KERNEL_SOURCE=/nonexistent" in capture.notice
    with pytest.raises(LiveError, match="BCC_KERNEL_SOURCE"):
        lab.capture([lab.receiver], "bcc")


def test_auto_falls_back_to_cbpf_without_bcc(lab: Lab, monkeypatch: Any) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "bcc", None)  # import bcc -> ImportError
    capture = lab.capture([lab.receiver], "auto")
    capture.close()
    assert capture.backend_used == "cbpf"
    assert capture.notice is not None
    assert "apt install python3-bpfcc" in capture.notice
    with pytest.raises(LiveError, match="BCC is not installed: apt install python3-bpfcc"):
        lab.capture([lab.receiver], "bcc")


@pytest.mark.skipif(BCC_PROBLEM is not None, reason=f"eBPF backend unavailable: {BCC_PROBLEM}")
def test_bcc_compile_is_quiet(lab: Lab, capfd: Any) -> None:
    capture = lab.capture([lab.receiver], "bcc")
    capture.close()
    assert capfd.readouterr().err == ""


def test_unprivileged_user_gets_one_line(tmp_path: Any) -> None:
    """Without CAP_NET_RAW/CAP_BPF, smctrace -i says what is missing, in one line."""
    import sys

    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    script = Path(sys.executable).parent / "smctrace"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "smctrace"]
    for backend in ("cbpf", "bcc", "auto"):
        result = subprocess.run(
            [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
             *command, "-i", "lo", "--backend", backend, "--duration", "1"],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))},
        )
        lines = result.stderr.splitlines()
        assert result.returncode == 1 and len(lines) == 1, result.stderr
        if backend == "bcc":
            assert "CAP_NET_RAW" in lines[0] or "CAP_BPF" in lines[0]
        else:
            assert lines[0] == "smctrace: live capture needs root or CAP_NET_RAW (try sudo)"


@pytest.mark.parametrize("backend", BACKENDS)
def test_several_interfaces(lab: Lab, backend: str) -> None:
    """-i B -i A -i tun: one socket each, Ethernet and header-less mixed (two eBPF
    programs), Frame.interface says which one."""
    from smctrace.frame import LINKTYPE_RAW

    tun_name, tun = lab.add_tun()
    sender = lab.sender_socket()
    syn = smc_handshake("10.10.0.1", "10.10.0.2", 40010)[3][1]  # the Proposal
    syn_raw = tcp_frame("10.10.1.1", "10.10.1.2", 40011, 5201, payload=clc(1, 92),
                        linktype=LINKTYPE_RAW)
    try:
        with lab.capture([lab.receiver, lab.sender, tun_name], backend) as capture:
            for frame in ordinary_frames(1000):
                sender.send(frame)
            sender.send(syn)
            os.write(tun, syn_raw)
            frames = collect(capture, 3)
    finally:
        sender.close()
    by_interface = {frame.interface: frame for frame in frames}
    assert len(frames) == 3
    assert sorted(by_interface) == [0, 1, 2]
    assert by_interface[0].data == syn[: len(by_interface[0].data)]  # arrived at B
    assert by_interface[1].data == by_interface[0].data  # left A
    assert by_interface[2].linktype == LINKTYPE_LINUX_SLL2
    assert by_interface[2].data[20:] == syn_raw


@pytest.mark.parametrize("backend", BACKENDS)
def test_too_little_socket_option_memory_is_raised_once(lab: Lab, backend: str) -> None:
    """Linux before 6.9 allows 20480 bytes of socket option memory by default, less than
    a filter is charged: smctrace raises the limit of its network namespace and says so."""
    optmem = "/proc/sys/net/core/optmem_max"
    subprocess.run(["ip", "netns", "exec", lab.netns, "sh", "-c", f"echo 20480 > {optmem}"],
                   check=True, timeout=10)
    with lab.capture([lab.receiver], backend) as capture:
        assert capture.notice is not None
        assert "raised net.core.optmem_max from 20480 to 131072" in capture.notice
    with inside(lab.netns):
        assert Path(optmem).read_text().strip() == "131072"

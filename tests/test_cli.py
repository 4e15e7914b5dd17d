"""The command line, end to end: formats, link types, stdin, errors, escaping."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smctrace.capture.pcapfile import CaptureFile
from smctrace.capture.pcapwriter import PcapngWriter, PcapWriter
from smctrace.cli import main
from smctrace.frame import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    Frame,
)
from smctrace.packet import ACK, PSH, parse_frame
from tests.support.synth import link_header, tcp_frame

REAL = Path(__file__).resolve().parent / "data" / "real-kernel"
SMCD = REAL / "C-smcd-loopback-ism-k612lo.pcap"
SMCD6 = REAL / "C6-smcd-loopback-ism-v6-k612lo.pcap"
D7 = REAL / "D7-smcr-v2-mixed-srv61-cli612-srv_k61-cli_k612.pcap"


def run(*args: str, input: bytes | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=input)


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def connections(stdout: str) -> list[dict[str, Any]]:
    return [e for e in events(stdout) if e["event"] == "connection"]


def real_frames(path: Path) -> list[tuple[float, bytes]]:
    with CaptureFile(str(path)) as cap:
        return [(f.time, f.data) for f in cap.frames()]


@pytest.mark.parametrize("linktype,vlans", [
    (LINKTYPE_ETHERNET, (100,)), (LINKTYPE_ETHERNET, (200, 100)), (LINKTYPE_LINUX_SLL, ()),
    (LINKTYPE_LINUX_SLL2, ()), (LINKTYPE_RAW, ()), (LINKTYPE_NULL, ()), (LINKTYPE_LOOP, ()),
])
@pytest.mark.parametrize("capture", [SMCD, SMCD6], ids=["v4", "v6"])
def test_real_handshake_in_every_link_type(tmp_path: Path, linktype: int,
                                           vlans: tuple[int, ...], capture: Path) -> None:
    """Re-encapsulate a real capture: the outcome must not depend on the link layer."""
    out = tmp_path / "x.pcap"
    with out.open("wb") as fh:
        w = PcapWriter(fh, linktype)
        for t, data in real_frames(capture):
            ip = data[14:]
            w.write(t, link_header(linktype, ip[0] >> 4 == 6, vlans) + ip)
    want = connections(run("-f", str(capture), "--json").stdout)
    got = connections(run("-f", str(out), "--json").stdout)
    assert got == want and got[0]["outcome"] == "smc"


def test_pcapng_with_interfaces_of_different_link_types(tmp_path: Path) -> None:
    """Two real captures interleaved into one pcapng, one interface each."""
    out = tmp_path / "x.pcapng"
    frames = [(t, 0, d) for t, d in real_frames(SMCD)] + \
             [(t, 1, d[14:]) for t, d in real_frames(D7)]
    frames.sort()
    with out.open("wb") as fh:
        w = PcapngWriter(fh)
        w.add_interface(LINKTYPE_ETHERNET, "lo", tsresol=6)
        w.add_interface(LINKTYPE_IPV4, "eth0", tsresol=9)
        for t, ifc, data in frames:
            w.write(ifc, t, data)
    got = {c["server"]: c["outcome"] for c in connections(run("-f", str(out), "--json").stdout)}
    assert got == {"127.0.0.1:7001": "smc", "192.0.2.1:7001": "fallback"}


def test_stdin_pipe() -> None:
    proc = subprocess.run([sys.executable, "-m", "smctrace", "-f", "-", "--json"],
                          input=SMCD.read_bytes(), capture_output=True, check=True)
    assert connections(proc.stdout.decode())[0]["path"] == "SMC-D"
    assert "11 frames read" in proc.stderr.decode()


def test_text_output_lines_and_summary() -> None:
    result = run("-f", str(SMCD), "--no-timestamps")
    lines = result.stdout.splitlines()
    assert result.exit_code == 0
    assert lines[0].startswith("127.0.0.1:57474 -> 127.0.0.1:7001: Proposal")
    assert lines[1].startswith("127.0.0.1:7001 -> 127.0.0.1:57474: Accept")
    assert lines[-1].startswith("127.0.0.1:57474 -> 127.0.0.1:7001: SMC-D v2.1 established, "
                                "first contact, ")
    assert result.stderr.strip() == ("11 frames read, 1 SMC connection (1 smc, 0 fallback, "
                                     "0 failed, 0 incomplete), 0 plain TCP, 3 CLC messages")


def test_timestamps_are_packet_times(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        first = run("-f", str(SMCD)).stdout.splitlines()[0]
    finally:
        monkeypatch.undo()
        time.tzset()
    # `TZ=UTC tcpdump -nr C-smcd-loopback-ism-k612lo.pcap` prints frame 4 at this time
    assert first.startswith("01:17:02.600578 ")


def test_hex_dump_follows_each_message() -> None:
    out = run("-f", str(REAL / "A-smc-lo-decline-k61.pcap"), "--hex", "--no-timestamps").stdout
    assert "e2d4 c3d9 0400 1c10" in out.replace("e2 d4 c3 d9 04 00 1c 10", "e2d4 c3d9 0400 1c10")


def test_table_output() -> None:
    result = run("-f", str(D7), "--table")
    assert result.exit_code == 0
    assert "0x02010000 TIMEOUT_CL (client)" in result.stdout
    assert "fallback" in result.stdout and "handshake ms" in result.stdout


def test_missing_file_is_one_line_and_exit_1() -> None:
    result = run("-f", "/nonexistent/dump.pcap")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "No such file" in result.stderr
    assert "Traceback" not in result.output


def test_not_a_capture_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture file at all")
    result = run("-f", str(bad))
    assert result.exit_code == 1 and result.stderr.count("\n") == 1


def test_truncated_file_decodes_the_prefix_then_fails(tmp_path: Path) -> None:
    data = D7.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])  # the last frame loses its tail
    result = run("-f", str(cut), "--json")
    assert result.exit_code == 1
    kinds = [e.get("type") for e in events(result.stdout) if e["event"] == "clc"]
    assert kinds == ["proposal", "accept", "confirm", "decline"]
    assert events(result.stdout)[-1]["event"] == "summary"
    assert result.stderr.splitlines()[-1].startswith("smctrace: ")
    assert "truncated" in result.stderr.splitlines()[-1]


def test_wire_strings_never_reach_the_terminal_raw(tmp_path: Path) -> None:
    """A hostname with an escape sequence is printed escaped (text and JSON)."""
    capture = real_frames(SMCD)
    out = tmp_path / "evil.pcap"
    with out.open("wb") as fh:
        w = PcapWriter(fh, LINKTYPE_ETHERNET)
        for t, data in capture:
            # the guests' hostname is the kernel default "(none)", in both FCEs
            w.write(t, data.replace(b"(none)", b"\x1b[2J\x07b"))
    for args in ((), ("--json",), ("--table",)):
        result = run("-f", str(out), *args)
        assert result.exit_code == 0
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "host \\x1b[2J\\x07b" in run("-f", str(out)).stdout
    assert '"hostname": "\\\\x1b[2J\\\\x07b"' in run("-f", str(out), "--json").stdout


def test_json_and_table_are_exclusive() -> None:
    result = run("-f", str(SMCD), "--json", "--table")
    assert result.exit_code == 2 and "cannot be combined" in result.stderr


def test_needs_a_source() -> None:
    result = run()
    assert result.exit_code == 2 and "-f FILE or -i IFACE" in result.stderr


def test_split_and_reordered_handshake_in_a_file(tmp_path: Path) -> None:
    """Messages split over tiny segments, delivered out of order, with retransmissions."""
    frames = real_frames(SMCD)
    out = tmp_path / "split.pcap"
    c, s = ("127.0.0.1", 57474), ("127.0.0.1", 7001)
    with out.open("wb") as fh:
        w = PcapWriter(fh, LINKTYPE_ETHERNET)
        for t, data in frames:
            seg = parse_frame(Frame(t, LINKTYPE_ETHERNET, data, len(data)))
            assert seg is not None
            if not seg.payload:
                w.write(t, data)
                continue
            src, dst = (c, s) if seg.sport == c[1] else (s, c)
            pieces = [(seg.seq + i, seg.payload[i:i + 50]) for i in range(0, len(seg.payload), 50)]
            pieces = pieces[1:] + pieces[:1] + pieces[:1]  # first piece last, and twice
            for seq, piece in pieces:
                w.write(t, tcp_frame(src[0], dst[0], src[1], dst[1], seq=seq,
                                     flags=ACK | PSH, payload=piece))
    result = run("-f", str(out), "--json")
    [conn] = connections(result.stdout)
    assert conn["outcome"] == "smc" and conn["messages"] == ["proposal", "accept", "confirm"]
    lengths = [e["length"] for e in events(result.stdout) if e["event"] == "clc"]
    assert lengths == [224, 130, 130]
    assert all(e["malformed"] is None for e in events(result.stdout) if e["event"] == "clc")

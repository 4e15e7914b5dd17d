"""End to end: real-kernel captures replayed onto a veth pair, traced live.

The test makes a private network namespace with a veth pair, runs ``smctrace -i`` on one
end, sends every frame of every capture in tests/data/real-kernel onto the other end, and
requires the live JSON to equal ``smctrace -f`` on the same files, connection by connection
and message by message.  Then it replays again while flooding the pair with 100,000
ordinary TCP segments: no extra frame may reach user space, every handshake is still traced.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "tests" / "data" / "real-kernel"
CAPTURES = sorted(REAL.glob("*.pcap"))
FLOOD_SEGMENTS = 100_000

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, AF_PACKET, BPF)")

# Sends every frame of the given captures out of IFACE; with --flood N, interleaves N
# ordinary TCP segments (data, ACKs, plain SYN/FIN) between them.
SENDER = r"""
import socket, struct, sys
from smctrace.capture.pcapfile import CaptureFile
from smctrace.capture.synth import tcp_frame
from smctrace.packet import ACK, FIN, PSH, SYN
iface, flood, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
templates = [bytearray(tcp_frame("198.51.100.1", "198.51.100.2", 1024, 80, flags=f,
                                 payload=p))
             for f, p in ((ACK | PSH, bytes(100)), (ACK, b""), (SYN, b""), (FIN | ACK, b""),
                          (ACK | PSH, b"\xe2\xd4" + bytes(60)))]
frames = []
for path in paths:
    with CaptureFile(path) as capture:
        frames += [f.data for f in capture.frames()]
per_gap = flood // max(len(frames), 1) + 1
sent = 0
for data in frames:
    for i in range(per_gap if sent < flood else 0):
        t = templates[i % len(templates)]
        struct.pack_into("!H", t, 34, 1024 + (sent % 60000))  # vary the source port
        s.send(t)
        sent += 1
    s.send(data)
print(sent)
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    name = f"smct-e2e-{os.getpid()}"
    try:
        ip("netns", "add", name)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot create a network namespace: {exc}")
    try:
        ip("-n", name, "link", "add", "name", "rp0", "type", "veth", "peer", "name", "rp1")
        ip("-n", name, "link", "set", "rp0", "up")
        ip("-n", name, "link", "set", "rp1", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def offline(path: Path) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "smctrace", "-f", str(path), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def live(netns: str, backend: str, flood: int,
         *extra: str) -> tuple[list[dict[str, Any]], int]:
    """Trace rp1 while every capture is sent out of rp0; return events and segments sent."""
    tracer = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "smctrace", "-i", "rp1",
         "--backend", backend, "--json", "-Z", "root", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert tracer.stderr is not None
        line = tracer.stderr.readline()  # written once the filter is attached
        if "tracing on rp1" not in line:
            tracer.kill()
            pytest.skip(f"live tracing unavailable here: {line.strip()}")
        sender = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c", SENDER, "rp0", str(flood),
             *map(str, CAPTURES)],
            capture_output=True, text=True, check=True, timeout=300, cwd=REPO)
        time.sleep(1.0)  # let the last frames arrive
    finally:
        tracer.send_signal(signal.SIGINT)
    out, err = tracer.communicate(timeout=60)
    assert tracer.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()], int(sender.stdout)


def comparable_message(e: dict[str, Any]) -> tuple[Any, ...]:
    return (e["client"], e["server"], e["from"], e["type"], e["version"], e["length"],
            e["eyecatcher"], json.dumps(e["fields"], sort_keys=True), e["malformed"])


def comparable_connection(e: dict[str, Any]) -> tuple[Any, ...]:
    # Times differ (the replay runs at top speed); everything decoded must not.
    return (e["client"], e["server"], e["syn_option"], e["synack_option"],
            tuple(e["messages"]), e["outcome"], e["path"], e["version"], e["release"],
            e["first_contact"], json.dumps(e["decline"], sort_keys=True), e["reason"])


@pytest.fixture(scope="module")
def expected() -> list[dict[str, Any]]:
    return [e for path in CAPTURES for e in offline(path)]


def select(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == kind]


def test_live_equals_offline_bcc(netns: str, expected: list[dict[str, Any]]) -> None:
    events, _ = live(netns, "bcc", 0)
    assert [comparable_connection(e) for e in select(events, "connection")] == \
        [comparable_connection(e) for e in select(expected, "connection")]
    assert [comparable_message(e) for e in select(events, "clc")] == \
        [comparable_message(e) for e in select(expected, "clc")]
    summary = events[-1]
    assert summary["event"] == "summary" and summary["dropped"] == 0
    assert summary["kept"] == summary["received"] == summary["frames"]


def test_live_cbpf_decodes_the_same_messages(netns: str, expected: list[dict[str, Any]]) -> None:
    """The stateless backend keeps every CLC message (not the option-less SYN-ACK/FIN)."""
    events, _ = live(netns, "cbpf", 0)
    assert [comparable_message(e) for e in select(events, "clc")] == \
        [comparable_message(e) for e in select(expected, "clc")]
    decided = [e for e in select(expected, "connection") if e["messages"]]
    got = {(e["client"], e["server"]): e for e in select(events, "connection")}
    for e in decided:
        assert got[(e["client"], e["server"])]["outcome"] == e["outcome"]


def test_flood_never_reaches_user_space(netns: str, expected: list[dict[str, Any]]) -> None:
    quiet, _ = live(netns, "bcc", 0)
    events, flooded = live(netns, "bcc", FLOOD_SEGMENTS)
    assert flooded >= FLOOD_SEGMENTS
    summary, quiet_summary = events[-1], quiet[-1]
    # Exactly the frames of the quiet run crossed: not one of the flood's.
    assert summary["received"] == quiet_summary["received"]
    assert summary["seen_by_filter"] >= quiet_summary["seen_by_filter"] + FLOOD_SEGMENTS
    assert summary["dropped"] == 0
    assert [comparable_connection(e) for e in select(events, "connection")] == \
        [comparable_connection(e) for e in select(expected, "connection")]


def test_count_stops_after_n_connections(netns: str) -> None:
    tracer = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "smctrace", "-i", "rp1",
         "--json", "-c", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert tracer.stderr is not None
    line = tracer.stderr.readline()
    if "tracing on rp1" not in line:
        tracer.kill()
        pytest.skip(f"live tracing unavailable here: {line.strip()}")
    subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", SENDER, "rp0", "0",
                    *map(str, CAPTURES)], check=True, timeout=300, cwd=REPO,
                   capture_output=True)
    try:
        out, _ = tracer.communicate(timeout=30)  # exits by itself, no signal
    finally:
        tracer.kill()
    events = [json.loads(line) for line in out.splitlines()]
    assert tracer.returncode == 0
    assert len(select(events, "connection")) >= 3
    assert events[-1]["event"] == "summary"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark reads the comments back")
def test_write_pcapng_names_each_clc_frame(netns: str, tmp_path: Path) -> None:
    out = tmp_path / "kept.pcapng"
    events, _ = live(netns, "bcc", 0, "-w", str(out))
    comments = subprocess.run(
        ["tshark", "-r", str(out), "-T", "fields", "-e", "frame.comment"],
        capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(comments) == events[-1]["kept"]  # every kept frame, nothing else
    named = [c for c in comments if c]
    clc = select(events, "clc")
    assert len(named) == len(clc)
    assert named[0] == (f"SMC CLC {clc[0]['type'].capitalize()} v{clc[0]['version']} "
                        f"({clc[0]['length']} bytes) from {clc[0]['from']}")

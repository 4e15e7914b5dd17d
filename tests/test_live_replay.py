"""End to end: real-kernel captures replayed onto a veth pair, traced live.

The test makes a private network namespace with a veth pair, runs ``smctrace -i`` on one
end, sends every frame of every capture in tests/data/real-kernel onto the other end, and
requires the live JSON to equal ``smctrace -f`` on the same files, connection by connection
and message by message.  Then it replays again while flooding the pair with 100,000
ordinary TCP segments: no extra frame may reach user space, every handshake is still traced.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import netlab

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "tests" / "data" / "real-kernel"
CAPTURES = sorted(REAL.glob("*.pcap"))
FLOOD_SEGMENTS = 100_000


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    problem = netlab.available()
    if problem:
        pytest.skip(problem)
    with netlab.NetLab("smct-e2e") as lab:
        try:
            name = lab.namespace("replay")
            lab.veth(name)
        except netlab.NetLabError as exc:
            pytest.skip(f"cannot create a network namespace: {exc}")
        yield name


def interfaces(netns: str) -> tuple[str, str]:
    """The veth pair of the namespace: (sending end, traced end)."""
    out = subprocess.run(["ip", "-n", netns, "-o", "link", "show", "type", "veth"],
                         capture_output=True, text=True, check=True).stdout
    names = sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())
    return names[0], names[1]


def replay(netns: str, flood: int = 0) -> int:
    """Send every real capture out of the sending end; returns the flood frames sent."""
    sender, _ = interfaces(netns)
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "tests.support.replay", sender,
         "--flood", str(flood), *map(str, CAPTURES)],
        capture_output=True, text=True, check=True, timeout=300, cwd=REPO)
    return int(json.loads(proc.stdout.splitlines()[-1])["flood"])


def offline(path: Path) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "smctrace", "-f", str(path), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def start_tracer(netns: str, *args: str) -> subprocess.Popen[str]:
    """smctrace -i on the traced end, once its filter is attached (else the test skips)."""
    _, traced = interfaces(netns)
    tracer = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "smctrace", "-i", traced,
         "--json", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert tracer.stderr is not None
    line = tracer.stderr.readline()  # written once the filter is attached
    if f"tracing on {traced}" not in line:
        tracer.kill()
        pytest.skip(f"live tracing unavailable here: {line.strip()}")
    return tracer


def live(netns: str, backend: str, flood: int,
         *extra: str) -> tuple[list[dict[str, Any]], int]:
    """Trace while every capture is replayed; return the events and flood frames sent."""
    tracer = start_tracer(netns, "--backend", backend, "-Z", "root", *extra)
    try:
        flooded = replay(netns, flood)
        time.sleep(1.0)  # let the last frames arrive
    finally:
        tracer.send_signal(signal.SIGINT)
    out, err = tracer.communicate(timeout=60)
    assert tracer.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()], flooded


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
    # ... while the filter saw (and dropped) every frame of the flood; background frames
    # of a new veth (IPv6 neighbour discovery) vary from run to run, so they are not
    # compared between the runs
    assert summary["seen_by_filter"] - summary["kept"] >= FLOOD_SEGMENTS
    assert summary["dropped"] == 0
    assert [comparable_connection(e) for e in select(events, "connection")] == \
        [comparable_connection(e) for e in select(expected, "connection")]


def test_count_stops_after_n_connections(netns: str) -> None:
    tracer = start_tracer(netns, "-c", "3")
    replay(netns)
    try:
        out, _ = tracer.communicate(timeout=30)  # exits by itself, no signal
    finally:
        tracer.kill()
    events = [json.loads(line) for line in out.splitlines()]
    assert tracer.returncode == 0
    assert len(select(events, "connection")) == 3  # exactly: nothing after the third
    assert events[-1]["event"] == "summary" and events[-1]["connections"] == 3


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

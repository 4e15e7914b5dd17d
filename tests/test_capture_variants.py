"""Every real capture, as people actually capture it, decodes to the original's result.

Each variant of tests/support/variants.py (split and reordered segments, retransmissions,
overlaps, every frame seen twice, ``-i any`` copies, no TCP handshake) of each capture in
tests/data/real-kernel must give exactly the original's connections, messages and
outcomes, offline (smctrace -f) and live (the variant replayed on a veth pair in a
private network namespace and traced with smctrace -i, eBPF backend); with the classic-BPF
backend the variants that split CLC messages are its documented exception, and the
summary must say so.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smctrace.capture.pcapfile import CaptureFile
from smctrace.capture.pcapwriter import PcapWriter
from smctrace.frame import LINKTYPE_ETHERNET, Frame
from tests.support import netlab
from tests.support.variants import RESENDING, SPLITTING, VARIANTS

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "tests" / "data" / "real-kernel"
CAPTURES = sorted(REAL.glob("*.pcap"))
Event = dict[str, Any]


def read_frames(path: Path) -> list[Frame]:
    with CaptureFile(str(path)) as capture:
        return list(capture.frames())


def write_capture(path: Path, frames: list[Frame]) -> None:
    linktypes = {frame.linktype for frame in frames}
    assert len(linktypes) == 1
    with path.open("wb") as out:
        writer = PcapWriter(out, linktypes.pop(), nanosecond=True)
        for frame in frames:
            writer.write(frame.time, frame.data, frame.orig_len)


def offline(path: Path) -> list[Event]:
    out = subprocess.run([sys.executable, "-m", "smctrace", "-f", str(path), "--json"],
                         capture_output=True, text=True, check=True, cwd=REPO).stdout
    return [json.loads(line) for line in out.splitlines()]


def messages(events: list[Event]) -> list[tuple[Any, ...]]:
    return [(e["time"], e["client"], e["server"], e["from"], e["type"], e["version"],
             e["length"], json.dumps(e["fields"], sort_keys=True), e["malformed"])
            for e in events if e["event"] == "clc"]


def connections(events: list[Event], *, variant: str) -> list[tuple[Any, ...]]:
    """What every variant must keep: the decoded handshake and its outcome.  Without
    the TCP handshake, the SYN's option, its time and what it decided are not seen."""
    out = []
    for e in events:
        if e["event"] != "connection":
            continue
        row = [e["client"], e["server"], tuple(e["messages"]), e["outcome"], e["path"],
               e["version"], e["release"], e["first_contact"],
               json.dumps(e["decline"], sort_keys=True)]
        if variant != "midstream":
            row += [e["syn_option"], e["synack_option"], e["reason"], e["handshake_ms"],
                    e["start"], e["end"]]
        out.append(tuple(row))
    return out


@pytest.fixture(scope="module")
def originals() -> dict[str, list[Event]]:
    return {path.stem: offline(path) for path in CAPTURES}


@pytest.fixture(scope="module")
def variant_files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    directory = tmp_path_factory.mktemp("variants")
    files = {}
    for path in CAPTURES:
        frames = read_frames(path)
        for name, transform in VARIANTS.items():
            target = directory / f"{path.stem}.{name}.pcap"
            write_capture(target, transform(frames))
            files[(path.stem, name)] = target
    return files


def expected_of(original: list[Event], variant: str) -> list[Event]:
    """The original's events that the variant can show: without the TCP handshake, a
    fallback decided in it (no CLC message at all) is not there to be seen."""
    if variant != "midstream":
        return original
    return [e for e in original if e["event"] != "connection" or e["messages"]]


def check_variant(original: list[Event], got: list[Event], variant: str) -> None:
    expected = expected_of(original, variant)
    assert messages(got) == messages(expected)
    assert connections(got, variant=variant) == connections(expected, variant=variant)
    decided = [e for e in got if e["event"] == "connection"]
    if variant in RESENDING:
        # a resent segment is a retransmission, unless it came after the outcome (a
        # Decline decides at once)
        if any(len(e["messages"]) > 1 for e in decided):
            assert sum(e["retransmissions"] for e in decided) > 0
    else:
        assert all(e["retransmissions"] == 0 for e in decided), "a copy is no retransmission"


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("capture", [p.stem for p in CAPTURES])
def test_offline_variant_equals_original(capture: str, variant: str,
                                         originals: dict[str, list[Event]],
                                         variant_files: dict[tuple[str, str], Path]) -> None:
    got = offline(variant_files[(capture, variant)])
    check_variant(originals[capture], got, variant)
    summary = got[-1]
    if variant in ("duplicate", "any") and messages(got):
        assert summary["duplicates"] > 0
    assert summary["gaps"] == 0 and summary["malformed"] == originals[capture][-1]["malformed"]


# -- live -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def netns() -> Iterator[tuple[str, str, str]]:
    problem = netlab.available()
    if problem:
        pytest.skip(problem)
    with netlab.NetLab("smct-var") as lab:
        name = lab.namespace("replay")
        sender, traced = lab.veth(name)
        yield name, sender, traced


def trace_live(netns: tuple[str, str, str], backend: str, files: list[Path],
               interface: str | None = None) -> list[Event]:
    name, sender, traced = netns
    tracer = subprocess.Popen(
        ["ip", "netns", "exec", name, sys.executable, "-m", "smctrace", "-i",
         interface or traced, "--backend", backend, "--json", "-Z", "root"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert tracer.stderr is not None
    line = tracer.stderr.readline()
    if "tracing on" not in line:
        tracer.kill()
        pytest.skip(f"live tracing unavailable here: {line.strip()}")
    try:
        subprocess.run(["ip", "netns", "exec", name, sys.executable, "-m",
                        "tests.support.replay", sender, *map(str, files)],
                       capture_output=True, text=True, check=True, timeout=300, cwd=REPO)
        time.sleep(1.0)
    finally:
        tracer.send_signal(signal.SIGINT)
    out, err = tracer.communicate(timeout=60)
    assert tracer.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


def live_comparable(events: list[Event], variant: str) -> tuple[Any, ...]:
    """Live times are the replay's, not the capture's: everything else must match."""
    msgs = [m[1:] for m in messages(events)]
    conns = [c[:9] if variant == "midstream" else c[:12] for c in
             connections(events, variant=variant)]
    return msgs, conns


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "any"])
def test_live_variant_equals_original_bcc(variant: str, netns: tuple[str, str, str],
                                          originals: dict[str, list[Event]],
                                          variant_files: dict[tuple[str, str], Path]) -> None:
    files = [variant_files[(path.stem, variant)] for path in CAPTURES]
    got = trace_live(netns, "bcc", files)
    expected = [e for path in CAPTURES for e in expected_of(originals[path.stem], variant)
                if e["event"] != "summary"]
    assert live_comparable(got, variant) == live_comparable(expected, variant)
    assert got[-1]["dropped"] == 0


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "any"])
def test_live_variant_cbpf_documented_exceptions(
        variant: str, netns: tuple[str, str, str], originals: dict[str, list[Event]],
        variant_files: dict[tuple[str, str], Path]) -> None:
    files = [variant_files[(path.stem, variant)] for path in CAPTURES]
    got = trace_live(netns, "cbpf", files)
    expected = [e for path in CAPTURES for e in originals[path.stem] if e["event"] != "summary"]
    if variant in SPLITTING:
        warnings = got[-1]["warnings"]
        assert any("classic-BPF" in w and "split" in w for w in warnings), warnings
        # never a wrong message: each one is the original's, or says it is incomplete
        originals_seen = [m[1:] for m in messages(expected)]
        for m in messages(got):
            assert m[1:] in originals_seen or m[-1], m
        return
    # Stateless, it still shows every message; what it cannot show is FIN/RST and the
    # SYN-ACK without the option, so only connections decided by a message compare.
    got_messages = [m[1:] for m in messages(got)]
    assert got_messages == [m[1:] for m in messages(expected)]


def test_live_any_across_a_veth_pair_shows_each_message_once(
        netns: tuple[str, str, str], originals: dict[str, list[Event]]) -> None:
    """``-i any`` sees each frame leave one end of the veth pair and arrive at the
    other: the output is that of one copy."""
    got = trace_live(netns, "bcc", CAPTURES, interface="any")
    expected = [e for path in CAPTURES for e in originals[path.stem] if e["event"] != "summary"]
    assert live_comparable(got, "any") == live_comparable(expected, "any")
    assert got[-1]["duplicates"] > 0  # the second copies, dropped


def test_variants_are_ethernet_and_not_empty() -> None:
    frames = read_frames(CAPTURES[0])
    assert {f.linktype for f in frames} == {LINKTYPE_ETHERNET}
    for name, transform in VARIANTS.items():
        assert transform(frames) != frames, name

"""Hostile and extreme input: floods of mid-stream CLC messages and of SMC-option SYNs.

A CLC segment that begins following a connection whose start was not seen (a pick-up) is
held by the offline engines until its connection shows another segment, or for at most
``rule.PICKUP_WAIT`` of packet time; at most ``rule.HELD_PICKUPS`` are held, the oldest
beyond that counted (with a sample) and never decoded.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from smctrace.capture.pcapfile import CaptureFile
from smctrace.capture.pcapwriter import PcapWriter
from smctrace.events import TraceSummary
from smctrace.frame import LINKTYPE_ETHERNET
from smctrace.match import rule
from smctrace.match.engine import NATIVE, new_engine
from smctrace.packet import ACK, PSH, SYN
from tests.support.synth import tcp_frame
from tests.support.tracing import RecordingSink, trace_capture

REAL = Path(__file__).parent / "data" / "real-kernel"
ENGINES = [pytest.param(True, id="c", marks=pytest.mark.skipif(not NATIVE, reason="not built")),
           pytest.param(False, id="python")]


def proposal(client: str = "10.9.0.1", port: int = 40000, seq: int = 1) -> bytes:
    body = bytes.fromhex("e2d4c3d9") + bytes([1]) + (52).to_bytes(2, "big") + b"\x10"
    return tcp_frame(client, "10.9.0.2", port, 7001, seq=seq, flags=ACK | PSH,
                     payload=body + bytes(40) + bytes.fromhex("e2d4c3d9"))


def answer(client: str = "10.9.0.1", port: int = 40000) -> bytes:
    """Any segment of the connection from the other side (here: a bare ACK with data)."""
    return tcp_frame("10.9.0.2", client, 7001, port, seq=1, flags=ACK | PSH, payload=b"x" * 8)


def fin(client: str = "10.9.0.1", port: int = 40000) -> bytes:
    return tcp_frame("10.9.0.2", client, 7001, port, seq=1, flags=ACK | 0x01)


def feed(engine: Any, frames: list[tuple[float, bytes]]) -> list[list[int]]:
    """The frame numbers that crossed after each frame was fed."""
    crossed = []
    for number, (time, frame) in enumerate(frames, 1):
        out: list[Any] = []
        engine.feed(frame, LINKTYPE_ETHERNET, time, number, 0, len(frame), True, out)
        crossed.append([seg[1] for seg in out])
    return crossed


@pytest.mark.parametrize("native", ENGINES)
def test_a_pick_up_crosses_right_before_its_answer(native: bool) -> None:
    engine = new_engine(native=native)
    crossed = feed(engine, [(1.0, proposal()), (1.1, proposal("10.9.0.7")), (1.2, fin())])
    assert crossed == [[], [], [1, 3]]  # the FIN answers the first, the second waits
    assert engine.counters()["held_pickups"] == 1
    out: list[Any] = []
    engine.finish(out)
    assert [seg[1] for seg in out] == [2]  # what is still held crosses at the end
    assert engine.counters()["unanswered_pickups"] == 0


@pytest.mark.parametrize("native", ENGINES)
def test_a_pick_up_crosses_when_its_wait_is_over(native: bool) -> None:
    engine = new_engine(native=native)
    later = 1.0 + rule.PICKUP_WAIT
    crossed = feed(engine, [(1.0, proposal()), (later - 0.01, proposal("10.9.0.7")),
                            (later + 0.01, tcp_frame("10.1.1.1", "10.1.1.2", 1, 2))])
    # the unrelated frame (dropped by the rule) comes after the first pick-up's wait
    assert crossed == [[], [], [1]]


@pytest.mark.parametrize("native", ENGINES)
def test_a_flood_of_pick_ups_is_counted_not_held(native: bool) -> None:
    engine = new_engine(native=native)
    extra = 10
    frames = [(1.0 + n * 1e-6, proposal(f"10.{8 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}",
                                        40000 + n % 1000))
              for n in range(rule.HELD_PICKUPS + extra)]
    assert not any(feed(engine, frames))
    counters = engine.counters()
    assert counters["unanswered_pickups"] == extra
    assert counters["held_pickups"] == rule.HELD_PICKUPS
    assert len(counters["unanswered_pickup_sample"]) == 8
    assert ("10.8.0.0", 40000) in [tuple(pair[:2]) for pair in
                                    counters["unanswered_pickup_sample"]] + [
        tuple(pair[2:]) for pair in counters["unanswered_pickup_sample"]]
    out: list[Any] = []
    engine.finish(out)
    # the oldest ones went; the rest cross at the end, in the order they came
    assert [seg[1] for seg in out] == list(range(extra + 1, len(frames) + 1))


def trace(frames: list[tuple[float, bytes]]) -> tuple[RecordingSink, TraceSummary]:
    stream = io.BytesIO()
    writer = PcapWriter(stream, LINKTYPE_ETHERNET)
    for time, frame in frames:
        writer.write(time, frame)
    sink = RecordingSink()
    trace_capture(io.BytesIO(stream.getvalue()), sink)
    assert sink.summary is not None
    return sink, sink.summary


def real_frames(name: str, offset: float) -> list[tuple[float, bytes]]:
    with CaptureFile(str(REAL / name)) as capture:
        frames = list(capture.frames())
    start = frames[0].time
    return [(offset + f.time - start, f.data) for f in frames]


def test_real_handshakes_in_a_proposal_flood_come_out_right() -> None:
    flood_size = rule.HELD_PICKUPS * 3
    flood = [(100.0 + n * 1e-5, proposal(f"10.{8 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"))
             for n in range(flood_size)]
    real = real_frames("C-smcd-loopback-ism-k612lo.pcap", 100.05) + real_frames(
        "F2-smcr-server-no-rdma-k612.pcap", 100.2)
    merged = sorted(flood + real, key=lambda item: item[0])
    sink, summary = trace(merged)
    # the real ones are the connections whose SYN was seen; the flood's are incomplete
    real_outcomes = sorted(c.outcome for c in sink.outcomes if c.syn_option)
    assert real_outcomes == ["fallback", "smc"]
    assert {c.outcome for c in sink.outcomes if not c.syn_option} == {"incomplete"}
    smc = next(c for c in sink.outcomes if c.outcome == "smc")
    assert smc.path == "SMC-D" and smc.messages == ("proposal", "accept", "confirm")
    # what could not be held was counted, never decoded; the rest crossed at the end
    assert summary.unanswered_midstream == flood_size - rule.HELD_PICKUPS
    assert len(summary.unanswered_midstream_sample) == 8
    assert summary.messages == rule.HELD_PICKUPS + 3 + 2


def test_a_capture_that_starts_mid_handshake_still_decodes_every_message() -> None:
    real = real_frames("C-smcd-loopback-ism-k612lo.pcap", 50.0)
    first_clc = next(i for i, (_, frame) in enumerate(real) if b"\xe2\xd4\xc3" in frame)
    sink, summary = trace(real[first_clc:])
    assert [m.message.kind for m in sink.messages] == ["proposal", "accept", "confirm"]
    assert [c.outcome for c in sink.outcomes] == ["smc"]
    assert summary.unanswered_midstream == 0


def test_a_lone_confirm_picked_up_is_reported_after_the_wait_not_lost() -> None:
    """An established SMC connection shows no TCP data after its Confirm: a capture that
    starts between Accept and Confirm holds the Confirm until the wait is over."""
    real = real_frames("C-smcd-loopback-ism-k612lo.pcap", 50.0)
    confirm = [item for item in real if b"\xe2\xd4\xc3\xc4\x03" in item[1]]
    later = [(50.0 + rule.PICKUP_WAIT + 1, tcp_frame("10.1.1.1", "10.1.1.2", 1, 2, flags=SYN))]
    sink, summary = trace(confirm + later)
    assert [m.message.kind for m in sink.messages] == ["confirm"]
    assert summary.unanswered_midstream == 0


def test_a_full_connection_table_says_so(tmp_path: Path) -> None:
    """Ten connections open at once through a table of four: the six oldest are
    reported evicted (not "capture ended"), and the summary counts them."""
    from click.testing import CliRunner

    from smctrace.cli import main

    frames: list[tuple[float, bytes]] = []
    for n in range(10):
        port = 40000 + n
        frames.append((1.0 + n * 0.001, tcp_frame("10.9.0.1", "10.9.0.2", port, 7001,
                                                  flags=SYN, seq=100, smc_option=True)))
        frames.append((1.0 + n * 0.001 + 0.0001, tcp_frame(
            "10.9.0.2", "10.9.0.1", 7001, port, flags=SYN | ACK, seq=500, ack=101,
            smc_option=True)))
    for n in range(10):
        frames.append((2.0 + n * 0.001, tcp_frame("10.9.0.2", "10.9.0.1", 7001, 40000 + n,
                                                  flags=ACK | 0x01, seq=501)))
    path = tmp_path / "ten.pcap"
    with path.open("wb") as stream:
        writer = PcapWriter(stream, LINKTYPE_ETHERNET)
        for time, frame in frames:
            writer.write(time, frame)
    result = CliRunner().invoke(main, ["-f", str(path), "--json", "--max-connections", "4"])
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    reasons = [e["reason"] for e in lines if e["event"] == "connection"]
    evicted = [r for r in reasons if r.startswith("evicted: connection table full")]
    assert len(evicted) == 6 and "(4 connections followed at once)" in evicted[0]
    assert lines[-1]["evicted"] == 6
    assert "6 evicted (connection table full)" in result.stderr
    plain = CliRunner().invoke(main, ["-f", str(path), "--json"])
    assert json.loads(plain.stdout.splitlines()[-1])["evicted"] == 0

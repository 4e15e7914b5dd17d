"""The whole file path never raises (except a clean CaptureError) and never hangs."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smctrace.capture.pcapfile import CaptureFile
from smctrace.events import EventSink
from smctrace.frame import CaptureError
from smctrace.packet import ACK, FIN, PSH, RST, SYN, Segment
from smctrace.pipeline import Tracer
from tests.vectors import ACCEPT_R_V1, CONFIRM_R_V1, DECLINE_V2, PROPOSAL_V1_52

REAL = Path(__file__).resolve().parent / "data" / "real-kernel"
CAPTURES = [p.read_bytes() for p in sorted(REAL.glob("*.pcap"))]


def trace(data: bytes) -> Tracer:
    tracer = Tracer(EventSink())
    try:
        with CaptureFile(io.BytesIO(data)) as capture:
            tracer.feed_segments(capture.segments(tracer.engine))
    except CaptureError:
        pass
    tracer.finish()
    return tracer


@st.composite
def mutated_capture(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CAPTURES)))
    for _ in range(draw(st.integers(1, 20))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_capture())
def test_mutated_real_captures_never_crash(data: bytes) -> None:
    trace(data)


@settings(max_examples=200, deadline=2000)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    trace(data)


CLC = [PROPOSAL_V1_52, ACCEPT_R_V1, CONFIRM_R_V1, DECLINE_V2]


@st.composite
def segment_soup(draw: st.DrawFn) -> list[Segment]:
    """Random segments on two flows: CLC pieces, garbage, any flags and sequence numbers."""
    segs = []
    t = 1.0
    for _ in range(draw(st.integers(1, 40))):
        t += draw(st.floats(0, 20))
        forward = draw(st.booleans())
        a, b = ("10.0.0.1", 1000), ("10.0.0.2", 7001)
        if not forward:
            a, b = b, a
        kind = draw(st.integers(0, 2))
        if kind == 0:
            msg = draw(st.sampled_from(CLC))
            lo = draw(st.integers(0, len(msg)))
            payload = msg[lo: draw(st.integers(lo, len(msg)))]
        elif kind == 1:
            payload = draw(st.binary(max_size=60))
        else:
            payload = b""
        flags = draw(st.sampled_from([SYN, SYN | ACK, ACK, PSH | ACK, FIN | ACK, RST]))
        seq = draw(st.integers(0, (1 << 32) - 1)) if draw(st.booleans()) else \
            draw(st.integers(0, 300))
        segs.append(Segment(t, 0, 0, a[0], b[0], a[1], b[1], seq, 0, flags,
                            draw(st.booleans()), payload, len(payload), None, 1, 0))
    return segs


@settings(max_examples=500, deadline=2000)
@given(segment_soup())
def test_random_segment_sequences_never_crash(segs: list[Segment]) -> None:
    tracer = Tracer(EventSink())
    for seg in segs:
        tracer.tracker.on_segment(seg)
        tracer.advance(seg.time)
    tracer.finish()
    t = tracer.tracker
    assert sum(t.outcomes.values()) >= 0
    assert not t._conns  # every followed connection got an outcome

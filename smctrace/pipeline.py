"""The tracing pipeline: frames in, events out.

    Frame --packet.parse_frame--> Segment --ConnectionTracker--> MessageEvent / GapEvent /
    ConnectionOutcome --> EventSink (text, JSON lines, table, ...)

The same :class:`Tracer` serves offline files and live sockets; only the frame source and
the notion of "now" differ (packet time offline, wall-clock ticks live).
"""

from __future__ import annotations

from typing import Protocol

from smctrace.connections import ConnectionTracker
from smctrace.events import OUTCOMES, ConnectionId, EventSink, TraceSummary
from smctrace.frame import Frame
from smctrace.packet import parse_frame

# How often (in packet time) open connections are checked for expired timers.
ADVANCE_INTERVAL = 0.5


class PrefilterLike(Protocol):
    """What the tracer needs from a capture prefilter (see capture.prefilter)."""

    def watch(self, src: str, dst: str, sport: int, dport: int) -> None: ...

    def unwatch(self, src: str, dst: str, sport: int, dport: int) -> None: ...

    @property
    def plain_syns(self) -> int:
        """Client SYNs without the SMC option that the prefilter skipped (and counted)."""
        ...


class Tracer:
    """Feeds frames through the pipeline into one sink."""

    def __init__(self, sink: EventSink, prefilter: PrefilterLike | None = None,
                 *, sees_plain_syns: bool = True) -> None:
        self.sink = sink
        self._prefilter = prefilter
        self._sees_plain_syns = sees_plain_syns
        self.tracker = ConnectionTracker(sink, self._watch if prefilter is not None else None)
        self.segments = 0
        self._next_advance = 0.0

    def _watch(self, cid: ConnectionId, on: bool) -> None:
        """Tell the prefilter whether this connection's segments must reach Python."""
        assert self._prefilter is not None
        flow = (cid.client.ip, cid.server.ip, cid.client.port, cid.server.port)
        if on:
            self._prefilter.watch(*flow)
        else:
            self._prefilter.unwatch(*flow)

    def feed(self, frame: Frame) -> None:
        seg = parse_frame(frame)
        if seg is None:
            return
        self.segments += 1
        self.tracker.on_segment(seg)
        if seg.time >= self._next_advance:
            self.advance(seg.time)

    def advance(self, now: float) -> None:
        """Time moved on: settle outcomes that waited for a late Decline, report gaps."""
        self._next_advance = now + ADVANCE_INTERVAL
        self.tracker.advance(now)

    def finish(self) -> None:
        self.tracker.finish()

    def summary(self, frames: int) -> TraceSummary:
        t = self.tracker
        plain: int | None = t.plain_tcp if self._sees_plain_syns else None
        if plain is not None and self._prefilter is not None:
            plain += self._prefilter.plain_syns
        return TraceSummary(frames=frames, segments=self.segments, plain_tcp=plain,
                            connections=sum(t.outcomes.values()),
                            outcomes={o: t.outcomes[o] for o in OUTCOMES},
                            messages=t.messages, malformed=t.malformed, gaps=t.gaps)

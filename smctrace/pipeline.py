"""The tracing pipeline: frames in, events out.

    Frame --packet.parse_frame--> Segment --ConnectionTracker--> MessageEvent / GapEvent /
    ConnectionOutcome --> EventSink (text, JSON lines, table, ...)

The same :class:`Tracer` serves offline files and live sockets; only the frame source and
the notion of "now" differ (packet time offline, wall-clock ticks live).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from smctrace.capture import Frame
from smctrace.connections import OUTCOMES, ConnectionId, ConnectionTracker, EventSink, Outcome
from smctrace.packet import parse_frame

# How often (in packet time) open connections are checked for expired timers.
ADVANCE_INTERVAL = 0.5


@dataclass(slots=True)
class TraceSummary:
    """Counts for the exit summary and the JSON ``summary`` event."""

    frames: int  # frames read from the source (all of them, not only candidates)
    segments: int  # TCP segments the tracer looked at
    # TCP connections without the SMC option (only counted); None when the source cannot
    # see them (live: the kernel filter never lets ordinary SYNs into user space)
    plain_tcp: int | None
    connections: int  # connections followed for SMC
    outcomes: dict[Outcome, int]
    messages: int
    malformed: int
    gaps: int


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

"""The tracing pipeline: frames in, events out.

    capture file --engine.scan--> segment tuples --ConnectionTracker--> MessageEvent /
    live frames  --engine.feed-->                 GapEvent / ConnectionOutcome --> EventSink

The rule's engine (:mod:`smctrace.match.engine`) keeps only the segments that can matter
for SMC (offline it applies the rule itself, live the kernel filter has done so and the
engine only parses and drops duplicates); the :class:`Tracer` feeds what it keeps through
the tracker into one sink.  The notion of "now" differs: packet time offline, wall-clock
ticks live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from smctrace.connections import ConnectionTracker
from smctrace.events import OUTCOMES, Endpoint, EventSink, TraceSummary
from smctrace.frame import LINKTYPE_NAMES, OTHER_LINKTYPE_NAMES
from smctrace.match.engine import EngineLike, SegmentTuple, new_engine
from smctrace.match.rule import MAX_CONNECTIONS, MAX_PENDING, UNANSWERED_SAMPLE

# How often (in packet time) open connections are checked for expired timers.
ADVANCE_INTERVAL = 0.5


class Tracer:
    """Feeds segments through the pipeline into one sink."""

    def __init__(self, sink: EventSink, engine: EngineLike | None = None, *,
                 sees_plain_syns: bool = True, max_connections: int = MAX_CONNECTIONS,
                 max_pending: int = MAX_PENDING,
                 after_segment: Callable[[SegmentTuple], bool] | None = None) -> None:
        """``after_segment`` sees every segment once the tracker has (-w writes it, -c
        and --duration check their limits); when it returns True the trace stops."""
        self.sink = sink
        self.engine = engine if engine is not None else new_engine(
            max_connections=max_connections, max_pending=max_pending)
        self.after_segment = after_segment
        self.stopped = False  # after_segment asked to stop
        self._sees_plain_syns = sees_plain_syns
        self.tracker = ConnectionTracker(sink, max_connections=max_connections,
                                         max_pending=max_pending)
        self.segments = 0
        self._next_advance = 0.0

    def feed_segments(self, segments: Iterable[SegmentTuple]) -> None:
        """Segments that crossed the rule, in capture order (none once stopped)."""
        if self.stopped:
            return
        on_segment = self.tracker.on_segment
        after = self.after_segment
        for seg in segments:
            self.segments += 1
            on_segment(seg)
            if seg[0] >= self._next_advance:
                self.advance(seg[0])
            if after is not None and after(seg):
                self.stopped = True
                return

    def advance(self, now: float) -> None:
        """Time moved on: settle outcomes that waited for a late Decline, report gaps."""
        self._next_advance = now + ADVANCE_INTERVAL
        self.tracker.advance(now)

    def finish(self) -> None:
        """End of input: what the engine still held crosses, then every connection ends
        (after a stop, e.g. -c, nothing more is reported)."""
        held: list[SegmentTuple] = []
        self.engine.finish(held)
        self.feed_segments(held)
        if not self.stopped:
            self.tracker.finish()

    def summary(self, frames: int, snaplens: Iterable[int] = ()) -> TraceSummary:
        """The counts, and a warning line for everything that could not be searched."""
        t = self.tracker
        counters = self.engine.counters()
        plain: int | None = counters["plain_connections"] if self._sees_plain_syns else None
        summary = TraceSummary(
            frames=frames, segments=self.segments, plain_tcp=plain,
            connections=sum(t.outcomes.values()),
            outcomes={o: t.outcomes[o] for o in OUTCOMES},
            messages=t.messages, malformed=t.malformed, gaps=t.gaps,
            duplicates=counters["duplicates"],
            unanswered_syns=t.unanswered + counters["unanswered"],
            unanswered_sample=(t.unanswered_sample
                               + _pairs(counters["unanswered_sample"]))[:UNANSWERED_SAMPLE],
            unanswered_midstream=counters["unanswered_pickups"],
            unanswered_midstream_sample=_pairs(counters["unanswered_pickup_sample"]),
            evicted=t.evicted, split_messages=t.split_messages, silent_smc=t.silent_smc)
        summary.warnings = warnings(counters, snaplens)
        summary.unsearched = bool(counters["unsupported"] or counters["cut_headers"])
        return summary


def _pairs(sample: Iterable[tuple[str, int, str, int]]) -> list[str]:
    """The engine's 4-tuples (its two endpoints in no particular order) as text."""
    return [f"{Endpoint(a, ap)} <-> {Endpoint(b, bp)}" for a, ap, b, bp in sample]


def linktype_name(linktype: int) -> str:
    return LINKTYPE_NAMES.get(linktype) or OTHER_LINKTYPE_NAMES.get(linktype) or "unknown"


def warnings(counters: dict[str, Any], snaplens: Iterable[int] = ()) -> list[str]:
    """What the engine could not search, one line each (also the JSON summary's)."""
    lines = []
    for linktype, count in sorted(counters["unsupported"].items()):
        lines.append(f"{count} frame{'s' if count != 1 else ''} of link type {linktype} "
                     f"({linktype_name(linktype)}) could not be searched: smctrace reads "
                     "Ethernet, Linux cooked (SLL, SLL2), raw IP and BSD loopback frames")
    snap = min((s for s in snaplens if s), default=0)
    snap_text = f" ({snap} bytes)" if snap else ""
    if counters["cut_headers"]:
        n = counters["cut_headers"]
        lines.append(f"{n} TCP segment{'s' if n != 1 else ''} cut inside their headers by "
                     f"the capture's snap length{snap_text} could not be searched "
                     "(capture with -s 0, or at least 1280 bytes)")
    if counters["cut_payload"]:
        n = counters["cut_payload"]
        lines.append(f"{n} CLC segment{'s' if n != 1 else ''} cut by the capture's snap "
                     f"length{snap_text}: their messages are truncated (capture with -s 0, "
                     "or at least 1280 bytes)")
    return lines

"""The service's event sink: what the tracer thread hands to ``--http``.

Everything here runs in the tracer thread and costs O(1) per event: metric increments, a
deque append, a few integer updates.  The HTTP thread only reads: plain attributes, the
ring (copied in C) and snapshots that are replaced whole, never changed in place.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Protocol

from smctrace.clc import describe_decline
from smctrace.clc.codes import DeclineDescription
from smctrace.events import (
    ConnectionOutcome,
    EventSink,
    GapEvent,
    MessageEvent,
    TraceSummary,
)
from smctrace.service.metrics import (
    HANDSHAKE_BUCKETS,
    TraceCounters,
    TraceMetrics,
    decline_label,
)
from smctrace.service.recent import PeerNameCollector, RecentConnections


class FanOut(EventSink):
    """Hands every event to each of several sinks, in order.

    The sinks' bound methods are looked up once: this sits on the tracer's hot path, where
    a loop with attribute look-ups per event cost 0.6 us (measured, 2 sinks)."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = sinks
        self._messages = tuple(sink.on_message for sink in sinks)
        self._gaps = tuple(sink.on_gap for sink in sinks)
        self._connections = tuple(sink.on_connection for sink in sinks)

    def on_message(self, event: MessageEvent) -> None:
        for on_message in self._messages:
            on_message(event)

    def on_gap(self, event: GapEvent) -> None:
        for on_gap in self._gaps:
            on_gap(event)

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        for on_connection in self._connections:
            on_connection(outcome)

    def finish(self, summary: TraceSummary) -> None:
        for sink in self.sinks:
            sink.finish(summary)


class CaptureCounters(Protocol):
    """What the service reads of a live capture (smctrace.live.LiveCapture)."""

    def stats(self) -> dict[str, int]: ...

    def socket_stats(self) -> dict[str, tuple[int, int]]: ...

    def filter_stats(self) -> dict[str, tuple[int, int]]: ...


@dataclass(frozen=True, slots=True)
class DeclineCount:
    """One row of the top Decline reasons: a code (an unknown one: its ``decline`` label,
    e.g. ``UNKNOWN_0x03``) and who sent it."""

    label: str
    known: bool
    sender: str | None
    example: DeclineDescription  # the first Decline seen of this row
    connections: int


@dataclass(frozen=True, slots=True)
class CaptureSnapshot:
    """What the tracer thread last published about the source (every idle tick live)."""

    frames: int = 0
    segments: int = 0
    plain_tcp: int | None = None
    capture: dict[str, int | None] = field(default_factory=dict)
    # per interface: seen_by_filter (None where a filter serves several), kept, dropped
    interfaces: list[dict[str, int | str | None]] = field(default_factory=list)
    published: float | None = None  # wall-clock time, None before the first tick


class ServiceSink(EventSink):
    """Feeds the metrics, the ring of recent connections and the live summary."""

    def __init__(self, recent: int) -> None:
        self.counts = TraceCounters()
        self.metrics = TraceMetrics(self.counts)
        self.recent = RecentConnections(recent)
        self._peers = PeerNameCollector()
        # (code, or the label of an unknown code; sender) -> connections: bounded, since
        # unknown codes are counted by their class
        self._declines: dict[tuple[int | str, str | None], int] = {}
        self._decline_examples: dict[int | str, tuple[str, DeclineDescription]] = {}
        self.snapshot = CaptureSnapshot()
        self.final: TraceSummary | None = None  # set by finish(): the trace is over

    # -- events (tracer thread) ---------------------------------------------------------

    # The counting is written out here rather than in TraceCounters methods: a Python
    # call costs about 0.1 us, a sizeable part of this sink's few microseconds.

    def on_message(self, event: MessageEvent) -> None:
        message = event.message
        kind = message.kind
        counts = self.counts
        messages = counts.messages
        if kind in messages:
            messages[kind] += 1
        else:
            messages["unknown"] += 1
        if message.malformed:
            counts.malformed += 1
        if kind == "accept" or kind == "confirm":
            self._peers.on_message(event)

    def on_gap(self, event: GapEvent) -> None:
        self.counts.gaps += 1

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        decline = ""
        if outcome.decline is not None:
            code = outcome.decline.diagnosis
            decline = decline_label(code)
            row: int | str = decline if decline.startswith("UNKNOWN") else code
            if row not in self._decline_examples:  # before the count: readers need both
                self._decline_examples[row] = (decline, describe_decline(code))
            decline_key = (row, outcome.decline_from)
            self._declines[decline_key] = self._declines.get(decline_key, 0) + 1
        counts = self.counts
        result = outcome.outcome
        counts.outcomes[result] += 1
        key = (result, outcome.path, outcome.version, outcome.release, decline,
               outcome.decline_from)
        connections = counts.connections
        connections[key] = connections.get(key, 0) + 1
        if outcome.handshake_ms is not None:
            seconds = outcome.handshake_ms / 1000.0
            hkey = (result, outcome.path)
            buckets = counts.handshakes.get(hkey)
            if buckets is None:
                buckets = counts.handshakes[hkey] = [0.0] * (len(HANDSHAKE_BUCKETS) + 2)
            buckets[bisect_left(HANDSHAKE_BUCKETS, seconds)] += 1
            buckets[-1] += seconds
        self.recent.add(outcome, self._peers.take(outcome.conn))

    def finish(self, summary: TraceSummary) -> None:
        self.counts.followed = 0
        self.final = summary

    def tick(self, summary: TraceSummary, followed: int,
             capture: CaptureCounters | None = None) -> None:
        """Publish the tracer's own counts (frames, segments) and, live, the kernel's
        counters; called by the tracer thread when it is idle, about once a second."""
        self.counts.followed = followed
        counters: dict[str, int | None] = {}
        interfaces: list[dict[str, int | str | None]] = []
        if capture is not None:
            counters = {key: (None if value < 0 else value)
                        for key, value in capture.stats().items()}
            sockets = capture.socket_stats()
            filters = capture.filter_stats()
            self.metrics.capture.publish(sockets, filters)
            for name, (received, dropped) in sockets.items():
                own_filter = filters.get(name)
                seen = None if own_filter is None else own_filter[0]
                interfaces.append({"interface": name, "seen_by_filter": seen,
                                   "kept": received, "dropped": dropped})
            for names, (seen_shared, _kept) in filters.items():
                if names not in sockets:  # one filter for several interfaces
                    interfaces.append({"interface": names, "seen_by_filter": seen_shared,
                                       "kept": None, "dropped": None})
        self.snapshot = CaptureSnapshot(summary.frames, summary.segments, summary.plain_tcp,
                                        counters, interfaces, time.time())

    # -- reads (HTTP thread) ------------------------------------------------------------

    def summary(self) -> TraceSummary:
        """The trace's summary now: the final one once the trace is over, else this
        sink's own counts with the source's counters of the last tick."""
        if self.final is not None:
            return self.final
        snap, counts = self.snapshot, self.counts
        outcomes = dict(counts.outcomes)
        return TraceSummary(frames=snap.frames, segments=snap.segments,
                            plain_tcp=snap.plain_tcp, connections=sum(outcomes.values()),
                            outcomes=outcomes, messages=sum(list(counts.messages.values())),
                            malformed=counts.malformed, gaps=counts.gaps,
                            capture=dict(snap.capture))

    def top_declines(self, count: int = 10) -> list[DeclineCount]:
        rows = sorted(list(self._declines.items()), key=lambda item: (-item[1], str(item[0])))
        examples = dict(self._decline_examples)
        out = []
        for (row, sender), n in rows[:count]:
            label, example = examples[row]
            out.append(DeclineCount(label, isinstance(row, int), sender, example, n))
        return out

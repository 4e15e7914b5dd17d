"""The service's event sink: what the tracer thread hands to ``--http`` (and, through it,
to the chosen output).

Everything here runs in the tracer thread and costs O(1) per event: metric increments, a
deque append, a few integer updates.  The HTTP thread only reads: plain attributes, the
ring (copied in C) and snapshots that are replaced whole, never changed in place.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass, field, replace
from typing import Protocol

from smctrace.clc import AcceptConfirm, describe_decline
from smctrace.clc.codes import DeclineDescription
from smctrace.events import (
    OUTCOMES,
    ConnectionOutcome,
    EventSink,
    GapEvent,
    MessageEvent,
    Outcome,
    TraceSummary,
)
from smctrace.service.metrics import (
    HANDSHAKE_BUCKETS,
    TraceCounters,
    TraceMetrics,
    decline_label,
)
from smctrace.service.recent import PeerNameCollector, RecentConnections


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

    summary: TraceSummary | None = None  # the tracer's, without the kernel's counters
    capture: dict[str, int | None] = field(default_factory=dict)
    # per interface: seen_by_filter (None where a filter serves several), kept, dropped
    interfaces: list[dict[str, int | str | None]] = field(default_factory=list)
    published: float | None = None  # wall-clock time, None before the first tick


class ServiceSink(EventSink):
    """Feeds the metrics, the ring of recent connections and the live summary.

    With ``output`` (the CLI's chosen output: text, JSON lines, tables), it hands every
    event to that output first, so the tracer drives one sink: a fan-out in front of the
    two cost 1,900 instructions an event (cachegrind), more than this sink's own work."""

    def __init__(self, recent: int, output: EventSink | None = None) -> None:
        self.output = output or EventSink()
        self._output_message = self.output.on_message
        self._output_connection = self.output.on_connection
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

    # The counting is written out here rather than in TraceCounters methods: in the real
    # pipeline (cachegrind, scripts/bench_service.py) every Python call and dict look-up
    # of this sink is paid once per connection or message, next to a decoder that leaves
    # the caches cold.  So a message costs two attribute reads unless it names a peer,
    # and messages are counted by type from the outcome's list of them, once.

    def on_message(self, event: MessageEvent) -> None:
        self._output_message(event)
        message = event.message
        if isinstance(message, AcceptConfirm):
            self._peers.on_message(event.conn, message)
        if message.malformed:
            self.counts.malformed += 1

    def on_gap(self, event: GapEvent) -> None:
        self.output.on_gap(event)
        self.counts.gaps += 1

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        self._output_connection(outcome)
        decline = ""
        if outcome.decline is not None:
            decline = self._count_decline(outcome)
        counts = self.counts
        result = outcome.outcome
        key = (result, outcome.path, outcome.version, outcome.release, decline,
               outcome.decline_from)
        connections = counts.connections
        connections[key] = connections.get(key, 0) + 1
        messages = counts.messages
        for kind in outcome.messages:
            messages[kind] = messages.get(kind, 0) + 1
        handshake_ms = outcome.handshake_ms
        if handshake_ms is not None:
            seconds = handshake_ms / 1000.0
            hkey = (result, outcome.path)
            buckets = counts.handshakes.get(hkey)
            if buckets is None:
                buckets = counts.handshakes[hkey] = [0.0] * (len(HANDSHAKE_BUCKETS) + 2)
            buckets[bisect_left(HANDSHAKE_BUCKETS, seconds)] += 1
            buckets[-1] += seconds
        self.recent.add(outcome, self._peers.take(outcome.conn))

    def _count_decline(self, outcome: ConnectionOutcome) -> str:
        """Count a fallback's Decline for the top reasons; its ``decline`` label."""
        assert outcome.decline is not None
        code = outcome.decline.diagnosis
        decline = decline_label(code)
        row: int | str = decline if decline.startswith("UNKNOWN") else code
        if row not in self._decline_examples:  # before the count: readers need both
            self._decline_examples[row] = (decline, describe_decline(code))
        decline_key = (row, outcome.decline_from)
        self._declines[decline_key] = self._declines.get(decline_key, 0) + 1
        return decline

    def flush(self) -> None:
        self.output.flush()  # the outputs write once per batch

    def finish(self, summary: TraceSummary) -> None:
        self.output.finish(summary)
        self.counts.followed = 0
        self.final = summary

    def tick(self, summary: TraceSummary, followed: int,
             capture: CaptureCounters | None = None) -> None:
        """Publish the tracer's own counts (frames, segments) and, live, the kernel's
        counters; called by the tracer thread on idle rounds, and at most once a second
        under load."""
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
        self.snapshot = CaptureSnapshot(summary, counters, interfaces, time.time())

    # -- reads (HTTP thread) ------------------------------------------------------------

    def summary(self) -> TraceSummary:
        """The trace's summary now: the final one once the trace is over; live, the
        tracer's own of the last tick (at most a second old), with the kernel's counters;
        before any tick (reading a file), this sink's counts of the connections so far."""
        if self.final is not None:
            return self.final
        snap = self.snapshot
        if snap.summary is not None:
            return replace(snap.summary, capture=dict(snap.capture))
        counts = self.counts
        outcomes: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)
        for key, n in list(counts.connections.items()):
            outcomes[key[0]] += n
        return TraceSummary(frames=0, segments=0, plain_tcp=None,
                            connections=sum(outcomes.values()), outcomes=outcomes,
                            messages=sum(list(counts.messages.values())),
                            malformed=counts.malformed, gaps=counts.gaps)

    def top_declines(self, count: int = 10) -> list[DeclineCount]:
        rows = sorted(list(self._declines.items()), key=lambda item: (-item[1], str(item[0])))
        examples = dict(self._decline_examples)
        out = []
        for (row, sender), n in rows[:count]:
            label, example = examples[row]
            out.append(DeclineCount(label, isinstance(row, int), sender, example, n))
        return out

"""The service's event sink: what the tracer thread hands to ``--http``.

Everything here runs in the tracer thread and costs O(1) per event: metric increments, a
deque append, a few integer updates.  The HTTP thread only reads: plain attributes, the
ring (copied in C) and snapshots that are replaced whole, never changed in place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from smctrace.clc import describe_decline
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
from smctrace.service.metrics import TraceMetrics, decline_label
from smctrace.service.recent import PeerNameCollector, RecentConnections


class FanOut(EventSink):
    """Hands every event to each of several sinks, in order."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = sinks

    def on_message(self, event: MessageEvent) -> None:
        for sink in self.sinks:
            sink.on_message(event)

    def on_gap(self, event: GapEvent) -> None:
        for sink in self.sinks:
            sink.on_gap(event)

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        for sink in self.sinks:
            sink.on_connection(outcome)

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
        self.metrics = TraceMetrics()
        self.recent = RecentConnections(recent)
        self._peers = PeerNameCollector()
        self.outcomes: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)
        self.messages = 0
        self.malformed = 0
        self.gaps = 0
        # (code, or the label of an unknown code; sender) -> connections: bounded, since
        # unknown codes are counted by their class
        self._declines: dict[tuple[int | str, str | None], int] = {}
        self._decline_examples: dict[int | str, tuple[str, DeclineDescription]] = {}
        self.snapshot = CaptureSnapshot()
        self.followed = 0  # connections followed at the last tick
        self.final: TraceSummary | None = None  # set by finish(): the trace is over

    # -- events (tracer thread) ---------------------------------------------------------

    def on_message(self, event: MessageEvent) -> None:
        self.messages += 1
        if event.message.malformed:
            self.malformed += 1
        self.metrics.on_message(event)
        self._peers.on_message(event)

    def on_gap(self, event: GapEvent) -> None:
        self.gaps += 1
        self.metrics.on_gap()

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        self.outcomes[outcome.outcome] += 1
        decline = ""
        if outcome.decline is not None:
            code = outcome.decline.diagnosis
            decline = decline_label(code)
            row: int | str = decline if decline.startswith("UNKNOWN") else code
            if row not in self._decline_examples:  # before the count: readers need both
                self._decline_examples[row] = (decline, describe_decline(code))
            key = (row, outcome.decline_from)
            self._declines[key] = self._declines.get(key, 0) + 1
        self.metrics.on_connection(outcome, decline)
        self.recent.add(outcome, self._peers.take(outcome.conn))

    def finish(self, summary: TraceSummary) -> None:
        self.followed = 0
        self.metrics.followed.set(0)
        self.final = summary

    def tick(self, summary: TraceSummary, followed: int,
             capture: CaptureCounters | None = None) -> None:
        """Publish the tracer's own counts (frames, segments) and, live, the kernel's
        counters; called by the tracer thread when it is idle, about once a second."""
        self.followed = followed
        self.metrics.followed.set(followed)
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
        snap = self.snapshot
        outcomes = dict(self.outcomes)
        return TraceSummary(frames=snap.frames, segments=snap.segments,
                            plain_tcp=snap.plain_tcp, connections=sum(outcomes.values()),
                            outcomes=outcomes, messages=self.messages,
                            malformed=self.malformed, gaps=self.gaps,
                            capture=dict(snap.capture))

    def top_declines(self, count: int = 10) -> list[DeclineCount]:
        rows = sorted(list(self._declines.items()), key=lambda item: (-item[1], str(item[0])))
        examples = dict(self._decline_examples)
        out = []
        for (row, sender), n in rows[:count]:
            label, example = examples[row]
            out.append(DeclineCount(label, isinstance(row, int), sender, example, n))
        return out

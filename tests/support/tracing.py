"""``smctrace -f PATH`` in process, for tests and benchmarks that need the events."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from smctrace.capture.pcapfile import CaptureFile
from smctrace.events import ConnectionOutcome, EventSink, GapEvent, MessageEvent, TraceSummary
from smctrace.pipeline import Tracer

Event = MessageEvent | GapEvent | ConnectionOutcome


class RecordingSink(EventSink):
    """Keeps every event: by kind, and all of them in the order they came (``events``)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.messages: list[MessageEvent] = []
        self.gaps: list[GapEvent] = []
        self.outcomes: list[ConnectionOutcome] = []
        self.summary: TraceSummary | None = None

    def on_message(self, event: MessageEvent) -> None:
        self.events.append(event)
        self.messages.append(event)

    def on_gap(self, event: GapEvent) -> None:
        self.events.append(event)
        self.gaps.append(event)

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        self.events.append(outcome)
        self.outcomes.append(outcome)

    def finish(self, summary: TraceSummary) -> None:
        self.summary = summary


def trace_capture(source: str | Path | BinaryIO, sink: EventSink, *,
                  finish: bool = True) -> tuple[Tracer, int]:
    """Feed every segment of the capture at ``source`` (a path or an open binary stream)
    into ``sink`` through a new tracer;
    with ``finish`` end the trace (connections, then ``sink.finish`` with the summary).
    Returns the tracer and the number of frames the capture held."""
    tracer = Tracer(sink)
    with CaptureFile(str(source) if isinstance(source, Path) else source) as capture:
        for batch in capture.segment_batches(tracer.engine):
            tracer.feed_segments(batch)
        frames = capture.frames_read
    if finish:
        tracer.finish()
        sink.finish(tracer.summary(frames))
    return tracer, frames

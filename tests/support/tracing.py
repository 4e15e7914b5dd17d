"""``smctrace -f PATH`` in process, for tests and benchmarks that need the events."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from smctrace.capture.pcapfile import CaptureFile
from smctrace.events import EventSink
from smctrace.pipeline import Tracer


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

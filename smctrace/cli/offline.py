"""``smctrace -f FILE...``: capture files (pcap, pcapng, compressed or not) read in order
as one trace, with tcpdump's filter expressions, -c, --duration and -w."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, cast

from smctrace.cli.errors import UsageError, UserError
from smctrace.cli.run import CountingSink, compile_filter, finish_output
from smctrace.cli.signals import Interrupted, Interruption, WatchedInput
from smctrace.frame import CaptureError, FilterError
from smctrace.match.engine import EngineLike, SegmentTuple, new_engine
from smctrace.match.rule import MAX_CONNECTIONS
from smctrace.pipeline import Tracer

if TYPE_CHECKING:
    from smctrace.output.pcap import FrameWriter

SAVED_SNAPLEN = 65535  # the snap length -w declares (frames are the engine's kept bytes)


@dataclass(frozen=True, slots=True)
class OfflineOptions:
    inputs: tuple[str, ...]
    expression: str | None = None
    duration: float | None = None  # seconds of packet time from the first frame
    write: str | None = None  # -w: save the frames that matter for SMC
    max_connections: int | None = None


def check_inputs(inputs: tuple[str, ...]) -> None:
    """Every input exists before the first is read (tcpdump checks its one file first)."""
    if inputs.count("-") > 1:
        raise UsageError("standard input ('-') can be read only once")
    for path in inputs:
        if path != "-" and not os.path.exists(path):
            raise UserError(f"cannot open {path}: No such file or directory")


class Saver:
    """-w offline: the segments that crossed, as the engine kept them (headers and the
    capped payload), one pcapng interface per (input, interface, link type)."""

    def __init__(self, writer: FrameWriter, sink: CountingSink) -> None:
        self.writer = writer
        self.sink = sink
        self.input = 0  # which input is being read
        self.input_name = ""
        self._interfaces: dict[tuple[int, int, int], int] = {}
        sink.comment_frames = True

    def write(self, seg: SegmentTuple) -> None:
        comment = self.sink.frame_comment()
        frame = seg[13]
        if frame is None:
            return
        key = (self.input, seg[2], seg[14])
        interface = self._interfaces.get(key)
        if interface is None:
            interface = self.writer.add_interface(f"{self.input_name}#{seg[2]}", seg[14])
            self._interfaces[key] = interface
        self.writer.write(interface, seg[0], frame, seg[15], comment)


def trace_files(options: OfflineOptions, sink: CountingSink) -> int:
    """Decode the inputs as one trace; returns the exit status."""
    from smctrace.capture.compressed import open_capture_input
    from smctrace.capture.pcapfile import CaptureFile
    from smctrace.output.pcap import FrameWriter, SaveError

    check_inputs(options.inputs)
    packet_filter = compile_filter(options.expression) if options.expression else None
    table = options.max_connections or MAX_CONNECTIONS
    engine: EngineLike = new_engine(keep_frames=options.write is not None, max_connections=table)
    engine.set_filter(packet_filter)
    engine.set_duration(options.duration)
    saver: Saver | None = None
    if options.write is not None:
        try:
            saver = Saver(FrameWriter(options.write, SAVED_SNAPLEN), sink)
        except SaveError as exc:
            raise UserError(str(exc)) from None

    def after_segment(seg: SegmentTuple) -> bool:
        if saver is not None:
            saver.write(seg)
        return sink.full

    tracer = Tracer(sink, engine, max_connections=table,
                    after_segment=after_segment if saver or sink.limit else None)
    frames = 0
    snaplens: set[int] = set()
    failure: str | None = None
    usage_failure: str | None = None
    try:
        with Interruption() as interruption:
            for index, path in enumerate(options.inputs):
                if interruption.requested or tracer.stopped:
                    break
                try:
                    stream, name = open_capture_input(path)
                    watched = cast(BinaryIO, WatchedInput(stream, interruption))
                    with stream, CaptureFile(watched, name=name,
                                             first_number=frames) as capture:
                        if saver is not None:
                            saver.input, saver.input_name = index, name
                        try:
                            for batch in capture.segment_batches(engine):
                                tracer.feed_segments(batch)
                                sink.flush()  # a pipe reader sees each read's results
                                if interruption.requested or tracer.stopped or (
                                        options.duration is not None
                                        and engine.counters()["beyond"]):
                                    break
                        finally:
                            frames += capture.frames_read
                            snaplens |= capture.snaplens
                except CaptureError as exc:
                    if interruption.requested:
                        break  # the read was cut short by the signal, not by damage
                    if index == 0 and not frames:
                        raise UserError(str(exc)) from None  # nothing read: one line
                    failure = str(exc)  # reported after what came before is decoded
                    break
                except FilterError as exc:  # no program for a link type met in the input
                    usage_failure = f"filter expression: {exc}"
                    break
                except Interrupted:
                    break  # a signal while waiting for a pipe: the trace ends here
                if options.duration is not None and engine.counters()["beyond"]:
                    break
            tracer.finish()
    except SaveError as exc:
        raise UserError(str(exc)) from None
    finally:
        if saver is not None:
            saver.writer.close()
    # Frames after --duration were walked but are not part of the trace.
    summary = tracer.summary(frames - engine.counters()["beyond"], snaplens)
    if saver is not None and saver.writer.clamped_times:
        n = saver.writer.clamped_times
        summary.warnings.append(
            f"{n} frame{'s' if n != 1 else ''} written to {options.write} with a time the "
            "file format cannot hold (clamped)")
    status = finish_output(sink, summary)
    if usage_failure is not None:
        raise UsageError(usage_failure)
    if failure is not None:
        raise UserError(failure)
    return status

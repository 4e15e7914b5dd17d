"""Command line: ``smctrace -f FILE`` (offline) and ``smctrace -i IFACE`` (live)."""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import click

from smctrace import __version__, entry
from smctrace.events import ConnectionOutcome, EventSink, GapEvent, MessageEvent, TraceSummary
from smctrace.frame import CaptureError
from smctrace.output.common import summary_line
from smctrace.pipeline import Tracer

IDLE_TICK = 1.0  # seconds between idle wake-ups of the live tracer
# The trace ran to its end, but part of the input could not be searched (frames of a link
# type smctrace does not read, headers cut by the snap length): the warnings say what.
EXIT_NOT_SEARCHED = 3


class UserError(Exception):
    """A problem the user can fix: printed as one line, exit status 1."""


class CountingSink(EventSink):
    """Forwards events to the chosen output; counts decided connections (for -c) and
    remembers which CLC messages the frame just fed completed (for -w comments)."""

    def __init__(self, inner: EventSink) -> None:
        self.inner = inner
        self.decided = 0
        self.comment_frames = False  # set with -w: name each frame's CLC messages
        self.frame_messages: list[str] = []

    def on_message(self, event: MessageEvent) -> None:
        if self.comment_frames:
            msg = event.message
            self.frame_messages.append(f"SMC CLC {msg.kind.capitalize()} v{msg.version} "
                                       f"({msg.length} bytes) from {event.sender}")
        self.inner.on_message(event)

    def on_gap(self, event: GapEvent) -> None:
        self.inner.on_gap(event)

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        self.decided += 1
        self.inner.on_connection(outcome)

    def flush(self) -> None:
        self.inner.flush()


def make_output(out: TextIO, *, as_json: bool, as_table: bool, hex_dump: bool, reserved: bool,
                timestamps: bool) -> EventSink:
    # Only the chosen output is imported: start-up pays for what the run uses.
    if as_json:
        from smctrace.output.jsonl import JsonOutput

        return JsonOutput(out, reserved=reserved, hex_dump=hex_dump)
    if as_table:
        from smctrace.output.table import TableOutput

        return TableOutput(out)
    from smctrace.output.text import TextOutput

    return TextOutput(out, timestamps=timestamps, hex_dump=hex_dump, reserved=reserved)


class Interruption:
    """SIGINT/SIGTERM end a trace at the next batch of segments, with its summary (like
    tcpdump); a signal that came during start-up stops it before the first one."""

    def __init__(self) -> None:
        self.requested = bool(entry.pending)

    def __enter__(self) -> Interruption:
        self._previous = [signal.signal(s, self._request) for s in (signal.SIGINT,
                                                                     signal.SIGTERM)]
        if entry.pending:
            self.requested = True
        return self

    def _request(self, signum: int, _frame: object) -> None:
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for signum, previous in zip((signal.SIGINT, signal.SIGTERM), self._previous,
                                    strict=True):
            signal.signal(signum, previous)


def finish_output(sink: EventSink, summary: TraceSummary) -> None:
    """End of tracing: the sink's end (tables, JSON summary), then the stderr summary and
    one line per warning (what could not be searched)."""
    sink.finish(summary)
    sys.stdout.flush()
    click.echo(summary_line(summary), err=True)
    for line in summary.warnings:
        click.echo(f"smctrace: warning: {line}", err=True)


def trace_file(path: str, sink: CountingSink) -> int:
    """Decode a capture file; returns the exit status (warnings may make it non-zero)."""
    from smctrace.capture.pcapfile import CaptureFile

    tracer = Tracer(sink)
    failure: CaptureError | None = None
    frames = 0
    snaplens: set[int] = set()
    try:
        with CaptureFile(path) as capture, Interruption() as interruption:
            try:
                for batch in capture.segment_batches(tracer.engine):
                    if interruption.requested:
                        break
                    tracer.feed_segments(batch)
            except CaptureError as exc:
                failure = exc  # report after the valid prefix has been decoded
            frames = capture.frames_read
            snaplens = capture.snaplens
    except CaptureError as exc:
        raise UserError(str(exc)) from None
    tracer.finish()
    summary = tracer.summary(frames, snaplens)
    finish_output(sink.inner, summary)
    if failure is not None:
        raise UserError(str(failure))
    return EXIT_NOT_SEARCHED if summary.warnings and any(
        "could not be searched" in line for line in summary.warnings) else 0


def trace_live(interfaces: list[str], sink: CountingSink, *, backend: str, snaplen: int,
               promisc: bool, count: int | None, duration: float | None,
               write: str | None, user: str, buffer_kib: int | None) -> None:
    from smctrace.live import LiveCapture, LiveError
    from smctrace.live.capture import RECEIVE_BUFFER_BYTES
    from smctrace.privileges import CAP_BPF, PrivilegeError, drop_privileges

    # Ordinary SYNs never reach user space live, so plain TCP connections are not counted.
    tracer = Tracer(sink, sees_plain_syns=False)
    capture = LiveCapture(interfaces, backend=backend, snaplen=snaplen, promisc=promisc,
                          buffer_bytes=RECEIVE_BUFFER_BYTES if buffer_kib is None
                          else buffer_kib * 1024)
    writer = None
    frames = 0
    wake_read = wake_write = -1
    interruption = Interruption().__enter__()  # a signal during attach stops at once
    try:
        capture.attach()
        if capture.notice:
            click.echo(f"smctrace: {capture.notice}", err=True)
        if write is not None:
            writer = capture.open_writer(write)
            sink.comment_frames = True
        # Reading the eBPF filter's counters needs CAP_BPF; nothing else needs privilege.
        drop_privileges(user, keep=(CAP_BPF,) if capture.backend_used == "bcc" else ())
        click.echo(f"tracing on {', '.join(interfaces)} (backend {capture.backend_used}), "
                   f"snapshot length {snaplen} bytes", err=True)
        # A signal writes to this pipe and so wakes the capture's poll() at once; the idle
        # tick (late-Decline timers, --duration) can then be rare: an idle tracer costs
        # one wake-up a second.
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        deadline = time.monotonic() + duration if duration is not None else None
        tick = min(IDLE_TICK, duration) if duration else IDLE_TICK

        def should_stop() -> bool:
            if interruption.requested:
                return True
            if count is not None and sink.decided >= count:
                return True
            return deadline is not None and time.monotonic() >= deadline

        # The kernel filter applied the rule: the engine parses and drops duplicates.
        for batch in capture.batches(tracer.engine, should_stop, poll_interval=tick,
                                     wake_fd=wake_read, keep_frames=writer is not None):
            frames += batch.count
            if writer is None:
                tracer.feed_segments(batch.segments)
            else:
                for frame, segments in batch.per_frame():
                    sink.frame_messages.clear()
                    tracer.feed_segments(segments)
                    writer.write(frame, "; ".join(sink.frame_messages) or None)
            tracer.advance(time.time())  # let late-Decline timers expire
            sink.flush()
    except (LiveError, PrivilegeError) as exc:
        raise UserError(str(exc)) from None
    finally:
        interruption.__exit__()
        if wake_write >= 0:
            signal.set_wakeup_fd(-1)
            os.close(wake_read)
            os.close(wake_write)
        stats = capture.stats()
        capture.close()
        if writer is not None:
            writer.close()
    tracer.finish()
    summary = tracer.summary(frames)
    summary.capture = {key: (None if value < 0 else value) for key, value in stats.items()}
    if capture.backend_used == "cbpf":
        summary.warnings += cbpf_warnings(summary)
    finish_output(sink.inner, summary)


def cbpf_warnings(summary: TraceSummary) -> list[str]:
    """What the stateless classic-BPF filter may have missed, when there are signs of it."""
    from smctrace.match import cbpf

    lines = []
    if summary.split_messages:
        n = summary.split_messages
        lines.append(
            f"{n} CLC message{'s were' if n != 1 else ' was'} split across TCP segments: the "
            f"classic-BPF filter ({cbpf.LIMITS}) cannot keep the continuations, so "
            f"{'they are' if n != 1 else 'it is'} incomplete; the eBPF filter "
            "(--backend bcc) follows them")
    if summary.silent_smc:
        n = summary.silent_smc
        lines.append(
            f"{n} connection{'s' if n != 1 else ''} agreed on SMC in the TCP handshake but "
            "showed no CLC message: the classic-BPF filter misses a first CLC message whose "
            "header is split before its 8th byte; the eBPF filter (--backend bcc) follows it")
    return lines


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can hit into one line and a non-zero exit."""
    try:
        yield
    except UserError as exc:
        click.echo(f"smctrace: {exc}", err=True)
        sys.exit(1)
    except BrokenPipeError:
        # `smctrace ... | head`: the reader left; exit quietly like other filters.
        sys.stderr.close()
        sys.exit(0)
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            sys.exit(0)
        click.echo(f"smctrace: {exc.strerror or exc}", err=True)
        sys.exit(1)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-f", "--file", "path", metavar="FILE",
              help="Read a pcap or pcapng file ('-' for standard input).")
@click.option("-i", "--interface", "interfaces", multiple=True, metavar="IFACE",
              help="Trace live on IFACE (repeatable; 'any' for every interface).")
@click.option("--json", "as_json", is_flag=True,
              help="Write JSON lines (schema: --json-schema).")
@click.option("--json-schema", "print_schema", is_flag=True,
              help="Print the JSON Schema of the JSON lines and exit.")
@click.option("--table", "as_table", is_flag=True,
              help="At the end, print tables of connections and of outcome counts.")
@click.option("--hex", "hex_dump", is_flag=True, help="Add a hex dump of every CLC message.")
@click.option("--reserved", is_flag=True, help="Show reserved fields.")
@click.option("--no-timestamps", is_flag=True, help="Do not print packet times (text output).")
@click.option("-c", "--count", type=click.IntRange(min=1), metavar="N",
              help="Live: stop after N connections have an outcome.")
@click.option("--duration", type=click.FloatRange(min=0), metavar="SECS",
              help="Live: stop after SECS seconds.")
@click.option("-s", "--snaplen", type=click.IntRange(min=128, max=65535), default=1280,
              show_default=True, help="Live: bytes kept per frame.")
@click.option("-B", "--buffer-size", "buffer_kib", type=click.IntRange(min=64), metavar="KiB",
              help="Live: socket receive buffer per interface (default 262144 = 256 MiB); "
                   "holds bursts of handshakes while they are decoded (kernel memory is "
                   "used only while behind).")
@click.option("--promisc/--no-promisc", default=True, show_default=True,
              help="Live: put the interfaces into promiscuous mode.")
@click.option("-w", "--write", metavar="FILE",
              help="Live: also write the kept frames to FILE (pcapng).")
@click.option("--backend", type=click.Choice(["auto", "bcc", "cbpf"]), default="auto",
              show_default=True,
              help="Live: in-kernel filter: bcc (eBPF, follows each connection) or cbpf "
                   "(classic BPF, stateless: it cannot show a SYN-ACK without the option, "
                   "FIN/RST, or the continuation segments of a CLC message split across "
                   "segments; the summary warns when that may have happened).")
@click.option("--ebpf", "print_program", is_flag=True,
              help="Print the BPF program for the chosen backend and exit.")
@click.option("-Z", "--relinquish-privileges", "user", metavar="USER", default="nobody",
              show_default=True, help="Live: drop root to USER once attached ('root' keeps it).")
@click.version_option(__version__, "--version")
def main(path: str | None, interfaces: tuple[str, ...], as_json: bool, as_table: bool,
         hex_dump: bool, reserved: bool, no_timestamps: bool, count: int | None,
         duration: float | None, snaplen: int, buffer_kib: int | None, promisc: bool,
         write: str | None, backend: str, print_program: bool, user: str,
         print_schema: bool) -> None:
    """Show, for every TCP connection, whether SMC was negotiated, over which path, and
    if not, exactly why.

    \b
    Examples:
      smctrace -f dump.pcap                 decode a capture file
      tcpdump -i eth0 -w - | smctrace -f -  decode from a pipe
      sudo smctrace -i eth0 --json          trace live, JSON lines
    """
    with user_errors():
        if as_json and as_table:
            raise UserError("--json and --table cannot be combined; pick one")
        if print_schema:
            from smctrace.schema import schema_text

            click.echo(schema_text(), nl=False)
            return
        if print_program:
            from smctrace.live import program_source

            click.echo(program_source(backend, list(interfaces) or ["eth0"]))
            return
        if (path is None) == (not interfaces):
            raise UserError("give either -f FILE or -i IFACE (see smctrace --help)")
        sink = CountingSink(make_output(sys.stdout, as_json=as_json, as_table=as_table,
                                        hex_dump=hex_dump, reserved=reserved,
                                        timestamps=not no_timestamps))
        if path is not None:
            status = trace_file(path, sink)
            if status:
                sys.exit(status)
        else:
            trace_live(list(interfaces), sink, backend=backend, snaplen=snaplen,
                       promisc=promisc, count=count, duration=duration, write=write,
                       user=user, buffer_kib=buffer_kib)


if __name__ == "__main__":
    main()

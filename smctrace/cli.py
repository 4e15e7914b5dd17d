"""Command line: ``smctrace -f FILE`` (offline) and ``smctrace -i IFACE`` (live)."""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

import click

from smctrace import __version__
from smctrace.events import ConnectionOutcome, EventSink, GapEvent, MessageEvent, TraceSummary
from smctrace.frame import CaptureError
from smctrace.output.common import summary_line
from smctrace.output.jsonl import JsonOutput
from smctrace.output.table import TableOutput
from smctrace.output.text import TextOutput
from smctrace.pipeline import Tracer

if TYPE_CHECKING:
    from smctrace.service import Service

IDLE_TICK = 1.0  # seconds between idle wake-ups of the live tracer


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


def make_output(out: TextIO, *, as_json: bool, as_table: bool, hex_dump: bool, reserved: bool,
                timestamps: bool) -> EventSink:
    if as_json:
        return JsonOutput(out, reserved=reserved, hex_dump=hex_dump)
    if as_table:
        return TableOutput(out)
    return TextOutput(out, timestamps=timestamps, hex_dump=hex_dump, reserved=reserved)


def finish_output(sink: EventSink, summary: TraceSummary) -> None:
    """End of tracing: the sink's end (tables, JSON summary), then the stderr summary."""
    sink.finish(summary)
    sys.stdout.flush()
    click.echo(summary_line(summary), err=True)


def trace_file(path: str, sink: CountingSink) -> None:
    from smctrace.capture.pcapfile import CaptureFile
    from smctrace.capture.prefilter import Prefilter

    prefilter = Prefilter()
    tracer = Tracer(sink, prefilter)
    failure: CaptureError | None = None
    frames = 0
    try:
        with CaptureFile(path) as capture:
            try:
                for frame in capture.frames(prefilter):
                    tracer.feed(frame)
            except CaptureError as exc:
                failure = exc  # report after the valid prefix has been decoded
            frames = capture.frames_read
    except CaptureError as exc:
        raise UserError(str(exc)) from None
    tracer.finish()
    finish_output(sink.inner, tracer.summary(frames))
    if failure is not None:
        raise UserError(str(failure))


def trace_live(interfaces: list[str], sink: CountingSink, *, backend: str, snaplen: int,
               promisc: bool, count: int | None, duration: float | None,
               write: str | None, user: str, buffer_kib: int | None,
               service: Service | None = None) -> None:
    from smctrace.live import LiveCapture, LiveError
    from smctrace.live.capture import RECEIVE_BUFFER_BYTES
    from smctrace.privileges import CAP_BPF, PrivilegeError, drop_privileges

    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    # Ordinary SYNs never reach user space live, so plain TCP connections are not counted.
    tracer = Tracer(sink, sees_plain_syns=False)
    capture = LiveCapture(interfaces, backend=backend, snaplen=snaplen, promisc=promisc,
                          buffer_bytes=RECEIVE_BUFFER_BYTES if buffer_kib is None
                          else buffer_kib * 1024)
    writer = None
    frames = 0
    wake_read = wake_write = -1
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
        if service is not None:  # bound as root above; served only now, without root
            start_service(service)
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
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
            if stop_requested:
                return True
            if count is not None and sink.decided >= count:
                return True
            return deadline is not None and time.monotonic() >= deadline

        for frame in capture.frames(should_stop, poll_interval=tick, wake_fd=wake_read):
            if frame is None:
                tracer.advance(time.time())  # idle: let late-Decline timers expire
                if service is not None:
                    service.tick(tracer.summary(frames), tracer.tracker.followed, capture)
                continue
            frames += 1
            sink.frame_messages.clear()
            tracer.feed(frame)
            if writer is not None:
                writer.write(frame, "; ".join(sink.frame_messages) or None)
    except (LiveError, PrivilegeError) as exc:
        raise UserError(str(exc)) from None
    finally:
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
    finish_output(sink.inner, summary)


def open_service(listen: str, recent: int, source: str, output: EventSink) -> Service:
    """--http: listen now (still as root, so ports below 1024 work); serve later.  Its
    sink passes every event on to ``output``."""
    from smctrace.service import Service, ServiceError

    try:
        service = Service(listen, recent=recent, source=source, output=output)
        service.bind()
    except ServiceError as exc:
        raise UserError(str(exc)) from None
    if not service.address.loopback:
        click.echo(f"smctrace: --http on {service.address.host} can be reached from other "
                   "hosts: it shows peers' addresses and hostnames", err=True)
    return service


def start_service(service: Service) -> None:
    service.start()
    click.echo(f"smctrace: serving {service.url} (page, /metrics, /api/summary, "
               "/api/connections)", err=True)


def serve_until_interrupted(service: Service) -> None:
    """-f --http: the trace is over; keep serving it until SIGINT or SIGTERM."""
    import threading

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    click.echo(f"smctrace: the trace is finished; serving it on {service.url} until "
               "interrupted", err=True)
    while not stop.wait(1.0):
        pass


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
@click.option("--json", "as_json", is_flag=True, help="Write JSON lines (schema: README).")
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
              show_default=True, help="Live: in-kernel filter (eBPF via BCC, or classic BPF).")
@click.option("--ebpf", "print_program", is_flag=True,
              help="Print the BPF program for the chosen backend and exit.")
@click.option("-Z", "--relinquish-privileges", "user", metavar="USER", default="nobody",
              show_default=True, help="Live: drop root to USER once attached ('root' keeps it).")
@click.option("--http", "http_listen", metavar="[ADDR:]PORT",
              help="Also serve a live page, Prometheus /metrics and a JSON API on ADDR:PORT "
                   "(default address 127.0.0.1; IPv6 as [ADDR]:PORT). With -f, the finished "
                   "trace is served until interrupted.")
@click.option("--http-recent", type=click.IntRange(min=1, max=100_000), metavar="N",
              help="--http: connections kept for the page and /api/connections "
                   "(default 1000).")
@click.version_option(__version__, "--version")
def main(path: str | None, interfaces: tuple[str, ...], as_json: bool, as_table: bool,
         hex_dump: bool, reserved: bool, no_timestamps: bool, count: int | None,
         duration: float | None, snaplen: int, buffer_kib: int | None, promisc: bool,
         write: str | None, backend: str, print_program: bool, user: str,
         http_listen: str | None, http_recent: int | None) -> None:
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
        if print_program:
            from smctrace.live import program_source

            click.echo(program_source(backend, list(interfaces) or ["eth0"]))
            return
        if (path is None) == (not interfaces):
            raise UserError("give either -f FILE or -i IFACE (see smctrace --help)")
        if http_recent is not None and http_listen is None:
            raise UserError("--http-recent needs --http")
        output = make_output(sys.stdout, as_json=as_json, as_table=as_table,
                             hex_dump=hex_dump, reserved=reserved,
                             timestamps=not no_timestamps)
        service = None
        if http_listen is not None:
            source = f"-f {path}" if path is not None else " ".join(
                f"-i {name}" for name in interfaces)
            service = open_service(http_listen, http_recent or 1000, source, output)
            output = service.sink
        sink = CountingSink(output)
        try:
            if path is not None:
                if service is not None:
                    start_service(service)
                trace_file(path, sink)
                if service is not None:
                    serve_until_interrupted(service)
            else:
                trace_live(list(interfaces), sink, backend=backend, snaplen=snaplen,
                           promisc=promisc, count=count, duration=duration, write=write,
                           user=user, buffer_kib=buffer_kib, service=service)
        finally:
            if service is not None:
                service.stop()


if __name__ == "__main__":
    main()

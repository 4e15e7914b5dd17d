"""``smctrace -i IFACE``: live tracing through the kernel filter."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from smctrace.cli.errors import UserError
from smctrace.cli.run import CountingSink, compile_filter, finish_output
from smctrace.cli.signals import Interruption
from smctrace.events import TraceSummary
from smctrace.match.engine import new_engine
from smctrace.match.rule import MAX_CONNECTIONS
from smctrace.pipeline import Tracer

if TYPE_CHECKING:
    from smctrace.service import Service

IDLE_TICK = 1.0  # seconds between idle wake-ups of the live tracer


@dataclass(frozen=True, slots=True)
class LiveOptions:
    interfaces: tuple[str, ...]
    backend: str = "auto"
    snaplen: int = 1280
    promisc: bool = True
    duration: float | None = None  # wall-clock seconds
    write: str | None = None
    user: str = "nobody"
    buffer_kib: int | None = None
    expression: str | None = None
    max_connections: int | None = None


def trace_live(options: LiveOptions, sink: CountingSink,
               service: Service | None = None) -> int:
    """Trace until a signal, -c or --duration; returns the exit status."""
    from smctrace.live import LiveCapture, LiveError
    from smctrace.live.capture import RECEIVE_BUFFER_BYTES, SNAP_PAYLOAD
    from smctrace.match.bcc import FilterParams
    from smctrace.output.pcap import FrameWriter, SaveError
    from smctrace.privileges import CAP_BPF, PrivilegeError, drop_privileges

    interfaces = list(options.interfaces)
    # The user's filter runs in the engine on what the kernel filter kept: ordinary
    # traffic still never crosses into user space.
    packet_filter = compile_filter(options.expression) if options.expression else None
    table = options.max_connections or MAX_CONNECTIONS
    engine = new_engine(max_connections=table)
    engine.set_filter(packet_filter)
    writer: FrameWriter | None = None
    # Ordinary SYNs never reach user space live, so plain TCP connections are not counted.
    tracer = Tracer(sink, engine, sees_plain_syns=False, max_connections=table,
                    after_segment=(lambda _seg: sink.full) if sink.limit else None)
    params = FilterParams(snap_payload=SNAP_PAYLOAD, max_connections=table)
    capture = LiveCapture(interfaces, backend=options.backend, snaplen=options.snaplen,
                          promisc=options.promisc, filter_params=params,
                          buffer_bytes=RECEIVE_BUFFER_BYTES if options.buffer_kib is None
                          else options.buffer_kib * 1024)
    frames = 0
    wake_read = wake_write = -1
    interruption = Interruption().__enter__()  # a signal during attach stops at once
    try:
        capture.attach()
        if capture.notice:
            click.echo(f"smctrace: {capture.notice}", err=True)
        if options.write is not None:
            writer = FrameWriter(options.write, capture.snaplen)
            for name, linktype in capture.interface_link_types():
                writer.add_interface(name, linktype)  # numbered as Frame.interface
            sink.comment_frames = True
        # Reading the eBPF filter's counters needs CAP_BPF; nothing else needs privilege.
        drop_privileges(options.user, keep=(CAP_BPF,) if capture.backend_used == "bcc" else ())
        if service is not None:  # bound as root before; served only now, without root
            from smctrace.cli.service import start_service

            start_service(service)
        click.echo(f"tracing on {', '.join(interfaces)} (backend {capture.backend_used}), "
                   f"snapshot length {options.snaplen} bytes", err=True)
        # A signal writes to this pipe and so wakes the capture's poll() at once; the idle
        # tick (late-Decline timers, --duration) can then be rare: an idle tracer costs
        # one wake-up a second.
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        duration = options.duration
        deadline = time.monotonic() + duration if duration is not None else None
        tick = min(IDLE_TICK, duration) if duration else IDLE_TICK

        publish_at = 0.0  # the service gets the counters on idle ticks, else once a tick

        def should_stop() -> bool:
            if interruption.requested or tracer.stopped:
                return True
            return deadline is not None and time.monotonic() >= deadline

        # The kernel filter applied the rule: the engine parses and drops duplicates.
        for batch in capture.batches(engine, should_stop, poll_interval=tick,
                                     wake_fd=wake_read, keep_frames=writer is not None):
            frames += batch.count
            if writer is None:
                tracer.feed_segments(batch.segments)
            else:
                for frame, segments in batch.per_frame():
                    if tracer.stopped:
                        break
                    sink.frame_messages.clear()  # none from the timers of the last round
                    tracer.feed_segments(segments)
                    comment = sink.frame_comment()
                    if packet_filter is None or packet_filter.matches(
                            frame.data, frame.linktype, frame.orig_len):
                        writer.write(frame.interface, frame.time, frame.data, frame.orig_len,
                                     comment)
            tracer.advance(time.time())  # let late-Decline timers expire
            sink.flush()
            # A summary and every socket's and filter's counters cost far more than a
            # busy round's few segments: publish them on idle rounds, and at most once a
            # tick under load.
            if service is not None and (not batch.count or time.monotonic() >= publish_at):
                service.tick(tracer.summary(frames), tracer.tracker.followed, capture)
                publish_at = time.monotonic() + tick
    except (LiveError, PrivilegeError, SaveError) as exc:
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
    # The eBPF filter passes only so many SMC SYNs a second and counts them all: under a
    # flood most unanswered ones never reached user space, so its count is the one to say.
    if "smc_syns" in stats and "answered" in stats:
        summary.unanswered_syns = max(summary.unanswered_syns,
                                      stats["smc_syns"] - stats["answered"])
    if capture.backend_used == "cbpf":
        summary.warnings += cbpf_warnings(summary)
    return finish_output(sink, summary)


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


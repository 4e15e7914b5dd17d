"""What an offline and a live run share: the chosen output, the sink in front of it that
counts and limits (-c, -q, -w comments), and the end (summary, warnings, exit status)."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import click

from smctrace.cli.errors import UsageError, UserError
from smctrace.events import (
    OUTCOMES,
    ConnectionOutcome,
    EventSink,
    GapEvent,
    MessageEvent,
    TraceSummary,
)
from smctrace.exitcodes import NOT_SEARCHED, OK
from smctrace.frame import FilterError
from smctrace.output.common import summary_line

if TYPE_CHECKING:
    from smctrace.capture.pcapfilter import PacketFilter


@dataclass(frozen=True, slots=True)
class OutputOptions:
    as_json: bool = False
    as_table: bool = False
    hex_dump: bool = False
    reserved: bool = False
    timestamps: bool = True
    quiet: bool = False  # -q: outcomes and the summary only
    verbose: bool = False  # -v: every field of every message (text)


def make_output(out: TextIO, options: OutputOptions) -> EventSink:
    # Only the chosen output is imported: start-up pays for what the run uses.
    if options.as_json:
        from smctrace.output.jsonl import JsonOutput

        return JsonOutput(out, reserved=options.reserved, hex_dump=options.hex_dump)
    if options.as_table:
        from smctrace.output.table import TableOutput

        return TableOutput(out)
    from smctrace.output.text import TextOutput

    return TextOutput(out, timestamps=options.timestamps, hex_dump=options.hex_dump,
                      reserved=options.reserved, verbose=options.verbose)


def compile_filter(expression: str) -> PacketFilter:
    """The user's filter, checked before anything is read (a syntax error is a usage
    error, exit 2; no libpcap is the system's problem, exit 1)."""
    from smctrace.capture.pcapfilter import PacketFilter

    try:
        packet_filter = PacketFilter(expression)
    except FilterError as exc:
        raise UserError(str(exc)) from None
    try:
        packet_filter.check()
    except FilterError as exc:
        raise UsageError(f"filter expression: {exc}") from None
    return packet_filter


class CountingSink(EventSink):
    """In front of the output: counts outcomes (``-c N`` stops after the N-th; nothing
    after it is shown), leaves messages and gaps out with ``-q``, and remembers which
    CLC messages the segment just fed completed (the comments of ``-w``)."""

    def __init__(self, inner: EventSink, *, limit: int | None = None,
                 quiet: bool = False) -> None:
        self.inner = inner
        self.limit = limit
        self.quiet = quiet
        self.decided = 0
        self.outcomes: Counter[str] = Counter()
        self.comment_frames = False  # set with -w: name each frame's CLC messages
        self.frame_messages: list[str] = []

    @property
    def full(self) -> bool:
        """-c N: N connections have an outcome."""
        return self.limit is not None and self.decided >= self.limit

    def on_message(self, event: MessageEvent) -> None:
        if self.full:
            return
        if self.comment_frames:
            msg = event.message
            self.frame_messages.append(f"SMC CLC {msg.kind.capitalize()} v{msg.version} "
                                       f"({msg.length} bytes) from {event.sender}")
        if not self.quiet:
            self.inner.on_message(event)

    def on_gap(self, event: GapEvent) -> None:
        if not self.quiet and not self.full:
            self.inner.on_gap(event)

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        if self.full:
            return
        self.decided += 1
        self.outcomes[outcome.outcome] += 1
        self.inner.on_connection(outcome)

    def flush(self) -> None:
        self.inner.flush()

    def frame_comment(self) -> str | None:
        """-w: the comment of the frame just fed (the CLC messages it completed), which
        then starts over for the next frame."""
        comment = "; ".join(self.frame_messages) or None
        self.frame_messages.clear()
        return comment

    def limit_summary(self, summary: TraceSummary) -> None:
        """With -c reached, the summary counts the connections shown, not the ones the
        tracker decided in the same segment after the N-th."""
        if self.full:
            summary.outcomes = {o: self.outcomes[o] for o in OUTCOMES}
            summary.connections = self.decided


def finish_output(sink: CountingSink, summary: TraceSummary) -> int:
    """End of tracing: the output's end (tables, JSON summary), then the stderr summary
    and one line per warning.  Returns the exit status."""
    sink.limit_summary(summary)
    sink.inner.finish(summary)
    sys.stdout.flush()
    click.echo(summary_line(summary), err=True)
    for line in summary.warnings:
        click.echo(f"smctrace: warning: {line}", err=True)
    return NOT_SEARCHED.code if summary.unsearched else OK.code

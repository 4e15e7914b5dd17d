"""Default text output: one line per CLC message, one line per connection outcome; with
``verbose`` every field of each message below its line, named as in the JSON output."""

from __future__ import annotations

from typing import Any, TextIO

from smctrace.events import (
    ConnectionId,
    ConnectionOutcome,
    EventSink,
    GapEvent,
    MessageEvent,
    TraceSummary,
)
from smctrace.output.clc_text import format_message, hexdump
from smctrace.output.common import Clock, describe_outcome

TEXT_CACHE_SIZE = 4096  # rendered messages kept (the oldest goes first)


class TextOutput(EventSink):
    def __init__(self, out: TextIO, *, timestamps: bool = True, hex_dump: bool = False,
                 reserved: bool = False, verbose: bool = False) -> None:
        self._out = out
        # Lines wait here until flush(): one write per batch of segments, not per line.
        self._pending: list[str] = []
        self._write = self._pending.append
        self._verbose = verbose
        self._timestamps = timestamps
        self._hex = hex_dump
        self._reserved = reserved
        self._clock = Clock()
        self._texts: dict[bytes, str] = {}

    def _line(self, time: float, text: str) -> None:
        if self._timestamps:
            self._write(f"{self._clock(time)} {text}\n")
        else:
            self._write(f"{text}\n")

    @staticmethod
    def _direction(conn: ConnectionId, sender: str) -> str:
        a, b = (conn.client, conn.server) if sender == "client" else (conn.server, conn.client)
        return f"{a} -> {b}"

    def on_message(self, event: MessageEvent) -> None:
        msg = event.message
        text = self._texts.get(msg.raw)  # a repeated message is rendered once
        if text is None:
            text = format_message(msg, reserved=self._reserved)
            if len(self._texts) >= TEXT_CACHE_SIZE:
                del self._texts[next(iter(self._texts))]
            self._texts[msg.raw] = text
        self._line(event.time, f"{self._direction(event.conn, event.sender)}: {text}")
        if self._verbose:
            self._write(_field_lines(msg, self._reserved))
        if self._hex:
            self._write(hexdump(event.message.raw) + "\n")

    def on_gap(self, event: GapEvent) -> None:
        size = f"{event.missing} bytes" if event.missing else "bytes"
        self._line(event.time, f"{self._direction(event.conn, event.sender)}: "
                               f"gap: {size} not captured at seq {event.seq}")

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        self._line(outcome.end, f"{outcome.conn.client} -> {outcome.conn.server}: "
                                f"{describe_outcome(outcome)}")

    def flush(self) -> None:
        if self._pending:
            self._out.write("".join(self._pending))
            self._pending.clear()
        self._out.flush()

    def finish(self, summary: TraceSummary) -> None:
        self.flush()


def _field_lines(msg: Any, reserved: bool) -> str:
    """Every field of the message (the JSON ``fields``), one indented ``name: value`` line
    each; values as in the JSON (escaped: no wire byte reaches the terminal raw)."""
    import json

    from smctrace.schema import message_fields  # only with -v

    lines = []
    for name, value in message_fields(msg, reserved).items():
        shown = value if isinstance(value, str) and value.isprintable() and value.isascii() \
            else json.dumps(value, ensure_ascii=True)
        lines.append(f"    {name}: {shown}\n")
    return "".join(lines)

"""JSON lines: the stable interface for scripts; every object is declared in
:mod:`smctrace.schema` (``smctrace --json-schema``).

A message event is written without building its object each time: the part that depends
only on the message (type, version, length, eyecatcher, fields, malformed, hex) is
encoded once per distinct message and kept (a host's Proposals and Declines repeat byte
for byte), and the per-event part in front of it (time, frame, ends, sender) is joined as
text.  A test holds the result to ``json.dumps(schema.clc_record(...))`` byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TextIO

from smctrace import schema
from smctrace.clc import ClcMessage
from smctrace.events import ConnectionOutcome, GapEvent, MessageEvent, TraceSummary
from smctrace.output.common import LineOutput

# Encoded message tails kept (the oldest goes first beyond this).
TAIL_CACHE_SIZE = 4096


def _make_encoder() -> Callable[[Any], str]:
    """json.dumps(obj, ensure_ascii=True, separators=(", ", ": ")), set up once.

    json.dumps builds a new encoder for every call; the C encoder it uses is made here
    once (same settings, no circular check: events are trees) and called directly.
    """
    encoder = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": "))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C accelerator
        return encoder.encode
    c_encode = make(None, encoder.default, json.encoder.encode_basestring_ascii, None,
                    encoder.key_separator, encoder.item_separator, encoder.sort_keys,
                    encoder.skipkeys, encoder.allow_nan)

    def encode(obj: Any) -> str:
        return "".join(c_encode(obj, 0))

    return encode


encode = _make_encoder()


class JsonOutput(LineOutput):
    def __init__(self, out: TextIO, *, reserved: bool = False, hex_dump: bool = False) -> None:
        super().__init__(out)
        self._reserved = reserved
        self._hex = hex_dump
        self._tails: dict[bytes, str] = {}

    def _emit(self, obj: dict[str, Any]) -> None:
        # ensure_ascii keeps every wire string escaped: no control byte reaches a terminal.
        self._write(encode(obj) + "\n")

    def _tail(self, msg: ClcMessage) -> str:
        """``"type": ..., "fields": {...}, "malformed": ...}`` of a message, encoded once."""
        return encode(schema.message_record(msg, reserved=self._reserved,
                                            hex_dump=self._hex))[1:]

    def on_message(self, event: MessageEvent) -> None:
        msg = event.message
        tail = self._tails.get(msg.raw)
        if tail is None:
            tail = self._tail(msg)
            if len(self._tails) >= TAIL_CACHE_SIZE:
                del self._tails[next(iter(self._tails))]
            self._tails[msg.raw] = tail
        conn = event.conn
        # Endpoints are ip:port text (digits, hex, dots, colons, brackets): nothing to escape.
        self._write(f'{{"event": "clc", "time": {event.time!r}, "frame": {event.frame}, '
                        f'"client": "{conn.client}", "server": "{conn.server}", '
                        f'"from": "{event.sender}", {tail}\n')

    def on_gap(self, event: GapEvent) -> None:
        self._emit(schema.gap_record(event))

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        self._emit(schema.connection_record(outcome))

    def finish(self, summary: TraceSummary) -> None:
        self._emit(schema.summary_record(summary))
        self.flush()

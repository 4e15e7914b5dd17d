"""JSON lines: the stable interface for scripts (schema in README.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TextIO

from smctrace.events import ConnectionOutcome, EventSink, GapEvent, MessageEvent, TraceSummary


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


_encode = _make_encoder()


def message_record(event: MessageEvent, *, reserved: bool = False,
                   hex_dump: bool = False) -> dict[str, Any]:
    """The ``clc`` event of the JSON lines output."""
    msg = event.message
    header = msg.header
    conn = event.conn
    obj: dict[str, Any] = {
        "event": "clc", "time": event.time, "frame": event.frame,
        "client": str(conn.client), "server": str(conn.server),
        "from": event.sender, "type": msg.kind, "version": header.version,
        "length": header.length, "eyecatcher": header.eyecatcher,
        "fields": msg.fields(reserved=reserved), "malformed": msg.malformed,
    }
    if hex_dump:
        obj["hex"] = msg.raw.hex()
    return obj


def gap_record(event: GapEvent) -> dict[str, Any]:
    """The ``gap`` event of the JSON lines output."""
    return {"event": "gap", "time": event.time, "client": str(event.conn.client),
            "server": str(event.conn.server), "from": event.sender,
            "seq": event.seq, "missing": event.missing}


def connection_record(outcome: ConnectionOutcome) -> dict[str, Any]:
    """The ``connection`` event of the JSON lines output."""
    return {
        "event": "connection", "client": str(outcome.conn.client),
        "server": str(outcome.conn.server), "start": outcome.start, "end": outcome.end,
        "syn_option": outcome.syn_option, "synack_option": outcome.synack_option,
        "messages": list(outcome.messages), "outcome": outcome.outcome,
        "path": outcome.path, "version": outcome.version, "release": outcome.release,
        "first_contact": outcome.first_contact, "decline": outcome.decline_info(),
        "reason": outcome.reason, "handshake_ms": outcome.handshake_ms,
        "retransmissions": outcome.retransmissions,
    }


def summary_record(s: TraceSummary) -> dict[str, Any]:
    """The ``summary`` event of the JSON lines output (always the last line)."""
    obj: dict[str, Any] = {
        "event": "summary", "frames": s.frames, "segments": s.segments,
        "connections": s.connections, "outcomes": dict(s.outcomes),
        "plain_tcp": s.plain_tcp, "messages": s.messages, "malformed": s.malformed,
        "gaps": s.gaps, "duplicates": s.duplicates,
        "unanswered_syns": {"count": s.unanswered_syns, "sample": s.unanswered_sample},
        "evicted": s.evicted, "warnings": s.warnings,
    }
    obj.update(s.capture)
    return obj


class JsonOutput(EventSink):
    def __init__(self, out: TextIO, *, reserved: bool = False, hex_dump: bool = False) -> None:
        self._out = out
        self._reserved = reserved
        self._hex = hex_dump

    def _emit(self, obj: dict[str, Any]) -> None:
        # ensure_ascii keeps every wire string escaped: no control byte reaches a terminal.
        self._out.write(_encode(obj) + "\n")

    def on_message(self, event: MessageEvent) -> None:
        self._emit(message_record(event, reserved=self._reserved, hex_dump=self._hex))

    def on_gap(self, event: GapEvent) -> None:
        self._emit(gap_record(event))

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        self._emit(connection_record(outcome))
        self._out.flush()

    def finish(self, summary: TraceSummary) -> None:
        self._emit(summary_record(summary))
        self._out.flush()

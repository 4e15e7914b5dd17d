"""The JSON API: ``/api/summary``, ``/api/connections`` and the page's ``/api/page``.

Connections and summaries are the very objects of ``--json`` (built by
:mod:`smctrace.output.jsonl`), so the API follows that schema wherever it goes.  The JSON
text escapes ``<``, ``>`` and ``&`` as ``\\u003c`` etc. (the same objects when decoded): a
hostile hostname stays inert even in a client that wrongly treats the reply as HTML.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from smctrace import __version__
from smctrace.schema import connection_record, summary_record
from smctrace.service.recent import RecentConnection
from smctrace.service.sink import ServiceSink

PAGE_ROWS = 100  # rows the page shows; it asks only for what it has not seen yet
TOP_DECLINES = 10
MAX_QUERY_FIELDS = 8

_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


class ApiError(Exception):
    """A request the API cannot answer: HTTP 400 with a fixed message (never echoed)."""


@dataclass(frozen=True, slots=True)
class TraceInfo:
    """What the page shows about the trace itself."""

    source: str  # "-i eth0", "-f dump.pcap"
    started: float  # wall-clock time the service started


def encode(obj: Any) -> bytes:
    """Compact JSON, ASCII only, with the HTML-sensitive characters escaped."""
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.translate(_HTML_SAFE).encode("ascii")


def _query(query: str, allowed: frozenset[str]) -> dict[str, str]:
    try:
        fields = parse_qs(query, strict_parsing=bool(query), max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        raise ApiError("malformed query string") from None
    out: dict[str, str] = {}
    for name, values in fields.items():
        if name not in allowed:
            raise ApiError("unknown query parameter")
        if len(values) != 1:
            raise ApiError("a query parameter is given twice")
        out[name] = values[0]
    return out


def _number(value: str | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ApiError(f"{what} must be a number") from None
    if not math.isfinite(number):
        raise ApiError(f"{what} must be a finite number")
    return number


def _count(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise ApiError(f"{what} must be a whole number >= 0")
    return int(value)


def summary(sink: ServiceSink) -> bytes:
    """``/api/summary``: the summary object of ``--json``, as of now."""
    return encode(summary_record(sink.summary()))


def connections(sink: ServiceSink, query: str) -> tuple[bytes, int]:
    """``/api/connections[?since=T][&after=N][&limit=N]``: connection objects of
    ``--json``, oldest first: those with ``end`` later than T (seconds since the epoch),
    reported after sequence number N; also returns the last sequence number."""
    params = _query(query, frozenset({"since", "after", "limit"}))
    since = _number(params.get("since"), "since")
    after = _count(params.get("after"), "after") or 0
    limit = _count(params.get("limit"), "limit")
    rows = sink.recent.select(after=after, since=since, limit=limit)
    return encode([connection_record(outcome) for _, outcome, _ in rows]), sink.recent.last_seq


def _page_row(row: RecentConnection) -> dict[str, Any]:
    seq, outcome, peers = row
    client_hostname, server_hostname, eid = peers or (None, None, None)
    return {"seq": seq, "connection": connection_record(outcome),
            "client_hostname": client_hostname, "server_hostname": server_hostname,
            "eid": eid}


def page(sink: ServiceSink, info: TraceInfo, query: str) -> bytes:
    """``/api/page?after=N``: everything the page shows, in one consistent reply."""
    params = _query(query, frozenset({"after"}))
    after = _count(params.get("after"), "after") or 0
    last_seq = sink.recent.last_seq
    if after > last_seq:  # the page saw a previous smctrace on this port: start afresh
        after = 0
    rows = sink.recent.select(after=after, limit=PAGE_ROWS)
    declines = [{"decline": d.label, "known": d.known, "from": d.sender,
                 "hex": d.example["hex"],
                 "name": d.example["name"], "text": d.example["text"],
                 "connections": d.connections} for d in sink.top_declines(TOP_DECLINES)]
    return encode({
        "version": __version__, "source": info.source, "started": info.started,
        "state": "finished" if sink.final is not None else "tracing",
        "recent_size": sink.recent.size, "cursor": last_seq,
        "summary": summary_record(sink.summary()),
        "followed": sink.counts.followed,
        "interfaces": sink.snapshot.interfaces, "capture_updated": sink.snapshot.published,
        "declines": declines, "rows": [_page_row(row) for row in rows],
    })

"""--table: connection table and counts by outcome and decline code, at the end."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from smctrace.clc import describe_decline
from smctrace.events import OUTCOMES, ConnectionOutcome, EventSink, Outcome, TraceSummary
from smctrace.output.common import path_label


class TableOutput(EventSink):
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._rows: list[ConnectionOutcome] = []

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        self._rows.append(outcome)

    def finish(self, summary: TraceSummary) -> None:
        from tabulate import tabulate  # only --table needs it (and its import is slow)

        rows = sorted(self._rows, key=lambda o: o.start)
        table = []
        for o in rows:
            decline = ""
            if o.decline is not None:
                d = describe_decline(o.decline.diagnosis)
                decline = f"{d['hex']} {d['name']} ({o.decline_from})"
            table.append([str(o.conn.client), str(o.conn.server), o.outcome,
                          path_label(o) or "", decline,
                          "" if o.handshake_ms is None else f"{o.handshake_ms:.1f}"])
        self._out.write(tabulate(table, headers=["client", "server", "outcome", "path",
                                                 "decline", "handshake ms"],
                                 tablefmt="simple", disable_numparse=True) + "\n\n")
        by_key: Counter[tuple[Outcome, str]] = Counter()
        for o in rows:
            key = ""
            if o.decline is not None:
                d = describe_decline(o.decline.diagnosis)
                key = f"{d['hex']} {d['name']}"
            by_key[(o.outcome, key)] += 1
        order = {name: i for i, name in enumerate(OUTCOMES)}
        counts = [[outcome, code, n] for (outcome, code), n in
                  sorted(by_key.items(), key=lambda kv: (order[kv[0][0]], kv[0][1]))]
        self._out.write(tabulate(counts, headers=["outcome", "decline", "connections"],
                                 tablefmt="simple") + "\n")
        self._out.flush()

"""Ctrl-C and SIGTERM end a trace with its summary and exit status 0, like tcpdump,
whenever they come (also during start-up: :mod:`smctrace.entry` remembers them)."""

from __future__ import annotations

import signal
from types import FrameType

from smctrace import entry

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interruption:
    """While active, a signal only sets :attr:`requested`; the run stops at its next
    batch of segments (a read of the input offline, a poll round live)."""

    def __init__(self) -> None:
        self.requested = bool(entry.pending)
        self._previous: list[object] = []

    def __enter__(self) -> Interruption:
        self._previous = [signal.signal(s, self._request) for s in SIGNALS]
        if entry.pending:
            self.requested = True
        return self

    def _request(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for signum, previous in zip(SIGNALS, self._previous, strict=True):
            signal.signal(signum, previous)  # type: ignore[arg-type]

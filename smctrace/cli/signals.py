"""Ctrl-C and SIGTERM end a trace with its summary and exit status 0, like tcpdump,
whenever they come (also during start-up: :mod:`smctrace.entry` remembers them)."""

from __future__ import annotations

import io
import signal
import sys
from types import FrameType
from typing import BinaryIO

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _early_signal() -> bool:
    """A signal came before the command set up its handlers (the ``smctrace`` entry
    point remembers them from its first instruction)."""
    entry = sys.modules.get("smctrace.entry")
    return bool(entry is not None and entry.pending)


class Interrupted(Exception):
    """A signal came while the input was being waited for (a quiet pipe)."""


class Interruption:
    """While active, a signal only sets :attr:`requested`; the run stops at its next
    batch of segments (a read of the input offline, a poll round live).  A read that
    waits for a pipe (``tcpdump -w - | smctrace -f -`` on a quiet network) would be
    resumed after the handler, so there the handler raises :class:`Interrupted`."""

    def __init__(self) -> None:
        self.requested = False  # __enter__ also looks for a signal from before
        self.waiting = False  # inside a read of the input (see WatchedInput)
        self._previous: list[object] = []

    def __enter__(self) -> Interruption:
        self._previous = [signal.signal(s, self._request) for s in SIGNALS]
        if _early_signal():
            self.requested = True
        return self

    def _request(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        if self.waiting:
            self.waiting = False
            raise Interrupted

    def __exit__(self, *exc: object) -> None:
        for signum, previous in zip(SIGNALS, self._previous, strict=True):
            signal.signal(signum, previous)  # type: ignore[arg-type]


class WatchedInput(io.RawIOBase):
    """The capture input, read with :attr:`Interruption.waiting` set, so that a signal
    ends a read that waits (and nothing else)."""

    def __init__(self, stream: BinaryIO, interruption: Interruption) -> None:
        super().__init__()
        self._stream = stream
        self._interruption = interruption
        self.name = getattr(stream, "name", "<stream>")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int | None:  # type: ignore[override]
        interruption = self._interruption
        if interruption.requested:
            return 0  # stop reading: as if the input ended here
        interruption.waiting = True
        try:
            return self._stream.readinto(buffer)  # type: ignore[attr-defined, no-any-return]
        finally:
            interruption.waiting = False

"""The ``smctrace`` command's entry point: signals are caught from the first moment on.

Importing the pipeline takes a few tens of milliseconds; a Ctrl-C (or SIGTERM) in that
time must not end in a traceback.  The handlers installed here only remember the signal;
the command then stops at once with its summary, as it does for a signal during a trace.
"""

from __future__ import annotations

# _signal, not signal: the signal module builds its enums first (milliseconds in which a
# Ctrl-C would still end in a traceback).
import _signal  # type: ignore[import-not-found]  # no stubs; the module is CPython's
from types import FrameType

# Signals that arrived before (or while) the command set up its own handlers.
pending: list[int] = []


def _remember(signum: int, _frame: FrameType | None) -> None:
    pending.append(signum)


_signal.signal(_signal.SIGINT, _remember)
_signal.signal(_signal.SIGTERM, _remember)


def main() -> None:
    from smctrace.cli import main as command

    command(prog_name="smctrace")


if __name__ == "__main__":
    main()

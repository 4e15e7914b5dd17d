"""The ``smctrace`` command: options (:mod:`.command`), offline and live runs
(:mod:`.offline`, :mod:`.live`), what every run shares (:mod:`.run`), and how errors and
signals end a run (:mod:`.errors`, :mod:`.signals`)."""

from smctrace.cli.command import main

__all__ = ["main"]

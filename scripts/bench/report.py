"""Correctness failures of a live benchmark run: printed at once, counted for the exit
status (performance targets are only printed as met / NOT met)."""

from __future__ import annotations

failures: list[str] = []


def fail(message: str) -> None:
    failures.append(message)
    print(f"CHECK FAILED: {message}", flush=True)

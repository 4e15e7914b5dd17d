"""Running the tools under test and printing their figures side by side."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Run:
    """One tool's run: wall and CPU seconds, peak RSS, and what it printed."""

    wall: float
    cpu: float  # user + system, of the tool and its children
    rss_kib: int
    stdout: bytes
    returncode: int


def smctrace_path() -> str:
    """The smctrace beside this Python (its virtual environment's), else on PATH."""
    candidate = Path(sys.executable).parent / "smctrace"
    return str(candidate) if candidate.exists() else shutil.which("smctrace") or "smctrace"


TIME = "/usr/bin/time"  # Debian's `time`: its child's rusage, not inflated by this process


def tool_environment() -> dict[str, str]:
    """The environment the tools run in: this one, but with Python's bytecode cache on
    (a shell with PYTHONDONTWRITEBYTECODE would make every start compile every module,
    which no user's smctrace does)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(cmd: Sequence[str], *, capture: bool = False, env: dict[str, str] | None = None) -> Run:
    """Runs ``cmd`` under /usr/bin/time.

    The peak RSS of a child forked from this process would include the pages it shares
    with this (large) benchmark process until exec, so the child is started by `time`.
    """
    with tempfile.NamedTemporaryFile("r", prefix="smcbench-time-") as report:
        start = time.perf_counter()
        proc = subprocess.run([TIME, "-f", "%U %S %M", "-o", report.name, *cmd],
                              stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env or tool_environment(),
                              check=False)
        wall = time.perf_counter() - start
        user, system, rss_kib = report.read().split()[-3:]
    return Run(wall, float(user) + float(system), int(rss_kib), proc.stdout or b"",
               proc.returncode)


@dataclass
class Figure:
    """A tool's median over repeated runs."""

    name: str
    wall: float
    cpu: float
    rss_mib: float
    runs: int


def median_of(name: str, cmd: Sequence[str], repeat: int) -> Figure:
    runs = [run(cmd) for _ in range(repeat)]
    for r in runs:
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited with {r.returncode}")
    return Figure(name, statistics.median(r.wall for r in runs),
                  statistics.median(r.cpu for r in runs),
                  max(r.rss_kib for r in runs) / 1024, len(runs))


def table(figures: list[Figure], base: str, *, frames: int, per: int = 0,
          per_name: str = "handshake") -> str:
    """Wall, CPU, RSS and the ratio to ``base`` for each figure."""
    reference = next(f for f in figures if f.name == base)
    lines = [f"{'tool':22} {'wall s':>8} {'CPU s':>7} {'RSS MiB':>8} {'Mframes/s':>10} "
             f"{'x ' + base:>12}" + (f" {'us/' + per_name:>14}" if per else "")]
    for f in figures:
        line = (f"{f.name:22} {f.wall:8.3f} {f.cpu:7.3f} {f.rss_mib:8.1f} "
                f"{frames / f.wall / 1e6:10.2f} {f.wall / reference.wall:12.2f}")
        if per:
            line += f" {f.cpu / per * 1e6:14.1f}"
        lines.append(line)
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"

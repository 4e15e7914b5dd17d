"""Paths, logging and the error type shared by every smc-lab module."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parent.parent  # scripts/smc-lab
REPO = SRC.parent.parent
SCENARIO_DIR = SRC / "scenarios"
DEFAULT_CACHE = Path("/var/cache/smctrace-lab")
Event = dict[str, Any]  # one JSON line of smctrace --json (or the tshark oracle's equivalent)


class LabError(Exception):
    """Anything the user can fix: printed as one line, exit status 2."""


def lab_dir() -> Path:
    """Run outputs (captures, logs): $SMCLAB_DIR, default <repo>/lab (git-ignored)."""
    return Path(os.environ.get("SMCLAB_DIR") or REPO / "lab").resolve()


def cache_dir() -> Path:
    """Downloads, the private apt state and built kernels/images: $SMCLAB_CACHE, default
    /var/cache/smctrace-lab, outside any work tree so that a fresh clone or CI reuses it."""
    return Path(os.environ.get("SMCLAB_CACHE") or DEFAULT_CACHE).resolve()


def build_dir() -> Path:
    return cache_dir() / "build"


def log(msg: str) -> None:
    print(f"[smc-lab {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise LabError(f"{' '.join(cmd)}: {p.stderr.strip()}")
    return p

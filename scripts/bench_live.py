#!/usr/bin/env python3
"""Live benchmark launcher: see scripts/bench/live.py (overhead, capacity, startup, flood)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the bench package, and the repository

from bench.live import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

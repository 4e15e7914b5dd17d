#!/usr/bin/env python3
"""Service benchmark launcher: see scripts/bench/service.py (sections sink, pipeline, capacity)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the bench package, and the repository

from bench.service import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

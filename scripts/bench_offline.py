#!/usr/bin/env python3
"""Offline benchmark launcher: see scripts/bench/offline.py (modes mixed, dense, flood, small)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the bench package, and the repository

from bench.offline import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

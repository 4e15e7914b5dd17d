"""python3 -m smclab (with scripts/smc-lab and the repository root on sys.path)."""

import sys

from .cli import main

sys.exit(main())

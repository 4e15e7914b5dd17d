"""Slow HTTP clients do not delay tracing: ``scripts/bench_service.py capacity`` traces
the same handshakes at top speed with --http alone and with every HTTP slot held by clients
that never finish (silent, one byte a second, never reading a large reply) plus a scraper;
it fails if a handshake is lost, if the traced rate halves (a tracer that waited for an
HTTP client would stall for the server's 5-10 s timeouts) or if the tracer's CPU per
handshake rises by more than the tolerance.

The tolerance here is wide (50 %) because one round on a 2-core machine shared with other
work is noisy, and each run traces 10,000 handshakes (several seconds) so that a moment of
contention from elsewhere does not read as a stall.  The benchmark itself, run by hand
with 3 rounds of 20,000 handshakes, reports the figures (README, "Running on a fleet").
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import netlab
from tests.support.service import REPO


def test_slow_clients_do_not_slow_tracing() -> None:
    problem = netlab.available()
    if problem:
        pytest.skip(problem)
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_service.py"),
                           "capacity", "--handshakes", "10000", "--rounds", "1",
                           "--tolerance", "0.5"],
                          capture_output=True, text=True, timeout=600, cwd=REPO,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if "did not start" in proc.stdout + proc.stderr:
        pytest.skip(f"live tracing unavailable here: {proc.stderr[-500:]}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "0 handshakes lost in all runs: ok" in proc.stdout, proc.stdout[-3000:]
    # the slow clients were there: they opened connections and the scraper was refused
    assert '"503"' in proc.stdout, proc.stdout[-3000:]

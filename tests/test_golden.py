"""Golden outputs for the real-kernel captures (text, JSON lines, and one --hex --reserved).

The goldens were reviewed field by field against the protocol reference and tshark's decode
(tests/data/real-kernel/*.tshark.txt); test_oracle_tshark.py checks the fields mechanically,
this test pins the exact rendering.  Regenerate after an intended change with
SMCTRACE_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REAL = HERE / "data" / "real-kernel"
GOLDEN = HERE / "golden"
UPDATE = os.environ.get("SMCTRACE_UPDATE_GOLDEN") == "1"

CASES = [(p.stem, suffix, args) for p in sorted(REAL.glob("*.pcap"))
         for suffix, args in ((".txt", ()), (".jsonl", ("--json",)))]
CASES.append(("C-smcd-loopback-ism-k612lo", ".hex-reserved.txt", ("--hex", "--reserved")))


def smctrace(*args: str) -> str:
    env = {**os.environ, "TZ": "UTC"}
    proc = subprocess.run([sys.executable, "-m", "smctrace", *args], env=env,
                          capture_output=True, text=True, check=True)
    return proc.stdout + "# stderr: " + proc.stderr


@pytest.mark.parametrize("name,suffix,args", CASES, ids=[c[0] + c[1] for c in CASES])
def test_golden(name: str, suffix: str, args: tuple[str, ...]) -> None:
    got = smctrace("-f", str(REAL / f"{name}.pcap"), *args)
    path = GOLDEN / f"{name}{suffix}"
    if UPDATE:
        path.write_text(got)
    assert got == path.read_text()

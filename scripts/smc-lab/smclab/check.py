"""Checking captures against a scenario's expectations, with smctrace -f or the tshark
oracle (tests/support/tshark_oracle.py), and smctrace -i's in-guest trace against the
guest's own capture."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support import tshark_oracle

from .common import REPO, Event, LabError


def smctrace_cmd() -> list[str] | None:
    env = os.environ.get("SMCLAB_SMCTRACE")
    if env:
        return env.split()
    venv = REPO / ".venv" / "bin" / "smctrace"
    if venv.exists():
        return [str(venv)]
    exe = shutil.which("smctrace")
    return [exe] if exe else None


@functools.cache  # `smctrace --help` once a process, not once a capture checked
def smctrace_works() -> tuple[bool, str]:
    cmd = smctrace_cmd()
    if not cmd:
        return False, "smctrace not found (.venv/bin/smctrace, $PATH, or SMCLAB_SMCTRACE)"
    try:
        p = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{' '.join(cmd)} --help failed: {e}"
    if p.returncode != 0:
        err = (p.stderr.strip().splitlines() or ["?"])[-1]
        return False, f"{' '.join(cmd)} --help exited {p.returncode}: {err}"
    return True, " ".join(cmd)


def json_events(text: str) -> list[Event]:
    """The JSON objects of smctrace --json output (other lines are skipped)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
    return out


def parse_trace_json(text: str) -> list[Event]:
    return [e for e in json_events(text) if e.get("event") == "connection"]


# A run's capture is checked, compared with the in-guest trace and summarised: each asks for
# the same `smctrace -f`, which is traced once per file version.
_TRACED: dict[tuple[str, int, int], tuple[list[Event], list[Event]]] = {}


def trace_file_smctrace(pcap: Path) -> tuple[list[Event], list[Event]]:
    """The connection and CLC events of `smctrace -f PCAP --json`."""
    stat = pcap.stat()
    key = (str(pcap.resolve()), stat.st_mtime_ns, stat.st_size)
    traced = _TRACED.get(key)
    if traced is None:
        traced = _TRACED[key] = _trace_with_smctrace(pcap)
    return list(traced[0]), list(traced[1])


def _trace_with_smctrace(pcap: Path) -> tuple[list[Event], list[Event]]:
    cmd = smctrace_cmd()
    if not cmd:
        raise LabError("smctrace not found")
    p = subprocess.run(
        [*cmd, "-f", str(pcap), "--json"], capture_output=True, text=True, timeout=300
    )
    if p.returncode not in (0, 1):
        raise LabError(f"smctrace -f {pcap.name} exited {p.returncode}: {p.stderr.strip()[-300:]}")
    events = json_events(p.stdout)
    return (
        [e for e in events if e.get("event") == "connection"],
        [e for e in events if e.get("event") == "clc"],
    )


def trace_file_tshark(pcap: Path) -> tuple[list[Event], list[Event]]:
    try:
        return tshark_oracle.connections(pcap), tshark_oracle.clc_events(pcap)
    except tshark_oracle.TsharkError as e:
        raise LabError(str(e)) from e


def _code_matches(decl: object, want: str) -> bool:
    w = int(want, 16)

    def eq(x: object) -> bool:
        if isinstance(x, bool):
            return False
        if isinstance(x, int):
            return x == w
        if isinstance(x, str):
            with contextlib.suppress(ValueError):
                return int(x, 16) == w
        return False

    if eq(decl):
        return True
    if isinstance(decl, dict):
        return any(eq(x) or (isinstance(x, dict) and _code_matches(x, want)) for x in decl.values())
    return False


def _matches(key: str, got: Any, want: str, conn: Event) -> bool:
    """One expectation value (no alternatives) against a connection event's value."""
    if key == "messages":
        return ",".join(got or []) == want
    if key == "decline_from":
        frm = got if got is not None else (conn.get("decline") or {}).get("from")
        return bool(frm == want)
    if key == "decline":
        if want in ("", "-", "none"):
            return not got
        return bool(got) and _code_matches(got, want)
    if want in ("-", "null", "none"):
        return got is None
    return str(got) == want


def compare(conns: list[Event], exp: dict[str, str]) -> list[str]:
    """Mismatches between connection events and an expectation (empty = pass).
    A value may list alternatives with '|' (e.g. outcome=smc|fallback under load)."""
    errs = []
    n_want = exp.get("connections", "1")
    if str(len(conns)) not in n_want.split("|"):
        errs.append(f"connections: got {len(conns)}, want {n_want}")
    for i, c in enumerate(conns):
        pre = f"connection {i + 1} ({c.get('client')} -> {c.get('server')})"
        for key, want in exp.items():
            if key == "connections":
                continue
            got = c.get("decline" if key == "decline_from" else key)
            if key == "decline_from":
                got = (got or {}).get("from") if isinstance(got, dict) else got
            if not any(_matches(key, got, w, c) for w in want.split("|")):
                shown = ",".join(got or []) or "(none)" if key == "messages" else got
                errs.append(f"{pre}: {key}={shown}, want {want}")
    return errs


def clc_key(e: Event) -> tuple[Any, ...]:
    return (
        e.get("client"), e.get("server"), e.get("from"), e.get("type"), e.get("version"),
        e.get("length"), e.get("eyecatcher"), json.dumps(e.get("fields"), sort_keys=True),
        e.get("malformed"),
    )


def describe(c: Event) -> str:
    msgs = ",".join(c.get("messages") or [])
    s = f"{c.get('outcome')} {c.get('path')} v{c.get('version')} [{msgs}]"
    if c.get("release") is not None:
        s = s.replace(f"v{c.get('version')} ", f"v{c.get('version')}.{c.get('release')} ")
    d = c.get("decline")
    if isinstance(d, dict):
        code = d.get("hex") or d.get("code")
        s += f" decline={code if isinstance(code, str) else f'0x{code:08x}'} from {d.get('from')}"
    elif d:
        s += f" decline={d}"
    return s


def check_pcap(pcap: Path, exp: dict[str, str], backend: str = "auto") -> tuple[bool, list[str]]:
    if backend == "auto":
        backend = "smctrace" if smctrace_works()[0] else "tshark"
    if backend == "smctrace":
        works, why = smctrace_works()
        if not works:
            return False, [f"FAIL {pcap.name}: {why}"]
        conns, _ = trace_file_smctrace(pcap)
    else:
        conns, _ = trace_file_tshark(pcap)
    errs = compare(conns, exp)
    want = " ".join(f"{k}={v}" for k, v in exp.items())
    got = "; ".join(describe(c) for c in conns) or "no connections"
    if errs:
        return False, [
            f"FAIL {pcap.name} [{backend}]: want {want}",
            f"     got {got}",
            *[f"     - {e}" for e in errs],
        ]
    return True, [f"ok   {pcap.name} [{backend}]: {got}"]


def compare_traces(live: list[Event], pcap: Path, what: str) -> tuple[bool, list[str]]:
    """A live trace's connection and CLC events against `smctrace -f` on the capture of the
    same traffic: the same connections (outcome, path, version, messages, decline) and the
    same CLC messages, field for field."""
    f_conns, f_clcs = trace_file_smctrace(pcap)
    l_conns = [e for e in live if e.get("event") == "connection"]
    l_clcs = [e for e in live if e.get("event") == "clc"]
    lines: list[str] = []
    ok = True
    keys = ("client", "server", "outcome", "path", "version", "release", "messages", "decline")
    lk = [json.dumps([c.get(k) for k in keys]) for c in l_conns]
    fk = [json.dumps([c.get(k) for k in keys]) for c in f_conns]
    if lk != fk:
        ok = False
        lines.append(f"FAIL: {what}: connections differ from smctrace -f {pcap.name}: "
                     f"live {[describe(c) for c in l_conns]}, file "
                     f"{[describe(c) for c in f_conns]}")
    a, b = [clc_key(e) for e in l_clcs], [clc_key(e) for e in f_clcs]
    if a != b:
        ok = False
        lines.append(f"FAIL: {what}: {len(a)} CLC messages, smctrace -f has {len(b)}; first "
                     "difference: " + next((f"live {x} file {y}" for x, y in
                                            zip(a, b, strict=False) if x != y), "(length)"))
    if not any(e.get("event") == "summary" for e in live):
        ok = False
        lines.append(f"FAIL: {what}: no summary event (did it exit cleanly on SIGINT?)")
    if ok:
        lines.append(f"{what}: the same {len(l_conns)} connection(s) and {len(a)} CLC "
                     f"messages as smctrace -f on the capture: "
                     + ("; ".join(describe(c) for c in l_conns) or "no SMC connections"))
    return ok, lines


def check_guest_trace(trace: Path, pcap: Path) -> tuple[bool, list[str]]:
    """smctrace -i inside the guest against smctrace -f on the guest's own capture."""
    return compare_traces(json_events(trace.read_text(errors="replace")), pcap,
                          "in-guest smctrace -i")

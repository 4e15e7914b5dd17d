"""`smc-lab test`: every scenario on its kernels, each capture checked, then `live`.

The full matrix runs on the kernels given with --full (default: the oldest and the newest,
k510 and k7); on the other kernels only the scenarios marked smoke=yes run (--full all runs
everything everywhere). Results go to <lab>/results.tsv, one line a run."""

from __future__ import annotations

import argparse
import contextlib
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from .check import check_guest_trace, check_pcap, describe, smctrace_works, trace_file_smctrace
from .common import LabError, lab_dir
from .kernels import DEFAULT_KERNELS, NEWEST, OLDEST, built_flavors, parse_kernel_list, run_build
from .live import DEFAULT_LIVE, run_live
from .qemu import kernels_for, run_guests
from .scenario import Scenario, all_scenarios

Run = tuple[Scenario, str | None]  # scenario, kernel (None: its own pairing)


def test_matrix(kernels: list[str], full: list[str]) -> list[Run]:
    """The runs on ``kernels``: every scenario on the ``full`` ones, smoke ones elsewhere;
    a mixed pair runs when both its kernels are selected."""
    runs: list[Run] = []
    for s in all_scenarios():
        if s.mixed:
            _, srv, cli, _ = kernels_for(s, None, None, None)
            if srv in kernels and cli in kernels:
                runs.append((s, None))
            continue
        for k in s.kernels:
            if k in kernels and (k in full or s.smoke):
                runs.append((s, None if k == s.kernel else k))
    return runs


class Slots:
    """N CPU slots; a two-guest run takes two (one QEMU a core under TCG)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.sem = threading.Semaphore(n)
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def take(self, k: int) -> Iterator[None]:
        k = min(k, self.n)
        with self.lock:
            for _ in range(k):
                self.sem.acquire()
        try:
            yield
        finally:
            for _ in range(k):
                self.sem.release()


def one_run(scn: Scenario, kern: str | None, backend: str) -> tuple[bool, list[str], str, float]:
    res = run_guests(scn, kernel=kern, quiet=True)
    if not res.pcap:
        why = "; ".join(res.notes)
        return False, [f"FAIL {scn.name}-{res.label}: no pcap ({why})"], res.label, res.wall
    ok, lines = check_pcap(res.pcap, scn.expectation(res.label), backend=backend)
    lines[0] += f"  ({res.wall:.1f} s)"
    if scn.trace:
        if res.trace is None:
            ok = False
            lines.append(f"FAIL {scn.name}-{res.label}: no in-guest smctrace output")
        else:
            t_ok, t_lines = check_guest_trace(res.trace, res.pcap)
            ok &= t_ok
            lines += [f"     {ln}" for ln in t_lines]
    lines += [f"     !! {n}" for n in res.notes if "watchdog" in n or "killed" in n]
    got = "; ".join(describe(c) for c in trace_file_smctrace(res.pcap)[0]) or "no SMC connection"
    with open(lab_dir() / "results.tsv", "a") as f:
        f.write(f"{scn.name}\t{res.label}\t{'ok' if ok else 'FAIL'}\t{got}\n")
    return ok, lines, res.label, res.wall


def cmd_test(args: argparse.Namespace) -> int:
    t_all = time.monotonic()
    timings: list[str] = []
    kernels = parse_kernel_list(args.kernel, DEFAULT_KERNELS)
    full = kernels if args.full == "all" else parse_kernel_list(
        [args.full] if args.full else None, (OLDEST, NEWEST))
    # Build first, always: it is idempotent (seconds when nothing changed) and it is what
    # notices an edited guest/init or guest tool; a stale initramfs would run old helpers.
    t0 = time.monotonic()
    if run_build(kernels) != 0:
        print("smc-lab test: build failed", flush=True)
        return 1
    timings.append(f"build ({' '.join(kernels)}): {time.monotonic() - t0:.1f} s")
    backend = args.backend
    if backend == "auto":
        works, why = smctrace_works()
        backend = "smctrace" if works else "tshark"
        if not works:
            print(f"WARNING: smctrace unusable ({why}); checking captures with the tshark "
                  "oracle instead", flush=True)
    built = built_flavors()
    matrix = test_matrix([k for k in kernels if k in built], full)
    if args.only:
        matrix = [(s, k) for s, k in matrix if re.search(args.only, s.name)]
    lab_dir().mkdir(parents=True, exist_ok=True)
    (lab_dir() / "results.tsv").unlink(missing_ok=True)
    print(f"== {len(matrix)} runs (full matrix on {','.join(full)}, smoke elsewhere; "
          f"-j{args.jobs})", flush=True)
    failures: list[str] = []
    walls: dict[str, list[float]] = {}
    slots = Slots(args.jobs)
    out_lock = threading.Lock()

    def job(run: Run) -> None:
        scn, kern = run
        with slots.take(scn.vms):
            ok, lines, label, wall = one_run(scn, kern, backend)
        with out_lock:
            print("\n".join(lines), flush=True)
            walls.setdefault("2 guests" if scn.vms == 2 else "1 guest", []).append(wall)
            if not ok:
                failures.append(f"{scn.name}-{label}")

    t_runs = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for fut in [pool.submit(job, r) for r in matrix]:
            fut.result()
    timings.append(f"{len(matrix)} scenario runs (-j{args.jobs}): "
                   f"{time.monotonic() - t_runs:.1f} s")
    for cls, ws in sorted(walls.items()):
        timings.append(f"  {cls}: {len(ws)} runs, {min(ws):.1f}-{max(ws):.1f} s each, "
                       f"mean {sum(ws) / len(ws):.1f} s")
    if not args.no_live:
        t0 = time.monotonic()
        ok, lines = run_live(DEFAULT_LIVE, backend=backend)
        print("\n".join(lines), flush=True)
        timings.append(f"live: {time.monotonic() - t0:.1f} s")
        if not ok:
            failures.append("live")
        if not smctrace_works()[0]:
            failures.append("live (tracer part not run: smctrace unavailable)")
    timings.append(f"total: {time.monotonic() - t_all:.1f} s")
    print("== timings\n" + "\n".join(timings))
    (lab_dir() / "test-timings.txt").write_text(
        time.strftime("%Y-%m-%d %H:%M:%S UTC\n", time.gmtime()) + "\n".join(timings) + "\n")
    if failures:
        print(f"== {len(failures)} FAILED: " + ", ".join(failures))
        return 1
    print(f"== all {len(matrix)} runs{' + live' if not args.no_live else ''} passed ({backend})")
    return 0


_LETTER = {"proposal": "P", "accept": "A", "confirm": "C", "decline": "D"}


def brief(described: str) -> str:
    """check.describe()'s text of a run's connections, shortened for a table cell:
    'smc SMC-D v2.1', 'fallback P,D 0x03030008 (server)', 'fallback, no CLC', 'plain TCP'."""
    if described in ("no SMC connection", ""):
        return "plain TCP"
    out = []
    for one in described.split("; "):
        m = re.match(r"(\w+) (\S+) (v\S+) \[([\w,]*)\](?: decline=(\S+) from (\w+))?$", one)
        if not m:
            out.append(one)
            continue
        outcome, path, ver, msgs, code, frm = m.groups()
        letters = ",".join(_LETTER.get(x, x) for x in msgs.split(",") if x)
        if outcome == "smc":
            out.append(f"smc {path} {ver}")
        elif not letters:
            out.append(f"{outcome}, no CLC")
        else:
            out.append(f"{outcome} {letters}" + (f" {code} ({frm})" if code else ""))
    if len(set(out)) == 1 and len(out) > 1:
        return f"{len(out)}x {out[0]}"
    return "; ".join(f"{n}x {c}" for c, n in sorted(
        {c: out.count(c) for c in out}.items())) if len(out) > 2 else " / ".join(out)


def cmd_results(args: argparse.Namespace) -> int:
    """<lab>/results.tsv (written by `test`) as a Markdown table: scenario x kernel."""
    tsv = lab_dir() / "results.tsv"
    if not tsv.is_file():
        raise LabError(f"{tsv} missing: run `smc-lab test` first")
    cells: dict[tuple[str, str], str] = {}
    for line in tsv.read_text().splitlines():
        name, label, ok, got = line.split("\t")
        cells[(name, label)] = brief(got) + ("" if ok == "ok" else " **(FAIL)**")
    labels = [k for k in DEFAULT_KERNELS if any(lb == k for _, lb in cells)]
    print("| scenario | " + " | ".join(labels) + " |")
    print("|---" * (len(labels) + 1) + "|")
    for name in sorted({n for n, _ in cells}):
        mixed = [(lb, v) for (n, lb), v in cells.items() if n == name and lb not in labels]
        if mixed:  # srv_K1-cli_K2: the cell goes under both kernels
            for lb, v in mixed:
                pair = set(re.findall(r"(?:srv|cli)_([a-z0-9]+)", lb))
                print(f"| {name} ({lb}) | " + " | ".join(
                    v if k in pair else "" for k in labels) + " |")
            continue
        print(f"| {name} | " + " | ".join(cells.get((name, k), "-") for k in labels) + " |")
    return 0

"""The service benchmark's capacity section: bench_live's capacity run without --http,
with --http, and with --http while slow clients hold every HTTP slot (see
:mod:`bench.service`)."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench import live_capacity, livelab, livetraffic
from tests.support.replay import write_blob

HTTP_PORT = 9100  # inside the receiving namespace, whose loopback is private to it


@dataclasses.dataclass
class SetupResult:
    label: str
    rates: list[float] = dataclasses.field(default_factory=list)
    lost: list[int] = dataclasses.field(default_factory=list)
    cpu_us: list[float] = dataclasses.field(default_factory=list)
    clients: list[str] = dataclasses.field(default_factory=list)


def capacity_run(lab: livelab.BenchLab, traffic: livetraffic.Handshakes, blob: Path,
                 setup: str) -> tuple[live_capacity.CapacityRun, str]:
    http = ["--http", f"127.0.0.1:{HTTP_PORT}"] if setup != "no --http" else []
    slow = None
    try:
        if setup == "--http + slow clients":
            slow = livelab.spawn(
                lab.rx(livelab.PYTHON, "-m", "bench.service_clients", str(HTTP_PORT)),
                stdout=subprocess.PIPE, cwd=livelab.REPO, env=livelab.CHILD_ENV)
        run = live_capacity.once(lab, traffic, blob, "native", 0.0, setup, extra=http)
    finally:
        report = ""
        if slow is not None:
            livelab.reap(slow, signal.SIGTERM)
            assert slow.stdout is not None
            report = slow.stdout.read().decode().strip()
    return run, report


def section_capacity(count: int, rounds: int, tolerance: float) -> bool:
    setups = ["no --http", "--http", "--http + slow clients"]
    print(f"\n== capacity: {count} SMC-D handshakes at top speed, {rounds} round(s) of "
          f"{', '.join(setups)} ==", flush=True)
    traffic = livetraffic.handshakes(count)
    results = {setup: SetupResult(setup) for setup in setups}
    with contextlib.ExitStack() as stack:
        stack.callback(livelab.reap_all)
        lab = stack.enter_context(livelab.BenchLab())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smcbench-")))
        blob = tmp / "handshakes.frames"
        write_blob(blob, traffic.flat())
        lab.set_mtu(1500)  # CLC messages make frames of up to ~300 bytes
        for round_no in range(rounds):
            order = setups[round_no % 3:] + setups[:round_no % 3]
            for setup in order:
                run, report = capacity_run(lab, traffic, blob, setup)
                result = results[setup]
                result.rates.append(run.traced / run.traced_s)
                result.lost.append(run.handshakes - run.traced)
                result.cpu_us.append(run.cpu_s / run.handshakes * 1e6)
                if report:
                    result.clients.append(report)
                print(f"  round {round_no + 1} {setup:22} {result.rates[-1]:7.0f} hs/s traced, "
                      f"{result.lost[-1]} lost, {result.cpu_us[-1]:.0f} us CPU/hs"
                      f"{'; clients ' + report if report else ''}; summary {run.summary}",
                      flush=True)
    print(f"\n{'set-up':24} {'traced hs/s':>12} {'(min-max)':>15} {'lost':>6} "
          f"{'CPU us/hs':>10}")
    for result in results.values():
        print(f"{result.label:24} {statistics.median(result.rates):12.0f} "
              f"{f'({min(result.rates):.0f}-{max(result.rates):.0f})':>15} "
              f"{max(result.lost):6} {statistics.median(result.cpu_us):10.0f}")
    with_http = statistics.median(results["--http"].rates)
    with_slow = statistics.median(results["--http + slow clients"].rates)
    cpu_http = statistics.median(results["--http"].cpu_us)
    cpu_slow = statistics.median(results["--http + slow clients"].cpu_us)
    lost = sum(sum(r.lost) for r in results.values())
    # At top speed the tracer is CPU-bound: its rate is 1 / (CPU per handshake) on a quiet
    # machine, and on a shared one also whatever the neighbours leave it (the slow
    # clients' own process among them).  So: its CPU per handshake (the HTTP threads' work
    # for those clients included) within the tolerance, and no stall (half the rate).
    cpu_ratio = cpu_slow / cpu_http
    stalled = with_slow < with_http / 2
    ok = cpu_ratio <= 1 + tolerance and lost == 0 and not stalled
    print(f"\nslow clients: {with_slow:.0f} vs {with_http:.0f} handshakes/s traced with --http "
          f"alone ({(with_slow / with_http - 1) * 100:+.1f}%); tracer CPU {cpu_slow:.0f} vs "
          f"{cpu_http:.0f} us per handshake ({(cpu_ratio - 1) * 100:+.1f}%); {lost} handshakes "
          f"lost in all runs: {'ok' if ok else 'NOT ok'} (CPU tolerance {tolerance:.0%}"
          f"{'; STALLED: less than half the rate' if stalled else ''})")
    return ok

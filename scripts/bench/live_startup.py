"""Start-up: launch to attached, per backend, medians of several launches.

For each backend: ``LiveCapture.attach_seconds`` (the attach itself) in a fresh process
(``python -m bench.probe attach``), and the wall time from spawning ``smctrace -i`` to its
"tracing on" line on standard error (interpreter start-up, imports, arguments, attach);
tcpdump's launch to its "listening on" line beside them.  Targets: attach under 1 s
(bcc, which compiles its program with LLVM) and 0.1 s (cbpf).
"""

from __future__ import annotations

import json
import statistics
import subprocess

from bench.livelab import (
    CHILD_ENV,
    PYTHON,
    REPO,
    BenchLab,
    TracerProcess,
)
from bench.measure import smctrace_path, verdict
from bench.report import fail

STARTUP_TARGETS = {"bcc": 1.0, "cbpf": 0.1}


def launch(lab: BenchLab, name: str, cmd: list[str], ready: str) -> float:
    tracer = TracerProcess(name, cmd, ready)
    try:
        tracer.wait_ready(60)
        return tracer.ready_at - tracer.started_at
    finally:
        tracer.stop()


def section(lab: BenchLab, samples: int) -> None:
    print(f"\n== start-up: launch to attached on {lab.rx_if}, median of {samples} ==",
          flush=True)
    rows = []
    for backend in ("bcc", "cbpf"):
        api, imports, cli = [], [], []
        for _ in range(samples):
            out = subprocess.run(lab.rx(PYTHON, "-m", "bench.probe", "attach", lab.rx_if,
                                        backend), capture_output=True, text=True, timeout=60,
                                 cwd=REPO, env=CHILD_ENV, check=True).stdout
            probe = json.loads(out.strip().splitlines()[-1])
            if probe["used"] != backend:
                fail(f"start-up: asked for {backend}, got {probe['used']}")
            api.append(probe["attach"])
            imports.append(probe["import"])
            cli.append(launch(lab, f"smctrace/{backend}", lab.rx(
                smctrace_path(), "-i", lab.rx_if, "--backend", backend, "--json"),
                "tracing on"))
        rows.append((backend, statistics.median(api), min(api), max(api),
                     statistics.median(imports), statistics.median(cli)))
    dump = statistics.median(
        launch(lab, "tcpdump", lab.rx("tcpdump", "-i", lab.rx_if, "-w", "/dev/null", "tcp"),
               "listening on") for _ in range(samples))
    print(f"\n{'backend':8} {'attach s (API)':>15} {'(min-max)':>15} {'import s':>9} "
          f"{'CLI launch->tracing on s':>25} {'x tcpdump':>10}")
    for backend, api_med, api_min, api_max, imp, cli_med in rows:
        print(f"{backend:8} {api_med:15.3f} {f'({api_min:.3f}-{api_max:.3f})':>15} {imp:9.3f} "
              f"{cli_med:25.3f} {cli_med / dump:10.1f}")
    print(f"{'tcpdump':8} {'':>15} {'':>15} {'':>9} {dump:25.3f} {1.0:10.1f}")
    print("  (CLI: process start-up, imports, argument parsing and attach; tcpdump: launch "
          "to 'listening on')")
    print()
    for backend, api_med, *_rest in rows:
        target = STARTUP_TARGETS[backend]
        print(f"target {backend}: attach < {target:g} s -> {api_med:.3f} s "
              f"{verdict(api_med < target)}")

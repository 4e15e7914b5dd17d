"""Overhead: what a tracer costs while ordinary traffic floods the traced interface.

A small-packet TCP flood (iperf3, 64-byte writes with TCP_NODELAY, veth MTU 200,
gso_max_segs 1, so every segment is a separate frame of at most 214 bytes) through the
veth pair, with nothing, ``smctrace -i`` (bcc and cbpf backends) and
``tcpdump -i IF -w /dev/null tcp`` on the receiving end, rounds interleaved.  Per run: the
tracer's CPU time over the flood window (all threads, /proc/PID/task/*/schedstat) as % of
one core, its CPU with no traffic, iperf3's throughput and the veth's frames/s.
smctrace must receive 0 frames in user space (its summary) while its filter sees the
flood.  Targets: under 1% of a core, 50x below tcpdump, throughput within noise.
"""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.livelab import (
    FLOOD_MTU,
    RX_ADDR,
    BenchLab,
    TracerProcess,
    reap,
    smctrace_tracer,
    spawn,
    tcpdump_tracer,
)
from bench.measure import verdict
from bench.report import fail

IPERF_PORT = 5201
CPU_TARGET = 1.0  # % of one core
TCPDUMP_RATIO_TARGET = 50.0
IDLE_WINDOW = 1.5  # seconds of no traffic before each flood: the tracer's floor


@dataclass
class FloodRun:
    mbps: float
    fps: float  # frames/s through the receiving veth end (both directions)
    cpu_pct: float | None  # tracer CPU over the flood window, % of one core
    summary: dict[str, Any] = field(default_factory=dict)
    frames: int = 0
    idle_pct: float | None = None  # tracer CPU with no traffic, % of one core
    retransmits: int = 0
    veth_dropped: int = 0


def start(lab: BenchLab, name: str) -> TracerProcess | None:
    if name == "none":
        return None
    if name == "tcpdump":
        return tcpdump_tracer(lab)
    return smctrace_tracer(lab, name.split("/")[1])


def flood_once(lab: BenchLab, name: str, duration: float) -> FloodRun:
    tracer = start(lab, name)
    idle_pct = None
    try:
        time.sleep(0.3)
        if tracer:
            c0, i0 = tracer.cpu_ns(), time.monotonic()
            time.sleep(IDLE_WINDOW)
            idle_pct = (tracer.cpu_ns() - c0) / 1e9 / (time.monotonic() - i0) * 100
        client = lab.tx("iperf3", "-c", RX_ADDR, "-p", str(IPERF_PORT), "-t", str(duration),
                        "-l", "64", "-N", "-J")
        before = lab.counters()
        cpu0 = tracer.cpu_ns() if tracer else 0
        t0 = time.monotonic()
        proc = spawn(client, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=duration + 20)
        finally:
            reap(proc)
        t1 = time.monotonic()
        cpu1 = tracer.cpu_ns() if tracer else 0
        after = lab.counters()
        if proc.returncode != 0:
            raise RuntimeError(f"iperf3 failed: {err.decode()[-300:]} {out.decode()[-300:]}")
        report = json.loads(out)
        frames = after["rx"] + after["tx"] - before["rx"] - before["tx"]
        result = FloodRun(
            mbps=report["end"]["sum_received"]["bits_per_second"] / 1e6,
            fps=frames / (t1 - t0),
            cpu_pct=(cpu1 - cpu0) / 1e9 / (t1 - t0) * 100 if tracer else None,
            frames=frames, idle_pct=idle_pct,
            retransmits=int(report["end"]["sum_sent"].get("retransmits", -1)),
            veth_dropped=after["rx_dropped"] - before["rx_dropped"])
    finally:
        if tracer:
            tracer.stop()
    if tracer:
        result.summary = tracer.summary()
    return result


def section(lab: BenchLab, repeat: int, duration: float, backends: Sequence[str]) -> None:
    print(f"\n== overhead: iperf3 -l 64 -N for {duration:g} s over veth MTU {FLOOD_MTU}, "
          f"{repeat} rounds ==", flush=True)
    lab.set_mtu(FLOOD_MTU)
    names = ["none", *(f"smctrace/{b}" for b in backends), "tcpdump"]
    results: dict[str, list[FloodRun]] = {name: [] for name in names}
    server = spawn(lab.rx("iperf3", "-s", "-B", RX_ADDR, "-p", str(IPERF_PORT)),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        for round_no in range(repeat):
            order = names[round_no % len(names):] + names[:round_no % len(names)]
            for name in order:
                res = flood_once(lab, name, duration)
                results[name].append(res)
                cpu = "-" if res.cpu_pct is None else f"{res.cpu_pct:.3f}%"
                print(f"  round {round_no + 1} {name:15} {res.mbps:7.1f} Mbit/s "
                      f"{res.fps / 1000:7.1f} kframes/s  tracer CPU {cpu:7}  "
                      f"retransmits {res.retransmits}, veth drops {res.veth_dropped}",
                      flush=True)
    finally:
        reap(server, signal.SIGTERM)
    report(results, names)


def report(results: dict[str, list[FloodRun]], names: list[str]) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    base = med([r.mbps for r in results["none"]])
    print(f"\n{'tracer':16} {'CPU % core':>11} {'(min-max)':>17} {'idle CPU %':>11} "
          f"{'Mbit/s':>8} {'(min-max)':>15} {'x none':>7} {'kframes/s':>10}")
    for name in names:
        runs = results[name]
        mbps = [r.mbps for r in runs]
        if runs[0].cpu_pct is None:
            cpu_text, cpu_range, idle_text = "-", "", "-"
        else:
            cpus = [r.cpu_pct or 0.0 for r in runs]
            cpu_text, cpu_range = f"{med(cpus):.3f}", f"({min(cpus):.3f}-{max(cpus):.3f})"
            idle_text = f"{med([r.idle_pct or 0.0 for r in runs]):.3f}"
        print(f"{name:16} {cpu_text:>11} {cpu_range:>17} {idle_text:>11} {med(mbps):8.1f} "
              f"{f'({min(mbps):.1f}-{max(mbps):.1f})':>15} {med(mbps) / base:7.3f} "
              f"{med([r.fps for r in runs]) / 1000:10.1f}")
    print()
    for name in names:
        for i, run in enumerate(results[name]):
            s = run.summary
            if name.startswith("smctrace"):
                print(f"  {name} round {i + 1}: frames={s['frames']} received={s['received']} "
                      f"kept={s['kept']} seen_by_filter={s['seen_by_filter']} "
                      f"dropped={s['dropped']} (flood: {run.frames} frames on the veth)")
                if s["received"] != 0 or s["frames"] != 0:
                    fail(f"{name}: non-SMC flood frames reached user space: {s}")
                seen = s["seen_by_filter"]
                if seen is not None and int(seen) < run.frames // 2:
                    fail(f"{name}: the filter saw only {seen} of {run.frames} flood frames")
            elif name == "tcpdump":
                print(f"  tcpdump round {i + 1}: {s}")
    print()
    dump_cpu = med([r.cpu_pct or 0.0 for r in results["tcpdump"]])
    spread_none = max(r.mbps for r in results["none"]) - min(r.mbps for r in results["none"])
    for name in names:
        if not name.startswith("smctrace"):
            continue
        runs = results[name]
        cpu = med([r.cpu_pct or 0.0 for r in runs])
        ratio = dump_cpu / cpu if cpu > 0 else float("inf")
        mbps = [r.mbps for r in runs]
        diff = base - med(mbps)
        noise = max(spread_none, max(mbps) - min(mbps))
        idle = med([r.idle_pct or 0.0 for r in runs])
        print(f"  {name}: flood CPU {cpu:.3f}% vs idle {idle:.3f}% of a core: the flood adds "
              f"{cpu - idle:+.3f}% (the idle floor: the poll loop's wake-ups)")
        print(f"target {name}: CPU < {CPU_TARGET:g}% of a core -> {cpu:.3f}% "
              f"{verdict(cpu < CPU_TARGET)}")
        print(f"target {name}: CPU >= {TCPDUMP_RATIO_TARGET:g}x below tcpdump "
              f"({dump_cpu:.2f}%) -> {ratio:.0f}x {verdict(ratio >= TCPDUMP_RATIO_TARGET)}")
        print(f"target {name}: throughput within noise of no tracer -> median "
              f"{med(mbps):.1f} vs {base:.1f} Mbit/s ({-diff / base * 100:+.1f}%), spread "
              f"{noise:.1f} Mbit/s {verdict(diff <= noise)}")

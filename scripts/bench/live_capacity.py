"""Capacity: how many SMC handshakes per second ``smctrace -i --json`` traces, none lost.

N handshakes (real CLC messages, distinct 4-tuples; SMC-D v2, or --mix) are replayed by
tests/support/replay.py into one end of the veth pair, the tracer runs on the other end.
Runs, one after the other in the same lab: smctrace with the C receive path
(Engine.drain) and with the per-frame Python path (SMCTRACE_RECEIVE=python), at top
speed and paced at the target rate; tcpdump (-w /dev/null, the same 256 MiB buffer) on
the same frames; and the receive path alone (bench.probe capture: no decoder) for both
paths.  Every connection's outcome is compared to what was sent.

Targets: >= 10,000 handshakes/s traced with none lost, and <= 50 us of tracer CPU per
handshake (all threads, /proc/PID/task/*/schedstat).
"""

from __future__ import annotations

import pstats
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import livetraffic, measure
from bench.livelab import (
    PYTHON,
    BenchLab,
    Sender,
    TracerProcess,
    smctrace_tracer,
    tcpdump_tracer,
    wait_caught_up,
)
from bench.measure import smctrace_path, verdict
from bench.report import fail
from tests.support.replay import write_blob

RATE_TARGET = 10_000  # handshakes/s traced, none lost
CPU_TARGET_US = 50.0  # tracer CPU per handshake


@dataclass
class CapacityRun:
    label: str
    handshakes: int
    sent: dict[str, float]
    traced_s: float  # first frame sent to the last connection event
    lag_s: float  # last frame sent to the last connection event
    cpu_s: float
    summary: dict[str, Any] = field(default_factory=dict)
    veth: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    wrong: int = 0
    traced: int = 0

    @property
    def us_per_handshake(self) -> float:
        return self.cpu_s / self.handshakes * 1e6


def start(lab: BenchLab, kind: str, profile: Path | None = None,
          extra: Sequence[str] = ()) -> TracerProcess:
    if kind == "tcpdump":
        return tcpdump_tracer(lab)
    if kind.startswith("probe"):
        cmd = lab.rx(PYTHON, "-m", "bench.probe", "capture", lab.rx_if, "bcc",
                     *(["--python"] if kind == "probe/python" else []))
        tracer = TracerProcess(f"receive path alone ({kind[6:]})", cmd, "tracing on")
        tracer.wait_ready()
        return tracer
    return smctrace_tracer(lab, "bcc", python_receive=kind == "python", profile=profile,
                           extra=extra)


def once(lab: BenchLab, traffic: livetraffic.Handshakes, blob: Path, kind: str, rate_hs: float,
         label: str, profile: Path | None = None, extra: Sequence[str] = ()) -> CapacityRun:
    """One run: ``kind`` is native or python (smctrace with that receive path, ``extra``
    arguments added), tcpdump, or probe/native or probe/python (the receive path alone);
    ``rate_hs`` handshakes/s (0: top speed)."""
    frames_total = sum(len(frames) for frames in traffic.frames)
    tracer = start(lab, kind, profile, extra)
    try:
        sender = Sender(lab, blob, rate_hs * frames_total / traffic.count)
        before = lab.counters()
        cpu0 = tracer.cpu_ns()
        t0 = time.monotonic()
        sender.go()
        sent = sender.result()
        sent_at = t0 + sent["seconds"]
        if kind == "tcpdump":
            time.sleep(1.0)
            last = sent_at
        else:
            # the probe prints a line per 1,000 segments: it is done when they stop
            want = traffic.count if not kind.startswith("probe") else 1 << 40
            wait_caught_up(tracer, want, quiet=3.0 if want == traffic.count else 1.5)
            last = tracer.last_event_at or float("nan")
        cpu_s = (tracer.cpu_ns() - cpu0) / 1e9
        veth = lab.counters_since(before)
    finally:
        tracer.stop(120)
    run = CapacityRun(label, traffic.count, sent, last - t0, last - sent_at, cpu_s,
                      summary=tracer.summary(), veth=veth)
    if int(sent["frames"]) != frames_total:
        fail(f"{label}: the sender sent {sent['frames']} of {frames_total} frames")
    if kind in ("native", "python"):
        found = livetraffic.outcomes_of(tracer.lines())
        lost, run.wrong, unsent = livetraffic.compare(traffic.outcomes, found)
        run.lost = len(lost)
        run.traced = traffic.count - run.lost
        if run.wrong or unsent:
            fail(f"{label}: {run.wrong} connections with the wrong outcome, {unsent} never sent")
        if run.lost and not (run.summary.get("dropped") or veth["rx_dropped"]):
            fail(f"{label}: {run.lost} handshakes missing but no drop was counted")
    return run


def offline_us(traffic: livetraffic.Handshakes, directory: Path, repeat: int) -> float:
    """CPU per handshake of ``smctrace -f FILE --json`` on the same frames: the decoder,
    tracker and JSON output alone, without any capture in front of them."""
    path = directory / "handshakes.pcap"
    livetraffic.write_pcap(path, traffic.flat())
    runs = [measure.run([smctrace_path(), "-f", str(path), "--json"]) for _ in range(repeat)]
    return statistics.median(r.cpu for r in runs) / traffic.count * 1e6


def print_profile(path: Path, limit: int = 22) -> None:
    stats = pstats.Stats(str(path))
    print(f"\nprofile of smctrace (cProfile, fresh process, top {limit} by own time):")
    stats.sort_stats("tottime").print_stats(limit)


def section(lab: BenchLab, count: int, mix: bool, repeat: int, profile: bool) -> None:
    print(f"\n== capacity: {count} SMC handshakes replayed through the veth pair, "
          f"medians of {repeat} ==", flush=True)
    lab.set_mtu(1500)  # CLC messages make frames of up to ~300 bytes
    traffic = livetraffic.handshakes(count, mix=mix)
    outcomes = list(traffic.outcomes.values())
    print(f"  {len(traffic.flat())} frames ({len(traffic.flat()) / count:.1f} per handshake); "
          f"expected: {outcomes.count('smc')} smc, {outcomes.count('fallback')} fallback",
          flush=True)
    plans = [("native", 0.0, "smctrace top speed"),
             ("native", float(RATE_TARGET), f"smctrace {RATE_TARGET}/s"),
             ("python", 0.0, "smctrace-pyrecv top"),
             ("python", float(RATE_TARGET), f"smctrace-pyrecv {RATE_TARGET}/s"),
             ("tcpdump", 0.0, "tcpdump top speed"),
             ("tcpdump", float(RATE_TARGET), f"tcpdump {RATE_TARGET}/s"),
             ("probe/native", 0.0, "recv path alone (C)"),
             ("probe/python", 0.0, "recv path alone (Py)")]
    results: dict[str, list[CapacityRun]] = {label: [] for _, _, label in plans}
    with tempfile.TemporaryDirectory(prefix="smcbench-") as tmp:
        blob = Path(tmp) / "handshakes.frames"
        write_blob(blob, traffic.flat())
        try:
            for round_no in range(repeat):
                for kind, rate, label in plans:
                    run = once(lab, traffic, blob, kind, rate, label)
                    results[label].append(run)
                    print(f"  round {round_no + 1} {label:24} sent {run.sent['seconds']:.2f} s, "
                          f"traced {run.traced_s:.2f} s, CPU {run.cpu_s:.2f} s, lost "
                          f"{run.lost}, dropped {run.summary.get('dropped')}, veth drops "
                          f"{run.veth['rx_dropped']}", flush=True)
            if profile:
                path = Path(tmp) / "smctrace.prof"
                once(lab, traffic, blob, "native", float(RATE_TARGET), "profiled", path)
                print_profile(path)
        finally:
            lab.set_mtu(1500)
        offline = offline_us(traffic, Path(tmp), repeat)
    report(results, count, offline)


def report(results: dict[str, list[CapacityRun]], count: int, offline: float) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    print(f"\n{'run':26} {'sent hs/s':>10} {'traced hs/s':>12} {'lag s':>6} {'lost':>5} "
          f"{'dropped':>8} {'CPU s':>6} {'us/hs':>7} {'x tcpdump':>10}")
    rows: dict[str, tuple[float, float, float, int, float]] = {}
    for label, runs in results.items():
        sent = med([count / r.sent["seconds"] for r in runs])
        traced = med([count / r.traced_s for r in runs])
        lag = med([r.lag_s for r in runs])
        lost = max(r.lost for r in runs)
        us = med([r.us_per_handshake for r in runs])
        rows[label] = (sent, traced, lag, lost, us)
    for label, runs in results.items():
        sent, traced, lag, lost, us = rows[label]
        speed = "tcpdump top speed" if "top" in label else f"tcpdump {RATE_TARGET}/s"
        ratio = us / rows[speed][4] if speed in rows and rows[speed][4] else float("nan")
        dropped = max(int(r.summary.get("dropped", 0) or 0) for r in runs)
        cpu = med([r.cpu_s for r in runs])
        traced_text = f"{traced:12.0f}" if "tcpdump" not in label else f"{'-':>12}"
        print(f"{label:26} {sent:10.0f} {traced_text} {lag:6.2f} {lost:5} {dropped:8} "
              f"{cpu:6.2f} {us:7.1f} {ratio:10.2f}")
    print("  (traced hs/s: handshakes with an outcome / first frame sent to last connection "
          "event; lag: last frame sent to last event; us/hs: tracer CPU per handshake sent; "
          "x tcpdump: CPU per handshake against tcpdump -w /dev/null at the same speed; "
          "recv path alone: frames read and parsed into segments, nothing decoded, its "
          "'traced' is segments/1000 lines)")
    print()
    _, top_traced, _, top_lost, _ = rows["smctrace top speed"]
    _, _, paced_lag, paced_lost, paced_us = rows[f"smctrace {RATE_TARGET}/s"]
    ok = top_traced >= RATE_TARGET and top_lost == 0
    print(f"target: >= {RATE_TARGET} handshakes/s traced, none lost -> {top_traced:.0f}/s at "
          f"top speed, {top_lost} lost {verdict(ok)}")
    ok = paced_lost == 0 and paced_lag <= 1.0
    print(f"target: keeps up with {RATE_TARGET}/s (none lost, done within 1 s of the sender) "
          f"-> {paced_lost} lost, {paced_lag:.2f} s behind {verdict(ok)}")
    print(f"target: <= {CPU_TARGET_US:g} us tracer CPU per handshake -> {paced_us:.1f} us "
          f"{verdict(paced_us <= CPU_TARGET_US)}")
    py = rows[f"smctrace-pyrecv {RATE_TARGET}/s"][4]
    c_alone, py_alone = rows["recv path alone (C)"][4], rows["recv path alone (Py)"][4]
    print(f"  receive path: C {c_alone:.1f} us/handshake alone, Python {py_alone:.1f}; "
          f"whole tracer {paced_us:.1f} us with the C path, {py:.1f} with the Python path")
    print(f"  decoder, tracker and JSON alone (smctrace -f --json on the same frames): "
          f"{offline:.1f} us/handshake, i.e. at most {1e6 / offline:.0f} handshakes/s on "
          f"one core whatever the capture path")

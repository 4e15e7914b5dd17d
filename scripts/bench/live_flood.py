"""Flood: a sustained flood of SYNs with the SMC option (distinct 4-tuples, never
answered) with real SMC handshakes in between, into one end of the veth pair;
``smctrace -i --json`` (bcc) on the other end, then tcpdump on the same frames.

Checks that every real handshake is traced with the outcome it was sent with (none
lost); reports the flood's SYN/s, the tracer's CPU per flood SYN (target <= 5 us), the
frames that reached user space and what the summary says about the flood (the eBPF
filter's per-CPU token bucket for SMC SYNs, rule.SYN_RATE/SYN_BURST: smc_syns, answered,
syns_deferred; the tracker's unanswered SYNs).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import livetraffic
from bench.livelab import BenchLab, Sender, smctrace_tracer, tcpdump_tracer, wait_caught_up
from bench.measure import verdict
from bench.report import fail
from smctrace.match import rule
from tests.support.replay import write_blob

SYN_RATE_TARGET = 200_000  # flood SYNs/s at least
CPU_TARGET_US = 5.0  # tracer CPU per flood SYN


@dataclass
class FloodRun:
    tool: str
    syns: int
    seconds: float  # the sender's
    cpu_s: float
    summary: dict[str, Any] = field(default_factory=dict)
    veth: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    wrong: int = 0
    extra: int = 0
    lost_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def syn_rate(self) -> float:
        return self.syns / self.seconds

    @property
    def us_per_syn(self) -> float:
        return self.cpu_s / self.syns * 1e6


def once(lab: BenchLab, tool: str, blobs: list[Path], syns: int, rate: float,
         traffic: livetraffic.Handshakes) -> FloodRun:
    if tool == "none":
        return unobserved(lab, blobs, syns, rate)
    tracer = tcpdump_tracer(lab) if tool == "tcpdump" else smctrace_tracer(lab, "bcc")
    try:
        senders = [Sender(lab, blob, rate / len(blobs)) for blob in blobs]
        before = lab.counters()
        cpu0 = tracer.cpu_ns()
        for sender in senders:
            sender.go()
        results = [sender.result() for sender in senders]
        sent = {"seconds": max(result["seconds"] for result in results)}
        if tool == "tcpdump":
            time.sleep(1.0)
        else:
            wait_caught_up(tracer, traffic.count, quiet=2.0)
            time.sleep(0.5)  # the summary's counters settle
        cpu_s = (tracer.cpu_ns() - cpu0) / 1e9
        veth = lab.counters_since(before)
    finally:
        tracer.stop(120)
    run = FloodRun(tool, syns, float(sent["seconds"]), cpu_s, summary=tracer.summary(),
                   veth=veth)
    if tool != "tcpdump":
        found = livetraffic.outcomes_of(tracer.lines())
        lost, run.wrong, run.extra = livetraffic.compare(traffic.outcomes, found)
        run.lost = len(lost)
        run.lost_kinds = traffic.by_kind(lost)
    return run


def unobserved(lab: BenchLab, blobs: list[Path], syns: int, rate: float) -> FloodRun:
    """The flood with no tracer attached: what the senders (and the kernel) manage alone."""
    senders = [Sender(lab, blob, rate / len(blobs)) for blob in blobs]
    before = lab.counters()
    for sender in senders:
        sender.go()
    seconds = max(sender.result()["seconds"] for sender in senders)
    return FloodRun("none", syns, seconds, 0.0, summary={}, veth=lab.counters_since(before))


def section(lab: BenchLab, syns: int, handshake_count: int, rate: float, repeat: int,
            senders: int) -> None:
    print(f"\n== flood: {syns} SMC SYNs (distinct 4-tuples, never answered) with "
          f"{handshake_count} real handshakes in between, {senders} senders at "
          f"{'top speed' if not rate else f'{rate:.0f} frames/s in all'}, "
          f"{repeat} rounds ==", flush=True)
    lab.set_mtu(1500)
    traffic = livetraffic.handshakes(handshake_count, mix=True, first=1)
    kinds = traffic.by_kind(traffic.kinds)
    t = time.monotonic()
    flood = livetraffic.syn_flood(syns)
    # Each sender its share of the flood with its share of the handshakes in between.
    parts = [livetraffic.between(flood[i * syns // senders:(i + 1) * syns // senders],
                                 traffic.frames[i::senders], len(traffic.frames[i::senders]))
             for i in range(senders)]
    del flood
    frames_total = sum(len(part) for part in parts)
    outcomes = list(traffic.outcomes.values())
    print(f"  {frames_total} frames built in {time.monotonic() - t:.1f} s; real handshakes: "
          f"{outcomes.count('smc')} smc, {outcomes.count('fallback')} fallback {kinds}; filter "
          f"token bucket {rule.SYN_RATE} SMC SYNs/s per CPU, bursts of {rule.SYN_BURST}",
          flush=True)
    runs: dict[str, list[FloodRun]] = {"none": [], "smctrace": [], "tcpdump": []}
    with tempfile.TemporaryDirectory(prefix="smcbench-") as tmp:
        blobs = [Path(tmp) / f"flood{i}.frames" for i in range(senders)]
        for blob, part in zip(blobs, parts, strict=True):
            write_blob(blob, part)
        del parts
        for round_no in range(repeat):
            for tool in ("none", "smctrace", "tcpdump"):
                run = once(lab, tool, blobs, syns, rate, traffic)
                runs[tool].append(run)
                print(f"  round {round_no + 1} {tool:9} {run.syn_rate:9.0f} SYN/s, CPU "
                      f"{run.cpu_s:.2f} s ({run.us_per_syn:.2f} us/SYN), veth drops "
                      f"{run.veth['rx_dropped']}; summary {brief(run.summary)}", flush=True)
                if tool == "smctrace" and (run.lost or run.wrong or run.extra):
                    fail(f"flood round {round_no + 1}: {run.lost} real handshakes lost "
                         f"{run.lost_kinds}, {run.wrong} with the wrong outcome, "
                         f"{run.extra} never sent")
    report(runs)


def brief(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("frames", "segments", "connections", "seen_by_filter", "kept", "received",
            "dropped", "smc_syns", "answered", "syns_deferred", "captured")
    out = {key: summary[key] for key in keys if key in summary}
    if "unanswered_syns" in summary:
        out["unanswered_syns"] = summary["unanswered_syns"]["count"]
    if "outcomes" in summary:
        out["outcomes"] = summary["outcomes"]
    return out


def report(runs: dict[str, list[FloodRun]]) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    mine, dump = runs["smctrace"], runs["tcpdump"]
    rate = med([r.syn_rate for r in mine])
    us = med([r.us_per_syn for r in mine])
    dump_us = med([r.us_per_syn for r in dump])
    lost = max(r.lost + r.wrong for r in mine)
    to_user = med([float(r.summary.get("received", 0)) for r in mine])
    print(f"\n{'tracer':10} {'SYN/s':>9} {'CPU s':>7} {'us/SYN':>7} {'x tcpdump':>10} "
          f"{'to user space':>14} {'dropped':>8}")
    for tool, tool_runs in runs.items():
        if tool == "none":
            print(f"{tool:10} {med([r.syn_rate for r in tool_runs]):9.0f}")
            continue
        per = med([r.us_per_syn for r in tool_runs])
        user = med([float(r.summary.get("received", r.summary.get("captured", 0)))
                    for r in tool_runs])
        dropped = max(int(r.summary.get("dropped", 0) or 0) for r in tool_runs)
        print(f"{tool:10} {med([r.syn_rate for r in tool_runs]):9.0f} "
              f"{med([r.cpu_s for r in tool_runs]):7.2f} {per:7.2f} "
              f"{per / dump_us if dump_us else float('nan'):10.2f} {user:14.0f} {dropped:8}")
    last = mine[-1].summary
    print(f"  smctrace summary (last round): smc_syns {last.get('smc_syns')}, answered "
          f"{last.get('answered')}, syns_deferred {last.get('syns_deferred')}, unanswered_syns "
          f"{last['unanswered_syns']['count']} (sample {last['unanswered_syns']['sample'][:2]}), "
          f"seen_by_filter {last.get('seen_by_filter')}, kept {last.get('kept')}, received "
          f"{last.get('received')}, dropped {last.get('dropped')}")
    print(f"  frames to user space per flood SYN: {to_user / mine[-1].syns:.4f}")
    print("  (SYN/s: the senders' rate; the kernel runs each tracer's socket filter in the "
          "senders' time, so a costlier filter slows the flood itself: 'none' is no tracer)")
    print()
    print(f"target: flood >= {SYN_RATE_TARGET} SYN/s -> {rate:.0f} "
          f"{verdict(rate >= SYN_RATE_TARGET)}")
    print(f"check: every real handshake traced with its outcome -> {lost} lost or wrong "
          f"{'ok' if not lost else 'FAILED'}")
    print(f"target: <= {CPU_TARGET_US:g} us tracer CPU per flood SYN -> {us:.2f} us "
          f"{verdict(us <= CPU_TARGET_US)}")

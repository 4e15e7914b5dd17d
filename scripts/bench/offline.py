"""Offline benchmarks: smctrace -f against the tools users would otherwise pick, side by side.

Modes (all by default, or name them):

  mixed   ~1M frames of ordinary TCP with ~300 SMC handshakes: smctrace -f --json against
          `tcpdump -r FILE -w /dev/null 'tcp[13]&2!=0'` and `tshark -r FILE -Y smc`;
          target: at most 1.0x tcpdump's wall time; peak RSS at 1/4 and all of the file
          (memory flat in file size).
  dense   a busy SMC host: ~400,000 frames with 20,000 handshakes of the usual mix;
          smctrace text and --json against tshark -Y smc; target: at most 0.8 s wall
          (3x faster than smc-clc's 2.5 s on this machine class, 10x faster than tshark).
  flood   1,000,000 unanswered SYNs with the SMC option (and 100 real handshakes among
          them), and 1,000,000 mid-stream Proposals on distinct 4-tuples, against
          `tcpdump -r FILE -w /dev/null tcp`; targets: 5x and 10x tcpdump.
  small   a 12-frame real capture, launch to exit; target: at most 80 ms.

Every run first checks that smctrace found exactly what the generator put in.  Captures
are generated once into --dir (not the work tree).  Medians of --repeat runs.

Usage: scripts/bench_offline.py [mixed|dense|flood|small ...] [--repeat R] [--dir DIR]
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import captures
from bench.measure import Figure, median_of, run, smctrace_path, table, verdict

SMALL = captures.REAL / "C-smcd-loopback-ism-k612lo.pcap"
failures: list[str] = []


def cached(directory: Path, name: str, make: Callable[[Path], captures.Expected]
           ) -> tuple[Path, captures.Expected]:
    path = directory / f"{name}.pcap"
    meta = path.with_suffix(".json")
    if not (path.exists() and meta.exists()):
        print(f"generating {path} ...", flush=True)
        meta.write_text(json.dumps(make(path).as_dict()))
    return path, captures.Expected(**json.loads(meta.read_text()))


def check(smctrace: str, path: Path, expected: captures.Expected) -> dict[str, Any]:
    """smctrace must find exactly what was generated; the summary is returned."""
    result = run([smctrace, "-f", str(path), "--json"], capture=True)
    summary: dict[str, Any] = json.loads(result.stdout.decode().splitlines()[-1])
    outcomes = summary["outcomes"]
    found = {"frames": summary["frames"], "smc": outcomes["smc"],
             "fallback": outcomes["fallback"], "failed": outcomes["failed"],
             "messages": summary["messages"], "unanswered": summary["unanswered_syns"]["count"],
             "midstream": summary["unanswered_midstream"]["count"]}
    want = {"frames": expected.frames, "smc": expected.smc, "fallback": expected.fallback,
            "failed": expected.failed, "messages": expected.messages,
            "unanswered": expected.unanswered, "midstream": expected.midstream}
    ok = found == want
    print(f"smctrace found {found} -> {'OK' if ok else f'MISMATCH, expected {want}'}")
    if not ok:
        failures.append(f"{path.name}: found {found}, expected {want}")
    return summary


def mode_mixed(args: argparse.Namespace, smctrace: str) -> None:
    print("\n== mixed: ~1M frames, a few hundred SMC handshakes")
    files = {n: cached(args.dir, f"mixed-{n}", functools.partial(captures.mixed, frames=n))
             for n in (args.frames // 4, args.frames)}
    path, expected = files[args.frames]
    summary = check(smctrace, path, expected)
    if summary["plain_tcp"] != expected.plain:
        failures.append(f"mixed: {summary['plain_tcp']} plain TCP, expected {expected.plain}")
    figures = [median_of("tcpdump 'tcp[13]&2!=0'",
                         ["tcpdump", "-r", str(path), "-w", "/dev/null", "tcp[13]&2!=0"],
                         args.repeat),
               median_of("smctrace --json", [smctrace, "-f", str(path), "--json"], args.repeat)]
    if shutil.which("tshark") and not args.no_tshark:
        figures.append(median_of("tshark -Y smc", ["tshark", "-r", str(path), "-Y", "smc"], 1))
    print(table(figures, figures[0].name, frames=expected.frames))
    small_path, _ = files[args.frames // 4]
    small = median_of("smctrace 1/4 file", [smctrace, "-f", str(small_path), "--json"], 1)
    ratio = figures[1].wall / figures[0].wall
    print(f"peak RSS {small.rss_mib:.1f} MiB at {args.frames // 4} frames, "
          f"{figures[1].rss_mib:.1f} MiB at {args.frames} frames")
    print(f"target: at most 1.0x tcpdump -> {ratio:.2f}x {verdict(ratio <= 1.0)}")


def mode_dense(args: argparse.Namespace, smctrace: str) -> None:
    print("\n== dense: a busy SMC host")
    path, expected = cached(args.dir, "dense", captures.dense)
    print(f"{path.name}: {expected.frames} frames, {sum(expected.kinds.values())} handshakes "
          f"{expected.kinds}, {expected.messages} CLC messages")
    check(smctrace, path, expected)
    handshakes = sum(expected.kinds.values())
    figures = [median_of("smctrace (text)", [smctrace, "-f", str(path)], args.repeat),
               median_of("smctrace --json", [smctrace, "-f", str(path), "--json"], args.repeat)]
    if shutil.which("tshark") and not args.no_tshark:
        figures.append(median_of("tshark -Y smc", ["tshark", "-r", str(path), "-Y", "smc"], 1))
        base = "tshark -Y smc"
    else:
        base = figures[0].name
    figures.append(median_of("tcpdump (reference)",
                             ["tcpdump", "-r", str(path), "-w", "/dev/null", "tcp"], args.repeat))
    print(table(figures, base, frames=expected.frames, per=handshakes))
    for figure in figures[:2]:
        print(f"target: {figure.name} at most 0.8 s -> {figure.wall:.3f} s "
              f"{verdict(figure.wall <= 0.8)}")
        if base.startswith("tshark"):
            tshark = next(f for f in figures if f.name == base)
            print(f"        10x faster than tshark -> {tshark.wall / figure.wall:.1f}x "
                  f"{verdict(tshark.wall / figure.wall >= 10)}")


def mode_flood(args: argparse.Namespace, smctrace: str) -> None:
    print("\n== flood: unanswered SMC SYNs, mid-stream Proposals")
    for name, make, limit in (
            ("syn-flood", captures.syn_flood, 5.0),
            ("proposal-flood", captures.proposal_flood, 10.0)):
        path, expected = cached(args.dir, name, make)
        print(f"{path.name}: {expected.frames} frames")
        check(smctrace, path, expected)
        figures = [median_of("tcpdump tcp", ["tcpdump", "-r", str(path), "-w", "/dev/null",
                                             "tcp"], args.repeat),
                   median_of("smctrace (text)", [smctrace, "-f", str(path)], args.repeat)]
        print(table(figures, figures[0].name, frames=expected.frames,
                    per=expected.frames, per_name="frame"))
        ratio = figures[1].wall / figures[0].wall
        print(f"target: at most {limit:.0f}x tcpdump -> {ratio:.2f}x {verdict(ratio <= limit)}")


def mode_small(args: argparse.Namespace, smctrace: str) -> None:
    print("\n== small: a 12-frame capture, launch to exit")
    figures = [median_of("smctrace -f (12 frames)", [smctrace, "-f", str(SMALL)],
                         max(args.repeat, 9)),
               median_of("python3 -c pass", [sys.executable, "-c", "pass"], 9),
               median_of("tcpdump -r (12 frames)", ["tcpdump", "-r", str(SMALL)], 9)]
    print(table(figures, figures[1].name, frames=12))
    print(f"target: at most 80 ms -> {figures[0].wall * 1000:.0f} ms "
          f"{verdict(figures[0].wall <= 0.080)}")


MODES = {"mixed": mode_mixed, "dense": mode_dense, "flood": mode_flood, "small": mode_small}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("modes", nargs="*", metavar="MODE", help=", ".join(MODES))
    parser.add_argument("--frames", type=int, default=1_000_000, help="mixed: frames")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-tshark", action="store_true")
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/smctrace-bench"))
    args = parser.parse_args(argv)
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode {unknown[0]} (choose from {', '.join(MODES)})")
    args.dir.mkdir(parents=True, exist_ok=True)
    smctrace = smctrace_path()
    for name in args.modes or list(MODES):
        MODES[name](args, smctrace)
    for failure in failures:
        print(f"CHECK FAILED: {failure}")
    return 1 if failures else 0


__all__ = ["Figure", "main"]

#!/usr/bin/env python3
"""Benchmark of capture input: compressed files, the plain path and pipes, filter cost.

Generates (once, cached in --dir) a capture of --size bytes and its gzip, bzip2, xz and
zstd versions (made by those tools), then reports:

- reading the capture through open_capture_input with the capture reader
  (CaptureFile(...).segments(engine), the offline hot path): MB/s of capture bytes
  for the plain file opened by CaptureFile itself, for open_capture_input's stream, for
  each compressed file, and for a pipe on standard input (sys.stdin.buffer as before, and
  open_capture_input("-"));
- the CPU time and peak RSS of each run;
- PacketFilter.matches(): microseconds per call over the frames of the real-kernel
  captures.

Usage: scripts/bench_capture_input.py [--size BYTES] [--dir DIR] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from smctrace.capture.compressed import open_capture_input  # noqa: E402
from smctrace.capture.pcapfile import CaptureFile  # noqa: E402
from smctrace.capture.pcapfilter import PacketFilter  # noqa: E402
from smctrace.match.engine import new_engine  # noqa: E402

COMPRESSORS = {"gzip": ["gzip", "-c"], "bzip2": ["bzip2", "-c"], "xz": ["xz", "-c", "-T2"],
               "zstd": ["zstd", "-q", "-c"]}
FILTERS = ("tcp port 7001 and host 192.0.2.1", "not port 22", "tcp[13]&2!=0")


def child(mode: str, source: str) -> None:
    """One timed pass of the capture reader, in a process of its own (for its RSS)."""
    start = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    if mode == "capturefile":
        capture = CaptureFile(source)  # CaptureFile opens the path (or stdin) itself
    else:
        stream, _name = open_capture_input(source)
        capture = CaptureFile(stream)
    with capture:
        candidates = sum(1 for _ in capture.segments(new_engine()))
        consumed = capture.bytes_read
    elapsed = time.perf_counter() - start
    end_usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (end_usage.ru_utime - usage.ru_utime) + (end_usage.ru_stime - usage.ru_stime)
    print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "bytes": consumed,
                      "candidates": candidates,
                      "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def timed(mode: str, source: str, stdin_path: Path | None, repeat: int) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(repeat):
        command = [sys.executable, __file__, "--child", mode, source]
        if stdin_path is None:
            output = subprocess.run(command, capture_output=True, check=True, text=True).stdout
        else:
            cat = subprocess.Popen(["cat", str(stdin_path)], stdout=subprocess.PIPE)
            output = subprocess.run(command, stdin=cat.stdout, capture_output=True, check=True,
                                    text=True).stdout
            cat.wait()
        result = json.loads(output)
        if not best or result["seconds"] < best["seconds"]:
            best = result
    return best


def filter_cost() -> None:
    frames = []
    for path in sorted((REPO / "tests" / "data" / "real-kernel").glob("*.pcap")):
        with CaptureFile(str(path)) as capture:
            frames += [(f.data, f.linktype, f.orig_len) for f in capture.frames()]
    for expression in FILTERS:
        with PacketFilter(expression) as packet_filter:
            matches = packet_filter.matches
            rounds = 1_000_000 // len(frames)
            start = time.perf_counter()
            for _ in range(rounds):
                for data, linktype, orig_len in frames:
                    matches(data, linktype, orig_len)
            elapsed = time.perf_counter() - start
            calls = rounds * len(frames)
            print(f"  PacketFilter({expression!r}).matches: "
                  f"{elapsed / calls * 1e6:.2f} µs per call ({calls} calls)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=200_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/smctrace-bench-input"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "SOURCE"))
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    from tests.support.captures import write_large_capture

    options.dir.mkdir(parents=True, exist_ok=True)
    plain = options.dir / f"capture-{options.size}.pcap"
    if not plain.exists():
        write_large_capture(plain, options.size)
    packed = {}
    for name, command in COMPRESSORS.items():
        if shutil.which(command[0]) is None:
            continue
        path = options.dir / f"{plain.name}.{name}"
        if not path.exists():
            with plain.open("rb") as source, path.open("wb") as target:
                subprocess.run(command, stdin=source, stdout=target, check=True)
        packed[name] = path
    size_mb = plain.stat().st_size / 1e6
    print(f"capture: {plain} ({size_mb:.0f} MB), best of {options.repeat}")
    runs = [("plain file, CaptureFile(path)", "capturefile", str(plain), None),
            ("plain file, open_capture_input", "input", str(plain), None),
            ("pipe, CaptureFile('-') (sys.stdin.buffer)", "capturefile", "-", plain),
            ("pipe, open_capture_input('-')", "input", "-", plain)]
    for name, path in packed.items():
        ratio = plain.stat().st_size / path.stat().st_size
        runs.append((f"{name} file (ratio {ratio:.1f})", "input", str(path), None))
        runs.append((f"{name} pipe", "input", "-", path))
    for label, mode, source, stdin_path in runs:
        result = timed(mode, source, stdin_path, options.repeat)
        # CPU time too: on a pipe the wall time mostly measures how cat is scheduled.
        print(f"  {label:45} {result['bytes'] / result['seconds'] / 1e6:7.0f} MB/s  "
              f"{result['seconds']:.3f} s  CPU {result['cpu_seconds']:.3f} s  "
              f"peak RSS {result['rss_mib']:.0f} MiB")
    filter_cost()


if __name__ == "__main__":
    main()

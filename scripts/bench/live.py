"""Live benchmarks: smctrace -i on a veth pair between two private network namespaces,
against tcpdump run in the same lab, one after the other.

Sections (all by default, or name them):

  overhead  small-packet iperf3 flood: tracer CPU against tcpdump, 0 frames to user space
            (bench/live_overhead.py);
  capacity  SMC handshakes replayed at top speed and at 10,000/s: handshakes/s traced, none
            lost, tracer CPU per handshake, with the C and the Python receive path, and
            the receive path alone (bench/live_capacity.py);
  startup   launch to attached, per backend (bench/live_startup.py);
  flood     >= 200,000 SMC SYNs/s that nobody answers with real handshakes in between:
            none of them lost, tracer CPU per flood SYN, what the summary says
            (bench/live_flood.py).

Everything runs inside two network namespaces made with tests/support/netlab.py
(smcbench-<pid>-tx/-rx) and deleted on exit, also on Ctrl-C or SIGTERM; no traffic leaves
them.  Needs root, iproute2, tcpdump, iperf3 and BCC (python3-bpfcc).  The machine is
shared: figures are medians of --repeat rounds.

Usage: scripts/bench_live.py [overhead|capacity|startup|flood|all ...] [--quick]
           [--repeat R] [--duration S] [--handshakes N] [--mix] [--profile]
           [--flood-syns N] [--flood-rate FPS] [--flood-senders K]
Exits non-zero if a correctness check fails (non-SMC frames reached user space, a
handshake lost or traced with the wrong outcome, a tracer did not start); performance
targets are printed as met / NOT met.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time

from bench import live_capacity, live_flood, live_overhead, live_startup
from bench.livelab import RX_ADDR, TX_ADDR, BenchLab, reap_all, terminate
from bench.measure import smctrace_path
from bench.report import failures

SECTIONS = ("startup", "overhead", "capacity", "flood")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    # no choices=: argparse checks an empty nargs="*" list against them (bpo-9625)
    parser.add_argument("sections", nargs="*", metavar="SECTION",
                        help=f"{', '.join(SECTIONS)} or all (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds, 5,000 handshakes, 1M flood SYNs")
    parser.add_argument("--repeat", type=int, help="rounds per section (default 3)")
    parser.add_argument("--duration", type=float, help="overhead: seconds per flood (4)")
    parser.add_argument("--handshakes", type=int, help="capacity: handshakes (20000)")
    parser.add_argument("--mix", action="store_true",
                        help="capacity: the usual mix (SMC-D, SMC-R, Declines, fallbacks "
                             "without the option) instead of SMC-D only")
    parser.add_argument("--profile", action="store_true",
                        help="capacity: one more run under cProfile, its top functions")
    parser.add_argument("--no-cbpf", action="store_true", help="overhead: bcc only")
    parser.add_argument("--flood-syns", type=int, help="flood: SYNs (2,000,000)")
    parser.add_argument("--flood-handshakes", type=int, default=2000,
                        help="flood: real handshakes among them (2000)")
    parser.add_argument("--flood-rate", type=float, default=0.0,
                        help="flood: frames/s in all (0: the senders' top speed)")
    parser.add_argument("--flood-senders", type=int, default=2,
                        help="flood: sender processes, each with its share (2)")
    args = parser.parse_args(argv)
    chosen = set(args.sections or ["all"])
    unknown = chosen - {"all", *SECTIONS}
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}")
    args.sections = [s for s in SECTIONS if "all" in chosen or s in chosen]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, AF_PACKET, BPF)")
    for tool in ("ip", "tcpdump", "iperf3"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (apt-get install iproute2 tcpdump iperf3)")
    repeat = args.repeat or (2 if args.quick else 3)
    signal.signal(signal.SIGTERM, terminate)
    # Ctrl-C also when started in the background (where SIGINT is inherited ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    print(f"smctrace: {smctrace_path()}; kernel {os.uname().release}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}")
    try:
        with BenchLab() as lab:
            print(f"namespaces {lab.tx_ns} ({lab.tx_if}, {TX_ADDR}) <-> {lab.rx_ns} "
                  f"({lab.rx_if}, {RX_ADDR}); tracers on {lab.rx_if}", flush=True)
            try:
                run_sections(lab, args, repeat)
            finally:
                reap_all()
    except KeyboardInterrupt:
        print("\ninterrupted; namespaces removed", file=sys.stderr)
        return 130
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if failures:
        print(f"{len(failures)} correctness check(s) failed:", *failures, sep="\n  ")
        return 1
    return 0


def run_sections(lab: BenchLab, args: argparse.Namespace, repeat: int) -> None:
    for name in args.sections:
        if name == "startup":
            live_startup.section(lab, 3 if args.quick else 5)
        elif name == "overhead":
            live_overhead.section(lab, repeat, args.duration or (3.0 if args.quick else 4.0),
                                  ["bcc"] if args.no_cbpf else ["bcc", "cbpf"])
        elif name == "capacity":
            live_capacity.section(lab, args.handshakes or (5000 if args.quick else 20_000),
                                  args.mix, repeat, args.profile)
        elif name == "flood":
            live_flood.section(lab, args.flood_syns or (1_000_000 if args.quick else 2_000_000),
                               args.flood_handshakes, args.flood_rate, repeat,
                               args.flood_senders)


__all__ = ["main"]

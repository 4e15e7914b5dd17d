"""What ``--http`` costs the tracer, and that slow HTTP clients cost it nothing.

Three sections (all by default, or name them):

  sink      The service's sink alone, in this process: the events of the real-kernel
            captures (tests/data/real-kernel) recorded once, replayed N times with distinct
            addresses into (a) a sink that does nothing and (b) the service's sink
            (metrics, ring of recent connections, live counts).  Prints the difference in
            microseconds per connection (its CLC messages included) and per message.
  pipeline  The whole offline pipeline (frames, decoder, tracker, --json output) on SMC-D
            handshakes, with and without the service's sink in front of the output,
            under valgrind's cachegrind: instructions per handshake are deterministic
            where CPU times on a shared machine are not.  Two files (1,000 and 5,000
            handshakes) so that start-up cancels out; also each run's CPU time natively,
            to turn instructions into microseconds.  Needs valgrind (apt-get install
            valgrind); skipped without it.
  capacity  bench_live.py's capacity run (scripts/bench/live_capacity.py: SMC-D handshakes replayed
            at top speed through a veth pair between two private network namespaces, ``smctrace -i
            --json`` on the receiving end) in three set-ups, rounds interleaved: no --http; --http;
            --http while slow clients hold every HTTP slot (they connect and never send, send a
            request one byte a second, or ask for /api/connections with a 1 KiB receive buffer and
            never read) and a scraper asks for /metrics and /api/page every second.  Prints
            handshakes/s traced, handshakes lost and tracer CPU per handshake (all its threads).
            Fails (exit 1) if a handshake is lost, if the slow clients raise the tracer's CPU per
            handshake by more than --tolerance, or if they halve the traced rate (a tracer that
            waited for a client would stall for the server's 5-10 s timeouts; smaller differences in
            rate are what a shared machine's other processes, the slow clients' own among them,
            leave).

Everything network-related runs inside the namespaces bench.livelab.BenchLab creates and
removes; the HTTP clients talk to 127.0.0.1 inside the receiving namespace.  Needs root and BCC for
``capacity``; ``sink`` runs anywhere.

Usage: scripts/bench_service.py [sink|pipeline|capacity|all] [--connections N]
           [--handshakes N] [--rounds R] [--tolerance F]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import livetraffic
from bench.captures import REAL
from bench.livelab import CHILD_ENV, REPO, terminate
from bench.report import failures
from smctrace.events import (
    ConnectionId,
    ConnectionOutcome,
    Endpoint,
    EventSink,
    GapEvent,
    MessageEvent,
)

Event = MessageEvent | GapEvent | ConnectionOutcome


# -- 1. the sink alone ------------------------------------------------------------------


def recorded_events() -> list[Event]:
    """Every event of every real-kernel capture, decoded once."""
    from tests.support.tracing import RecordingSink, trace_capture

    recorder = RecordingSink()
    for path in sorted(REAL.glob("*.pcap")):
        trace_capture(path, recorder)
    return recorder.events


def replicated(events: list[Event], copies: int) -> list[Event]:
    """``copies`` copies of the events, each copy's connections on other client ports and
    addresses (as many distinct connections as a real fleet host would see)."""
    out: list[Event] = []
    for copy in range(copies):
        renamed: dict[ConnectionId, ConnectionId] = {}
        for event in events:
            conn = event.conn
            new = renamed.get(conn)
            if new is None:
                client = Endpoint(f"10.{copy >> 16 & 255}.{copy >> 8 & 255}.{copy & 255}",
                                  conn.client.port)
                new = renamed[conn] = ConnectionId(client, conn.server)
            out.append(dataclasses.replace(event, conn=new))
    return out


def feed(sink: EventSink, events: list[Event]) -> float:
    on_message, on_gap, on_connection = sink.on_message, sink.on_gap, sink.on_connection
    # CPU time of this thread: other processes on the machine do not count
    start = time.thread_time()
    for event in events:
        if isinstance(event, MessageEvent):
            on_message(event)
        elif isinstance(event, ConnectionOutcome):
            on_connection(event)
        else:
            on_gap(event)
    return time.thread_time() - start


def section_sink(connections: int, rounds: int) -> None:
    from smctrace.service.sink import ServiceSink

    base = recorded_events()
    per_copy = sum(isinstance(e, ConnectionOutcome) for e in base)
    copies = max(1, connections // per_copy)
    events = replicated(base, copies)
    n_conn = sum(isinstance(e, ConnectionOutcome) for e in events)
    n_msg = sum(isinstance(e, MessageEvent) for e in events)
    print(f"\n== sink: {n_conn} connections, {n_msg} CLC messages (the real-kernel captures' "
          f"events x {copies}), best of {rounds} ==", flush=True)
    idle, service, wired = [], [], []
    for _ in range(rounds):
        idle.append(feed(EventSink(), events))
        service.append(feed(ServiceSink(recent=1000), events))
        # as the CLI wires it: the service's sink in front of the output
        wired.append(feed(ServiceSink(recent=1000, output=EventSink()), events))
    cost = min(service) - min(idle)
    message_share = _message_cost(events, rounds) if n_msg else 0.0
    print(f"  no-op sink              {min(idle) / n_conn * 1e6:7.2f} us per connection "
          "(the loop alone)")
    print(f"  service sink            {min(service) / n_conn * 1e6:7.2f} us per connection")
    print(f"  service -> no-op output {min(wired) / n_conn * 1e6:7.2f} us per connection")
    print(f"  => the service sink adds {cost / n_conn * 1e6:.2f} us per connection, its "
          f"{n_msg / n_conn:.1f} CLC messages included "
          f"({message_share / n_msg * 1e6:.2f} us per message); in front of an output, as "
          f"the CLI wires it, {(min(wired) - min(idle)) / n_conn * 1e6:.2f} us")


def _message_cost(events: list[Event], rounds: int) -> float:
    from smctrace.service.sink import ServiceSink

    messages: list[Event] = [e for e in events if isinstance(e, MessageEvent)]
    idle = min(feed(EventSink(), messages) for _ in range(rounds))
    return min(feed(ServiceSink(recent=1000), messages) for _ in range(rounds)) - idle


# -- 2. the pipeline, counted in instructions -------------------------------------------


def pipeline_main(argv: list[str]) -> None:
    """Hidden subcommand: trace a file in process into --json (to /dev/null), alone or
    behind the service's sink; print the CPU seconds the trace took."""
    from smctrace.output.jsonl import JsonOutput
    from smctrace.service.sink import ServiceSink
    from tests.support.tracing import trace_capture

    path, mode = argv
    with open(os.devnull, "w") as devnull:
        output = JsonOutput(devnull)
        sink: EventSink = output if mode == "output" else ServiceSink(1000, output=output)
        start = time.thread_time()
        trace_capture(path, sink)
        print(json.dumps({"cpu_s": time.thread_time() - start}))


def _instructions(path: Path, mode: str) -> int:
    proc = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, "-m", "bench.service", "_pipeline", str(path), mode],
        capture_output=True, text=True, check=True, timeout=1800, cwd=REPO,
        env={**CHILD_ENV, "PYTHONHASHSEED": "0"})
    (count,) = [line.split()[-1] for line in proc.stderr.splitlines() if "I   refs" in line]
    return int(count.replace(",", ""))


def _native_cpu(path: Path, mode: str) -> float:
    proc = subprocess.run([sys.executable, "-m", "bench.service", "_pipeline", str(path),
                           mode], capture_output=True, text=True, check=True, timeout=600,
                          cwd=REPO, env=CHILD_ENV)
    return float(json.loads(proc.stdout.splitlines()[-1])["cpu_s"])


def section_pipeline(rounds: int) -> None:
    import shutil
    import tempfile

    if shutil.which("valgrind") is None:
        print("\n== pipeline: skipped (needs valgrind: apt-get install valgrind) ==")
        return
    sizes = (1000, 5000)
    print(f"\n== pipeline: smctrace -f on {sizes[0]} and {sizes[1]} SMC-D handshakes, "
          "--json alone and behind the service's sink, instructions under cachegrind ==",
          flush=True)
    handshakes = livetraffic.handshakes(max(sizes))
    with tempfile.TemporaryDirectory(prefix="smcbench-") as tmp:
        files = {}
        for size in sizes:
            files[size] = Path(tmp) / f"hs{size}.pcap"
            livetraffic.write_pcap(files[size], handshakes.head(size).flat())
        per_handshake = {}
        for mode in ("output", "service"):
            small, large = (_instructions(files[size], mode) for size in sizes)
            per_handshake[mode] = (large - small) / (sizes[1] - sizes[0])
            print(f"  {mode:8} {per_handshake[mode]:12,.0f} instructions per handshake",
                  flush=True)
        cpu = {mode: min(_native_cpu(files[sizes[1]], mode) for _ in range(rounds))
               for mode in ("output", "service")}
    added = per_handshake["service"] - per_handshake["output"]
    ns_per_instruction = cpu["output"] / sizes[1] / per_handshake["output"] * 1e9
    print(f"  natively, best of {rounds}: {cpu['output'] / sizes[1] * 1e6:.0f} us per "
          f"handshake with --json alone, {cpu['service'] / sizes[1] * 1e6:.0f} us behind the "
          f"service's sink")
    print(f"  => the service's sink adds {added:,.0f} instructions per handshake "
          f"({added / per_handshake['output']:.1%} of the pipeline), "
          f"{added * ns_per_instruction / 1000:.1f} us at this machine's "
          f"{ns_per_instruction:.2f} ns per pipeline instruction")


# -- 3. capacity with slow clients ------------------------------------------------------


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_pipeline":
        pipeline_main(sys.argv[2:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sections", nargs="*", metavar="SECTION",
                    help="sink, pipeline, capacity or all")
    ap.add_argument("--connections", type=int, default=180_000,
                    help="sink: connections replayed (default 180000)")
    ap.add_argument("--handshakes", type=int, default=20_000,
                    help="capacity: handshakes per run (default 20000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--tolerance", type=float, default=0.1,
                    help="capacity: largest rise of the tracer's CPU per handshake that slow "
                         "clients may cause (default 0.1)")
    args = ap.parse_args()
    chosen = set(args.sections or ["all"])
    unknown = chosen - {"all", "sink", "pipeline", "capacity"}
    if unknown:
        ap.error(f"unknown section(s) {', '.join(sorted(unknown))}")
    signal.signal(signal.SIGTERM, terminate)
    print(f"kernel {os.uname().release}; {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.2f}")
    ok = True
    if chosen & {"all", "sink"}:
        section_sink(args.connections, args.rounds)
    if chosen & {"all", "pipeline"}:
        section_pipeline(args.rounds)
    if chosen & {"all", "capacity"}:
        if os.geteuid() != 0:
            raise SystemExit("capacity needs root (network namespaces, AF_PACKET, BPF)")
        from bench.service_capacity import section_capacity

        ok = section_capacity(args.handshakes, args.rounds, args.tolerance)
    return 1 if not ok or failures else 0


if __name__ == "__main__":  # python -m bench.service _pipeline (a child of the pipeline section)
    sys.exit(main())

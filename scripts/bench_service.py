#!/usr/bin/env python3
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
import contextlib
import dataclasses
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import live_capacity, livelab, livetraffic  # noqa: E402
from bench.report import failures  # noqa: E402

from smctrace.events import (  # noqa: E402
    ConnectionId,
    ConnectionOutcome,
    Endpoint,
    EventSink,
    GapEvent,
    MessageEvent,
)

HTTP_PORT = 9100  # inside the receiving namespace, whose loopback is private to it
SLOW_CLIENTS = 24  # more than the service's 16 slots: every slot is held
HOLD_SECONDS = 4.0  # each slow client gives up and comes back before the server's timeouts
REAL = REPO / "tests" / "data" / "real-kernel"

Event = MessageEvent | GapEvent | ConnectionOutcome


# -- 1. the sink alone ------------------------------------------------------------------


class _Recorder(EventSink):
    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_message(self, event: MessageEvent) -> None:
        self.events.append(event)

    def on_gap(self, event: GapEvent) -> None:
        self.events.append(event)

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        self.events.append(outcome)


def recorded_events() -> list[Event]:
    """Every event of every real-kernel capture, decoded once."""
    from tests.support.tracing import trace_capture

    recorder = _Recorder()
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

    messages = [e for e in events if isinstance(e, MessageEvent)]
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
         sys.executable, str(Path(__file__).resolve()), "_pipeline", str(path), mode],
        capture_output=True, text=True, check=True, timeout=1800,
        env={**os.environ, "PYTHONHASHSEED": "0"})
    (count,) = [line.split()[-1] for line in proc.stderr.splitlines() if "I   refs" in line]
    return int(count.replace(",", ""))


def _native_cpu(path: Path, mode: str) -> float:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_pipeline",
                           str(path), mode], capture_output=True, text=True, check=True,
                          timeout=600)
    return float(json.loads(proc.stdout.splitlines()[-1])["cpu_s"])


def section_pipeline(rounds: int) -> None:
    import shutil
    import tempfile

    from smctrace.capture.pcapwriter import PcapWriter

    if shutil.which("valgrind") is None:
        print("\n== pipeline: skipped (needs valgrind: apt-get install valgrind) ==")
        return
    sizes = (1000, 5000)
    print(f"\n== pipeline: smctrace -f on {sizes[0]} and {sizes[1]} SMC-D handshakes, "
          "--json alone and behind the service's sink, instructions under cachegrind ==",
          flush=True)
    handshakes = livetraffic.handshakes(max(sizes)).frames
    with tempfile.TemporaryDirectory(prefix="smcbench-") as tmp:
        files = {}
        for size in sizes:
            files[size] = Path(tmp) / f"hs{size}.pcap"
            with files[size].open("wb") as out:
                writer = PcapWriter(out, 1)
                number = 0
                for frames in handshakes[:size]:
                    for frame in frames:
                        writer.write(1_800_000_000 + number * 1e-5, frame)
                        number += 1
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


def slow_clients_main(argv: list[str]) -> None:
    """Hidden subcommand, run inside the receiving namespace: hold every HTTP slot with
    clients that never finish, and scrape once a second; on SIGTERM print what happened."""
    ap = argparse.ArgumentParser(prog="bench_service.py _slow")
    ap.add_argument("port", type=int)
    ap.add_argument("--clients", type=int, default=SLOW_CLIENTS)
    args = ap.parse_args(argv)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    held: list[tuple[float, socket.socket, int]] = []  # (reopen after, socket, kind)
    statuses: dict[str, int] = {}
    opened = 0
    next_scrape = trickle_at = time.monotonic()

    def connect(kind: int) -> socket.socket | None:
        sock = socket.socket()
        if kind == 2:  # takes a reply 1 KiB at a time, and never reads even that
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        try:
            sock.connect(("127.0.0.1", args.port))
        except OSError:
            sock.close()
            return None
        if kind == 2:
            sock.sendall(b"GET /api/connections HTTP/1.0\r\n\r\n")
        return sock

    while not stopping:
        now = time.monotonic()
        for entry in [h for h in held if h[0] <= now]:
            held.remove(entry)
            entry[1].close()
        while len(held) < args.clients:
            kind = len(held) % 3
            sock = connect(kind)
            if sock is None:
                break
            opened += 1
            held.append((now + HOLD_SECONDS, sock, kind))
        if now >= trickle_at:  # one byte a second of a request that never ends
            trickle_at = now + 1.0
            for _, sock, kind in held:
                if kind == 1:
                    with contextlib.suppress(OSError):
                        sock.send(b"G")
        if now >= next_scrape:
            next_scrape = now + 1.0
            for path in ("/metrics", "/api/page"):
                status = _status(args.port, path)
                statuses[status] = statuses.get(status, 0) + 1
        time.sleep(0.05)
    print(json.dumps({"opened": opened, "scrapes": statuses}), flush=True)


def _status(port: int, path: str) -> str:
    """The status of one GET (or why there was none)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            first = sock.recv(64).split(b"\r\n", 1)[0].decode(errors="replace")
            return first.split(" ")[1] if first.startswith("HTTP/") else "no reply"
    except OSError as exc:
        return type(exc).__name__


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
                lab.rx(livelab.PYTHON, str(Path(__file__).resolve()), "_slow",
                       str(HTTP_PORT)), stdout=subprocess.PIPE)
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
        livetraffic.blob(blob, traffic.flat())
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


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through Lab: namespaces go


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_slow":
        slow_clients_main(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_pipeline":
        pipeline_main(sys.argv[2:])
        return
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
    signal.signal(signal.SIGTERM, _terminate)
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
        ok = section_capacity(args.handshakes, args.rounds, args.tolerance)
    if not ok or failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Live benchmark: smctrace -i on a veth pair between two private network namespaces.

Three sections (all by default, or name them):

  overhead  A small-packet TCP flood (iperf3, 64-byte writes with TCP_NODELAY, veth MTU 200,
            gso_max_segs 1, so every segment is a separate frame of at most 214 bytes)
            through the veth pair, with nothing, ``smctrace -i`` (bcc and cbpf backends)
            and ``tcpdump -i IF -w /dev/null tcp`` attached to the receiving end, rounds
            interleaved.  Per run: the tracer's CPU time (all its threads, from
            /proc/PID/task/*/schedstat, nanoseconds) over the flood window as % of one
            core, and iperf3's received throughput and the veth's frames/s.  smctrace must
            receive 0 frames in user space (its summary) while its filter sees the flood.
  capacity  20,000 SMC-D handshakes (SYN+option, SYN-ACK+option, ACK, the real Proposal,
            Accept and Confirm of tests/data/real-kernel/C-smcd-loopback-ism-k612lo.pcap,
            FIN; distinct addresses and ports, built with bench_offline.smc_handshake) sent
            from an AF_PACKET socket with sendmmsg(2) into one end of the veth pair,
            ``smctrace -i --json`` on the other end: at top speed, then paced at the target
            rate (bcc), then paced below the decoder's own speed (``smctrace -f`` on the same
            frames, measured first) where nothing may be lost.  Reports handshakes/s sent,
            handshakes/s traced (first frame sent to last connection event out),
            connections with outcome smc, the summary's ``dropped`` counter (plus frames
            the veth itself dropped) and tracer CPU per handshake.  Finally the capture
            path alone (LiveCapture.frames() with the bcc filter, no decoding) on the same
            frames, to tell capture limits from decoder limits.
  startup   Launch to attached, per backend, median of 5: LiveCapture.attach_seconds (the
            attach itself) in a fresh process, and the wall time from spawning
            ``smctrace -i`` to its "tracing on" line on stderr (includes interpreter start-up
            and imports).

Everything runs inside two network namespaces this script creates (smcbench-<pid>-tx/-rx)
and deletes on exit, also on Ctrl-C or SIGTERM; no traffic leaves them.  Needs root,
iproute2, tcpdump, iperf3 (the Makefile's set-up installs it)
and BCC (python3-bpfcc).  Takes about 2.5 minutes (--quick: about 1.2).

Usage: scripts/bench_live.py [overhead|capacity|startup|all] [--quick] [--repeat R]
           [--duration S] [--handshakes N] [--mix]
Exits non-zero if a correctness check fails (non-SMC frames reached user space, handshakes
traced with the wrong outcome, a tracer did not start); performance targets are printed as
met / NOT met.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_offline import real_clc_messages, smc_handshake  # noqa: E402

PYTHON = sys.executable
SMCTRACE = str(Path(PYTHON).parent / "smctrace")
if not Path(SMCTRACE).exists():
    SMCTRACE = shutil.which("smctrace") or "smctrace"

TX_ADDR, RX_ADDR = "10.213.0.1", "10.213.0.2"  # only ever inside the two namespaces
IPERF_PORT = 5201
FLOOD_MTU = 200  # small frames: MSS 148, frames <= 214 bytes
CPU_TARGET = 1.0  # % of one core
TCPDUMP_RATIO_TARGET = 50.0
RATE_TARGET = 10_000  # handshakes/s traced, none lost
STARTUP_TARGETS = {"bcc": 1.0, "cbpf": 0.1}
SLOW_SECONDS = 4  # length of the run paced below the decoder's speed
OFFLINE_SAMPLE = 2000  # handshakes decoded offline as a reference
IDLE_WINDOW = 1.5  # seconds of no traffic before each flood, to measure a tracer's floor

failures: list[str] = []


def fail(message: str) -> None:
    failures.append(message)
    print(f"CHECK FAILED: {message}", flush=True)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def run(*cmd: str, timeout: float = 20) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


# -- network namespaces ---------------------------------------------------------------------


class Lab:
    """Two namespaces joined by a veth pair: tx (sender) and rx (receiver, tracer)."""

    def __init__(self) -> None:
        pid = os.getpid()
        self.tx_ns, self.rx_ns = f"smcbench-{pid}-tx", f"smcbench-{pid}-rx"
        self.tx_if, self.rx_if = f"sb{pid}t", f"sb{pid}r"  # < 16 characters
        self.created: list[str] = []

    def __enter__(self) -> Lab:
        try:
            for ns in (self.tx_ns, self.rx_ns):
                run("ip", "netns", "add", ns)
                self.created.append(ns)
                run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "link", "add", self.tx_if, "netns", self.tx_ns, "type", "veth",
                "peer", "name", self.rx_if, "netns", self.rx_ns)
            for ns, dev, addr in ((self.tx_ns, self.tx_if, TX_ADDR),
                                  (self.rx_ns, self.rx_if, RX_ADDR)):
                run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
                # One frame per TCP segment, however the sender writes.
                run("ip", "-n", ns, "link", "set", dev, "mtu", str(FLOOD_MTU),
                    "gso_max_segs", "1", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self.created:
            ns = self.created.pop()
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)

    def netns(self, ns: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *cmd]

    def counters(self) -> dict[str, int]:
        """Statistics of the receiving veth end (read through the namespace)."""
        out = run(*self.netns(self.rx_ns, "cat", *(
            f"/sys/class/net/{self.rx_if}/statistics/{name}"
            for name in ("rx_packets", "tx_packets", "rx_dropped"))))
        rx, tx, dropped = (int(v) for v in out.split())
        return {"rx": rx, "tx": tx, "rx_dropped": dropped}

    def set_mtu(self, mtu: int) -> None:
        run("ip", "-n", self.tx_ns, "link", "set", self.tx_if, "mtu", str(mtu))
        run("ip", "-n", self.rx_ns, "link", "set", self.rx_if, "mtu", str(mtu))


# -- processes under test -------------------------------------------------------------------

live_processes: list[subprocess.Popen[bytes]] = []


def spawn(cmd: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)  # type: ignore[call-overload]
    live_processes.append(proc)
    return proc


def reap(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 15) -> None:
    """Signal one process we started and wait for it; SIGKILL if it does not go."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    if proc in live_processes:
        live_processes.remove(proc)


def reap_all() -> None:
    for proc in list(live_processes):
        reap(proc, signal.SIGTERM, 5)


def cpu_ns(pid: int) -> int:
    """CPU time (user + system) of all threads of a process, nanoseconds."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/schedstat") as fh:
            total += int(fh.read().split()[0])
    return total


class Tracer:
    """A tracer process (smctrace or tcpdump) with its output read by threads."""

    def __init__(self, name: str, cmd: list[str], ready: str) -> None:
        self.name, self.cmd, self.ready_text = name, cmd, ready
        self.ready = threading.Event()
        self.ready_at = 0.0
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        # arrival of each {"event": "connection"} (or the capture probe's "progress") line
        self.event_times: list[float] = []
        self.started_at = time.monotonic()
        self.proc = spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
        self._threads = [threading.Thread(target=self._read_err, daemon=True),
                         threading.Thread(target=self._read_out, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.stderr.append(line)
            if self.ready_text in line and not self.ready.is_set():
                self.ready_at = time.monotonic()
                self.ready.set()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            if line.startswith(('{"event": "connection"', '{"event": "progress"')):
                self.event_times.append(time.monotonic())
            self.stdout.append(line)

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                reap(self.proc)
                raise RuntimeError(f"{self.name} did not start: {' | '.join(self.stderr)}")

    def stop(self, timeout: float = 20) -> None:
        reap(self.proc, signal.SIGINT, timeout)
        for thread in self._threads:
            thread.join(5)

    def summary(self) -> dict[str, object]:
        """smctrace --json: the summary line; tcpdump: its three counters."""
        if not self.name.startswith("tcpdump"):
            for line in reversed(self.stdout):
                if line.startswith('{"event": "summary"'):
                    return dict(json.loads(line))
            raise RuntimeError(f"{self.name} printed no summary: {' | '.join(self.stderr)}")
        text = "\n".join(self.stderr)
        out: dict[str, object] = {}
        for key, pattern in (("captured", r"(\d+) packets? captured"),
                             ("received", r"(\d+) packets? received by filter"),
                             ("dropped", r"(\d+) packets? dropped by kernel")):
            m = re.search(pattern, text)
            out[key] = int(m.group(1)) if m else -1
        return out


def smctrace_cmd(lab: Lab, backend: str) -> list[str]:
    return lab.netns(lab.rx_ns, SMCTRACE, "-i", lab.rx_if, "--backend", backend, "--json")


def start_tracer(lab: Lab, name: str) -> Tracer:
    if name == "tcpdump":
        cmd = lab.netns(lab.rx_ns, "tcpdump", "-i", lab.rx_if, "-w", "/dev/null", "tcp")
        tracer = Tracer(name, cmd, "listening on")
    else:
        backend = name.split("/")[1]
        tracer = Tracer(name, smctrace_cmd(lab, backend), "tracing on")
    tracer.wait_ready()
    return tracer


# -- 1. overhead ----------------------------------------------------------------------------


@dataclass
class FloodRun:
    mbps: float
    fps: float  # frames/s through the receiving veth end (both directions)
    cpu_pct: float | None  # tracer CPU over the flood window, % of one core
    summary: dict[str, object] = field(default_factory=dict)
    frames: int = 0
    idle_pct: float | None = None  # tracer CPU with no traffic, % of one core
    retransmits: int = 0  # iperf3's TCP retransmissions (diagnoses an odd round)
    veth_dropped: int = 0


def flood_once(lab: Lab, tracer_name: str, duration: float) -> FloodRun:
    tracer = start_tracer(lab, tracer_name) if tracer_name != "none" else None
    idle_pct = None
    try:
        time.sleep(0.3)
        if tracer:  # the tracer's floor: CPU with no traffic at all
            c0, i0 = cpu_ns(tracer.proc.pid), time.monotonic()
            time.sleep(IDLE_WINDOW)
            idle_pct = (cpu_ns(tracer.proc.pid) - c0) / 1e9 / (time.monotonic() - i0) * 100
        client = lab.netns(lab.tx_ns, "iperf3", "-c", RX_ADDR, "-p", str(IPERF_PORT), "-t",
                           str(duration), "-l", "64", "-N", "-J")
        before = lab.counters()
        cpu0 = cpu_ns(tracer.proc.pid) if tracer else 0
        t0 = time.monotonic()
        proc = spawn(client, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=duration + 20)
        finally:
            reap(proc)
        t1 = time.monotonic()
        cpu1 = cpu_ns(tracer.proc.pid) if tracer else 0
        after = lab.counters()
        if proc.returncode != 0:
            raise RuntimeError(f"iperf3 failed: {err.decode()[-300:]} {out.decode()[-300:]}")
        report = json.loads(out)
        frames = after["rx"] + after["tx"] - before["rx"] - before["tx"]
        result = FloodRun(
            mbps=report["end"]["sum_received"]["bits_per_second"] / 1e6,
            fps=frames / (t1 - t0),
            cpu_pct=(cpu1 - cpu0) / 1e9 / (t1 - t0) * 100 if tracer else None,
            frames=frames,
            idle_pct=idle_pct,
            retransmits=int(report["end"]["sum_sent"].get("retransmits", -1)),
            veth_dropped=after["rx_dropped"] - before["rx_dropped"],
        )
    finally:
        if tracer:
            tracer.stop()
    if tracer:
        result.summary = tracer.summary()
    return result


def section_overhead(lab: Lab, repeat: int, duration: float, backends: Sequence[str]) -> None:
    print(f"\n== overhead: iperf3 -l 64 -N for {duration:g} s over veth MTU {FLOOD_MTU}, "
          f"{repeat} rounds ==", flush=True)
    names = ["none", *(f"smctrace/{b}" for b in backends), "tcpdump"]
    results: dict[str, list[FloodRun]] = {name: [] for name in names}
    server = spawn(lab.netns(lab.rx_ns, "iperf3", "-s", "-B", RX_ADDR, "-p", str(IPERF_PORT)),
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
        if name.startswith("smctrace"):
            for i, run_ in enumerate(results[name]):
                s = run_.summary
                print(f"  {name} round {i + 1}: summary frames={s['frames']} "
                      f"received={s['received']} kept={s['kept']} "
                      f"seen_by_filter={s['seen_by_filter']} dropped={s['dropped']} "
                      f"(flood: {run_.frames} frames on the veth)")
                if s["received"] != 0 or s["frames"] != 0:
                    fail(f"{name}: non-SMC flood frames reached user space: {s}")
                seen = s["seen_by_filter"]
                if seen is not None and int(seen) < run_.frames // 2:  # type: ignore[call-overload]
                    fail(f"{name}: filter saw only {seen} of {run_.frames} flood frames")
        elif name == "tcpdump":
            for i, run_ in enumerate(results[name]):
                print(f"  tcpdump round {i + 1}: {run_.summary}")

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
              f"{cpu - idle:+.3f}% (idle floor = the poll loop's periodic wake-ups)")
        print(f"target {name}: CPU < {CPU_TARGET:g}% of a core -> {cpu:.3f}% "
              f"{verdict(cpu < CPU_TARGET)}")
        print(f"target {name}: CPU >= {TCPDUMP_RATIO_TARGET:g}x below tcpdump "
              f"({dump_cpu:.2f}%) -> {ratio:.0f}x {verdict(ratio >= TCPDUMP_RATIO_TARGET)}")
        print(f"target {name}: throughput within noise of no tracer -> median "
              f"{med(mbps):.1f} vs {base:.1f} Mbit/s ({-diff / base * 100:+.1f}%), spread "
              f"{noise:.1f} Mbit/s {verdict(diff <= noise)}")


# -- 2. capacity ----------------------------------------------------------------------------


class _Fixed(random.Random):
    """Makes bench_offline.smc_handshake always choose the same kind (0.3: SMC-D)."""

    def random(self) -> float:
        return 0.3


def build_handshakes(count: int, mix: bool) -> tuple[list[list[bytes]], list[str]]:
    """The frames of each handshake, and each handshake's expected outcome."""
    clc = real_clc_messages()
    handshakes: list[list[bytes]] = []
    outcomes: list[str] = []
    rng: random.Random = random.Random(11) if mix else _Fixed()
    for n in range(count):
        frames: list[bytes] = []
        # smc_handshake numbers clients 192.168.x.y from n; keep 0.0 and .255 out.
        outcomes.append(smc_handshake(frames.append, clc, n + 257, rng))
        handshakes.append(frames)
    return handshakes, outcomes


def write_blob(handshakes: list[list[bytes]]) -> Path:
    """Frames for the sender: 2-byte length + frame, one after the other."""
    with tempfile.NamedTemporaryFile(prefix="smcbench-", suffix=".bin", delete=False) as fh:
        for frames in handshakes:
            for frame in frames:
                fh.write(struct.pack("!H", len(frame)) + frame)
    return Path(fh.name)


def sender_main(argv: list[str]) -> None:
    """Hidden subcommand, run inside the tx namespace: send frames with sendmmsg(2)."""
    ap = argparse.ArgumentParser(prog="bench_live.py _send")
    ap.add_argument("iface")
    ap.add_argument("blob")
    ap.add_argument("--rate", type=float, default=0.0, help="frames/s, 0 = top speed")
    args = ap.parse_args(argv)
    data = Path(args.blob).read_bytes()
    offsets: list[tuple[int, int]] = []
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from("!H", data, pos)
        offsets.append((pos + 2, length))
        pos += 2 + length
    buf = ctypes.create_string_buffer(data, len(data))
    base = ctypes.addressof(buf)

    class Iovec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

    class Msghdr(ctypes.Structure):
        _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                    ("iov", ctypes.POINTER(Iovec)), ("iovlen", ctypes.c_size_t),
                    ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                    ("flags", ctypes.c_int)]

    class Mmsghdr(ctypes.Structure):
        _fields_ = [("hdr", Msghdr), ("len", ctypes.c_uint)]

    n = len(offsets)
    iovs = (Iovec * n)()
    msgs = (Mmsghdr * n)()
    for i, (off, length) in enumerate(offsets):
        iovs[i].base, iovs[i].len = base + off, length
        msgs[i].hdr.iov = ctypes.pointer(iovs[i])
        msgs[i].hdr.iovlen = 1
    libc = ctypes.CDLL(None, use_errno=True)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((args.iface, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    print("ready", flush=True)
    sys.stdin.readline()  # the parent says go
    batch = 7 * 16
    sent = retries = 0
    start = time.perf_counter()
    while sent < n:
        if args.rate:
            due = start + sent / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        want = min(batch, n - sent)
        got = libc.sendmmsg(sock.fileno(), ctypes.byref(msgs, sent * ctypes.sizeof(Mmsghdr)),
                            want, 0)
        if got < 0:
            retries += 1
            if retries > 100_000:
                raise SystemExit(f"sendmmsg: {os.strerror(ctypes.get_errno())}")
            time.sleep(0.0001)
            continue
        sent += got
    seconds = time.perf_counter() - start
    print(json.dumps({"frames": sent, "seconds": seconds, "retries": retries}), flush=True)


@dataclass
class CapacityRun:
    label: str
    handshakes: int
    expected: dict[str, int]
    send_s: float
    traced_s: float  # first frame sent to last connection event read
    summary: dict[str, object]
    veth: dict[str, int]
    cpu_s: float  # tracer CPU from the first frame sent until it caught up
    target: bool  # whether the >= RATE_TARGET target applies to this run

    @property
    def outcomes(self) -> dict[str, int]:
        outcomes = self.summary["outcomes"]
        assert isinstance(outcomes, dict)
        return outcomes

    @property
    def traced(self) -> int:
        return int(self.outcomes["smc"] + self.outcomes["fallback"])


CAPTURE_PROBE = """
import json, signal, sys, time
from smctrace.live import LiveCapture
capture = LiveCapture([sys.argv[1]], backend=sys.argv[2])
capture.attach()
print("tracing on (capture probe)", file=sys.stderr, flush=True)
stop = []
signal.signal(signal.SIGINT, lambda *_: stop.append(1))
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
frames, last = 0, 0.0
for frame in capture.frames(lambda: bool(stop)):
    if frame is not None:
        frames += 1
        last = time.monotonic()
        if frames % 1000 == 0:
            print('{"event": "progress"}', flush=True)
capture.close()
print(json.dumps({"event": "summary", "frames": frames, "last": last, **capture.stats()}))
"""


def capture_probe_cmd(lab: Lab, backend: str) -> list[str]:
    """LiveCapture.frames() alone, no decoding: the live capture path's own capacity."""
    return lab.netns(lab.rx_ns, PYTHON, "-c", CAPTURE_PROBE, lab.rx_if, backend)


def capacity_once(lab: Lab, handshakes: list[list[bytes]], outcomes: list[str], backend: str,
                  rate_hs: float, label: str, target: bool,
                  probe: bool = False) -> CapacityRun:
    frames_total = sum(len(frames) for frames in handshakes)
    expected = {"smc": outcomes.count("smc"), "fallback": outcomes.count("fallback")}
    blob = write_blob(handshakes)
    if probe:
        tracer = Tracer("capture probe", capture_probe_cmd(lab, backend), "tracing on")
        tracer.wait_ready()
    else:
        tracer = start_tracer(lab, f"smctrace/{backend}")
    sender = None
    try:
        rate_frames = rate_hs * frames_total / len(handshakes)
        cmd = lab.netns(lab.tx_ns, PYTHON, str(Path(__file__).resolve()), "_send", lab.tx_if,
                        str(blob), "--rate", str(rate_frames))
        sender = spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert sender.stdin is not None and sender.stdout is not None
        ready, _, _ = select.select([sender.stdout], [], [], 30)
        if not ready or sender.stdout.readline().strip() != b"ready":
            raise RuntimeError("sender did not get ready")
        before = lab.counters()
        cpu0 = cpu_ns(tracer.proc.pid)
        t0 = time.monotonic()
        sender.stdin.write(b"go\n")
        sender.stdin.flush()
        ready, _, _ = select.select([sender.stdout], [], [], 120)
        if not ready:
            raise RuntimeError("sender did not finish in 120 s")
        sent = json.loads(sender.stdout.readline())
        sender.stdin.close()
        sender.wait(10)
        # Wait until the tracer has caught up: every connection out, or 3 s without news.
        deadline = time.monotonic() + 120
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = len(tracer.event_times)
            if count >= (frames_total // 1000 if probe else len(handshakes)):
                break
            if count != last:
                last, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > 3:
                break
            time.sleep(0.05)
        after = lab.counters()
        cpu_s = (cpu_ns(tracer.proc.pid) - cpu0) / 1e9
    finally:
        blob.unlink(missing_ok=True)
        if sender is not None:
            reap(sender, signal.SIGTERM)
        tracer.stop(60)
    events = tracer.event_times
    traced_s = (events[-1] - t0) if events else float("nan")
    summary = tracer.summary()
    if probe:  # the time of the last frame, not of the last progress line
        traced_s = float(summary["last"]) - t0  # type: ignore[arg-type]
    veth = {k: after[k] - before[k] for k in after}
    veth["sent"] = int(sent["frames"])
    if veth["sent"] != frames_total:
        fail(f"{label}: sender sent {veth['sent']} of {frames_total} frames")
    return CapacityRun(label, len(handshakes), expected, float(sent["seconds"]), traced_s,
                       summary, veth, cpu_s, target)


def offline_rate(frames: list[bytes], handshakes: int) -> float:
    """Handshakes/s of ``smctrace -f FILE --json`` on these frames: the decoder's speed
    without any capture in front of it."""
    from smctrace.capture.pcapwriter import PcapWriter

    with tempfile.NamedTemporaryFile(prefix="smcbench-", suffix=".pcap") as fh:
        writer = PcapWriter(fh, 1)
        for i, frame in enumerate(frames):
            writer.write(1_800_000_000 + i * 1e-5, frame)
        fh.flush()
        start = time.perf_counter()
        subprocess.run([SMCTRACE, "-f", fh.name, "--json"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True, timeout=120)
        return handshakes / (time.perf_counter() - start)


def section_capacity(lab: Lab, count: int, mix: bool, backends: Sequence[str],
                     paced: bool) -> None:
    print(f"\n== capacity: {count} SMC handshakes replayed through the veth pair ==",
          flush=True)
    lab.set_mtu(1500)  # CLC messages make frames of up to ~300 bytes
    t = time.monotonic()
    handshakes, outcomes = build_handshakes(count, mix)
    frames_total = sum(len(frames) for frames in handshakes)
    print(f"  built {frames_total} frames ({frames_total / count:.1f} per handshake) in "
          f"{time.monotonic() - t:.1f} s; expected outcomes: {outcomes.count('smc')} smc, "
          f"{outcomes.count('fallback')} fallback", flush=True)
    sample = min(OFFLINE_SAMPLE, count)
    offline = offline_rate([f for frames in handshakes[:sample] for f in frames], sample)
    print(f"  reference: smctrace -f on the first {sample} handshakes (the decoder alone, no "
          f"capture): {offline:.0f} handshakes/s", flush=True)
    plans: list[tuple[str, str, float, int, bool]] = []
    for backend in backends:
        plans.append((backend, "top speed", 0.0, count, True))
        if paced and backend == "bcc":
            plans.append((backend, f"paced {RATE_TARGET}/s", float(RATE_TARGET), count, True))
            # below the decoder's speed: shows that losses above it are capacity, not bugs
            slow = max(100, int(offline * 0.6) // 100 * 100)
            plans.append((backend, f"paced {slow}/s", float(slow),
                          min(count, slow * SLOW_SECONDS), False))
    runs: list[CapacityRun] = []
    try:
        for backend, label, rate, n, target in plans:
            res = capacity_once(lab, handshakes[:n], outcomes[:n], backend, rate,
                                f"{backend} {label}", target)
            runs.append(res)
            print(f"  {res.label}: {res.handshakes} handshakes sent in {res.send_s:.2f} s, "
                  f"last connection out after {res.traced_s:.2f} s; summary {res.summary}; "
                  f"veth {res.veth}", flush=True)
        probes: list[CapacityRun] = []
        if "bcc" in backends:
            for label, rate in (("top speed", 0.0), (f"paced {RATE_TARGET}/s", RATE_TARGET)):
                res = capacity_once(lab, handshakes, outcomes, "bcc", rate,
                                    f"bcc {label}", False, probe=True)
                probes.append(res)
                print(f"  capture only, {res.label}: {res.summary}; veth {res.veth}",
                      flush=True)
    finally:
        lab.set_mtu(FLOOD_MTU)

    print(f"\n{'run':22} {'hs':>6} {'sent hs/s':>10} {'traced hs/s':>12} {'smc':>6} "
          f"{'fallbk':>6} {'failed':>6} {'incompl':>7} {'dropped':>8} {'veth drop':>9} "
          f"{'lost':>6} {'CPU s':>6} {'us/hs':>6}")
    for res in runs:
        s, o = res.summary, res.outcomes
        lost = res.handshakes - res.traced
        print(f"{res.label:22} {res.handshakes:6} {res.handshakes / res.send_s:10.0f} "
              f"{res.traced / res.traced_s:12.0f} {o['smc']:6} {o['fallback']:6} "
              f"{o['failed']:6} {o['incomplete']:7} {s['dropped']!s:>8} "
              f"{res.veth['rx_dropped']:9} {lost:6} {res.cpu_s:6.1f} "
              f"{res.cpu_s / res.handshakes * 1e6:6.0f}")
        if lost == 0 and (o["smc"], o["fallback"]) != (res.expected["smc"],
                                                       res.expected["fallback"]):
            fail(f"{res.label}: outcomes {o} differ from expected {res.expected}")
        if lost > 0 and not (s["dropped"] or res.veth["rx_dropped"]):
            # a loss no counter explains is a correctness problem, not a speed one
            fail(f"{res.label}: {lost} handshakes missing but no drop was counted: {s}")
    print("  (traced hs/s = handshakes with an outcome / time from the first frame sent to "
          "the last connection event; us/hs = tracer CPU per handshake sent)")
    print()
    for res in runs:
        rate = res.traced / res.traced_s
        lost = res.handshakes - res.traced
        if res.target:
            ok = lost == 0 and rate >= RATE_TARGET
            print(f"target {res.label}: >= {RATE_TARGET} handshakes/s traced, none lost -> "
                  f"{rate:.0f}/s, {lost} lost {verdict(ok)}")
        else:
            print(f"check {res.label} (below the decoder's speed): none lost -> {lost} lost "
                  f"{'ok' if lost == 0 else 'LOST'}")
            if lost:
                fail(f"{res.label}: {lost} handshakes lost below the decoder's speed")
    if probes:
        print("\nthe live capture path alone (LiveCapture.frames(), bcc filter, no decoding):")
        print(f"{'run':22} {'frames sent':>12} {'kept':>8} {'read':>8} {'dropped':>8} "
              f"{'read/s':>9} {'= hs/s':>7} {'CPU s':>6}")
        for res in probes:
            s = res.summary
            read, kept = int(s["frames"]), int(s["kept"])  # type: ignore[call-overload]
            per_hs = kept / res.handshakes
            print(f"{res.label:22} {res.veth['sent']:12} {kept:8} {read:8} {s['dropped']!s:>8} "
                  f"{read / res.traced_s:9.0f} {read / per_hs / res.traced_s:7.0f} "
                  f"{res.cpu_s:6.1f}")


# -- 3. start-up ----------------------------------------------------------------------------

API_PROBE = """
import json, sys, time
t0 = time.monotonic()
from smctrace.live import LiveCapture
t1 = time.monotonic()
c = LiveCapture([sys.argv[1]], backend=sys.argv[2])
c.attach()
c.close()
print(json.dumps({"import": t1 - t0, "attach": c.attach_seconds, "used": c.backend_used}))
"""


def section_startup(lab: Lab, samples: int) -> None:
    print(f"\n== start-up: launch to attached on {lab.rx_if}, median of {samples} ==",
          flush=True)
    rows = []
    for backend in ("bcc", "cbpf"):
        api, imports, cli = [], [], []
        for _ in range(samples):
            out = run(*lab.netns(lab.rx_ns, PYTHON, "-c", API_PROBE, lab.rx_if, backend),
                      timeout=30)
            probe = json.loads(out.strip().splitlines()[-1])
            if probe["used"] != backend:
                fail(f"start-up: asked for {backend}, got {probe['used']}")
            api.append(probe["attach"])
            imports.append(probe["import"])
            tracer = Tracer(f"smctrace/{backend}", smctrace_cmd(lab, backend), "tracing on")
            try:
                tracer.wait_ready(30)
                cli.append(tracer.ready_at - tracer.started_at)
            finally:
                tracer.stop()
        rows.append((backend, statistics.median(api), min(api), max(api),
                     statistics.median(imports), statistics.median(cli)))
    print(f"\n{'backend':8} {'attach s (API)':>15} {'(min-max)':>15} {'import s':>9} "
          f"{'CLI launch->tracing on s':>25} {'CLI - attach':>13}")
    for backend, api_med, api_min, api_max, imp, cli_med in rows:
        print(f"{backend:8} {api_med:15.3f} {f'({api_min:.3f}-{api_max:.3f})':>15} {imp:9.3f} "
              f"{cli_med:25.3f} {cli_med - api_med:13.3f}")
    print("  (CLI - attach: process start-up, imports and argument parsing; a difference of "
          "medians of separate launches, so noisy for bcc)")
    print()
    for backend, api_med, *_rest in rows:
        target = STARTUP_TARGETS[backend]
        print(f"target {backend}: attach < {target:g} s -> {api_med:.3f} s "
              f"{verdict(api_med < target)}")


# -- main -----------------------------------------------------------------------------------


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def teardown() -> Iterator[None]:
    try:
        yield
    finally:
        reap_all()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_send":
        sender_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="Sections: overhead, capacity, startup (default: all).")
    # no choices=: argparse checks an empty nargs="*" list against them (bpo-9625)
    ap.add_argument("sections", nargs="*", metavar="SECTION",
                    help="overhead, capacity, startup or all (default: all)")
    ap.add_argument("--quick", action="store_true",
                    help="2 rounds of 3 s floods, 5,000 handshakes, 3 start-up samples")
    ap.add_argument("--repeat", type=int, help="overhead rounds (default 3)")
    ap.add_argument("--duration", type=float, help="seconds per flood (default 4)")
    ap.add_argument("--handshakes", type=int, help="capacity handshakes (default 20000)")
    ap.add_argument("--mix", action="store_true",
                    help="capacity: bench_offline's mix (SMC-D, SMC-R, Decline, no-option "
                         "fallback) instead of SMC-D only")
    ap.add_argument("--no-cbpf", action="store_true", help="bcc backend only")
    ap.add_argument("--no-paced", action="store_true",
                    help=f"capacity: skip the run paced at {RATE_TARGET} handshakes/s")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, AF_PACKET, BPF)")
    for tool in ("ip", "tcpdump", "iperf3"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (apt-get install iproute2 tcpdump iperf3)")
    chosen = set(args.sections or ["all"])
    unknown = chosen - {"all", "overhead", "capacity", "startup"}
    if unknown:
        ap.error(f"unknown section(s) {', '.join(sorted(unknown))}")
    sections = {"overhead", "capacity", "startup"} if "all" in chosen else chosen
    repeat = args.repeat or (2 if args.quick else 3)
    duration = args.duration or (3.0 if args.quick else 4.0)
    handshakes = args.handshakes or (5000 if args.quick else 20_000)
    backends = ["bcc"] if args.no_cbpf else ["bcc", "cbpf"]
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    print(f"smctrace: {SMCTRACE}; kernel {os.uname().release}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}")
    try:
        with teardown(), Lab() as lab:
            print(f"namespaces {lab.tx_ns} ({lab.tx_if}, {TX_ADDR}) <-> {lab.rx_ns} "
                  f"({lab.rx_if}, {RX_ADDR}); tracers on {lab.rx_if}")
            if "startup" in sections:
                section_startup(lab, 3 if args.quick else 5)
            if "overhead" in sections:
                section_overhead(lab, repeat, duration, backends)
            if "capacity" in sections:
                section_capacity(lab, handshakes, args.mix, backends,
                                 paced=not args.no_paced)
    except KeyboardInterrupt:
        print("\ninterrupted; namespaces removed", file=sys.stderr)
        raise SystemExit(130) from None
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if failures:
        print(f"{len(failures)} correctness check(s) failed:", *failures, sep="\n  ")
        raise SystemExit(1)


if __name__ == "__main__":
    main()

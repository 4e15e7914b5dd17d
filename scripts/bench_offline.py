#!/usr/bin/env python3
"""Offline benchmark: smctrace -f against tcpdump and tshark on one large mixed capture.

Generates (once, cached) a capture of about 1M Ethernet frames: many ordinary TCP flows
with realistic sizes (66-byte ACKs, 1514-byte data, some small requests) interleaved with a
few hundred SMC handshakes (SMC-D v2 and SMC-R v2 established, server Declines, SYN-ACKs
without the option).  Then times, side by side in one run:

    smctrace -f FILE --json > /dev/null
    tcpdump -r FILE -w /dev/null 'tcp[13]&2!=0'
    tshark -r FILE -Y smc > /dev/null

and prints wall time, frames/s, peak RSS and the ratio to tcpdump.  It also checks that
smctrace found exactly the handshakes that were generated, and reports peak RSS at two file
sizes to show that memory is flat in file size.

Usage: scripts/bench_offline.py [--frames N] [--repeat R] [--no-tshark] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from smctrace.capture.pcapwriter import PcapWriter  # noqa: E402
from smctrace.packet import ACK, FIN, PSH, SYN  # noqa: E402
from tests.support.synth import tcp_frame  # noqa: E402

REAL = REPO / "tests" / "data" / "real-kernel"
SEQ_OFFSET = 14 + 20 + 4  # Ethernet + IPv4 (no options) + TCP ports


@dataclass
class Expected:
    frames: int = 0
    smc: int = 0
    fallback: int = 0
    plain: int = 0


def real_clc_messages() -> dict[str, list[tuple[str, bytes]]]:
    """CLC payloads of real handshakes, taken from the bundled real-kernel captures."""
    sys.path.insert(0, str(REPO))
    from smctrace.capture.pcapfile import CaptureFile
    from smctrace.packet import parse_frame
    from smctrace.streams import starts_clc

    out: dict[str, list[tuple[str, bytes]]] = {}
    for name, key in (("C-smcd-loopback-ism-k612lo.pcap", "smcd"),
                      ("D2-smcr-v2-rxe-k612.pcap", "smcr"),
                      ("F2-smcr-server-no-rdma-k612.pcap", "decline")):
        msgs: list[tuple[str, bytes]] = []
        client_port = None
        with CaptureFile(str(REAL / name)) as cap:
            for frame in cap.frames():
                seg = parse_frame(frame)
                if seg is None:
                    continue
                if seg.flags & SYN and not seg.flags & ACK:
                    client_port = seg.sport
                if starts_clc(seg.payload):
                    msgs.append(("client" if seg.sport == client_port else "server",
                                 seg.payload))
        out[key] = msgs
    return out


@dataclass
class Flow:
    """An ordinary TCP flow: pre-built frames, only the data sequence number moves."""

    client: str
    cport: int
    sport: int
    left: int
    data: bytearray
    ack: bytes
    request: bytes
    seq: int = 5001
    server: str = "10.200.0.1"


def new_flow(flow_id: int, rng: random.Random, put: Callable[[bytes], None]) -> Flow:
    client = f"10.{(flow_id >> 16) & 255}.{(flow_id >> 8) & 255}.{flow_id & 255}"
    server = "10.200.0.1"
    cport, sport = 1024 + flow_id % 60000, rng.choice((80, 443, 5432, 6379))
    put(tcp_frame(client, server, cport, sport, flags=SYN, seq=1000))
    put(tcp_frame(server, client, sport, cport, flags=SYN | ACK, seq=5000, ack=1001))
    return Flow(client, cport, sport, rng.randint(8, 120),
                data=bytearray(tcp_frame(server, client, sport, cport, flags=ACK | PSH,
                                         seq=5001, payload=bytes(1448))),
                ack=tcp_frame(client, server, cport, sport, flags=ACK, seq=1001, ack=5001),
                request=tcp_frame(client, server, cport, sport, flags=ACK | PSH, seq=1001,
                                  payload=bytes(120)))


def generate(path: Path, frames: int, seed: int = 7) -> Expected:
    """Write the mixed capture; return what smctrace must find in it."""
    rng = random.Random(seed)
    clc = real_clc_messages()
    expected = Expected()
    smc_every = max(frames // 300, 50)  # a few hundred SMC handshakes per 1M frames
    t = 1_800_000_000.0
    written = 0
    flow_id = 0
    with path.open("wb") as fh:
        w = PcapWriter(fh, 1)

        def put(data: bytes) -> None:
            nonlocal t, written
            t += 0.00002
            w.write(t, data)
            written += 1

        active: list[Flow] = []
        while written < frames:
            if len(active) < 64:
                flow_id += 1
                active.append(new_flow(flow_id, rng, put))
                expected.plain += 1
            flow = rng.choice(active)
            kind = rng.random()
            if kind < 0.45:
                struct.pack_into("!I", flow.data, SEQ_OFFSET, flow.seq)
                flow.seq = (flow.seq + 1448) % (1 << 32)
                put(bytes(flow.data))
            else:
                put(flow.ack if kind < 0.9 else flow.request)
            flow.left -= 1
            if flow.left <= 0:
                active.remove(flow)
                put(tcp_frame(flow.client, flow.server, flow.cport, flow.sport,
                              flags=FIN | ACK, seq=1121))
            if written % smc_every == 0:
                outcome = smc_handshake(put, clc, written // smc_every, rng)
                setattr(expected, outcome, getattr(expected, outcome) + 1)
    expected.frames = written  # the last flow or handshake may overshoot the target
    return expected


def smc_handshake(put: Callable[[bytes], None], clc: dict[str, list[tuple[str, bytes]]],
                  n: int, rng: random.Random) -> str:
    """One SMC connection (SYN, SYN-ACK, CLC messages, FIN); returns its outcome."""
    client, server = f"192.168.{(n >> 8) & 255}.{n & 255}", "192.168.255.1"
    cport, sport = 30000 + n % 30000, 7001
    choice = rng.random()
    put(tcp_frame(client, server, cport, sport, flags=SYN, seq=100, smc_option=True))
    if choice < 0.1:  # an ordinary TCP server answers: fallback without CLC
        put(tcp_frame(server, client, sport, cport, flags=SYN | ACK, seq=900, ack=101))
        put(tcp_frame(client, server, cport, sport, flags=FIN | ACK, seq=101))
        return "fallback"
    put(tcp_frame(server, client, sport, cport, flags=SYN | ACK, seq=900, ack=101,
                  smc_option=True))
    put(tcp_frame(client, server, cport, sport, flags=ACK, seq=101, ack=901))
    key = "smcd" if choice < 0.55 else "smcr" if choice < 0.85 else "decline"
    seq = {"client": 101, "server": 901}
    for sender, payload in clc[key]:
        a, b, pa, pb = ((client, server, cport, sport) if sender == "client"
                        else (server, client, sport, cport))
        put(tcp_frame(a, b, pa, pb, flags=ACK | PSH, seq=seq[sender], payload=payload))
        seq[sender] += len(payload)
    put(tcp_frame(client, server, cport, sport, flags=FIN | ACK, seq=seq["client"]))
    return "fallback" if key == "decline" else "smc"


def timed(cmd: list[str], stdout: int | None = subprocess.DEVNULL) -> tuple[float, int, bytes]:
    """Run a command; return (wall seconds, peak RSS in KiB, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if stdout is None else stdout,
                            stderr=subprocess.DEVNULL)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with status {status}")
    return wall, usage.ru_maxrss, out


def best_of(cmd: list[str], repeat: int) -> tuple[float, int]:
    runs = [timed(cmd) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/smctrace-bench"))
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    smctrace = str(Path(sys.executable).parent / "smctrace")
    if not Path(smctrace).exists():
        smctrace = shutil.which("smctrace") or "smctrace"

    files = {}
    for frames in (args.frames // 4, args.frames):
        path = args.dir / f"mixed-{frames}.pcap"
        meta = path.with_suffix(".json")
        if not (path.exists() and meta.exists()):
            print(f"generating {path} ({frames} frames) ...", flush=True)
            exp = generate(path, frames)
            meta.write_text(json.dumps(exp.__dict__))
        files[frames] = (path, Expected(**json.loads(meta.read_text())))

    path, exp = files[args.frames]
    size_mb = path.stat().st_size / 1e6
    print(f"\ncapture: {path} ({exp.frames} frames, {size_mb:.0f} MB); "
          f"expected SMC outcomes: {exp.smc} smc, {exp.fallback} fallback")

    # Correctness first: smctrace must find exactly the generated handshakes.
    _, _, out = timed([smctrace, "-f", str(path), "--json"], stdout=None)
    summary = json.loads(out.decode().strip().splitlines()[-1])
    got = summary["outcomes"]
    found = (got["smc"], got["fallback"], summary["plain_tcp"], summary["frames"])
    ok = found == (exp.smc, exp.fallback, exp.plain, exp.frames)
    print(f"smctrace found: {got}, {summary['plain_tcp']} plain TCP, in {summary['frames']} "
          f"frames -> {'OK' if ok else 'MISMATCH'}")

    rows = []
    tools = [("tcpdump", ["tcpdump", "-r", str(path), "-w", "/dev/null", "tcp[13]&2!=0"]),
             ("smctrace", [smctrace, "-f", str(path), "--json"])]
    if not args.no_tshark and shutil.which("tshark"):
        tools.append(("tshark", ["tshark", "-r", str(path), "-Y", "smc"]))
    for name, cmd in tools:
        wall, rss = best_of(cmd, 1 if name == "tshark" else args.repeat)
        rows.append((name, wall, rss))
    base = rows[0][1]
    print(f"\n{'tool':10} {'wall s':>8} {'Mframes/s':>10} {'peak RSS MiB':>13} {'x tcpdump':>10}")
    for name, wall, rss in rows:
        print(f"{name:10} {wall:8.3f} {args.frames / wall / 1e6:10.2f} {rss / 1024:13.1f} "
              f"{wall / base:10.2f}")
    small_path, _ = files[args.frames // 4]
    _, rss_small = best_of([smctrace, "-f", str(small_path), "--json"], 1)
    rss_big = next(r for n, _, r in rows if n == "smctrace")
    print(f"\nsmctrace peak RSS: {rss_small / 1024:.1f} MiB at {args.frames // 4} frames, "
          f"{rss_big / 1024:.1f} MiB at {args.frames} frames")
    smc_ratio = next(w for n, w, _ in rows if n == "smctrace") / base
    print(f"target: smctrace <= 2.5x tcpdump -> {smc_ratio:.2f}x "
          f"{'met' if smc_ratio <= 2.5 else 'NOT met'}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

"""Synthetic captures for the benchmarks, built from real CLC messages.

Every SMC handshake carries the bytes of a real kernel's messages (the captures in
tests/data/real-kernel), with the per-connection fields varied the way they vary on a
real host (DMB tokens, link IDs, QP numbers, rkeys, alert tokens, virtual addresses,
PSNs) and each client host's Proposal its own (its peer ID), so that no decoder can get
away with decoding one message once.

* :func:`mixed`: about 1M frames of ordinary TCP with a few hundred SMC handshakes;
* :func:`dense`: a busy SMC host: about 400,000 frames, 20,000 handshakes of the usual mix
  (SMC-D v2, SMC-R v2, server and client Declines, fallbacks without the option; IPv4 and
  IPv6) between ordinary traffic;
* :func:`syn_flood`: SYNs with the SMC option that no one answers (and a few real
  handshakes), :func:`proposal_flood`: mid-stream Proposals on distinct 4-tuples.

Each returns what smctrace must find (:class:`Expected`).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from smctrace.capture.pcapwriter import PcapWriter
from smctrace.match import rule
from smctrace.packet import ACK, FIN, PSH, SYN
from tests.support.real_messages import clc_messages
from tests.support.synth import tcp_frame

REPO = Path(__file__).resolve().parents[2]
REAL = REPO / "tests" / "data" / "real-kernel"
SEQ_OFFSET = 14 + 20 + 4  # Ethernet + IPv4 (no options) + TCP ports
Put = Callable[[bytes], None]


@dataclass
class Expected:
    frames: int = 0
    smc: int = 0
    fallback: int = 0
    failed: int = 0
    plain: int = 0
    messages: int = 0
    unanswered: int = 0
    midstream: int = 0  # mid-stream CLC messages without an answer, counted, not decoded
    kinds: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# Which real capture each kind of handshake takes its messages from.
KINDS = {
    "smcd": "C-smcd-loopback-ism-k612lo.pcap",  # SMC-D v2, loopback-ism
    "smcr": "D2-smcr-v2-rxe-k612.pcap",  # SMC-R v2
    "server_decline": "F2-smcr-server-no-rdma-k612.pcap",  # Proposal, server Decline
    "client_decline": "A-smc-lo-decline-k61.pcap",  # client Decline first
}
# Bytes varied per connection in an Accept/Confirm: (start, end) by path.
SMCD_VARIED = ((16, 24), (28, 32))  # DMB token, link ID
SMCR_VARIED = ((38, 41), (41, 45), (46, 50), (52, 60), (61, 64))  # QPN, rkey, token, VA, PSN


def real_clc_messages() -> dict[str, list[tuple[str, bytes]]]:
    """(sender, message bytes) of each kind's real handshake."""
    return {key: clc_messages(REAL / name) for key, name in KINDS.items()}


def vary(message: bytes, n: int, host: int) -> bytes:
    """A connection's own copy of a real message (fields that differ per connection or
    per host changed; nothing a decoder checks)."""
    data = bytearray(message)
    msg_type, path = data[4], data[7] & 0x03
    if msg_type == 1:  # Proposal: each client host has its own peer ID
        struct.pack_into("!Q", data, 8, 0x0100_0000_0000 + host)
    elif msg_type in (2, 3):
        spans = SMCD_VARIED if path == 1 else SMCR_VARIED
        for index, (start, end) in enumerate(spans):
            value = (n * 2654435761 + index * 40503) & ((1 << (8 * (end - start))) - 1)
            data[start:end] = value.to_bytes(end - start, "big")
    return bytes(data)


def pick_kind(rng: random.Random) -> str:
    """A handshake kind of the usual mix (SMC-D v2, SMC-R v2, Declines, no option)."""
    roll = rng.random()
    return ("smcd" if roll < 0.35 else "smcr" if roll < 0.60 else "server_decline"
            if roll < 0.75 else "client_decline" if roll < 0.85 else "no_option")


def _address(ipv6: bool, net: int, n: int) -> str:
    if ipv6:
        return f"fd00:{net:x}::{(n >> 16) & 0xFFFF:x}:{n & 0xFFFF:x}"
    return f"10.{net}.{(n >> 8) & 255}.{n & 255}"


def smc_handshake(put: Put, clc: dict[str, list[tuple[str, bytes]]], n: int,
                  rng: random.Random, *, kind: str | None = None, ipv6: bool = False,
                  hosts: int = 64) -> str:
    """One SMC connection (SYN, SYN-ACK, ACK, its CLC messages, FINs); returns its outcome
    (``fallback`` also for a server without the option)."""
    client, server = _address(ipv6, 20, n), _address(ipv6, 30, 1)
    cport, sport = 1024 + n % 60000, 7001
    host = n % hosts
    if kind is None:
        kind = pick_kind(rng)
    put(tcp_frame(client, server, cport, sport, flags=SYN, seq=100, smc_option=True))
    if kind == "no_option":  # an ordinary TCP server answers: fallback without CLC
        put(tcp_frame(server, client, sport, cport, flags=SYN | ACK, seq=900, ack=101))
        put(tcp_frame(client, server, cport, sport, flags=ACK, seq=101, ack=901))
        put(tcp_frame(client, server, cport, sport, flags=FIN | ACK, seq=101))
        return "fallback"
    put(tcp_frame(server, client, sport, cport, flags=SYN | ACK, seq=900, ack=101,
                  smc_option=True))
    put(tcp_frame(client, server, cport, sport, flags=ACK, seq=101, ack=901))
    seq = {"client": 101, "server": 901}
    for sender, payload in clc[kind]:
        a, b, pa, pb = ((client, server, cport, sport) if sender == "client"
                        else (server, client, sport, cport))
        message = vary(payload, n, host)
        put(tcp_frame(a, b, pa, pb, flags=ACK | PSH, seq=seq[sender], payload=message))
        seq[sender] += len(message)
        other = "server" if sender == "client" else "client"
        put(tcp_frame(b, a, pb, pa, flags=ACK, seq=seq[other], ack=seq[sender]))
    put(tcp_frame(client, server, cport, sport, flags=FIN | ACK, seq=seq["client"]))
    put(tcp_frame(server, client, sport, cport, flags=FIN | ACK, seq=seq["server"]))
    return "smc" if kind in ("smcd", "smcr") else "fallback"


@dataclass
class _Flow:
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


def _new_flow(flow_id: int, rng: random.Random, put: Put) -> _Flow:
    client = f"10.{(flow_id >> 16) & 255}.{(flow_id >> 8) & 255}.{flow_id & 255}"
    server = _Flow.server
    cport, sport = 1024 + flow_id % 60000, rng.choice((80, 443, 5432, 6379))
    put(tcp_frame(client, server, cport, sport, flags=SYN, seq=1000))
    put(tcp_frame(server, client, sport, cport, flags=SYN | ACK, seq=5000, ack=1001))
    return _Flow(client, cport, sport, rng.randint(8, 120),
                 data=bytearray(tcp_frame(server, client, sport, cport, flags=ACK | PSH,
                                          seq=5001, payload=bytes(1448))),
                 ack=tcp_frame(client, server, cport, sport, flags=ACK, seq=1001, ack=5001),
                 request=tcp_frame(client, server, cport, sport, flags=ACK | PSH, seq=1001,
                                   payload=bytes(120)))


class _Writer:
    def __init__(self, path: Path, step: float) -> None:
        self._file = path.open("wb")
        self._pcap = PcapWriter(self._file, 1)
        self.time = 1_800_000_000.0
        self.step = step
        self.written = 0

    def put(self, data: bytes) -> None:
        self.time += self.step
        self._pcap.write(self.time, data)
        self.written += 1

    def close(self) -> None:
        self._file.close()


def _ordinary(writer: _Writer, active: list[_Flow], rng: random.Random, state: dict[str, int],
              expected: Expected) -> None:
    """One frame of ordinary traffic (opening and closing flows as needed)."""
    if len(active) < 64:
        state["flow"] += 1
        active.append(_new_flow(state["flow"], rng, writer.put))
        expected.plain += 1
    flow = rng.choice(active)
    kind = rng.random()
    if kind < 0.45:
        struct.pack_into("!I", flow.data, SEQ_OFFSET, flow.seq)
        flow.seq = (flow.seq + 1448) % (1 << 32)
        writer.put(bytes(flow.data))
    else:
        writer.put(flow.ack if kind < 0.9 else flow.request)
    flow.left -= 1
    if flow.left <= 0:
        active.remove(flow)
        writer.put(tcp_frame(flow.client, flow.server, flow.cport, flow.sport,
                             flags=FIN | ACK, seq=1121))


def mixed(path: Path, frames: int, seed: int = 7) -> Expected:
    """Ordinary traffic with a few hundred SMC handshakes per 1M frames."""
    rng = random.Random(seed)
    clc = real_clc_messages()
    expected = Expected()
    writer = _Writer(path, 0.00002)
    smc_every = max(frames // 300, 50)
    active: list[_Flow] = []
    state = {"flow": 0, "handshake": 0}
    try:
        while writer.written < frames:
            _ordinary(writer, active, rng, state, expected)
            if writer.written % smc_every == 0:
                state["handshake"] += 1
                _handshake(writer, clc, state["handshake"], rng, expected)
    finally:
        writer.close()
    expected.frames = writer.written
    return expected


def _handshake(writer: _Writer, clc: dict[str, list[tuple[str, bytes]]], n: int,
               rng: random.Random, expected: Expected, ipv6: bool = False) -> None:
    kind = pick_kind(rng)
    if kind == "smcr":
        ipv6 = False  # SMC-R v2 is IPv4 only
    outcome = smc_handshake(writer.put, clc, n, rng, kind=kind, ipv6=ipv6)
    setattr(expected, outcome, getattr(expected, outcome) + 1)
    expected.messages += len(clc.get(kind, []))
    expected.kinds[kind] = expected.kinds.get(kind, 0) + 1


def dense(path: Path, handshakes: int = 20_000, frames: int = 400_000,
          seed: int = 11) -> Expected:
    """A busy SMC host: ``handshakes`` handshakes between ordinary traffic, ``frames``
    frames in all; a third of the SMC-D and Decline handshakes over IPv6."""
    rng = random.Random(seed)
    clc = real_clc_messages()
    expected = Expected()
    writer = _Writer(path, 0.00005)
    active: list[_Flow] = []
    state = {"flow": 0}
    try:
        for n in range(1, handshakes + 1):
            _handshake(writer, clc, n, rng, expected, ipv6=n % 3 == 0)
            # ordinary frames between handshakes, so the total comes out at `frames`
            due = frames * n // handshakes
            while writer.written < due:
                _ordinary(writer, active, rng, state, expected)
    finally:
        writer.close()
    expected.frames = writer.written
    return expected


def syn_flood(path: Path, syns: int = 1_000_000, handshakes: int = 100,
              seed: int = 13) -> Expected:
    """``syns`` SYNs with the SMC option on distinct 4-tuples that nobody answers, with
    ``handshakes`` real handshakes spread among them."""
    rng = random.Random(seed)
    clc = real_clc_messages()
    expected = Expected(unanswered=syns)
    writer = _Writer(path, 0.000005)
    every = max(syns // max(handshakes, 1), 1)
    try:
        for n in range(syns):
            client = f"172.{16 + (n >> 16) % 16}.{(n >> 8) & 255}.{n & 255}"
            writer.put(tcp_frame(client, "10.30.0.1", 1024 + n % 60000, 7001, flags=SYN,
                                 seq=n, smc_option=True))
            if n % every == 0 and handshakes:
                _handshake(writer, clc, n // every + 1, rng, expected)
    finally:
        writer.close()
    expected.frames = writer.written
    return expected


def proposal_flood(path: Path, proposals: int = 1_000_000, seed: int = 17) -> Expected:
    """``proposals`` mid-stream Proposals (no SYN) on distinct 4-tuples, nothing else."""
    clc = real_clc_messages()
    proposal = clc["smcd"][0][1]
    expected = Expected()
    writer = _Writer(path, 0.000005)
    try:
        for n in range(proposals):
            client = f"172.{16 + (n >> 16) % 16}.{(n >> 8) & 255}.{n & 255}"
            writer.put(tcp_frame(client, "10.30.0.1", 1024 + n % 60000, 7001, flags=ACK | PSH,
                                 seq=n, payload=proposal))
    finally:
        writer.close()
    expected.frames = writer.written
    # No Proposal is answered: the engine holds the newest HELD_PICKUPS (decoded at the
    # end, connections incomplete) and counts the rest.
    expected.messages = min(proposals, rule.HELD_PICKUPS)
    expected.midstream = proposals - expected.messages
    return expected

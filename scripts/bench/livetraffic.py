"""Frames for the live benchmarks: SMC handshakes made from real CLC messages
(scripts/bench/captures.py), each with the outcome smctrace must report for it, and
floods of SYNs with the SMC option on distinct 4-tuples that nobody answers."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.captures import real_clc_messages, smc_handshake
from smctrace.capture.pcapwriter import PcapWriter
from smctrace.frame import LINKTYPE_ETHERNET, Frame
from smctrace.match.engine import Segment
from smctrace.packet import SYN, parse_frame
from tests.support.synth import ipv4_checksum, tcp_frame

FLOOD_SERVER = "10.30.0.2"  # the flood's target (never answered), not a handshake's server
SYN_SRC_OFFSET = 14 + 12  # Ethernet + the IPv4 source address
SYN_CHECKSUM_OFFSET = 14 + 10
SYN_SPORT_OFFSET = 14 + 20
SYN_SEQ_OFFSET = 14 + 24


class _Fixed(random.Random):
    """Makes captures.smc_handshake always choose the same kind (0.3: SMC-D v2)."""

    def random(self) -> float:
        return 0.3


@dataclass
class Handshakes:
    """Frames of each handshake and what smctrace must say about each connection."""

    frames: list[list[bytes]]
    outcomes: dict[tuple[str, str], str]  # (client, server) as in the JSON -> outcome
    kinds: dict[tuple[str, str], str]  # -> what kind of handshake it is

    @property
    def count(self) -> int:
        return len(self.frames)

    def flat(self) -> list[bytes]:
        return [frame for frames in self.frames for frame in frames]

    def head(self, count: int) -> Handshakes:
        keys = list(self.outcomes)[:count]
        return Handshakes(self.frames[:count], {key: self.outcomes[key] for key in keys},
                          {key: self.kinds[key] for key in keys})

    def by_kind(self, keys: Iterable[tuple[str, str]]) -> dict[str, int]:
        """How many of ``keys`` are of each kind."""
        out: dict[str, int] = {}
        for key in keys:
            out[self.kinds[key]] = out.get(self.kinds[key], 0) + 1
        return out


def _parse(data: bytes) -> Segment:
    seg = parse_frame(Frame(time=0.0, linktype=LINKTYPE_ETHERNET, data=data,
                            orig_len=len(data)))
    assert seg is not None
    return seg


def _endpoints(syn: bytes) -> tuple[str, str]:
    seg = _parse(syn)
    assert seg.flags & SYN
    return f"{seg.src}:{seg.sport}", f"{seg.dst}:{seg.dport}"


def _kind(frames: list[bytes], outcome: str) -> str:
    if not _parse(frames[1]).smc_option:
        return "fallback, SYN-ACK without the option"
    if outcome == "smc":
        return "smc"
    return "fallback, Decline"


def handshakes(count: int, *, mix: bool = False, first: int = 257) -> Handshakes:
    """``count`` SMC-D v2 handshakes (``mix``: the usual mix of SMC-D, SMC-R, server and
    client Declines and fallbacks without the option), on distinct 4-tuples."""
    clc = real_clc_messages()
    rng: random.Random = random.Random(11) if mix else _Fixed()
    frames: list[list[bytes]] = []
    outcomes: dict[tuple[str, str], str] = {}
    kinds: dict[tuple[str, str], str] = {}
    for n in range(first, first + count):
        mine: list[bytes] = []
        outcome = smc_handshake(mine.append, clc, n, rng)
        frames.append(mine)
        key = _endpoints(mine[0])
        outcomes[key] = outcome
        kinds[key] = _kind(mine, outcome)
    return Handshakes(frames, outcomes, kinds)


def syn_flood(count: int) -> list[bytes]:
    """``count`` SYNs with the SMC option from distinct sources (172.16.0.0/12, ports
    1024-61023) to FLOOD_SERVER:7001; IPv4 header checksums kept right."""
    template = bytearray(tcp_frame("172.16.0.0", FLOOD_SERVER, 1024, 7001, flags=SYN,
                                   smc_option=True))
    struct.pack_into("!H", template, SYN_CHECKSUM_OFFSET, 0)
    # the header's folded sum with source 172.16.0.0: what each SYN's checksum updates
    base = ~ipv4_checksum(bytes(template[14:34])) & 0xFFFF
    out: list[bytes] = []
    for n in range(count):
        host = n // 60000
        word_hi, word_lo = 0xAC10 + ((host >> 16) & 0x0F), host & 0xFFFF
        total = base + ((word_hi - 0xAC10) & 0xFFFF) + word_lo
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        struct.pack_into("!HH", template, SYN_SRC_OFFSET, word_hi, word_lo)
        struct.pack_into("!H", template, SYN_CHECKSUM_OFFSET, ~total & 0xFFFF)
        struct.pack_into("!HHI", template, SYN_SPORT_OFFSET, 1024 + n % 60000, 7001, n)
        out.append(bytes(template))
    return out


def between(flood: list[bytes], handshakes: Iterable[list[bytes]], count: int) -> list[bytes]:
    """The handshakes' frames spread evenly through the flood (each handshake's frames
    together, as a real one takes a few microseconds)."""
    every = max(len(flood) // max(count, 1), 1)
    out: list[bytes] = []
    pending = list(handshakes)
    for index, frame in enumerate(flood):
        if index % every == every // 2 and pending:
            out += pending.pop(0)
        out.append(frame)
    for frames in pending:
        out += frames
    return out


def write_pcap(path: Path, frames: Iterable[bytes]) -> None:
    """The frames as a pcap file for ``smctrace -f``, 10 us apart."""
    with path.open("wb") as out:
        writer = PcapWriter(out, LINKTYPE_ETHERNET)
        for index, frame in enumerate(frames):
            writer.write(1_800_000_000 + index * 1e-5, frame)


def outcomes_of(lines: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(client, server) -> outcome of every connection event smctrace wrote."""
    return {(line["client"], line["server"]): line["outcome"] for line in lines
            if line.get("event") == "connection"}


def compare(expected: dict[tuple[str, str], str], found: dict[tuple[str, str], str]
            ) -> tuple[list[tuple[str, str]], int, int]:
    """(lost, wrong, extra): sent connections without an outcome (their keys), how many
    with another outcome than sent, and how many reported that were never sent."""
    lost = [key for key in expected if key not in found]
    wrong = sum(1 for key, outcome in expected.items()
                if key in found and found[key] != outcome)
    extra = sum(1 for key in found if key not in expected)
    return lost, wrong, extra

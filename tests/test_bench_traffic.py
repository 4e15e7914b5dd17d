"""The live benchmark's traffic (scripts/bench/livetraffic.py) is what it claims: flood
SYNs on distinct 4-tuples that the rule sees as SMC SYNs, with valid IPv4 checksums, and
real handshakes whose expected outcomes ``smctrace -f`` agrees with."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

from smctrace.capture.pcapwriter import PcapWriter
from smctrace.frame import LINKTYPE_ETHERNET, Frame
from smctrace.packet import SYN, parse_frame

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from bench import livetraffic  # noqa: E402


def _checksum_ok(header: bytes) -> bool:
    total: int = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def test_syn_flood_distinct_smc_syns() -> None:
    syns = livetraffic.syn_flood(130_000)  # past two source addresses' worth of ports
    tuples = set()
    for data in syns[::997] + syns[-3:]:
        seg = parse_frame(Frame(time=0.0, linktype=LINKTYPE_ETHERNET, data=data,
                                orig_len=len(data)))
        assert seg is not None and seg.flags == SYN and seg.smc_option
        assert _checksum_ok(data[14:34])
        tuples.add((seg.src, seg.sport))
    assert len(tuples) == len(syns[::997]) + 3
    assert len({data[26:30] + data[34:36] for data in syns}) == len(syns)


def test_handshakes_and_their_outcomes(tmp_path: Path) -> None:
    traffic = livetraffic.handshakes(200, mix=True, first=1)
    frames = livetraffic.between(livetraffic.syn_flood(5000), traffic.frames, traffic.count)
    assert len(frames) == 5000 + len(traffic.flat())
    path = tmp_path / "t.pcap"
    with path.open("wb") as out:
        writer = PcapWriter(out, LINKTYPE_ETHERNET)
        for index, data in enumerate(frames):
            writer.write(1_800_000_000 + index * 1e-6, data)
    lines = [json.loads(line) for line in subprocess.run(
        [sys.executable, "-m", "smctrace", "-f", str(path), "--json"], capture_output=True,
        text=True, check=True).stdout.splitlines()]
    found = livetraffic.outcomes_of(lines)
    lost, wrong, extra = livetraffic.compare(traffic.outcomes, found)
    assert (lost, wrong, extra) == ([], 0, 0)
    assert lines[-1]["unanswered_syns"]["count"] == 5000
    assert set(traffic.by_kind(traffic.kinds)) == {
        "smc", "fallback, Decline", "fallback, SYN-ACK without the option"}

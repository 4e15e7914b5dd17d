"""Any timestamp a pcap or pcapng can hold is shown and never stops a trace.

A real SMC-D handshake is written with raw timestamps at the extremes of what the formats
allow (if_tsresol from whole seconds to 2**-63 s, 64-bit stamps up to 2**64 - 1,
if_tsoffset from -2**63 to 2**63 - 1 s, classic pcap seconds up to 2**32 - 1) and traced
in every output mode: the handshake must come out right each time, every frame read.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smctrace.capture.formats import PCAPNG_EPB
from smctrace.capture.pcapwriter import PcapngWriter
from smctrace.cli import main
from smctrace.frame import LINKTYPE_ETHERNET
from smctrace.output.common import Clock
from tests.support.replay import capture_frames

REAL = Path(__file__).parent / "data" / "real-kernel" / "C-smcd-loopback-ism-k612lo.pcap"
REAL_FRAMES = capture_frames([REAL])
U64 = (1 << 64) - 1
MODES = [(), ("--json",), ("--table",), ("--no-timestamps",), ("--hex",)]

# (if_tsresol byte, if_tsoffset, first raw stamp): the two files the fuzzer found, then
# the extremes around them.
EXTREMES = [
    pytest.param(0, 0, U64 - 20, id="whole-seconds-2^64"),
    pytest.param(0, 0, 1 << 62, id="whole-seconds-2^62"),
    pytest.param(9, 0, U64 - 20, id="ns-2^64"),
    pytest.param(0x80 | 63, 0, U64 - 20, id="2^-63s-2^64"),
    pytest.param(127, 0, U64 - 20, id="1e-127s"),
    pytest.param(0, -(1 << 63), 0, id="tsoffset-min"),
    pytest.param(0, (1 << 63) - 1, U64 - 20, id="tsoffset-max"),
    pytest.param(6, -86400 * 365 * 30, 0, id="before-1970"),
    pytest.param(6, -1, 0, id="just-before-1970"),
    pytest.param(6, 0, 0, id="epoch"),
]


def pcapng_with_stamps(tsresol: int, tsoffset: int, first: int) -> bytes:
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    writer.add_interface(LINKTYPE_ETHERNET, "eth0", tsresol=tsresol, tsoffset=tsoffset)
    for index, data in enumerate(REAL_FRAMES):
        stamp = min(first + index, U64)
        body = struct.pack("<IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF, len(data), len(data))
        writer.write_block(PCAPNG_EPB, body + data + bytes(-len(data) % 4))
    return stream.getvalue()


def pcap_with_seconds(seconds: int) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)
    for data in REAL_FRAMES:
        out += struct.pack("<IIII", seconds, 999_999, len(data), len(data)) + data
    return out


def trace(data: bytes, *options: str) -> Any:
    result = CliRunner().invoke(main, ["-f", "-", *options], input=data)
    assert result.exit_code == 0, result.output
    assert result.exception is None
    return result


def check_outputs(data: bytes) -> list[str]:
    frames = len(REAL_FRAMES)
    texts = []
    for mode in MODES:
        result = trace(data, *mode)
        assert f"{frames} frames read, 1 SMC connection (1 smc," in result.stderr
        texts.append(result.stdout)
        if mode == ("--json",):
            lines = [json.loads(line) for line in result.stdout.splitlines()]
            connection = next(e for e in lines if e["event"] == "connection")
            assert connection["outcome"] == "smc"
            assert isinstance(connection["start"], float)
        elif mode != ("--table",):
            assert "SMC-D v2.1 established" in result.stdout
    return texts


@pytest.mark.parametrize("tsresol,tsoffset,first", EXTREMES)
def test_pcapng_timestamp_extremes_in_every_output(tsresol: int, tsoffset: int,
                                                    first: int) -> None:
    check_outputs(pcapng_with_stamps(tsresol, tsoffset, first))


def test_out_of_range_times_are_shown_as_numbers() -> None:
    text = check_outputs(pcapng_with_stamps(0, 0, U64 - 20))[0]
    assert "[time 18446744073709551616.000000 s: out of range]" in text


@pytest.mark.parametrize("seconds", [0, 1, (1 << 31) - 1, 1 << 31, (1 << 32) - 1])
def test_classic_pcap_second_extremes(seconds: int) -> None:
    check_outputs(pcap_with_seconds(seconds))


def test_the_clock_before_1970_and_beyond_the_platform() -> None:
    clock = Clock()
    assert clock(-0.25).endswith(".750000")  # a quarter second before the epoch
    assert clock(2.0**62) == "[time 4611686018427387904.000000 s: out of range]"
    assert clock(float("nan")) == "[time nan: out of range]"
    assert clock(1.5).endswith(":01.500000")  # and back in range afterwards

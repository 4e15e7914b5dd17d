"""What could not be searched is said: frames of a link type smctrace does not read, and
captures whose snap length cuts headers or CLC messages (stderr, JSON, exit status)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from smctrace.capture.pcapfile import CaptureFile
from smctrace.capture.pcapwriter import PcapngWriter, PcapWriter
from smctrace.exitcodes import NOT_SEARCHED

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "tests" / "data" / "real-kernel" / "C-smcd-loopback-ism-k612lo.pcap"
LINKTYPE_USER0 = 147


def smctrace(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smctrace", "-f", str(path), *args],
                          capture_output=True, text=True, cwd=REPO)


def rewrite(target: Path, *, linktype: int | None = None, snaplen: int | None = None) -> None:
    with CaptureFile(str(REAL)) as capture:
        frames = list(capture.frames())
    with target.open("wb") as out:
        writer = PcapWriter(out, linktype or frames[0].linktype, snaplen=snaplen or 262144)
        for frame in frames:
            writer.write(frame.time, frame.data[:snaplen], frame.orig_len)


def test_unsupported_link_type_is_named_and_exits_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "user0.pcap"
    rewrite(path, linktype=LINKTYPE_USER0)
    text = smctrace(path)
    assert text.returncode == NOT_SEARCHED.code
    assert text.stderr.splitlines()[-1] == (
        "smctrace: warning: 11 frames of link type 147 (USER0) could not be searched: "
        "smctrace reads Ethernet, Linux cooked (SLL, SLL2), raw IP and BSD loopback frames")
    summary = json.loads(smctrace(path, "--json").stdout.splitlines()[-1])
    assert summary["warnings"] == [text.stderr.splitlines()[-1].removeprefix(
        "smctrace: warning: ")]
    assert summary["frames"] == 11 and summary["connections"] == 0


def test_a_pcapng_mixing_link_types_warns_for_the_unsupported_one(tmp_path: Path) -> None:
    with CaptureFile(str(REAL)) as capture:
        frames = list(capture.frames())
    path = tmp_path / "mixed.pcapng"
    with path.open("wb") as out:
        writer = PcapngWriter(out)
        eth, other = writer.add_interface(1), writer.add_interface(LINKTYPE_USER0)
        for frame in frames:
            writer.write(eth, frame.time, frame.data)
        writer.write(other, frames[-1].time, frames[0].data)
    result = smctrace(path)
    assert result.returncode == NOT_SEARCHED.code
    assert "1 frame of link type 147 (USER0) could not be searched" in result.stderr
    assert "SMC-D v2.1 established" in result.stdout  # the rest was searched


def test_64_byte_snap_length_says_nothing_could_be_searched(tmp_path: Path) -> None:
    path = tmp_path / "snap64.pcap"
    rewrite(path, snaplen=64)
    result = smctrace(path)
    assert result.returncode == NOT_SEARCHED.code
    assert ("smctrace: warning: 11 TCP segments cut inside their headers by the capture's "
            "snap length (64 bytes) could not be searched") in result.stderr
    summary = json.loads(smctrace(path, "--json").stdout.splitlines()[-1])
    assert any("snap length (64 bytes)" in line for line in summary["warnings"])


def test_snap_length_cutting_a_clc_message_reports_it_truncated(tmp_path: Path) -> None:
    path = tmp_path / "snap200.pcap"
    rewrite(path, snaplen=200)
    result = smctrace(path)
    assert result.returncode == 0  # searched, but a message is incomplete
    assert "[malformed: truncated: 134 of 224 bytes]" in result.stdout
    assert "SMC-D v2.1 established" in result.stdout
    assert ("1 CLC segment cut by the capture's snap length (200 bytes): their messages are "
            "truncated") in result.stderr


@pytest.mark.parametrize("snaplen", [1280, 262144])
def test_enough_snap_length_warns_about_nothing(tmp_path: Path, snaplen: int) -> None:
    path = tmp_path / "snap.pcap"
    rewrite(path, snaplen=snaplen)
    result = smctrace(path)
    assert result.returncode == 0 and "warning" not in result.stderr

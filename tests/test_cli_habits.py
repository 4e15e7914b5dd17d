"""A tcpdump user's habits, end to end through the command: filter expressions (against
tcpdump's own selection), several inputs as one trace, -c, --duration and -w offline,
compressed input, -q and -v."""

from __future__ import annotations

import gzip
import itertools
import json
import lzma
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smctrace.capture.pcapfile import CaptureFile
from smctrace.capture.pcapfilter import PacketFilter
from smctrace.capture.pcapwriter import PcapWriter
from smctrace.cli import main
from smctrace.frame import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW
from smctrace.match.engine import NATIVE, new_engine
from tests.support.captures import filter_test_frames
from tests.test_capture_pcapfilter import EXPRESSIONS, TCPDUMP

REAL = Path(__file__).resolve().parent / "data" / "real-kernel"
D7 = REAL / "D7-smcr-v2-mixed-srv61-cli612-srv_k61-cli_k612.pcap"
SMCD = REAL / "C-smcd-loopback-ism-k612lo.pcap"
SMCD6 = REAL / "C6-smcd-loopback-ism-v6-k612lo.pcap"
F2 = REAL / "F2-smcr-server-no-rdma-k612.pcap"
TSHARK = shutil.which("tshark")


def run(*args: str, input: bytes | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=input)


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def without_frames(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events without what depends on which frames the input held (frame numbers, the
    frame and segment counts)."""
    out = []
    for event in items:
        event = {k: v for k, v in event.items() if k not in ("frame", "frames", "segments",
                                                                "plain_tcp")}
        out.append(event)
    return out


def frames_of(*paths: Path) -> list[tuple[float, bytes, int]]:
    out = []
    for path in paths:
        with CaptureFile(str(path)) as capture:
            out += [(f.time, f.data, f.orig_len) for f in capture.frames()]
    return out


def write(path: Path, frames: list[tuple[float, bytes, int]],
          linktype: int = LINKTYPE_ETHERNET) -> Path:
    with path.open("wb") as stream:
        writer = PcapWriter(stream, linktype)
        for time, data, orig_len in frames:
            writer.write(time, data, orig_len)
    return path


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four real handshakes (SMC-D v4 and v6, SMC-R with a late Decline, a server
    Decline), each moved to start 0.1 s after the one before, interleaved in time."""
    frames = []
    for index, path in enumerate((SMCD, SMCD6, D7, F2)):
        own = frames_of(path)
        shift = 1795395968.0 + index * 0.1 - own[0][0]
        frames += [(time + shift, data, n) for time, data, n in own]
    frames.sort()
    return write(tmp_path_factory.mktemp("mixed") / "mixed.pcap", frames)


# --- filters -------------------------------------------------------------------------------

FILTERS = ("port 7001", "host 127.0.0.1", "ip6", "not ip6", "tcp[13]&2!=0",
           "tcp port 7001 and not host ::1", "portrange 7000-7002", "net 127.0.0.0/8",
           "src host 127.0.0.1", "greater 100")


@pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")
@pytest.mark.parametrize("expression", FILTERS)
def test_a_filter_selects_what_tcpdump_selects(mixed: Path, tmp_path: Path,
                                               expression: str) -> None:
    """smctrace FILE EXPR gives what smctrace gives on tcpdump's selection of FILE."""
    assert TCPDUMP is not None
    selected = tmp_path / "selected.pcap"
    subprocess.run([TCPDUMP, "-r", str(mixed), "-w", str(selected), expression],
                   check=True, capture_output=True)
    filtered = run("-f", str(mixed), *expression.split(), "--json")
    assert filtered.exit_code == 0, filtered.stderr
    reference = run("-f", str(selected), "--json")
    assert without_frames(events(filtered.stdout)) == without_frames(events(reference.stdout))
    # --filter is the same as the trailing words
    assert run("-f", str(mixed), "--filter", expression, "--json").stdout == filtered.stdout


@pytest.mark.parametrize("native", [pytest.param(True, marks=pytest.mark.skipif(
    not NATIVE, reason="C engine not built")), False], ids=["c", "python"])
@pytest.mark.parametrize("linktype", [LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL2])
def test_the_engine_runs_libpcaps_programs_as_libpcap(native: bool, linktype: int) -> None:
    """The C engine interprets the compiled program itself: every frame it passes or
    rejects, libpcap's pcap_offline_filter passes or rejects (frames mutated too)."""
    rng = random.Random(linktype)
    frames = filter_test_frames(linktype)
    frames += [(bytes(b ^ (rng.random() < 0.02) * rng.randrange(256) for b in data), n)
               for data, n in frames]
    frames += [(data[: rng.randrange(len(data) + 1)], n) for data, n in frames[:200]]
    for expression in EXPRESSIONS:
        if not expression:
            continue
        packet_filter = PacketFilter(expression)
        try:
            packet_filter.check(linktype)
        except Exception:
            continue  # not compilable for this link type (e.g. vlan on raw IP)
        engine = new_engine(native=native)
        engine.set_filter(packet_filter)
        for number, (data, wire_len) in enumerate(frames, 1):
            before = engine.counters()["filtered"]
            engine.feed(data, linktype, 1.0, number, 0, wire_len, True, [])
            rejected = engine.counters()["filtered"] - before
            assert rejected == (not packet_filter.matches(data, linktype, wire_len)), (
                expression, data.hex())


def test_a_bad_filter_is_one_line_and_a_usage_error() -> None:
    result = run("-f", str(SMCD), "port")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "filter expression" in result.stderr
    both = run("-f", str(SMCD), "--filter", "port 1", "port", "2")
    assert both.exit_code == 2 and "once" in both.stderr


# --- several inputs --------------------------------------------------------------------------

def test_several_files_are_one_trace(mixed: Path, tmp_path: Path) -> None:
    """Cut anywhere (inside handshakes too), the pieces read as one trace give exactly
    what the whole gives, frame numbers included."""
    frames = frames_of(mixed)
    cuts = [0, 7, len(frames) // 2, len(frames) - 3, len(frames)]
    parts = [write(tmp_path / f"part{i}.pcap", frames[a:b])
             for i, (a, b) in enumerate(itertools.pairwise(cuts))]
    whole = run("-f", str(mixed), "--json")
    pieces = run(*[arg for part in parts for arg in ("-r", str(part))], "--json")
    assert pieces.exit_code == 0, pieces.stderr
    assert pieces.stdout == whole.stdout
    assert pieces.stderr == whole.stderr


def test_a_missing_input_stops_before_anything_is_read(tmp_path: Path) -> None:
    result = run("-f", str(SMCD), "-f", str(tmp_path / "missing.pcap"))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "missing.pcap" in result.stderr


# --- -c, --duration, -w -----------------------------------------------------------------------

def test_count_stops_after_n_outcomes(mixed: Path) -> None:
    everything = [e for e in events(run("-f", str(mixed), "--json").stdout)
                  if e["event"] == "connection"]
    assert len(everything) == 4
    for n in (1, 2, 3):
        result = run("-f", str(mixed), "-c", str(n), "--json")
        got = events(result.stdout)
        outcomes = [e for e in got if e["event"] == "connection"]
        assert outcomes == everything[:n]
        assert got[-1]["connections"] == n
        assert f"{n} SMC connection" in result.stderr


def test_duration_is_packet_time_offline(mixed: Path) -> None:
    """The trace ends SECS of packet time after the first frame: D7's client declines
    5.3 s after its Confirm, F2's server 2.3 s after the Proposal."""
    full = events(run("-f", str(mixed), "--json").stdout)
    with CaptureFile(str(mixed)) as capture:
        first = next(capture.frames()).time
    for seconds in (0.5, 2.0, 3.0):
        short = events(run("-f", str(mixed), "--duration", str(seconds), "--json").stdout)
        assert [e for e in short if e["event"] == "clc"] == [
            e for e in full if e["event"] == "clc" and e["time"] - first <= seconds]
        assert short[-1]["frames"] < full[-1]["frames"]


def test_write_offline_cuts_out_the_handshakes(mixed: Path, tmp_path: Path) -> None:
    """Between lots of ordinary traffic, -w keeps the frames that matter for SMC; the file
    reads back to the same result (in smctrace and in tshark)."""
    ordinary = [(data, n) for data, n in filter_test_frames(LINKTYPE_ETHERNET)
                if len(data) == n and b"\xe2\xd4\xc3" not in data]
    noise = [(1795395968.0 + i * 1e-3, data, n) for i, (data, n) in enumerate(ordinary)]
    big = write(tmp_path / "big.pcap", sorted(frames_of(mixed) + noise))
    saved = tmp_path / "smc.pcapng"
    result = run("-f", str(big), "-w", str(saved), "--json")
    assert result.exit_code == 0, result.stderr
    again = run("-f", str(saved), "--json")
    assert without_frames(events(again.stdout))[:-1] == [
        e for e in without_frames(events(result.stdout))[:-1]]
    written = frames_of(saved)
    assert len(written) < len(frames_of(big)) / 3
    with CaptureFile(str(saved)) as capture:
        assert capture.format == "pcapng"
    raw = saved.read_bytes()
    assert b"SMC CLC Proposal v2" in raw and b"SMC CLC Decline" in raw
    if TSHARK is not None:
        def clc_count(path: Path) -> int:
            out = subprocess.run([TSHARK, "-r", str(path), "-Y", "smc", "-T", "fields",
                                  "-e", "frame.number"], capture_output=True, text=True,
                                 check=True).stdout
            return len(out.split())
        assert clc_count(saved) == clc_count(big)


# --- compressed input ---------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress], ids=["gzip", "xz"])
def test_compressed_files_and_standard_input(mixed: Path, tmp_path: Path,
                                             compress: Any) -> None:
    plain = run("-f", str(mixed), "--json")
    packed = tmp_path / "mixed.pcap.z"
    packed.write_bytes(compress(mixed.read_bytes()))
    assert run("-f", str(packed), "--json").stdout == plain.stdout
    assert run("-f", "-", "--json", input=packed.read_bytes()).stdout == plain.stdout


# --- -q and -v ------------------------------------------------------------------------------------

def test_quiet_shows_only_outcomes_and_verbose_every_field(mixed: Path) -> None:
    normal = run("-f", str(mixed)).stdout.splitlines()
    quiet = run("-f", str(mixed), "-q").stdout.splitlines()
    assert len(quiet) == 4 and set(quiet) <= set(normal)
    assert all("->" in line and ("established" in line or "fallback" in line)
               for line in quiet)
    assert [e["event"] for e in events(run("-f", str(mixed), "-q", "--json").stdout)] == [
        "connection"] * 4 + ["summary"]
    verbose = run("-f", str(mixed), "-v").stdout
    assert "    qp_number: " in verbose and "    eids: " in verbose
    assert run("-f", str(mixed), "-q", "-v").exit_code == 2


def test_help_names_every_exit_status() -> None:
    text = run("--help").stdout
    for code in ("0", "1", "2", "3"):
        assert f"\n    {code}  " in text

"""smctrace.capture.pcapfile: pcap/pcapng reading, streaming, damage, real captures."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smctrace.capture import pcapfile
from smctrace.capture.pcapfile import CaptureFile
from smctrace.capture.pcapwriter import PcapngWriter, PcapWriter
from smctrace.frame import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    CaptureError,
    Frame,
)
from smctrace.match.engine import NATIVE, Segment, new_engine
from smctrace.packet import ACK, FIN, SYN, parse_frame
from tests.support.synth import clc_like_payload, tcp_frame

REAL_CAPTURES = Path(__file__).resolve().parent / "data" / "real-kernel"
REPO = Path(__file__).resolve().parents[1]

MODES = [None, False] + ([True] if NATIVE else [])


def read_all(
    source: bytes | str, native: bool | None = None, prefilter: bool = False
) -> list[Any]:
    """Every frame of a capture given as bytes or a path, or with ``prefilter`` the
    segments that cross the rule (engine: C if ``native``, Python if False)."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    with CaptureFile(stream) as capture:
        if not prefilter:
            return list(capture.frames())
        engine = new_engine(native=native, keep_frames=True)
        return [Segment._make(seg) for seg in crossing(capture, engine)]


def crossing(capture: CaptureFile, engine: Any) -> Iterator[Any]:
    """The segments that cross, then what the engine held to the end (pick-ups)."""
    yield from capture.segments(engine)
    held: list[Any] = []
    engine.finish(held)
    yield from held


def walk(capture: CaptureFile, mode: bool | None) -> Iterator[Any]:
    """Frames (mode None), or the segments that cross the rule (C engine if mode), one
    by one (so that what came before an error is kept)."""
    if mode is None:
        yield from capture.frames()
        return
    engine = new_engine(native=mode, keep_frames=True)
    for seg in crossing(capture, engine):
        yield Segment._make(seg)


def sample_frames() -> list[bytes]:
    """A small handshake-like sequence: SYN, SYN-ACK, ACK, CLC, data, FIN."""
    client = ("10.0.0.1", "10.0.0.2", 40000, 7001)
    server = ("10.0.0.2", "10.0.0.1", 7001, 40000)
    return [
        tcp_frame(*client, flags=SYN, smc_option=True),
        tcp_frame(*server, flags=SYN | ACK, smc_option=True),
        tcp_frame(*client, flags=ACK),
        tcp_frame(*client, payload=clc_like_payload(1, 52)),
        tcp_frame(*server, payload=b"x" * 1448),
        tcp_frame(*client, flags=FIN | ACK),
    ]


# -- classic pcap ---------------------------------------------------------------------


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_byte_orders_and_resolutions(big_endian: bool, nanosecond: bool) -> None:
    stream = io.BytesIO()
    writer = PcapWriter(stream, LINKTYPE_ETHERNET, nanosecond=nanosecond, big_endian=big_endian)
    frames = sample_frames()
    for index, data in enumerate(frames):
        writer.write(1_700_000_000 + index + 0.123456, data, orig_len=len(data) + index)
    with CaptureFile(io.BytesIO(stream.getvalue())) as capture:
        assert capture.format == "pcap"
        read = list(capture.frames())
        assert capture.frames_read == len(frames)
        assert capture.bytes_read == len(stream.getvalue())
    assert [frame.data for frame in read] == frames
    assert [frame.number for frame in read] == list(range(1, len(frames) + 1))
    assert [frame.orig_len - len(frame.data) for frame in read] == list(range(len(frames)))
    for index, frame in enumerate(read):
        assert frame.time == pytest.approx(1_700_000_000 + index + 0.123456, abs=1e-6)
        assert frame.linktype == LINKTYPE_ETHERNET
    # the SYN is held until the SYN-ACK; the server data ending the phase shows its first
    # bytes; the FIN closes the connection
    assert [f.number for f in read_all(stream.getvalue(), prefilter=True)] == [1, 2, 4, 5, 6]


def test_pcap_nanosecond_precision() -> None:
    header = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, LINKTYPE_RAW)
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, linktype=LINKTYPE_RAW)
    record = struct.pack("<IIII", 100, 999_999_999, len(data), len(data)) + data
    (frame,) = read_all(header + record)
    assert frame.time == pytest.approx(100.999999999, abs=1e-9)


def test_pcap_linktype_fcs_bits_are_masked() -> None:
    stream = io.BytesIO()
    PcapWriter(stream, LINKTYPE_ETHERNET | 0x10000000 | 0x04000000).write(1.0, b"\x00" * 60)
    assert read_all(stream.getvalue())[0].linktype == LINKTYPE_ETHERNET


def test_pcap_empty_capture_has_no_frames() -> None:
    stream = io.BytesIO()
    PcapWriter(stream, LINKTYPE_ETHERNET)
    assert read_all(stream.getvalue()) == []


# -- pcapng ---------------------------------------------------------------------------


CLC_DECLINE = clc_like_payload(4, 28)


def build_multi_interface_pcapng(big_endian: bool = False) -> bytes:
    stream = io.BytesIO()
    writer = PcapngWriter(stream, big_endian=big_endian)
    eth = writer.add_interface(LINKTYPE_ETHERNET, "eth0")  # nanoseconds
    lo = writer.add_interface(LINKTYPE_LINUX_SLL2, "any", tsresol=6)  # default microseconds
    raw = writer.add_interface(LINKTYPE_RAW, "tun0", tsresol=0x80 | 20, tsoffset=1_000_000)
    syn = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, flags=SYN, smc_option=True)
    writer.write(eth, 1_700_000_000.25, syn, comment="syn")
    sll = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, payload=b"abc", linktype=LINKTYPE_LINUX_SLL2)
    writer.write(lo, 1_700_000_001.5, sll)
    decline = tcp_frame("::1", "::2", 3, 4, payload=CLC_DECLINE, linktype=LINKTYPE_RAW)
    writer.write(raw, 1_700_000_002.75, decline)
    return stream.getvalue()


@pytest.mark.parametrize("big_endian", [False, True])
def test_pcapng_interfaces_linktypes_and_resolutions(big_endian: bool) -> None:
    data = build_multi_interface_pcapng(big_endian)
    with CaptureFile(io.BytesIO(data)) as capture:
        assert capture.format == "pcapng"
        frames = list(capture.frames())
    assert [(f.interface, f.linktype, f.number) for f in frames] == [
        (0, LINKTYPE_ETHERNET, 1),
        (1, LINKTYPE_LINUX_SLL2, 2),
        (2, LINKTYPE_RAW, 3),
    ]
    assert frames[0].time == pytest.approx(1_700_000_000.25, abs=1e-9)
    assert frames[1].time == pytest.approx(1_700_000_001.5, abs=1e-6)
    assert frames[2].time == pytest.approx(1_700_000_002.75, abs=1e-6)
    segments = [parse_frame(frame) for frame in frames]
    assert [s.payload if s else None for s in segments] == [b"", b"abc", CLC_DECLINE]
    # the SYN never gets an answer: only counted; the Decline crosses
    assert [f.number for f in read_all(data, prefilter=True)] == [3]


def test_pcapng_sections_with_different_byte_orders_reset_interfaces() -> None:
    first = build_multi_interface_pcapng(big_endian=True)
    stream = io.BytesIO()
    writer = PcapngWriter(stream)  # little-endian section, one raw interface
    writer.add_interface(LINKTYPE_NULL)
    writer.write(0, 5.0, tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, linktype=LINKTYPE_NULL))
    for mode in MODES:
        frames = read_all(first + stream.getvalue(), native=mode, prefilter=mode is not None)
        if mode is None:
            assert [(f.interface, f.linktype, f.number) for f in frames][-1] == (
                0,
                LINKTYPE_NULL,
                4,
            )
        else:
            assert [f.number for f in frames] == [3]  # the unanswered SYN does not cross


def test_pcapng_simple_packet_blocks_inherit_time_and_respect_orig_len() -> None:
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    writer.add_interface(LINKTYPE_ETHERNET, snaplen=100)
    clc = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, payload=clc_like_payload(4, 28))
    writer.write_simple(clc)  # before any timed packet: time 0
    writer.write(0, 42.5, tcp_frame("10.0.0.1", "10.0.0.2", 1, 2))
    odd = tcp_frame("10.0.0.1", "10.0.0.2", 3, 4, payload=clc_like_payload(4, 28))
    writer.write_simple(odd + b"\x00")  # 1 byte of block padding must not become data
    big = tcp_frame("10.0.0.1", "10.0.0.2", 5, 6, payload=clc_like_payload(1, 600))
    writer.write_simple(big[:100], orig_len=len(big))  # cut at the snap length
    for mode in (None, *MODES):
        items = read_all(stream.getvalue(), native=mode, prefilter=mode is not None)
        by_number = {f.number: f for f in items}
        got = {n: f.data if mode is None else f.frame for n, f in by_number.items()}
        assert by_number[1].time == 0.0 and got[1] == clc
        assert by_number[3].time == 42.5 and got[3] == (odd + b"\x00" if mode is None else odd)
        assert got[4] == big[:100] and by_number[4].orig_len == len(big)
        assert (2 in by_number) is (mode is None)


def test_pcapng_obsolete_packet_block() -> None:
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    writer.add_interface(LINKTYPE_ETHERNET, tsresol=6)
    clc = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, payload=clc_like_payload(1, 52))
    writer.write_obsolete(0, 12.5, clc)
    writer.write_obsolete(0, 13.5, tcp_frame("10.0.0.1", "10.0.0.2", 1, 2))
    frames = read_all(stream.getvalue())
    assert [(f.time, f.data == clc) for f in frames] == [(12.5, True), (13.5, False)]
    for mode in MODES[1:]:
        assert [f.number for f in read_all(stream.getvalue(), mode, prefilter=True)] == [1]


def test_pcapng_unknown_blocks_are_skipped() -> None:
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    writer.write_block(0x00000004, b"\x00\x00\x00\x00")  # name resolution block
    writer.add_interface(LINKTYPE_ETHERNET)
    writer.write_block(0x00000BAD, b"custom block")
    writer.write(0, 1.0, tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, flags=SYN, smc_option=True))
    writer.write_block(0x00000005, bytes(20))  # interface statistics
    writer.write_block(0x40000BAD, b"")
    writer.write(0, 2.0, tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, payload=CLC_DECLINE))
    for mode in (None, *MODES):
        frames = read_all(stream.getvalue(), native=mode, prefilter=mode is not None)
        assert [f.number for f in frames] == [1, 2]


def test_pcapng_idb_options_power_of_two_resolution_and_offset() -> None:
    stream = io.BytesIO()
    writer = PcapngWriter(stream, big_endian=True)
    writer.add_interface(LINKTYPE_RAW, tsresol=0x80 | 10, tsoffset=-5)
    writer.write(0, 1000.5, tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, linktype=LINKTYPE_RAW))
    (frame,) = read_all(stream.getvalue())
    assert frame.time == pytest.approx(1000.5, abs=1e-3)


# -- streaming ------------------------------------------------------------------------


def big_capture(count: int = 400) -> tuple[bytes, list[bytes]]:
    stream = io.BytesIO()
    writer = PcapWriter(stream, LINKTYPE_ETHERNET)
    frames = []
    for index in range(count):
        frame = sample_frames()[index % 6]
        if index % 7 == 0:
            frame = tcp_frame("10.5.0.1", "10.5.0.2", 9, 9, payload=bytes(index * 13 % 3000))
        frames.append(frame)
        writer.write(float(index), frame)
    return stream.getvalue(), frames


@pytest.mark.parametrize("chunk", [100, 1000, 4096])
def test_small_chunks_records_spanning_boundaries(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(pcapfile, "CHUNK_SIZE", chunk)
    data, frames = big_capture()
    with CaptureFile(io.BytesIO(data)) as capture:
        assert [frame.data for frame in capture.frames()] == frames
        # The window only grows to the largest record, not with the file.
        assert len(capture._buffer.data) <= max(chunk, 16 + 3100)
    for mode in MODES[1:]:
        expected = read_all(data, native=False, prefilter=True)
        with CaptureFile(io.BytesIO(data)) as capture:
            got = list(walk(capture, mode))
            assert capture.frames_read == len(frames)
        assert got == expected


class TrickleReader(io.RawIOBase):
    """A stream returning at most a few bytes per read, like a slow pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = min(self._step, len(buffer), len(self._data))
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


@pytest.mark.parametrize("step", [1, 7, 1500])
def test_trickling_stream(step: int) -> None:
    data, frames = big_capture(60)
    with CaptureFile(TrickleReader(data, step)) as capture:  # type: ignore[arg-type]
        assert [frame.data for frame in capture.frames()] == frames
    with CaptureFile(TrickleReader(data, step)) as capture:  # type: ignore[arg-type]
        candidates = list(walk(capture, NATIVE))
    assert candidates == read_all(data, prefilter=True)


def test_os_pipe_with_writer_thread() -> None:
    data, frames = big_capture(300)
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as writer:
            for start in range(0, len(data), 5000):
                writer.write(data[start : start + 5000])
                writer.flush()

    thread = threading.Thread(target=feed)
    thread.start()
    with os.fdopen(read_fd, "rb") as reader, CaptureFile(reader) as capture:
        assert list(walk(capture, NATIVE)) == read_all(data, prefilter=True)
        assert capture.frames_read == len(frames)
    thread.join()


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_live_pipe_hands_out_a_frame_before_the_next_arrives(fmt: str) -> None:
    """A live `tcpdump -U -w - |` pipe: the reader must not wait for more data first."""
    stream = io.BytesIO()
    # a SYN-ACK with the SMC option crosses at once (a CLC pick-up would be held)
    clc = tcp_frame("10.0.0.2", "10.0.0.1", 2, 1, flags=SYN | ACK, smc_option=True)
    if fmt == "pcap":
        PcapWriter(stream, LINKTYPE_ETHERNET).write(1.0, clc)
    else:
        writer = PcapngWriter(stream)
        writer.add_interface(LINKTYPE_ETHERNET)
        writer.write(0, 1.0, clc)
    read_fd, write_fd = os.pipe()
    got_frame = threading.Event()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as writer:
            writer.write(stream.getvalue())
            writer.flush()
            got_frame.wait(timeout=10)  # keep the pipe open, like a quiet network

    thread = threading.Thread(target=feed)
    thread.start()
    with os.fdopen(read_fd, "rb") as reader, CaptureFile(reader) as capture:
        segments = capture.segments(new_engine(keep_frames=True))
        first = Segment._make(next(segments))
        handed_out_while_open = thread.is_alive()
        got_frame.set()
        assert list(segments) == []
    thread.join()
    assert first.frame == clc
    assert handed_out_while_open


def test_stdin_dash_in_a_subprocess(tmp_path: Path) -> None:
    data, frames = big_capture(200)
    result = subprocess.run(
        [sys.executable, "-m", "smctrace", "-f", "-", "--json"], input=data,
        capture_output=True, check=True, cwd=REPO)
    summary = json.loads(result.stdout.decode().splitlines()[-1])
    assert (summary["frames"], summary["segments"]) == (len(frames),
                                                         len(read_all(data, prefilter=True)))


# -- damage ---------------------------------------------------------------------------


def test_open_errors_are_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "dump.pcap"
    with pytest.raises(CaptureError) as error:
        CaptureFile(str(missing))
    assert str(error.value) == f"cannot open {missing}: No such file or directory"
    with pytest.raises(CaptureError, match="Is a directory"):
        CaptureFile(str(tmp_path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty input"),
        (b"GET / HTTP/1.1\r\n", r"not a pcap or pcapng file \(magic 0x47455420\)"),
        (b"\xd4\xc3", "not a pcap or pcapng file"),
        (struct.pack("<I", 0xA1B2C3D4) + bytes(10), "truncated pcap file header"),
    ],
)
def test_not_a_capture(content: bytes, message: str) -> None:
    with pytest.raises(CaptureError, match=message):
        read_all(content)


@pytest.mark.parametrize("mode", MODES)
def test_truncated_pcap_record_yields_prefix_then_error(mode: bool | None) -> None:
    data, frames = big_capture(20)
    last_start = len(data) - (16 + len(frames[-1]))
    cut = data[: last_start + 16 + 10]
    got: list[Frame] = []
    with CaptureFile(io.BytesIO(cut)) as capture, pytest.raises(CaptureError) as error:
        for frame in walk(capture, mode):
            got.append(frame)
    expected = f"truncated record at byte {last_start} (frame 20): {len(frames[-1])} bytes "
    assert expected + "announced, 10 present" in str(error.value)
    reference = read_all(data[:last_start], native=mode, prefilter=mode is not None)
    assert got == reference and reference


@pytest.mark.parametrize("mode", MODES)
def test_truncated_pcap_record_header(mode: bool | None) -> None:
    data, _ = big_capture(5)
    with pytest.raises(CaptureError, match=r"truncated record header at byte \d+ \(frame 6\)"):
        read_all(data + b"\x00" * 7, native=mode, prefilter=mode is not None)


@pytest.mark.parametrize("mode", MODES)
def test_corrupt_pcap_caplen(mode: bool | None) -> None:
    data, _ = big_capture(5)
    bad = data + struct.pack("<IIII", 0, 0, 0x7FFFFFFF, 60) + bytes(60)
    got: list[Frame] = []
    with (
        pytest.raises(CaptureError, match="captured length 2147483647 exceeds"),
        CaptureFile(io.BytesIO(bad)) as capture,
    ):
        got.extend(walk(capture, mode))
    assert len(got) == len(read_all(data, native=mode, prefilter=mode is not None))


def pcapng_with_frames(count: int) -> bytes:
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    writer.add_interface(LINKTYPE_ETHERNET)
    for index in range(count):
        writer.write(0, float(index), sample_frames()[index % 6])
    return stream.getvalue()


@pytest.mark.parametrize("mode", MODES)
def test_pcapng_damage(mode: bool | None) -> None:
    data = pcapng_with_frames(12)
    good_prefix = read_all(data, native=mode, prefilter=mode is not None)
    cases = {
        "truncated block at byte": data[:-5],
        "length 3 < 12": data + struct.pack("<II", 6, 3) + bytes(8),
        "is not a multiple of 4": data + struct.pack("<II", 6, 22) + bytes(14),
        "trailing length": data + struct.pack("<III", 0xBAD, 12, 16),
        "packet on interface 5, only 1 defined": data
        + struct.pack("<IIIIIII", 6, 32, 5, 0, 0, 0, 0)
        + struct.pack("<I", 32),
        "captured length 99 exceeds the block": data
        + struct.pack("<IIIIIII", 6, 32, 0, 0, 0, 99, 99)
        + struct.pack("<I", 32),
        "exceeds the 67108864 byte limit": data + struct.pack("<II", 6, 0x7FFFFFF0) + bytes(8),
    }
    for message, content in cases.items():
        got: list[Frame] = []
        with (
            pytest.raises(CaptureError, match=message),
            CaptureFile(io.BytesIO(content)) as capture,
        ):
            got.extend(walk(capture, mode))
        # truncation damages the last block (frame 12); every other case appends after it
        truncated = message == "truncated block at byte"
        expected = [f for f in good_prefix if not truncated or f.number < 12]
        assert [f.number for f in got] == [f.number for f in expected], message


def test_pcapng_packet_before_interface_and_bad_section() -> None:
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    writer.write_simple(b"\x00" * 20)
    with pytest.raises(CaptureError, match="before any interface"):
        read_all(stream.getvalue())
    bad_magic = bytearray(stream.getvalue())
    bad_magic[8:12] = b"\x00\x00\x00\x00"
    with pytest.raises(CaptureError, match="byte-order magic"):
        read_all(bytes(bad_magic))


# -- fuzzing --------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=400), mode=st.sampled_from(MODES))
def test_reader_never_raises_other_errors_on_random_bytes(
    content: bytes, mode: bool | None
) -> None:
    for prefix in (b"", struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)):
        with contextlib.suppress(CaptureError):
            read_all(prefix + content, native=mode, prefilter=mode is not None)


SEED_FILES = [big_capture(12)[0], pcapng_with_frames(10), build_multi_interface_pcapng(True)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(range(len(SEED_FILES))),
    edits=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.integers(0, 5000),
    mode=st.sampled_from(MODES),
)
def test_reader_on_mutated_files_stops_cleanly(
    seed: int, edits: list[tuple[int, int]], cut: int, mode: bool | None
) -> None:
    content = bytearray(SEED_FILES[seed])
    for position, value in edits:
        if position < len(content):
            content[position] = value
    try:
        frames = read_all(bytes(content[:cut]), native=mode, prefilter=mode is not None)
    except CaptureError as error:
        assert "\n" not in str(error)
    else:
        assert all(isinstance(f.data if mode is None else f.payload, bytes) for f in frames)


# -- real captures --------------------------------------------------------------------


def real_captures() -> Iterator[Path]:
    return iter(sorted(REAL_CAPTURES.glob("*.pcap*")))


@pytest.mark.skipif(not REAL_CAPTURES.is_dir(), reason="real-kernel captures not present")
@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
@pytest.mark.parametrize("path", list(real_captures()), ids=lambda path: path.name)
def test_real_captures_frame_counts_match_tcpdump(path: Path) -> None:
    listing = subprocess.run(
        ["tcpdump", "-nn", "-r", str(path)], capture_output=True, check=True, text=True
    )
    expected = len(listing.stdout.splitlines())
    with CaptureFile(str(path)) as capture:
        frames = list(capture.frames())
        assert capture.frames_read == expected == len(frames)
        assert capture.bytes_read == path.stat().st_size
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed: it is the oracle for the candidate set")
    # Independent oracle, from tshark's dissection: the SMC-option SYN/SYN-ACKs and the
    # segments its SMC heuristic recognises (a payload starting with an eyecatcher), plus,
    # of those connections, the SYN-ACK (a fallback when it lacks the option) and the
    # first FIN or RST, which ends what the rule follows.
    fields = subprocess.run(
        ["tshark", "-r", str(path), "-Y", "tcp", "-T", "fields", "-e", "frame.number",
         "-e", "tcp.stream", "-e", "tcp.flags.syn", "-e", "tcp.flags.ack", "-e",
         "tcp.flags.fin", "-e", "tcp.flags.reset", "-e", "tcp.options.experimental.exid",
         "-e", "smc.clc_msg"],
        capture_output=True, check=True, text=True,
    )
    rows = [line.split("\t") for line in fields.stdout.splitlines()]
    smc_streams = {row[1] for row in rows if row[6] or row[7]}
    expected_kept: list[int] = []
    closed: set[str] = set()
    for number, stream, syn, ack, fin, rst, exid, clc in rows:
        if stream not in smc_streams or stream in closed:
            continue
        flag = {"1", "True"}.__contains__
        if exid or clc or (flag(syn) and flag(ack)):
            expected_kept.append(int(number))
            if flag(syn) and flag(ack) and not exid:
                closed.add(stream)  # a fallback in the TCP handshake: nothing more
        elif flag(fin) or flag(rst):
            expected_kept.append(int(number))
            closed.add(stream)
    for mode in MODES[1:]:
        with CaptureFile(str(path)) as capture:
            kept = list(walk(capture, mode))
            assert capture.frames_read == expected
        assert [f.number for f in kept] == expected_kept


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_our_pcapng(tmp_path: Path) -> None:
    path = tmp_path / "multi.pcapng"
    path.write_bytes(build_multi_interface_pcapng(big_endian=True))
    result = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "tcp.flags"],
        capture_output=True,
        check=True,
        text=True,
    )
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [round(float(row[0]), 3) for row in rows] == [1700000000.25, 1700000001.5, 1700000002.75]


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
@pytest.mark.parametrize("big_endian", [False, True])
def test_tcpdump_reads_our_pcap(tmp_path: Path, big_endian: bool) -> None:
    path = tmp_path / "ours.pcap"
    with path.open("wb") as stream:
        writer = PcapWriter(stream, LINKTYPE_LINUX_SLL, nanosecond=True, big_endian=big_endian)
        data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, flags=SYN, smc_option=True, linktype=113)
        writer.write(1_700_000_000.5, data)
    result = subprocess.run(
        ["tcpdump", "-nn", "-tt", "-r", str(path)], capture_output=True, check=True, text=True
    )
    assert result.stdout.startswith("1700000000.500000 ")
    assert "10.0.0.1.1 > 10.0.0.2.2: Flags [S]" in result.stdout
    assert "exp-e2d4" in result.stdout

"""Compressed capture input: gzip, bzip2, xz and zstd files made by the real tools.

The compressed files are made here (in tmp_path) by gzip, bzip2, xz and zstd themselves,
never committed.  Decompressed bytes must equal the original, from a path and from a
pipe; damage must end reading with one CaptureError line after everything decodable
before it.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from smctrace.capture import compressed
from smctrace.capture.compressed import open_capture_input
from smctrace.capture.pcapfile import CaptureFile
from smctrace.frame import CaptureError
from tests.support.captures import write_large_capture

ROOT = Path(__file__).resolve().parent.parent
REAL = sorted((ROOT / "tests" / "data" / "real-kernel").glob("*.pcap"))
# format name -> the command that compresses standard input to standard output
COMPRESSORS = {
    "gzip": ["gzip", "-c"],
    "bzip2": ["bzip2", "-c"],
    "xz": ["xz", "-c"],
    "zstd": ["zstd", "-q", "-c"],
}
FORMATS = list(COMPRESSORS)


def _tool_missing(name: str) -> bool:
    return shutil.which(COMPRESSORS[name][0]) is None


def compress(data: bytes, name: str, *options: str) -> bytes:
    if _tool_missing(name):
        pytest.skip(f"{COMPRESSORS[name][0]} is not installed")
    return subprocess.run([*COMPRESSORS[name], *options], input=data, capture_output=True,
                          check=True, timeout=300).stdout


# The stdlib's (or zstandard's) incremental decoder: what can be decoded from a prefix.
def _decodable(name: str, data: bytes) -> bytes:
    if name == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    if name == "bzip2":
        return bz2.BZ2Decompressor().decompress(data)
    if name == "xz":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def read_all(source: str) -> tuple[bytes, str, CaptureError | None]:
    """Everything the stream returns, its display name, and the error that ended it."""
    stream, name = open_capture_input(source)
    chunks = []
    window = bytearray(1 << 20)
    try:
        while count := stream.readinto(window):  # type: ignore[attr-defined]
            chunks.append(bytes(window[:count]))
    except CaptureError as error:
        return b"".join(chunks), name, error
    finally:
        stream.close()
    return b"".join(chunks), name, None


def frames_of(source: str | io.RawIOBase) -> list[tuple[int, float, bytes, int]]:
    with CaptureFile(source) as capture:  # type: ignore[arg-type]
        return [(f.number, f.time, f.data, f.orig_len) for f in capture.frames()]


def run_reader(source: str, *, stdin: bytes | Path | None = None,
               copy: bool = False) -> subprocess.CompletedProcess[bytes]:
    """tests/support/read_capture_input.py in a process of its own."""
    command = [sys.executable, "-m", "tests.support.read_capture_input", source]
    if copy:
        command.append("--copy")
    if isinstance(stdin, Path):
        with stdin.open("rb") as handle:
            return subprocess.run(command, stdin=handle, capture_output=True, cwd=ROOT,
                                  timeout=300, check=False)
    return subprocess.run(command, input=stdin, capture_output=True, cwd=ROOT, timeout=300,
                          check=False)


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("capture", REAL, ids=[path.name for path in REAL])
def test_real_capture_decompresses_to_the_same_frames(
    capture: Path, name: str, tmp_path: Path
) -> None:
    original = capture.read_bytes()
    path = tmp_path / (capture.name + ".compressed")  # the name does not say which format
    path.write_bytes(compress(original, name))
    data, display, error = read_all(str(path))
    assert (data, display, error) == (original, f"{path} ({name})", None)
    stream, _ = open_capture_input(str(path))
    assert frames_of(stream) == frames_of(str(capture))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", [*FORMATS, None])
def test_pipe_on_standard_input(name: str | None, tmp_path: Path) -> None:
    original = b"".join(path.read_bytes() for path in REAL)  # bytes, not one valid pcap
    piped = original if name is None else compress(original, name)
    proc = run_reader("-", stdin=piped, copy=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == original
    # Standard input redirected from a file can seek: the other way of looking at it.
    path = tmp_path / "input"
    path.write_bytes(piped)
    proc = run_reader("-", stdin=path, copy=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == original


def test_uncompressed_input_is_the_file_itself(tmp_path: Path) -> None:
    capture = REAL[0]
    stream, display = open_capture_input(str(capture))
    with stream:
        assert type(stream) is io.FileIO  # no layer between the reader and the kernel
        assert display == str(capture)
        assert stream.read() == capture.read_bytes()


@pytest.mark.parametrize("name", FORMATS)
def test_concatenated_streams_are_read_one_after_the_other(name: str, tmp_path: Path) -> None:
    first, second = REAL[0].read_bytes(), REAL[1].read_bytes()
    path = tmp_path / "joined"
    path.write_bytes(compress(first, name) + bytes(8) + compress(second, name))
    assert read_all(str(path)) == (first + second, f"{path} ({name})", None)


def test_pzstd_skippable_frames(tmp_path: Path) -> None:
    if shutil.which("pzstd") is None:
        pytest.skip("pzstd is not installed")
    original = b"".join(path.read_bytes() for path in REAL) * 50
    path = tmp_path / "parallel.zst"
    subprocess.run(["pzstd", "-q", "-p", "2", "-o", str(path)], input=original, check=True,
                   timeout=60)
    assert path.read_bytes()[:4] == bytes.fromhex("502a4d18")  # pzstd starts skippable
    assert read_all(str(path))[0] == original


@pytest.fixture(scope="module")
def multi_block_capture(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A capture of about 3 MB: many deflate, bzip2 (at -1), xz and zstd blocks."""
    path = tmp_path_factory.mktemp("multi-block") / "capture.pcap"
    write_large_capture(path, 3_000_000)
    return path.read_bytes()


def _small_blocks(name: str) -> tuple[str, ...]:
    return {"gzip": (), "bzip2": ("-1",), "xz": ("--block-size=256KiB",), "zstd": ()}[name]


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("kept", [0.5, 0.999])
def test_truncated_input_yields_everything_decodable_then_one_line(
    name: str, kept: float, multi_block_capture: bytes, tmp_path: Path
) -> None:
    packed = compress(multi_block_capture, name, *_small_blocks(name))
    cut = packed[: int(len(packed) * kept)]
    path = tmp_path / "cut"
    path.write_bytes(cut)
    data, _display, error = read_all(str(path))
    assert data == _decodable(name, cut)
    assert multi_block_capture.startswith(data)
    assert len(data) > len(multi_block_capture) // 10  # a substantial prefix
    assert str(error) == (f"{path}: truncated {name} data after {len(data)} bytes: "
                          "the input ends inside a compressed stream")


@pytest.mark.parametrize("name", FORMATS)
def test_truncated_capture_decodes_its_valid_frames_first(
    name: str, multi_block_capture: bytes, tmp_path: Path
) -> None:
    packed = compress(multi_block_capture, name, *_small_blocks(name))
    path = tmp_path / "cut"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    plain = tmp_path / "plain.pcap"
    plain.write_bytes(multi_block_capture)
    every_frame = frames_of(str(plain))
    stream, _ = open_capture_input(str(path))
    decoded = []
    with CaptureFile(stream) as capture, pytest.raises(CaptureError) as caught:  # type: ignore[arg-type]
        for frame in capture.frames():
            decoded.append((frame.number, frame.time, frame.data, frame.orig_len))
    assert f"truncated {name} data after " in str(caught.value)
    assert decoded == every_frame[: len(decoded)]
    # Exactly the frames whose records lie wholly in the decodable bytes were handed out.
    decodable = len(_decodable(name, packed[: len(packed) * 2 // 3]))
    record_end = 24  # after the pcap file header
    whole = 0
    for _number, _time, data, _orig_len in every_frame:
        record_end += 16 + len(data)
        if record_end > decodable:
            break
        whole += 1
    assert len(every_frame) // 3 < len(decoded) == whole


@pytest.mark.parametrize("name", FORMATS)
def test_corrupt_input_yields_the_undamaged_prefix_then_one_line(
    name: str, multi_block_capture: bytes, tmp_path: Path
) -> None:
    packed = bytearray(compress(multi_block_capture, name, *_small_blocks(name)))
    damage = len(packed) * 3 // 5
    for offset in range(damage, damage + 64):
        packed[offset] ^= 0x55
    path = tmp_path / "damaged"
    path.write_bytes(packed)
    data, _display, error = read_all(str(path))
    # Everything decodable from the compressed bytes before the slice holding the damage.
    undamaged = damage // compressed.DECODE_SLICE * compressed.DECODE_SLICE
    reference = _decodable(name, bytes(packed[:undamaged]))
    assert len(reference) > len(multi_block_capture) // 3
    assert data[: len(reference)] == reference == multi_block_capture[: len(reference)]
    assert error is not None
    message = str(error)
    assert message.startswith(f"{path}: corrupt {name} data after {len(data)} bytes: ")
    assert "\n" not in message and not message.endswith(": ")


def test_garbage_after_the_compressed_data(tmp_path: Path) -> None:
    original = REAL[0].read_bytes()
    path = tmp_path / "trailing"
    path.write_bytes(compress(original, "gzip") + b"not gzip")
    data, _display, error = read_all(str(path))
    assert data == original
    assert str(error) == (f"{path}: corrupt gzip data after {len(original)} bytes: "
                          "incorrect header check")


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as caught:
        open_capture_input(str(tmp_path / "absent.pcap.gz"))
    assert str(caught.value) == (f"cannot open {tmp_path / 'absent.pcap.gz'}: "
                                 "No such file or directory")


def test_missing_zstandard_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "capture.zst"
    path.write_bytes(compress(REAL[0].read_bytes(), "zstd"))
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard -> ImportError
    stream, _display = open_capture_input(str(path))
    with stream, pytest.raises(CaptureError) as caught:
        stream.read()
    assert str(caught.value) == (f"{path}: zstd input needs the zstandard module: "
                                 "pip install zstandard")


@pytest.mark.parametrize(
    ("name", "small", "large"),
    [("gzip", 20_000_000, 200_000_000), ("zstd", 20_000_000, 200_000_000),
     ("xz", 3_000_000, 30_000_000), ("bzip2", 3_000_000, 30_000_000)],
)
def test_memory_stays_flat_in_the_file_size(
    name: str, small: int, large: int, tmp_path: Path
) -> None:
    growth = {}
    for size in (small, large):
        plain = tmp_path / f"capture-{size}.pcap"
        write_large_capture(plain, size)
        packed = tmp_path / f"capture-{size}.packed"
        if _tool_missing(name):
            pytest.skip(f"{COMPRESSORS[name][0]} is not installed")
        level = "-1" if name in ("bzip2", "gzip") else "-0" if name == "xz" else "-3"
        with plain.open("rb") as source, packed.open("wb") as target:
            subprocess.run([*COMPRESSORS[name], level], stdin=source, stdout=target,
                           check=True, timeout=300)
        expected_size = plain.stat().st_size
        plain.unlink()
        proc = run_reader(str(packed))
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert report["bytes"] == expected_size and report["error"] is None
        growth[size] = report["rss_growth_kib"]
    # Ten times the input, (almost) no more memory: nothing grows with the file.
    assert growth[large] - growth[small] < 2048, growth
    assert growth[large] < 12 * 1024, growth

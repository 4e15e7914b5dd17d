"""Capture input that may be compressed: gzip, bzip2, xz or zstd, told apart by magic.

``tcpdump -w - | gzip > dump.pcap.gz`` and rotated ``.pcap.zst`` files are common; tshark
reads them, so smctrace does too.  :func:`open_capture_input` looks at the first bytes of
a file or of standard input (never at the file name), and returns a stream of the
decompressed capture, decoded as it is read: memory stays flat in the file size.

Uncompressed input is returned as the unbuffered file itself (or, for a pipe whose first
bytes had to be read to be looked at, a thin wrapper that hands them back and then passes
every ``readinto`` straight through), so the reader's large ``readinto`` calls go to the
kernel as before.

Damage surfaces from a read as :class:`~smctrace.frame.CaptureError`, one line, after every
byte decoded before it has been returned, so the caller decodes the valid prefix first.
"""

from __future__ import annotations

import io
import re
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

from smctrace.frame import CaptureError, describe_os_error

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer
    from zstandard import ZstdDecompressionObj

STDIN = "-"
STDIN_NAME = "<stdin>"
MAGIC_LEN = 6  # the longest magic (xz)
INPUT_CHUNK = 1024 * 1024  # compressed bytes read from the source at a time
# Compressed bytes handed to the decoder per call.  Small, because a decoder that meets
# damage loses the output of that call: the valid prefix is delivered to within this
# many compressed bytes of the damage.
DECODE_SLICE = 16 * 1024
# Decompressed bytes asked of a decoder per call: the transient copy each call makes.
OUTPUT_STEP = 256 * 1024


class _Decoder(Protocol):
    """One compressed stream (gzip member, bzip2/xz stream, zstd frame) being decoded:
    the interface of bz2.BZ2Decompressor and lzma.LZMADecompressor."""

    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: ReadableBuffer, max_length: int = -1) -> bytes: ...


class _GzipMember:
    """zlib's gzip decoder behind the BZ2Decompressor interface."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip header and trailer
        self._more_output = False

    @property
    def eof(self) -> bool:
        return self._inflate.eof

    @property
    def needs_input(self) -> bool:
        return not self._more_output

    @property
    def unused_data(self) -> bytes:
        return self._inflate.unused_data

    def decompress(self, data: ReadableBuffer, max_length: int = -1) -> bytes:
        tail = self._inflate.unconsumed_tail
        output = self._inflate.decompress(tail if tail else data, max_length)
        # A full output buffer may leave output inside zlib even with all input taken.
        self._more_output = bool(self._inflate.unconsumed_tail) or len(output) == max_length
        return output


class _ZstdFrame:
    """The zstandard module's frame decoder behind the BZ2Decompressor interface.

    zstandard's decompress() has no output limit, and zstd can expand a few input bytes
    into a 128 KiB block, so the input is fed in steps that adapt to keep each call's
    output near OUTPUT_STEP; output beyond ``max_length`` waits here for the next call.
    """

    MIN_STEP = 256

    def __init__(self, frame: ZstdDecompressionObj) -> None:
        self._frame = frame
        self._input = memoryview(b"")  # given but not yet fed to zstd
        self._step = DECODE_SLICE
        self._overflow = memoryview(b"")

    @property
    def eof(self) -> bool:
        return self._frame.eof and not self._overflow

    @property
    def needs_input(self) -> bool:
        return not self._input and not self._overflow

    @property
    def unused_data(self) -> bytes:
        return self._frame.unused_data + bytes(self._input)

    def decompress(self, data: ReadableBuffer, max_length: int = -1) -> bytes:
        if not self._overflow:
            if not self._input:
                self._input = memoryview(data).cast("B")
            step, self._input = self._input[: self._step], self._input[self._step :]
            produced = self._frame.decompress(bytes(step))
            if len(produced) > OUTPUT_STEP:
                self._step = max(self.MIN_STEP, self._step // 2)
            elif len(produced) < OUTPUT_STEP // 4:
                self._step = min(DECODE_SLICE, self._step * 2)
            self._overflow = memoryview(produced)
        if max_length < 0:
            max_length = len(self._overflow)
        result = bytes(self._overflow[:max_length])
        self._overflow = self._overflow[max_length:]
        return result


class _MissingModule(Exception):
    """A decoder's Python module is not installed (message: how to install it)."""


def _new_zstd_frame() -> _Decoder:
    try:
        import zstandard
    except ImportError:
        raise _MissingModule(
            "zstd input needs the zstandard module: pip install zstandard"
        ) from None
    return _ZstdFrame(zstandard.ZstdDecompressor().decompressobj())


def _decoder_errors() -> tuple[type[Exception], ...]:
    """What the decoders raise on damaged input (bz2 raises OSError)."""
    import lzma

    errors: tuple[type[Exception], ...] = (zlib.error, OSError, EOFError, lzma.LZMAError)
    try:
        import zstandard
    except ImportError:
        return errors
    return (*errors, zstandard.ZstdError)


# The bz2 and lzma modules are imported only when such input comes (start-up time).
def _new_bz2_stream() -> _Decoder:
    import bz2

    return cast(_Decoder, bz2.BZ2Decompressor())


def _new_xz_stream() -> _Decoder:
    import lzma

    return cast(_Decoder, lzma.LZMADecompressor(format=lzma.FORMAT_XZ))


@dataclass(frozen=True, slots=True)
class CompressionFormat:
    name: str
    matches: Callable[[bytes], bool]  # does the input's start carry this format's magic?
    new_decoder: Callable[[], _Decoder]


def _zstd_magic(head: bytes) -> bool:
    # A zstd frame, or a skippable frame (0x184D2A5?, little-endian), which pzstd writes
    # first.
    return head[:4] == b"\x28\xb5\x2f\xfd" or (
        len(head) >= 4 and head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18"
    )


FORMATS = (
    CompressionFormat("gzip", lambda head: head[:2] == b"\x1f\x8b", _GzipMember),
    # "BZh" and the block size digit
    CompressionFormat(
        "bzip2", lambda head: head[:3] == b"BZh" and b"1" <= head[3:4] <= b"9", _new_bz2_stream
    ),
    CompressionFormat("xz", lambda head: head[:6] == b"\xfd7zXZ\x00", _new_xz_stream),
    CompressionFormat("zstd", _zstd_magic, _new_zstd_frame),
)


def detect_format(head: bytes) -> CompressionFormat | None:
    """The compression format whose magic ``head`` (the input's first bytes) starts with."""
    for candidate in FORMATS:
        if candidate.matches(head):
            return candidate
    return None


_ZLIB_PREFIX = re.compile(r"^Error -?\d+ while (?:decompressing data|flushing): ")
_ZSTD_PREFIX = re.compile(r"^zstd decompress(?:or)? error: ")


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return _ZSTD_PREFIX.sub("", _ZLIB_PREFIX.sub("", text))


class _SourceReader(io.RawIOBase):
    """A read-only stream in front of ``source``, which it closes with itself."""

    def __init__(self, source: io.FileIO, display_name: str) -> None:
        super().__init__()
        self._source = source
        self.name = display_name

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()


class _DecompressingReader(_SourceReader):
    """A compressed stream read as the decompressed bytes, one decoder call at a time.

    Concatenated streams (``cat a.gz b.gz``, pbzip2, pzstd, xz -T) are read one after the
    other; NUL padding between them is skipped, as gzip and xz do.
    """

    def __init__(
        self,
        source: io.FileIO,
        head: bytes,
        compression: CompressionFormat,
        path: str,
        display_name: str,
    ) -> None:
        super().__init__(source, display_name)
        self._format = compression
        self._path = path
        self._input = memoryview(head)  # compressed bytes read but not yet decoded
        self._source_done = False
        self._decoder: _Decoder | None = None  # None between streams
        self._delivered = 0  # decompressed bytes returned so far
        self._failure: CaptureError | None = None  # raised by the next read
        self._errors = _decoder_errors()

    def _fail(self, what: str, reason: str, produced: int) -> CaptureError:
        return CaptureError(
            f"{self._path}: {what} {self._format.name} data after "
            f"{self._delivered + produced} bytes: {reason}"
        )

    def _more_input(self) -> bool:
        """Read the next chunk of compressed input; False at its end."""
        if self._source_done:
            return False
        chunk = self._source.read(INPUT_CHUNK)
        if not chunk:
            self._source_done = True
            return False
        self._input = memoryview(chunk)
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        output = memoryview(buffer).cast("B")
        want = len(output)
        filled = 0
        while filled < want:
            decoder = self._decoder
            piece: ReadableBuffer = b""
            if decoder is None or decoder.needs_input:
                if not self._input:
                    if filled:
                        break  # hand out what there is before blocking on the source again
                    if not self._more_input():
                        if decoder is not None:
                            raise self._fail(
                                "truncated", "the input ends inside a compressed stream", 0
                            )
                        break  # the input ended between two streams: its proper end
                if decoder is None:
                    padding_end = len(self._input) - len(bytes(self._input).lstrip(b"\0"))
                    self._input = self._input[padding_end:]
                    if not self._input:
                        continue
                    try:
                        decoder = self._decoder = self._format.new_decoder()
                    except _MissingModule as missing:
                        raise CaptureError(f"{self._path}: {missing}") from None
                piece, self._input = self._input[:DECODE_SLICE], self._input[DECODE_SLICE:]
            try:
                produced = decoder.decompress(piece, min(want - filled, OUTPUT_STEP))
            except self._errors as error:
                failure = self._fail("corrupt", _reason(error), filled)
                if not filled:
                    raise failure from None
                self._failure = failure  # after the bytes decoded before the damage
                break
            output[filled : filled + len(produced)] = produced
            filled += len(produced)
            if decoder.eof:
                rest = decoder.unused_data  # the start of the next stream, if any
                if rest:
                    self._input = memoryview(rest + bytes(self._input))
                self._decoder = None
        self._delivered += filled
        return filled


class _PrefixedStream(_SourceReader):
    """A non-seekable stream whose first bytes were read to look at: they are returned
    first, then every readinto goes straight to the stream."""

    def __init__(self, head: bytes, source: io.FileIO, display_name: str) -> None:
        super().__init__(source, display_name)
        self._head = head

    def readinto(self, buffer: WriteableBuffer) -> int | None:
        head = self._head
        if head:
            output = memoryview(buffer).cast("B")
            count = min(len(head), len(output))
            output[:count] = head[:count]
            self._head = head[count:]
            return count
        return self._source.readinto(buffer)


def _read_head(stream: io.FileIO) -> bytes:
    """The first MAGIC_LEN bytes (fewer at the end of input), consumed from ``stream``."""
    head = b""
    while len(head) < MAGIC_LEN:
        chunk = stream.read(MAGIC_LEN - len(head))
        if not chunk:
            break
        head += chunk
    return head


def _standard_input() -> io.FileIO:
    """Standard input unbuffered; if it is not a file descriptor (replaced in-process,
    e.g. by a test runner), the stream that replaced it."""
    try:
        return io.FileIO(sys.stdin.fileno(), "rb", closefd=False)
    except (OSError, ValueError, AttributeError):
        replacement = getattr(sys.stdin, "buffer", None)
        if replacement is None or not callable(getattr(replacement, "read", None)):
            raise
        return cast(io.FileIO, replacement)


def open_capture_input(source: str) -> tuple[BinaryIO, str]:
    """Open ``source`` (a path, or ``"-"`` for standard input) for reading the capture in
    it, decompressing gzip, bzip2, xz and zstd on the way.

    Returns the stream and a name for messages: the path or ``<stdin>``, followed by the
    compression, e.g. ``dump.pcap.gz (gzip)``.  Raises CaptureError (one line) if the
    input cannot be opened or read.
    """
    path = STDIN_NAME if source == STDIN else source
    try:
        # Unbuffered: the capture reader's readinto calls go straight to the kernel.
        stream = _standard_input() if source == STDIN else io.FileIO(source, "rb")
    except (OSError, ValueError, AttributeError) as error:
        # ValueError/AttributeError: standard input closed or replaced by a non-file.
        reason = describe_os_error(error) if isinstance(error, OSError) else "not available"
        what = "standard input" if source == STDIN else source
        raise CaptureError(f"cannot open {what}: {reason}") from None
    try:
        seekable = stream.seekable()
        start = stream.tell() if seekable else 0
        head = _read_head(stream)
        if seekable:
            stream.seek(start)
    except OSError as error:
        stream.close()
        raise CaptureError(f"{path}: read error: {describe_os_error(error)}") from None
    compression = detect_format(head)
    if compression is None:
        if seekable:
            return cast(BinaryIO, stream), path
        return cast(BinaryIO, _PrefixedStream(head, stream, path)), path
    display_name = f"{path} ({compression.name})"
    reader = _DecompressingReader(
        stream, b"" if seekable else head, compression, path, display_name
    )
    return cast(BinaryIO, reader), display_name

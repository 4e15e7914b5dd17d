"""Streaming reader for classic pcap and pcapng capture files.

The input is read in large chunks from a path, ``"-"`` (stdin) or any binary stream and
never seeked, so ``tcpdump -w - | smctrace -f -`` works and memory stays flat in the file
size.  :meth:`CaptureFile.segments` lets the rule's engine (:mod:`smctrace.match.engine`,
C when built) walk the records and hands out only the segments that cross; ``frames()``
yields every frame.  Damaged input ends with :class:`CaptureError` after every frame before the
damage has been yielded.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from smctrace.capture.formats import (
    IF_TSOFFSET,
    IF_TSRESOL,
    OPT_ENDOFOPT,
    PCAP_FILE_HEADER_LEN,
    PCAP_LINKTYPE_MASK,
    PCAP_MAGIC_NANO,
    PCAP_MAGICS,
    PCAP_MAX_CAPLEN_LIMIT,
    PCAP_MAX_SNAPLEN,
    PCAP_RECORD_HEADER_LEN,
    PCAPNG_BYTE_ORDER_MAGIC,
    PCAPNG_EPB,
    PCAPNG_EPB_FIXED,
    PCAPNG_IDB,
    PCAPNG_MAX_BLOCK_LEN,
    PCAPNG_OPB,
    PCAPNG_SHB,
    PCAPNG_SPB,
    PCAPNG_SPB_FIXED,
    pcapng_time,
)
from smctrace.frame import CaptureError, Frame, describe_os_error

if TYPE_CHECKING:  # the engine is passed in; the reader only calls it
    from smctrace.match.engine import EngineLike, SegmentTuple

CHUNK_SIZE = 4 * 1024 * 1024


class _ChunkBuffer:
    """A sliding window over a stream: ``data[pos:end]`` is unread, ``base`` is the file
    offset of ``data[0]``.

    The window is one reused bytearray filled with ``readinto``: no per-chunk allocation
    and no copy beyond the kernel's, and the scanner reads bytes that are still in cache.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        # readinto1/read1 return what a pipe has now instead of waiting for a full chunk,
        # which keeps a live `tcpdump -U -w - | smctrace -f -` responsive.
        readinto = getattr(stream, "readinto1", None) or getattr(stream, "readinto", None)
        self._readinto = readinto if callable(readinto) else None
        read1 = getattr(stream, "read1", None)
        self._read = read1 if callable(read1) else stream.read
        self.data = bytearray(CHUNK_SIZE)
        self.view = memoryview(self.data)
        self.pos = 0
        self.end = 0
        self.base = 0
        self.eof = False

    @property
    def available(self) -> int:
        return self.end - self.pos

    @property
    def offset(self) -> int:
        """File offset of the next unread byte."""
        return self.base + self.pos

    def take(self, start: int, stop: int) -> bytes:
        """A copy of data[start:stop] (frames outlive the window)."""
        return bytes(self.view[start:stop])

    def _compact(self, capacity: int) -> None:
        """Move the unread bytes to the front, growing the window to ``capacity``."""
        unread = self.end - self.pos
        if capacity > len(self.data):
            data = bytearray(capacity)
            data[:unread] = self.view[self.pos : self.end]
            self.view.release()
            self.data, self.view = data, memoryview(data)
        elif self.pos:
            self.view[:unread] = self.view[self.pos : self.end]
        self.base += self.pos
        self.pos, self.end = 0, unread

    def _read_some(self) -> int:
        """One read into the free space after ``end``; returns the byte count (0 = EOF)."""
        if self._readinto is not None:
            count = self._readinto(self.view[self.end :])
            if count is None:  # only non-blocking streams do this; we need blocking ones
                raise BlockingIOError("non-blocking capture stream has no data ready")
        else:
            chunk = self._read(len(self.data) - self.end)
            count = len(chunk)
            self.view[self.end : self.end + count] = chunk
        self.end += count
        return int(count)

    def ensure(self, count: int) -> bool:
        """Make ``count`` unread bytes available; False if the stream ends first.

        Reads only when the window lacks those bytes (a pipe read blocks, and a live
        capture must not wait for the next packet to hand out the current one), and then
        as much as the stream has, up to the window size, so the scanner sees many
        records per call.
        """
        while self.end - self.pos < count:
            if self.eof:
                return False
            capacity = len(self.data)
            if capacity - self.end < capacity // 2 or self.pos + count > capacity:
                self._compact(max(capacity, count))
            if self._read_some() == 0:
                self.eof = True
                return False
        return True


class CaptureFile:
    """A pcap or pcapng capture read as a stream of frames."""

    def __init__(self, source: str | BinaryIO, *, name: str | None = None,
                 first_number: int = 0) -> None:
        """``source``: a path (``-``: standard input) or an open binary stream; ``name``
        for messages; frames are numbered from ``first_number + 1`` (several inputs read
        as one trace number their frames on)."""
        self._owns_stream = False
        if isinstance(source, str):
            if source == "-":
                self.name = "<stdin>"
                stream: BinaryIO = sys.stdin.buffer
            else:
                self.name = source
                try:
                    stream = open(source, "rb", buffering=0)  # noqa: SIM115 - closed in close()
                except OSError as error:
                    raise CaptureError(
                        f"cannot open {source}: {describe_os_error(error)}"
                    ) from None
                self._owns_stream = True
        else:
            stream = source
            self.name = str(getattr(source, "name", "<stream>"))
        if name is not None:
            self.name = name
        self._first_number = first_number
        self._stream = stream
        self._buffer = _ChunkBuffer(stream)
        self.frames_read = 0
        self.linktypes: set[int] = set()  # link types the file declares
        self.snaplens: set[int] = set()  # snap lengths the file declares (0: none)
        self._iterating = False
        try:
            self.format = self._read_magic()
        except CaptureError:
            self.close()
            raise

    # -- lifetime -------------------------------------------------------------------

    def __enter__(self) -> CaptureFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_stream:
            self._stream.close()
            self._owns_stream = False

    @property
    def bytes_read(self) -> int:
        """Bytes consumed from the input so far (records handed out or skipped)."""
        return self._buffer.offset

    # -- header ---------------------------------------------------------------------

    def _read_magic(self) -> str:
        buffer = self._buffer
        try:
            buffer.ensure(4)
        except OSError as error:
            raise CaptureError(f"{self.name}: read error: {describe_os_error(error)}") from None
        if buffer.available == 0:
            raise CaptureError(f"{self.name}: empty input, not a pcap or pcapng file")
        head = bytes(buffer.view[buffer.pos : buffer.pos + 4])
        if len(head) == 4:
            little, big = struct.unpack("<I", head)[0], struct.unpack(">I", head)[0]
            if little in PCAP_MAGICS or big in PCAP_MAGICS:
                return "pcap"
            if little == PCAPNG_SHB:
                return "pcapng"
        raise CaptureError(f"{self.name}: not a pcap or pcapng file (magic 0x{head.hex()})")

    # -- iteration ------------------------------------------------------------------

    def frames(self) -> Iterator[Frame]:
        """Every frame, in file order (no rule applied: for tools and tests)."""
        for item in self._walk(None):
            assert isinstance(item, Frame)
            yield item

    def segments(self, engine: EngineLike) -> Iterator[SegmentTuple]:
        """The segments that cross the SMC-relevance rule, in file order."""
        for batch in self.segment_batches(engine):
            yield from batch

    def segment_batches(self, engine: EngineLike) -> Iterator[list[SegmentTuple]]:
        """The segments that cross the rule, in file order, a list per read of the input.

        The engine walks the records (in C when built); Python reads only what the
        engine stops at: file and block headers, obsolete packet blocks, records split
        across reads, and damage (which ends with CaptureError after the valid prefix).
        A list is reused: take its items before asking for the next one.  One comes after
        every read of the input, empty if nothing crossed, so that the caller can stop
        (a signal, a limit) while a long stretch without SMC is read.
        """
        for item in self._walk(engine):
            assert isinstance(item, list)
            yield item

    def _walk(self, engine: EngineLike | None) -> Iterator[Frame | list[SegmentTuple]]:
        if self._iterating:
            raise RuntimeError("a CaptureFile can only be iterated once")
        self._iterating = True
        try:
            if self.format == "pcap":
                yield from self._pcap(engine)
            else:
                yield from self._pcapng(engine)
        except OSError as error:
            raise CaptureError(f"{self.name}: read error: {describe_os_error(error)}") from None

    def _truncated(self, what: str, offset: int, announced: int, present: int) -> CaptureError:
        return CaptureError(
            f"{self.name}: truncated {what} at byte {offset} (frame {self.frames_read + 1}): "
            f"{announced} bytes announced, {present} present"
        )

    # -- classic pcap ---------------------------------------------------------------

    def _pcap(self, engine: EngineLike | None) -> Iterator[Frame | list[SegmentTuple]]:
        buffer = self._buffer
        if not buffer.ensure(PCAP_FILE_HEADER_LEN):
            raise CaptureError(
                f"{self.name}: truncated pcap file header: {PCAP_FILE_HEADER_LEN} bytes "
                f"needed, {buffer.available} present"
            )
        header = buffer.take(buffer.pos, buffer.pos + PCAP_FILE_HEADER_LEN)
        order = "<" if struct.unpack("<I", header[:4])[0] in PCAP_MAGICS else ">"
        magic, _major, _minor, _zone, _sigfigs, snaplen, linktype_field = struct.unpack(
            order + "IHHiIII", header
        )
        units = 1_000_000_000 if magic == PCAP_MAGIC_NANO else 1_000_000
        linktype = linktype_field & PCAP_LINKTYPE_MASK
        self.linktypes.add(linktype)
        self.snaplens.add(snaplen)
        max_caplen = min(max(snaplen, PCAP_MAX_SNAPLEN), PCAP_MAX_CAPLEN_LIMIT)
        swapped = (order == "<") != (sys.byteorder == "little")
        record_header = struct.Struct(order + "IIII")
        buffer.pos += PCAP_FILE_HEADER_LEN
        out: list[SegmentTuple] = []

        while True:
            if engine is not None:
                _status, position, walked = engine.scan_pcap(
                    buffer.view, buffer.pos, buffer.end, swapped, linktype, max_caplen,
                    float(units), self._first_number + self.frames_read, out)
                self.frames_read += walked
                buffer.pos = position
                if out or walked:  # (an empty list too: the caller may stop between reads)
                    yield out
                    out.clear()
            # The record at buffer.pos is not complete in the window (or the engine
            # stopped at it): check it and read on, or report the damage.
            if not buffer.ensure(PCAP_RECORD_HEADER_LEN):
                if buffer.available == 0:
                    return
                raise self._truncated("record header", buffer.offset,
                                      PCAP_RECORD_HEADER_LEN, buffer.available)
            seconds, fraction, caplen, orig_len = record_header.unpack_from(buffer.view, buffer.pos)
            if caplen > max_caplen:
                raise CaptureError(
                    f"{self.name}: corrupt record at byte {buffer.offset} "
                    f"(frame {self.frames_read + 1}): captured length {caplen} exceeds "
                    f"the maximum {max_caplen}"
                )
            if not buffer.ensure(PCAP_RECORD_HEADER_LEN + caplen):
                raise self._truncated("record", buffer.offset, caplen,
                                      buffer.available - PCAP_RECORD_HEADER_LEN)
            if engine is not None:
                continue  # complete now: the engine takes it from here
            start = buffer.pos + PCAP_RECORD_HEADER_LEN
            self.frames_read += 1
            frame = Frame(time=seconds + fraction / units, linktype=linktype,
                          data=buffer.take(start, start + caplen), orig_len=orig_len,
                          number=self._first_number + self.frames_read)
            buffer.pos = start + caplen
            yield frame

    # -- pcapng ---------------------------------------------------------------------

    def _pcapng(self, engine: EngineLike | None) -> Iterator[Frame | list[SegmentTuple]]:
        section = _PcapngSection(self.name)
        buffer = self._buffer
        out: list[SegmentTuple] = []
        while True:
            if engine is not None and section.interfaces:
                _status, position, walked, section.last_time = engine.scan_pcapng(
                    buffer.view, buffer.pos, buffer.end, section.swapped, section.interfaces,
                    section.last_time, self._first_number + self.frames_read, out)
                self.frames_read += walked
                buffer.pos = position
                if out or walked:  # (an empty list too: the caller may stop between reads)
                    yield out
                    out.clear()
            # Python handles this block: non-packet blocks, damage, or no engine.
            if not buffer.ensure(12):
                if buffer.available == 0:
                    if not section.started:
                        raise CaptureError(f"{self.name}: empty pcapng file")
                    return
                raise self._truncated("block header", buffer.offset, 12, buffer.available)
            block_offset = buffer.offset
            if not section.started or bytes(buffer.view[buffer.pos : buffer.pos + 4]) == (
                b"\x0a\x0d\x0d\x0a"
            ):
                section.start(buffer.view, buffer.pos, block_offset)
            block_type, total = struct.unpack_from(section.order + "II", buffer.view, buffer.pos)
            if total < 12 or total % 4:
                raise CaptureError(
                    f"{self.name}: corrupt pcapng block at byte {block_offset}: length {total} "
                    + ("< 12" if total < 12 else "is not a multiple of 4")
                )
            if total > PCAPNG_MAX_BLOCK_LEN:
                raise CaptureError(
                    f"{self.name}: corrupt pcapng block at byte {block_offset}: length {total} "
                    f"exceeds the {PCAPNG_MAX_BLOCK_LEN} byte limit"
                )
            if not buffer.ensure(total):
                raise self._truncated("block", block_offset, total, buffer.available)
            data = buffer.view
            position = buffer.pos
            trailer = section.word.unpack_from(data, position + total - 4)[0]
            if trailer != total:
                raise CaptureError(
                    f"{self.name}: corrupt pcapng block at byte {block_offset}: trailing "
                    f"length {trailer} differs from leading length {total}"
                )
            if block_type in (PCAPNG_EPB, PCAPNG_SPB, PCAPNG_OPB):
                # Reached for every packet block without an engine; with one, for OPBs
                # (unknown to the engine), blocks that arrived in pieces, and damage.
                section.check_packet_block(block_type, data, position, total, block_offset)
                self.frames_read += 1
                frame = section.packet_frame(block_type, data, position, total,
                                             self._first_number + self.frames_read)
                buffer.pos = position + total
                if engine is None:
                    yield frame
                    continue
                engine.feed(frame.data, frame.linktype, frame.time, frame.number,
                            frame.interface, frame.orig_len, True, out)
                if out:
                    yield out
                    out.clear()
                continue
            if block_type == PCAPNG_SHB:
                section.read_shb(data, position, total, block_offset)
            elif block_type == PCAPNG_IDB:
                section.read_idb(data, position, total, block_offset)
                self.linktypes.add(section.interfaces[-1][0])
                self.snaplens.add(section.interfaces[-1][3])
            # Any other block (statistics, name resolution, custom, ...) is skipped.
            buffer.pos = position + total


class _PcapngSection:
    """State of the current pcapng section: byte order and interfaces."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.order = "<"
        self.word = struct.Struct("<I")
        self.started = False  # a section header has been seen
        self.swapped = False
        # Per interface: link type, timestamp units per second, offset (s), snap length.
        self.interfaces: list[tuple[int, int, int, int]] = []
        self.last_time = 0.0

    def start(self, data: memoryview, position: int, block_offset: int) -> None:
        """Learn the byte order from the SHB at ``position`` (at least 12 bytes present)."""
        block_type = bytes(data[position : position + 4])
        if block_type != b"\x0a\x0d\x0d\x0a":
            raise CaptureError(
                f"{self.name}: corrupt pcapng file at byte {block_offset}: "
                f"first block is not a section header (type 0x{block_type.hex()})"
            )
        magic = bytes(data[position + 8 : position + 12])
        if magic == struct.pack("<I", PCAPNG_BYTE_ORDER_MAGIC):
            self.order = "<"
        elif magic == struct.pack(">I", PCAPNG_BYTE_ORDER_MAGIC):
            self.order = ">"
        else:
            raise CaptureError(
                f"{self.name}: corrupt pcapng section header at byte {block_offset}: "
                f"byte-order magic 0x{magic.hex()}"
            )
        self.word = struct.Struct(self.order + "I")
        self.started = True
        self.swapped = (self.order == "<") != (sys.byteorder == "little")

    def read_shb(self, data: memoryview, position: int, total: int, block_offset: int) -> None:
        if total < 28:
            raise CaptureError(
                f"{self.name}: corrupt pcapng section header at byte {block_offset}: "
                f"length {total} < 28"
            )
        major = struct.unpack_from(self.order + "H", data, position + 12)[0]
        if major != 1:
            raise CaptureError(
                f"{self.name}: unsupported pcapng version {major} at byte {block_offset}"
            )
        self.interfaces = []

    def read_idb(self, data: memoryview, position: int, total: int, block_offset: int) -> None:
        if total < 20:
            raise CaptureError(
                f"{self.name}: corrupt pcapng interface block at byte {block_offset}: "
                f"length {total} < 20"
            )
        linktype, _reserved, snaplen = struct.unpack_from(self.order + "HHI", data, position + 8)
        units = 1_000_000
        tsoffset = 0
        cursor = position + 16
        end = position + total - 4
        # Options: code, length, value padded to 4; a malformed list just ends the walk.
        while cursor + 4 <= end:
            code, length = struct.unpack_from(self.order + "HH", data, cursor)
            value_start = cursor + 4
            if code == OPT_ENDOFOPT or value_start + length > end:
                break
            if code == IF_TSRESOL and length >= 1:
                resolution = data[value_start]
                exponent = resolution & 0x7F
                units = 2**exponent if resolution & 0x80 else 10**exponent
            elif code == IF_TSOFFSET and length >= 8:
                tsoffset = struct.unpack_from(self.order + "q", data, value_start)[0]
            cursor = value_start + length + (-length % 4)
        self.interfaces.append((linktype, units, tsoffset, snaplen))

    def check_packet_block(self, block_type: int, data: memoryview, position: int, total: int,
                           offset: int) -> None:
        """Raise CaptureError for a packet block whose fields contradict each other."""
        body_len = total - 12
        # An OPB's fixed fields (a half-word interface, a drops count) fill as many bytes.
        fixed = PCAPNG_SPB_FIXED if block_type == PCAPNG_SPB else PCAPNG_EPB_FIXED
        problem = ""
        if body_len < fixed:
            problem = f"length {total} too short for a packet block"
        elif not self.interfaces:
            problem = "packet block before any interface description"
        elif block_type != PCAPNG_SPB:
            interface_format = self.order + ("I" if block_type == PCAPNG_EPB else "H")
            interface = struct.unpack_from(interface_format, data, position + 8)[0]
            caplen = self.word.unpack_from(data, position + 20)[0]
            if interface >= len(self.interfaces):
                problem = f"packet on interface {interface}, only {len(self.interfaces)} defined"
            elif caplen > body_len - fixed:
                problem = f"captured length {caplen} exceeds the block"
        if problem:
            raise CaptureError(f"{self.name}: corrupt pcapng block at byte {offset}: {problem}")

    def packet_frame(self, block_type: int, data: memoryview, position: int, total: int,
                     number: int) -> Frame:
        """The Frame of a checked EPB/SPB/OPB at ``position``."""
        body = position + 8
        if block_type == PCAPNG_SPB:
            linktype, _units, _tsoffset, snaplen = self.interfaces[0]
            orig_len = self.word.unpack_from(data, body)[0]
            caplen = min(orig_len, snaplen or orig_len, total - 16)
            return Frame(time=self.last_time, linktype=linktype,
                         data=bytes(data[body + 4 : body + 4 + caplen]), orig_len=orig_len,
                         interface=0, number=number)
        if block_type == PCAPNG_EPB:
            interface, high, low, caplen, orig_len = struct.unpack_from(
                self.order + "IIIII", data, body
            )
        else:
            interface, _drops, high, low, caplen, orig_len = struct.unpack_from(
                self.order + "HHIIII", data, body
            )
        linktype, units, tsoffset, _snaplen = self.interfaces[interface]
        self.last_time = pcapng_time((high << 32) | low, units, tsoffset)
        return Frame(time=self.last_time, linktype=linktype,
                     data=bytes(data[body + 20 : body + 20 + caplen]), orig_len=orig_len,
                     interface=interface, number=number)

"""Writers for classic pcap and pcapng files.

Used to write synthetic captures (tests, benchmarks) and to save traced frames.  Both
writers only append to a binary stream; they never seek, so they work on pipes.
"""

from __future__ import annotations

import math
import struct
from typing import BinaryIO

from smctrace.capture.formats import (
    IF_NAME,
    IF_TSOFFSET,
    IF_TSRESOL,
    OPT_COMMENT,
    OPT_ENDOFOPT,
    PCAP_MAGIC_MICRO,
    PCAP_MAGIC_NANO,
    PCAP_MAX_SNAPLEN,
    PCAPNG_BYTE_ORDER_MAGIC,
    PCAPNG_EPB,
    PCAPNG_IDB,
    PCAPNG_OPB,
    PCAPNG_SHB,
    PCAPNG_SPB,
    SHB_USERAPPL,
)

DEFAULT_SNAPLEN = PCAP_MAX_SNAPLEN


def _split_time(time: float, units_per_second: int) -> tuple[int, int]:
    """Split seconds into (whole seconds, fraction in units), carrying rounding overflow."""
    seconds = math.floor(time)
    fraction = round((time - seconds) * units_per_second)
    if fraction >= units_per_second:
        seconds += 1
        fraction -= units_per_second
    return seconds, fraction


class PcapWriter:
    """Classic pcap (libpcap) file writer."""

    def __init__(
        self,
        stream: BinaryIO,
        linktype: int,
        snaplen: int = DEFAULT_SNAPLEN,
        nanosecond: bool = False,
        big_endian: bool = False,
    ) -> None:
        self._stream = stream
        self._order = ">" if big_endian else "<"
        self._units = 1_000_000_000 if nanosecond else 1_000_000
        self.snaplen = snaplen
        self.linktype = linktype
        magic = PCAP_MAGIC_NANO if nanosecond else PCAP_MAGIC_MICRO
        stream.write(struct.pack(self._order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, time: float, data: bytes, orig_len: int | None = None) -> None:
        """Append one record; data longer than the snap length is cut (orig_len kept)."""
        wire_len = len(data) if orig_len is None else orig_len
        captured = data[: self.snaplen]
        seconds, fraction = _split_time(time, self._units)
        self._stream.write(
            struct.pack(self._order + "IIII", seconds, fraction, len(captured), wire_len) + captured
        )


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + bytes(-len(value) % 4)


class PcapngWriter:
    """pcapng file writer: one section header on creation, interfaces added on demand."""

    def __init__(self, stream: BinaryIO, big_endian: bool = False) -> None:
        self._stream = stream
        self._order = ">" if big_endian else "<"
        # Per interface: timestamp units per second, offset in seconds, snap length.
        self._interfaces: list[tuple[int, int, int]] = []
        self.new_section()

    def _options(self, options: list[tuple[int, bytes]]) -> bytes:
        if not options:
            return b""
        return b"".join(_option(self._order, code, value) for code, value in options) + (
            _option(self._order, OPT_ENDOFOPT, b"")
        )

    def write_block(self, block_type: int, body: bytes) -> None:
        """Append a raw block (body padded to 4 bytes); also used for unknown blocks."""
        body += bytes(-len(body) % 4)
        total = 12 + len(body)
        length = struct.pack(self._order + "I", total)
        self._stream.write(struct.pack(self._order + "I", block_type) + length + body + length)

    def new_section(self) -> None:
        """Start a new section (SHB); interfaces of the previous section are forgotten."""
        self._interfaces = []
        body = struct.pack(self._order + "IHHq", PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1)
        body += self._options([(SHB_USERAPPL, b"smctrace")])
        self.write_block(PCAPNG_SHB, body)

    def add_interface(
        self,
        linktype: int,
        name: str | None = None,
        snaplen: int = DEFAULT_SNAPLEN,
        tsresol: int = 9,
        tsoffset: int = 0,
    ) -> int:
        """Add an interface (IDB); returns its id for :meth:`write`.

        ``tsresol`` is the raw if_tsresol byte: 0..127 means 10**-n seconds, 0x80|n
        means 2**-n seconds.  ``tsoffset`` is if_tsoffset in seconds.
        """
        options: list[tuple[int, bytes]] = []
        if name is not None:
            options.append((IF_NAME, name.encode()))
        if tsresol != 6:
            options.append((IF_TSRESOL, bytes((tsresol,))))
        if tsoffset:
            options.append((IF_TSOFFSET, struct.pack(self._order + "q", tsoffset)))
        body = struct.pack(self._order + "HHI", linktype, 0, snaplen) + self._options(options)
        self.write_block(PCAPNG_IDB, body)
        units = 2 ** (tsresol & 0x7F) if tsresol & 0x80 else 10 ** (tsresol & 0x7F)
        self._interfaces.append((units, tsoffset, snaplen))
        return len(self._interfaces) - 1

    def write(
        self,
        interface: int,
        time: float,
        data: bytes,
        orig_len: int | None = None,
        comment: str | None = None,
    ) -> None:
        """Append an enhanced packet block (EPB), with opt_comment if given."""
        units, tsoffset, snaplen = self._interfaces[interface]
        wire_len = len(data) if orig_len is None else orig_len
        captured = data[:snaplen] if snaplen else data
        seconds, fraction = _split_time(time - tsoffset, units)
        timestamp = seconds * units + fraction
        body = struct.pack(
            self._order + "IIIII",
            interface,
            (timestamp >> 32) & 0xFFFFFFFF,
            timestamp & 0xFFFFFFFF,
            len(captured),
            wire_len,
        )
        body += captured + bytes(-len(captured) % 4)
        if comment is not None:
            body += self._options([(OPT_COMMENT, comment.encode())])
        self.write_block(PCAPNG_EPB, body)

    def write_simple(self, data: bytes, orig_len: int | None = None) -> None:
        """Append a simple packet block (SPB: no timestamp, interface 0)."""
        wire_len = len(data) if orig_len is None else orig_len
        self.write_block(PCAPNG_SPB, struct.pack(self._order + "I", wire_len) + data)

    def write_obsolete(
        self, interface: int, time: float, data: bytes, orig_len: int | None = None
    ) -> None:
        """Append an obsolete packet block (OPB, type 2), as very old writers did."""
        units, tsoffset, _ = self._interfaces[interface]
        wire_len = len(data) if orig_len is None else orig_len
        seconds, fraction = _split_time(time - tsoffset, units)
        timestamp = seconds * units + fraction
        body = struct.pack(
            self._order + "HHIIII",
            interface,
            0,  # drops count
            (timestamp >> 32) & 0xFFFFFFFF,
            timestamp & 0xFFFFFFFF,
            len(data),
            wire_len,
        )
        self.write_block(PCAPNG_OPB, body + data)

"""Offline prefilter: skip frames that cannot matter for SMC without building objects.

A frame is a *candidate* iff it is a first-fragment TCP segment over IPv4/IPv6 and any of:

(a) its captured payload starts with a CLC eyecatcher (E2D4C3D9 "SMCR" or E2D4C3C4 "SMCD");
(b) it is a SYN or SYN-ACK carrying the SMC option;
(c) its flow is *watched* and it has SYN, FIN or RST set or a non-empty payload.

Everything else is skipped.  A client SYN without the SMC option is not a candidate but is
counted (:attr:`Prefilter.plain_syns`), once per (flow, ISN): a direct-mapped memory of
recent SYNs drops retransmissions.  So Python sees only the frames of SMC connections, not
the SYN and FIN of every ordinary flow, which would cost tens of microseconds each.

Watched flows live in a 65536-bit bitmap indexed by :func:`flow_hash`; a bit may stand for
several flows (false positives are fine: the stream layer re-checks exactly), so every bit
carries a reference count and unwatching one flow never clears another's bit.

The walk over records is done by the C extension ``smctrace.capture._scan`` when it was
built (:data:`NATIVE` is True), else by the pure-Python functions below, which implement
the same rule with :mod:`smctrace.packet`.  Both return at each candidate, so the reader
runs Python code once per candidate, not once per frame.
"""

from __future__ import annotations

import socket
import struct
import sys
from array import array
from collections.abc import Callable
from typing import Protocol

from smctrace.packet import (
    ACK,
    FIN,
    RST,
    SYN,
    ByteData,
    has_smc_option,
    locate_ip,
    parse_tcp_from_ip,
)

BITMAP_BITS = 65536
BITMAP_BYTES = BITMAP_BITS // 8

STATUS_STOP = 0  # the record/block at the returned offset needs the Python reader
STATUS_CANDIDATE = 1  # the record/block at the returned offset is a candidate

PCAPNG_EPB = 6
PCAPNG_SPB = 3

EYECATCHERS = (b"\xe2\xd4\xc3\xd9", b"\xe2\xd4\xc3\xc4")  # "SMCR", "SMCD" in EBCDIC

_FNV_OFFSET_BASIS = 0x811C9DC5
_FNV_PRIME = 0x01000193

Buffer = ByteData


SYN_MEMORY_SLOTS = 4096  # recent plain SYNs remembered (power of two)


def _fnv1a(value: int, data: bytes) -> int:
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def _flow_hash32(src: bytes, dst: bytes, sport: int, dport: int) -> int:
    return _fnv1a(_FNV_OFFSET_BASIS, src + dst + struct.pack("!HH", sport, dport))


def flow_hash(src: bytes, dst: bytes, sport: int, dport: int) -> int:
    """FNV-1a 32 over src || dst || sport (BE) || dport (BE), folded to 16 bits."""
    value = _flow_hash32(src, dst, sport, dport)
    return (value ^ (value >> 16)) & 0xFFFF


def new_syn_memory() -> array[int]:
    """Slots for recent plain SYN keys, then the count of distinct plain SYNs."""
    return array("I", bytes(4 * (SYN_MEMORY_SLOTS + 1)))


def _note_plain_syn(memory: array[int], flow: int, seq: int) -> None:
    """Count a client SYN without the SMC option once per (flow, ISN)."""
    key = _fnv1a(flow, struct.pack("!I", seq)) or 1  # 0 marks an empty slot
    slot = key & (SYN_MEMORY_SLOTS - 1)
    if memory[slot] != key:
        memory[slot] = key
        memory[SYN_MEMORY_SLOTS] += 1


def _file_order(swapped: bool) -> str:
    """struct byte-order prefix of a file whose order differs from the host's iff swapped."""
    little = (sys.byteorder == "little") != swapped
    return "<" if little else ">"


def _address_bytes(address: str) -> bytes:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return socket.inet_pton(family, address)


def _bitmap_bit(bitmap: Buffer, index: int) -> bool:
    return bool((bitmap[index >> 3] >> (index & 7)) & 1)


def python_is_candidate(
    data: Buffer, linktype: int, bitmap: Buffer, syn_memory: array[int] | None = None
) -> bool:
    """The candidate rule for one frame (the reference the C code must match)."""
    ip_offset, version = locate_ip(data, linktype)
    if ip_offset < 0:
        return False
    view = parse_tcp_from_ip(data, ip_offset, version)
    if view is None:
        return False
    payload_captured = view.captured_end - view.payload_start
    if not view.flags & (SYN | FIN | RST) and payload_captured <= 0:
        return False  # a bare ACK: the bulk of every capture
    if payload_captured >= 4 and bytes(data[view.payload_start : view.payload_start + 4]) in (
        EYECATCHERS
    ):
        return True
    address_len = view.address_len
    src = bytes(data[view.src_offset : view.src_offset + address_len])
    dst = bytes(data[view.src_offset + address_len : view.src_offset + 2 * address_len])
    flow = _flow_hash32(src, dst, view.sport, view.dport)
    if _bitmap_bit(bitmap, (flow ^ (flow >> 16)) & 0xFFFF):
        return True
    if view.flags & SYN:
        if has_smc_option(data, view.options_start, view.payload_start):
            return True
        if not view.flags & ACK and syn_memory is not None:
            _note_plain_syn(syn_memory, flow, view.seq)
    return False


def python_scan_pcap(
    buf: Buffer,
    start: int,
    end: int,
    swapped: bool,
    linktype: int,
    max_caplen: int,
    bitmap: Buffer,
    syn_memory: array[int] | None = None,
) -> tuple[int, int, int]:
    """Pure-Python twin of ``_scan.scan_pcap`` (same arguments and result)."""
    view = memoryview(buf)
    order = _file_order(swapped)
    length_format = struct.Struct(order + "I")
    position = start
    frames = 0
    while end - position >= 16:
        (caplen,) = length_format.unpack_from(view, position + 8)
        if caplen > max_caplen or caplen > end - position - 16:
            break
        frames += 1
        frame = view[position + 16 : position + 16 + caplen]
        if python_is_candidate(frame, linktype, bitmap, syn_memory):
            return STATUS_CANDIDATE, position, frames
        position += 16 + caplen
    return STATUS_STOP, position, frames


def python_scan_pcapng(
    buf: Buffer,
    start: int,
    end: int,
    swapped: bool,
    linktypes: Buffer,
    bitmap: Buffer,
    syn_memory: array[int] | None = None,
) -> tuple[int, int, int, int]:
    """Pure-Python twin of ``_scan.scan_pcapng`` (same arguments and result)."""
    view = memoryview(buf)
    order = _file_order(swapped)
    word = struct.Struct(order + "I")
    interface_linktypes = array("I", bytes(linktypes)[: len(linktypes) // 4 * 4])
    position = start
    frames = 0
    last_epb = -1
    while end - position >= 12:
        block_type, total = struct.unpack_from(order + "II", view, position)
        if total < 12 or total % 4 or total > end - position:
            break
        if word.unpack_from(view, position + total - 4)[0] != total:
            break
        body = position + 8
        body_len = total - 12
        if block_type == PCAPNG_EPB:
            if body_len < 20:
                break
            interface = word.unpack_from(view, body)[0]
            caplen = word.unpack_from(view, body + 12)[0]
            if interface >= len(interface_linktypes) or caplen > body_len - 20:
                break
            frame_start = body + 20
            last_epb = position
        elif block_type == PCAPNG_SPB:
            if body_len < 4 or not interface_linktypes:
                break
            interface = 0
            caplen = min(word.unpack_from(view, body)[0], body_len - 4)
            frame_start = body + 4
        else:
            break
        frames += 1
        frame = view[frame_start : frame_start + caplen]
        if python_is_candidate(frame, interface_linktypes[interface], bitmap, syn_memory):
            return STATUS_CANDIDATE, position, frames, last_epb
        position += total
    return STATUS_STOP, position, frames, last_epb


class _ScanPcap(Protocol):
    def __call__(
        self,
        buf: Buffer,
        start: int,
        end: int,
        swapped: bool,
        linktype: int,
        max_caplen: int,
        bitmap: Buffer,
        syn_memory: array[int] | None = None,
        /,
    ) -> tuple[int, int, int]: ...


class _ScanPcapng(Protocol):
    def __call__(
        self,
        buf: Buffer,
        start: int,
        end: int,
        swapped: bool,
        linktypes: Buffer,
        bitmap: Buffer,
        syn_memory: array[int] | None = None,
        /,
    ) -> tuple[int, int, int, int]: ...


_native_scan_pcap: _ScanPcap | None
_native_scan_pcapng: _ScanPcapng | None
_IsCandidate = Callable[[Buffer, int, Buffer, "array[int] | None"], bool]
_native_is_candidate: _IsCandidate | None
try:
    from smctrace.capture import _scan  # type: ignore[attr-defined]
except ImportError:  # extension not built (no compiler): same rule, in Python
    _native_scan_pcap = _native_scan_pcapng = _native_is_candidate = None
else:
    _native_scan_pcap = _scan.scan_pcap
    _native_scan_pcapng = _scan.scan_pcapng
    _native_is_candidate = _scan.is_candidate

NATIVE: bool = _native_scan_pcap is not None


class Prefilter:
    """Candidate test plus the set of watched flows.

    ``native=None`` uses the C scanner when it is available; False forces Python (tests).
    """

    def __init__(self, native: bool | None = None) -> None:
        if native and not NATIVE:
            raise RuntimeError("the native scanner smctrace.capture._scan is not built")
        self.native = NATIVE if native is None else native
        self.bitmap = bytearray(BITMAP_BYTES)
        self._refcounts = array("I", bytes(4 * BITMAP_BITS))
        self.candidates = 0  # candidate frames found so far
        self.syn_memory = new_syn_memory()
        if self.native:
            assert _native_scan_pcap and _native_scan_pcapng and _native_is_candidate
            self._scan_pcap: _ScanPcap = _native_scan_pcap
            self._scan_pcapng: _ScanPcapng = _native_scan_pcapng
            self._is_candidate: _IsCandidate = _native_is_candidate
        else:
            self._scan_pcap = python_scan_pcap
            self._scan_pcapng = python_scan_pcapng
            self._is_candidate = python_is_candidate

    @staticmethod
    def _flow_bits(src: str, dst: str, sport: int, dport: int) -> tuple[int, int]:
        src_bytes, dst_bytes = _address_bytes(src), _address_bytes(dst)
        return (
            flow_hash(src_bytes, dst_bytes, sport, dport),
            flow_hash(dst_bytes, src_bytes, dport, sport),
        )

    def watch(self, src: str, dst: str, sport: int, dport: int) -> None:
        """Make data segments of this connection (both directions) candidates."""
        for index in self._flow_bits(src, dst, sport, dport):
            self._refcounts[index] += 1
            self.bitmap[index >> 3] |= 1 << (index & 7)

    def unwatch(self, src: str, dst: str, sport: int, dport: int) -> None:
        """Undo one :meth:`watch` of this connection; unknown flows are ignored."""
        for index in self._flow_bits(src, dst, sport, dport):
            if self._refcounts[index] == 0:
                continue
            self._refcounts[index] -= 1
            if self._refcounts[index] == 0:
                self.bitmap[index >> 3] &= ~(1 << (index & 7)) & 0xFF

    @property
    def plain_syns(self) -> int:
        """Client SYNs without the SMC option seen so far (retransmissions counted once)."""
        return self.syn_memory[SYN_MEMORY_SLOTS]

    def is_watched(self, src: str, dst: str, sport: int, dport: int) -> bool:
        """True if data from src:sport to dst:dport would pass (c) (may be a false positive)."""
        return _bitmap_bit(self.bitmap, self._flow_bits(src, dst, sport, dport)[0])

    def is_candidate(self, data: Buffer, linktype: int) -> bool:
        """Apply the candidate rule to one frame (counts it when it is a candidate)."""
        if self._is_candidate(data, linktype, self.bitmap, self.syn_memory):
            self.candidates += 1
            return True
        return False

    def scan_pcap(
        self, buf: Buffer, start: int, end: int, swapped: bool, linktype: int, max_caplen: int
    ) -> tuple[int, int, int]:
        """Walk pcap records to the next candidate: (status, offset, frames walked)."""
        result = self._scan_pcap(
            buf, start, end, swapped, linktype, max_caplen, self.bitmap, self.syn_memory
        )
        if result[0] == STATUS_CANDIDATE:
            self.candidates += 1
        return result

    def scan_pcapng(
        self, buf: Buffer, start: int, end: int, swapped: bool, linktypes: Buffer
    ) -> tuple[int, int, int, int]:
        """Walk pcapng packet blocks to the next candidate (see ``_scan.scan_pcapng``)."""
        result = self._scan_pcapng(
            buf, start, end, swapped, linktypes, self.bitmap, self.syn_memory
        )
        if result[0] == STATUS_CANDIDATE:
            self.candidates += 1
        return result

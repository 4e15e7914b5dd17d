"""Frames -> TCP segments: link layer, IPv4/IPv6, TCP and the SMC TCP option.

:func:`parse_frame` turns a captured :class:`~smctrace.frame.Frame` into a
:class:`Segment`, or ``None`` when the frame is not the first fragment of a TCP segment
over IPv4/IPv6 (or its headers are truncated).  It never raises, whatever the bytes.

The lower-level :func:`locate_ip` and :func:`parse_tcp_from_ip` are shared with the
pure-Python prefilter, which must apply exactly the same rules as the C scanner in
``smctrace/capture/_scan.c``; any change here must be mirrored there (the equivalence
tests compare both on random and mutated frames).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import NamedTuple

from smctrace.frame import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_ALT_12,
    LINKTYPE_RAW_ALT_14,
    Frame,
)

# TCP flag bits (byte 13 of the TCP header).
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
# 802.1Q, 802.1ad and the pre-standard QinQ TPID: each adds a 4-byte tag.
VLAN_ETHERTYPES = frozenset((0x8100, 0x88A8, 0x9100))

# BSD loopback address families (values differ between BSDs for IPv6).
NULL_FAMILY_INET = 2
NULL_FAMILIES_INET6 = frozenset((24, 28, 30))

IPPROTO_TCP = 6
# IPv6 extension headers whose length is (byte 1 + 1) * 8: hop-by-hop, routing,
# destination options, mobility, HIP, shim6, experimental.
IPV6_GENERIC_EXT_HEADERS = frozenset((0, 43, 60, 135, 139, 140, 253, 254))
IPV6_EXT_FRAGMENT = 44
IPV6_EXT_AH = 51
# More than this many extension headers is not a real packet; stop rather than walk on.
MAX_IPV6_EXT_HEADERS = 16

TCPOPT_EOL = 0
TCPOPT_NOP = 1
TCPOPT_EXP = 254
SMC_EXID = b"\xe2\xd4\xc3\xd9"  # "SMCR" in EBCDIC

VERSION_IPV4 = 4
VERSION_IPV6 = 6

# Frame bytes as the parsers accept them (the prefilter passes zero-copy memoryviews).
ByteData = bytes | bytearray | memoryview


@dataclass(slots=True, frozen=True)
class Segment:
    """A TCP segment, reduced to what SMC tracing needs."""

    time: float
    src: str  # textual IP address ("10.0.0.1", "2001:db8::1")
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int  # TCP flags byte
    smc_option: bool  # TCP option kind 254, len >= 6, ExID E2D4C3D9 present
    payload: bytes  # TCP payload as captured (may be shorter than on the wire)
    payload_len: int  # TCP payload length on the wire (from the IP total length)
    frame: int = 0  # frame number in the input
    interface: int = 0


class TcpView(NamedTuple):
    """Offsets and fields of a TCP segment inside a frame buffer (nothing copied)."""

    version: int  # 4 or 6
    src_offset: int  # source address offset in the buffer (4 or 16 bytes long)
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    options_start: int  # first TCP option byte
    payload_start: int  # first payload byte (end of TCP header)
    captured_end: int  # end of captured payload (bounded by IP length and capture)
    payload_len: int  # payload length on the wire, from the IP length

    @property
    def address_len(self) -> int:
        return 4 if self.version == VERSION_IPV4 else 16


def _ethertype_to_version(ethertype: int) -> int:
    if ethertype == ETHERTYPE_IPV4:
        return VERSION_IPV4
    if ethertype == ETHERTYPE_IPV6:
        return VERSION_IPV6
    return 0


def _after_ethertype(data: ByteData, type_offset: int, payload_offset: int) -> tuple[int, int]:
    """Follow VLAN tags from an EtherType field; returns (IP offset, IP version) or (-1, 0)."""
    length = len(data)
    if type_offset + 2 > length:
        return -1, 0
    ethertype = (data[type_offset] << 8) | data[type_offset + 1]
    # Each tag is TCI(2) + inner EtherType(2); the frame length bounds the loop.
    while ethertype in VLAN_ETHERTYPES:
        if payload_offset + 4 > length:
            return -1, 0
        ethertype = (data[payload_offset + 2] << 8) | data[payload_offset + 3]
        payload_offset += 4
    version = _ethertype_to_version(ethertype)
    if not version:
        return -1, 0
    return payload_offset, version


def locate_ip(data: ByteData, linktype: int) -> tuple[int, int]:
    """Find the IP header after the link layer: (offset, version 4/6), or (-1, 0)."""
    length = len(data)
    if linktype == LINKTYPE_ETHERNET:
        return _after_ethertype(data, 12, 14)
    if linktype == LINKTYPE_LINUX_SLL:
        return _after_ethertype(data, 14, 16)
    if linktype == LINKTYPE_LINUX_SLL2:
        if length < 20:
            return -1, 0
        return _after_ethertype(data, 0, 20)
    if linktype in (LINKTYPE_RAW, LINKTYPE_RAW_ALT_12, LINKTYPE_RAW_ALT_14):
        if length < 1:
            return -1, 0
        version = data[0] >> 4
        return (0, version) if version in (VERSION_IPV4, VERSION_IPV6) else (-1, 0)
    if linktype == LINKTYPE_IPV4:
        return 0, VERSION_IPV4
    if linktype == LINKTYPE_IPV6:
        return 0, VERSION_IPV6
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if length < 4:
            return -1, 0
        # NULL is in the capturing host's byte order, LOOP in network order, and writers
        # get both wrong; a family fits in 16 bits, so the wrong order shows up as > 0xFFFF.
        family = int.from_bytes(data[:4], "little")
        if family > 0xFFFF:
            family = int.from_bytes(data[:4], "big")
        if family == NULL_FAMILY_INET:
            return 4, VERSION_IPV4
        if family in NULL_FAMILIES_INET6:
            return 4, VERSION_IPV6
        return -1, 0
    return -1, 0


# IPv4: version/IHL, total length, flags/fragment offset, protocol (one read per header).
_IPV4 = struct.Struct("!BxH2xHxB")
# TCP: ports, sequence and acknowledgment numbers, data offset byte, flags.
_TCP = struct.Struct("!HHIIBB")


def _ipv4_tcp_offset(data: ByteData, offset: int) -> tuple[int, int]:
    """(TCP offset, IP end) for a first-fragment IPv4 TCP packet, else (-1, 0)."""
    length = len(data)
    if offset + 20 > length:
        return -1, 0
    vihl, total_len, fragment, protocol = _IPV4.unpack_from(data, offset)
    if vihl >> 4 != VERSION_IPV4:
        return -1, 0
    header_len = (vihl & 0x0F) * 4
    if header_len < 20 or offset + header_len > length:
        return -1, 0
    if protocol != IPPROTO_TCP:
        return -1, 0
    if fragment & 0x1FFF:
        return -1, 0  # not the first fragment: no TCP header here
    if total_len == 0:
        # TSO/BIG TCP frames captured on the sender carry 0; the capture is all there is.
        ip_end = length
    elif total_len < header_len:
        return -1, 0
    else:
        ip_end = offset + total_len
    return offset + header_len, ip_end


def _ipv6_tcp_offset(data: ByteData, offset: int) -> tuple[int, int]:
    """(TCP offset, IP end) after walking IPv6 extension headers, else (-1, 0)."""
    length = len(data)
    if offset + 40 > length or data[offset] >> 4 != VERSION_IPV6:
        return -1, 0
    payload_len = (data[offset + 4] << 8) | data[offset + 5]
    # 0 = jumbogram / BIG TCP: the length lives elsewhere; use what was captured.
    ip_end = offset + 40 + payload_len if payload_len else length
    limit = min(ip_end, length)
    next_header = data[offset + 6]
    cursor = offset + 40
    for _ in range(MAX_IPV6_EXT_HEADERS):
        if next_header == IPPROTO_TCP:
            return cursor, ip_end
        if cursor + 8 > limit:
            return -1, 0  # every extension header is at least 8 bytes
        if next_header in IPV6_GENERIC_EXT_HEADERS:
            header_len = (data[cursor + 1] + 1) * 8
        elif next_header == IPV6_EXT_FRAGMENT:
            if ((data[cursor + 2] << 8) | data[cursor + 3]) & 0xFFF8:
                return -1, 0  # not the first fragment
            header_len = 8
        elif next_header == IPV6_EXT_AH:
            header_len = (data[cursor + 1] + 2) * 4
        else:
            return -1, 0  # ESP, no-next-header, UDP, ...: no TCP header to read
        next_header = data[cursor]
        cursor += header_len
    return -1, 0


def parse_tcp_from_ip(data: ByteData, ip_offset: int, version: int) -> TcpView | None:
    """Parse IP + TCP headers starting at ``ip_offset``; None if not a usable TCP segment."""
    if version == VERSION_IPV4:
        tcp_offset, ip_end = _ipv4_tcp_offset(data, ip_offset)
    else:
        tcp_offset, ip_end = _ipv6_tcp_offset(data, ip_offset)
    if tcp_offset < 0:
        return None
    captured_end = min(ip_end, len(data))
    if tcp_offset + 20 > captured_end:
        return None
    sport, dport, seq, ack, offset_byte, flags = _TCP.unpack_from(data, tcp_offset)
    header_len = (offset_byte >> 4) * 4
    payload_start = tcp_offset + header_len
    # A header longer than the IP packet is malformed; one cut by the snap length is
    # truncated; either way there is no segment to report.
    if header_len < 20 or payload_start > captured_end:
        return None
    return TcpView(
        version=version,
        src_offset=ip_offset + (12 if version == VERSION_IPV4 else 8),
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        flags=flags,
        options_start=tcp_offset + 20,
        payload_start=payload_start,
        captured_end=captured_end,
        payload_len=ip_end - payload_start,
    )


def has_smc_option(data: ByteData, start: int, end: int) -> bool:
    """Walk TCP options in data[start:end] for kind 254, even len >= 6, ExID E2D4C3D9.

    EOL ends the list; a length byte that is missing, < 2 or runs past the header makes
    the rest of the list unreadable, so the walk stops there (as Linux does).
    """
    if isinstance(data, bytes) and data.find(b"\xfe", start, end) < 0:
        return False  # no byte can be kind 254: most segments carry only timestamps
    cursor = start
    while cursor < end:
        kind = data[cursor]
        if kind == TCPOPT_EOL:
            return False
        if kind == TCPOPT_NOP:
            cursor += 1
            continue
        if cursor + 1 >= end:
            return False
        option_len = data[cursor + 1]
        if option_len < 2 or cursor + option_len > end:
            return False
        if (
            kind == TCPOPT_EXP
            and option_len >= 6
            and option_len % 2 == 0
            and data[cursor + 2 : cursor + 6] == SMC_EXID
        ):
            return True
        cursor += option_len
    return False


def parse_frame(frame: Frame) -> Segment | None:
    """The TCP segment in ``frame``, or None (not IP/TCP, non-first fragment, truncated)."""
    data = frame.data
    ip_offset, version = locate_ip(data, frame.linktype)
    if ip_offset < 0:
        return None
    view = parse_tcp_from_ip(data, ip_offset, version)
    if view is None:
        return None
    address_len = view.address_len
    src = data[view.src_offset : view.src_offset + address_len]
    dst = data[view.src_offset + address_len : view.src_offset + 2 * address_len]
    family = socket.AF_INET if version == VERSION_IPV4 else socket.AF_INET6
    return Segment(
        time=frame.time,
        src=socket.inet_ntop(family, src),
        dst=socket.inet_ntop(family, dst),
        sport=view.sport,
        dport=view.dport,
        seq=view.seq,
        ack=view.ack,
        flags=view.flags,
        smc_option=has_smc_option(data, view.options_start, view.payload_start),
        payload=bytes(data[view.payload_start : view.captured_end]),
        payload_len=view.payload_len,
        frame=frame.number,
        interface=frame.interface,
    )

"""Builders of synthetic frames for tests, benchmarks and replay.

:func:`tcp_frame` produces one complete link-layer frame carrying a TCP segment, shaped the
way Linux sends it (option layout, the SMC option after MSS/timestamps/window scale), so
that captures written with :mod:`smctrace.capture.pcapwriter` look like real ones to
smctrace, tcpdump and tshark.  TCP checksums are left 0 (nobody here validates them); the
IPv4 header checksum is filled in because it costs nothing.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

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
)
from smctrace.match.rule import ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPV6_EXT_AH, IPV6_EXT_FRAGMENT
from smctrace.packet import ACK, SYN

# The SMC rendezvous option exactly as Linux writes it: two NOPs + kind 254, len 6, ExID.
SMC_OPTION_BYTES = bytes.fromhex("0101fe06e2d4c3d9")

ETHERTYPE_VLAN = 0x8100  # 802.1Q customer tag
ETHERTYPE_QINQ = 0x88A8  # 802.1ad service tag

_SRC_MAC = bytes.fromhex("020000000001")
_DST_MAC = bytes.fromhex("020000000002")
# Arbitrary but fixed timestamp values so synthetic frames are reproducible.
_TS_VAL = 0x01020304
_TS_ECR = 0x05060708


def linux_tcp_options(flags: int, smc_option: bool) -> bytes:
    """The option block Linux puts on a segment with these flags (4-byte aligned).

    SYN and SYN-ACK: MSS 1460, SACK-permitted + timestamps, NOP + window scale 7, then
    the SMC option if requested (Linux writes it last).  Other segments: NOP NOP +
    timestamps (the common 66-byte Ethernet ACK), plus the SMC option if requested.
    """
    if flags & SYN:
        options = (
            struct.pack("!BBH", 2, 4, 1460)
            + struct.pack("!BBBBII", 4, 2, 8, 10, _TS_VAL, 0 if not flags & ACK else _TS_ECR)
            + bytes((1, 3, 3, 7))
        )
    else:
        options = bytes((1, 1)) + struct.pack("!BBII", 8, 10, _TS_VAL, _TS_ECR)
    if smc_option:
        options += SMC_OPTION_BYTES
    return options


def _pad4(data: bytes) -> bytes:
    """Pad an option area with EOL (0) bytes to a multiple of 4 bytes."""
    return data + bytes(-len(data) % 4)


def tcp_segment(
    sport: int,
    dport: int,
    *,
    seq: int = 0,
    ack: int = 0,
    flags: int = ACK,
    payload: bytes = b"",
    smc_option: bool = False,
    tcp_options: bytes | None = None,
) -> bytes:
    """A TCP header plus payload (checksum 0).

    ``tcp_options`` replaces Linux's default option block (padded with EOL to 4 bytes);
    ``smc_option`` then appends the SMC option after it.
    """
    if tcp_options is None:
        options = linux_tcp_options(flags, smc_option)
    else:
        options = _pad4(tcp_options + (SMC_OPTION_BYTES if smc_option else b""))
    if len(options) > 40:
        raise ValueError(f"TCP options are {len(options)} bytes, at most 40 fit")
    data_offset_words = (20 + len(options)) // 4
    window = 64240 if flags & SYN else 502
    header = struct.pack(
        "!HHIIBBHHH",
        sport,
        dport,
        seq & 0xFFFFFFFF,
        ack & 0xFFFFFFFF,
        data_offset_words << 4,
        flags & 0xFF,
        window,
        0,  # checksum, not computed
        0,  # urgent pointer
    )
    return header + options + payload


def ipv4_checksum(header: bytes) -> int:
    """The IPv4 header checksum of ``header`` (its checksum field zeroed)."""
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_packet(
    src: str,
    dst: str,
    protocol: int,
    body: bytes,
    *,
    ip_options: bytes = b"",
    ip_id: int = 0,
    frag_offset: int = 0,
    more_fragments: bool = False,
) -> bytes:
    """An IPv4 header (with options, padded to 4 bytes) plus body.

    ``frag_offset`` is the header field value, in units of 8 bytes.
    """
    options = _pad4(ip_options)
    if len(options) > 40:
        raise ValueError(f"IPv4 options are {len(options)} bytes, at most 40 fit")
    header_len = 20 + len(options)
    flags_fragment = (0x2000 if more_fragments else 0) | (frag_offset & 0x1FFF)
    if not more_fragments and frag_offset == 0:
        flags_fragment |= 0x4000  # DF, as Linux sets on TCP
    header = (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | (header_len // 4),
            0,
            header_len + len(body),
            ip_id & 0xFFFF,
            flags_fragment,
            64,
            protocol,
            0,
            ipaddress.IPv4Address(src).packed,
            ipaddress.IPv4Address(dst).packed,
        )
        + options
    )
    checksum = ipv4_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + body


def _ipv6_extension_header(kind: int, next_header: int, body: bytes) -> bytes:
    """One IPv6 extension header; ``body`` excludes the next-header and length bytes."""
    if kind == IPV6_EXT_FRAGMENT:
        # Fixed 8 bytes; the length byte is reserved.
        return bytes((next_header, 0)) + body[:6].ljust(6, b"\0")
    padded = body + bytes(-(len(body) + 2) % 8)
    total = len(padded) + 2
    # AH counts 4-byte units minus 2; every other header 8-byte units minus 1.
    length = total // 4 - 2 if kind == IPV6_EXT_AH else total // 8 - 1
    return bytes((next_header, length)) + padded


def ipv6_packet(
    src: str,
    dst: str,
    protocol: int,
    body: bytes,
    *,
    ext_headers: Sequence[tuple[int, bytes]] = (),
    ip_id: int = 0,
    frag_offset: int = 0,
    more_fragments: bool = False,
) -> bytes:
    """An IPv6 header, extension headers in the given order, then body.

    ``ext_headers`` items are (header number, body without next-header/length bytes).
    If ``frag_offset`` or ``more_fragments`` is set, a fragment header (identification
    ``ip_id``) is appended to the chain; ``frag_offset`` is in units of 8 bytes.
    """
    chain = list(ext_headers)
    if frag_offset or more_fragments:
        fragment_field = ((frag_offset & 0x1FFF) << 3) | (1 if more_fragments else 0)
        chain.append((IPV6_EXT_FRAGMENT, struct.pack("!HI", fragment_field, ip_id)))
    kinds = [kind for kind, _ in chain] + [protocol]
    extension_bytes = b"".join(
        _ipv6_extension_header(kind, kinds[index + 1], body_bytes)
        for index, (kind, body_bytes) in enumerate(chain)
    )
    payload = extension_bytes + body
    header = struct.pack(
        "!IHBB16s16s",
        6 << 28,
        len(payload) & 0xFFFF,
        kinds[0],
        64,
        ipaddress.IPv6Address(src).packed,
        ipaddress.IPv6Address(dst).packed,
    )
    return header + payload


def link_header(linktype: int, ipv6: bool, vlans: Sequence[int] = ()) -> bytes:
    """The link-layer header that precedes an IP packet for ``linktype``.

    ``vlans`` (Ethernet only) lists VLAN ids outermost first; with more than one tag the
    outer ones are 802.1ad service tags and the innermost an 802.1Q tag (QinQ).
    """
    ethertype = ETHERTYPE_IPV6 if ipv6 else ETHERTYPE_IPV4
    if vlans and linktype != LINKTYPE_ETHERNET:
        raise ValueError("VLAN tags are only supported on Ethernet")
    if linktype == LINKTYPE_ETHERNET:
        header = _DST_MAC + _SRC_MAC
        for index, vlan in enumerate(vlans):
            tpid = ETHERTYPE_VLAN if index == len(vlans) - 1 else ETHERTYPE_QINQ
            header += struct.pack("!HH", tpid, vlan & 0x0FFF)
        return header + struct.pack("!H", ethertype)
    if linktype == LINKTYPE_LINUX_SLL:
        # packet type 0 (to us), ARPHRD_ETHER, 6-byte address padded to 8
        return struct.pack("!HHH8sH", 0, 1, 6, _SRC_MAC, ethertype)
    if linktype == LINKTYPE_LINUX_SLL2:
        return struct.pack("!HHIHBB8s", ethertype, 0, 1, 1, 0, 6, _SRC_MAC)
    if linktype in (LINKTYPE_RAW, LINKTYPE_RAW_ALT_12, LINKTYPE_RAW_ALT_14, LINKTYPE_IPV4,
                    LINKTYPE_IPV6):
        return b""
    if linktype == LINKTYPE_NULL:
        # Host byte order of the capturing machine; little-endian like x86. 30 = BSD AF_INET6.
        return struct.pack("<I", 30 if ipv6 else 2)
    if linktype == LINKTYPE_LOOP:
        return struct.pack("!I", 24 if ipv6 else 2)
    raise ValueError(f"unsupported link type {linktype}")


def tcp_frame(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    *,
    seq: int = 0,
    ack: int = 0,
    flags: int = ACK,
    payload: bytes = b"",
    smc_option: bool = False,
    tcp_options: bytes | None = None,
    linktype: int = LINKTYPE_ETHERNET,
    vlans: Sequence[int] = (),
    ip_options: bytes = b"",
    ipv6_ext_headers: Sequence[tuple[int, bytes]] = (),
    ip_id: int = 0,
    frag_offset: int = 0,
    more_fragments: bool = False,
) -> bytes:
    """A complete frame of ``linktype`` carrying one TCP segment.

    IPv4 or IPv6 is chosen from the address syntax of ``src``.  ``ip_options`` applies to
    IPv4, ``ipv6_ext_headers`` to IPv6 (see :func:`ipv6_packet`).  ``frag_offset`` is the
    fragment offset field (8-byte units); with it the TCP bytes are still emitted as the
    fragment's body, which is what a parser must *not* interpret.
    """
    ipv6 = ":" in src
    segment = tcp_segment(
        sport,
        dport,
        seq=seq,
        ack=ack,
        flags=flags,
        payload=payload,
        smc_option=smc_option,
        tcp_options=tcp_options,
    )
    if ipv6:
        if linktype == LINKTYPE_IPV4:
            raise ValueError("LINKTYPE_IPV4 cannot carry an IPv6 packet")
        packet = ipv6_packet(
            src,
            dst,
            6,
            segment,
            ext_headers=ipv6_ext_headers,
            ip_id=ip_id,
            frag_offset=frag_offset,
            more_fragments=more_fragments,
        )
    else:
        if linktype == LINKTYPE_IPV6:
            raise ValueError("LINKTYPE_IPV6 cannot carry an IPv4 packet")
        packet = ipv4_packet(
            src,
            dst,
            6,
            segment,
            ip_options=ip_options,
            ip_id=ip_id,
            frag_offset=frag_offset,
            more_fragments=more_fragments,
        )
    return link_header(linktype, ipv6, vlans) + packet


def clc_like_payload(kind: int, length: int) -> bytes:
    """Bytes framed like a CLC message (eyecatcher, type, length, trailer eyecatcher).

    Only the framing is real; the body is zeros.  Enough for prefilter and reader
    benchmarks, not for decoder tests.
    """
    length = max(length, 12)
    eyecatcher = b"\xe2\xd4\xc3\xd9"
    return eyecatcher + struct.pack("!BHB", kind, length, 0x10) + bytes(length - 12) + eyecatcher

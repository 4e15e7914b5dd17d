"""Synthetic captures for tests: a varied frame mix on any link type, and large captures.

The frame mix is built so that tcpdump filter expressions have something to tell apart on
every link type smctrace reads: IPv4 and IPv6, TCP with every handshake flag combination,
CLC payloads, UDP, ICMP, IPv4 fragments, several hosts, nets and ports, frames cut short
by the snap length, and (Ethernet) 802.1Q and QinQ tags.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

from smctrace.capture.pcapwriter import PcapWriter
from smctrace.frame import LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6
from smctrace.packet import ACK, FIN, PSH, RST, SYN
from tests.support.synth import (
    clc_like_payload,
    ipv4_packet,
    ipv6_packet,
    link_header,
    tcp_frame,
)

IPPROTO_ICMP = 1
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58

# (client, server) address pairs; the filter tests name these hosts and nets.
IPV4_PAIRS = (("192.0.2.2", "192.0.2.1"), ("10.1.1.1", "10.2.3.4"), ("127.0.0.1", "127.0.0.1"))
IPV6_PAIRS = (("2001:db8::2", "2001:db8::1"), ("::1", "::1"), ("fe80::1", "2001:db8:1::5"))
PORT_PAIRS = ((46198, 7001), (52000, 22), (40000, 8080), (7005, 443))
VLAN_STACKS: tuple[tuple[int, ...], ...] = ((), (100,), (200, 300))


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _ip(src: str, dst: str, protocol: int, body: bytes, *, frag_offset: int = 0) -> bytes:
    if ":" in src:
        return ipv6_packet(src, dst, protocol, body, frag_offset=frag_offset, ip_id=7)
    return ipv4_packet(src, dst, protocol, body, frag_offset=frag_offset, ip_id=7)


def _mix_for_pair(
    src: str, dst: str, linktype: int, vlans: Sequence[int]
) -> Iterator[tuple[bytes, int]]:
    """(frame, wire length) for one address pair: TCP handshakes, data, UDP, ICMP."""
    ipv6 = ":" in src
    head = link_header(linktype, ipv6, vlans)
    for sport, dport in PORT_PAIRS:
        for flags, payload in (
            (SYN, b""),
            (SYN | ACK, b""),
            (ACK, b""),
            (PSH | ACK, clc_like_payload(1, 44)),
            (PSH | ACK, b"GET / HTTP/1.1\r\n\r\n" * 12),
            (FIN | ACK, b""),
            (RST, b""),
        ):
            frame = tcp_frame(
                src,
                dst,
                sport,
                dport,
                flags=flags,
                payload=payload,
                smc_option=bool(flags & SYN),
                linktype=linktype,
                vlans=vlans,
            )
            yield frame, len(frame)
            reply = tcp_frame(
                dst, src, dport, sport, flags=flags | ACK, linktype=linktype, vlans=vlans
            )
            yield reply, len(reply)
    udp = head + _ip(src, dst, IPPROTO_UDP, _udp(49441, 4791, bytes(64)))
    yield udp, len(udp)
    icmp_protocol = IPPROTO_ICMPV6 if ipv6 else IPPROTO_ICMP
    icmp = head + _ip(src, dst, icmp_protocol, bytes((8, 0, 0, 0)) + bytes(36))
    yield icmp, len(icmp)
    # A later fragment: its bytes look like a TCP header, port filters must not bite.
    fragment = head + _ip(src, dst, 6, _udp(7001, 7001, bytes(32)), frag_offset=185)
    yield fragment, len(fragment)
    # Cut by the snap length: caplen 60, longer on the wire.
    long_frame = tcp_frame(src, dst, 33000, 7001, payload=bytes(900), linktype=linktype,
                           vlans=vlans)
    yield long_frame[:60], len(long_frame)


def filter_test_frames(linktype: int) -> list[tuple[bytes, int]]:
    """The frame mix for ``linktype``: (captured bytes, wire length) pairs."""
    frames: list[tuple[bytes, int]] = []
    stacks = VLAN_STACKS if linktype == LINKTYPE_ETHERNET else ((),)
    pairs: list[tuple[str, str]] = []
    if linktype != LINKTYPE_IPV6:
        pairs += IPV4_PAIRS
    if linktype != LINKTYPE_IPV4:
        pairs += IPV6_PAIRS
    for vlans in stacks:
        for src, dst in pairs:
            frames.extend(_mix_for_pair(src, dst, linktype, vlans))
    return frames


def write_pcap(path: Path, linktype: int, frames: Sequence[tuple[bytes, int]]) -> Path:
    """A classic pcap of ``frames``; frame n (1-based) has time n seconds."""
    with path.open("wb") as stream:
        writer = PcapWriter(stream, linktype)
        for number, (data, wire_len) in enumerate(frames, start=1):
            writer.write(float(number), data, wire_len)
    return path


def write_large_capture(path: Path, size: int) -> int:
    """A pcap of at least ``size`` bytes of varied TCP traffic; returns its frame count.

    Each payload is another window of a 1 MiB pseudo-random pool: LZ77 compressors with
    a window that holds the pool (zstd, xz) shrink the file a lot, the others (gzip,
    bzip2) barely, which gives every format many blocks to decode.
    """
    pool = random.Random(7001).randbytes(1 << 20)
    headers = [
        tcp_frame("192.0.2.2", "192.0.2.1", 40000 + index, 7001, seq=index * 1000,
                  flags=PSH | ACK)
        for index in range(64)
    ]
    count = 0
    written = 24
    with path.open("wb", buffering=1 << 20) as stream:
        writer = PcapWriter(stream, LINKTYPE_ETHERNET)
        while written < size:
            offset = count * 104729 % (len(pool) - 1500)
            frame = headers[count % len(headers)] + pool[offset : offset + 200 + count % 1200]
            writer.write(1_700_000_000 + count * 1e-5, frame)
            written += 16 + len(frame)
            count += 1
    return count

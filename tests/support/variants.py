"""Variants of a capture: the same TCP conversations as people actually capture them.

Each transformer takes the frames of a capture (Ethernet, as the real-kernel captures
are) and returns new frames carrying exactly the same TCP byte streams, re-segmented,
reordered, resent or seen twice; smctrace must decode every variant to the original's
connections and messages.  Segments are rebuilt with correct IPv4/IPv6 lengths; TCP
checksums are left as they are (nobody here validates them).

    split3     every payload segment in 3 pieces, the first shorter than a CLC header
    cut16      every payload segment in 16-byte pieces
    reversed   the 16-byte pieces of every payload segment in reverse order
    retransmit every payload segment sent again 12 ms later (a TCP retransmission;
               also after the Confirm)
    overlap    every payload segment as two pieces overlapping by a third
    duplicate  every frame twice, 1 us apart (two interfaces, a bridge and its port)
    any        every frame as LINUX_SLL2, once leaving one interface and once arriving
               at another (``tcpdump -i any`` on a host with a veth pair)
    midstream  the capture starts after the TCP handshake (no SYN, no SYN-ACK)
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from smctrace.frame import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, Frame
from smctrace.match.reference import TcpView, parse
from smctrace.packet import SYN
from tests.support.synth import ipv4_checksum

RETRANSMIT_DELAY = 0.012  # later than the duplicate window, like a Linux tail loss probe
DUPLICATE_DELAY = 1e-6
SLL2_OUTGOING, SLL2_HOST = 4, 0


@dataclass(frozen=True, slots=True)
class Piece:
    """A part of one segment's payload: bytes [start, end) of it."""

    start: int
    end: int


def _with_payload(frame: Frame, view: TcpView, start: int, end: int) -> Frame:
    """``frame`` carrying only payload bytes [start, end) of its segment."""
    data = frame.data
    headers = data[: view.payload_start]
    payload = data[view.payload_start + start : view.payload_start + end]
    packet = bytearray(headers + payload)
    tcp_offset = view.options_start - 20
    struct.pack_into("!I", packet, tcp_offset + 4, (view.seq + start) % (1 << 32))
    ip_offset = view.src_offset - (12 if view.version == 4 else 8)
    ip_length = len(packet) - ip_offset
    if view.version == 4:
        struct.pack_into("!H", packet, ip_offset + 2, ip_length)
        struct.pack_into("!H", packet, ip_offset + 10, 0)
        struct.pack_into("!H", packet, ip_offset + 10, ipv4_checksum(
            bytes(packet[ip_offset : ip_offset + (packet[ip_offset] & 0x0F) * 4])))
    else:
        struct.pack_into("!H", packet, ip_offset + 4, ip_length - 40)
    return replace(frame, data=bytes(packet), orig_len=len(packet))


def _payload_view(frame: Frame) -> TcpView | None:
    view = parse(frame.data, frame.linktype)
    if view is None or view.captured_end <= view.payload_start:
        return None
    return view


def resegment(frames: Iterable[Frame],
              pieces: Callable[[int], list[Piece]]) -> list[Frame]:
    """Every payload segment replaced by the pieces ``pieces(length)`` says, in order."""
    out: list[Frame] = []
    for frame in frames:
        view = _payload_view(frame)
        if view is None:
            out.append(frame)
            continue
        length = view.captured_end - view.payload_start
        out += [_with_payload(frame, view, p.start, p.end) for p in pieces(length)]
    return out


def _split3(length: int) -> list[Piece]:
    if length < 3:
        return [Piece(0, length)]
    first = min(3, length - 2)
    middle = first + (length - first) // 2
    return [Piece(0, first), Piece(first, middle), Piece(middle, length)]


def _cut16(length: int) -> list[Piece]:
    return [Piece(start, min(start + 16, length)) for start in range(0, length, 16)]


def _reversed16(length: int) -> list[Piece]:
    return list(reversed(_cut16(length)))


def _overlap(length: int) -> list[Piece]:
    if length < 3:
        return [Piece(0, length)]
    third = length // 3
    return [Piece(0, length - third), Piece(third, length)]


def retransmit(frames: Iterable[Frame]) -> list[Frame]:
    out: list[Frame] = []
    for frame in frames:
        out.append(frame)
        if _payload_view(frame) is not None:
            out.append(replace(frame, time=frame.time + RETRANSMIT_DELAY))
    return out


def duplicate(frames: Iterable[Frame]) -> list[Frame]:
    return [copy for frame in frames
            for copy in (frame, replace(frame, time=frame.time + DUPLICATE_DELAY))]


def as_any(frames: Iterable[Frame], out_ifindex: int = 2, in_ifindex: int = 3) -> list[Frame]:
    """Ethernet frames as ``-i any`` shows a crossing of a veth pair: SLL2, twice."""
    out: list[Frame] = []
    for frame in frames:
        if frame.linktype != LINKTYPE_ETHERNET or len(frame.data) < 14:
            out.append(frame)
            continue
        ethertype = frame.data[12:14]
        source = frame.data[6:12]
        for pkttype, ifindex, delay in ((SLL2_OUTGOING, out_ifindex, 0.0),
                                        (SLL2_HOST, in_ifindex, DUPLICATE_DELAY)):
            header = ethertype + b"\x00\x00" + struct.pack("!IHBB", ifindex, 1, pkttype, 6) \
                + source + b"\x00\x00"
            data = header + frame.data[14:]
            out.append(replace(frame, time=frame.time + delay, linktype=LINKTYPE_LINUX_SLL2,
                               data=data, orig_len=frame.orig_len - 14 + len(header)))
    return out


def midstream(frames: Iterable[Frame]) -> list[Frame]:
    out = []
    for frame in frames:
        view = parse(frame.data, frame.linktype)
        if view is not None and view.flags & SYN:
            continue
        out.append(frame)
    return out


VARIANTS: dict[str, Callable[[list[Frame]], list[Frame]]] = {
    "split3": lambda frames: resegment(frames, _split3),
    "cut16": lambda frames: resegment(frames, _cut16),
    "reversed": lambda frames: resegment(frames, _reversed16),
    "retransmit": retransmit,
    "overlap": lambda frames: resegment(frames, _overlap),
    "duplicate": duplicate,
    "any": as_any,
    "midstream": midstream,
}
# Variants that split CLC messages across segments: the stateless classic-BPF program
# cannot follow them (its documented limit).
SPLITTING = frozenset({"split3", "cut16", "reversed", "overlap"})
# Variants that resend bytes: the connection counts the retransmissions.
RESENDING = frozenset({"retransmit", "overlap"})

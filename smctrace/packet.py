"""Frames -> TCP segments: one frame parsed into a :class:`Segment`, without the rule.

The pipeline itself gets its segments from the rule's engines (:mod:`smctrace.match`),
which parse every frame once, by the rule's limits (link layers, VLAN tags, IPv6
extension headers).  :func:`parse_frame` is that same parser for one frame, for tools
and tests that want a frame's segment whatever the rule says of it.
"""

from __future__ import annotations

import socket

from smctrace.frame import Frame
from smctrace.match import rule as R
from smctrace.match.engine import Segment
from smctrace.match.reference import has_smc_option, parse

# TCP flag bits (byte 13 of the TCP header).
FIN, SYN, RST, PSH, ACK = R.TCP_FIN, R.TCP_SYN, R.TCP_RST, R.TCP_PSH, R.TCP_ACK

__all__ = ["ACK", "FIN", "PSH", "RST", "SYN", "Segment", "parse_frame"]


def parse_frame(frame: Frame) -> Segment | None:
    """The TCP segment in ``frame``, or None (not IP/TCP, non-first fragment, truncated)."""
    data = frame.data
    view = parse(data, frame.linktype)
    if view is None:
        return None
    src, dst = view.addresses(data)
    family = socket.AF_INET if view.version == 4 else socket.AF_INET6
    return Segment(
        time=frame.time, number=frame.number, interface=frame.interface,
        src=socket.inet_ntop(family, src), dst=socket.inet_ntop(family, dst),
        sport=view.sport, dport=view.dport, seq=view.seq, ack=view.ack, flags=view.flags,
        smc_option=bool(view.flags & SYN) and has_smc_option(data, view.options_start,
                                                              view.payload_start),
        payload=bytes(data[view.payload_start : view.captured_end]),
        payload_len=view.payload_len, frame=None, linktype=frame.linktype,
        orig_len=frame.orig_len)

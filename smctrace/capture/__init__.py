"""Capture sources: everything that produces link-layer frames.

A source yields :class:`Frame` objects in capture order.  When the input is damaged
(truncated or corrupt file, interface gone), the source raises :class:`CaptureError`
*after* yielding every frame before the damage, so callers decode the valid prefix and
then report one clear line.
"""

from __future__ import annotations

from dataclasses import dataclass


class CaptureError(Exception):
    """A problem with the capture input that ends reading (one line, user-facing)."""


@dataclass(slots=True, frozen=True)
class Frame:
    """One captured frame, as the capture source delivered it."""

    time: float  # seconds since the epoch, from the packet (never the print time)
    linktype: int  # LINKTYPE_* value (pcap/pcapng numbering)
    data: bytes  # captured bytes, starting at the link-layer header
    orig_len: int  # length on the wire (>= len(data) when truncated by snaplen)
    interface: int = 0  # pcapng interface id, or index of the traced interface
    number: int = 0  # 1-based frame number in the input (as tcpdump/tshark count)


# LINKTYPE_* values we understand (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0  # BSD loopback, host-order 4-byte family
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4/IPv6
LINKTYPE_LOOP = 108  # OpenBSD loopback, network-order 4-byte family
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

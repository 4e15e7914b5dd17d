"""The bottom of the pipeline: a captured frame, link-type numbers, and CaptureError.

Every capture source (pcap/pcapng files, live sockets) produces :class:`Frame` objects and
every layer above reads them; this module imports nothing of smctrace, so the layers can
all import it without importing each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CaptureError(Exception):
    """A problem with the capture input that ends reading (one line, user-facing).

    Sources raise it *after* yielding every frame before the damage, so callers decode the
    valid prefix and then report one clear line.
    """


def describe_os_error(error: OSError) -> str:
    """An OSError as a one-line reason ("No such file or directory")."""
    return error.strerror or str(error)


class FilterError(Exception):
    """A filter expression libpcap rejects (for a link type), or no libpcap: one line."""


@dataclass(slots=True, frozen=True)
class Frame:
    """One captured frame, as the capture source delivered it."""

    time: float  # seconds since the epoch, from the packet (never the print time)
    linktype: int  # LINKTYPE_* value (pcap/pcapng numbering)
    data: bytes  # captured bytes, starting at the link-layer header
    orig_len: int  # length on the wire (>= len(data) when truncated by snaplen)
    interface: int = 0  # pcapng interface id, or index of the traced interface
    number: int = 0  # 1-based frame number in the input (as tcpdump/tshark count)


class LinkLayer(enum.IntEnum):
    """Where the IP header starts in the bytes a capture socket (and its filter) sees.

    The values are the ``SMC_L2_MODE`` of ``smctrace/bpf/clc.c``; the rule treats the first as
    LINKTYPE_RAW frames and the second as LINKTYPE_ETHERNET.
    """

    NONE = 0  # SOCK_DGRAM socket: the IP header comes first (header-less devices, "any")
    ETHERNET = 1  # SOCK_RAW socket on an Ethernet-like device: Ethernet header, VLAN tags


# LINKTYPE_* values smctrace reads (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0  # BSD loopback, host-order 4-byte family
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_ALT_12 = 12  # raw IP, OpenBSD / old libpcap numbering
LINKTYPE_RAW_ALT_14 = 14  # raw IP, another old numbering
LINKTYPE_RAW = 101  # raw IPv4/IPv6
LINKTYPE_LOOP = 108  # OpenBSD loopback, network-order 4-byte family
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

LINKTYPE_NAMES: dict[int, str] = {
    LINKTYPE_NULL: "NULL",
    LINKTYPE_ETHERNET: "EN10MB",
    LINKTYPE_RAW_ALT_12: "RAW",
    LINKTYPE_RAW_ALT_14: "RAW",
    LINKTYPE_RAW: "RAW",
    LINKTYPE_LOOP: "LOOP",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
}
SUPPORTED_LINKTYPES = frozenset(LINKTYPE_NAMES)

# Names of common link types smctrace does not read, for the warning that says so.
OTHER_LINKTYPE_NAMES: dict[int, str] = {
    6: "IEEE802 (Token Ring)",
    9: "PPP",
    50: "PPP_HDLC",
    104: "C_HDLC",
    105: "IEEE802_11",
    119: "PRISM_HEADER",
    127: "IEEE802_11_RADIO",
    147: "USER0",
    163: "IEEE802_11_RADIO_AVS",
    189: "USB_LINUX",
    192: "PPI",
    195: "IEEE802_15_4",
    220: "USB_LINUX_MMAPPED",
    239: "NFLOG",
    247: "INFINIBAND",
    253: "NETLINK",
}

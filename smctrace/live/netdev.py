"""Network devices as the capture sockets see them: index, hardware type, link layer."""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import socket
import struct
from dataclasses import dataclass

from smctrace.frame import LinkLayer
from smctrace.live.errors import LiveError

ETH_P_ALL = 0x0003
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933

# Device types (include/uapi/linux/if_arp.h) whose frames start with an Ethernet header.
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
ETHERNET_HATYPES = frozenset({ARPHRD_ETHER, ARPHRD_LOOPBACK})

ANY_INTERFACE = "any"


@dataclass(slots=True, frozen=True)
class Device:
    """One interface to trace (``ifindex`` 0 and ``name`` "any": every interface)."""

    name: str
    ifindex: int
    hatype: int  # ARPHRD_* of the device; 0 for "any"
    link_layer: LinkLayer


def hardware_type(name: str) -> int:
    """ARPHRD_* type of interface ``name`` in the current network namespace.

    Asked with SIOCGIFHWADDR on a socket rather than read from /sys/class/net, because
    sysfs shows the namespace it was mounted in, not necessarily the caller's.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16s16x", name.encode())
        try:
            reply = fcntl.ioctl(probe.fileno(), SIOCGIFHWADDR, request)
        except OSError as exc:
            raise LiveError(f"interface {name} does not exist") from exc
    (family,) = struct.unpack_from("H", reply, 16)
    return int(family)


def resolve(name: str) -> Device:
    """The :class:`Device` for an interface name given with ``-i``."""
    if name == ANY_INTERFACE:
        return Device(name=name, ifindex=0, hatype=0, link_layer=LinkLayer.NONE)
    if not name or len(name.encode()) >= 16 or "/" in name:
        raise LiveError(f"invalid interface name {name!r}")
    try:
        ifindex = socket.if_nametoindex(name)
    except OSError as exc:
        raise LiveError(f"interface {name} does not exist") from exc
    hatype = hardware_type(name)
    link_layer = LinkLayer.ETHERNET if hatype in ETHERNET_HATYPES else LinkLayer.NONE
    return Device(name=name, ifindex=ifindex, hatype=hatype, link_layer=link_layer)


def index_in_namespace_of(sock: socket.socket, name: str) -> int:
    """Index of interface ``name`` in the network namespace ``sock`` lives in (0 when
    there is none).  Asked through the socket, not if_nametoindex(), because the calling
    thread may be in another namespace than the one the socket was made in."""
    try:
        reply = fcntl.ioctl(sock.fileno(), SIOCGIFINDEX, struct.pack("16s16x", name.encode()))
    except OSError:
        return 0
    (ifindex,) = struct.unpack_from("i", reply, 16)
    return int(ifindex)


class _SockaddrLL(ctypes.Structure):
    _fields_ = [
        ("sll_family", ctypes.c_uint16),
        ("sll_protocol", ctypes.c_uint16),
        ("sll_ifindex", ctypes.c_int32),
        ("sll_hatype", ctypes.c_uint16),
        ("sll_pkttype", ctypes.c_uint8),
        ("sll_halen", ctypes.c_uint8),
        ("sll_addr", ctypes.c_uint8 * 8),
    ]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def bind_packet_socket(sock: socket.socket, ifindex: int) -> None:
    """Bind an AF_PACKET socket to ``ifindex`` (0 = every interface) for ETH_P_ALL.

    Python's bind() for AF_PACKET wants an interface name and cannot express index 0, so
    the sockaddr_ll is built here.
    """
    address = _SockaddrLL(
        sll_family=socket.AF_PACKET, sll_protocol=socket.htons(ETH_P_ALL), sll_ifindex=ifindex
    )
    if _libc.bind(sock.fileno(), ctypes.byref(address), ctypes.sizeof(address)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))

"""Run a loaded BPF program on a frame without traffic: the bpf(BPF_PROG_TEST_RUN) command.

Called through ctypes on the raw syscall (no libbpf needed).  For socket-filter programs the
kernel treats the input as an Ethernet frame, strips those 14 bytes (``eth_type_trans``) and
runs the program on the rest, so :func:`run_socket_filter` prepends a dummy Ethernet
header.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from dataclasses import dataclass

BPF_PROG_TEST_RUN = 10

# bpf(2) syscall numbers per architecture (asm/unistd.h).
_BPF_SYSCALL = {"x86_64": 321, "aarch64": 280, "s390x": 351, "ppc64le": 361, "riscv64": 280}

# Dummy Ethernet header the kernel strips before the program runs.  Destination all zero
# (lo's address: the skb becomes PACKET_HOST); EtherType 0x88B5 (IEEE local experimental)
# because for IPv4/IPv6 EtherTypes the kernel insists on a whole IP header behind it, which
# would make truncated test frames impossible.  The filter never reads skb->protocol.
_DUMMY_ETHERNET = bytes(6) + bytes.fromhex("020000000001") + b"\x88\xb5"


class _TestAttr(ctypes.Structure):
    """The ``test`` member of ``union bpf_attr`` (include/uapi/linux/bpf.h)."""

    _fields_ = [
        ("prog_fd", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("data_in", ctypes.c_uint64),
        ("data_out", ctypes.c_uint64),
        ("repeat", ctypes.c_uint32),
        ("duration", ctypes.c_uint32),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_uint64),
        ("ctx_out", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
        ("_pad", ctypes.c_uint32),
    ]


@dataclass(slots=True, frozen=True)
class ProgRunResult:
    retval: int  # the program's return value (for a socket filter: bytes kept)
    duration_ns: int  # average run time per repetition as the kernel measured it


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def bpf_prog_test_run(prog_fd: int, data: bytes, repeat: int = 1) -> ProgRunResult:
    """Run program ``prog_fd`` once (or ``repeat`` times) on ``data`` as given."""
    nr = _BPF_SYSCALL.get(platform.machine())
    if nr is None:
        raise OSError(f"bpf() syscall number unknown for {platform.machine()}")
    data_in = ctypes.create_string_buffer(data, len(data))
    data_out = ctypes.create_string_buffer(len(data) + 256)
    attr = _TestAttr(
        prog_fd=prog_fd,
        data_size_in=len(data),
        data_size_out=len(data_out),
        data_in=ctypes.addressof(data_in),
        data_out=ctypes.addressof(data_out),
        repeat=repeat,
    )
    rc = _libc.syscall(nr, BPF_PROG_TEST_RUN, ctypes.byref(attr), ctypes.sizeof(attr))
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"BPF_PROG_TEST_RUN: {os.strerror(err)}")
    # The return value is an unsigned 32-bit register; -1 means "keep the whole frame".
    retval = attr.retval - (1 << 32) if attr.retval >= 1 << 31 else attr.retval
    return ProgRunResult(retval=retval, duration_ns=attr.duration)


def run_socket_filter(prog_fd: int, frame: bytes) -> int:
    """Bytes the socket filter keeps of ``frame`` (which starts where the program expects:
    at the Ethernet header for an Ethernet-mode program, at the IP header otherwise)."""
    return bpf_prog_test_run(prog_fd, _DUMMY_ETHERNET + frame).retval


__all__ = ["ProgRunResult", "bpf_prog_test_run", "run_socket_filter"]

"""Dropping root once the capture socket is attached, like tcpdump's -Z.

The attached socket and the BPF program stay usable through their file descriptors. One
thing still needs a capability afterwards: reading the eBPF filter's counters, because with
``kernel.unprivileged_bpf_disabled`` set (the default on current distributions) every bpf()
call of an unprivileged process fails, map reads included. So the switch keeps exactly the
capabilities asked for (CAP_BPF with the eBPF backend) and drops everything else.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pwd
from collections.abc import Iterable

from smctrace.capabilities import CAP_BPF

__all__ = ["CAP_BPF", "PrivilegeError", "drop_privileges"]

_PR_SET_KEEPCAPS = 8
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class PrivilegeError(Exception):
    """The requested user does not exist or the switch failed (one line)."""


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32))


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _set_capabilities(libc: ctypes.CDLL, keep: Iterable[int]) -> None:
    """Effective and permitted sets := keep; inheritable empty."""
    mask = 0
    for cap in keep:
        mask |= 1 << cap
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for word in range(2):
        bits = (mask >> (32 * word)) & 0xFFFFFFFF
        data[word].effective = data[word].permitted = bits
    if libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise PrivilegeError(f"cannot keep capabilities after dropping root: {os.strerror(err)}")


def drop_privileges(user: str, keep: Iterable[int] = ()) -> str | None:
    """Switch to USER if running as root, keeping only the capabilities in ``keep``.

    Returns the user switched to, or None when there was nothing to drop.
    """
    if os.geteuid() != 0 or user == "root":
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise PrivilegeError(f"cannot drop privileges: no user '{user}' "
                             "(pick another with -Z USER, or -Z root to keep them)") from None
    libc = _libc()
    keep = tuple(keep)
    try:
        if keep and libc.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    except OSError as exc:
        raise PrivilegeError(f"cannot drop privileges to '{user}': {exc.strerror}") from None
    # After setuid the permitted set survives only with KEEPCAPS; the effective set is
    # empty either way. Raise exactly what is kept, and nothing else remains permitted.
    _set_capabilities(libc, keep)
    return user

"""Dropping root once the capture socket is attached, like tcpdump's -Z.

The attached socket, the BPF program and its maps stay usable through their file
descriptors; nothing after attaching needs root.
"""

from __future__ import annotations

import os
import pwd


class PrivilegeError(Exception):
    """The requested user does not exist or the switch failed (one line)."""


def drop_privileges(user: str) -> str | None:
    """Switch to USER if running as root; return the user switched to, or None."""
    if os.geteuid() != 0 or user == "root":
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise PrivilegeError(f"cannot drop privileges: no user '{user}' "
                             "(pick another with -Z USER, or -Z root to keep them)") from None
    try:
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    except OSError as exc:
        raise PrivilegeError(f"cannot drop privileges to '{user}': {exc.strerror}") from None
    return user

"""-Z: dropping root after attaching, keeping only what reading BPF counters needs."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys

import pytest

from smctrace.privileges import CAP_BPF, PrivilegeError, drop_privileges

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: dropping is a no-op")


@needs_root
def test_unknown_user_is_a_clear_error() -> None:
    with pytest.raises(PrivilegeError, match="no user 'no-such-user-smctrace'"):
        drop_privileges("no-such-user-smctrace")


def test_root_keeps_privileges() -> None:
    assert drop_privileges("root") is None


def in_child(keep: str) -> tuple[int, int, str, int, int]:
    code = (
        "import os; from smctrace.privileges import drop_privileges\n"
        f"drop_privileges('nobody', keep={keep})\n"
        "caps = {l.split(':')[0]: int(l.split()[1], 16) for l in open('/proc/self/status')"
        " if l.startswith('Cap')}\n"
        "print(os.getuid(), os.geteuid(), os.getgroups() or '-', caps['CapEff'], caps['CapPrm'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[0]), int(out[1]), out[2], int(out[3]), int(out[4])


@needs_root
def test_drop_to_nobody_keeps_nothing() -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    assert in_child("()") == (nobody, nobody, "-", 0, 0)


@needs_root
def test_drop_keeps_exactly_cap_bpf() -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    assert in_child(f"({CAP_BPF},)") == (nobody, nobody, "-", 1 << CAP_BPF, 1 << CAP_BPF)

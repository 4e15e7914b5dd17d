"""-Z: dropping root after attaching, keeping only what reading BPF counters needs."""

from __future__ import annotations

import ast
import os
import pwd

import pytest

from smctrace.privileges import CAP_BPF, PrivilegeError, drop_privileges

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: dropping is a no-op")


@needs_root
def test_unknown_user_is_a_clear_error() -> None:
    with pytest.raises(PrivilegeError, match="no user 'no-such-user-smctrace'"):
        drop_privileges("no-such-user-smctrace")


def test_root_keeps_privileges() -> None:
    assert drop_privileges("root") is None


def _capability_sets() -> dict[str, int]:
    with open("/proc/self/status", encoding="ascii") as status:
        return {line.split(":")[0]: int(line.split()[1], 16)
                for line in status if line.startswith("Cap")}


def in_child(keep: tuple[int, ...]) -> tuple[int, int, str, int, int]:
    """Drop privileges in a forked child (the switch cannot be undone) and report back."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            os.close(read_end)
            drop_privileges("nobody", keep=keep)
            caps = _capability_sets()
            report = (os.getuid(), os.geteuid(), os.getgroups() or "-", caps["CapEff"],
                      caps["CapPrm"])
            os.write(write_end, repr(report).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        text = reader.read().decode()
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0, "the child failed to drop privileges"
    uid, euid, groups, effective, permitted = ast.literal_eval(text)
    return uid, euid, str(groups), effective, permitted


@needs_root
def test_drop_to_nobody_keeps_nothing() -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    assert in_child(()) == (nobody, nobody, "-", 0, 0)


@needs_root
def test_drop_keeps_exactly_cap_bpf() -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    assert in_child((CAP_BPF,)) == (nobody, nobody, "-", 1 << CAP_BPF, 1 << CAP_BPF)

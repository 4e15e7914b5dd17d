"""-Z: dropping root after attaching."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys

import pytest

from smctrace.privileges import PrivilegeError, drop_privileges


def test_unknown_user_is_a_clear_error() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: dropping privileges is a no-op otherwise")
    with pytest.raises(PrivilegeError, match="no user 'no-such-user-smctrace'"):
        drop_privileges("no-such-user-smctrace")


def test_root_keeps_privileges() -> None:
    assert drop_privileges("root") is None


def test_drop_to_nobody_in_a_child() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    code = ("import os; from smctrace.privileges import drop_privileges; "
            "drop_privileges('nobody'); print(os.getuid(), os.geteuid(), os.getgroups())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split(maxsplit=2)
    nobody = pwd.getpwnam("nobody").pw_uid
    assert int(out[0]) == nobody and int(out[1]) == nobody and out[2].strip() == "[]"

"""The eBPF backend: smctrace/bpf/clc.c compiled and loaded with BCC.

BCC (Debian: python3-bpfcc) compiles the C source with its embedded clang at start-up and
needs kernel headers for that even for a socket filter.  Everything BCC-specific stays in
this module; the rest of the live package sees a program fd and two counters.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from typing import Any

from smctrace.connections import LATE_DECLINE_GRACE_SMCR
from smctrace.live.capabilities import missing_for_capture
from smctrace.live.errors import LiveError
from smctrace.live.netdev import LinkLayer

PROGRAM_NAME = "smc_clc_filter"
COUNTER_SEEN = 0
COUNTER_KEPT = 1

INSTALL_BCC = "apt install python3-bpfcc (the PyPI package 'bcc' is a different project)"


@dataclass(slots=True, frozen=True)
class FilterParams:
    """Compile-time parameters of clc.c (its -D defines)."""

    snap_payload: int = 1024  # TCP payload bytes kept per segment
    # The same wait for a late Decline as the user-space tracker (a 6.12 client declined
    # 5.31 s after its Confirm in data/real-kernel/D7).
    confirm_grace_ms: int = int(LATE_DECLINE_GRACE_SMCR * 1000)
    max_connections: int = 65536  # LRU size: bounds kernel memory under a SYN flood

    def defines(self, link_layer: LinkLayer) -> dict[str, int]:
        return {
            "SMC_L2_MODE": int(link_layer),
            "SMC_SNAP_PAYLOAD": self.snap_payload,
            "SMC_CONFIRM_GRACE_MS": self.confirm_grace_ms,
            "SMC_MAX_CONNECTIONS": self.max_connections,
        }


def bpf_c_source() -> str:
    """The text of smctrace/bpf/clc.c as installed with the package."""
    return resources.files("smctrace").joinpath("bpf", "clc.c").read_text(encoding="utf-8")


def program_text(link_layer: LinkLayer, params: FilterParams | None = None) -> str:
    """clc.c with its defines written in front, as BCC compiles it (for ``--ebpf``)."""
    params = params or FilterParams()
    lines = [f"#define {name} {value}" for name, value in params.defines(link_layer).items()]
    return "\n".join(lines) + "\n" + bpf_c_source()


def _headers_usable(path: str) -> bool:
    return os.path.exists(os.path.join(path, "include", "linux", "kconfig.h"))


def kernel_headers_problem() -> str | None:
    """None when BCC will find kernel headers, else a one-line explanation with the fix.

    Mirrors BCC's own search: $BCC_KERNEL_SOURCE, /lib/modules/$(uname -r)/{source,build},
    then the in-kernel archive /sys/kernel/kheaders.tar.xz (CONFIG_IKHEADERS).
    """
    env = os.environ.get("BCC_KERNEL_SOURCE")
    if env:
        if _headers_usable(env):
            return None
        return f"BCC_KERNEL_SOURCE={env} has no include/linux/kconfig.h"
    release = platform.release()
    moddir = f"/lib/modules/{release}"
    if any(_headers_usable(os.path.join(moddir, sub)) for sub in ("source", "build")):
        return None
    if os.path.exists("/sys/kernel/kheaders.tar.xz"):
        return None
    return (
        f"no kernel headers for {release}: install linux-headers-{release}, or "
        "linux-headers-amd64 and run scripts/setup-bcc-headers.sh, or set BCC_KERNEL_SOURCE"
    )


def import_bcc() -> Any:
    """The ``bcc`` module, or LiveError saying how to install it."""
    try:
        import bcc  # optional dependency: imported only when used
    except ImportError as exc:
        raise LiveError(f"BCC is not installed: {INSTALL_BCC}") from exc
    if not hasattr(bcc, "BPF"):
        raise LiveError(f"the installed 'bcc' module is not BCC: {INSTALL_BCC}")
    return bcc


def bcc_problem() -> str | None:
    """Why the BCC backend cannot work here (None = it should), without compiling."""
    try:
        import_bcc()
    except LiveError as exc:
        return str(exc)
    missing = missing_for_capture(need_bpf=True)
    if missing:
        return f"loading an eBPF filter needs root or {' and '.join(missing)}"
    return kernel_headers_problem()


class _StderrCapture:
    """Redirects file descriptor 2 into a temporary file (BCC's clang writes warnings
    there for every compile); the text is shown only when compiling fails."""

    def __init__(self) -> None:
        self._saved_fd = -1
        self._file: Any = None

    def __enter__(self) -> _StderrCapture:
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile(mode="w+b")
        self._saved_fd = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc_info: object) -> None:
        sys.stderr.flush()
        os.dup2(self._saved_fd, 2)
        os.close(self._saved_fd)

    def text(self) -> str:
        self._file.seek(0)
        data: bytes = self._file.read()
        self._file.close()
        return data.decode("utf-8", "replace")


class BccFilter:
    """clc.c compiled for one link layer and loaded as a socket filter."""

    def __init__(self, link_layer: LinkLayer, params: FilterParams | None = None) -> None:
        self.link_layer = link_layer
        self.params = params or FilterParams()
        bcc = import_bcc()
        problem = kernel_headers_problem()
        if problem:
            raise LiveError(problem)
        cflags = [f"-D{name}={value}" for name, value in self.params.defines(link_layer).items()]
        capture = _StderrCapture()
        try:
            with capture:
                self._bpf = bcc.BPF(text=bpf_c_source().encode(), cflags=cflags)
                function = self._bpf.load_func(PROGRAM_NAME.encode(), bcc.BPF.SOCKET_FILTER)
        except Exception as exc:
            compiler_output = capture.text()
            missing = missing_for_capture(need_bpf=True)
            if missing:
                raise LiveError(
                    f"loading the eBPF filter was refused: run as root or with "
                    f"{' and '.join(missing)}"
                ) from exc
            if compiler_output.strip():
                sys.stderr.write(compiler_output)
            raise LiveError(
                f"compiling/loading smctrace/bpf/clc.c with BCC failed ({exc}); "
                "compiler output above"
            ) from exc
        capture.text()
        self.fd: int = int(function.fd)
        self._counters = self._bpf.get_table(b"smc_counters")

    def counters(self) -> tuple[int, int]:
        """(frames seen, frames kept) by this program, summed over CPUs."""
        seen = self._counters.sum(self._counters.Key(COUNTER_SEEN)).value
        kept = self._counters.sum(self._counters.Key(COUNTER_KEPT)).value
        return int(seen), int(kept)

    def connections(self) -> int:
        """Connections currently remembered in the LRU table (walks the map: for tests)."""
        return sum(1 for _ in self._bpf.get_table(b"smc_connections"))

    def clear_connections(self) -> None:
        self._bpf.get_table(b"smc_connections").clear()

    def close(self) -> None:
        """Releases the program and its maps (sockets keep their attached copy)."""
        bpf, self._bpf = self._bpf, None
        if bpf is not None:
            bpf.cleanup()
            # BCC keeps the module (and its fds) until the object is collected.
            del bpf


__all__ = [
    "INSTALL_BCC",
    "BccFilter",
    "FilterParams",
    "bcc_problem",
    "bpf_c_source",
    "kernel_headers_problem",
    "program_text",
]

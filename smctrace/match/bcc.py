"""The eBPF engine: smctrace/bpf/clc.c compiled and loaded with BCC.

BCC (Debian: python3-bpfcc) compiles the C source with its embedded clang at start-up and
needs kernel headers for that even for a socket filter.  The program is one translation
unit: the rule's constants (generated from :mod:`smctrace.match.rule`), the rule itself
(``smc_match.h``, shared with the offline engine) and ``clc.c``, in that order, so that
``--ebpf`` shows exactly what is compiled.  Everything BCC-specific stays in this module;
the live package sees a program fd and its counters.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from typing import Any

from smctrace.capabilities import missing_for_capture
from smctrace.frame import CaptureError, LinkLayer
from smctrace.match import rule

PROGRAM_NAME = "smc_clc_filter"

class BccError(CaptureError):
    """The eBPF engine cannot be loaded here; the message is one line a user can act on."""


INSTALL_BCC = "apt install python3-bpfcc (the PyPI package 'bcc' is a different project)"


@dataclass(slots=True, frozen=True)
class FilterParams:
    """Compile-time parameters of clc.c (its -D defines)."""

    snap_payload: int = rule.PAYLOAD_CAP  # TCP payload bytes kept per segment
    confirm_grace_ms: int = int(rule.LATE_DECLINE_GRACE * 1000)  # late Decline wait
    max_connections: int = rule.MAX_CONNECTIONS  # followed connections (LRU)
    max_pending: int = rule.MAX_PENDING  # SYNs waiting for an answer (LRU)
    syn_rate: int = rule.SYN_RATE  # SMC SYNs passed per second per CPU
    syn_burst: int = rule.SYN_BURST

    def defines(self, link_layer: LinkLayer) -> dict[str, int | str]:
        return {
            "SMC_L2_MODE": int(link_layer),
            "SMC_PAYLOAD_CAP": self.snap_payload,
            "SMC_GRACE_NS": f"{self.confirm_grace_ms * 1_000_000}ull",
            "SMC_MAX_CONNECTIONS": self.max_connections,
            "SMC_MAX_PENDING": self.max_pending,
            "SMC_SYN_RATE": self.syn_rate,
            "SMC_SYN_BURST": self.syn_burst,
        }


def _package_text(*parts: str) -> str:
    return resources.files("smctrace").joinpath(*parts).read_text(encoding="utf-8")


def bpf_c_source() -> str:
    """The program as compiled: rule constants, the shared rule, then clc.c."""
    text = _package_text("bpf", "clc.c")
    text = text.replace('#include "smc_rule.h"\n', rule.c_header(), 1)
    return text.replace('#include "smc_match.h"\n', _package_text("match", "smc_match.h"), 1)


def program_text(link_layer: LinkLayer, params: FilterParams | None = None) -> str:
    """The program with its defines written in front, as BCC compiles it (``--ebpf``)."""
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
    """The ``bcc`` module, or BccError saying how to install it."""
    try:
        import bcc  # optional dependency: imported only when used
    except ImportError as exc:
        raise BccError(f"BCC is not installed: {INSTALL_BCC}") from exc
    if not hasattr(bcc, "BPF"):
        raise BccError(f"the installed 'bcc' module is not BCC: {INSTALL_BCC}")
    return bcc


def bcc_problem() -> str | None:
    """Why the BCC backend cannot work here (None = it should), without compiling."""
    try:
        import_bcc()
    except BccError as exc:
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
            raise BccError(problem)
        cflags = [f"-D{name}={value}" for name, value in self.params.defines(link_layer).items()]
        cflags.append("-Wno-unused-function")
        capture = _StderrCapture()
        try:
            with capture:
                self._bpf = bcc.BPF(text=bpf_c_source().encode(), cflags=cflags)
                function = self._bpf.load_func(PROGRAM_NAME.encode(), bcc.BPF.SOCKET_FILTER)
        except Exception as exc:
            compiler_output = capture.text()
            missing = missing_for_capture(need_bpf=True)
            if missing:
                raise BccError(
                    f"loading the eBPF filter was refused: run as root or with "
                    f"{' and '.join(missing)}"
                ) from exc
            if compiler_output.strip():
                sys.stderr.write(compiler_output)
            raise BccError(
                f"compiling/loading smctrace/bpf/clc.c with BCC failed ({exc}); "
                "compiler output above"
            ) from exc
        capture.text()
        self.fd: int = int(function.fd)
        self._counters = self._bpf.get_table(b"smc_counters")

    def counters(self) -> dict[str, int]:
        """The program's counters (:data:`rule.FILTER_COUNTERS`), summed over CPUs."""
        table = self._counters
        return {name: int(table.sum(table.Key(index)).value)
                for index, name in enumerate(rule.FILTER_COUNTERS)}

    def connections(self) -> int:
        """Connections currently remembered in the LRU table (walks the map: for tests)."""
        return sum(1 for _ in self._bpf.get_table(b"smc_follow"))

    def pending(self) -> int:
        """SYNs waiting for an answer in the pending table (walks the map: for tests)."""
        return sum(1 for _ in self._bpf.get_table(b"smc_pending"))

    def clear_connections(self) -> None:
        self._bpf.get_table(b"smc_follow").clear()
        self._bpf.get_table(b"smc_pending").clear()

    def close(self) -> None:
        """Releases the program and its maps (sockets keep their attached copy)."""
        bpf, self._bpf = self._bpf, None
        if bpf is not None:
            bpf.cleanup()
            # BCC keeps the module (and its fds) until the object is collected.
            del bpf


__all__ = [
    "INSTALL_BCC",
    "BccError",
    "BccFilter",
    "FilterParams",
    "bcc_problem",
    "bpf_c_source",
    "kernel_headers_problem",
    "program_text",
]

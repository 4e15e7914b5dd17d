"""Which capabilities the process holds, to explain a refused attach in one line."""

from __future__ import annotations

CAP_NET_RAW = 13
CAP_SYS_ADMIN = 21
CAP_BPF = 39


def effective_capabilities() -> int:
    """The effective capability mask of this process (0 when it cannot be read)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def missing_for_capture(need_bpf: bool) -> list[str]:
    """Names of the capabilities live capture needs but this process lacks."""
    caps = effective_capabilities()
    missing = []
    if not caps >> CAP_NET_RAW & 1:
        missing.append("CAP_NET_RAW")
    if need_bpf and not (caps >> CAP_BPF & 1 or caps >> CAP_SYS_ADMIN & 1):
        missing.append("CAP_BPF")
    return missing

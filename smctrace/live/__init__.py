"""Live capture of SMC CLC handshakes through a kernel socket filter.

Two backends: ``bcc`` (smctrace/bpf/clc.c, stateful eBPF, compiled with BCC at start-up)
and ``cbpf`` (a stateless classic-BPF program generated in Python; no LLVM or kernel
headers).  ``auto`` prefers bcc and falls back to cbpf with a one-line notice.
"""

from __future__ import annotations

from smctrace.live.capture import DEFAULT_SNAPLEN, LiveCapture, program_source
from smctrace.live.errors import LiveError

__all__ = ["DEFAULT_SNAPLEN", "LiveCapture", "LiveError", "program_source"]

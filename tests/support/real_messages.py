"""The CLC messages of a real capture, as their senders wrote them (for tests and
benchmarks that build new traffic out of real kernels' messages)."""

from __future__ import annotations

from pathlib import Path

from smctrace.capture.pcapfile import CaptureFile
from smctrace.packet import ACK, SYN, parse_frame
from smctrace.streams import starts_clc

REAL = Path(__file__).resolve().parents[1] / "data" / "real-kernel"


def clc_messages(path: Path) -> list[tuple[str, bytes]]:
    """(``client`` or ``server``, payload) of each segment of the capture that starts
    with a CLC header, in capture order; the client is the end that sent the SYN."""
    out: list[tuple[str, bytes]] = []
    client_port = None
    with CaptureFile(str(path)) as capture:
        for frame in capture.frames():
            seg = parse_frame(frame)
            if seg is None:
                continue
            if seg.flags & SYN and not seg.flags & ACK:
                client_port = seg.sport
            if starts_clc(seg.payload):
                out.append(("client" if seg.sport == client_port else "server", seg.payload))
    return out

"""Saving traced frames (``-w FILE``): pcapng (one interface block per traced interface),
or classic pcap when the name ends in ``.pcap``.

Only frames that passed the filter are written, so the file holds the SMC handshakes and
nothing else.  Each frame is flushed at once: they are few, and a trace stopped by a signal
or a lost interface must leave a complete file behind.
"""

from __future__ import annotations

import sys
from typing import BinaryIO

from smctrace.capture.pcapwriter import PcapngWriter, PcapWriter
from smctrace.frame import Frame
from smctrace.live.errors import LiveError


class FrameWriter:
    """Writes :class:`Frame` objects of a live capture to a file (``-`` = stdout)."""

    def __init__(self, path: str, interfaces: list[tuple[str, int]], snaplen: int) -> None:
        """``interfaces``: (name, linktype) per traced interface, in Frame.interface order."""
        linktypes = {linktype for _, linktype in interfaces}
        pcapng = not path.endswith(".pcap")
        if len(linktypes) > 1 and not pcapng:
            raise LiveError(
                "the traced interfaces have different link types: a .pcap file cannot "
                "hold them, use another name for pcapng"
            )
        try:
            self._stream: BinaryIO = (
                sys.stdout.buffer if path == "-" else open(path, "wb")  # noqa: SIM115
            )
        except OSError as exc:
            raise LiveError(f"cannot write {path}: {exc.strerror or exc}") from exc
        self._owns_stream = path != "-"
        self._pcap: PcapWriter | None = None
        self._pcapng: PcapngWriter | None = None
        if pcapng:
            self._pcapng = PcapngWriter(self._stream)
            for name, linktype in interfaces:
                self._pcapng.add_interface(linktype, name=name, snaplen=snaplen, tsresol=9)
        else:
            self._pcap = PcapWriter(self._stream, interfaces[0][1], snaplen, nanosecond=True)
        self._stream.flush()

    def write(self, frame: Frame, comment: str | None = None) -> None:
        """Append one frame; pcapng keeps ``comment`` (e.g. the CLC messages it carries)."""
        if self._pcapng is not None:
            self._pcapng.write(frame.interface, frame.time, frame.data, frame.orig_len,
                               comment=comment)
        elif self._pcap is not None:
            self._pcap.write(frame.time, frame.data, frame.orig_len)
        self._stream.flush()

    def close(self) -> None:
        if self._owns_stream and not self._stream.closed:
            self._stream.close()

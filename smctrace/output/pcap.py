"""Saving the frames that matter for SMC (``-w FILE``), live and offline: pcapng (one
interface block per traced or read interface, a comment naming the CLC messages each
frame completes), or classic pcap when the name ends in ``.pcap``.

Only frames that crossed the SMC-relevance rule (and the user's filter) are written, so
``smctrace -f big.pcap -w smc.pcapng`` cuts the handshakes out of a capture: smctrace and
tshark read the file back to the same result.  Each frame is flushed at once: they are
few, and a trace stopped by a signal or a lost interface must leave a complete file.
"""

from __future__ import annotations

import sys
from typing import BinaryIO

from smctrace.capture.pcapwriter import PcapngWriter, PcapWriter

# What the files can hold, with a margin for rounding: pcapng timestamps here are unsigned
# 64-bit nanoseconds (to the year 2554), pcap seconds unsigned 32-bit (to 2106).  A time
# outside is written clamped, and counted.
PCAPNG_MAX_TIME = 18_000_000_000.0
PCAP_MAX_TIME = float((1 << 32) - 2)


class SaveError(Exception):
    """The file cannot be written: one line for the user."""


class FrameWriter:
    """Writes frames to a pcapng (or pcap) file, ``-`` for standard output."""

    def __init__(self, path: str, snaplen: int) -> None:
        self.path = path
        self.snaplen = snaplen
        self.clamped_times = 0  # frames whose time the format cannot hold
        try:
            self._stream: BinaryIO = (
                sys.stdout.buffer if path == "-" else open(path, "wb")  # noqa: SIM115
            )
        except OSError as exc:
            raise SaveError(f"cannot write {path}: {exc.strerror or exc}") from exc
        self._owns_stream = path != "-"
        self._pcap: PcapWriter | None = None
        self._pcap_linktype: int | None = None
        self._pcapng = None if path.endswith(".pcap") else PcapngWriter(self._stream)

    def add_interface(self, name: str | None, linktype: int) -> int:
        """A new interface of ``linktype``; returns the number to write its frames with."""
        if self._pcapng is not None:
            return self._pcapng.add_interface(linktype, name=name, snaplen=self.snaplen,
                                              tsresol=9)
        if self._pcap is None:
            self._pcap = PcapWriter(self._stream, linktype, self.snaplen, nanosecond=True)
            self._pcap_linktype = linktype
        elif linktype != self._pcap_linktype:
            raise SaveError(
                f"{self.path}: frames of two link types ({self._pcap_linktype} and "
                f"{linktype}): a .pcap file cannot hold them, use another name for pcapng")
        return 0

    def write(self, interface: int, time: float, data: bytes, orig_len: int,
              comment: str | None = None) -> None:
        """Append one frame; pcapng keeps ``comment`` (the CLC messages it completes)."""
        limit = PCAPNG_MAX_TIME if self._pcapng is not None else PCAP_MAX_TIME
        if not 0.0 <= time <= limit:
            self.clamped_times += 1
            time = min(max(time, 0.0), limit) if time == time else 0.0
        if self._pcapng is not None:
            self._pcapng.write(interface, time, data, orig_len, comment=comment)
        elif self._pcap is not None:
            self._pcap.write(time, data, orig_len)
        self._stream.flush()

    def close(self) -> None:
        if self._owns_stream and not self._stream.closed:
            self._stream.close()
        elif not self._owns_stream:
            self._stream.flush()

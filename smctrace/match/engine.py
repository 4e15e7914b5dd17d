"""The rule applied to a stream of frames: what the capture readers and live capture use.

:class:`Engine` is the C engine (``smctrace/match/_engine.c``) when it was built, else
:class:`~smctrace.match.pyengine.PythonEngine`, its twin over
:mod:`smctrace.match.reference` (imported only when it is used); both take the same
calls and give the same results:

* ``scan_pcap`` / ``scan_pcapng`` walk the records of a capture buffer, apply the rule,
  drop segments seen twice and append the segments that cross, as :class:`Segment`-shaped
  tuples, to a list; a SYN held by the rule is appended right before the segment that
  answered it;
* ``feed`` does the same for one frame (pcapng blocks Python reads itself, live frames:
  with ``rule=False`` when the kernel filter already applied it);
* ``counters`` tells what was counted (plain SYNs, duplicates, unanswered SMC SYNs with
  a sample of their 4-tuples, frames of unsupported link types, snap-length cuts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

STATUS_STOP = 0  # the record/block at the returned offset needs the Python reader
STATUS_END = 1  # the buffer was walked to its end



class Segment(NamedTuple):
    """A TCP segment that crossed, as the engines hand it out (a plain tuple in C)."""

    time: float  # seconds since the epoch, from the packet
    number: int  # frame number in the input
    interface: int
    src: str  # textual IP address
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    smc_option: bool  # SYN/SYN-ACK carrying the SMC option
    payload: bytes  # the payload that crossed (capped, possibly cut)
    payload_len: int  # payload length on the wire
    frame: bytes | None  # the kept bytes of the frame (engines made with keep_frames)
    linktype: int
    orig_len: int


SegmentTuple = tuple[float, int, int, str, str, int, int, int, int, int, bool, bytes, int,
                     bytes | None, int, int]


class EngineLike(Protocol):
    """What the readers need of an engine."""

    def scan_pcap(self, buf: Any, start: int, end: int, swapped: bool, linktype: int,
                  max_caplen: int, units: float, number: int,
                  out: list[Any]) -> tuple[int, int, int]: ...

    def scan_pcapng(self, buf: Any, start: int, end: int, swapped: bool,
                    interfaces: Sequence[tuple[int, int, int, int]], last_time: float,
                    number: int, out: list[Any]) -> tuple[int, int, int, float]: ...

    def feed(self, data: Any, linktype: int, time: float, number: int, interface: int,
             orig_len: int, rule: bool, out: list[Any]) -> None: ...

    def verdict(self, data: Any, linktype: int, time_ns: int
                ) -> tuple[int, bool, int, bool]: ...

    def finish(self, out: list[Any]) -> None: ...

    def counters(self) -> dict[str, Any]: ...

    def set_filter(self, frame_filter: Any) -> None: ...

    def set_duration(self, seconds: float | None) -> None: ...


try:
    from smctrace.match._engine import Engine as NativeEngine  # type: ignore[import-not-found]
except ImportError:  # not built (no C compiler): the same rule in Python, slower
    NativeEngine = None

NATIVE: bool = NativeEngine is not None


def new_engine(*, native: bool | None = None, **options: Any) -> EngineLike:
    """An engine: the C one when built (``native=None``), or forced either way (tests)."""
    if native is None:
        native = NATIVE
    if native:
        if NativeEngine is None:
            raise RuntimeError("the C engine smctrace.match._engine is not built")
        engine: EngineLike = NativeEngine(**options)
        return engine
    from smctrace.match.pyengine import PythonEngine  # only without the C engine, or in tests

    return PythonEngine(**options)

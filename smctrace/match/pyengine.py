"""The SMC-relevance engine in Python: the twin of the C engine (``_engine.c``).

Used where the C engine is not built, and by the tests that prove the two equal. It
applies :mod:`smctrace.match.reference` one frame at a time and walks capture buffers
with :mod:`struct`.
"""

from __future__ import annotations

import math
import socket
import struct
import sys
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from smctrace.capture import formats
from smctrace.frame import SUPPORTED_LINKTYPES
from smctrace.match import reference as ref
from smctrace.match import rule as R
from smctrace.match.engine import STATUS_END, STATUS_STOP, SegmentTuple


class FrameFilter(Protocol):
    """The user's filter expression (:class:`smctrace.capture.pcapfilter.PacketFilter`)."""

    def matches(self, data: bytes, linktype: int, orig_len: int | None = None) -> bool: ...


PICKUP_WAIT_NS = int(R.PICKUP_WAIT * R.NANOSECONDS)


class _Held(NamedTuple):
    frame: bytes
    time: float
    number: int
    interface: int
    linktype: int
    orig_len: int
    time_ns: int = 0


def _text(address: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(address) == 4 else socket.AF_INET6, address)


class PythonEngine:
    """The engine in Python (the reference rule, one frame at a time)."""

    def __init__(self, grace: float = R.LATE_DECLINE_GRACE,
                 max_connections: int = R.MAX_CONNECTIONS,
                 max_pending: int = R.MAX_PENDING, keep_frames: bool = False) -> None:
        if not (1 <= max_connections <= 1 << 26 and 1 <= max_pending <= 1 << 26
                and 0 <= grace <= 1e9):
            raise ValueError("table sizes must be 1..2^26 and grace >= 0")
        self.matcher = ref.Matcher(grace=grace, max_connections=max_connections,
                                   max_pending=max_pending)
        self.dedup = ref.Deduplicator()
        self.keep_frames = keep_frames
        self._held: dict[ref.Key, _Held] = {}
        self._pickups: OrderedDict[ref.Key, _Held] = OrderedDict()  # in arrival order
        self.unanswered_pickups = 0
        self.pickup_sample: list[ref.Key] = []
        self._plain: OrderedDict[tuple[ref.Key, int], None] = OrderedDict()
        self._counts = {"frames": 0, "kept": 0, "plain_connections": 0, "duplicates": 0,
                        "cut_headers": 0, "cut_payload": 0, "filtered": 0, "beyond": 0}
        self._duration = math.inf
        self._first_time = 0.0
        self._filter: FrameFilter | None = None
        self._unsupported: dict[int, int] = {}

    # -- one frame ------------------------------------------------------------------------

    def _tuple(self, data: bytes, view: ref.TcpView, keep: ref.Keep, time: float,
               number: int, interface: int, linktype: int, orig_len: int) -> SegmentTuple:
        keep_bytes = view.keep_bytes(keep)
        src, dst = view.addresses(data)
        option = bool(view.flags & R.TCP_SYN) and ref.has_smc_option(
            data, view.options_start, view.payload_start)
        return (time, number, interface, _text(src), _text(dst), view.sport, view.dport,
                view.seq, view.ack, view.flags, option,
                bytes(data[view.payload_start : max(keep_bytes, view.payload_start)]),
                view.payload_len, bytes(data[:keep_bytes]) if self.keep_frames else None,
                linktype, orig_len)

    def _parse(self, data: bytes, linktype: int) -> ref.TcpView | None:
        if linktype not in SUPPORTED_LINKTYPES:
            self._unsupported[linktype] = self._unsupported.get(linktype, 0) + 1
            return None
        view = ref.parse(data, linktype)
        if view is None and ref.tcp_header_cut(data, linktype):
            self._counts["cut_headers"] += 1
        return view

    def feed(self, data: Any, linktype: int, time: float, number: int, interface: int,
             orig_len: int, rule: bool, out: list[Any]) -> None:
        data = bytes(data)
        self._counts["frames"] += 1
        if self._counts["frames"] == 1:
            self._first_time = time
        if time - self._first_time > self._duration:
            self._counts["beyond"] += 1
            return
        if self._filter is not None and not self._filter.matches(data, linktype, orig_len):
            self._counts["filtered"] += 1
            return
        now = R.packet_ns(time)
        pickups = self._pickups
        while rule and pickups:  # held pick-ups whose wait is over cross now
            oldest = next(iter(pickups))
            if now - pickups[oldest].time_ns < PICKUP_WAIT_NS:
                break
            self._release_pickup(oldest, out)
        view = self._parse(data, linktype)
        if view is None:
            return
        keep = ref.Keep.PAYLOAD
        pickup = False
        key: ref.Key | None = None
        if rule:
            matcher = self.matcher
            src, dst = view.addresses(data)
            key, direction = ref.flow_key(src, view.sport, dst, view.dport)
            pending_before = key in matcher.pending
            plain_before = matcher.plain_syns
            verdict = matcher.step(key, direction, view, data, now)
            if matcher.plain_syns != plain_before:
                self._note_plain(key, view.seq)
            keep, pickup = verdict.keep, verdict.pickup
            if keep == ref.Keep.HOLD:
                self._held[key] = _Held(data[: R.HELD_HEADER_BYTES], time, number,
                                        interface, linktype, orig_len)
                if len(self._held) > 2 * matcher.max_pending:
                    self._held = {k: v for k, v in self._held.items() if k in matcher.pending}
            elif pending_before and key not in matcher.pending:
                held = self._held.pop(key, None)
                if verdict.release and held is not None:
                    held_view = ref.parse(held.frame, held.linktype)
                    if held_view is not None:
                        out.append(self._tuple(held.frame, held_view, ref.Keep.HEADERS,
                                               held.time, held.number, held.interface,
                                               held.linktype, held.orig_len))
                        self._counts["kept"] += 1
            if keep in (ref.Keep.DROP, ref.Keep.HOLD):
                return
        if self.dedup.seen(data, view, now):
            self._counts["duplicates"] += 1
            return
        if rule and keep == ref.Keep.PAYLOAD:
            captured = view.captured_end - view.payload_start
            if captured < min(view.payload_len, R.PAYLOAD_CAP):
                self._counts["cut_payload"] += 1
        if pickups and key is not None and key in pickups:  # its held pick-up answered
            self._release_pickup(key, out)
        if pickup and keep == ref.Keep.PAYLOAD and key is not None:
            kept = data[: view.keep_bytes(keep)]
            if len(kept) <= R.HELD_PICKUP_BYTES:
                pickups[key] = _Held(kept, time, number, interface, linktype, orig_len, now)
                if len(pickups) > R.HELD_PICKUPS:
                    evicted, _ = pickups.popitem(last=False)
                    self.unanswered_pickups += 1
                    if len(self.pickup_sample) < R.UNANSWERED_SAMPLE:
                        self.pickup_sample.append(evicted)
                return
        out.append(self._tuple(data, view, keep, time, number, interface, linktype, orig_len))
        self._counts["kept"] += 1

    def set_duration(self, seconds: float | None) -> None:
        """Trace only frames at most ``seconds`` of packet time after the first frame."""
        if seconds is not None and not seconds >= 0:
            raise ValueError("duration must be >= 0")
        self._duration = math.inf if seconds is None else seconds

    def set_filter(self, frame_filter: FrameFilter | None) -> None:
        """Keep only frames the user's filter expression accepts (None: every frame)."""
        self._filter = frame_filter

    def _release_pickup(self, key: ref.Key, out: list[Any]) -> None:
        held = self._pickups.pop(key)
        view = ref.parse(held.frame, held.linktype)
        if view is not None:
            out.append(self._tuple(held.frame, view, ref.Keep.PAYLOAD, held.time, held.number,
                                   held.interface, held.linktype, held.orig_len))
            self._counts["kept"] += 1

    def _note_plain(self, key: ref.Key, seq: int) -> None:
        if (key, seq) in self._plain:
            return
        self._plain[(key, seq)] = None
        if len(self._plain) > R.PLAIN_SYN_MEMORY:
            self._plain.popitem(last=False)
        self._counts["plain_connections"] += 1

    def verdict(self, data: Any, linktype: int, time_ns: int) -> tuple[int, bool, int, bool]:
        data = bytes(data)
        verdict, view = self.matcher.verdict(data, linktype, time_ns)
        return (int(verdict.keep), verdict.release,
                0 if view is None else view.keep_bytes(verdict.keep), verdict.pickup)

    # -- buffers --------------------------------------------------------------------------

    def scan_pcap(self, buf: Any, start: int, end: int, swapped: bool, linktype: int,
                  max_caplen: int, units: float, number: int,
                  out: list[Any]) -> tuple[int, int, int]:
        view = memoryview(buf)
        record = struct.Struct(_file_order(swapped) + "IIII")
        header_len = formats.PCAP_RECORD_HEADER_LEN
        position, frames = start, 0
        while end - position >= header_len:
            seconds, fraction, caplen, orig_len = record.unpack_from(view, position)
            if caplen > max_caplen or caplen > end - position - header_len:
                return STATUS_STOP, position, frames
            frames += 1
            data = view[position + header_len : position + header_len + caplen]
            self.feed(data, linktype, seconds + fraction / units, number + frames, 0,
                      orig_len, True, out)
            position += header_len + caplen
        return (STATUS_END if position == end else STATUS_STOP), position, frames

    def scan_pcapng(self, buf: Any, start: int, end: int, swapped: bool,
                    interfaces: Sequence[tuple[int, int, int, int]], last_time: float,
                    number: int, out: list[Any]) -> tuple[int, int, int, float]:
        view = memoryview(buf)
        word = struct.Struct(_file_order(swapped) + "I")
        position, frames = start, 0
        while end - position >= 12:
            block_type = word.unpack_from(view, position)[0]
            total = word.unpack_from(view, position + 4)[0]
            if total < 12 or total % 4 or total > end - position or \
                    word.unpack_from(view, position + total - 4)[0] != total:
                return STATUS_STOP, position, frames, last_time
            body, body_len = position + 8, total - 12
            if block_type == formats.PCAPNG_EPB:
                if body_len < formats.PCAPNG_EPB_FIXED:
                    return STATUS_STOP, position, frames, last_time
                interface, high, low, caplen, orig_len = struct.unpack_from(
                    _file_order(swapped) + "IIIII", view, body)
                if interface >= len(interfaces) or caplen > body_len - formats.PCAPNG_EPB_FIXED:
                    return STATUS_STOP, position, frames, last_time
                _linktype, units, tsoffset, _snaplen = interfaces[interface]
                last_time = formats.pcapng_time((high << 32) | low, units, tsoffset)
                time, data_start = last_time, body + formats.PCAPNG_EPB_FIXED
            elif block_type == formats.PCAPNG_SPB:
                if body_len < formats.PCAPNG_SPB_FIXED or not interfaces:
                    return STATUS_STOP, position, frames, last_time
                interface = 0
                orig_len = word.unpack_from(view, body)[0]
                caplen = min(orig_len, body_len - formats.PCAPNG_SPB_FIXED)
                if interfaces[0][3]:
                    caplen = min(caplen, interfaces[0][3])
                time, data_start = last_time, body + formats.PCAPNG_SPB_FIXED
            else:
                return STATUS_STOP, position, frames, last_time
            frames += 1
            self.feed(view[data_start : data_start + caplen], interfaces[interface][0], time,
                      number + frames, interface, orig_len, True, out)
            position += total
        status = STATUS_END if position == end else STATUS_STOP
        return status, position, frames, last_time

    # -- end ------------------------------------------------------------------------------

    def finish(self, out: list[Any]) -> None:
        self.matcher.finish()
        self._held.clear()
        while self._pickups:
            self._release_pickup(next(iter(self._pickups)), out)

    def counters(self) -> dict[str, Any]:
        m = self.matcher
        sample = []
        for lo, lo_port, hi, hi_port in m.unanswered_keys:
            sample.append((_text(lo), lo_port, _text(hi), hi_port))
        return {**self._counts, "plain_syns": m.plain_syns, "smc_syns": m.smc_syns,
                "answered": m.answered, "unanswered": m.unanswered,
                "followed": len(m.follow), "pending": len(m.pending),
                "unsupported": dict(self._unsupported), "unanswered_sample": sample,
                "unanswered_pickups": self.unanswered_pickups,
                "held_pickups": len(self._pickups),
                "unanswered_pickup_sample": [(_text(lo), lo_port, _text(hi), hi_port)
                                             for lo, lo_port, hi, hi_port in self.pickup_sample]}


def _file_order(swapped: bool) -> str:
    """struct byte order of a file whose order differs from the host's iff swapped."""
    return "<" if (sys.byteorder == "little") != swapped else ">"

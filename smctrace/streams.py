"""TCP segments -> CLC message bytes, per connection direction.

A :class:`ClcStream` reassembles the *CLC phase* of one TCP direction: the bytes from the
first payload byte after the SYN up to the point where CLC is over (the connection logic
says so, or a payload that is not CLC shows up).  It stays anchored for the whole life of
its connection: after the last message it keeps only its next sequence number, so bytes
seen again are never decoded twice and a late Decline is reassembled like any message.
It copes with what real captures hold:
out-of-order segments, retransmissions and overlaps, messages split across segments,
several messages in one segment, a capture that started after the SYN, and holes that are
never filled (the capture missed a segment that the peer did receive).

Memory is bounded: a CLC message is at most 652 bytes, so a direction never buffers more
than :data:`MAX_BUFFERED` bytes, in order or out of order; beyond that it reports a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

from smctrace.match.rule import (
    CLC_HEADER_LEN,
    CLC_MAX_LEN,
    EYECATCHER_D,
    EYECATCHER_R,
    plausible_clc_header,
)

SEQ_MOD = 1 << 32
MAX_BUFFERED = 4 * CLC_MAX_LEN  # in-order partial message + out-of-order segments
MAX_PENDING_SEGMENTS = 32


def seq_diff(a: int, b: int) -> int:
    """Signed distance a - b in 32-bit sequence space."""
    d = (a - b) % SEQ_MOD
    return d - SEQ_MOD if d >= SEQ_MOD // 2 else d


def starts_clc(payload: bytes) -> bool:
    """True if the payload begins with a plausible CLC header (the rule's test)."""
    return plausible_clc_header(payload) > 0


def could_be_clc_prefix(data: bytes) -> bool:
    """True while fewer than 4 bytes are known and they match an eyecatcher's start."""
    n = min(len(data), 4)
    return data[:n] in (EYECATCHER_R[:n], EYECATCHER_D[:n])


@dataclass(slots=True)
class StreamMessage:
    """The bytes of one CLC message, framed by the header's length field."""

    time: float  # time of the segment that completed the message
    data: bytes
    seq: int  # sequence number of the first byte
    frame: int  # frame number of the segment that completed it
    truncated: bool = False  # the stream ended (or a hole opened) before `length` bytes


@dataclass(slots=True)
class StreamGap:
    """Bytes the capture never saw: reported, never glued over."""

    time: float
    seq: int  # first missing sequence number
    missing: int  # number of missing bytes (0 if unknown)


@dataclass(slots=True)
class StreamData:
    """Payload that is not CLC: the CLC phase of this direction is over."""

    time: float
    seq: int
    frame: int


StreamEvent = StreamMessage | StreamGap | StreamData


@dataclass(slots=True)
class _Pending:
    seq: int
    payload: bytes
    time: float
    frame: int
    cut: int  # bytes of the segment after the payload that the capture did not keep


class ClcStream:
    """Reassembles the CLC phase of one TCP direction into whole messages."""

    __slots__ = ("_buffer", "_buffer_seq", "_last_frame", "_last_time", "_pending",
                 "closed", "next_seq", "retransmitted", "split")

    def __init__(self, next_seq: int | None = None) -> None:
        # next_seq is None until we know where the stream starts: SYN seen (ISN + 1) or,
        # for a capture that began mid-connection, the first segment carrying a CLC header.
        self.next_seq = next_seq
        self.closed = False
        # Segments that brought bytes already seen again (retransmissions, whole or in part;
        # copies of one segment seen twice are dropped before, by the duplicate filter).
        self.retransmitted = 0
        self.split = 0  # messages that continued beyond the segment where they began
        self._buffer = bytearray()  # bytes of the message being assembled
        self._buffer_seq = 0
        self._pending: list[_Pending] = []
        self._last_time = 0.0
        self._last_frame = 0

    def add(self, seq: int, payload: bytes, time: float, frame: int = 0,
            cut: int = 0) -> list[StreamEvent]:
        """Add one segment's payload; return the events it completes.  ``cut``: bytes of
        the segment beyond ``payload`` that the capture did not keep (snap length): a
        message they belong to is reported truncated, and reading goes on after them."""
        if self.closed or not payload:
            return []
        events: list[StreamEvent] = []
        if self.next_seq is None:
            if not starts_clc(payload):
                return []  # mid-stream and not at a message boundary: nothing to anchor on
            self.next_seq = seq
            self._buffer_seq = seq
        offset = seq_diff(seq, self.next_seq)
        if offset > 0:
            self._hold(seq, payload, time, frame, cut, events)
            return events
        if offset < 0:
            self.retransmitted += 1
        if -offset >= len(payload):
            return events  # pure retransmission of bytes already taken
        self._append(payload[-offset:] if offset else payload, time, frame, events)
        if cut:
            self._skip_cut(cut, events)
        if self._pending:
            self._drain_pending(events)
        return events

    def _hold(self, seq: int, payload: bytes, time: float, frame: int, cut: int,
              events: list[StreamEvent]) -> None:
        """Keep an out-of-order segment until the hole before it is filled."""
        if any(p.seq == seq and len(p.payload) >= len(payload) for p in self._pending):
            self.retransmitted += 1
            return  # retransmission of a segment we already hold
        self._pending.append(_Pending(seq, payload, time, frame, cut))
        held = sum(len(p.payload) for p in self._pending) + len(self._buffer)
        if held > MAX_BUFFERED or len(self._pending) > MAX_PENDING_SEGMENTS:
            self.skip_hole(time, events)

    def _append(self, data: bytes, time: float, frame: int, events: list[StreamEvent]) -> None:
        assert self.next_seq is not None
        self.next_seq = (self.next_seq + len(data)) % SEQ_MOD
        continuing = bool(self._buffer)
        if continuing:  # the rest of a message that started in an earlier segment
            self._buffer += data
            data = bytes(self._buffer)
            self._buffer.clear()
        else:
            self._buffer_seq = (self.next_seq - len(data)) % SEQ_MOD
        self._last_time = time
        self._last_frame = frame
        self._extract(data, events, continuing)

    def _drain_pending(self, events: list[StreamEvent]) -> None:
        progressed = True
        while progressed and self._pending and not self.closed:
            progressed = False
            for p in sorted(self._pending, key=lambda p: seq_diff(p.seq, self.next_seq or 0)):
                assert self.next_seq is not None
                offset = seq_diff(p.seq, self.next_seq)
                if offset > 0:
                    break
                self._pending.remove(p)
                if -offset < len(p.payload):
                    self._append(p.payload[-offset:], p.time, p.frame, events)
                    if p.cut:
                        self._skip_cut(p.cut, events)
                progressed = True
                break

    def _extract(self, data: bytes, events: list[StreamEvent], continuing: bool = False) -> None:
        """Cut every complete message off the front of ``data`` (which starts at
        ``_buffer_seq``); keep an incomplete rest in the buffer for the next segment.
        ``continuing``: data begins with the rest of a message an earlier segment began."""
        pos, end = 0, len(data)
        while pos < end and not self.closed:
            if end - pos < CLC_HEADER_LEN:
                if could_be_clc_prefix(data[pos:]):
                    if not (continuing and pos == 0):
                        self.split += 1
                    break
                self._non_clc(events)
                return
            length = plausible_clc_header(data, pos)
            if not length:
                # Not a CLC header where one must start: either application data (the
                # phase is over) or a message whose header is corrupt.  With an
                # eyecatcher but an impossible header we still hand it to the decoder so
                # that it is reported as malformed, and stop framing this direction.
                if data[pos : pos + 4] in (EYECATCHER_R, EYECATCHER_D):
                    events.append(StreamMessage(self._last_time,
                                                data[pos:pos + CLC_MAX_LEN],
                                                self._buffer_seq, self._last_frame))
                    self.close()
                else:
                    self._non_clc(events)
                return
            if end - pos < length:
                if not (continuing and pos == 0):
                    self.split += 1  # the message continues in a later segment
                break
            events.append(StreamMessage(self._last_time, data[pos:pos + length],
                                        self._buffer_seq, self._last_frame))
            pos += length
            self._buffer_seq = (self._buffer_seq + length) % SEQ_MOD
        if pos < end and not self.closed:
            self._buffer = bytearray(data[pos:])

    def _skip_cut(self, cut: int, events: list[StreamEvent]) -> None:
        """The capture kept only the start of the segment just appended: the message
        being assembled is reported as far as it goes, reading resumes after the cut."""
        assert self.next_seq is not None
        if self.closed:
            return
        self._truncate(events)
        self.next_seq = (self.next_seq + cut) % SEQ_MOD
        self._buffer_seq = self.next_seq

    def _truncate(self, events: list[StreamEvent]) -> None:
        """The bytes after the buffer will not come: its partial message is reported."""
        if self._buffer:
            events.append(StreamMessage(self._last_time, bytes(self._buffer),
                                        self._buffer_seq, self._last_frame, truncated=True))
            self._buffer.clear()

    def _non_clc(self, events: list[StreamEvent]) -> None:
        events.append(StreamData(self._last_time, self._buffer_seq, self._last_frame))
        self.close()

    def skip_hole(self, time: float, events: list[StreamEvent]) -> None:
        """Give up waiting for missing bytes: report the gap and resynchronise.

        Whatever partial message sits in the buffer is reported as truncated; reading
        resumes at the first held segment that starts with a CLC header.
        """
        if self.closed:
            return
        self._truncate(events)
        if not self._pending or self.next_seq is None:
            return
        anchor = self.next_seq
        self._pending.sort(key=lambda p: seq_diff(p.seq, anchor))
        first = self._pending[0]
        resume = next((p for p in self._pending if starts_clc(p.payload)), None)
        events.append(StreamGap(time, self.next_seq, max(seq_diff(first.seq, self.next_seq), 0)))
        if resume is None:
            self._pending.clear()
            self.close()
            return
        self._pending = [p for p in self._pending if seq_diff(p.seq, resume.seq) >= 0]
        self.next_seq = resume.seq
        self._buffer_seq = resume.seq
        self._drain_pending(events)

    def flush(self, time: float) -> list[StreamEvent]:
        """End of input for this direction: report holes and partial messages."""
        events: list[StreamEvent] = []
        while not self.closed and (self._pending or self._buffer):
            before = (len(self._pending), len(self._buffer))
            self.skip_hole(time, events)
            if (len(self._pending), len(self._buffer)) == before:
                break
        return events

    def oldest_pending(self) -> float | None:
        """Capture time of the oldest out-of-order segment still waiting for a hole."""
        if not self._pending:  # nearly always (asked after every CLC segment)
            return None
        return min(p.time for p in self._pending)

    def close(self) -> None:
        """The CLC phase of this direction is over: drop all buffered bytes."""
        self.closed = True
        self._buffer = bytearray()
        self._pending = []

"""Reassembly of the CLC phase of one TCP direction."""

from __future__ import annotations

from smctrace.streams import MAX_BUFFERED, ClcStream, StreamData, StreamGap, StreamMessage
from tests.vectors import ACCEPT_R_V1, DECLINE_V1_NOSMCDEV, PROPOSAL_V1_52

ISN = 1000


def messages(events: list[object]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, StreamMessage)]


def test_whole_message_in_one_segment() -> None:
    s = ClcStream(ISN)
    ev = s.add(ISN, PROPOSAL_V1_52, 1.0, 7)
    assert messages(ev) == [PROPOSAL_V1_52]
    assert ev[0].frame == 7 and ev[0].seq == ISN  # type: ignore[union-attr]


def test_split_across_segments() -> None:
    s = ClcStream(ISN)
    assert s.add(ISN, PROPOSAL_V1_52[:5], 1.0) == []  # even the header is split
    assert s.add(ISN + 5, PROPOSAL_V1_52[5:30], 1.1) == []
    ev = s.add(ISN + 30, PROPOSAL_V1_52[30:], 1.2)
    assert messages(ev) == [PROPOSAL_V1_52]
    assert ev[0].time == 1.2  # type: ignore[union-attr]


def test_several_messages_in_one_segment() -> None:
    s = ClcStream(ISN)
    ev = s.add(ISN, PROPOSAL_V1_52 + ACCEPT_R_V1 + DECLINE_V1_NOSMCDEV, 1.0)
    assert messages(ev) == [PROPOSAL_V1_52, ACCEPT_R_V1, DECLINE_V1_NOSMCDEV]


def test_out_of_order_segments_are_reordered() -> None:
    s = ClcStream(ISN)
    data = PROPOSAL_V1_52 + DECLINE_V1_NOSMCDEV
    assert s.add(ISN + 40, data[40:], 1.0) == []
    assert s.add(ISN + 20, data[20:40], 1.1) == []
    ev = s.add(ISN, data[:20], 1.2)
    assert messages(ev) == [PROPOSAL_V1_52, DECLINE_V1_NOSMCDEV]


def test_retransmissions_and_overlaps_do_not_duplicate() -> None:
    s = ClcStream(ISN)
    s.add(ISN, PROPOSAL_V1_52[:30], 1.0)
    assert s.add(ISN, PROPOSAL_V1_52[:30], 1.1) == []  # exact retransmission
    ev = s.add(ISN + 10, PROPOSAL_V1_52[10:], 1.2)  # overlaps 20 bytes already taken
    assert messages(ev) == [PROPOSAL_V1_52]
    assert s.add(ISN, PROPOSAL_V1_52, 1.3) == []  # retransmitted whole message


def test_sequence_wraparound() -> None:
    start = (1 << 32) - 20
    s = ClcStream(start)
    s.add(start, PROPOSAL_V1_52[:20], 1.0)
    ev = s.add(0, PROPOSAL_V1_52[20:], 1.1)
    assert messages(ev) == [PROPOSAL_V1_52]


def test_mid_stream_pickup_anchors_on_a_clc_header() -> None:
    s = ClcStream(None)
    assert s.add(5000, b"GET / HTTP/1.1\r\n", 1.0) == []  # nothing to anchor on
    ev = s.add(7000, ACCEPT_R_V1, 1.1)
    assert messages(ev) == [ACCEPT_R_V1]


def test_non_clc_payload_ends_the_phase() -> None:
    s = ClcStream(ISN)
    ev = s.add(ISN, DECLINE_V1_NOSMCDEV + b"Hello, world", 1.0)
    assert messages(ev) == [DECLINE_V1_NOSMCDEV]
    assert isinstance(ev[-1], StreamData)
    assert s.closed
    assert s.add(ISN + 40, PROPOSAL_V1_52, 2.0) == []


def test_short_non_clc_payload_ends_the_phase_early() -> None:
    s = ClcStream(ISN)
    ev = s.add(ISN, b"Hi", 1.0)  # fewer than 8 bytes, but cannot be an eyecatcher
    assert isinstance(ev[0], StreamData)


def test_unfilled_hole_is_reported_not_glued() -> None:
    s = ClcStream(ISN)
    data = PROPOSAL_V1_52 + ACCEPT_R_V1
    s.add(ISN, data[:30], 1.0)  # first 30 bytes of the Proposal
    # bytes 30..52 never captured; the next message arrives
    assert s.add(ISN + 52, ACCEPT_R_V1, 1.1) == []
    ev = s.flush(2.0)
    kinds = [type(e).__name__ for e in ev]
    assert kinds == ["StreamMessage", "StreamGap", "StreamMessage"]
    truncated, gap, resumed = ev
    assert isinstance(truncated, StreamMessage) and truncated.truncated
    assert truncated.data == PROPOSAL_V1_52[:30]
    assert isinstance(gap, StreamGap) and gap.seq == ISN + 30 and gap.missing == 22
    assert isinstance(resumed, StreamMessage) and resumed.data == ACCEPT_R_V1


def test_hole_followed_by_non_clc_bytes_closes_the_direction() -> None:
    s = ClcStream(ISN)
    s.add(ISN + 100, b"application bytes", 1.0)
    ev = s.flush(2.0)
    assert [type(e) for e in ev] == [StreamGap]
    assert s.closed


def test_memory_is_bounded() -> None:
    s = ClcStream(ISN)
    events = []
    for i in range(1, 200):  # never fill the first byte: everything is out of order
        events += s.add(ISN + 1 + i * 100, b"\x00" * 100, float(i))
    assert any(isinstance(e, StreamGap) for e in events)
    held = sum(len(p.payload) for p in s._pending) + len(s._buffer)
    assert held <= MAX_BUFFERED

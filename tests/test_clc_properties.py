"""Property tests: decode()/peek_header()/format_message() never raise, on any input."""

from __future__ import annotations

import json
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smctrace.clc import EYECATCHER_D, EYECATCHER_R, ClcMessage, decode, peek_header, safe_text
from smctrace.output.clc_text import format_message, hexdump
from smctrace.schema import message_fields
from tests.test_clc_vectors import ALL_VECTORS

VECTORS = list(ALL_VECTORS.values())
FAST = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(msg: ClcMessage, data: bytes) -> None:
    assert msg.raw == data
    assert msg.malformed is None or not msg.malformed.startswith("decoder error"), msg.malformed
    for reserved in (False, True):
        fields = message_fields(msg, reserved=reserved)
        text = json.dumps(fields)  # JSON-able
        assert text.isascii()
    line = format_message(msg, reserved=True)
    assert all(0x20 <= ord(c) < 0x7F for c in line), line
    assert "\n" not in line
    hexdump(data)


@FAST
@given(st.binary(max_size=700))
def test_decode_arbitrary_bytes(data: bytes) -> None:
    _check(decode(data), data)


@st.composite
def clc_like(draw: st.DrawFn) -> bytes:
    """Bytes with a real eyecatcher and header, random everything else."""
    eye = draw(st.sampled_from([EYECATCHER_R, EYECATCHER_D]))
    mtype = draw(st.integers(0, 6))
    byte7 = draw(st.integers(0, 255))
    body = draw(st.binary(max_size=660))
    length = draw(st.one_of(st.just(len(body) + 8), st.integers(0, 0xFFFF)))
    return eye + bytes([mtype]) + length.to_bytes(2, "big") + bytes([byte7]) + body


@FAST
@given(clc_like())
def test_decode_clc_like(data: bytes) -> None:
    _check(decode(data), data)


@st.composite
def mutated_vector(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VECTORS)))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data) + 20))
    tail = draw(st.binary(max_size=20))
    return bytes(data[:cut]) + (tail if cut > len(data) else b"")


@FAST
@given(mutated_vector())
def test_decode_mutated_vectors(data: bytes) -> None:
    _check(decode(data), data)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(VECTORS), st.integers(0, 700))
def test_decode_every_prefix(data: bytes, cut: int) -> None:
    part = data[:cut]
    msg = decode(part)
    _check(msg, part)
    if cut < len(data):
        assert msg.malformed is not None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.integers(-10, 50))
def test_peek_header_never_raises(buf: bytes, offset: int) -> None:
    h = peek_header(buf, offset)
    if h is not None:
        assert buf[offset : offset + 4] in (EYECATCHER_R, EYECATCHER_D)
        assert h.eyecatcher in ("SMC-R", "SMC-D")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_safe_text_is_printable_ascii(b: bytes) -> None:
    s = safe_text(b)
    assert all(0x20 <= ord(c) < 0x7F for c in s)
    assert len(s) >= len(b)


def test_worst_case_counts_do_not_hang() -> None:
    # Max-size v2 Proposal with all counts 255 and offsets pointing inside the message.
    body = bytearray(652)
    body[0:4] = EYECATCHER_R
    body[4] = 1
    body[5:7] = (652).to_bytes(2, "big")
    body[7] = 0x2F
    body[38:40] = (40).to_bytes(2, "big")
    body[50:52] = (36).to_bytes(2, "big")
    body[87] = 255  # IPv6 count
    body[88] = 255  # eid_cnt
    body[89] = 255  # ism_gid_cnt
    body[94:96] = (0).to_bytes(2, "big")
    start = time.perf_counter()
    for _ in range(50):
        msg = decode(bytes(body))
        format_message(msg, reserved=True)
    assert time.perf_counter() - start < 2.0
    assert msg.malformed

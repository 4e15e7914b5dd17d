"""The C engine and its Python twin give the same results on anything.

The case table (test_match_rule.py) fixes what the rule keeps; here the two offline
engines are run side by side on what no table lists: mutated frames of every link type,
random conversations (the state machine), pcap and pcapng buffers walked whole or damaged,
and random bytes.  Verdicts, handed-out segments (held SYNs included) and counters must
be identical.
"""

from __future__ import annotations

import io
import random
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smctrace.capture.pcapwriter import PcapngWriter, PcapWriter
from smctrace.frame import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    SUPPORTED_LINKTYPES,
)
from smctrace.match.engine import NATIVE, new_engine
from tests.support.match_cases import ACCEPT, ACK, CONFIRM, DECLINE, FIN, PROPOSAL, RST, SYN
from tests.support.synth import clc_like_payload, tcp_frame

pytestmark = pytest.mark.skipif(not NATIVE, reason="the C engine is not built")

LINKTYPES = (*sorted(SUPPORTED_LINKTYPES), 147)  # and one smctrace does not read (USER0)
SWAPPED_LITTLE = sys.byteorder != "little"
CLC = [PROPOSAL, ACCEPT, CONFIRM, DECLINE]


def sample_frame(rng: random.Random, linktype: int, ports: tuple[int, int] | None = None,
                 seq: int | None = None) -> bytes:
    """A plausible frame with random features (then maybe mutated by the caller)."""
    ipv6 = linktype == LINKTYPE_IPV6 or (linktype != LINKTYPE_IPV4 and rng.random() < 0.4)
    src, dst = ("2001:db8::1", "2001:db8::2") if ipv6 else ("10.0.0.1", "10.0.0.2")
    if rng.random() < 0.5:
        src, dst = dst, src
    build_linktype = linktype if linktype != 147 else LINKTYPE_RAW
    message = rng.choice(CLC)
    cut = rng.randrange(len(message) + 1)
    payload = rng.choice([b"", b"x" * rng.randrange(1, 1500), clc_like_payload(1, 44),
                          b"\xe2\xd4\xc3", message[:cut], message[cut:], message])
    sport, dport = ports or (rng.choice([1, 7001, 40000]), rng.choice([2, 7001, 40000]))
    return tcp_frame(
        src, dst, sport, dport,
        seq=rng.randrange(1 << 32) if seq is None else seq,
        flags=rng.choice([ACK, ACK, SYN, SYN | ACK, FIN | ACK, RST, 0x18]),
        payload=payload, smc_option=rng.random() < 0.4, linktype=build_linktype,
        vlans=tuple(range(rng.randrange(4))) if build_linktype == LINKTYPE_ETHERNET else (),
        ip_options=b"\x01" * rng.choice([0, 0, 4, 40]) if not ipv6 else b"",
        ipv6_ext_headers=[(0, b""), (60, b"")][: rng.randrange(3)] if ipv6 else (),
        frag_offset=rng.choice([0, 0, 0, 1]), more_fragments=rng.random() < 0.1,
    )  # fmt: skip


def mutate(rng: random.Random, data: bytes) -> bytes:
    mutable = bytearray(data)
    for _ in range(rng.randrange(4)):
        if mutable:
            mutable[rng.randrange(len(mutable))] = rng.randrange(256)
    if rng.random() < 0.3:
        mutable = mutable[: rng.randrange(len(mutable) + 1)]
    if rng.random() < 0.1:
        mutable += bytes(rng.randrange(1, 20))
    return bytes(mutable)


def both(**options: Any) -> tuple[Any, Any]:
    return new_engine(native=True, **options), new_engine(native=False, **options)


def test_verdicts_agree_on_mutated_frames_and_random_conversations() -> None:
    """Each engine sees the same frame sequence; a few 4-tuples and sequence numbers keep
    recurring, so the state machine (pending, followed, phases) is exercised."""
    rng = random.Random(2024)
    for round_ in range(40):
        native, python = both(grace=0.5, max_connections=8, max_pending=8)
        now = 10**18
        for _ in range(500):
            linktype = rng.choice(LINKTYPES)
            ports = (rng.choice([40000, 40001]), 7001) if rng.random() < 0.8 else None
            seq = rng.choice([1000, 1001, 1093, 1161, 5000, 5001, 5069]) \
                if rng.random() < 0.7 else None
            frame = sample_frame(rng, linktype, ports, seq)
            if rng.random() < 0.3:
                frame = mutate(rng, frame)
            now += rng.choice([0, 1, 1000, 10**6, 10**9])  # 0: pieces of one segment
            assert native.verdict(frame, linktype, now) == python.verdict(frame, linktype, now), \
                (round_, frame.hex())
        n, p = native.counters(), python.counters()
        for key in ("smc_syns", "answered", "unanswered", "plain_syns", "followed", "pending"):
            assert n[key] == p[key], key


def walk_pcap(engine: Any, buf: bytes, linktype: int) -> tuple[Any, ...]:
    out: list[Any] = []
    result = engine.scan_pcap(buf, 24, len(buf), SWAPPED_LITTLE, linktype, 262144, 1e6, 0, out)
    engine.finish(out)
    counters = engine.counters()
    return result, out, {k: v for k, v in counters.items() if k != "unanswered_sample"}


def test_pcap_walks_agree() -> None:
    rng = random.Random(99)
    for _ in range(40):
        linktype = rng.choice(LINKTYPES)
        stream = io.BytesIO()
        writer = PcapWriter(stream, linktype)
        for index in range(rng.randrange(1, 300)):
            ports = (40000, 7001) if rng.random() < 0.7 else None
            writer.write(index * 0.001, mutate(rng, sample_frame(rng, linktype, ports)))
        buf = stream.getvalue()
        if rng.random() < 0.5:  # damage the tail: both must stop at the same record
            buf = buf[: rng.randrange(24, len(buf) + 1)]
        native, python = both()
        assert walk_pcap(native, buf, linktype) == walk_pcap(python, buf, linktype)


def walk_pcapng(engine: Any, buf: bytes, start: int,
                interfaces: list[tuple[int, float, float, int]]) -> tuple[Any, ...]:
    out: list[Any] = []
    results = []
    position, last_time = start, 0.0
    while position < len(buf):
        status, position, walked, last_time = engine.scan_pcapng(
            buf, position, len(buf), SWAPPED_LITTLE, interfaces, last_time, 0, out)
        results.append((status, position, walked, last_time))
        if status == 0:
            break
    return tuple(results), out


def test_pcapng_walks_agree() -> None:
    rng = random.Random(7)
    for _ in range(40):
        interface_linktypes = [rng.choice(LINKTYPES) for _ in range(rng.randrange(1, 4))]
        stream = io.BytesIO()
        writer = PcapngWriter(stream)
        for linktype in interface_linktypes:
            writer.add_interface(linktype)
        start = len(stream.getvalue())
        for index in range(rng.randrange(1, 150)):
            interface = rng.randrange(len(interface_linktypes))
            data = mutate(rng, sample_frame(rng, interface_linktypes[interface], (40000, 7001)))
            if rng.random() < 0.2:
                writer.write_simple(mutate(rng, sample_frame(rng, interface_linktypes[0])))
            elif rng.random() < 0.05:
                writer.write_block(0x80000001, b"custom")
            else:
                writer.write(interface, index, data, comment="c" if rng.random() < 0.1 else None)
        buf = stream.getvalue()
        if rng.random() < 0.5:
            mutable = bytearray(buf)
            for _ in range(3):
                mutable[rng.randrange(start, len(mutable))] = rng.randrange(256)
            buf = bytes(mutable)
        interfaces = [(lt, 1e6, 0.0, 0) for lt in interface_linktypes]
        native, python = both()
        assert walk_pcapng(native, buf, start, interfaces) == \
            walk_pcapng(python, buf, start, interfaces)


@settings(max_examples=400, deadline=None)
@given(body=st.binary(max_size=300), start=st.integers(0, 40), swapped=st.booleans(),
       max_caplen=st.integers(0, (1 << 32) - 1))
def test_pcap_walk_on_random_buffers(body: bytes, start: int, swapped: bool,
                                     max_caplen: int) -> None:
    start = min(start, len(body))
    results = []
    for engine in both():
        out: list[Any] = []
        results.append((engine.scan_pcap(body, start, len(body), swapped, 1, max_caplen, 1e6, 0,
                                         out), out))
    assert results[0] == results[1]
    assert start <= results[0][0][1] <= len(body)


@settings(max_examples=400, deadline=None)
@given(body=st.binary(max_size=300), swapped=st.booleans(),
       linktypes=st.lists(st.sampled_from(LINKTYPES), max_size=3))
def test_pcapng_walk_on_random_buffers(body: bytes, swapped: bool, linktypes: list[int]) -> None:
    interfaces = [(lt, 1e9, 0.5, 0) for lt in linktypes]
    results = []
    for engine in both():
        out: list[Any] = []
        results.append((engine.scan_pcapng(body, 0, len(body), swapped, interfaces, 0.0, 0,
                                           out), out))
    assert results[0] == results[1]


def test_engine_rejects_bad_arguments() -> None:
    native, _ = both()
    with pytest.raises(ValueError):
        native.scan_pcap(b"abc", 0, 4, False, 1, 100, 1e6, 0, [])  # end past the buffer
    with pytest.raises(ValueError):
        native.scan_pcap(b"abc", 2, 1, False, 1, 100, 1e6, 0, [])
    with pytest.raises(ValueError):
        native.scan_pcapng(b"", -1, 0, False, [], 0.0, 0, [])
    with pytest.raises(TypeError):
        native.scan_pcapng(b"", 0, 0, False, [(1, 2)], 0.0, 0, [])
    for kind in (True, False):
        with pytest.raises(ValueError):
            new_engine(native=kind, max_connections=0)


def test_whole_file_same_segments_native_and_python() -> None:
    from smctrace.capture.pcapfile import CaptureFile

    rng = random.Random(5)
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    writer.add_interface(LINKTYPE_ETHERNET)
    writer.add_interface(LINKTYPE_LINUX_SLL2, tsresol=0x80 | 16)
    for index in range(500):
        interface = index % 2
        linktype = (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2)[interface]
        writer.write(interface, 100 + index,
                     mutate(rng, sample_frame(rng, linktype, (40000, 7001))))
        if index % 50 == 0:
            writer.write_obsolete(0, 100 + index, sample_frame(rng, LINKTYPE_ETHERNET))
    results = []
    for native in (True, False):
        engine = new_engine(native=native, keep_frames=True)
        with CaptureFile(io.BytesIO(stream.getvalue())) as capture:
            segments = list(capture.segments(engine))
            engine.finish(segments)
            results.append((segments, capture.frames_read))
    assert results[0] == results[1]
    assert results[0][1] == 510 and results[0][0]

"""The C scanner and the pure-Python prefilter must agree on every input.

Compares candidate sets and frame counts on synthetic, mutated and random frames, walks
whole pcap/pcapng buffers through both, and feeds the C code hostile record and block
headers (it must stop cleanly, never read out of bounds).
"""

from __future__ import annotations

import io
import random
import struct
import sys
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smctrace.capture.pcapwriter import PcapngWriter, PcapWriter
from smctrace.capture.prefilter import (
    BITMAP_BYTES,
    NATIVE,
    STATUS_CANDIDATE,
    SYN_MEMORY_SLOTS,
    Prefilter,
    new_syn_memory,
    python_is_candidate,
    python_scan_pcap,
    python_scan_pcapng,
)
from smctrace.frame import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)
from smctrace.packet import ACK, FIN, RST, SYN
from tests.support.synth import clc_like_payload, tcp_frame

pytestmark = pytest.mark.skipif(not NATIVE, reason="C scanner not built")

LINKTYPES = (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    LINKTYPE_NULL,
    LINKTYPE_LOOP,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    12,
    14,
    147,
)
SWAPPED_LITTLE = sys.byteorder != "little"


def native_module():  # type: ignore[no-untyped-def]
    from smctrace.capture import _scan  # type: ignore[attr-defined]

    return _scan


def sample_frame(rng: random.Random, linktype: int) -> bytes:
    """A plausible frame with random features (then maybe mutated by the caller)."""
    ipv6 = linktype == LINKTYPE_IPV6 or (linktype != LINKTYPE_IPV4 and rng.random() < 0.4)
    src, dst = ("2001:db8::1", "2001:db8::2") if ipv6 else ("10.0.0.1", "10.0.0.2")
    build_linktype = linktype if linktype != 147 else LINKTYPE_RAW
    payload = rng.choice(
        [b"", b"x" * rng.randrange(1, 1500), clc_like_payload(1, 44), b"\xe2\xd4\xc3"]
    )
    return tcp_frame(
        src,
        dst,
        rng.choice([1, 7001, 40000]),
        rng.choice([2, 7001, 40000]),
        flags=rng.choice([ACK, ACK, SYN, SYN | ACK, FIN | ACK, RST, 0x18]),
        payload=payload,
        smc_option=rng.random() < 0.3,
        linktype=build_linktype,
        vlans=tuple(range(rng.randrange(3))) if build_linktype == LINKTYPE_ETHERNET else (),
        ip_options=b"\x01" * rng.choice([0, 0, 4, 40]) if not ipv6 else b"",
        ipv6_ext_headers=[(0, b""), (60, b"")][: rng.randrange(3)] if ipv6 else (),
        frag_offset=rng.choice([0, 0, 0, 1]),
        more_fragments=rng.random() < 0.1,
    )


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


def random_bitmap(rng: random.Random) -> bytearray:
    bitmap = bytearray(BITMAP_BYTES)
    for _ in range(rng.randrange(0, 4000)):
        bitmap[rng.randrange(BITMAP_BYTES)] |= 1 << rng.randrange(8)
    return bitmap


def test_single_frames_agree_on_mutated_frames() -> None:
    scan = native_module()
    rng = random.Random(1234)
    disagreements = []
    candidates = 0
    bitmaps = [random_bitmap(rng) for _ in range(3)] + [bytearray(b"\xff" * BITMAP_BYTES)]
    for _ in range(20000):
        linktype = rng.choice(LINKTYPES)
        data = mutate(rng, sample_frame(rng, linktype))
        bitmap = rng.choice(bitmaps)
        native = scan.is_candidate(data, linktype, bitmap)
        python = python_is_candidate(data, linktype, bitmap)
        candidates += python
        if native != python:
            disagreements.append((linktype, data.hex()))
    assert not disagreements[:5]
    assert 2000 < candidates < 19000  # the sample exercises both outcomes


def test_plain_syn_counting_agrees() -> None:
    """Same frames, separate SYN memories: same decisions and the same memory contents."""
    scan = native_module()
    rng = random.Random(99)
    native_memory, python_memory = new_syn_memory(), new_syn_memory()
    bitmap = random_bitmap(rng)
    for _ in range(20000):
        linktype = rng.choice(LINKTYPES)
        data = mutate(rng, sample_frame(rng, linktype))
        assert scan.is_candidate(data, linktype, bitmap, native_memory) == python_is_candidate(
            data, linktype, bitmap, python_memory
        )
    assert native_memory == python_memory
    assert python_memory[SYN_MEMORY_SLOTS] > 100  # plain SYNs were seen and counted


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=120), linktype=st.sampled_from(LINKTYPES))
def test_single_frames_agree_on_random_bytes(data: bytes, linktype: int) -> None:
    bitmap = bytearray(b"\xff" * BITMAP_BYTES)
    assert native_module().is_candidate(data, linktype, bitmap) == python_is_candidate(
        data, linktype, bitmap
    )


def walk_pcap(scan_pcap, buf: bytes, linktype: int, bitmap: bytearray):  # type: ignore[no-untyped-def]
    position, frames, found = 24, 0, []
    while True:
        status, position, walked = scan_pcap(
            buf, position, len(buf), SWAPPED_LITTLE, linktype, 262144, bitmap
        )
        frames += walked
        if status != STATUS_CANDIDATE:
            return found, frames, position
        found.append(position)
        position += 16 + struct.unpack_from("<I", buf, position + 8)[0]


def test_pcap_walks_agree() -> None:
    scan = native_module()
    rng = random.Random(99)
    for _ in range(40):
        linktype = rng.choice(LINKTYPES)
        stream = io.BytesIO()
        writer = PcapWriter(stream, linktype)
        for index in range(rng.randrange(1, 200)):
            writer.write(index, mutate(rng, sample_frame(rng, linktype)))
        buf = stream.getvalue()
        if rng.random() < 0.5:  # damage the tail: both must stop at the same record
            buf = buf[: rng.randrange(24, len(buf) + 1)]
        bitmap = random_bitmap(rng)
        native = walk_pcap(scan.scan_pcap, buf, linktype, bitmap)
        python = walk_pcap(python_scan_pcap, buf, linktype, bitmap)
        assert native == python


def walk_pcapng(scan_pcapng, buf: bytes, start: int, linktypes: bytes, bitmap: bytearray):  # type: ignore[no-untyped-def]
    position, frames, found, last_epbs = start, 0, [], []
    while True:
        status, position, walked, last_epb = scan_pcapng(
            buf, position, len(buf), SWAPPED_LITTLE, linktypes, bitmap
        )
        frames += walked
        last_epbs.append(last_epb)
        if status != STATUS_CANDIDATE:
            return found, frames, position, last_epbs
        found.append(position)
        position += struct.unpack_from("<I", buf, position + 4)[0]


def test_pcapng_walks_agree() -> None:
    scan = native_module()
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
            data = mutate(rng, sample_frame(rng, interface_linktypes[interface]))
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
                position = rng.randrange(start, len(mutable))
                mutable[position] = rng.randrange(256)
            buf = bytes(mutable)
        linktypes = array("I", interface_linktypes).tobytes()
        bitmap = random_bitmap(rng)
        native = walk_pcapng(scan.scan_pcapng, buf, start, linktypes, bitmap)
        python = walk_pcapng(python_scan_pcapng, buf, start, linktypes, bitmap)
        assert native == python


@settings(max_examples=500, deadline=None)
@given(
    body=st.binary(max_size=300),
    start=st.integers(0, 40),
    swapped=st.booleans(),
    max_caplen=st.integers(0, 1 << 32 - 1),
)
def test_pcap_scanner_on_random_buffers(
    body: bytes, start: int, swapped: bool, max_caplen: int
) -> None:
    bitmap = bytearray(b"\xff" * BITMAP_BYTES)
    start = min(start, len(body))
    native = native_module().scan_pcap(body, start, len(body), swapped, 1, max_caplen, bitmap)
    python = python_scan_pcap(body, start, len(body), swapped, 1, max_caplen, bitmap)
    assert native == python
    assert start <= native[1] <= len(body)


@settings(max_examples=500, deadline=None)
@given(
    body=st.binary(max_size=300),
    swapped=st.booleans(),
    linktypes=st.lists(st.sampled_from(LINKTYPES), max_size=3),
)
def test_pcapng_scanner_on_random_buffers(body: bytes, swapped: bool, linktypes: list[int]) -> None:
    bitmap = bytearray(b"\xff" * BITMAP_BYTES)
    packed = array("I", linktypes).tobytes()
    native = native_module().scan_pcapng(body, 0, len(body), swapped, packed, bitmap)
    python = python_scan_pcapng(body, 0, len(body), swapped, packed, bitmap)
    assert native == python


def test_scanner_rejects_bad_arguments() -> None:
    scan = native_module()
    good = bytearray(BITMAP_BYTES)
    with pytest.raises(ValueError):
        scan.scan_pcap(b"abc", 0, 4, False, 1, 100, good)  # end past the buffer
    with pytest.raises(ValueError):
        scan.scan_pcap(b"abc", 2, 1, False, 1, 100, good)
    with pytest.raises(ValueError):
        scan.is_candidate(b"", 1, bytearray(10))
    with pytest.raises(ValueError):
        scan.scan_pcapng(b"", -1, 0, False, b"", good)


def test_whole_file_same_frames_native_and_python() -> None:
    from smctrace.capture.pcapfile import CaptureFile

    rng = random.Random(5)
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    writer.add_interface(LINKTYPE_ETHERNET)
    writer.add_interface(LINKTYPE_LINUX_SLL2, tsresol=0x80 | 16)
    for index in range(500):
        interface = index % 2
        linktype = (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2)[interface]
        writer.write(interface, 100 + index, mutate(rng, sample_frame(rng, linktype)))
        if index % 50 == 0:
            writer.write_obsolete(0, 100 + index, sample_frame(rng, LINKTYPE_ETHERNET))
    results = []
    for native in (True, False):
        with CaptureFile(io.BytesIO(stream.getvalue())) as capture:
            frames = list(capture.frames(Prefilter(native=native)))
            results.append(([(f.number, f.time, f.data) for f in frames], capture.frames_read))
    assert results[0] == results[1]
    assert results[0][1] == 510

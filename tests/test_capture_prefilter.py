"""smctrace.capture.prefilter: the candidate rule, watching, and the flow hash."""

from __future__ import annotations

import io

import pytest

from smctrace.capture.pcapfile import CaptureFile
from smctrace.capture.pcapwriter import PcapWriter
from smctrace.capture.prefilter import NATIVE, Prefilter, flow_hash
from smctrace.frame import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2
from smctrace.packet import ACK, FIN, PSH, RST, SYN
from tests.support.synth import clc_like_payload, tcp_frame

MODES = [pytest.param(False, id="python")]
if NATIVE:
    MODES.append(pytest.param(True, id="native"))


@pytest.fixture(params=MODES)
def prefilter(request: pytest.FixtureRequest) -> Prefilter:
    native: bool = request.param
    return Prefilter(native=native)


def frame(**kwargs: object) -> bytes:
    return tcp_frame("10.0.0.1", "10.0.0.2", 40000, 7001, **kwargs)  # type: ignore[arg-type]


def test_flow_hash_is_fnv1a_folded() -> None:
    # FNV-1a 32 of the empty input is the offset basis; folded: 0x811C ^ 0x9DC5.
    assert flow_hash(b"", b"", 0, 0) != flow_hash(b"\x00", b"", 0, 0)
    value = 0x811C9DC5
    for byte in bytes([10, 0, 0, 1, 10, 0, 0, 2, 0x9C, 0x40, 0x1B, 0x59]):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    expected = (value ^ (value >> 16)) & 0xFFFF
    assert flow_hash(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 40000, 7001) == expected


@pytest.mark.parametrize("flags", [SYN, SYN | ACK])
def test_syn_with_the_smc_option_is_a_candidate(prefilter: Prefilter, flags: int) -> None:
    assert prefilter.is_candidate(frame(flags=flags, smc_option=True), LINKTYPE_ETHERNET)
    assert prefilter.candidates == 1 and prefilter.plain_syns == 0


@pytest.mark.parametrize("flags", [SYN, SYN | ACK, FIN | ACK, RST, RST | ACK])
def test_control_segments_of_ordinary_flows_are_skipped(prefilter: Prefilter, flags: int) -> None:
    assert not prefilter.is_candidate(frame(flags=flags), LINKTYPE_ETHERNET)
    assert prefilter.candidates == 0


@pytest.mark.parametrize("flags", [SYN, SYN | ACK, FIN | ACK, RST, RST | ACK])
def test_control_segments_of_watched_flows_are_candidates(
    prefilter: Prefilter, flags: int
) -> None:
    prefilter.watch("10.0.0.2", "10.0.0.1", 7001, 40000)  # either direction
    assert prefilter.is_candidate(frame(flags=flags), LINKTYPE_ETHERNET)


def test_plain_syns_are_counted_once_per_connection(prefilter: Prefilter) -> None:
    syn = frame(flags=SYN, seq=1000)
    for _ in range(3):  # the SYN and two retransmissions
        prefilter.is_candidate(syn, LINKTYPE_ETHERNET)
    prefilter.is_candidate(frame(flags=SYN | ACK, seq=5000), LINKTYPE_ETHERNET)  # not a client
    prefilter.is_candidate(frame(flags=SYN, seq=2000), LINKTYPE_ETHERNET)  # a new connection
    other = tcp_frame("10.0.0.3", "10.0.0.2", 40000, 7001, flags=SYN, seq=1000)
    prefilter.is_candidate(other, LINKTYPE_ETHERNET)
    prefilter.is_candidate(frame(flags=SYN, seq=3000, smc_option=True), LINKTYPE_ETHERNET)
    assert prefilter.plain_syns == 3
    assert prefilter.candidates == 1


def test_plain_syns_counted_by_the_file_walk(prefilter: Prefilter) -> None:
    stream = io.BytesIO()
    writer = PcapWriter(stream, LINKTYPE_ETHERNET)
    for port in range(100):
        writer.write(1.0, tcp_frame("10.0.0.1", "10.0.0.2", 40000 + port, 80, flags=SYN))
        writer.write(1.1, tcp_frame("10.0.0.1", "10.0.0.2", 40000 + port, 80, flags=SYN))
    with CaptureFile(io.BytesIO(stream.getvalue())) as capture:
        assert list(capture.frames(prefilter)) == []
        assert capture.frames_read == 200
    assert prefilter.plain_syns == 100


@pytest.mark.parametrize("eyecatcher", [b"\xe2\xd4\xc3\xd9", b"\xe2\xd4\xc3\xc4"])
def test_payload_starting_with_eyecatcher_is_candidate(
    prefilter: Prefilter, eyecatcher: bytes
) -> None:
    assert prefilter.is_candidate(frame(payload=eyecatcher), LINKTYPE_ETHERNET)
    assert prefilter.is_candidate(frame(payload=eyecatcher + b"more"), LINKTYPE_ETHERNET)
    assert not prefilter.is_candidate(frame(payload=eyecatcher[:3]), LINKTYPE_ETHERNET)
    assert not prefilter.is_candidate(frame(payload=b"x" + eyecatcher), LINKTYPE_ETHERNET)


def test_plain_data_and_acks_are_not_candidates(prefilter: Prefilter) -> None:
    assert not prefilter.is_candidate(frame(flags=ACK), LINKTYPE_ETHERNET)
    assert not prefilter.is_candidate(frame(flags=ACK | PSH, payload=b"GET /"), LINKTYPE_ETHERNET)
    assert not prefilter.is_candidate(b"\xff" * 60, LINKTYPE_ETHERNET)
    assert prefilter.candidates == 0


def test_eyecatcher_in_ethernet_padding_is_not_payload(prefilter: Prefilter) -> None:
    bare = frame(tcp_options=b"")
    assert not prefilter.is_candidate(bare + b"\xe2\xd4\xc3\xd9\x00\x00", LINKTYPE_ETHERNET)


def test_watched_flow_data_is_candidate_both_directions(prefilter: Prefilter) -> None:
    forward = frame(payload=b"data")
    reverse = tcp_frame("10.0.0.2", "10.0.0.1", 7001, 40000, payload=b"data")
    prefilter.watch("10.0.0.1", "10.0.0.2", 40000, 7001)
    assert prefilter.is_candidate(forward, LINKTYPE_ETHERNET)
    assert prefilter.is_candidate(reverse, LINKTYPE_ETHERNET)
    assert not prefilter.is_candidate(frame(flags=ACK), LINKTYPE_ETHERNET)  # no payload
    prefilter.unwatch("10.0.0.1", "10.0.0.2", 40000, 7001)
    assert not prefilter.is_candidate(forward, LINKTYPE_ETHERNET)
    assert not prefilter.is_candidate(reverse, LINKTYPE_ETHERNET)


def test_watch_ipv6_on_other_link_type(prefilter: Prefilter) -> None:
    data = tcp_frame("2001:db8::1", "2001:db8::2", 1, 2, payload=b"x", linktype=LINKTYPE_LINUX_SLL2)
    assert not prefilter.is_candidate(data, LINKTYPE_LINUX_SLL2)
    prefilter.watch("2001:db8::2", "2001:db8::1", 2, 1)  # either direction names the flow
    assert prefilter.is_watched("2001:db8::1", "2001:db8::2", 1, 2)
    assert prefilter.is_candidate(data, LINKTYPE_LINUX_SLL2)


def test_refcounts_keep_shared_bits(prefilter: Prefilter) -> None:
    # Find two different flows whose forward hashes collide on one bitmap bit.
    seen: dict[int, int] = {}
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    port = 1
    while True:
        bit = flow_hash(src, dst, port, 80)
        if bit in seen:
            break
        seen[bit] = port
        port += 1
    first, second = seen[bit], port
    prefilter.watch("10.0.0.1", "10.0.0.2", first, 80)
    prefilter.watch("10.0.0.1", "10.0.0.2", second, 80)
    prefilter.unwatch("10.0.0.1", "10.0.0.2", first, 80)
    data = tcp_frame("10.0.0.1", "10.0.0.2", second, 80, payload=b"x")
    assert prefilter.is_candidate(data, LINKTYPE_ETHERNET)
    prefilter.unwatch("10.0.0.1", "10.0.0.2", second, 80)
    assert not prefilter.is_candidate(data, LINKTYPE_ETHERNET)
    prefilter.unwatch("10.0.0.1", "10.0.0.2", second, 80)  # extra unwatch is harmless
    assert not any(prefilter.bitmap)


def test_watch_between_candidates_takes_effect_in_the_same_file(prefilter: Prefilter) -> None:
    stream = io.BytesIO()
    writer = PcapWriter(stream, LINKTYPE_ETHERNET)
    writer.write(1.0, frame(flags=SYN, smc_option=True))
    writer.write(2.0, frame(payload=b"not yet watched"))
    writer.write(3.0, frame(payload=clc_like_payload(1, 40)))
    writer.write(4.0, frame(payload=b"continuation of the CLC message"))
    writer.write(5.0, tcp_frame("10.9.9.9", "10.0.0.2", 1, 2, payload=b"other flow"))
    stream.seek(0)
    numbers = []
    with CaptureFile(stream) as capture:
        for candidate in capture.frames(prefilter):
            numbers.append(candidate.number)
            if candidate.number == 3:
                prefilter.watch("10.0.0.1", "10.0.0.2", 40000, 7001)
        assert capture.frames_read == 5
    assert numbers == [1, 3, 4]
    assert prefilter.candidates == 3


def test_forcing_native_without_extension_is_an_error() -> None:
    if NATIVE:
        assert Prefilter(native=True).native
    else:
        with pytest.raises(RuntimeError):
            Prefilter(native=True)

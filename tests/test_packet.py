"""smctrace.packet: link layers, IPv4/IPv6, TCP option walk, never raising."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smctrace.frame import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    SUPPORTED_LINKTYPES,
    Frame,
)
from smctrace.packet import ACK, FIN, PSH, RST, SYN, Segment, has_smc_option, parse_frame
from tests.support.synth import tcp_frame

# every link type that carries IPv4 and IPv6 alike (IPV4 and IPV6 have a test of their own)
ALL_LINKTYPES = tuple(sorted(SUPPORTED_LINKTYPES - {LINKTYPE_IPV4, LINKTYPE_IPV6}))


def parse(data: bytes, linktype: int = LINKTYPE_ETHERNET) -> Segment | None:
    return parse_frame(Frame(time=1.5, linktype=linktype, data=data, orig_len=len(data)))


def must_parse(data: bytes, linktype: int = LINKTYPE_ETHERNET) -> Segment:
    segment = parse(data, linktype)
    assert segment is not None
    return segment


@pytest.mark.parametrize("linktype", ALL_LINKTYPES)
@pytest.mark.parametrize(("src", "dst"), [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "fe80::2")])
def test_every_link_type_both_ip_versions(linktype: int, src: str, dst: str) -> None:
    data = tcp_frame(
        src, dst, 40000, 7001, seq=123, ack=456, flags=SYN | ACK, smc_option=True,
        linktype=linktype,
    )  # fmt: skip
    segment = must_parse(data, linktype)
    assert (segment.src, segment.dst, segment.sport, segment.dport) == (src, dst, 40000, 7001)
    assert (segment.seq, segment.ack, segment.flags) == (123, 456, SYN | ACK)
    assert segment.smc_option
    assert segment.payload == b"" and segment.payload_len == 0
    assert segment.time == 1.5


def test_frame_number_and_interface_are_carried() -> None:
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, payload=b"abc")
    segment = parse_frame(Frame(2.0, LINKTYPE_ETHERNET, data, len(data), interface=3, number=9))
    assert segment is not None
    assert (segment.number, segment.interface, segment.payload) == (9, 3, b"abc")


def test_dedicated_ip_link_types_check_the_version() -> None:
    v4 = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, linktype=LINKTYPE_IPV4)
    v6 = tcp_frame("::1", "::2", 1, 2, linktype=LINKTYPE_IPV6)
    assert must_parse(v4, LINKTYPE_IPV4).src == "10.0.0.1"
    assert must_parse(v6, LINKTYPE_IPV6).src == "::1"
    assert parse(v6, LINKTYPE_IPV4) is None
    assert parse(v4, LINKTYPE_IPV6) is None


@pytest.mark.parametrize("vlans", [(5,), (100, 200)])
def test_vlan_and_qinq_tags(vlans: tuple[int, ...]) -> None:
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, flags=SYN, smc_option=True, vlans=vlans)
    assert data[12:14] == (b"\x81\x00" if len(vlans) == 1 else b"\x88\xa8")
    assert must_parse(data).smc_option


def test_more_vlan_tags_than_the_rule_walks() -> None:
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, flags=SYN, smc_option=True, vlans=(1, 2, 3))
    assert parse(data) is None


def test_old_qinq_tpid_9100() -> None:
    data = bytearray(tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, vlans=(7, 8)))
    data[12:14] = b"\x91\x00"
    assert must_parse(bytes(data)).sport == 1


def test_truncated_vlan_tag_and_non_ip_ethertypes() -> None:
    assert parse(bytes(12) + b"\x81\x00\x00") is None
    arp = bytes(12) + b"\x08\x06" + bytes(28)
    assert parse(arp) is None
    assert parse(b"") is None


def test_sll_with_vlan_tag_after_header() -> None:
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, linktype=LINKTYPE_LINUX_SLL)
    tagged = data[:14] + b"\x81\x00" + b"\x00\x05\x08\x00" + data[16:]
    assert must_parse(tagged, LINKTYPE_LINUX_SLL).dport == 2


@pytest.mark.parametrize("family", [2, 24, 28, 30])
@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("linktype", [LINKTYPE_NULL, LINKTYPE_LOOP])
def test_bsd_loopback_families_in_both_byte_orders(family: int, order: str, linktype: int) -> None:
    src, dst = ("10.0.0.1", "10.0.0.2") if family == 2 else ("::1", "::2")
    data = tcp_frame(src, dst, 1, 2, linktype=LINKTYPE_RAW)
    assert must_parse(struct.pack(order + "I", family) + data, linktype).src == src


def test_bsd_loopback_unknown_family() -> None:
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, linktype=LINKTYPE_RAW)
    assert parse(struct.pack("<I", 10) + data, LINKTYPE_NULL) is None
    assert parse(b"\x02\x00", LINKTYPE_NULL) is None


def test_unknown_link_type_is_not_parsed() -> None:
    assert parse(tcp_frame("10.0.0.1", "10.0.0.2", 1, 2), 9999) is None


def test_ipv4_options_are_skipped() -> None:
    router_alert = b"\x94\x04\x00\x00"
    data = tcp_frame(
        "10.0.0.1", "10.0.0.2", 1, 2, flags=SYN, smc_option=True,
        ip_options=router_alert + b"\x01" * 8,
    )  # fmt: skip
    assert data[14] == 0x48  # IHL 8 words
    segment = must_parse(data)
    assert segment.smc_option and segment.sport == 1


def test_ipv4_fragments() -> None:
    first = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, payload=b"x" * 100, more_fragments=True)
    assert must_parse(first).payload == b"x" * 100
    later = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, payload=b"x" * 100, frag_offset=4)
    assert parse(later) is None


def test_ipv4_not_tcp_and_bad_lengths() -> None:
    data = bytearray(tcp_frame("10.0.0.1", "10.0.0.2", 1, 2))
    udp = bytearray(data)
    udp[14 + 9] = 17
    assert parse(bytes(udp)) is None
    short_ihl = bytearray(data)
    short_ihl[14] = 0x44
    assert parse(bytes(short_ihl)) is None
    total_below_header = bytearray(data)
    total_below_header[16:18] = b"\x00\x10"
    assert parse(bytes(total_below_header)) is None
    wrong_version = bytearray(data)
    wrong_version[14] = 0x65
    assert parse(bytes(wrong_version)) is None


def test_ipv4_total_length_zero_means_captured_length() -> None:
    data = bytearray(tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, payload=b"y" * 50))
    data[16:18] = b"\x00\x00"  # as TSO/BIG TCP frames captured on the sender
    segment = must_parse(bytes(data))
    assert segment.payload == b"y" * 50 and segment.payload_len == 50


def test_ethernet_padding_is_not_payload() -> None:
    bare = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, tcp_options=b"")
    assert len(bare) == 54
    padded = bare + bytes(6)  # NICs pad to the 60-byte minimum
    segment = must_parse(padded)
    assert segment.payload == b"" and segment.payload_len == 0
    with_data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, tcp_options=b"", payload=b"ab")
    segment = must_parse(with_data + bytes(4))
    assert segment.payload == b"ab" and segment.payload_len == 2


def test_snaplen_cut_payload_keeps_wire_length() -> None:
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, payload=b"z" * 1000)
    segment = must_parse(data[:200])
    assert segment.payload == b"z" * (200 - 66)
    assert segment.payload_len == 1000


def test_truncated_tcp_header_is_none() -> None:
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, flags=SYN, smc_option=True)
    assert parse(data[: 14 + 20 + 19]) is None  # TCP fixed header cut
    assert parse(data[: 14 + 20 + 30]) is None  # options cut by the snap length


def test_tcp_data_offset_below_five_or_past_ip_is_none() -> None:
    data = bytearray(tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, tcp_options=b""))
    data[14 + 20 + 12] = 0x40
    assert parse(bytes(data)) is None
    data[14 + 20 + 12] = 0xF0  # 60-byte header in a 20-byte TCP packet
    assert parse(bytes(data) + bytes(40)) is None


IPV6_CHAINS = [
    [(0, b"\x01\x02\x00\x00")],  # hop-by-hop with PadN
    [(43, bytes(6))],  # routing
    [(60, bytes(14))],  # destination options, 16 bytes
    [(51, bytes(10))],  # AH: (len + 2) * 4
    [(135, bytes(6))],  # mobility
    [(0, b""), (43, bytes(6)), (60, b""), (51, bytes(18))],
]


@pytest.mark.parametrize("chain", IPV6_CHAINS)
def test_ipv6_extension_header_chains(chain: list[tuple[int, bytes]]) -> None:
    data = tcp_frame(
        "2001:db8::1", "2001:db8::2", 5, 6, flags=SYN, smc_option=True,
        payload=b"\xe2\xd4\xc3\xd9", ipv6_ext_headers=chain,
    )  # fmt: skip
    segment = must_parse(data)
    assert segment.smc_option and segment.payload == b"\xe2\xd4\xc3\xd9"
    assert segment.payload_len == 4


def test_ipv6_fragments() -> None:
    first = tcp_frame("::1", "::2", 1, 2, payload=b"q" * 10, more_fragments=True, ip_id=7)
    assert must_parse(first).payload == b"q" * 10
    later = tcp_frame("::1", "::2", 1, 2, payload=b"q" * 10, frag_offset=1, ip_id=7)
    assert parse(later) is None


def test_ipv6_esp_no_next_and_udp_are_none() -> None:
    data = bytearray(tcp_frame("::1", "::2", 1, 2))
    for next_header in (50, 59, 17):
        data[14 + 6] = next_header
        assert parse(bytes(data)) is None


def test_ipv6_extension_chain_is_bounded() -> None:
    chain = [(60, b"")] * 40
    data = tcp_frame("::1", "::2", 1, 2, ipv6_ext_headers=chain)
    assert parse(data) is None  # more headers than any real packet: give up, don't loop


def test_ipv6_extension_header_running_past_packet() -> None:
    data = bytearray(tcp_frame("::1", "::2", 1, 2, ipv6_ext_headers=[(0, b"")]))
    data[14 + 40 + 1] = 200  # hop-by-hop claims 1608 bytes
    assert parse(bytes(data)) is None


def test_ipv6_payload_length_zero_means_captured_length() -> None:
    data = bytearray(tcp_frame("::1", "::2", 1, 2, payload=b"j" * 9))
    data[14 + 4 : 14 + 6] = b"\x00\x00"
    assert must_parse(bytes(data)).payload == b"j" * 9


SMC = b"\xfe\x06\xe2\xd4\xc3\xd9"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (b"\x01\x01" + SMC, True),  # Linux layout
        (SMC + b"\x00\x00", True),  # first option, no NOPs
        (b"\x02\x04\x05\xb4" + b"\x01" * 30 + SMC, True),  # option ending the header
        (b"\xfe\x08\xe2\xd4\xc3\xd9\x00\x00", True),  # longer even length
        (b"\xfe\x07\xe2\xd4\xc3\xd9\x00\x00", False),  # odd length
        (b"\xfe\x04\xe2\xd4\x01\x01\x01\x01", False),  # too short for the ExID
        (b"\xfe\x06\xf9\x89\x00\x00\x00\x00", False),  # TFO experimental option
        (b"\x00\x01" + SMC, False),  # after EOL
        (b"\x02\x01" + SMC, False),  # length < 2 stops the walk
        (b"\x02\x00" + SMC, False),  # length 0 would loop forever
        (b"\x02\x30" + SMC, False),  # length past the header
        (b"\x01\x01\x01" + b"\xfe", False),  # kind without length byte at the end
        (b"\x08\x0a" + bytes(8) + b"\x01\x01" + SMC, True),  # after timestamps
    ],
)
def test_option_walk(options: bytes, expected: bool) -> None:
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, flags=SYN, tcp_options=options)
    assert must_parse(data).smc_option is expected
    assert has_smc_option(options, 0, len(options)) is expected


def test_smc_option_counts_only_on_syns() -> None:
    """Linux parses the option only on SYN and SYN-ACK segments, and so does the rule."""
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, flags=ACK | PSH, smc_option=True)
    assert not must_parse(data).smc_option


def test_flags_are_the_whole_byte() -> None:
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, flags=FIN | RST | ACK | 0xC0)
    assert must_parse(data).flags == FIN | RST | ACK | 0xC0


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), linktype=st.sampled_from((*ALL_LINKTYPES, 228, 229, 7)))
def test_parse_frame_never_raises_on_random_bytes(data: bytes, linktype: int) -> None:
    parse(data, linktype)


@settings(max_examples=300, deadline=None)
@given(
    linktype=st.sampled_from(ALL_LINKTYPES),
    ipv6=st.booleans(),
    edits=st.lists(st.tuples(st.integers(0, 150), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 160),
)
def test_parse_frame_never_raises_on_mutated_frames(
    linktype: int, ipv6: bool, edits: list[tuple[int, int]], cut: int
) -> None:
    src, dst = ("2001:db8::1", "2001:db8::2") if ipv6 else ("10.0.0.1", "10.0.0.2")
    data = bytearray(
        tcp_frame(
            src, dst, 1, 2, flags=SYN, smc_option=True, payload=b"\xe2\xd4\xc3\xd9" * 4,
            linktype=linktype, ipv6_ext_headers=[(0, b"")] if ipv6 else (),
        )
    )  # fmt: skip
    for position, value in edits:
        if position < len(data):
            data[position] = value
    segment = parse(bytes(data[: max(cut, 0)]), linktype)
    if segment is not None:
        assert 0 <= len(segment.payload) <= max(segment.payload_len, len(data))

"""tests.support.synth and pcapwriter: frames shaped like Linux's, files tools accept."""

from __future__ import annotations

import io
import struct

import pytest

from smctrace.capture.pcapfile import CaptureFile
from smctrace.capture.pcapwriter import PcapngWriter, PcapWriter
from smctrace.frame import LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, Frame
from smctrace.packet import ACK, SYN
from tests.support.synth import SMC_OPTION_BYTES, tcp_frame


def test_syn_options_follow_linux_layout() -> None:
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, flags=SYN, smc_option=True)
    options = data[14 + 20 + 20 :]
    assert options[:4] == b"\x02\x04\x05\xb4"  # MSS first
    assert options[-8:] == SMC_OPTION_BYTES == bytes.fromhex("0101fe06e2d4c3d9")
    assert len(data) == 14 + 20 + 20 + 28


def test_plain_ack_is_66_bytes_on_ethernet() -> None:
    assert len(tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, flags=ACK)) == 66


def test_explicit_options_are_padded_and_bounded() -> None:
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, tcp_options=b"\x01")
    assert data[14 + 20 + 12] >> 4 == 6 and data[-4:] == b"\x01\x00\x00\x00"
    with pytest.raises(ValueError):
        tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, tcp_options=bytes(41))


def test_ipv4_header_checksum_and_lengths() -> None:
    data = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, payload=b"abc", ip_options=b"\x01")
    header = data[14 : 14 + 24]
    words = struct.unpack("!12H", header)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF
    assert struct.unpack("!H", header[2:4])[0] == len(data) - 14


def test_ipv6_extension_header_lengths() -> None:
    data = tcp_frame("::1", "::2", 1, 2, ipv6_ext_headers=[(0, bytes(7)), (51, bytes(10))])
    ip = data[14:]
    assert ip[6] == 0  # hop-by-hop first
    assert ip[40] == 51 and ip[41] == 1  # 16 bytes: (1 + 1) * 8
    assert ip[56] == 6 and ip[57] == 2  # AH 16 bytes: (2 + 2) * 4
    assert struct.unpack("!H", ip[4:6])[0] == len(ip) - 40


def test_mismatched_dedicated_link_types_are_refused() -> None:
    with pytest.raises(ValueError):
        tcp_frame("::1", "::2", 1, 2, linktype=LINKTYPE_IPV4)
    with pytest.raises(ValueError):
        tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, linktype=LINKTYPE_IPV6)
    with pytest.raises(ValueError):
        tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, linktype=LINKTYPE_IPV4, vlans=(1,))


def test_pcap_writer_cuts_at_snaplen() -> None:
    stream = io.BytesIO()
    PcapWriter(stream, LINKTYPE_ETHERNET, snaplen=100).write(3.0, bytes(300))
    with CaptureFile(io.BytesIO(stream.getvalue())) as capture:
        (frame,) = capture.frames()
    assert frame == Frame(3.0, LINKTYPE_ETHERNET, bytes(100), 300, number=1)


def test_pcapng_writer_comment_and_userappl() -> None:
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    writer.add_interface(LINKTYPE_ETHERNET, name="eth0")
    writer.write(0, 1.0, bytes(60), comment="hello")
    content = stream.getvalue()
    assert b"smctrace" in content and b"hello" in content and b"eth0" in content

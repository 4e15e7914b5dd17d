"""Text output of CLC messages (smctrace.output.clc_text)."""

from __future__ import annotations

from smctrace.clc import decode
from smctrace.output.clc_text import format_message, hexdump
from tests.test_clc_vectors import ALL_VECTORS as V


def test_proposal_line() -> None:
    line = format_message(decode(V["P1"]))
    assert line.startswith(
        "Proposal v2 (232 bytes): offers v1 SMC-R+SMC-D, v2 SMC-R+SMC-D, release 2.1, "
        "peer 45472@98:03:9b:ab:cd:ef, GID fe80::9a03:9bff:feab:cdef"
    )
    for part in (
        "IPv4 10.0.0.0/24",
        "UEIDs [SMCTRACE-TEST-UEID]",
        "SEID IBM-SYSZ-ISMSEID0000000012348561",
        "SMC-D v2 GIDs [0x11112222333344445555666677778888 CHID 0xffff]",
        "RoCEv2 GID ::ffff:10.0.0.1",
        "max conns 255, max links 2",
        "features 0x0001 (emulated-ISM)",
    ):
        assert part in line
    assert "[malformed" not in line


def test_v1_only_and_v2_only_offers() -> None:
    assert format_message(decode(V["P3"])).startswith(
        "Proposal v2 (92 bytes): offers v1 SMC-R, v2 none,"
    )
    assert format_message(decode(V["P2"])).startswith(
        "Proposal v2 (156 bytes): offers v1 none, v2 SMC-R,"
    )
    assert format_message(decode(V["P4"])).startswith("Proposal v1 (52 bytes): offers v1 SMC-R,")


def test_accept_confirm_lines() -> None:
    a1 = format_message(decode(V["A1"]))
    assert a1.startswith(
        "Accept SMC-D v2 (130 bytes): first contact, GID 0x11223344556677885555666677778888, "
        "CHID 0xffff"
    )
    assert "OS Linux, release 2.1, host host-a" in a1
    a3 = format_message(decode(V["A3"]))
    assert a3.startswith("Accept SMC-R v2 (160 bytes): first contact, peer 45472@98:03:9b:ab:cd:ef")
    assert "RMBE size 64 KiB, MTU 1024" in a3 and "direct" in a3
    c3 = format_message(decode(V["C3"]))
    assert c3.startswith("Confirm SMC-R v2 (196 bytes)")
    assert c3.endswith("GID list [::ffff:10.0.0.1, ::ffff:10.1.0.1]")
    a2 = format_message(decode(V["A2"]))
    assert "release 2.0" in a2
    assert format_message(decode(V["hwipl-confirm"])).startswith(
        "Confirm SMC-R v1 (68 bytes): link group reused"
    )


def test_decline_lines() -> None:
    d2 = V["D2"]
    noueid = d2[:7] + b"\x20" + d2[8:16] + bytes.fromhex("03030008") + d2[20:24] + bytes(16)
    line = format_message(decode(noueid + d2[-4:]))
    assert line == (
        "Decline v2 (44 bytes): NOUEID 0x03030008 (peer sent no UEID), OS Linux, "
        "peer 45472@98:03:9b:ab:cd:ef"
    )
    d2line = format_message(decode(d2))
    assert "RELEASEERR 0x03030009" in d2line and "out of sync" in d2line
    assert "supplemental [MAXCONNERR 0x0303000a]" in d2line
    assert "was IPSEC" in format_message(decode(V["D1"]))


def test_malformed_suffix() -> None:
    line = format_message(decode(V["A3"][:100]))
    assert line.endswith(" [malformed: truncated: 100 of 160 bytes]")


def test_unknown_type() -> None:
    data = V["D1"][:4] + b"\x09" + V["D1"][5:]
    assert format_message(decode(data)) == (
        "Unknown type 9 v1 (28 bytes) [malformed: unknown message type 9]"
    )


def test_reserved_shown_on_request() -> None:
    a1 = decode(V["A1"])
    assert "reserved" not in format_message(a1)
    assert format_message(a1, reserved=True).endswith(", reserved all zero")
    data = bytearray(V["A4"])
    data[51] = 0xAB
    line = format_message(decode(bytes(data)), reserved=True)
    assert "reserved [reserved_51=0xab]" in line


def test_hexdump() -> None:
    assert hexdump(V["D2"]) == "\n".join(
        [
            "\t0x0000:  e2d4 c3d9 0400 2c28 b1a0 9803 9bab cdef  ......,(........",
            "\t0x0010:  0303 0009 2000 0000 0303 000a 0000 0000  .... ...........",
            "\t0x0020:  0000 0000 0000 0000 e2d4 c3d9            ............",
        ]
    )
    assert hexdump(b"") == ""

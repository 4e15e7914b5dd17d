"""Validation (spec 3.1.8, 3.8, 3.9): each malformed reason, and decoding goes on."""

from __future__ import annotations

import pytest

from smctrace.clc import Accept, ClcMessage, Confirm, Decline, Proposal, decode
from smctrace.schema import message_fields
from tests.test_clc_vectors import ALL_VECTORS as V

R = b"\xe2\xd4\xc3\xd9"


def patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def resize(data: bytes, length: int) -> bytes:
    """Same message body cut/zero-padded to ``length`` bytes, length field and trailer fixed."""
    body = data[: len(data) - 4]
    body = body[: length - 4].ljust(length - 4, b"\0")
    body = patch(body, 5, length.to_bytes(2, "big"))
    return body + data[-4:]


def reasons(msg: ClcMessage) -> list[str]:
    return [] if msg.malformed is None else msg.malformed.split("; ")


def test_truncated_message_is_decoded_as_far_as_possible() -> None:
    m = decode(V["A3"][:100])
    assert isinstance(m, Accept)
    assert reasons(m) == ["truncated: 100 of 160 bytes"]
    f = message_fields(m)
    assert f["peer_id"] == "45472@98:03:9b:ab:cd:ef"
    assert f["psn"] == 0x72f5fe
    assert f["hostname"] is None and m.release is None


def test_truncated_proposal_keeps_what_is_there() -> None:
    m = decode(V["P1"][:170])
    assert isinstance(m, Proposal)
    assert reasons(m) == ["truncated: 170 of 232 bytes"]
    assert m.ipv4_prefix == "10.0.0.0/24" and m.release == 1
    assert m.eids == ("SMCTRACE-TEST-UEID",)
    assert m.seid is None and m.smcd_v2_gids == ()


@pytest.mark.parametrize("n", [0, 1, 4, 5, 7])
def test_truncated_header(n: int) -> None:
    m = decode(V["D1"][:n])
    assert f"truncated: {n} of 8 header bytes" in reasons(m)


def test_bad_eyecatcher() -> None:
    m = decode(patch(V["D1"], 0, b"ABCD"))
    assert isinstance(m, Decline)
    assert m.eyecatcher == "invalid"
    assert reasons(m) == ["bad eyecatcher 41424344"]
    assert m.diagnosis == 0x03030000


def test_length_below_header() -> None:
    m = decode(patch(V["D1"], 5, b"\x00\x04"))
    assert "length 4 < header length 8" in reasons(m)


def test_length_above_maximum() -> None:
    data = resize(V["P1"], 700)
    m = decode(data)
    assert "length 700 > 652" in reasons(m)


def test_bytes_beyond_length() -> None:
    m = decode(V["D1"] + b"GET / HTTP/1.1")
    assert reasons(m) == ["14 bytes beyond length 28"]
    assert isinstance(m, Decline) and m.diagnosis == 0x03030000


@pytest.mark.parametrize(
    ("byte7", "reason"), [(0x00, "version 0"), (0x30, "version 3 unknown, decoded as v2")]
)
def test_bad_versions(byte7: int, reason: str) -> None:
    m = decode(patch(V["D1"], 7, bytes([byte7])))
    assert reason in reasons(m)


def test_unknown_type() -> None:
    m = decode(patch(V["D1"], 4, b"\x07"))
    assert type(m) is ClcMessage and m.kind == "unknown"
    assert reasons(m) == ["unknown message type 7"]
    assert message_fields(m) == {"type_code": 7}


def test_bad_trailer() -> None:
    m = decode(patch(V["A4"], 64, b"XXXX"))
    assert reasons(m) == ["bad trailer 58585858"]


def test_bad_decline_trailer_is_reported_but_marked_unchecked_by_linux() -> None:
    m = decode(patch(V["D1"], 24, b"\0\0\0\0"))
    assert reasons(m) == ["bad trailer 00000000 (Linux does not check Decline trailers)"]


def test_smcd_trailer_in_smcr_message_is_accepted() -> None:
    m = decode(patch(V["A4"], 64, b"\xe2\xd4\xc3\xc4"))
    assert m.malformed is None


# --- Proposal ------------------------------------------------------------------------


def test_v1_proposal_without_v1_type() -> None:
    m = decode(patch(V["P4"], 7, b"\x12"))
    assert "v1 Proposal offers no v1 path (type N)" in reasons(m)


def test_iparea_offset_too_big() -> None:
    m = decode(patch(V["P4"], 38, b"\x00\x30"))
    assert "iparea_offset 48 > 40" in reasons(m)


def test_iparea_offset_without_smcd_area_but_smcd_offered() -> None:
    m = decode(patch(V["P4"], 7, b"\x11"))  # v1, typev1 = D, iparea_offset 0
    assert "iparea_offset 0 with SMC-D v1 offered, must be 40" in reasons(m)


def test_v1_proposal_length_mismatch() -> None:
    m = decode(resize(V["P4"], 56))
    assert "length 56, v1 Proposal with 0 IPv6 prefixes must be 52" in reasons(m)


def test_ipv4_prefix_length() -> None:
    m = decode(patch(V["P4"], 44, b"\x21"))
    assert reasons(m) == ["IPv4 prefix length 33 > 32"]


def _v1_with_ipv6(count: int, plen: int = 64) -> bytes:
    prefix = bytes.fromhex("20010db8000000000000000000000000") + bytes([plen])
    body = V["P4"][:47] + bytes([count]) + prefix * count
    length = len(body) + 4
    return patch(body, 5, length.to_bytes(2, "big")) + R


def test_ipv6_prefixes() -> None:
    m = decode(_v1_with_ipv6(2))
    assert isinstance(m, Proposal) and m.malformed is None
    assert m.ipv6_prefixes == ("2001:db8::/64", "2001:db8::/64")


def test_ipv6_prefix_count_too_big() -> None:
    m = decode(_v1_with_ipv6(9))
    assert reasons(m) == ["IPv6 prefix count 9 > 8"]


def test_ipv6_prefix_length_too_big() -> None:
    m = decode(_v1_with_ipv6(1, 129))
    assert reasons(m) == ["IPv6 prefix length 129 > 128"]


def test_ipv6_prefix_beyond_length() -> None:
    data = _v1_with_ipv6(2)
    data = patch(data, 47, b"\x03")
    m = decode(data)
    assert "IPv6 prefix 2 at 82 beyond length 86" in reasons(m)


def test_v2_offered_without_extension_offset() -> None:
    m = decode(patch(V["P2"], 50, b"\x00\x00"))
    assert "v2 offered but v2_ext_offset is 0" in reasons(m)


def test_v2_ext_offset_too_big() -> None:
    m = decode(patch(V["P2"], 50, b"\x00\xb0"))
    r = reasons(m)
    assert "v2_ext_offset 176 > 172" in r
    assert "v2 extension at 228 beyond length 156" in r


def test_ueid_count_too_big() -> None:
    m = decode(patch(V["P2"], 80, b"\x09"))
    r = reasons(m)
    assert "UEID count 9 > 8" in r
    assert "UEID 1 at 152 beyond length 156" in r


def test_smcd_v2_gid_count_too_big() -> None:
    m = decode(patch(V["P1"], 0x59, b"\x09"))
    assert "SMC-D v2 GID count 9 > 8" in reasons(m)


def test_smcd_v2_ext_offset_zero() -> None:
    m = decode(patch(V["P1"], 0x5E, b"\x00\x00"))
    assert reasons(m) == ["SMC-D v2 offered but smcd_v2_ext_offset is 0"]
    assert isinstance(m, Proposal) and m.eids == ("SMCTRACE-TEST-UEID",) and not m.smcd_v2_gids


def test_smcd_v2_ext_offset_too_big() -> None:
    m = decode(patch(V["P1"], 0x5E, b"\x01\x30"))
    assert reasons(m) == [
        "smcd_v2_ext_offset 304 > 288",
        "SMC-D v2 extension at 400 beyond length 232",
    ]


def test_v2_proposal_length_must_be_canonical() -> None:
    m = decode(resize(V["P1"], 242))
    assert reasons(m) == [
        "length 242, v2 Proposal with 0 IPv6 prefixes, 1 UEIDs, 2 SMC-D v2 GIDs must be 232"
    ]


# --- Accept / Confirm ------------------------------------------------------------------


@pytest.mark.parametrize("bits", [2, 3])
def test_path_bits(bits: int) -> None:
    m = decode(patch(V["A4"], 7, bytes([0x18 | bits])))
    assert isinstance(m, Accept)
    assert m.path == "SMC-R"  # decoded with the SMC-R layout, like tshark
    assert reasons(m) == [f"path bits {bits}, must be 0 (SMC-R) or 1 (SMC-D)"]


@pytest.mark.parametrize(
    ("name", "length", "reason"),
    [
        ("A4", 72, "length 72, SMC-R v1 Accept must be 68"),
        ("A5", 52, "length 52, SMC-D v1 Accept must be 48"),
        ("A3", 164, "length 164, SMC-R v2 Accept with first contact must be 160"),
        ("A1", 120, "length 120, SMC-D v2 Accept with first contact must be 114 or 130"),
        ("C3", 200, "length 200, SMC-R v2 Confirm with first contact and 2 GIDs must be 196"),
    ],
)
def test_accept_confirm_lengths(name: str, length: int, reason: str) -> None:
    m = decode(resize(V[name], length))
    assert reason in reasons(m)


def test_v2_without_first_contact_lengths() -> None:
    a3 = patch(V["A3"], 7, b"\x20")
    m = decode(a3)
    assert "length 160, SMC-R v2 Accept without first contact must be 108" in reasons(m)
    assert isinstance(m, Accept) and m.fce is None and m.release is None
    ok = decode(resize(a3, 108))
    assert ok.malformed is None and message_fields(ok)["eid"] == "SMCTRACE-TEST-UEID"
    d = decode(resize(patch(V["A1"], 7, b"\x21"), 78))
    assert d.malformed is None and message_fields(d)["chid"] == 0xffff


def test_smcd_fce_release_mismatch() -> None:
    m = decode(patch(V["A2"], 0x4B, b"\x21"))  # 114 bytes but release 1
    assert reasons(m) == [
        "length 114, SMC-D v2 Accept first-contact extension of 36 bytes does not match release 1"
    ]


def test_smcd_confirm_release0_114() -> None:
    m = decode(patch(V["A2"], 4, b"\x03"))
    assert isinstance(m, Confirm) and m.malformed is None and m.release == 0


def test_confirm_gid_list_beyond_length() -> None:
    m = decode(patch(V["C3"], 156, b"\x03"))
    r = reasons(m)
    assert "GID list entry 2 at 192 beyond length 196" in r
    assert "length 196, SMC-R v2 Confirm with first contact and 3 GIDs must be 212" in r


# --- Decline -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "length", "reason"),
    [
        ("D1", 30, "length 30, Decline v1 must be 28"),
        ("D2", 28, "length 28, Decline v2 must be 44"),
    ],
)
def test_decline_lengths(name: str, length: int, reason: str) -> None:
    assert reason in reasons(decode(resize(V[name], length)))


def test_decline_truncated_before_diagnosis() -> None:
    m = decode(V["D1"][:12])
    assert isinstance(m, Decline)
    assert m.diagnosis == 0 and m.peer_id is None
    assert reasons(m) == ["truncated: 12 of 28 bytes"]


def test_wire_strings_are_escaped() -> None:
    evil = b"\x1b[31mEVIL\x07\\" + b" " * 22
    data = patch(V["A3"], 108, evil)
    m = decode(data)
    assert message_fields(m)["hostname"] == "\\x1b[31mEVIL\\x07\\x5c"
    for value in message_fields(m).values():
        if isinstance(value, str):
            assert all(0x20 <= ord(c) < 0x7F for c in value)

"""Spec section 8 vectors decoded field by field (expected values from the spec's text)."""

from __future__ import annotations

from typing import Any

import pytest

from smctrace.clc import (
    EYECATCHER_D,
    EYECATCHER_R,
    HEADER_LEN,
    MAX_MESSAGE_LEN,
    Accept,
    ClcHeader,
    Confirm,
    Decline,
    Proposal,
    SmcType,
    decode,
    peek_header,
)
from smctrace.schema import message_fields
from tests.test_clc_vectors import SPEC_8_1, SPEC_8_2

V = {k: v for k, (_, v) in {**SPEC_8_2, **SPEC_8_1}.items()}

PEER = "45472@98:03:9b:ab:cd:ef"
PEER_HEX = "0xb1a098039babcdef"
GID = "fe80::9a03:9bff:feab:cdef"
MAC = "98:03:9b:ab:cd:ef"
UEID = "SMCTRACE-TEST-UEID"


def check(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every expected key is in ``fields`` with the expected value."""
    wrong = {k: (fields.get(k, "<missing>"), v) for k, v in expected.items() if fields.get(k) != v}
    assert not wrong, f"(got, expected): {wrong}"


def test_constants() -> None:
    assert HEADER_LEN == 8
    assert MAX_MESSAGE_LEN == 652
    assert EYECATCHER_R == b"\xe2\xd4\xc3\xd9"
    assert EYECATCHER_D == b"\xe2\xd4\xc3\xc4"


def test_all_spec_vectors_are_well_formed() -> None:
    for name, data in V.items():
        msg = decode(data)
        assert msg.malformed is None, (name, msg.malformed)
        assert msg.raw == data
        assert msg.length == len(data)


def test_p1_proposal_v2_both_types() -> None:
    m = decode(V["P1"])
    assert isinstance(m, Proposal)
    assert (m.kind, m.version, m.length, m.eyecatcher) == ("proposal", 2, 232, "SMC-R")
    assert m.header == ClcHeader("SMC-R", 1, 232, 2, 0xF)
    assert (m.typev1, m.typev2) == (SmcType.B, SmcType.B)
    assert m.release == 1
    assert m.peer_id is not None and m.peer_id.instance == 0xB1A0
    f = message_fields(m)
    check(
        f,
        {
            "offered": {"v1": ["SMC-R", "SMC-D"], "v2": ["SMC-R", "SMC-D"]},
            "peer_id": PEER,
            "peer_id_hex": PEER_HEX,
            "smcr_gid": GID,
            "smcr_mac": MAC,
            "iparea_offset": 0x28,
            "ism_gid": "0xaaaabbbbccccdddd",
            "ism_chid": 0x0201,
            "v2_ext_offset": 0x24,
            "vendor_oui": 0x000000,
            "vendor_options": 0x0000000000,
            "ipv4_prefix": "10.0.0.0/24",
            "ipv6_prefix_count": 0,
            "ipv6_prefixes": [],
            "eid_count": 1,
            "ism_gid_count": 2,
            "release": 1,
            "seid_indicator": True,
            "smcd_v2_ext_offset": 0x40,
            "rocev2_gid": "::ffff:10.0.0.1",
            "max_conns": 255,
            "max_links": 2,
            "feature_mask": 0x0001,
            "eids": [UEID],
            "seid": "IBM-SYSZ-ISMSEID0000000012348561",
            # loopback-ism pair joined into one 128-bit GID
            "smcd_v2_gids": [{"gid": "0x11112222333344445555666677778888", "chid": 0xffff}],
        },
    )
    assert "reserved_60" not in f
    rf = message_fields(m, reserved=True)
    assert rf["reserved_60"] == "0x" + "00" * 20  # 3.1.2: 20 rsv bytes at 60


def test_p2_proposal_smcr_v2_only() -> None:
    m = decode(V["P2"])
    assert isinstance(m, Proposal)
    assert (m.typev1, m.typev2) == (SmcType.N, SmcType.R)
    check(
        message_fields(m),
        {
            "offered": {"v1": [], "v2": ["SMC-R"]},
            "iparea_offset": 0,
            "v2_ext_offset": 0x1C,
            "ipv4_prefix": None,  # typev1 = N: no prefix area
            "eid_count": 1,
            "ism_gid_count": 0,
            "release": 1,
            "rocev2_gid": "::ffff:10.0.0.1",
            "max_conns": 255,
            "max_links": 2,
            "feature_mask": 0x0001,
            "eids": [UEID],
            "seid": None,
            "smcd_v2_gids": [],
        },
    )


def test_p3_proposal_v1_offer_in_v2_header() -> None:
    m = decode(V["P3"])
    assert isinstance(m, Proposal)
    assert (m.typev1, m.typev2) == (SmcType.R, SmcType.N)
    check(
        message_fields(m),
        {
            "offered": {"v1": ["SMC-R"], "v2": []},
            "peer_id": PEER,
            "smcr_gid": GID,
            "iparea_offset": 40,
            "v2_ext_offset": 0,
            "ipv4_prefix": "10.0.0.0/24",
            "eid_count": None,
            "release": None,
            "eids": [],
        },
    )
    assert m.release is None


def test_p4_proposal_v1_rfc_layout() -> None:
    m = decode(V["P4"])
    assert isinstance(m, Proposal)
    assert m.version == 1 and m.typev2 is None
    check(
        message_fields(m),
        {
            "offered": {"v1": ["SMC-R"]},
            "peer_id": PEER,
            "smcr_gid": GID,
            "smcr_mac": MAC,
            "iparea_offset": 0,
            "ism_gid": None,  # no SMC-D area with iparea_offset 0
            "ipv4_prefix": "10.0.0.0/24",
            "ipv6_prefix_count": 0,
        },
    )


def test_v1_proposal_with_smcd_area() -> None:
    data = bytearray(V["P3"])  # 92 bytes, iparea_offset 40
    data[7] = 0x13  # version 1, typev1 B
    data[40:48] = bytes.fromhex("1122334455667788")
    data[48:50] = b"\xab\xcd"  # CHID is reserved in v1
    m = decode(bytes(data))
    assert isinstance(m, Proposal) and m.malformed is None
    check(
        message_fields(m),
        {
            "offered": {"v1": ["SMC-R", "SMC-D"]},
            "iparea_offset": 40,
            "ism_gid": "0x1122334455667788",
            "ism_chid": None,
            "v2_ext_offset": None,
            "ipv4_prefix": "10.0.0.0/24",
        },
    )
    assert message_fields(m, reserved=True)["reserved_48"] == "0xabcd"


def test_hwipl_proposal() -> None:
    m = decode(V["hwipl-proposal"])
    check(message_fields(m), {"peer_id": PEER, "smcr_gid": GID, "ipv4_prefix": "127.0.0.0/8"})


def test_a1_accept_smcd_v2_release1_emulated_gid() -> None:
    m = decode(V["A1"])
    assert isinstance(m, Accept)
    assert (m.path, m.first_contact, m.release, m.eyecatcher) == ("SMC-D", True, 1, "SMC-D")
    assert m.fce is not None and m.fce.size == 52
    check(
        message_fields(m),
        {
            "path": "SMC-D",
            "first_contact": True,
            "gid": "0x11223344556677885555666677778888",
            "gid_ext": "0x5555666677778888",
            "dmb_token": "0x0000000012340001",
            "dmbe_index": 0,
            "dmbe_size": 128 * 1024,
            "link_id": 0x00000101,
            "chid": 0xffff,
            "eid": UEID,
            "os_type": "Linux",
            "release": 1,
            "hostname": "host-a",
            "max_conns": 0,
            "max_links": 0,
            "feature_mask": 0x0001,
            "vendor_options": 0x00000000,
            "v2_direct": None,
        },
    )


def test_a2_accept_smcd_v2_release0_short_fce() -> None:
    m = decode(V["A2"])
    assert isinstance(m, Accept)
    assert m.release == 0 and m.fce is not None and m.fce.size == 36
    check(
        message_fields(m),
        {
            "gid": "0x1122334455667788",  # gid_ext 0: 64-bit GID
            "gid_ext": "0x0000000000000000",
            "chid": 0x0101,
            "eid": UEID,
            "os_type": "Linux",
            "release": 0,
            "hostname": "host-a",
            "max_conns": None,
            "feature_mask": None,
        },
    )


SMCR_LINK = {
    "peer_id": PEER,
    "gid": GID,
    "mac": MAC,
    "qp_number": 0x0000e4,
    "rmb_rkey": 0x0000157d,
    "rmbe_index": 1,
    "rmbe_alert_token": 0x00000005,
    "rmbe_size": 64 * 1024,
    "qp_mtu": 1024,
    "rmb_virtual_address": "0x00000000f0a60000",
    "psn": 0x72f5fe,
}


def test_a3_accept_smcr_v2_first_contact() -> None:
    m = decode(V["A3"])
    assert isinstance(m, Accept)
    assert (m.path, m.first_contact, m.release) == ("SMC-R", True, 1)
    check(
        message_fields(m),
        {
            **SMCR_LINK,
            "eid": UEID,
            "v2_direct": True,
            "os_type": "Linux",
            "release": 1,
            "hostname": "host-a",
            "max_conns": 255,
            "max_links": 2,
            "feature_mask": 0x0001,
        },
    )
    assert "gid_list" not in message_fields(m)


def test_c3_confirm_smcr_v2_gid_list() -> None:
    m = decode(V["C3"])
    assert isinstance(m, Confirm)
    check(
        message_fields(m),
        {
            **SMCR_LINK,
            "first_contact": True,
            "gid_list_count": 2,
            "gid_list": ["::ffff:10.0.0.1", "::ffff:10.1.0.1"],
        },
    )


@pytest.mark.parametrize("name", ["A4", "hwipl-accept"])
def test_a4_accept_smcr_v1(name: str) -> None:
    m = decode(V[name])
    assert isinstance(m, Accept)
    assert (m.path, m.first_contact, m.release, m.version) == ("SMC-R", True, None, 1)
    check(message_fields(m), {**SMCR_LINK, "path": "SMC-R", "first_contact": True})
    assert "eid" not in message_fields(m)


def test_hwipl_confirm() -> None:
    m = decode(V["hwipl-confirm"])
    assert isinstance(m, Confirm)
    assert not m.first_contact
    check(
        message_fields(m),
        {
            "qp_number": 0x0000e5,
            "rmb_rkey": 0x0000187f,
            "rmbe_alert_token": 0x00000006,
            "rmb_virtual_address": "0x00000000f0a40000",
            "psn": 0x0d89a4,
        },
    )


def test_a5_accept_smcd_v1() -> None:
    m = decode(V["A5"])
    assert isinstance(m, Accept)
    assert (m.path, m.first_contact, m.eyecatcher) == ("SMC-D", True, "SMC-D")
    check(
        message_fields(m),
        {
            "gid": "0x1122334455667788",
            "dmb_token": "0x0000000012340001",
            "dmbe_size": 128 * 1024,
            "link_id": 0x00000101,
            "chid": None,
        },
    )


def test_d1_decline_v1() -> None:
    m = decode(V["D1"])
    assert isinstance(m, Decline)
    assert (m.diagnosis, m.out_of_sync, m.supplemental_diagnosis) == (0x03030000, False, None)
    f = message_fields(m)
    assert f["diagnosis"]["name"] == "NOSMCDEV"
    assert f["diagnosis"]["hex"] == "0x03030000"
    assert "IPSEC" in f["diagnosis"]["text"]  # the 4.11-4.18 meaning is mentioned
    assert f["peer_id"] == PEER


def test_d2_decline_v2_out_of_sync() -> None:
    m = decode(V["D2"])
    assert isinstance(m, Decline)
    assert m.diagnosis == 0x03030009 and m.out_of_sync
    check(
        message_fields(m),
        {
            "out_of_sync": True,
            "os_type": "Linux",
            "supplemental_diagnosis": [
                {"code": 0x0303000A, "hex": "0x0303000a", "name": "MAXCONNERR",
                 "text": "max connections negotiation failed"},
                *[{"code": 0, "hex": "0x00000000", "name": "UNKNOWN",
                   "text": "unknown class 0x00 code"}] * 3],
        },
    )
    assert message_fields(m)["diagnosis"]["name"] == "RELEASEERR"


def test_hwipl_decline_placeholder_peer() -> None:
    m = decode(V["hwipl-decline"])
    assert isinstance(m, Decline)
    assert message_fields(m)["peer_id_hex"] == "0x2525252525252500"
    assert message_fields(m)["diagnosis"]["name"] == "NOSMCDEV"


def test_peek_header() -> None:
    h = peek_header(b"xx" + V["A1"], 2)
    assert h == ClcHeader("SMC-D", 2, 130, 2, 0x9)
    assert peek_header(V["A1"][:7]) is None
    assert peek_header(b"\x00" * 8) is None
    assert peek_header(V["A1"], -1) is None
    assert peek_header(V["A1"], 200) is None


def test_emulated_gid_pairs_joining() -> None:
    from smctrace.clc.decode import join_smcd_v2_gids
    from smctrace.schema import _gid_entry

    entries = [(1, 0x1234), (2, 0xFFFF), (3, 0xFFFF), (4, 0xFF00), (5, 0xFF01), (6, 0xFF01)]
    joined = [_gid_entry(g) for g in join_smcd_v2_gids(entries)]
    assert joined == [
        {"gid": "0x0000000000000001", "chid": 0x1234},
        {"gid": "0x00000000000000020000000000000003", "chid": 0xffff},
        {"gid": "0x0000000000000004", "chid": 0xff00, "unpaired": True},
        {"gid": "0x00000000000000050000000000000006", "chid": 0xff01},
    ]

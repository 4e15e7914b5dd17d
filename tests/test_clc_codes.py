"""Decline reason codes: every current and historic code of spec section 4 is named."""

from __future__ import annotations

import pytest

from smctrace.clc import DeclineCode, decline_name, decode, describe_decline
from smctrace.schema import message_fields

# Spec section 4, current mainline table (36 constants): code -> name.
CURRENT = {
    0x01010000: "MEM",
    0x02010000: "TIMEOUT_CL",
    0x02020000: "TIMEOUT_AL",
    0x03000000: "CNFERR",
    0x03010000: "PEERNOSMC",
    0x03020000: "IPSEC",
    0x03030000: "NOSMCDEV",
    0x03030001: "NOSMCDDEV",
    0x03030002: "NOSMCRDEV",
    0x03030003: "NOISM2SUPP",
    0x03030004: "NOV2EXT",
    0x03030005: "NOV2DEXT",
    0x03030006: "NOSEID",
    0x03030007: "NOSMCD2DEV",
    0x03030008: "NOUEID",
    0x03030009: "RELEASEERR",
    0x0303000A: "MAXCONNERR",
    0x0303000B: "MAXLINKERR",
    0x03040000: "MODEUNSUPP",
    0x03050000: "RMBE_EC",
    0x03060000: "OPTUNSUPP",
    0x03070000: "DIFFPREFIX",
    0x03080000: "GETVLANERR",
    0x03090000: "ISMVLANERR",
    0x030A0000: "NOACTLINK",
    0x030B0000: "NOSRVLINK",
    0x030C0000: "VERSMISMAT",
    0x030D0000: "MAX_DMB",
    0x030E0000: "NOROUTE",
    0x030F0000: "NOINDIRECT",
    0x04000000: "SYNCERR",
    0x05000000: "PEERDECL",
    0x09990000: "INTERR",
    0x09990001: "ERR_RTOK",
    0x09990002: "ERR_RDYLNK",
    0x09990003: "ERR_REGBUF",
}

# Spec section 4, historic / foreign values.
HISTORIC = {
    0x02000000: "TIMEOUT",
    0x02040000: "TCL",
    0x06000000: "REPLY",
    0x07000000: "SEND",
    0x99990000: "INTERR",
    0x99990001: "ERR_RTOK",
    0x99990002: "ERR_RDYLNK",
    0x99990003: "ERR_REGRMB",
    0x03010001: "ACTIVE",
    0x0303000C: "REQLGR/FEATUNSUPP",
}


def test_current_table_is_complete() -> None:
    assert len(CURRENT) == 36
    assert {c.value: c.name for c in DeclineCode} == CURRENT


@pytest.mark.parametrize("code", sorted({**CURRENT, **HISTORIC}))
def test_every_code_is_named(code: int) -> None:
    d = describe_decline(code)
    expected = {**CURRENT, **HISTORIC}[code]
    assert d["name"] == expected
    assert d["code"] == code
    assert d["hex"] == f"0x{code:08x}"
    assert d["text"] and "unknown" not in d["text"]
    assert decline_name(code) == expected


def test_nosmcdev_mentions_old_ipsec_meaning() -> None:
    d = describe_decline(0x03030000)
    assert d["name"] == "NOSMCDEV"
    assert "IPSEC" in d["text"] and "4.11" in d["text"]


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0x03FF0000, "unknown 0x03 configuration/negotiation code"),
        (0x0303000D, "unknown 0x03 configuration/negotiation code"),
        (0x01990000, "unknown 0x01 resources code"),
        (0x02990000, "unknown 0x02 timeout code"),
        (0x04000001, "unknown 0x04 sync code"),
        (0x05000001, "unknown 0x05 peer-declined code"),
        (0x09000000, "unknown 0x09 internal code"),
        (0x99000000, "unknown 0x99 internal code"),
        (0x00000000, "unknown class 0x00 code"),
        (0xFFFFFFFF, "unknown class 0xff code"),
    ],
)
def test_unknown_codes_by_class(code: int, text: str) -> None:
    d = describe_decline(code)
    assert d == {"code": code, "hex": f"0x{code:08x}", "name": "UNKNOWN", "text": text}


def test_decline_message_uses_code_table() -> None:
    raw = bytes.fromhex("e2d4c3d904002c20" + "00" * 8 + "03030008" + "20000000" + "00" * 16)
    msg = decode(raw + bytes.fromhex("e2d4c3d9"))
    assert msg.malformed is None
    assert message_fields(msg)["diagnosis"] == {
        "code": 0x03030008,
        "hex": "0x03030008",
        "name": "NOUEID",
        "text": "peer sent no UEID",
    }

"""CLC test vectors of spec section 8 (shared by the CLC and tshark-oracle tests).

8.2: synthetic kernel-conforming vectors, copied verbatim (offset-less hex rows).
8.1: real pre-5.10 captures published by hwipl. The spec elides the repeated
peer-ID/GID/MAC of the Accept and Confirm ("fe80...cdef", "..."); they are filled in
with the values of the Proposal (same host on loopback).
"""

from __future__ import annotations


def _hex(rows: str) -> bytes:
    return bytes.fromhex("".join(rows.split()))


# name -> (description from the spec, bytes)
SPEC_8_2: dict[str, tuple[str, bytes]] = {
    "P1": (
        (
            "Proposal v2, typev1=B typev2=B, IPv4 10.0.0.0/24, 1 UEID, SEID, release 1, 2 "
            "GID/CHID entries (loopback-ism pair, CHID 0xFFFF) -- 232 bytes"
        ),
        _hex(
            """
            e2 d4 c3 d9 01 00 e8 2f b1 a0 98 03 9b ab cd ef
            fe 80 00 00 00 00 00 00 9a 03 9b ff fe ab cd ef
            98 03 9b ab cd ef 00 28 aa aa bb bb cc cc dd dd
            02 01 00 24 00 00 00 00 00 00 00 00 00 00 00 00
            00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            0a 00 00 00 18 00 00 00 01 02 00 11 00 00 00 40
            00 00 00 00 00 00 00 00 00 00 ff ff 0a 00 00 01
            ff 02 00 01 00 00 00 00 00 00 00 00 00 00 00 00
            53 4d 43 54 52 41 43 45 2d 54 45 53 54 2d 55 45
            49 44 20 20 20 20 20 20 20 20 20 20 20 20 20 20
            49 42 4d 2d 53 59 53 5a 2d 49 53 4d 53 45 49 44
            30 30 30 30 30 30 30 30 31 32 33 34 38 35 36 31
            00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            11 11 22 22 33 33 44 44 ff ff 55 55 66 66 77 77
            88 88 ff ff e2 d4 c3 d9
            """
        ),
    ),
    "P2": (
        "Proposal v2, typev1=N typev2=R (SMC-R v2 only), 1 UEID, release 1 -- 156 bytes",
        _hex(
            """
            e2 d4 c3 d9 01 00 9c 22 00 00 00 00 00 00 00 00
            00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            00 00 00 1c 00 00 00 00 00 00 00 00 00 00 00 00
            00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            01 00 00 11 00 00 00 00 00 00 00 00 00 00 00 00
            00 00 ff ff 0a 00 00 01 ff 02 00 01 00 00 00 00
            00 00 00 00 00 00 00 00 53 4d 43 54 52 41 43 45
            2d 54 45 53 54 2d 55 45 49 44 20 20 20 20 20 20
            20 20 20 20 20 20 20 20 e2 d4 c3 d9
            """
        ),
    ),
    "P3": (
        ("Proposal v2, typev1=R typev2=N (v1-only offer, as Linux >= 5.10 sends it) -- 92 bytes"),
        _hex(
            """
            e2 d4 c3 d9 01 00 5c 28 b1 a0 98 03 9b ab cd ef
            fe 80 00 00 00 00 00 00 9a 03 9b ff fe ab cd ef
            98 03 9b ab cd ef 00 28 00 00 00 00 00 00 00 00
            00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            0a 00 00 00 18 00 00 00 e2 d4 c3 d9
            """
        ),
    ),
    "P4": (
        "Proposal v1, RFC / Linux 4.11-5.9 SMC-R only (iparea_offset 0) -- 52 bytes",
        _hex(
            """
            e2 d4 c3 d9 01 00 34 10 b1 a0 98 03 9b ab cd ef
            fe 80 00 00 00 00 00 00 9a 03 9b ff fe ab cd ef
            98 03 9b ab cd ef 00 00 0a 00 00 00 18 00 00 00
            e2 d4 c3 d9
            """
        ),
    ),
    "A1": (
        "Accept SMC-D v2, first contact, release 1 -- 130 bytes",
        _hex(
            """
            e2 d4 c3 c4 02 00 82 29 11 22 33 44 55 66 77 88
            00 00 00 00 12 34 00 01 00 30 00 00 00 00 01 01
            ff ff 53 4d 43 54 52 41 43 45 2d 54 45 53 54 2d
            55 45 49 44 20 20 20 20 20 20 20 20 20 20 20 20
            20 20 55 55 66 66 77 77 88 88 00 21 00 00 68 6f
            73 74 2d 61 20 20 20 20 20 20 20 20 20 20 20 20
            20 20 20 20 20 20 20 20 20 20 20 20 20 20 00 00
            00 01 00 00 00 00 00 00 00 00 00 00 00 00 e2 d4
            c3 c4
            """
        ),
    ),
    "A2": (
        "Accept SMC-D v2, first contact, release 0 -- 114 bytes",
        _hex(
            """
            e2 d4 c3 c4 02 00 72 29 11 22 33 44 55 66 77 88
            00 00 00 00 12 34 00 01 00 30 00 00 00 00 01 01
            01 01 53 4d 43 54 52 41 43 45 2d 54 45 53 54 2d
            55 45 49 44 20 20 20 20 20 20 20 20 20 20 20 20
            20 20 00 00 00 00 00 00 00 00 00 20 00 00 68 6f
            73 74 2d 61 20 20 20 20 20 20 20 20 20 20 20 20
            20 20 20 20 20 20 20 20 20 20 20 20 20 20 e2 d4
            c3 c4
            """
        ),
    ),
    "A3": (
        "Accept SMC-R v2, first contact, release 1 -- 160 bytes",
        _hex(
            """
            e2 d4 c3 d9 02 00 a0 28 b1 a0 98 03 9b ab cd ef
            fe 80 00 00 00 00 00 00 9a 03 9b ff fe ab cd ef
            98 03 9b ab cd ef 00 00 e4 00 00 15 7d 01 00 00
            00 05 23 00 00 00 00 00 f0 a6 00 00 00 72 f5 fe
            53 4d 43 54 52 41 43 45 2d 54 45 53 54 2d 55 45
            49 44 20 20 20 20 20 20 20 20 20 20 20 20 20 20
            00 00 00 00 00 00 00 00 80 21 00 00 68 6f 73 74
            2d 61 20 20 20 20 20 20 20 20 20 20 20 20 20 20
            20 20 20 20 20 20 20 20 20 20 20 20 ff 02 00 01
            00 00 00 00 00 00 00 00 00 00 00 00 e2 d4 c3 d9
            """
        ),
    ),
    "C3": (
        "Confirm SMC-R v2, first contact, 2 GIDs -- 196 bytes",
        _hex(
            """
            e2 d4 c3 d9 03 00 c4 28 b1 a0 98 03 9b ab cd ef
            fe 80 00 00 00 00 00 00 9a 03 9b ff fe ab cd ef
            98 03 9b ab cd ef 00 00 e4 00 00 15 7d 01 00 00
            00 05 23 00 00 00 00 00 f0 a6 00 00 00 72 f5 fe
            53 4d 43 54 52 41 43 45 2d 54 45 53 54 2d 55 45
            49 44 20 20 20 20 20 20 20 20 20 20 20 20 20 20
            00 00 00 00 00 00 00 00 80 21 00 00 68 6f 73 74
            2d 61 20 20 20 20 20 20 20 20 20 20 20 20 20 20
            20 20 20 20 20 20 20 20 20 20 20 20 ff 02 00 01
            00 00 00 00 00 00 00 00 00 00 00 00 02 00 00 00
            00 00 00 00 00 00 00 00 00 00 ff ff 0a 00 00 01
            00 00 00 00 00 00 00 00 00 00 ff ff 0a 01 00 01
            e2 d4 c3 d9
            """
        ),
    ),
    "A4": (
        "Accept SMC-R v1, first contact -- 68 bytes",
        _hex(
            """
            e2 d4 c3 d9 02 00 44 18 b1 a0 98 03 9b ab cd ef
            fe 80 00 00 00 00 00 00 9a 03 9b ff fe ab cd ef
            98 03 9b ab cd ef 00 00 e4 00 00 15 7d 01 00 00
            00 05 23 00 00 00 00 00 f0 a6 00 00 00 72 f5 fe
            e2 d4 c3 d9
            """
        ),
    ),
    "A5": (
        "Accept SMC-D v1, first contact -- 48 bytes",
        _hex(
            """
            e2 d4 c3 c4 02 00 30 19 11 22 33 44 55 66 77 88
            00 00 00 00 12 34 00 01 00 30 00 00 00 00 01 01
            00 00 00 00 00 00 00 00 00 00 00 00 e2 d4 c3 c4
            """
        ),
    ),
    "D1": (
        "Decline v1, NOSMCDEV -- 28 bytes",
        _hex(
            """
            e2 d4 c3 d9 04 00 1c 10 b1 a0 98 03 9b ab cd ef
            03 03 00 00 00 00 00 00 e2 d4 c3 d9
            """
        ),
    ),
    "D2": (
        "Decline v2, code 0x03030009, out-of-sync bit, extra code 0x0303000a -- 44 bytes",
        _hex(
            """
            e2 d4 c3 d9 04 00 2c 28 b1 a0 98 03 9b ab cd ef
            03 03 00 09 20 00 00 00 03 03 00 0a 00 00 00 00
            00 00 00 00 00 00 00 00 e2 d4 c3 d9
            """
        ),
    ),
}

_PEER = "b1a098039babcdef"
_GID = "fe800000000000009a039bfffeabcdef"
_MAC = "98039babcdef"

SPEC_8_1: dict[str, tuple[str, bytes]] = {
    "hwipl-proposal": (
        "Proposal v1 52 bytes, iparea_offset 0",
        _hex(f"e2d4c3d9 01 0034 10 {_PEER} {_GID} {_MAC} 0000 7f000000 08 0000 00 e2d4c3d9"),
    ),
    "hwipl-accept": (
        "Accept SMC-R v1, first contact",
        _hex(
            f"e2d4c3d9 02 0044 18 {_PEER} {_GID} {_MAC} 0000e4 0000157d 01 00000005 23 00"
            " 00000000f0a60000 00 72f5fe e2d4c3d9"
        ),
    ),
    "hwipl-confirm": (
        "Confirm SMC-R v1",
        _hex(
            f"e2d4c3d9 03 0044 10 {_PEER} {_GID} {_MAC} 0000e5 0000187f 01 00000006 23 00"
            " 00000000f0a40000 00 0d89a4 e2d4c3d9"
        ),
    ),
    "hwipl-decline": (
        "Decline v1 NOSMCDEV, placeholder peer ID",
        _hex("e2d4c3d9 04 001c 10 2525252525252500 03030000 00000000 e2d4c3d9"),
    ),
}

ALL_VECTORS: dict[str, bytes] = {
    **{k: v for k, (_, v) in SPEC_8_2.items()},
    **{k: v for k, (_, v) in SPEC_8_1.items()},
}


def test_vector_lengths_match_headers() -> None:
    for name, data in ALL_VECTORS.items():
        assert int.from_bytes(data[5:7], "big") == len(data), name

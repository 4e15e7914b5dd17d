"""CLC messages from the reference (clc-protocol.md section 8), as bytes, for tests."""

from __future__ import annotations


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(line.strip().split("  ", 1)[-1] for line in text.strip().splitlines()))


# 8.1: real pre-5.10 kernel output (hwipl), SMC-R v1.
PROPOSAL_V1_52 = bytes.fromhex(
    "e2d4c3d9010034 10 b1a098039babcdef fe800000000000009a039bfffeabcdef 98039babcdef 0000"
    " 7f000000 08 0000 00 e2d4c3d9".replace(" ", ""))
DECLINE_V1_NOSMCDEV = bytes.fromhex(
    "e2d4c3d904001c10 2525252525252500 03030000 00000000 e2d4c3d9".replace(" ", ""))
# 8.2 A4: Accept SMC-R v1, first contact (68 bytes).
ACCEPT_R_V1 = _hex("""
  0000  e2 d4 c3 d9 02 00 44 18 b1 a0 98 03 9b ab cd ef fe 80 00 00 00 00 00 00 9a 03 9b ff fe ab cd ef
  0020  98 03 9b ab cd ef 00 00 e4 00 00 15 7d 01 00 00 00 05 23 00 00 00 00 00 f0 a6 00 00 00 72 f5 fe
  0040  e2 d4 c3 d9
""")
# Confirm SMC-R v1: A4 with type 3 and no first-contact bit change needed for framing tests.
CONFIRM_R_V1 = ACCEPT_R_V1[:4] + b"\x03" + ACCEPT_R_V1[5:]
# 8.2 A5: Accept SMC-D v1, first contact (48 bytes).
ACCEPT_D_V1 = _hex("""
  0000  e2 d4 c3 c4 02 00 30 19 11 22 33 44 55 66 77 88 00 00 00 00 12 34 00 01 00 30 00 00 00 00 01 01
  0020  00 00 00 00 00 00 00 00 00 00 00 00 e2 d4 c3 c4
""")
CONFIRM_D_V1 = ACCEPT_D_V1[:4] + b"\x03" + ACCEPT_D_V1[5:]
# 8.2 D2: Decline v2 (44 bytes).
DECLINE_V2 = _hex("""
  0000  e2 d4 c3 d9 04 00 2c 28 b1 a0 98 03 9b ab cd ef 03 03 00 09 20 00 00 00 03 03 00 0a 00 00 00 00
  0020  00 00 00 00 00 00 00 00 e2 d4 c3 d9
""")

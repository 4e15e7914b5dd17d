"""Small value types and representations shared by the CLC decoder and its output.

Representation rules (used by every ``fields()``):

* identifiers, addresses, tokens, keys, CHIDs, ISM GIDs, masks: hex strings zero-padded to
  the field width (``"0x0000157d"``), as tshark shows them;
* counts, indices, lengths, offsets, releases and sizes: plain ints (sizes in bytes);
* RoCE GIDs: IPv6 text (``"fe80::9a03:9bff:feab:cdef"``, ``"::ffff:10.0.0.1"``); MACs
  ``"98:03:9b:ab:cd:ef"``;
* wire strings (EIDs, hostnames, SEID): trailing blanks/NULs stripped and passed through
  :func:`safe_text`, so no control character can reach a terminal; empty -> None.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

# Bytes that safe_text escapes: everything but printable ASCII, and the backslash.
_UNSAFE = bytes(c for c in range(256) if not (0x20 <= c <= 0x7E and c != 0x5C))


def safe_text(b: bytes) -> str:
    """Printable ASCII for any bytes: 0x20-0x7e kept (except backslash), others as \\xNN."""
    if len(b.translate(None, _UNSAFE)) == len(b):  # nothing to escape (the usual case)
        return b.decode("ascii")
    return "".join(chr(c) if 0x20 <= c <= 0x7E and c != 0x5C else f"\\x{c:02x}" for c in b)


def wire_string(b: bytes) -> str | None:
    """A blank/NUL-padded wire string as safe text; None if empty."""
    text = safe_text(b.rstrip(b" \x00"))
    return text or None


_HEX_FORMATS = {size: f"0x%0{size * 2}x" for size in range(1, 17)}


def hex_int(value: int, size: int) -> str:
    """Integer as 0x-prefixed hex zero-padded to ``size`` bytes."""
    fmt = _HEX_FORMATS.get(size)
    return f"0x{value:0{size * 2}x}" if fmt is None else fmt % value


def hex_bytes(b: bytes) -> str:
    return "0x" + b.hex()


@lru_cache(maxsize=4096)  # a host's GIDs recur in every handshake
def format_gid(b: bytes) -> str:
    """16-byte RoCE GID as IPv6 text; IPv4-mapped GIDs as ``::ffff:a.b.c.d``."""
    addr = ipaddress.IPv6Address(b)
    mapped = addr.ipv4_mapped
    if mapped is not None:
        return f"::ffff:{mapped}"
    return str(addr)


def format_ipv4(b: bytes) -> str:
    if len(b) == 4:
        return f"{b[0]}.{b[1]}.{b[2]}.{b[3]}"
    return str(ipaddress.IPv4Address(b))  # raises, as before


def format_mac(b: bytes) -> str:
    return b.hex(":")


@dataclass(frozen=True, slots=True)
class PeerId:
    """8-byte SMC peer (system) ID: 2-byte instance + 6-byte MAC."""

    raw: bytes

    @property
    def instance(self) -> int:
        return int.from_bytes(self.raw[:2], "big")

    @property
    def mac(self) -> str:
        return format_mac(self.raw[2:8])

    @property
    def hex(self) -> str:
        return hex_bytes(self.raw)

    @property
    def is_zero(self) -> bool:
        return not any(self.raw)

    def __str__(self) -> str:
        return _peer_text(self.raw)


@lru_cache(maxsize=4096)  # a host's peer ID recurs in every handshake
def _peer_text(raw: bytes) -> str:
    return f"{int.from_bytes(raw[:2], 'big')}@{format_mac(raw[2:8])}"


@dataclass(frozen=True, slots=True)
class SmcdGid:
    """An SMC-D GID: 64-bit, or 128-bit for Emulated-ISM (gid + gid_ext)."""

    gid: int
    gid_ext: int | None = None  # low 64 bits of a 128-bit Emulated-ISM GID

    @property
    def is_128bit(self) -> bool:
        return self.gid_ext is not None

    def __str__(self) -> str:
        if self.gid_ext is not None:
            return f"0x{self.gid:016x}{self.gid_ext:016x}"
        return f"0x{self.gid:016x}"

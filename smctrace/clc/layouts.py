"""CLC message layouts, described once, as data (spec sections 2 and 3).

Each layout is a tuple of :class:`Field` rows that mirrors a table of the spec:
name, offset (relative to the start of the part), size, kind and an optional bit
mask for sub-byte fields. Reserved fields are named ``"rsv"``; the decoder names
them ``reserved_<absolute offset>`` so they can be shown for diffing.

Which parts make up a message is chosen by tables keyed by the header
(:data:`ACCEPT_CONFIRM_LAYOUTS`, :data:`DECLINE_LAYOUTS`; the decoder's builder table is
keyed by message type). Proposal parts are located through the offsets in the message
(3.1.7), so their layouts come with the constants that place them;
:func:`read_part` reads a part from a buffer without ever raising: fields that do
not fit into the available bytes are simply absent from the result.

The tables stay the only description of the wire format. For speed,
:func:`compile_layout` turns a layout, once at import time, into a reader function
(generated from the table, as dataclasses and namedtuple generate code) that reads a
whole part with one precomputed :class:`struct.Struct` and returns its fields split by
kind (integers, bytes), the reserved ones set aside; it has the semantics of
:func:`read_part`, which it falls back to when the part does not fit into the buffer.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from smctrace.clc.codes import SmcPath


class Kind(Enum):
    """How the bytes of a field are read."""

    UINT = "uint"  # big-endian unsigned integer (1-8 bytes), masked if mask != 0
    BYTES = "bytes"  # raw bytes (GIDs, MACs, strings, peer IDs, reserved areas)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    offset: int
    size: int
    kind: Kind = Kind.UINT
    mask: int = 0  # for bit fields inside a UINT; value = (raw & mask) >> lowest set bit

    @property
    def reserved(self) -> bool:
        return self.name == "rsv"


Layout = tuple[Field, ...]
B = Kind.BYTES

# --- 2.1 header -----------------------------------------------------------------
HEADER: Final[Layout] = (
    Field("eyecatcher", 0, 4, B),
    Field("type", 4, 1),
    Field("length", 5, 2),
    Field("version", 7, 1, mask=0xF0),
    Field("flags", 7, 1, mask=0x0F),
)

# --- 3.1 Proposal ------------------------------------------------------------------
PROPOSAL_BASE: Final[Layout] = (  # 3.1.1, at 0
    Field("peer_id", 8, 8, B),
    Field("smcr_gid", 16, 16, B),
    Field("smcr_mac", 32, 6, B),
    Field("iparea_offset", 38, 2),
)
PROPOSAL_BASE_LEN: Final = 40

SMCD_AREA: Final[Layout] = (  # 3.1.2, at 40
    Field("ism_gid", 0, 8),
    Field("ism_chid", 8, 2),
    Field("v2_ext_offset", 10, 2),
    Field("vendor_oui", 12, 3),
    Field("vendor_options", 15, 5),
    Field("rsv", 20, 20, B),
)
SMCD_AREA_LEN: Final = 40
V2_EXT_OFFSET_BASE: Final = 52  # v2_ext_offset counts from the end of its own field

IP_PREFIX_AREA: Final[Layout] = (  # 3.1.3, at 40 + iparea_offset
    Field("ipv4_subnet", 0, 4, B),
    Field("ipv4_prefix_len", 4, 1),
    Field("rsv", 5, 2, B),
    Field("ipv6_prefix_count", 7, 1),
)
IP_PREFIX_AREA_LEN: Final = 8

IPV6_PREFIX: Final[Layout] = (  # 3.1.3, repeated, 17 bytes each
    Field("prefix", 0, 16, B),
    Field("prefix_len", 16, 1),
)
IPV6_PREFIX_LEN: Final = 17

V2_EXT: Final[Layout] = (  # 3.1.4, at 52 + v2_ext_offset
    Field("eid_count", 0, 1),
    Field("ism_gid_count", 1, 1),
    Field("rsv", 2, 1, B),
    Field("release", 3, 1, mask=0xF0),
    Field("rsv", 3, 1, mask=0x0E),
    Field("seid_indicator", 3, 1, mask=0x01),
    Field("rsv", 4, 2, B),
    Field("smcd_v2_ext_offset", 6, 2),
    Field("rocev2_gid", 8, 16, B),
    Field("max_conns", 24, 1),
    Field("max_links", 25, 1),
    Field("feature_mask", 26, 2),
    Field("rsv", 28, 12, B),
)
V2_EXT_LEN: Final = 40
SMCD_V2_EXT_OFFSET_BASE: Final = 8  # smcd_v2_ext_offset counts from rel 8 of the v2 ext

UEID: Final[Layout] = (Field("eid", 0, 32, B),)  # repeated after the v2 extension
EID_LEN: Final = 32

SMCD_V2_EXT: Final[Layout] = (  # 3.1.5
    Field("seid", 0, 32, B),
    Field("rsv", 32, 16, B),
)
SMCD_V2_EXT_LEN: Final = 48

SMCD_V2_GID_ENTRY: Final[Layout] = (  # 3.1.5, repeated, 10 bytes each
    Field("gid", 0, 8),
    Field("chid", 8, 2),
)
SMCD_V2_GID_ENTRY_LEN: Final = 10


# --- 3.2 - 3.7 Accept / Confirm ----------------------------------------------------
SMCR_ACCEPT_CONFIRM: Final[Layout] = (  # 3.2 (also the first 64 bytes of 3.4)
    Field("peer_id", 8, 8, B),
    Field("gid", 16, 16, B),
    Field("mac", 32, 6, B),
    Field("qp_number", 38, 3),
    Field("rmb_rkey", 41, 4),
    Field("rmbe_index", 45, 1),
    Field("rmbe_alert_token", 46, 4),
    Field("rmbe_size", 50, 1, mask=0xF0),
    Field("qp_mtu", 50, 1, mask=0x0F),
    Field("rsv", 51, 1, B),
    Field("rmb_virtual_address", 52, 8),
    Field("rsv", 60, 1, B),
    Field("psn", 61, 3),
)
SMCR_V2_TAIL: Final[Layout] = (  # 3.4
    Field("eid", 64, 32, B),
    Field("rsv", 96, 8, B),
)
SMCD_ACCEPT_CONFIRM: Final[Layout] = (  # 3.3 (also the first 32 bytes of 3.5)
    Field("gid", 8, 8),
    Field("dmb_token", 16, 8),
    Field("dmbe_index", 24, 1),
    Field("dmbe_size", 25, 1, mask=0xF0),
    Field("rsv", 25, 1, mask=0x0F),
    Field("rsv", 26, 2, B),
    Field("link_id", 28, 4),
)
SMCD_V1_TAIL: Final[Layout] = (Field("rsv", 32, 12, B),)  # 3.3
SMCD_V2_TAIL: Final[Layout] = (  # 3.5
    Field("chid", 32, 2),
    Field("eid", 34, 32, B),
    Field("gid_ext", 66, 8),
)

FCE_BASE: Final[Layout] = (  # 3.6, first 36 bytes
    Field("v2_direct", 0, 1, mask=0x80),
    Field("rsv", 0, 1, mask=0x7F),
    Field("os_type", 1, 1, mask=0xF0),
    Field("release", 1, 1, mask=0x0F),
    Field("rsv", 2, 2, B),
    Field("hostname", 4, 32, B),
)
FCE_BASE_LEN: Final = 36
FCE_V2X: Final[Layout] = (  # 3.6, 16 more bytes (SMC-R always; SMC-D release >= 1)
    Field("max_conns", 36, 1),
    Field("max_links", 37, 1),
    Field("feature_mask", 38, 2),
    Field("vendor_options", 40, 4),
    Field("rsv", 44, 8, B),
)
FCE_V2X_LEN: Final = 16

GID_LIST_HEADER: Final[Layout] = (  # 3.7
    Field("gid_count", 0, 1),
    Field("rsv", 1, 3, B),
)
GID_LIST_HEADER_LEN: Final = 4
GID_LIST_ENTRY: Final[Layout] = (Field("gid", 0, 16, B),)
GID_LIST_ENTRY_LEN: Final = 16


@dataclass(frozen=True, slots=True)
class AcceptConfirmLayout:
    """How an Accept/Confirm of one (version, path) is built."""

    parts: tuple[Layout, ...]  # fixed parts, offsets absolute
    base_length: int  # length without first-contact extension (incl. trailer)
    fce_offset: int | None  # where the first-contact extension starts (v2 only)
    fce_lengths: tuple[int, ...]  # allowed FCE sizes (36 and/or 52)
    gid_list_offset: int | None  # Confirm only, SMC-R v2 first contact


# Keyed by (version >= 2, path).
ACCEPT_CONFIRM_LAYOUTS: Final[dict[tuple[bool, SmcPath], AcceptConfirmLayout]] = {
    (False, SmcPath.SMC_R): AcceptConfirmLayout((SMCR_ACCEPT_CONFIRM,), 68, None, (), None),
    (False, SmcPath.SMC_D): AcceptConfirmLayout(
        (SMCD_ACCEPT_CONFIRM, SMCD_V1_TAIL), 48, None, (), None
    ),
    (True, SmcPath.SMC_R): AcceptConfirmLayout(
        (SMCR_ACCEPT_CONFIRM, SMCR_V2_TAIL), 108, 104, (FCE_BASE_LEN + FCE_V2X_LEN,), 156
    ),
    (True, SmcPath.SMC_D): AcceptConfirmLayout(
        (SMCD_ACCEPT_CONFIRM, SMCD_V2_TAIL),
        78,
        74,
        (FCE_BASE_LEN, FCE_BASE_LEN + FCE_V2X_LEN),
        None,
    ),
}

# --- 3.8 Decline -------------------------------------------------------------------
DECLINE_V1: Final[Layout] = (
    Field("peer_id", 8, 8, B),
    Field("diagnosis", 16, 4),
    Field("os_type", 20, 1, mask=0xF0),
    Field("rsv", 20, 1, mask=0x0F),
    Field("rsv", 21, 3, B),
)
DECLINE_V2_TAIL: Final[Layout] = (
    Field("supplemental_diagnosis_0", 24, 4),
    Field("supplemental_diagnosis_1", 28, 4),
    Field("supplemental_diagnosis_2", 32, 4),
    Field("supplemental_diagnosis_3", 36, 4),
)

# Keyed by version >= 2: (parts, length).
DECLINE_LAYOUTS: Final[dict[bool, tuple[tuple[Layout, ...], int]]] = {
    False: ((DECLINE_V1,), 28),
    True: ((DECLINE_V1, DECLINE_V2_TAIL), 44),
}

Value = int | bytes


def _shift(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


def read_part(buf: bytes, base: int, layout: Layout) -> dict[str, Value]:
    """Read every field of ``layout`` placed at ``base`` that fits into ``buf``.

    Never raises. Reserved fields are returned as ``reserved_<absolute offset>``
    (``..._bits`` for reserved bits); fields that do not fit are absent.
    """
    reserved: Reserved = {}
    ints, raws = _read_partial(buf, base, layout, reserved)
    return {**ints, **raws, **reserved}


def _reserved_name(start: int, mask: int) -> str:
    return f"reserved_{start}" + ("_bits" if mask else "")


# --- compiled readers --------------------------------------------------------------------

Ints = dict[str, int]
Raws = dict[str, bytes]
Reserved = dict[str, Value]
# reader(buf, base, reserved) -> (integer fields, bytes fields); reserved fields are
# stored into `reserved` as ``reserved_<absolute offset>[_bits]``.
Reader = Callable[[bytes, int, Reserved], tuple[Ints, Raws]]

_STRUCT_CODES: Final = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _read_partial(buf: bytes, base: int, layout: Layout, reserved: Reserved) -> tuple[Ints, Raws]:
    """Field by field: the fields that fit, by kind; reserved ones into ``reserved``.

    :func:`read_part`, and the slow path of compiled readers (part not all there).
    """
    ints: Ints = {}
    raws: Raws = {}
    if base < 0:
        return ints, raws
    for f in layout:
        start = base + f.offset
        end = start + f.size
        if end > len(buf):
            continue
        chunk = buf[start:end]
        if f.kind is Kind.BYTES:
            value: Value = chunk
        else:
            value = int.from_bytes(chunk, "big")
            if f.mask:
                value = (value & f.mask) >> _shift(f.mask)
        if f.reserved:
            reserved[_reserved_name(start, f.mask)] = value
        elif isinstance(value, bytes):
            raws[f.name] = value
        else:
            ints[f.name] = value
    return ints, raws


def compile_layout(layout: Layout) -> Reader:
    """Compile ``layout`` into a reader: one struct unpack for the whole part when it fits.

    Fields sharing bytes (bit fields) share one unpacked slot; sizes without a struct
    code (3, 5 bytes) are unpacked as bytes and converted with ``int.from_bytes``.
    """
    slots = sorted({(f.offset, f.size) for f in layout})
    for (o1, s1), (o2, _) in itertools.pairwise(slots):
        if o1 + s1 > o2:  # overlapping fields must cover exactly the same bytes
            raise ValueError(f"overlapping fields at {o1} and {o2}")
    names = [f.name for f in layout if not f.reserved]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate field names in {names}")
    slot_index = {slot: i for i, slot in enumerate(slots)}
    fmt = ">"
    at = 0
    for offset, size in slots:
        if offset > at:
            fmt += f"{offset - at}x"
        kinds = {f.kind for f in layout if (f.offset, f.size) == (offset, size)}
        code = _STRUCT_CODES.get(size) if kinds == {Kind.UINT} else None
        fmt += code or f"{size}s"
        at = offset + size
    unpack = struct.Struct(fmt)
    ints: list[str] = []
    raws: list[str] = []
    reserved: list[str] = []
    for f in layout:
        i = slot_index[(f.offset, f.size)]
        expr = f"s{i}"
        if f.kind is Kind.UINT:
            if _STRUCT_CODES.get(f.size) is None or any(
                g.kind is Kind.BYTES for g in layout if (g.offset, g.size) == (f.offset, f.size)
            ):
                expr = f"_from_bytes(s{i}, 'big')"
            if f.mask:
                expr = f"(({expr}) & {f.mask:#x}) >> {_shift(f.mask)}"
        if f.reserved:
            reserved.append(f"    reserved[names[{len(reserved)}]] = {expr}")
        elif f.kind is Kind.UINT:
            ints.append(f"{f.name!r}: {expr}")
        else:
            raws.append(f"{f.name!r}: {expr}")
    targets = ", ".join(f"s{i}" for i in range(len(slots)))
    lines = [
        "def read(buf, base, reserved):",
        f"    if base < 0 or base + {unpack.size} > len(buf):",
        "        return _partial(buf, base, layout, reserved)",
        f"    {targets}, = _unpack(buf, base)",
    ]
    if reserved:
        lines.append("    names = _names.get(base) or _name_at(base)")
        lines += reserved
    lines.append(f"    return {{{', '.join(ints)}}}, {{{', '.join(raws)}}}")
    rsv_fields = [f for f in layout if f.reserved]
    names_cache: dict[int, tuple[str, ...]] = {}

    def name_at(base: int) -> tuple[str, ...]:
        names = tuple(_reserved_name(base + f.offset, f.mask) for f in rsv_fields)
        if len(names_cache) < 256:  # bases are few; bound the cache against odd input
            names_cache[base] = names
        return names

    namespace: dict[str, object] = {
        "_partial": _read_partial,
        "_unpack": unpack.unpack_from,
        "_from_bytes": int.from_bytes,
        "_names": names_cache,
        "_name_at": name_at,
        "layout": layout,
    }
    exec("\n".join(lines), namespace)  # the code is generated from the tables above
    read = namespace["read"]
    assert callable(read)
    return read

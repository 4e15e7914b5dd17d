"""Decode the bytes of one CLC message into a typed message (pure; never raises).

The layouts come from :mod:`smctrace.clc.layouts`; this module selects them by the
header, converts raw values to typed ones and validates the message the way the spec
(sections 3.1.8, 3.8, 3.9) describes. Problems are collected into a short ``malformed``
text ("; "-separated); decoding always goes on as far as the bytes allow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any

from smctrace.clc import layouts as L
from smctrace.clc.codes import (
    EYECATCHER_D,
    EYECATCHER_R,
    HEADER_LEN,
    MAX_IPAREA_OFFSET,
    MAX_IPV6_PREFIXES,
    MAX_MESSAGE_LEN,
    MAX_SMCD_V2_EXT_OFFSET,
    MAX_SMCD_V2_GIDS,
    MAX_UEIDS,
    MAX_V2_EXT_OFFSET,
    TRAILER_LEN,
    EyecatcherName,
    MessageType,
    SmcPath,
    SmcType,
    is_emulated_ism_chid,
)
from smctrace.clc.messages import (
    Accept,
    AcceptConfirm,
    ClcHeader,
    ClcMessage,
    Confirm,
    Decline,
    FirstContactExtension,
    Proposal,
    SmcdLink,
    SmcdV2GidEntry,
    SmcrLink,
)
from smctrace.clc.values import (
    PeerId,
    SmcdGid,
    format_gid,
    format_ipv4,
    format_mac,
    wire_string,
)

_EYECATCHERS: dict[bytes, EyecatcherName] = {EYECATCHER_R: "SMC-R", EYECATCHER_D: "SMC-D"}

# The layouts, compiled once into readers (see layouts.compile_layout).
_READ_HEADER = L.compile_layout(L.HEADER)
_READ_PROPOSAL_BASE = L.compile_layout(L.PROPOSAL_BASE)
_READ_SMCD_AREA = L.compile_layout(L.SMCD_AREA)
_READ_IP_PREFIX_AREA = L.compile_layout(L.IP_PREFIX_AREA)
_READ_IPV6_PREFIX = L.compile_layout(L.IPV6_PREFIX)
_READ_V2_EXT = L.compile_layout(L.V2_EXT)
_READ_UEID = L.compile_layout(L.UEID)
_READ_SMCD_V2_EXT = L.compile_layout(L.SMCD_V2_EXT)
_READ_SMCD_V2_GID_ENTRY = L.compile_layout(L.SMCD_V2_GID_ENTRY)
_READ_FCE_BASE = L.compile_layout(L.FCE_BASE)
_READ_FCE_V2X = L.compile_layout(L.FCE_V2X)
_READ_GID_LIST_HEADER = L.compile_layout(L.GID_LIST_HEADER)
_READ_GID_LIST_ENTRY = L.compile_layout(L.GID_LIST_ENTRY)
# The parts of a message are read as one layout: fields are read (or found missing) one
# by one all the same, so the result is that of reading the parts in turn.
_READ_ACCEPT_CONFIRM: dict[tuple[bool, SmcPath], L.Reader] = {
    key: L.compile_layout(tuple(f for part in layout.parts for f in part))
    for key, layout in L.ACCEPT_CONFIRM_LAYOUTS.items()
}
_READ_DECLINE: dict[bool, tuple[L.Reader, int]] = {
    key: (L.compile_layout(tuple(f for part in parts for f in part)), length)
    for key, (parts, length) in L.DECLINE_LAYOUTS.items()
}
# SMC-D area fields that v1 reserves (3.1.2): everything after the ISM GID.
_SMCD_AREA_V1_RESERVED = tuple(
    (f.name, f"reserved_{L.PROPOSAL_BASE_LEN + f.offset}") for f in L.SMCD_AREA[1:]
)

_SMC_TYPES: tuple[SmcType, ...] = tuple(sorted(SmcType, key=int))  # indexed by value
_ZERO_GID = bytes(16)
_ZERO_IPV4 = bytes(4)

# Headers repeat (same type, length, version and flags); ClcHeader is immutable.
_HEADER_CACHE: dict[bytes, ClcHeader] = {}
_HEADER_CACHE_MAX = 4096


def _parse_header(hdr: bytes) -> ClcHeader:
    head = _HEADER_CACHE.get(hdr)
    if head is not None:
        return head
    ints, raws = _READ_HEADER(hdr.ljust(HEADER_LEN, b"\0"), 0, {})
    head = ClcHeader(
        eyecatcher=_EYECATCHERS.get(raws["eyecatcher"], "invalid"),
        type=ints["type"],
        length=ints["length"],
        version=ints["version"],
        flags=ints["flags"],
    )
    if len(_HEADER_CACHE) >= _HEADER_CACHE_MAX:
        _HEADER_CACHE.clear()
    _HEADER_CACHE[hdr] = head
    return head


def peek_header(buf: bytes, offset: int = 0) -> ClcHeader | None:
    """The CLC header at ``buf[offset:]``, or None unless 8 bytes starting with an eyecatcher."""
    if offset < 0 or offset + HEADER_LEN > len(buf):
        return None
    hdr = bytes(buf[offset : offset + HEADER_LEN])
    if hdr[:4] not in _EYECATCHERS:
        return None
    return _parse_header(hdr)


# --- small helpers -------------------------------------------------------------------


def _opt_peer(raws: L.Raws, name: str = "peer_id") -> PeerId | None:
    b = raws.get(name)
    return None if b is None else PeerId(b)


def _opt_gid(raws: L.Raws, name: str) -> str | None:
    b = raws.get(name)
    return None if b is None else format_gid(b)


def _opt_mac(raws: L.Raws, name: str) -> str | None:
    b = raws.get(name)
    return None if b is None else format_mac(b)


def _opt_str(raws: L.Raws, name: str) -> str | None:
    b = raws.get(name)
    return None if b is None else wire_string(b)


class _Ctx:
    """Decoding state of one message: available bytes, problems, reserved fields."""

    __slots__ = ("avail", "header", "length", "problems", "received", "reserved", "truncated")

    def __init__(self, data: bytes, header: ClcHeader) -> None:
        self.header = header
        self.length = length = header.length
        self.avail = data[:length] if length >= HEADER_LEN else data
        self.truncated = length >= HEADER_LEN and len(data) < length
        self.received = len(data)
        self.problems: list[str] = []
        self.reserved: dict[str, int | bytes] = {}

    def fits(self, start: int, size: int, what: str, index: int = -1) -> bool:
        """True if [start, start+size) is inside the message; notes a problem if not.

        ``what`` names the part, followed by ``index`` for repeated parts.
        """
        if start >= 0 and start + size <= len(self.avail):
            return True
        if not self.truncated:
            name = what if index < 0 else f"{what} {index}"
            self.problems.append(f"{name} at {start} beyond length {self.length}")
        return False

    def expect_length(self, expected: tuple[int, ...], what: str) -> None:
        if self.length not in expected:
            choices = " or ".join(str(e) for e in expected)
            self.problems.append(f"length {self.length}, {what} must be {choices}")


# A builder returns the message class and its fields; _decode adds header, raw bytes,
# problems and reserved fields and builds the message once.
Built = tuple[type[ClcMessage], dict[str, Any]]


# --- Proposal ---------------------------------------------------------------------------


def _build_proposal(ctx: _Ctx) -> Built:
    hdr = ctx.header
    flags = hdr.flags
    is_v2 = hdr.version >= 2
    typev1 = _SMC_TYPES[flags & 0x3]
    typev2 = _SMC_TYPES[(flags >> 2) & 0x3] if is_v2 else None
    if not is_v2 and flags & 0xC:
        ctx.reserved["reserved_7_bits"] = flags & 0xC
    p = ctx.problems
    avail = ctx.avail

    ints, raws = _READ_PROPOSAL_BASE(avail, 0, ctx.reserved)
    iparea = ints.get("iparea_offset")
    kw: dict[str, Any] = {
        "typev1": typev1,
        "typev2": typev2,
        "peer_id": _opt_peer(raws),
        "smcr_gid": _opt_gid(raws, "smcr_gid"),
        "smcr_mac": _opt_mac(raws, "smcr_mac"),
        "iparea_offset": iparea,
    }
    if not is_v2 and typev1 is SmcType.N:
        p.append("v1 Proposal offers no v1 path (type N)")
    if iparea is not None and iparea > MAX_IPAREA_OFFSET:
        p.append(f"iparea_offset {iparea} > {MAX_IPAREA_OFFSET}")
    if iparea is not None and iparea != L.SMCD_AREA_LEN and typev1 in (SmcType.D, SmcType.B):
        p.append(f"iparea_offset {iparea} with SMC-D v1 offered, must be {L.SMCD_AREA_LEN}")

    # SMC-D area: always in v2, in v1 only if iparea_offset covers it.
    v2_ext_offset: int | None = None
    if is_v2 or (iparea is not None and iparea >= L.SMCD_AREA_LEN):
        area, _ = _READ_SMCD_AREA(avail, L.PROPOSAL_BASE_LEN, ctx.reserved)
        kw["ism_gid"] = area.get("ism_gid")
        if is_v2:
            v2_ext_offset = area.get("v2_ext_offset")
            kw["ism_chid"] = area.get("ism_chid")
            kw["v2_ext_offset"] = v2_ext_offset
            kw["vendor_oui"] = area.get("vendor_oui")
            kw["vendor_options"] = area.get("vendor_options")
        else:  # v1: everything after the ISM GID is reserved (3.1.2)
            for name, reserved_name in _SMCD_AREA_V1_RESERVED:
                if name in area:
                    ctx.reserved[reserved_name] = area[name]

    # IP prefix area.
    ipv6_count: int | None = None
    if typev1 is not SmcType.N and iparea is not None:
        start = L.PROPOSAL_BASE_LEN + iparea
        if ctx.fits(start, L.IP_PREFIX_AREA_LEN, "IP prefix area"):
            pre, pre_raws = _READ_IP_PREFIX_AREA(avail, start, ctx.reserved)
            plen = pre["ipv4_prefix_len"]
            kw["ipv4_prefix"] = f"{format_ipv4(pre_raws.get('ipv4_subnet') or _ZERO_IPV4)}/{plen}"
            if plen > 32:
                p.append(f"IPv4 prefix length {plen} > 32")
            ipv6_count = pre["ipv6_prefix_count"]
            kw["ipv6_prefix_count"] = ipv6_count
            if ipv6_count > MAX_IPV6_PREFIXES:
                p.append(f"IPv6 prefix count {ipv6_count} > {MAX_IPV6_PREFIXES}")
            prefixes: list[str] = []
            for i in range(ipv6_count):
                at = start + L.IP_PREFIX_AREA_LEN + L.IPV6_PREFIX_LEN * i
                if not ctx.fits(at, L.IPV6_PREFIX_LEN, "IPv6 prefix", i):
                    break
                e, e_raws = _READ_IPV6_PREFIX(avail, at, ctx.reserved)
                elen = e["prefix_len"]
                prefixes.append(f"{format_gid(e_raws.get('prefix') or _ZERO_GID)}/{elen}")
                if elen > 128:
                    p.append(f"IPv6 prefix length {elen} > 128")
            kw["ipv6_prefixes"] = tuple(prefixes)

    # v2 extension.
    eid_count: int | None = None
    gid_count: int | None = None
    v2_ext_ok = True
    if typev2 is not None and typev2 is not SmcType.N:
        if v2_ext_offset == 0:
            p.append("v2 offered but v2_ext_offset is 0")
            v2_ext_ok = False
        elif v2_ext_offset is not None:
            if v2_ext_offset > MAX_V2_EXT_OFFSET:
                p.append(f"v2_ext_offset {v2_ext_offset} > {MAX_V2_EXT_OFFSET}")
            v2s = L.V2_EXT_OFFSET_BASE + v2_ext_offset
            if ctx.fits(v2s, L.V2_EXT_LEN, "v2 extension"):
                eid_count, gid_count = _read_v2_ext(ctx, v2s, typev2, kw)
            else:
                v2_ext_ok = False
        else:
            v2_ext_ok = False

    # Length check (3.1.8): Linux requires the canonical packing.
    if not ctx.truncated:
        if not is_v2:
            if iparea is not None and ipv6_count is not None and typev1 is not SmcType.N:
                exp = L.PROPOSAL_BASE_LEN + iparea + L.IP_PREFIX_AREA_LEN
                exp += L.IPV6_PREFIX_LEN * ipv6_count + TRAILER_LEN
                ctx.expect_length((exp,), f"v1 Proposal with {ipv6_count} IPv6 prefixes")
        elif v2_ext_ok and (typev1 is SmcType.N or ipv6_count is not None):
            exp = L.PROPOSAL_BASE_LEN + L.SMCD_AREA_LEN + TRAILER_LEN
            parts = []
            if typev1 is not SmcType.N:
                exp += L.IP_PREFIX_AREA_LEN + L.IPV6_PREFIX_LEN * (ipv6_count or 0)
                parts.append(f"{ipv6_count} IPv6 prefixes")
            if typev2 is not SmcType.N and eid_count is not None:
                exp += L.V2_EXT_LEN + L.EID_LEN * eid_count
                parts.append(f"{eid_count} UEIDs")
            if typev2 in (SmcType.D, SmcType.B) and gid_count is not None:
                exp += L.SMCD_V2_EXT_LEN + L.SMCD_V2_GID_ENTRY_LEN * gid_count
                parts.append(f"{gid_count} SMC-D v2 GIDs")
            if ctx.length != exp:
                what = "v2 Proposal" + (" with " + ", ".join(parts) if parts else "")
                ctx.expect_length((exp,), what)
    return Proposal, kw


def _read_v2_ext(ctx: _Ctx, v2s: int, typev2: SmcType, kw: dict[str, Any]) -> tuple[int, int]:
    """Read the v2 extension at ``v2s`` (and UEIDs, SMC-D v2 extension) into ``kw``."""
    p = ctx.problems
    avail = ctx.avail
    ext, ext_raws = _READ_V2_EXT(avail, v2s, ctx.reserved)
    eid_count = ext["eid_count"]
    gid_count = ext["ism_gid_count"]
    smcd_off = ext["smcd_v2_ext_offset"]
    rocev2 = ext_raws.get("rocev2_gid") or _ZERO_GID
    kw["eid_count"] = eid_count
    kw["ism_gid_count"] = gid_count
    kw["release"] = ext["release"]
    kw["seid_indicator"] = bool(ext["seid_indicator"])
    kw["smcd_v2_ext_offset"] = smcd_off
    kw["rocev2_gid"] = None if rocev2 == _ZERO_GID else format_gid(rocev2)
    kw["max_conns"] = ext["max_conns"]
    kw["max_links"] = ext["max_links"]
    kw["feature_mask"] = ext["feature_mask"]
    if eid_count > MAX_UEIDS:
        p.append(f"UEID count {eid_count} > {MAX_UEIDS}")
    eids: list[str] = []
    for i in range(eid_count):
        at = v2s + L.V2_EXT_LEN + L.EID_LEN * i
        if not ctx.fits(at, L.EID_LEN, "UEID", i):
            break
        eids.append(_opt_str(_READ_UEID(avail, at, ctx.reserved)[1], "eid") or "")
    kw["eids"] = tuple(eids)

    if typev2 is not SmcType.D and typev2 is not SmcType.B:
        return eid_count, gid_count
    if gid_count > MAX_SMCD_V2_GIDS:
        p.append(f"SMC-D v2 GID count {gid_count} > {MAX_SMCD_V2_GIDS}")
    # The counts are returned even if the SMC-D v2 extension cannot be located: Linux
    # computes the expected length from them all the same.
    if smcd_off == 0:
        p.append("SMC-D v2 offered but smcd_v2_ext_offset is 0")
        return eid_count, gid_count
    if smcd_off > MAX_SMCD_V2_EXT_OFFSET:
        p.append(f"smcd_v2_ext_offset {smcd_off} > {MAX_SMCD_V2_EXT_OFFSET}")
    ds = v2s + L.SMCD_V2_EXT_OFFSET_BASE + smcd_off
    if not ctx.fits(ds, L.SMCD_V2_EXT_LEN, "SMC-D v2 extension"):
        return eid_count, gid_count
    kw["seid"] = _opt_str(_READ_SMCD_V2_EXT(avail, ds, ctx.reserved)[1], "seid")
    raw_entries: list[tuple[int, int]] = []
    for i in range(gid_count):
        at = ds + L.SMCD_V2_EXT_LEN + L.SMCD_V2_GID_ENTRY_LEN * i
        if not ctx.fits(at, L.SMCD_V2_GID_ENTRY_LEN, "SMC-D v2 GID", i):
            break
        e, _ = _READ_SMCD_V2_GID_ENTRY(avail, at, ctx.reserved)
        raw_entries.append((e["gid"], e["chid"]))
    kw["smcd_v2_gids"] = join_smcd_v2_gids(raw_entries)
    return eid_count, gid_count


def join_smcd_v2_gids(entries: list[tuple[int, int]]) -> tuple[SmcdV2GidEntry, ...]:
    """Join Emulated-ISM pairs: consecutive entries with the same CHID in 0xFF00-0xFFFF."""
    out: list[SmcdV2GidEntry] = []
    i = 0
    while i < len(entries):
        gid, chid = entries[i]
        if is_emulated_ism_chid(chid):
            if i + 1 < len(entries) and entries[i + 1][1] == chid:
                out.append(SmcdV2GidEntry(SmcdGid(gid, entries[i + 1][0]), chid))
                i += 2
                continue
            out.append(SmcdV2GidEntry(SmcdGid(gid), chid, unpaired=True))
        else:
            out.append(SmcdV2GidEntry(SmcdGid(gid), chid))
        i += 1
    return tuple(out)


# --- Accept / Confirm ---------------------------------------------------------------------

class _AcPlan:
    """Everything about one kind of Accept/Confirm that does not depend on its bytes."""

    __slots__ = ("desc", "fce_by_length", "layout", "path", "read", "what", "what_fc")

    def __init__(self, cls: type[AcceptConfirm], is_v2: bool, path: SmcPath) -> None:
        self.path = path
        self.layout = layout = L.ACCEPT_CONFIRM_LAYOUTS[(is_v2, path)]
        self.read = _READ_ACCEPT_CONFIRM[(is_v2, path)]
        name = "Accept" if cls is Accept else "Confirm"
        self.desc = desc = f"{path.label} {'v2' if is_v2 else 'v1'} {name}"
        self.what = desc if not is_v2 else f"{desc} without first contact"
        self.what_fc = f"{desc} with first contact"
        self.fce_by_length = {layout.base_length + s: s for s in layout.fce_lengths}


# Keyed by (class, version >= 2, path is SMC-D).
_AC_PLANS: dict[tuple[type[AcceptConfirm], bool, bool], _AcPlan] = {
    (cls, is_v2, path is SmcPath.SMC_D): _AcPlan(cls, is_v2, path)
    for cls in (Accept, Confirm)
    for is_v2 in (False, True)
    for path in SmcPath
}


def _build_accept_confirm(ctx: _Ctx, cls: type[AcceptConfirm]) -> Built:
    hdr = ctx.header
    p = ctx.problems
    flags = hdr.flags
    path_bits = flags & 0x3
    if path_bits > 1:
        p.append(f"path bits {path_bits}, must be 0 (SMC-R) or 1 (SMC-D)")
    if flags & 0x4:
        ctx.reserved["reserved_7_bits"] = flags & 0x4
    first_contact = bool(flags & 0x8)
    is_v2 = hdr.version >= 2
    plan = _AC_PLANS[(cls, is_v2, path_bits == 1)]
    path = plan.path
    layout = plan.layout
    avail = ctx.avail
    reserved = ctx.reserved

    ints, raws = plan.read(avail, 0, reserved)

    smcr: SmcrLink | None = None
    smcd: SmcdLink | None = None
    get = ints.get
    if path is SmcPath.SMC_R:
        smcr = SmcrLink(
            peer_id=_opt_peer(raws),
            gid=_opt_gid(raws, "gid"),
            mac=_opt_mac(raws, "mac"),
            qp_number=get("qp_number"),
            rmb_rkey=get("rmb_rkey"),
            rmbe_index=get("rmbe_index"),
            rmbe_alert_token=get("rmbe_alert_token"),
            rmbe_size_code=get("rmbe_size"),
            qp_mtu_code=get("qp_mtu"),
            rmb_virtual_address=get("rmb_virtual_address"),
            psn=get("psn"),
        )
    else:
        smcd = SmcdLink(
            gid=get("gid"),
            gid_ext=get("gid_ext"),
            dmb_token=get("dmb_token"),
            dmbe_index=get("dmbe_index"),
            dmbe_size_code=get("dmbe_size"),
            link_id=get("link_id"),
            chid=get("chid"),
        )

    fce: FirstContactExtension | None = None
    gid_list_count: int | None = None
    gid_list: tuple[str, ...] | None = None
    expected: tuple[int, ...] = (layout.base_length,)
    what = plan.what
    if is_v2 and first_contact and layout.fce_offset is not None:
        what = plan.what_fc
        fce_at = layout.fce_offset
        base, base_raws = _READ_FCE_BASE(avail, fce_at, reserved)
        fce_size = _fce_size(ctx, plan, base.get("release"))
        v2x = _READ_FCE_V2X(avail, fce_at, reserved)[0] if fce_size > L.FCE_BASE_LEN else {}
        v2_direct = base.get("v2_direct")
        if path is SmcPath.SMC_D:
            # SMC-D has no v2_direct flag: bit 7 of FCE byte 0 is reserved.
            if v2_direct:
                reserved[f"reserved_{fce_at}_bits"] = 0x80
            direct = None
        else:
            direct = None if v2_direct is None else bool(v2_direct)
        fce = FirstContactExtension(
            size=fce_size,
            v2_direct=direct,
            os_type=base.get("os_type"),
            release=base.get("release"),
            hostname=_opt_str(base_raws, "hostname"),
            max_conns=v2x.get("max_conns"),
            max_links=v2x.get("max_links"),
            feature_mask=v2x.get("feature_mask"),
            vendor_options=v2x.get("vendor_options"),
        )
        expected = tuple(plan.fce_by_length)
        if cls is Confirm and layout.gid_list_offset is not None:
            gl = layout.gid_list_offset
            if ctx.fits(gl, L.GID_LIST_HEADER_LEN, "GID list"):
                gid_list_count = _READ_GID_LIST_HEADER(avail, gl, reserved)[0]["gid_count"]
                gids: list[str] = []
                for i in range(gid_list_count):
                    at = gl + L.GID_LIST_HEADER_LEN + L.GID_LIST_ENTRY_LEN * i
                    if not ctx.fits(at, L.GID_LIST_ENTRY_LEN, "GID list entry", i):
                        break
                    entry = _READ_GID_LIST_ENTRY(avail, at, reserved)[1].get("gid")
                    gids.append(format_gid(entry or _ZERO_GID))
                gid_list = tuple(gids)
                gl_end = gl + L.GID_LIST_HEADER_LEN + L.GID_LIST_ENTRY_LEN * gid_list_count
                expected = (gl_end + TRAILER_LEN,)
                what = f"{plan.desc} with first contact and {gid_list_count} GIDs"
            else:
                expected = ()
    if not ctx.truncated and expected and ctx.length not in expected:
        ctx.expect_length(expected, what)
    return cls, {
        "path": path.label,
        "path_bits": path_bits,
        "first_contact": first_contact,
        "smcr": smcr,
        "smcd": smcd,
        "eid": _opt_str(raws, "eid") if is_v2 else None,
        "fce": fce,
        "gid_list_count": gid_list_count,
        "gid_list": gid_list,
    }


def _fce_size(ctx: _Ctx, plan: _AcPlan, release: int | None) -> int:
    """FCE size: fixed for SMC-R; for SMC-D by length (114/130), else by the release nibble."""
    sizes = plan.layout.fce_lengths
    if len(sizes) == 1:
        return sizes[0]
    size = plan.fce_by_length.get(ctx.length)
    if size is None:
        return max(sizes) if (release or 0) >= 1 else min(sizes)
    if release is not None and (release >= 1) != (size > L.FCE_BASE_LEN):
        ctx.problems.append(
            f"length {ctx.length}, {plan.desc} first-contact extension of {size} bytes "
            f"does not match release {release}"
        )
    return size


# --- Decline ----------------------------------------------------------------------------------


def _build_decline(ctx: _Ctx) -> Built:
    hdr = ctx.header
    is_v2 = hdr.version >= 2
    read, exp = _READ_DECLINE[is_v2]
    ints, raws = read(ctx.avail, 0, ctx.reserved)
    if hdr.flags & 0x7:
        ctx.reserved["reserved_7_bits"] = hdr.flags & 0x7
    if not ctx.truncated:
        ctx.expect_length((exp,), f"Decline v{2 if is_v2 else 1}")
    supp: tuple[int, ...] | None = None
    if is_v2:
        supp = tuple(
            v
            for i in range(4)
            if (v := ints.get(f"supplemental_diagnosis_{i}")) is not None
        )
    diagnosis = ints.get("diagnosis")
    return Decline, {
        "diagnosis": 0 if diagnosis is None else diagnosis,
        "out_of_sync": bool(hdr.flags & 0x8),
        "peer_id": _opt_peer(raws),
        "os_type": ints.get("os_type"),
        "supplemental_diagnosis": supp,
    }


def _build_unknown(ctx: _Ctx) -> Built:
    if ctx.received > 4:  # the type byte was there
        ctx.problems.append(f"unknown message type {ctx.header.type}")
    return ClcMessage, {}


def _build_accept(ctx: _Ctx) -> Built:
    return _build_accept_confirm(ctx, Accept)


def _build_confirm(ctx: _Ctx) -> Built:
    return _build_accept_confirm(ctx, Confirm)


_BUILDERS: dict[int, Callable[[_Ctx], Built]] = {
    MessageType.PROPOSAL: _build_proposal,
    MessageType.ACCEPT: _build_accept,
    MessageType.CONFIRM: _build_confirm,
    MessageType.DECLINE: _build_decline,
}


# --- entry point -----------------------------------------------------------------------------


# Decoded messages by their bytes.  A host's Proposals and Declines repeat byte for byte
# (the same devices, prefixes, EIDs and codes, connection after connection); messages are
# immutable, so a repeated one is decoded once.  Bounded: the oldest entry goes first.
_DECODED: dict[bytes, ClcMessage] = {}
DECODE_CACHE_SIZE = 4096


def decode(data: bytes) -> ClcMessage:
    """Decode the bytes of ONE CLC message. Never raises; problems go to ``malformed``."""
    data = bytes(data)
    msg = _DECODED.get(data)
    if msg is not None:
        return msg
    try:
        msg = _decode(data)
    except Exception as exc:  # pragma: no cover - safety net, tests assert it is never hit
        return ClcMessage(
            header=ClcHeader("invalid", 0, 0, 0, 0),
            raw=data,
            malformed=f"decoder error: {type(exc).__name__}",
        )
    if len(_DECODED) >= DECODE_CACHE_SIZE:
        del _DECODED[next(iter(_DECODED))]
    _DECODED[data] = msg
    return msg


def _decode(data: bytes) -> ClcMessage:
    header = _parse_header(data[:HEADER_LEN])
    ctx = _Ctx(data, header)
    p = ctx.problems
    n = len(data)
    length = header.length
    if n < HEADER_LEN:
        p.append(f"truncated: {n} of {HEADER_LEN} header bytes")
    if header.eyecatcher == "invalid" and n > 0:
        p.append(f"bad eyecatcher {data[:4].hex()}")
    if n >= HEADER_LEN:
        if length < HEADER_LEN:
            p.append(f"length {length} < header length {HEADER_LEN}")
        elif n < length:
            p.append(f"truncated: {n} of {length} bytes")
        elif n > length:
            p.append(f"{n - length} bytes beyond length {length}")
        if length > MAX_MESSAGE_LEN:
            p.append(f"length {length} > {MAX_MESSAGE_LEN}")
        if header.version == 0:
            p.append("version 0")
        elif header.version > 2:
            p.append(f"version {header.version} unknown, decoded as v2")

    cls, kw = _BUILDERS.get(header.type, _build_unknown)(ctx)

    # Trailer (2.4): Linux checks it except for Declines.
    if n >= HEADER_LEN and not ctx.truncated and length >= HEADER_LEN + TRAILER_LEN:
        trailer = data[length - TRAILER_LEN : length]
        if trailer not in _EYECATCHERS:
            note = " (Linux does not check Decline trailers)" if cls is Decline else ""
            p.append(f"bad trailer {trailer.hex()}{note}")

    kw["header"] = header
    kw["raw"] = data
    kw["malformed"] = "; ".join(p) or None
    kw["reserved_fields"] = _sorted_reserved(ctx.reserved)
    return _new_message(cls, kw)


# Every field of each message class with its default, in field order (fields without a
# default - header, raw, the type's own required ones - are always given by the builder).
_FIELD_DEFAULTS: dict[type[ClcMessage], dict[str, Any]] = {
    cls: {f.name: None if f.default is MISSING else f.default for f in fields(cls)}
    for cls in (ClcMessage, Proposal, Accept, Confirm, Decline)
}


def _new_message(cls: type[ClcMessage], values: dict[str, Any]) -> ClcMessage:
    """``cls(**values)``, without the cost of a frozen dataclass's ``__init__``.

    The messages are frozen dataclasses without ``__post_init__``: their ``__init__``
    only sets each field (defaults for the ones not given), which here is done at once.
    """
    attributes = _FIELD_DEFAULTS[cls].copy()
    attributes.update(values)
    msg = object.__new__(cls)
    object.__setattr__(msg, "__dict__", attributes)
    return msg


# The order of reserved fields by offset, for each set of names seen (they are few).
_RESERVED_ORDER: dict[tuple[str, ...], tuple[str, ...]] = {}
_RESERVED_ORDER_MAX = 1024


def _sorted_reserved(reserved: dict[str, int | bytes]) -> dict[str, int | bytes]:
    names = tuple(reserved)
    order = _RESERVED_ORDER.get(names)
    if order is None:
        order = tuple(sorted(names, key=_rsv_key))
        if len(_RESERVED_ORDER) >= _RESERVED_ORDER_MAX:
            _RESERVED_ORDER.clear()
        _RESERVED_ORDER[names] = order
    return {name: reserved[name] for name in order}


def _rsv_key(name: str) -> tuple[int, str]:
    digits = name.removeprefix("reserved_").split("_")[0]
    return (int(digits) if digits.isdigit() else 0, name)

"""Decode the bytes of one CLC message into a typed message (pure; never raises).

The layouts come from :mod:`smctrace.clc.layouts`; this module selects them by the
header, converts raw values to typed ones and validates the message the way the spec
(sections 3.1.8, 3.8, 3.9) describes. Problems are collected into a short ``malformed``
text ("; "-separated); decoding always goes on as far as the bytes allow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

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


def _parse_header(hdr: bytes) -> ClcHeader:
    v = L.read_part(hdr.ljust(HEADER_LEN, b"\0"), 0, L.HEADER)
    eye = v["eyecatcher"]
    assert isinstance(eye, bytes)
    return ClcHeader(
        eyecatcher=_EYECATCHERS.get(eye, "invalid"),
        type=_int(v, "type"),
        length=_int(v, "length"),
        version=_int(v, "version"),
        flags=_int(v, "flags"),
    )


def peek_header(buf: bytes, offset: int = 0) -> ClcHeader | None:
    """The CLC header at ``buf[offset:]``, or None unless 8 bytes starting with an eyecatcher."""
    if offset < 0 or offset + HEADER_LEN > len(buf):
        return None
    hdr = bytes(buf[offset : offset + HEADER_LEN])
    if hdr[:4] not in _EYECATCHERS:
        return None
    return _parse_header(hdr)


# --- small helpers -------------------------------------------------------------------


def _int(values: dict[str, L.Value], name: str) -> int:
    v = values[name]
    assert isinstance(v, int)
    return v


def _opt_int(values: dict[str, L.Value], name: str) -> int | None:
    v = values.get(name)
    return v if isinstance(v, int) else None


def _opt_bytes(values: dict[str, L.Value], name: str) -> bytes | None:
    v = values.get(name)
    return v if isinstance(v, bytes) else None


def _opt_peer(values: dict[str, L.Value], name: str = "peer_id") -> PeerId | None:
    b = _opt_bytes(values, name)
    return None if b is None else PeerId(b)


def _opt_gid(values: dict[str, L.Value], name: str) -> str | None:
    b = _opt_bytes(values, name)
    return None if b is None else format_gid(b)


def _opt_mac(values: dict[str, L.Value], name: str) -> str | None:
    b = _opt_bytes(values, name)
    return None if b is None else format_mac(b)


def _opt_str(values: dict[str, L.Value], name: str) -> str | None:
    b = _opt_bytes(values, name)
    return None if b is None else wire_string(b)


class _Ctx:
    """Decoding state of one message: available bytes, problems, reserved fields."""

    def __init__(self, data: bytes, header: ClcHeader) -> None:
        self.header = header
        length = header.length
        self.avail = data[:length] if length >= HEADER_LEN else data
        self.truncated = length >= HEADER_LEN and len(data) < length
        self.received = len(data)
        self.problems: list[str] = []
        self.reserved: dict[str, int | bytes] = {}

    @property
    def length(self) -> int:
        return self.header.length

    def read(self, base: int, layout: L.Layout) -> dict[str, L.Value]:
        values = L.read_part(self.avail, base, layout)
        for name in [n for n in values if n.startswith("reserved_")]:
            self.reserved[name] = values.pop(name)
        return values

    def fits(self, start: int, size: int, what: str) -> bool:
        """True if [start, start+size) is inside the message; notes a problem if not."""
        if start >= 0 and start + size <= len(self.avail):
            return True
        if not self.truncated:
            self.problems.append(f"{what} at {start} beyond length {self.length}")
        return False

    def expect_length(self, expected: tuple[int, ...], what: str) -> None:
        if self.length not in expected:
            choices = " or ".join(str(e) for e in expected)
            self.problems.append(f"length {self.length}, {what} must be {choices}")


# --- Proposal ---------------------------------------------------------------------------


def _build_proposal(ctx: _Ctx) -> Proposal:
    hdr = ctx.header
    is_v2 = hdr.version >= 2
    typev1 = SmcType(hdr.flags & 0x3)
    typev2 = SmcType((hdr.flags >> 2) & 0x3) if is_v2 else None
    if not is_v2 and hdr.flags & 0xC:
        ctx.reserved["reserved_7_bits"] = hdr.flags & 0xC
    p = ctx.problems

    base = ctx.read(0, L.PROPOSAL_BASE)
    iparea = _opt_int(base, "iparea_offset")
    kw: dict[str, object] = {
        "typev1": typev1,
        "typev2": typev2,
        "peer_id": _opt_peer(base),
        "smcr_gid": _opt_gid(base, "smcr_gid"),
        "smcr_mac": _opt_mac(base, "smcr_mac"),
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
        area = ctx.read(L.PROPOSAL_BASE_LEN, L.SMCD_AREA)
        kw["ism_gid"] = _opt_int(area, "ism_gid")
        if is_v2:
            v2_ext_offset = _opt_int(area, "v2_ext_offset")
            kw.update(
                ism_chid=_opt_int(area, "ism_chid"),
                v2_ext_offset=v2_ext_offset,
                vendor_oui=_opt_int(area, "vendor_oui"),
                vendor_options=_opt_int(area, "vendor_options"),
            )
        else:  # v1: everything after the ISM GID is reserved (3.1.2)
            for f in L.SMCD_AREA[1:]:
                at = L.PROPOSAL_BASE_LEN + f.offset
                if f.name in area:
                    ctx.reserved[f"reserved_{at}"] = area[f.name]

    # IP prefix area.
    ipv6_count: int | None = None
    if typev1 is not SmcType.N and iparea is not None:
        start = L.PROPOSAL_BASE_LEN + iparea
        if ctx.fits(start, L.IP_PREFIX_AREA_LEN, "IP prefix area"):
            pre = ctx.read(start, L.IP_PREFIX_AREA)
            plen = _int(pre, "ipv4_prefix_len")
            kw["ipv4_prefix"] = f"{format_ipv4(_opt_bytes(pre, 'ipv4_subnet') or bytes(4))}/{plen}"
            if plen > 32:
                p.append(f"IPv4 prefix length {plen} > 32")
            ipv6_count = _int(pre, "ipv6_prefix_count")
            kw["ipv6_prefix_count"] = ipv6_count
            if ipv6_count > MAX_IPV6_PREFIXES:
                p.append(f"IPv6 prefix count {ipv6_count} > {MAX_IPV6_PREFIXES}")
            prefixes: list[str] = []
            for i in range(ipv6_count):
                at = start + L.IP_PREFIX_AREA_LEN + L.IPV6_PREFIX_LEN * i
                if not ctx.fits(at, L.IPV6_PREFIX_LEN, f"IPv6 prefix {i}"):
                    break
                e = ctx.read(at, L.IPV6_PREFIX)
                elen = _int(e, "prefix_len")
                prefixes.append(f"{format_gid(_opt_bytes(e, 'prefix') or bytes(16))}/{elen}")
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
            what = "v2 Proposal" + (" with " + ", ".join(parts) if parts else "")
            ctx.expect_length((exp,), what)
    return Proposal(header=hdr, raw=b"", **kw)  # type: ignore[arg-type]


def _read_v2_ext(ctx: _Ctx, v2s: int, typev2: SmcType, kw: dict[str, object]) -> tuple[int, int]:
    """Read the v2 extension at ``v2s`` (and UEIDs, SMC-D v2 extension) into ``kw``."""
    p = ctx.problems
    ext = ctx.read(v2s, L.V2_EXT)
    eid_count = _int(ext, "eid_count")
    gid_count = _int(ext, "ism_gid_count")
    smcd_off = _int(ext, "smcd_v2_ext_offset")
    rocev2 = _opt_bytes(ext, "rocev2_gid") or bytes(16)
    kw.update(
        eid_count=eid_count,
        ism_gid_count=gid_count,
        release=_int(ext, "release"),
        seid_indicator=bool(_int(ext, "seid_indicator")),
        smcd_v2_ext_offset=smcd_off,
        rocev2_gid=format_gid(rocev2) if any(rocev2) else None,
        max_conns=_int(ext, "max_conns"),
        max_links=_int(ext, "max_links"),
        feature_mask=_int(ext, "feature_mask"),
    )
    if eid_count > MAX_UEIDS:
        p.append(f"UEID count {eid_count} > {MAX_UEIDS}")
    eids: list[str] = []
    for i in range(eid_count):
        at = v2s + L.V2_EXT_LEN + L.EID_LEN * i
        if not ctx.fits(at, L.EID_LEN, f"UEID {i}"):
            break
        eids.append(_opt_str(ctx.read(at, L.UEID), "eid") or "")
    kw["eids"] = tuple(eids)

    if typev2 not in (SmcType.D, SmcType.B):
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
    kw["seid"] = _opt_str(ctx.read(ds, L.SMCD_V2_EXT), "seid")
    raw_entries: list[tuple[int, int]] = []
    for i in range(gid_count):
        at = ds + L.SMCD_V2_EXT_LEN + L.SMCD_V2_GID_ENTRY_LEN * i
        if not ctx.fits(at, L.SMCD_V2_GID_ENTRY_LEN, f"SMC-D v2 GID {i}"):
            break
        e = ctx.read(at, L.SMCD_V2_GID_ENTRY)
        raw_entries.append((_int(e, "gid"), _int(e, "chid")))
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


def _build_accept_confirm(ctx: _Ctx, cls: type[AcceptConfirm]) -> AcceptConfirm:
    hdr = ctx.header
    p = ctx.problems
    name = "Accept" if cls is Accept else "Confirm"
    path_bits = hdr.flags & 0x3
    path = SmcPath.SMC_D if path_bits == 1 else SmcPath.SMC_R
    if path_bits > 1:
        p.append(f"path bits {path_bits}, must be 0 (SMC-R) or 1 (SMC-D)")
    if hdr.flags & 0x4:
        ctx.reserved["reserved_7_bits"] = hdr.flags & 0x4
    first_contact = bool(hdr.flags & 0x8)
    is_v2 = hdr.version >= 2
    layout = L.ACCEPT_CONFIRM_LAYOUTS[(is_v2, path)]
    vers = "v2" if is_v2 else "v1"
    desc = f"{path.label} {vers} {name}"

    values: dict[str, L.Value] = {}
    for part in layout.parts:
        values.update(ctx.read(0, part))

    smcr: SmcrLink | None = None
    smcd: SmcdLink | None = None
    if path is SmcPath.SMC_R:
        smcr = SmcrLink(
            peer_id=_opt_peer(values),
            gid=_opt_gid(values, "gid"),
            mac=_opt_mac(values, "mac"),
            qp_number=_opt_int(values, "qp_number"),
            rmb_rkey=_opt_int(values, "rmb_rkey"),
            rmbe_index=_opt_int(values, "rmbe_index"),
            rmbe_alert_token=_opt_int(values, "rmbe_alert_token"),
            rmbe_size_code=_opt_int(values, "rmbe_size"),
            qp_mtu_code=_opt_int(values, "qp_mtu"),
            rmb_virtual_address=_opt_int(values, "rmb_virtual_address"),
            psn=_opt_int(values, "psn"),
        )
    else:
        smcd = SmcdLink(
            gid=_opt_int(values, "gid"),
            gid_ext=_opt_int(values, "gid_ext"),
            dmb_token=_opt_int(values, "dmb_token"),
            dmbe_index=_opt_int(values, "dmbe_index"),
            dmbe_size_code=_opt_int(values, "dmbe_size"),
            link_id=_opt_int(values, "link_id"),
            chid=_opt_int(values, "chid"),
        )

    fce: FirstContactExtension | None = None
    gid_list_count: int | None = None
    gid_list: tuple[str, ...] | None = None
    expected: tuple[int, ...] = (layout.base_length,)
    what = desc if not is_v2 else f"{desc} without first contact"
    if is_v2 and first_contact and layout.fce_offset is not None:
        what = f"{desc} with first contact"
        fce_at = layout.fce_offset
        fce_size = _fce_size(ctx, layout, fce_at, desc)
        base = ctx.read(fce_at, L.FCE_BASE)
        v2x = ctx.read(fce_at, L.FCE_V2X) if fce_size > L.FCE_BASE_LEN else {}
        fce = FirstContactExtension(
            size=fce_size,
            v2_direct=None if "v2_direct" not in base else bool(_int(base, "v2_direct")),
            os_type=_opt_int(base, "os_type"),
            release=_opt_int(base, "release"),
            hostname=_opt_str(base, "hostname"),
            max_conns=_opt_int(v2x, "max_conns"),
            max_links=_opt_int(v2x, "max_links"),
            feature_mask=_opt_int(v2x, "feature_mask"),
            vendor_options=_opt_int(v2x, "vendor_options"),
        )
        if path is SmcPath.SMC_D:
            # SMC-D has no v2_direct flag: bit 7 of FCE byte 0 is reserved.
            if fce.v2_direct:
                ctx.reserved[f"reserved_{fce_at}_bits"] = 0x80
            fce = replace(fce, v2_direct=None)
        expected = tuple(layout.base_length + s for s in layout.fce_lengths)
        if cls is Confirm and layout.gid_list_offset is not None:
            gl = layout.gid_list_offset
            if ctx.fits(gl, L.GID_LIST_HEADER_LEN, "GID list"):
                gid_list_count = _int(ctx.read(gl, L.GID_LIST_HEADER), "gid_count")
                gids: list[str] = []
                for i in range(gid_list_count):
                    at = gl + L.GID_LIST_HEADER_LEN + L.GID_LIST_ENTRY_LEN * i
                    if not ctx.fits(at, L.GID_LIST_ENTRY_LEN, f"GID list entry {i}"):
                        break
                    entry = _opt_bytes(ctx.read(at, L.GID_LIST_ENTRY), "gid")
                    gids.append(format_gid(entry or bytes(16)))
                gid_list = tuple(gids)
                gl_end = gl + L.GID_LIST_HEADER_LEN + L.GID_LIST_ENTRY_LEN * gid_list_count
                expected = (gl_end + TRAILER_LEN,)
                what = f"{desc} with first contact and {gid_list_count} GIDs"
            else:
                expected = ()
    if not ctx.truncated and expected:
        ctx.expect_length(expected, what)
    return cls(
        header=hdr,
        raw=b"",
        path=path.label,
        path_bits=path_bits,
        first_contact=first_contact,
        smcr=smcr,
        smcd=smcd,
        eid=_opt_str(values, "eid") if is_v2 else None,
        fce=fce,
        gid_list_count=gid_list_count,
        gid_list=gid_list,
    )


def _fce_size(ctx: _Ctx, layout: L.AcceptConfirmLayout, fce_at: int, desc: str) -> int:
    """FCE size: fixed for SMC-R; for SMC-D by length (114/130), else by the release nibble."""
    sizes = layout.fce_lengths
    if len(sizes) == 1:
        return sizes[0]
    by_length = {layout.base_length + s: s for s in sizes}
    release = _opt_int(ctx.read(fce_at, L.FCE_BASE), "release")
    size = by_length.get(ctx.length)
    if size is None:
        return max(sizes) if (release or 0) >= 1 else min(sizes)
    if release is not None and (release >= 1) != (size > L.FCE_BASE_LEN):
        ctx.problems.append(
            f"length {ctx.length}, {desc} first-contact extension of {size} bytes "
            f"does not match release {release}"
        )
    return size


# --- Decline ----------------------------------------------------------------------------------


def _build_decline(ctx: _Ctx) -> Decline:
    hdr = ctx.header
    is_v2 = hdr.version >= 2
    parts, exp = L.DECLINE_LAYOUTS[is_v2]
    values: dict[str, L.Value] = {}
    for part in parts:
        values.update(ctx.read(0, part))
    if hdr.flags & 0x7:
        ctx.reserved["reserved_7_bits"] = hdr.flags & 0x7
    if not ctx.truncated:
        ctx.expect_length((exp,), f"Decline v{2 if is_v2 else 1}")
    supp: tuple[int, ...] | None = None
    if is_v2:
        supp = tuple(
            v
            for i in range(4)
            if (v := _opt_int(values, f"supplemental_diagnosis_{i}")) is not None
        )
    diagnosis = _opt_int(values, "diagnosis")
    return Decline(
        header=hdr,
        raw=b"",
        diagnosis=0 if diagnosis is None else diagnosis,
        out_of_sync=bool(hdr.flags & 0x8),
        peer_id=_opt_peer(values),
        os_type=_opt_int(values, "os_type"),
        supplemental_diagnosis=supp,
    )


def _build_unknown(ctx: _Ctx) -> ClcMessage:
    if ctx.received > 4:  # the type byte was there
        ctx.problems.append(f"unknown message type {ctx.header.type}")
    return ClcMessage(header=ctx.header, raw=b"")


_BUILDERS: dict[int, Callable[[_Ctx], ClcMessage]] = {
    MessageType.PROPOSAL: _build_proposal,
    MessageType.ACCEPT: lambda ctx: _build_accept_confirm(ctx, Accept),
    MessageType.CONFIRM: lambda ctx: _build_accept_confirm(ctx, Confirm),
    MessageType.DECLINE: _build_decline,
}


# --- entry point -----------------------------------------------------------------------------


def decode(data: bytes) -> ClcMessage:
    """Decode the bytes of ONE CLC message. Never raises; problems go to ``malformed``."""
    try:
        data = bytes(data)
        return _decode(data)
    except Exception as exc:  # pragma: no cover - safety net, tests assert it is never hit
        return ClcMessage(
            header=ClcHeader("invalid", 0, 0, 0, 0),
            raw=data if isinstance(data, bytes) else b"",
            malformed=f"decoder error: {type(exc).__name__}",
        )


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

    builder = _BUILDERS.get(header.type, _build_unknown)
    msg = builder(ctx)

    # Trailer (2.4): Linux checks it except for Declines.
    if n >= HEADER_LEN and not ctx.truncated and length >= HEADER_LEN + TRAILER_LEN:
        trailer = data[length - TRAILER_LEN : length]
        if trailer not in _EYECATCHERS:
            note = " (Linux does not check Decline trailers)" if isinstance(msg, Decline) else ""
            p.append(f"bad trailer {trailer.hex()}{note}")

    return _finish(msg, data, ctx)


def _finish(msg: ClcMessage, data: bytes, ctx: _Ctx) -> ClcMessage:
    """Attach raw bytes, problems and reserved fields to the built message."""
    return replace(
        msg,
        raw=data,
        malformed="; ".join(ctx.problems) or None,
        reserved_fields=dict(sorted(ctx.reserved.items(), key=_rsv_key)),
    )


def _rsv_key(item: tuple[str, int | bytes]) -> tuple[int, str]:
    name = item[0]
    digits = name.removeprefix("reserved_").split("_")[0]
    return (int(digits) if digits.isdigit() else 0, name)

"""One-line human text for a CLC message, and a tcpdump -X style hex dump.

The line is in the spirit of hwipl's smc-clc, but reads as prose:

    Proposal v2 (232 bytes): offers v1 SMC-R+SMC-D, v2 SMC-R+SMC-D, release 2.1, ...
    Accept SMC-D v2 (130 bytes): first contact, GID 0x1122..., CHID 0xffff, ...
    Decline v2 (44 bytes): NOUEID 0x03030008 (peer sent no UEID), OS Linux

A malformed message ends with `` [malformed: reason]``. All wire strings were made
safe by the decoder (:func:`smctrace.clc.safe_text`), so the line never carries control
characters.
"""

from __future__ import annotations

from functools import lru_cache

from smctrace.clc import (
    AcceptConfirm,
    ClcMessage,
    Decline,
    Proposal,
    SmcType,
    describe_decline,
    os_type_name,
)
from smctrace.clc.codes import FEATURE_NAMES, release_name
from smctrace.clc.values import hex_bytes, hex_int


def _size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n} bytes"


def _offer(t: SmcType | None) -> str:
    if t is None:
        return "-"
    return "+".join(t.paths) or "none"


@lru_cache(maxsize=256)  # a handful of masks recur in every handshake
def _features(mask: int) -> str:
    names = [name for bit, name in FEATURE_NAMES.items() if mask & bit]
    unknown = mask & ~sum(FEATURE_NAMES)
    if unknown:
        names.append(hex_int(unknown, 2))
    return f"features {hex_int(mask, 2)}" + (f" ({', '.join(names)})" if names else "")



def _v21_limits(max_conns: int | None, max_links: int | None,
                feature_mask: int | None) -> list[str]:
    """The v2.1 negotiation values (Proposal v2 extension, first-contact extension)."""
    parts = []
    if max_conns:
        parts.append(f"max conns {max_conns}")
    if max_links:
        parts.append(f"max links {max_links}")
    if feature_mask:
        parts.append(_features(feature_mask))
    return parts

def _proposal(m: Proposal) -> list[str]:
    parts = [f"offers v1 {_offer(m.typev1)}"]
    if m.typev2 is not None:
        parts[0] += f", v2 {_offer(m.typev2)}"
    if m.release is not None:
        parts.append(f"release {release_name(m.release)}")
    if m.peer_id is not None and not m.peer_id.is_zero:
        parts.append(f"peer {m.peer_id}")
    smcr_v1 = m.typev1 in (SmcType.R, SmcType.B)
    if smcr_v1 and m.smcr_gid is not None:
        parts.append(f"GID {m.smcr_gid}")
    if smcr_v1 and m.smcr_mac is not None:
        parts.append(f"MAC {m.smcr_mac}")
    if m.ism_gid:
        parts.append(f"ISM GID {hex_int(m.ism_gid, 8)}")
    if m.ism_chid:
        parts.append(f"CHID {hex_int(m.ism_chid, 2)}")
    if m.ipv4_prefix is not None and m.ipv4_prefix != "0.0.0.0/0":
        parts.append(f"IPv4 {m.ipv4_prefix}")
    if m.ipv6_prefixes:
        parts.append(f"IPv6 [{', '.join(m.ipv6_prefixes)}]")
    if m.rocev2_gid is not None:
        parts.append(f"RoCEv2 GID {m.rocev2_gid}")
    parts += _v21_limits(m.max_conns, m.max_links, m.feature_mask)
    if m.has_v2_extension:
        parts.append(f"UEIDs [{', '.join(m.eids)}]")
    if m.seid_indicator:
        parts.append("SEID indicated")
    if m.seid is not None:
        parts.append(f"SEID {m.seid}")
    if m.smcd_v2_gids:
        gids = ", ".join(f"{g.gid} CHID {hex_int(g.chid, 2)}" for g in m.smcd_v2_gids)
        parts.append(f"SMC-D v2 GIDs [{gids}]")
    if m.vendor_oui:
        parts.append(f"vendor OUI {hex_int(m.vendor_oui, 3)}")
    if m.vendor_options:
        parts.append(f"vendor options {hex_int(m.vendor_options, 5)}")
    return parts


def _accept_confirm(m: AcceptConfirm) -> list[str]:
    parts = ["first contact" if m.first_contact else "link group reused"]
    if m.smcr is not None:
        r = m.smcr
        if r.peer_id is not None:
            parts.append(f"peer {r.peer_id}")
        if r.gid is not None:
            parts.append(f"GID {r.gid}")
        if r.mac is not None:
            parts.append(f"MAC {r.mac}")
        if r.qp_number is not None:
            parts.append(f"QPN {r.qp_number}")
        if r.rmb_rkey is not None:
            parts.append(f"rkey {hex_int(r.rmb_rkey, 4)}")
        if r.rmbe_index is not None:
            parts.append(f"RMBE index {r.rmbe_index}")
        if r.rmbe_alert_token is not None:
            parts.append(f"token {hex_int(r.rmbe_alert_token, 4)}")
        if r.rmbe_size is not None:
            parts.append(f"RMBE size {_size(r.rmbe_size)}")
        if r.qp_mtu_code is not None:
            mtu = r.qp_mtu
            parts.append(f"MTU {mtu}" if mtu is not None else f"MTU invalid ({r.qp_mtu_code})")
        if r.rmb_virtual_address is not None:
            parts.append(f"VA {hex_int(r.rmb_virtual_address, 8)}")
        if r.psn is not None:
            parts.append(f"PSN {hex_int(r.psn, 3)}")
    if m.smcd is not None:
        d = m.smcd
        full_gid = d.full_gid
        if full_gid is not None:
            parts.append(f"GID {full_gid}")
        if d.chid is not None:
            parts.append(f"CHID {hex_int(d.chid, 2)}")
        if d.dmb_token is not None:
            parts.append(f"DMB token {hex_int(d.dmb_token, 8)}")
        if d.dmbe_index is not None:
            parts.append(f"DMBE index {d.dmbe_index}")
        if d.dmbe_size is not None:
            parts.append(f"DMBE size {_size(d.dmbe_size)}")
        if d.link_id is not None:
            parts.append(f"link ID {hex_int(d.link_id, 4)}")
    if m.eid is not None:
        parts.append(f"EID {m.eid}")
    f = m.fce
    if f is not None:
        if f.os_type is not None:
            parts.append(f"OS {os_type_name(f.os_type) or 'unset'}")
        if f.release is not None:
            parts.append(f"release {release_name(f.release)}")
        if f.hostname is not None:
            parts.append(f"host {f.hostname}")
        if f.v2_direct is not None:
            parts.append("direct" if f.v2_direct else "indirect")
        parts += _v21_limits(f.max_conns, f.max_links, f.feature_mask)
        if f.vendor_options:
            parts.append(f"vendor options {hex_int(f.vendor_options, 4)}")
    if m.gid_list is not None:
        parts.append(f"GID list [{', '.join(m.gid_list)}]")
    return parts


def _decline(m: Decline) -> list[str]:
    d = describe_decline(m.diagnosis)
    parts = [f"{d['name']} {d['hex']} ({d['text']})"]
    if m.out_of_sync:
        parts.append("out of sync")
    if m.os_type:
        parts.append(f"OS {os_type_name(m.os_type)}")
    if m.peer_id is not None and not m.peer_id.is_zero:
        parts.append(f"peer {m.peer_id}")
    extra = [c for c in (m.supplemental_diagnosis or ()) if c]
    if extra:
        names = ", ".join(
            f"{describe_decline(c)['name']} {describe_decline(c)['hex']}" for c in extra
        )
        parts.append(f"supplemental [{names}]")
    return parts


def format_message(msg: ClcMessage, reserved: bool = False) -> str:
    """One line describing ``msg``; with ``reserved`` also its non-zero reserved fields."""
    version = f"v{msg.version}"
    size = f"({msg.length} bytes)"
    parts: list[str]
    if isinstance(msg, Proposal):
        head = f"Proposal {version} {size}"
        parts = _proposal(msg)
    elif isinstance(msg, AcceptConfirm):
        head = f"{msg.kind.capitalize()} {msg.path} {version} {size}"
        parts = _accept_confirm(msg)
    elif isinstance(msg, Decline):
        head = f"Decline {version} {size}"
        parts = _decline(msg)
    else:
        head = f"Unknown type {msg.header.type} {version} {size}"
        parts = []
    if reserved:
        nonzero = [
            f"{name}={hex_bytes(v) if isinstance(v, bytes) else hex(v)}"
            for name, v in msg.reserved_fields.items()
            if (any(v) if isinstance(v, bytes) else v)
        ]
        parts.append(f"reserved [{', '.join(nonzero)}]" if nonzero else "reserved all zero")
    line = head + (": " + ", ".join(parts) if parts else "")
    if msg.malformed:
        line += f" [malformed: {msg.malformed}]"
    return line


def hexdump(data: bytes) -> str:
    """tcpdump -X style dump: tab-indented lines of offset, 16 bytes hex, ASCII."""
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        words = " ".join(chunk[i : i + 2].hex() for i in range(0, len(chunk), 2))
        text = "".join(chr(c) if 0x20 <= c <= 0x7E else "." for c in chunk)
        lines.append(f"\t0x{off:04x}:  {words:<39}  {text}")
    return "\n".join(lines)

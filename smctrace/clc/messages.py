"""Typed CLC messages: what :func:`smctrace.clc.decode` returns.

Every field that may be missing (the message was truncated, or the part is not
present for this type/version/path) is ``None``. ``fields()`` returns a JSON-able dict
using snake_case names of the spec; representations are described in
:mod:`smctrace.clc.values`. Reserved fields appear only with ``reserved=True``, as
``reserved_<offset>`` hex strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from smctrace.clc.codes import (
    SMC_TYPE_NAMES,
    EyecatcherName,
    MessageType,
    SmcPathName,
    SmcType,
    buffer_size_bytes,
    describe_decline,
    os_type_name,
    qp_mtu_bytes,
)
from smctrace.clc.values import PeerId, SmcdGid, hex_bytes, hex_int

MessageKind = Literal["proposal", "accept", "confirm", "decline", "unknown"]
JsonValue = Any  # str | int | bool | None | list | dict (kept loose for ergonomic use)


@dataclass(frozen=True, slots=True)
class ClcHeader:
    """The 8-byte CLC header. ``flags`` is the low nibble of byte 7 (below the version)."""

    eyecatcher: EyecatcherName
    type: int
    length: int
    version: int
    flags: int

    @property
    def type_name(self) -> str:
        if self.type in MessageType._value2member_map_:
            return MessageType(self.type).name.capitalize()
        return f"Unknown({self.type})"


def _opt_hex(value: int | None, size: int) -> str | None:
    return None if value is None else hex_int(value, size)


@dataclass(frozen=True, kw_only=True)
class ClcMessage:
    """Base of all CLC messages; an unknown type decodes to a plain ClcMessage."""

    kind: ClassVar[MessageKind] = "unknown"
    header: ClcHeader
    raw: bytes
    malformed: str | None = None
    reserved_fields: dict[str, int | bytes] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return self.header.version

    @property
    def length(self) -> int:
        return self.header.length

    @property
    def eyecatcher(self) -> EyecatcherName:
        return self.header.eyecatcher

    def fields(self, reserved: bool = False) -> dict[str, JsonValue]:
        """The decoded body fields (header data - type, version, length, eyecatcher - and
        ``malformed`` are attributes of the message, not repeated here)."""
        out = self._body_fields()
        if reserved:
            for name, value in self.reserved_fields.items():
                out[name] = hex_bytes(value) if isinstance(value, bytes) else f"0x{value:x}"
        return out

    def _body_fields(self) -> dict[str, JsonValue]:
        return {"type_code": self.header.type}


@dataclass(frozen=True, slots=True)
class SmcdV2GidEntry:
    """One offered SMC-D v2 device; Emulated-ISM pairs are joined (gid.gid_ext set)."""

    gid: SmcdGid
    chid: int
    unpaired: bool = False  # emulated CHID without a following same-CHID entry

    def to_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"gid": str(self.gid), "chid": hex_int(self.chid, 2)}
        if self.unpaired:
            out["unpaired"] = True
        return out


@dataclass(frozen=True, kw_only=True)
class Proposal(ClcMessage):
    """CLC Proposal (type 1), v1 or v2."""

    kind: ClassVar[MessageKind] = "proposal"
    typev1: SmcType
    typev2: SmcType | None = None  # None for v1 Proposals
    peer_id: PeerId | None = None
    smcr_gid: str | None = None
    smcr_mac: str | None = None
    iparea_offset: int | None = None
    # SMC-D area (3.1.2), None if absent
    ism_gid: int | None = None
    ism_chid: int | None = None
    v2_ext_offset: int | None = None
    vendor_oui: int | None = None
    vendor_options: int | None = None
    # IP prefix area (3.1.3)
    ipv4_prefix: str | None = None
    ipv6_prefix_count: int | None = None
    ipv6_prefixes: tuple[str, ...] = ()
    # v2 extension (3.1.4)
    eid_count: int | None = None
    ism_gid_count: int | None = None
    release: int | None = None
    seid_indicator: bool | None = None
    smcd_v2_ext_offset: int | None = None
    rocev2_gid: str | None = None
    max_conns: int | None = None
    max_links: int | None = None
    feature_mask: int | None = None
    eids: tuple[str, ...] = ()
    # SMC-D v2 extension (3.1.5)
    seid: str | None = None
    smcd_v2_gids: tuple[SmcdV2GidEntry, ...] = ()

    @property
    def offered(self) -> dict[str, list[SmcPathName]]:
        """Offered paths per version, e.g. {"v1": ["SMC-R"], "v2": ["SMC-R", "SMC-D"]}."""
        out: dict[str, list[SmcPathName]] = {"v1": self.typev1.paths}
        if self.typev2 is not None:
            out["v2"] = self.typev2.paths
        return out

    @property
    def has_v2_extension(self) -> bool:
        return self.eid_count is not None

    def _body_fields(self) -> dict[str, JsonValue]:
        peer = self.peer_id
        typev2 = self.typev2
        return {
            "typev1": SMC_TYPE_NAMES[self.typev1],
            "typev2": None if typev2 is None else SMC_TYPE_NAMES[typev2],
            "offered": self.offered,
            "peer_id": None if peer is None else str(peer),
            "peer_id_hex": None if peer is None else peer.hex,
            "smcr_gid": self.smcr_gid,
            "smcr_mac": self.smcr_mac,
            "iparea_offset": self.iparea_offset,
            "ism_gid": _opt_hex(self.ism_gid, 8),
            "ism_chid": _opt_hex(self.ism_chid, 2),
            "v2_ext_offset": self.v2_ext_offset,
            "vendor_oui": _opt_hex(self.vendor_oui, 3),
            "vendor_options": _opt_hex(self.vendor_options, 5),
            "ipv4_prefix": self.ipv4_prefix,
            "ipv6_prefix_count": self.ipv6_prefix_count,
            "ipv6_prefixes": list(self.ipv6_prefixes),
            "eid_count": self.eid_count,
            "ism_gid_count": self.ism_gid_count,
            "release": self.release,
            "seid_indicator": self.seid_indicator,
            "smcd_v2_ext_offset": self.smcd_v2_ext_offset,
            "rocev2_gid": self.rocev2_gid,
            "max_conns": self.max_conns,
            "max_links": self.max_links,
            "feature_mask": _opt_hex(self.feature_mask, 2),
            "eids": list(self.eids),
            "seid": self.seid,
            "smcd_v2_gids": [g.to_json() for g in self.smcd_v2_gids],
        }


@dataclass(frozen=True, slots=True)
class SmcrLink:
    """SMC-R part of an Accept/Confirm (3.2): the sender's RoCE link parameters."""

    peer_id: PeerId | None = None
    gid: str | None = None
    mac: str | None = None
    qp_number: int | None = None
    rmb_rkey: int | None = None
    rmbe_index: int | None = None
    rmbe_alert_token: int | None = None
    rmbe_size_code: int | None = None
    qp_mtu_code: int | None = None
    rmb_virtual_address: int | None = None
    psn: int | None = None

    @property
    def rmbe_size(self) -> int | None:
        return None if self.rmbe_size_code is None else buffer_size_bytes(self.rmbe_size_code)

    @property
    def qp_mtu(self) -> int | None:
        return None if self.qp_mtu_code is None else qp_mtu_bytes(self.qp_mtu_code)


@dataclass(frozen=True, slots=True)
class SmcdLink:
    """SMC-D part of an Accept/Confirm (3.3, 3.5)."""

    gid: int | None = None
    gid_ext: int | None = None  # v2 only
    dmb_token: int | None = None
    dmbe_index: int | None = None
    dmbe_size_code: int | None = None
    link_id: int | None = None
    chid: int | None = None  # v2 only

    @property
    def full_gid(self) -> SmcdGid | None:
        """The GID, 128-bit when gid_ext is non-zero (Emulated-ISM)."""
        if self.gid is None:
            return None
        return SmcdGid(self.gid, self.gid_ext if self.gid_ext else None)

    @property
    def dmbe_size(self) -> int | None:
        return None if self.dmbe_size_code is None else buffer_size_bytes(self.dmbe_size_code)


@dataclass(frozen=True, slots=True)
class FirstContactExtension:
    """First-contact extension of v2 Accept/Confirm (3.6); v2x fields None if absent."""

    size: int
    v2_direct: bool | None = None
    os_type: int | None = None
    release: int | None = None
    hostname: str | None = None
    max_conns: int | None = None
    max_links: int | None = None
    feature_mask: int | None = None
    vendor_options: int | None = None


@dataclass(frozen=True, kw_only=True)
class AcceptConfirm(ClcMessage):
    """Common layout of Accept and Confirm."""

    path: SmcPathName
    path_bits: int
    first_contact: bool
    smcr: SmcrLink | None = None
    smcd: SmcdLink | None = None
    eid: str | None = None  # v2 negotiated EID
    fce: FirstContactExtension | None = None
    gid_list_count: int | None = None  # Confirm SMC-R v2 first contact
    gid_list: tuple[str, ...] | None = None

    @property
    def release(self) -> int | None:
        return None if self.fce is None else self.fce.release

    def _body_fields(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"path": self.path, "first_contact": self.first_contact}
        r = self.smcr
        if r is not None:
            peer = r.peer_id
            out["peer_id"] = None if peer is None else str(peer)
            out["peer_id_hex"] = None if peer is None else peer.hex
            out["gid"] = r.gid
            out["mac"] = r.mac
            out["qp_number"] = _opt_hex(r.qp_number, 3)
            out["rmb_rkey"] = _opt_hex(r.rmb_rkey, 4)
            out["rmbe_index"] = r.rmbe_index
            out["rmbe_alert_token"] = _opt_hex(r.rmbe_alert_token, 4)
            out["rmbe_size"] = r.rmbe_size
            out["rmbe_size_code"] = r.rmbe_size_code
            out["qp_mtu"] = r.qp_mtu
            out["qp_mtu_code"] = r.qp_mtu_code
            out["rmb_virtual_address"] = _opt_hex(r.rmb_virtual_address, 8)
            out["psn"] = _opt_hex(r.psn, 3)
        d = self.smcd
        if d is not None:
            full = d.full_gid
            out["gid"] = None if full is None else str(full)
            out["gid_ext"] = _opt_hex(d.gid_ext, 8)
            out["dmb_token"] = _opt_hex(d.dmb_token, 8)
            out["dmbe_index"] = d.dmbe_index
            out["dmbe_size"] = d.dmbe_size
            out["dmbe_size_code"] = d.dmbe_size_code
            out["link_id"] = _opt_hex(d.link_id, 4)
            out["chid"] = _opt_hex(d.chid, 2)
        if self.header.version >= 2:
            out["eid"] = self.eid
            f = self.fce
            if f is None:
                out.update(_NO_FCE_FIELDS)
            else:
                os_type = f.os_type
                out["v2_direct"] = f.v2_direct
                out["os_type"] = None if os_type is None else os_type_name(os_type)
                out["os_type_code"] = os_type
                out["release"] = f.release
                out["hostname"] = f.hostname
                out["max_conns"] = f.max_conns
                out["max_links"] = f.max_links
                out["feature_mask"] = _opt_hex(f.feature_mask, 2)
                out["vendor_options"] = _opt_hex(f.vendor_options, 4)
            if self.kind == "confirm" and self.path == "SMC-R":
                out["gid_list_count"] = self.gid_list_count
                out["gid_list"] = None if self.gid_list is None else list(self.gid_list)
        return out


# The first-contact fields of a v2 Accept/Confirm without first-contact extension.
_NO_FCE_FIELDS: dict[str, JsonValue] = dict.fromkeys(
    ("v2_direct", "os_type", "os_type_code", "release", "hostname", "max_conns", "max_links",
     "feature_mask", "vendor_options")
)


@dataclass(frozen=True, kw_only=True)
class Accept(AcceptConfirm):
    """CLC Accept (type 2), server -> client."""

    kind: ClassVar[MessageKind] = "accept"


@dataclass(frozen=True, kw_only=True)
class Confirm(AcceptConfirm):
    """CLC Confirm (type 3), client -> server."""

    kind: ClassVar[MessageKind] = "confirm"


@dataclass(frozen=True, kw_only=True)
class Decline(ClcMessage):
    """CLC Decline (type 4). ``diagnosis`` is 0 if the message ended before it."""

    kind: ClassVar[MessageKind] = "decline"
    diagnosis: int = 0
    out_of_sync: bool = False
    peer_id: PeerId | None = None
    os_type: int | None = None
    supplemental_diagnosis: tuple[int, ...] | None = None  # v2 only

    def _body_fields(self) -> dict[str, JsonValue]:
        return {
            "peer_id": None if self.peer_id is None else str(self.peer_id),
            "peer_id_hex": None if self.peer_id is None else self.peer_id.hex,
            "diagnosis": dict(describe_decline(self.diagnosis)),
            "out_of_sync": self.out_of_sync,
            "os_type": None if self.os_type is None else os_type_name(self.os_type),
            "os_type_code": self.os_type,
            "supplemental_diagnosis": (
                None
                if self.supplemental_diagnosis is None
                else [hex_int(c, 4) for c in self.supplemental_diagnosis]
            ),
        }

"""Typed CLC messages: what :func:`smctrace.clc.decode` returns.

Every field that may be missing (the message was truncated, or the part is not
present for this type/version/path) is ``None``.  How each field appears in the JSON
output is declared in :mod:`smctrace.schema`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from smctrace.clc.codes import (
    EyecatcherName,
    MessageType,
    SmcPathName,
    SmcType,
    buffer_size_bytes,
    qp_mtu_bytes,
)
from smctrace.clc.values import PeerId, SmcdGid

MessageKind = Literal["proposal", "accept", "confirm", "decline", "unknown"]


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


@dataclass(frozen=True, slots=True)
class SmcdV2GidEntry:
    """One offered SMC-D v2 device; Emulated-ISM pairs are joined (gid.gid_ext set)."""

    gid: SmcdGid
    chid: int
    unpaired: bool = False  # emulated CHID without a following same-CHID entry


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

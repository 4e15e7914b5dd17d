"""Constants and code tables of the CLC protocol (spec sections 2.2, 4 and 5).

Everything here is data: enumerations of the small code spaces, the Decline reason
codes (current mainline plus historic/foreign values) and helpers that turn codes into
names for humans.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final, Literal, TypedDict

from smctrace.match import rule

# The header's numbers belong to the SMC-relevance rule, which every engine shares.
EYECATCHER_R: Final = rule.EYECATCHER_R  # "SMCR" in EBCDIC
EYECATCHER_D: Final = rule.EYECATCHER_D  # "SMCD" in EBCDIC
HEADER_LEN: Final = rule.CLC_HEADER_LEN
TRAILER_LEN: Final = rule.CLC_TRAILER_LEN
MAX_MESSAGE_LEN: Final = rule.CLC_MAX_LEN  # sizeof(struct smc_clc_msg_proposal_area)
MIN_MESSAGE_LEN: Final = rule.CLC_MIN_LEN  # a v1 Decline, the shortest message

EyecatcherName = Literal["SMC-R", "SMC-D", "invalid"]
SmcPathName = Literal["SMC-R", "SMC-D"]


class MessageType(IntEnum):
    """CLC message type, header byte 4."""

    PROPOSAL = 1
    ACCEPT = 2
    CONFIRM = 3
    DECLINE = 4


class SmcType(IntEnum):
    """2-bit SMC type used for typev1/typev2 in Proposals and the path of Accept/Confirm."""

    R = 0  # SMC-R
    D = 1  # SMC-D
    N = 2  # neither
    B = 3  # both

    @property
    def paths(self) -> list[SmcPathName]:
        """The paths this type offers, e.g. ["SMC-R", "SMC-D"] for B."""
        return list(_SMC_TYPE_PATHS[self])


# Indexed by SmcType value (a plain tuple index is much cheaper than enum attributes).
_SMC_TYPE_PATHS: Final[tuple[tuple[SmcPathName, ...], ...]] = (
    ("SMC-R",),  # R
    ("SMC-D",),  # D
    (),  # N
    ("SMC-R", "SMC-D"),  # B
)
SMC_TYPE_NAMES: Final[tuple[str, ...]] = tuple(t.name for t in sorted(SmcType, key=int))


class SmcPath(IntEnum):
    """Path chosen in an Accept/Confirm (header byte 7, bits 1-0)."""

    SMC_R = 0
    SMC_D = 1

    @property
    def label(self) -> SmcPathName:
        return "SMC-R" if self is SmcPath.SMC_R else "SMC-D"


class OsType(IntEnum):
    """OS type nibble of the first-contact extension and of Decline v2."""

    ZOS = 1
    LINUX = 2
    AIX = 3
    UNKNOWN = 15


OS_TYPE_NAMES: Final[dict[int, str]] = {
    OsType.ZOS: "z/OS",
    OsType.LINUX: "Linux",
    OsType.AIX: "AIX",
    OsType.UNKNOWN: "Unknown",
}


def os_type_name(code: int) -> str | None:
    """Name of an OS type nibble; None for 0 (not set)."""
    if code == 0:
        return None
    return OS_TYPE_NAMES.get(code, f"unknown {code}")


SMC_RELEASE_NAMES: Final[dict[int, str]] = {0: "2.0", 1: "2.1"}


def release_name(release: int) -> str:
    """SMCv2 release nibble as a version string ("2.1"); unknown values as "2.x(n)"."""
    return SMC_RELEASE_NAMES.get(release, f"2.?({release})")


# Buffer size nibble (RMBE / DMBE): 16 KiB << n.
BUFFER_SIZE_UNIT: Final = 16384


def buffer_size_bytes(code: int) -> int:
    """Decompress an RMBE/DMBE size nibble to bytes (16384 << n)."""
    return BUFFER_SIZE_UNIT << code


# IB MTU enum (QP MTU nibble): 1..5 valid = 256..4096 bytes.
QP_MTU_VALID: Final = range(1, 6)


def qp_mtu_bytes(code: int) -> int | None:
    """QP MTU enum to bytes (128 << n), None for the invalid values 0 and 6-15."""
    return 128 << code if code in QP_MTU_VALID else None


EMULATED_ISM_CHID_MIN: Final = 0xFF00  # SMC_EMULATED_ISM_CHID_MASK
LOOPBACK_ISM_CHID: Final = 0xFFFF

FEATURE_NAMES: Final[dict[int, str]] = {0x0001: "emulated-ISM"}

MAX_IPV6_PREFIXES: Final = 8
MAX_UEIDS: Final = 8
MAX_SMCD_V2_GIDS: Final = 8
MAX_GID_LIST: Final = 2
MAX_IPAREA_OFFSET: Final = 40
MAX_V2_EXT_OFFSET: Final = 172
MAX_SMCD_V2_EXT_OFFSET: Final = 288


def is_emulated_ism_chid(chid: int) -> bool:
    return chid >= EMULATED_ISM_CHID_MIN


class DeclineCode(IntEnum):
    """Current mainline SMC_CLC_DECL_* reason codes (spec section 4)."""

    MEM = 0x01010000
    TIMEOUT_CL = 0x02010000
    TIMEOUT_AL = 0x02020000
    CNFERR = 0x03000000
    PEERNOSMC = 0x03010000
    IPSEC = 0x03020000
    NOSMCDEV = 0x03030000
    NOSMCDDEV = 0x03030001
    NOSMCRDEV = 0x03030002
    NOISM2SUPP = 0x03030003
    NOV2EXT = 0x03030004
    NOV2DEXT = 0x03030005
    NOSEID = 0x03030006
    NOSMCD2DEV = 0x03030007
    NOUEID = 0x03030008
    RELEASEERR = 0x03030009
    MAXCONNERR = 0x0303000A
    MAXLINKERR = 0x0303000B
    MODEUNSUPP = 0x03040000
    RMBE_EC = 0x03050000
    OPTUNSUPP = 0x03060000
    DIFFPREFIX = 0x03070000
    GETVLANERR = 0x03080000
    ISMVLANERR = 0x03090000
    NOACTLINK = 0x030A0000
    NOSRVLINK = 0x030B0000
    VERSMISMAT = 0x030C0000
    MAX_DMB = 0x030D0000
    NOROUTE = 0x030E0000
    NOINDIRECT = 0x030F0000
    SYNCERR = 0x04000000
    PEERDECL = 0x05000000
    INTERR = 0x09990000
    ERR_RTOK = 0x09990001
    ERR_RDYLNK = 0x09990002
    ERR_REGBUF = 0x09990003


# Human text for the current codes.
_CURRENT_TEXT: Final[dict[DeclineCode, str]] = {
    DeclineCode.MEM: "insufficient memory resources",
    DeclineCode.TIMEOUT_CL: "timeout waiting for LLC CONFIRM LINK",
    DeclineCode.TIMEOUT_AL: "timeout waiting for LLC ADD LINK",
    DeclineCode.CNFERR: "configuration error",
    DeclineCode.PEERNOSMC: "peer did not indicate SMC",
    DeclineCode.IPSEC: "IPsec policy on the connection",
    DeclineCode.NOSMCDEV: "no SMC device found; was IPSEC (IPsec usage) in Linux 4.11-4.18",
    DeclineCode.NOSMCDDEV: "no SMC-D device found",
    DeclineCode.NOSMCRDEV: "no SMC-R device found",
    DeclineCode.NOISM2SUPP: "hardware has no ISMv2 support",
    DeclineCode.NOV2EXT: "peer sent no CLC v2 extension",
    DeclineCode.NOV2DEXT: "peer sent no SMC-Dv2 extension",
    DeclineCode.NOSEID: "peer sent no SEID",
    DeclineCode.NOSMCD2DEV: "no SMC-Dv2 device found",
    DeclineCode.NOUEID: "peer sent no UEID",
    DeclineCode.RELEASEERR: "SMCv2 release negotiation failed",
    DeclineCode.MAXCONNERR: "max connections negotiation failed",
    DeclineCode.MAXLINKERR: "max links negotiation failed",
    DeclineCode.MODEUNSUPP: "SMC modes do not match",
    DeclineCode.RMBE_EC: "peer has eyecatcher in RMBE",
    DeclineCode.OPTUNSUPP: "socket option not supported",
    DeclineCode.DIFFPREFIX: "IP prefix / subnet mismatch",
    DeclineCode.GETVLANERR: "error determining VLAN ID of IP device",
    DeclineCode.ISMVLANERR: "error registering VLAN ID on ISM device",
    DeclineCode.NOACTLINK: "no active SMC-R link in link group",
    DeclineCode.NOSRVLINK: "SMC-R link from server not found",
    DeclineCode.VERSMISMAT: "SMC version mismatch",
    DeclineCode.MAX_DMB: "SMC-D DMB limit exceeded",
    DeclineCode.NOROUTE: "SMC-Rv2: no route to peer",
    DeclineCode.NOINDIRECT: "SMC-Rv2: indirect connection but peer is directly reachable",
    DeclineCode.SYNCERR: "synchronization error (out of sync)",
    DeclineCode.PEERDECL: "peer declined during handshake",
    DeclineCode.INTERR: "internal error",
    DeclineCode.ERR_RTOK: "rtoken handling failed",
    DeclineCode.ERR_RDYLNK: "IB ready link failed",
    DeclineCode.ERR_REGBUF: "registering RDMA buffer failed (ERR_REGRMB before Linux 6.2)",
}

# Historic / foreign codes that are not (or no longer) in mainline: code -> (name, text).
HISTORIC_DECLINE_CODES: Final[dict[int, tuple[str, str]]] = {
    0x02000000: ("TIMEOUT", "CLC timeout (Linux 4.11)"),
    0x02040000: ("TCL", "timeout waiting for QP confirm (Linux 4.11)"),
    0x06000000: ("REPLY", "reply to a received decline (Linux 4.11)"),
    0x07000000: ("SEND", "sending problem (Linux 4.11)"),
    0x99990000: ("INTERR", "internal error (numbering before Linux 5.10)"),
    0x99990001: ("ERR_RTOK", "rtoken handling failed (numbering before Linux 5.10)"),
    0x99990002: ("ERR_RDYLNK", "IB ready link failed (numbering before Linux 5.10)"),
    0x99990003: ("ERR_REGRMB", "registering RMB failed (numbering before Linux 5.10)"),
    0x03010001: ("ACTIVE", "local active fallback (unmerged BPF handshake series)"),
    0x0303000C: ("REQLGR/FEATUNSUPP", "unmerged SMCv2.1 patch revisions"),
}

# 0x03030000 is NOSMCDEV today and was IPSEC in Linux 4.11-4.18.
HISTORIC_ALIASES: Final[dict[int, str]] = {0x03030000: "IPSEC (Linux 4.11-4.18)"}

DECLINE_CLASS_NAMES: Final[dict[int, str]] = {
    0x01: "resources",
    0x02: "timeout",
    0x03: "configuration/negotiation",
    0x04: "sync",
    0x05: "peer-declined",
    0x09: "internal",
    0x99: "internal",
}


class DeclineDescription(TypedDict):
    code: int
    hex: str
    name: str
    text: str


def decline_name(code: int) -> str:
    """Short name of a Decline reason code ("NOUEID"); "UNKNOWN" if not known."""
    return describe_decline(code)["name"]


def describe_decline(code: int) -> DeclineDescription:
    """Describe a Decline reason code: number, hex, name and a short text.

    Unknown codes are described by their class byte, e.g.
    "unknown 0x03 configuration/negotiation code".
    """
    code &= 0xFFFFFFFF
    hex_code = f"0x{code:08x}"
    if code in DeclineCode._value2member_map_:
        current = DeclineCode(code)
        return {"code": code, "hex": hex_code, "name": current.name, "text": _CURRENT_TEXT[current]}
    if code in HISTORIC_DECLINE_CODES:
        name, text = HISTORIC_DECLINE_CODES[code]
        return {"code": code, "hex": hex_code, "name": name, "text": text}
    cls = code >> 24
    cls_name = DECLINE_CLASS_NAMES.get(cls)
    text = f"unknown 0x{cls:02x} {cls_name} code" if cls_name else f"unknown class 0x{cls:02x} code"
    return {"code": code, "hex": hex_code, "name": "UNKNOWN", "text": text}

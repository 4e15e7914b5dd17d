"""The one schema of smctrace's JSON lines: every event and every message field, declared
once.  From these declarations come the JSON objects (the ``*_record`` functions, which the
``--json`` output writes), the JSON Schema document (``smctrace --json-schema``), and the
README's JSON section (``markdown``); tests validate every output against the document.

Types follow one rule: integers that fit in 53 bits are JSON numbers (codes, counts, sizes,
QP numbers, PSNs, rkeys, tokens of 32 bits, CHIDs, link IDs, masks); wider values (64-bit
tokens, virtual addresses, ISM GIDs, peer IDs) are ``0x`` strings zero-padded to their
width; RoCE GIDs are IPv6 text, MACs colon hex; wire strings (EIDs, hostnames) are escaped
printable ASCII; a release is given raw (``release``) and as text (``release_version``);
every Decline code, main or supplemental, is a ``{code, hex, name, text}`` object.

Versioning: :data:`SCHEMA_VERSION` is in the document's ``$id`` and in every ``summary``
event.  Adding an event, a field or an enum value keeps the version's major number (scripts
that ignore what they do not know keep working); renaming or removing a field, or changing
its type or meaning, raises it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from smctrace.clc import (
    ClcMessage,
    Confirm,
    describe_decline,
    os_type_name,
)
from smctrace.clc.codes import SMC_TYPE_NAMES, release_name
from smctrace.clc.values import hex_bytes, hex_int
from smctrace.events import (
    OUTCOMES,
    ConnectionOutcome,
    GapEvent,
    MessageEvent,
    TraceSummary,
)

SCHEMA_VERSION = "2.0"
SCHEMA_ID = f"https://smctrace.invalid/schema/{SCHEMA_VERSION}/events.json"

Getter = Callable[[Any], Any]
JsonType = str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Prop:
    """One JSON property: its name, JSON type(s), meaning, and where its value comes from."""

    name: str
    type: JsonType
    doc: str
    get: Getter | None = None
    enum: tuple[Any, ...] | None = None
    items: Prop | None = None  # arrays: their elements
    properties: tuple[Prop, ...] | None = None  # objects: their members
    optional: bool = False  # may be absent (only with an option, or only live)

    def json_schema(self) -> dict[str, Any]:
        types = (self.type,) if isinstance(self.type, str) else self.type
        out: dict[str, Any] = {"type": types[0] if len(types) == 1 else list(types),
                               "description": self.doc}
        if self.enum is not None:
            out["enum"] = [*self.enum, *([None] if "null" in types else [])]
        if self.items is not None:
            out["items"] = self.items.json_schema()
        if self.properties is not None:
            out["properties"] = {p.name: p.json_schema() for p in self.properties}
            out["required"] = [p.name for p in self.properties if not p.optional]
            out["additionalProperties"] = False
        return out


def _hex64(value: int | None) -> str | None:
    return None if value is None else hex_int(value, 8)


def _release_text(value: int | None) -> str | None:
    return None if value is None else release_name(value)


def _os_name(value: int | None) -> str | None:
    return None if value is None else os_type_name(value)


STR, INT, NUM, BOOL, OBJ, ARR = "string", "integer", "number", "boolean", "object", "array"
N_STR, N_INT, N_NUM, N_BOOL = (STR, "null"), (INT, "null"), (NUM, "null"), (BOOL, "null")
PATHS = ("SMC-R", "SMC-D")
SMC_TYPES = tuple(SMC_TYPE_NAMES)
CODE = (
    Prop("code", INT, "the 32-bit reason code"),
    Prop("hex", STR, "the code as 0x plus 8 hex digits"),
    Prop("name", STR, "its SMC_CLC_DECL_* name, or UNKNOWN"),
    Prop("text", STR, "what it means; for an unknown code, its class"),
)


def decline_code(code: int) -> dict[str, Any]:
    return dict(describe_decline(code))


# --- the fields of each message -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Group:
    """Fields a message has when ``when`` holds (e.g. v2 fields of a v2 message)."""

    when: Callable[[Any], bool]
    props: tuple[Prop, ...]


def _always(_msg: Any) -> bool:
    return True


def _peer(msg: Any) -> str | None:
    return None if msg.peer_id is None else str(msg.peer_id)


def _peer_hex(msg: Any) -> str | None:
    return None if msg.peer_id is None else msg.peer_id.hex


PEER = (Prop("peer_id", N_STR, "sender's peer (system) ID as instance@MAC", _peer),
        Prop("peer_id_hex", N_STR, "the peer ID's 8 bytes as 0x plus 16 hex digits", _peer_hex))

PROPOSAL_FIELDS = (Group(_always, (
    Prop("typev1", STR, "SMC types offered for v1: R, D, N (none) or B (both)",
         lambda m: SMC_TYPE_NAMES[m.typev1], enum=SMC_TYPES),
    Prop("typev2", N_STR, "SMC types offered for v2 (null in a v1 Proposal)",
         lambda m: None if m.typev2 is None else SMC_TYPE_NAMES[m.typev2], enum=SMC_TYPES),
    Prop("offered", OBJ, "paths offered per version", lambda m: m.offered, properties=(
        Prop("v1", ARR, "paths offered for v1", items=Prop("path", STR, "a path", enum=PATHS)),
        Prop("v2", ARR, "paths offered for v2", items=Prop("path", STR, "a path", enum=PATHS),
             optional=True))),
    *PEER,
    Prop("smcr_gid", N_STR, "client's SMC-R v1 RoCE GID (IPv6 text)", lambda m: m.smcr_gid),
    Prop("smcr_mac", N_STR, "that RoCE port's MAC", lambda m: m.smcr_mac),
    Prop("iparea_offset", N_INT, "bytes from offset 40 to the IP prefix area",
         lambda m: m.iparea_offset),
    Prop("ism_gid", N_STR, "client's native ISM GID (64-bit, 0x string)",
         lambda m: _hex64(m.ism_gid)),
    Prop("ism_chid", N_INT, "that ISM device's CHID", lambda m: m.ism_chid),
    Prop("v2_ext_offset", N_INT, "bytes from offset 52 to the v2 extension",
         lambda m: m.v2_ext_offset),
    Prop("vendor_oui", N_INT, "vendor OUI (v2.1)", lambda m: m.vendor_oui),
    Prop("vendor_options", N_INT, "vendor experimental options (v2.1)",
         lambda m: m.vendor_options),
    Prop("ipv4_prefix", N_STR, "IPv4 subnet/length of the outgoing interface",
         lambda m: m.ipv4_prefix),
    Prop("ipv6_prefix_count", N_INT, "IPv6 prefixes announced", lambda m: m.ipv6_prefix_count),
    Prop("ipv6_prefixes", ARR, "IPv6 prefix/length each", lambda m: list(m.ipv6_prefixes),
         items=Prop("prefix", STR, "an IPv6 prefix/length")),
    Prop("eid_count", N_INT, "UEIDs in the v2 extension", lambda m: m.eid_count),
    Prop("ism_gid_count", N_INT, "SMC-D v2 GID entries", lambda m: m.ism_gid_count),
    Prop("release", N_INT, "client's v2 release: 0 (v2.0) or 1 (v2.1)", lambda m: m.release),
    Prop("release_version", N_STR, "the release as text, e.g. 2.1",
         lambda m: _release_text(m.release)),
    Prop("seid_indicator", N_BOOL, "the client offers its system EID",
         lambda m: m.seid_indicator),
    Prop("smcd_v2_ext_offset", N_INT, "bytes from the v2 extension's offset 8 to the SMC-D "
         "v2 extension", lambda m: m.smcd_v2_ext_offset),
    Prop("rocev2_gid", N_STR, "client's SMC-R v2 RoCE GID", lambda m: m.rocev2_gid),
    Prop("max_conns", N_INT, "client's max connections per link group (v2.1 SMC-R)",
         lambda m: m.max_conns),
    Prop("max_links", N_INT, "client's max links per link group (v2.1 SMC-R)",
         lambda m: m.max_links),
    Prop("feature_mask", N_INT, "supplemental features offered (v2.1; 1: emulated ISM)",
         lambda m: m.feature_mask),
    Prop("eids", ARR, "user-defined EIDs offered", lambda m: list(m.eids),
         items=Prop("eid", STR, "an EID")),
    Prop("seid", N_STR, "the system EID", lambda m: m.seid),
    Prop("smcd_v2_gids", ARR, "SMC-D v2 devices offered (emulated-ISM pairs joined)",
         lambda m: [_gid_entry(g) for g in m.smcd_v2_gids], items=Prop(
             "entry", OBJ, "one device", properties=(
                 Prop("gid", STR, "its GID, 64-bit or 128-bit (0x string)"),
                 Prop("chid", INT, "its CHID"),
                 Prop("unpaired", BOOL, "an emulated-ISM CHID without its second half",
                      optional=True)))),
)),)


def _gid_entry(entry: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"gid": str(entry.gid), "chid": entry.chid}
    if entry.unpaired:
        out["unpaired"] = True
    return out


def _r(get: Getter) -> Getter:
    return lambda m: get(m.smcr)


def _d(get: Getter) -> Getter:
    return lambda m: get(m.smcd)


def _f(get: Getter) -> Getter:
    return lambda m: None if m.fce is None else get(m.fce)


def _smcd_gid(m: Any) -> str | None:
    full = m.smcd.full_gid
    return None if full is None else str(full)


ACCEPT_CONFIRM_FIELDS = (
    Group(_always, (
        Prop("path", STR, "the path chosen", lambda m: m.path, enum=PATHS),
        Prop("first_contact", BOOL, "a new link group", lambda m: m.first_contact),
    )),
    Group(lambda m: m.smcr is not None, (
        Prop("peer_id", N_STR, "sender's peer (system) ID as instance@MAC", _r(_peer)),
        Prop("peer_id_hex", N_STR, "the peer ID's 8 bytes (0x string)", _r(_peer_hex)),
        Prop("gid", N_STR, "sender's RoCE GID (IPv6 text)", _r(lambda r: r.gid)),
        Prop("mac", N_STR, "sender's RoCE port MAC", _r(lambda r: r.mac)),
        Prop("qp_number", N_INT, "sender's queue pair number", _r(lambda r: r.qp_number)),
        Prop("rmb_rkey", N_INT, "remote key of the sender's receive buffer",
             _r(lambda r: r.rmb_rkey)),
        Prop("rmbe_index", N_INT, "RMB element index", _r(lambda r: r.rmbe_index)),
        Prop("rmbe_alert_token", N_INT, "connection ID used in CDC messages",
             _r(lambda r: r.rmbe_alert_token)),
        Prop("rmbe_size", N_INT, "RMB element size in bytes", _r(lambda r: r.rmbe_size)),
        Prop("rmbe_size_code", N_INT, "the size's compressed nibble",
             _r(lambda r: r.rmbe_size_code)),
        Prop("qp_mtu", N_INT, "QP MTU in bytes (null: invalid code)", _r(lambda r: r.qp_mtu)),
        Prop("qp_mtu_code", N_INT, "the MTU's IB enum nibble", _r(lambda r: r.qp_mtu_code)),
        Prop("rmb_virtual_address", N_STR, "address to RDMA-write to (64-bit, 0x string)",
             _r(lambda r: _hex64(r.rmb_virtual_address))),
        Prop("psn", N_INT, "initial packet sequence number", _r(lambda r: r.psn)),
    )),
    Group(lambda m: m.smcd is not None, (
        Prop("gid", N_STR, "sender's ISM GID, 128-bit for emulated ISM (0x string)",
             _smcd_gid),
        Prop("gid_ext", N_STR, "low 64 bits of a 128-bit emulated-ISM GID (0x string)",
             _d(lambda d: _hex64(d.gid_ext))),
        Prop("dmb_token", N_STR, "token of the sender's DMB (64-bit, 0x string)",
             _d(lambda d: _hex64(d.dmb_token))),
        Prop("dmbe_index", N_INT, "DMB element index", _d(lambda d: d.dmbe_index)),
        Prop("dmbe_size", N_INT, "DMB element size in bytes", _d(lambda d: d.dmbe_size)),
        Prop("dmbe_size_code", N_INT, "the size's compressed nibble",
             _d(lambda d: d.dmbe_size_code)),
        Prop("link_id", N_INT, "link group ID", _d(lambda d: d.link_id)),
        Prop("chid", N_INT, "CHID of the ISM device (v2)", _d(lambda d: d.chid)),
    )),
    Group(lambda m: m.header.version >= 2, (
        Prop("eid", N_STR, "the negotiated EID", lambda m: m.eid),
        Prop("v2_direct", N_BOOL, "SMC-R: peer reachable without an IP gateway",
             _f(lambda f: f.v2_direct)),
        Prop("os_type", N_STR, "sender's OS (z/OS, Linux, AIX)", _f(lambda f: _os_name(f.os_type))),
        Prop("os_type_code", N_INT, "the OS type nibble", _f(lambda f: f.os_type)),
        Prop("release", N_INT, "the release chosen: 0 (v2.0) or 1 (v2.1)",
             _f(lambda f: f.release)),
        Prop("release_version", N_STR, "the release as text, e.g. 2.1",
             _f(lambda f: _release_text(f.release))),
        Prop("hostname", N_STR, "sender's host name", _f(lambda f: f.hostname)),
        Prop("max_conns", N_INT, "max connections per link group (v2.1 SMC-R)",
             _f(lambda f: f.max_conns)),
        Prop("max_links", N_INT, "max links per link group (v2.1 SMC-R)",
             _f(lambda f: f.max_links)),
        Prop("feature_mask", N_INT, "supplemental features (v2.1)", _f(lambda f: f.feature_mask)),
        Prop("vendor_options", N_INT, "vendor experimental options",
             _f(lambda f: f.vendor_options)),
    )),
    Group(lambda m: isinstance(m, Confirm) and m.path == "SMC-R" and m.header.version >= 2, (
        Prop("gid_list_count", N_INT, "RoCEv2 GIDs the client can use for more links",
             lambda m: m.gid_list_count),
        Prop("gid_list", (ARR, "null"), "those GIDs (IPv6 text)",
             lambda m: None if m.gid_list is None else list(m.gid_list),
             items=Prop("gid", STR, "a GID")),
    )),
)

DECLINE_FIELDS = (Group(_always, (
    *PEER,
    Prop("diagnosis", OBJ, "the reason code", lambda m: decline_code(m.diagnosis),
         properties=CODE),
    Prop("out_of_sync", BOOL, "header bit: the link group is out of sync", lambda m: m.out_of_sync),
    Prop("os_type", N_STR, "sender's OS (v2)", lambda m: _os_name(m.os_type)),
    Prop("os_type_code", N_INT, "the OS type nibble", lambda m: m.os_type),
    Prop("supplemental_diagnosis", (ARR, "null"), "v2: four more reason codes",
         lambda m: None if m.supplemental_diagnosis is None else
         [decline_code(c) for c in m.supplemental_diagnosis],
         items=Prop("code", OBJ, "a reason code", properties=CODE)),
)),)

UNKNOWN_FIELDS = (Group(_always, (
    Prop("type_code", INT, "the type byte", lambda m: m.header.type),)),)

MESSAGE_FIELDS: dict[str, tuple[Group, ...]] = {
    "proposal": PROPOSAL_FIELDS, "accept": ACCEPT_CONFIRM_FIELDS,
    "confirm": ACCEPT_CONFIRM_FIELDS, "decline": DECLINE_FIELDS, "unknown": UNKNOWN_FIELDS,
}


def message_fields(msg: ClcMessage, reserved: bool = False) -> dict[str, Any]:
    """The ``fields`` of a ``clc`` event (with ``reserved``, the reserved fields too)."""
    out: dict[str, Any] = {}
    for group in MESSAGE_FIELDS[msg.kind]:
        if group.when(msg):
            for prop in group.props:
                assert prop.get is not None
                out[prop.name] = prop.get(msg)
    if reserved:
        for name, value in msg.reserved_fields.items():
            out[name] = hex_bytes(value) if isinstance(value, bytes) else f"0x{value:x}"
    return out


# --- the events ---------------------------------------------------------------------------


ENDPOINTS = (
    Prop("client", STR, "the connecting end, ip:port ([ip]:port for IPv6)"),
    Prop("server", STR, "the listening end"),
)
CLC_EVENT = (
    Prop("event", STR, "clc", enum=("clc",)),
    Prop("time", NUM, "packet time, seconds since the epoch (of the segment that completed "
         "the message)"),
    Prop("frame", INT, "frame number in the input (as tcpdump/tshark count)"),
    *ENDPOINTS,
    Prop("from", STR, "which end sent it", enum=("client", "server")),
    Prop("type", STR, "message type", enum=("proposal", "accept", "confirm", "decline",
                                            "unknown")),
    Prop("version", INT, "CLC version (header)"),
    Prop("length", INT, "length in bytes (header)"),
    Prop("eyecatcher", STR, "header eyecatcher", enum=("SMC-R", "SMC-D", "invalid")),
    Prop("fields", OBJ, "the decoded fields; which ones depends on the type (below), with "
         "--reserved also reserved_<offset> as 0x strings"),
    Prop("malformed", N_STR, "why the message is invalid (still decoded as far as possible)"),
    Prop("hex", STR, "the message's bytes (with --hex)", optional=True),
)
GAP_EVENT = (
    Prop("event", STR, "gap", enum=("gap",)),
    Prop("time", NUM, "packet time when the gap was given up on"),
    *ENDPOINTS,
    Prop("from", STR, "the direction with the hole", enum=("client", "server")),
    Prop("seq", INT, "first missing TCP sequence number"),
    Prop("missing", INT, "missing bytes (0: not known)"),
)
CONNECTION_EVENT = (
    Prop("event", STR, "connection", enum=("connection",)),
    *ENDPOINTS,
    Prop("start", NUM, "time of the SYN (or of what was seen first)"),
    Prop("end", NUM, "time of the deciding segment (or of the last one seen)"),
    Prop("syn_option", N_BOOL, "the SYN carried the SMC option (null: not seen)"),
    Prop("synack_option", N_BOOL, "the SYN-ACK carried it (null: not seen)"),
    Prop("messages", ARR, "CLC message types in order",
         items=Prop("type", STR, "a type", enum=("proposal", "accept", "confirm", "decline",
                                                 "unknown"))),
    Prop("outcome", STR, "how the SMC negotiation ended", enum=OUTCOMES),
    Prop("path", N_STR, "smc: the path", enum=PATHS),
    Prop("version", N_INT, "smc: the CLC version"),
    Prop("release", N_INT, "smc, v2: the release (0: v2.0, 1: v2.1)"),
    Prop("release_version", N_STR, "the release as text, e.g. 2.1"),
    Prop("first_contact", N_BOOL, "smc: a new link group"),
    Prop("decline", (OBJ, "null"), "fallback by a Decline: its code and sender",
         properties=(*CODE, Prop("from", STR, "who declined", enum=("client", "server")))),
    Prop("reason", STR, "the outcome in words"),
    Prop("handshake_ms", N_NUM, "SYN (or first message) to the deciding segment, in ms"),
    Prop("retransmissions", INT, "CLC-phase segments that resent bytes already seen"),
)
COUNT = INT
SUMMARY_EVENT = (
    Prop("event", STR, "summary, always the last line", enum=("summary",)),
    Prop("schema_version", STR, "version of this schema"),
    Prop("frames", COUNT, "frames read"),
    Prop("segments", COUNT, "TCP segments that reached the tracker"),
    Prop("connections", COUNT, "connections with an outcome"),
    Prop("outcomes", OBJ, "connections by outcome",
         properties=tuple(Prop(o, COUNT, f"{o} connections") for o in OUTCOMES)),
    Prop("plain_tcp", N_INT, "TCP connections without the SMC option (null live: ordinary "
         "SYNs never reach user space)"),
    Prop("messages", COUNT, "CLC messages"),
    Prop("malformed", COUNT, "malformed CLC messages"),
    Prop("gaps", COUNT, "holes in CLC phases"),
    Prop("duplicates", COUNT, "segments seen twice (dropped)"),
    Prop("unanswered_syns", OBJ, "SYNs with the SMC option that got no answer",
         properties=(Prop("count", COUNT, "how many"),
                     Prop("sample", ARR, "up to 8 of them, client -> server",
                          items=Prop("pair", STR, "a 4-tuple")))),
    Prop("unanswered_midstream", OBJ, "offline: CLC messages on connections whose start was "
         "not seen that got no answer while held (counted, not decoded)",
         properties=(Prop("count", COUNT, "how many"),
                     Prop("sample", ARR, "up to 8 of their connections",
                          items=Prop("pair", STR, "a 4-tuple")))),
    Prop("evicted", COUNT, "connections reported early because the table was full"),
    Prop("warnings", ARR, "what could not be searched or may have been missed",
         items=Prop("warning", STR, "one line")),
    Prop("seen_by_filter", N_INT, "live: frames the kernel filter looked at (null: the "
         "classic-BPF filter cannot count)", optional=True),
    Prop("kept", INT, "live: frames the filter kept", optional=True),
    Prop("received", INT, "live: frames that reached the socket", optional=True),
    Prop("dropped", INT, "live: frames lost for lack of socket buffer", optional=True),
    Prop("smc_syns", INT, "live, eBPF: SYNs with the SMC option", optional=True),
    Prop("answered", INT, "live, eBPF: of them, answered", optional=True),
    Prop("syns_deferred", INT, "live, eBPF: SYNs over the rate limit, remembered only",
         optional=True),
)
EVENTS: dict[str, tuple[Prop, ...]] = {
    "clc": CLC_EVENT, "gap": GAP_EVENT, "connection": CONNECTION_EVENT,
    "summary": SUMMARY_EVENT,
}


def message_record(msg: ClcMessage, *, reserved: bool = False,
                   hex_dump: bool = False) -> dict[str, Any]:
    """The part of a ``clc`` event that depends only on the message (``type`` on)."""
    header = msg.header
    out: dict[str, Any] = {
        "type": msg.kind, "version": header.version, "length": header.length,
        "eyecatcher": header.eyecatcher, "fields": message_fields(msg, reserved),
        "malformed": msg.malformed,
    }
    if hex_dump:
        out["hex"] = msg.raw.hex()
    return out


def clc_record(event: MessageEvent, *, reserved: bool = False,
               hex_dump: bool = False) -> dict[str, Any]:
    return {"event": "clc", "time": event.time, "frame": event.frame,
            "client": str(event.conn.client), "server": str(event.conn.server),
            "from": event.sender,
            **message_record(event.message, reserved=reserved, hex_dump=hex_dump)}


def gap_record(event: GapEvent) -> dict[str, Any]:
    return {"event": "gap", "time": event.time, "client": str(event.conn.client),
            "server": str(event.conn.server), "from": event.sender, "seq": event.seq,
            "missing": event.missing}


def connection_record(o: ConnectionOutcome) -> dict[str, Any]:
    return {
        "event": "connection", "client": str(o.conn.client), "server": str(o.conn.server),
        "start": o.start, "end": o.end, "syn_option": o.syn_option,
        "synack_option": o.synack_option, "messages": list(o.messages), "outcome": o.outcome,
        "path": o.path, "version": o.version, "release": o.release,
        "release_version": _release_text(o.release), "first_contact": o.first_contact,
        "decline": o.decline_info(),
        "reason": o.reason, "handshake_ms": o.handshake_ms,
        "retransmissions": o.retransmissions,
    }


def summary_record(s: TraceSummary) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event": "summary", "schema_version": SCHEMA_VERSION, "frames": s.frames,
        "segments": s.segments, "connections": s.connections,
        "outcomes": {o: s.outcomes[o] for o in OUTCOMES}, "plain_tcp": s.plain_tcp,
        "messages": s.messages, "malformed": s.malformed, "gaps": s.gaps,
        "duplicates": s.duplicates,
        "unanswered_syns": {"count": s.unanswered_syns, "sample": list(s.unanswered_sample)},
        "unanswered_midstream": {"count": s.unanswered_midstream,
                                 "sample": list(s.unanswered_midstream_sample)},
        "evicted": s.evicted, "warnings": list(s.warnings),
    }
    out.update(s.capture)
    return out


# --- the JSON Schema document and the README section --------------------------------------


def _fields_schema(kind: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    always: list[str] = []
    for index, group in enumerate(MESSAGE_FIELDS[kind]):
        for prop in group.props:
            props.setdefault(prop.name, prop.json_schema())
            if index == 0 and group.when is _always:
                always.append(prop.name)
    return {"type": "object", "properties": props, "required": always,
            "patternProperties": {"^reserved_[0-9]+(_bits)?$": {"type": "string"}},
            "additionalProperties": False}


def _event_schema(name: str) -> dict[str, Any]:
    props = EVENTS[name]
    out: dict[str, Any] = {
        "type": "object", "properties": {p.name: p.json_schema() for p in props},
        "required": [p.name for p in props if not p.optional], "additionalProperties": False,
    }
    if name == "clc":
        out["allOf"] = [{"if": {"properties": {"type": {"const": kind}}},
                         "then": {"properties": {"fields": _fields_schema(kind)}}}
                        for kind in MESSAGE_FIELDS]
    return out


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one line of ``smctrace --json``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"smctrace --json events, schema version {SCHEMA_VERSION}",
        "description": "One JSON object per line: clc, gap and connection events as they "
                       "happen, then one summary.",
        "oneOf": [{"$ref": f"#/$defs/{name}"} for name in EVENTS],
        "$defs": {name: _event_schema(name) for name in EVENTS},
    }


def _type_text(prop: Prop) -> str:
    types = (prop.type,) if isinstance(prop.type, str) else prop.type
    text = " or ".join(t for t in types if t != "null")
    if prop.enum is not None:
        text += ": " + ", ".join(f"`{v}`" for v in prop.enum)
    if "null" in types:
        text += ", or null"
    return text + (" (optional)" if prop.optional else "")


def _rows(props: Iterable[Prop]) -> list[str]:
    return [f"| `{p.name}` | {_type_text(p)} | {p.doc} |" for p in props]


def markdown() -> str:
    """The README's JSON section body: every event and message field, from this module."""
    lines = [f"Schema version {SCHEMA_VERSION} (`smctrace --json-schema` prints the JSON "
             "Schema document).", ""]
    for name, props in EVENTS.items():
        lines += [f"**`{name}`**", "", "| field | type | meaning |", "|---|---|---|",
                  *_rows(props), ""]
    for kind, groups in MESSAGE_FIELDS.items():
        seen: dict[str, Prop] = {}
        for group in groups:
            for prop in group.props:
                seen.setdefault(prop.name, prop)
        lines += [f"**`fields` of a `{kind}`**", "", "| field | type | meaning |",
                  "|---|---|---|", *_rows(seen.values()), ""]
    return "\n".join(lines).rstrip() + "\n"


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


__all__ = ["EVENTS", "MESSAGE_FIELDS", "SCHEMA_VERSION", "clc_record", "connection_record",
           "gap_record", "json_schema", "markdown", "message_fields", "message_record",
           "summary_record"]

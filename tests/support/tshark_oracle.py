"""tshark's SMC dissector as an oracle independent of smctrace, written once for the tests
(tests/test_oracle_tshark.py: every field of every CLC PDU) and the SMC lab
(`smc-lab --backend tshark`: connections and their outcome).

Both views come from one tshark run per capture (``-T json -x``): :func:`pdus` gives each
CLC PDU's bytes and decoded fields, :func:`connections` groups the CLC messages into TCP
streams with an outcome the way smctrace reports it.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TSHARK = shutil.which("tshark")
Event = dict[str, Any]


class TsharkError(RuntimeError):
    """tshark is missing or failed on a capture."""


@dataclass
class TsharkField:
    name: str
    show: str
    offset: int  # inside the CLC message
    size: int


@dataclass
class TsharkPdu:
    frame: int
    data: bytes
    fields: list[TsharkField]
    malformed: bool


@dataclass
class Packet:
    """What one TCP segment of the capture says, as far as the oracle needs it."""

    stream: str
    src: str  # ip:port, IPv6 as [ip]:port
    dst: str
    syn: bool
    ack: bool
    smc_option: bool  # TCP experimental option with the SMC ExID 0xE2D4C3D9
    pdus: list[TsharkPdu] = field(default_factory=list)


def _flatten(node: dict[str, Any], base: int) -> Iterator[TsharkField]:
    for key, value in node.items():
        if key.endswith("_raw"):
            continue
        if key.endswith("_tree"):
            for sub in value if isinstance(value, list) else [value]:
                yield from _flatten(sub, base)
            continue
        raw = node.get(key + "_raw")
        assert raw is not None, f"no raw data for {key}"
        shows = value if isinstance(value, list) else [value]
        raws = raw if isinstance(raw[0], list) else [raw]
        assert len(shows) == len(raws), key
        for show, r in zip(shows, raws, strict=True):
            yield TsharkField(key, show, r[1] - base, r[2])


def _listed(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def endpoint(addr: str, port: str) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _packet(layers: dict[str, Any]) -> Packet:
    ip = layers.get("ip") or layers.get("ipv6") or {}
    src = ip.get("ip.src") or ip.get("ipv6.src") or "?"
    dst = ip.get("ip.dst") or ip.get("ipv6.dst") or "?"
    tcp = layers["tcp"]
    flags = tcp.get("tcp.flags_tree", {})
    opts = json.dumps(tcp.get("tcp.options_tree", {})) + str(tcp.get("tcp.options", ""))
    pkt = Packet(
        stream=str(tcp["tcp.stream"]),
        src=endpoint(src, tcp["tcp.srcport"]),
        dst=endpoint(dst, tcp["tcp.dstport"]),
        syn=flags.get("tcp.flags.syn") in ("1", "True"),
        ack=flags.get("tcp.flags.ack") in ("1", "True"),
        smc_option="e2d4c3d9" in opts.lower().replace(":", ""),
    )
    if "smc" in layers:
        raws = layers["smc_raw"] if isinstance(layers["smc_raw"][0], list) else [layers["smc_raw"]]
        frame = int(layers["frame"]["frame.number"])
        for smc, raw in zip(_listed(layers["smc"]), raws, strict=True):
            if "smc.clc_msg" not in smc:  # LLC/CDC over RoCE, not CLC
                continue
            data = bytes.fromhex(raw[0])
            assert len(data) == raw[2]
            pkt.pdus.append(TsharkPdu(frame, data, list(_flatten(smc, raw[1])),
                                      "_ws.malformed" in layers))
    return pkt


@functools.cache
def packets(pcap: Path) -> tuple[Packet, ...]:
    """Every TCP segment of ``pcap`` as tshark dissects it."""
    if TSHARK is None:
        raise TsharkError("tshark is not installed")
    proc = subprocess.run(
        [TSHARK, "-r", str(pcap), "-Y", "tcp", "-T", "json", "--no-duplicate-keys", "-x"],
        capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0:
        raise TsharkError(f"tshark failed on {pcap.name}: {proc.stderr.strip()[-300:]}")
    return tuple(_packet(p["_source"]["layers"]) for p in json.loads(proc.stdout or "[]"))


def pdus(pcap: Path) -> tuple[TsharkPdu, ...]:
    """Every CLC PDU tshark finds in ``pcap`` (reassembled ones too), in capture order."""
    return tuple(pdu for pkt in packets(pcap) for pdu in pkt.pdus)


def _field(pdu: TsharkPdu, name: str) -> str | None:
    return next((f.show for f in pdu.fields if f.name == name), None)


_TYPES = {"1": "proposal", "2": "accept", "3": "confirm", "4": "decline"}


def clc_events(pcap: Path) -> list[Event]:
    """The CLC messages, in order: type, sender, version, client/server, TCP stream."""
    clients: dict[str, tuple[str, str]] = {}
    out: list[Event] = []
    for pkt in packets(pcap):
        if pkt.syn and not pkt.ack:
            clients[pkt.stream] = (pkt.src, pkt.dst)
        cli, srv = clients.get(pkt.stream, (pkt.src, pkt.dst))
        for pdu in pkt.pdus:
            typ = _TYPES.get(_field(pdu, "smc.clc_msg") or "", "unknown")
            ver = pdu.data[7] >> 4 if len(pdu.data) > 7 else 0  # header byte 7: version
            out.append({"event": "clc", "type": typ, "from": "client" if pkt.src == cli
                        else "server", "version": ver, "stream": pkt.stream, "client": cli,
                        "server": srv, "pdu": pdu})
    return out


def _accept_confirm(pdu: TsharkPdu) -> tuple[str | None, int | None]:
    """Path (SMC-R/SMC-D, from the eyecatcher) and v2 release of an Accept/Confirm."""
    eye = pdu.data[-4:]
    path = {b"\xe2\xd4\xc3\xd9": "SMC-R", b"\xe2\xd4\xc3\xc4": "SMC-D"}.get(eye)
    rel = None
    for name in ("smc.accept.smc.version.relnum", "smc.confirm.smc.version.relnum"):
        if (v := _field(pdu, name)) is not None:
            rel = int(v)
    return path, rel


def connections(pcap: Path) -> list[Event]:
    """Connections like smctrace's ``connection`` events: TCP streams whose SYN had the SMC
    option or that carry CLC messages, with outcome, path, version, release, decline."""
    streams: dict[str, Event] = {}
    for pkt in packets(pcap):
        st = streams.setdefault(pkt.stream, {"smc_syn": False, "client": None,
                                             "server": None})
        if pkt.syn and not pkt.ack:
            st["client"], st["server"], st["smc_syn"] = pkt.src, pkt.dst, pkt.smc_option
    msgs: dict[str, list[Event]] = {}
    for ev in clc_events(pcap):
        msgs.setdefault(ev["stream"], []).append(ev)
    conns = []
    for sid, st in streams.items():
        evs = msgs.get(sid, [])
        if not st["smc_syn"] and not evs:
            continue
        types = [e["type"] for e in evs]
        decline = next((e for e in evs if e["type"] == "decline"), None)
        if decline is not None or not types:
            outcome = "fallback"
        elif types[:3] == ["proposal", "accept", "confirm"]:
            outcome = "smc"
        else:
            outcome = "incomplete"
        path = version = release = None
        if outcome == "smc":  # like smctrace: path/version/release only for SMC connections
            confirm = evs[2]
            path, release = _accept_confirm(confirm["pdu"])
            version = confirm["version"]
            release = release if version == 2 else None
        diag = None
        if decline is not None:
            code = _field(decline["pdu"], "smc.peer.diag.info") or ""
            diag = {"code": code, "from": decline["from"]}
        conns.append({"event": "connection", "client": st["client"] or evs[0]["client"],
                      "server": st["server"] or evs[0]["server"], "outcome": outcome,
                      "path": path, "version": version, "release": release,
                      "decline": diag, "messages": types})
    return conns

"""tshark as an independent oracle for the CLC decoder (spec section 7).

For every CLC PDU tshark finds (real kernel captures in tests/data/real-kernel, and the
spec's section 8 vectors written into a pcap here), the PDU's bytes are taken from
tshark's own ``smc_raw`` (so reassembled PDUs are handled), decoded with smctrace, and
EVERY field tshark decodes is compared with smctrace's value, converted explicitly to
tshark's representation (field map: spec 7.3). ``smc.reserved`` carries no decoded value
and is not compared; an smc field name that is not in the map fails the test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smctrace.clc import AcceptConfirm, ClcMessage, Proposal, decode
from smctrace.frame import LINKTYPE_ETHERNET
from smctrace.packet import ACK, PSH
from smctrace.schema import message_fields
from tests.support import captures, tshark_oracle
from tests.support.synth import tcp_frame
from tests.support.tshark_oracle import TsharkField, TsharkPdu
from tests.test_clc_vectors import ALL_VECTORS, SPEC_8_2

REAL = Path(__file__).resolve().parent / "data" / "real-kernel"
TSHARK = tshark_oracle.TSHARK

needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")


# --- expected tshark values from smctrace's decode -------------------------------------

Expect = Callable[[ClcMessage, dict[str, Any], TsharkField, int], str | None]


def _b(v: object) -> str:
    return "1" if v else "0"


def _h(value: str | None, default: str) -> str:
    return default if value is None else value


def _byte7(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
    return f"0x{(m.version << 4) | m.header.flags:02x}"


def _code_from_bytes(size: int, unit: int) -> int:
    """Inverse of the size decompression (unit << n), checked to be exact."""
    code = (size // unit).bit_length() - 1
    assert unit << code == size
    return code


def _rsv_bits(m: ClcMessage, offset: int) -> int:
    v = m.reserved_fields.get(f"reserved_{offset}_bits", 0)
    assert isinstance(v, int)
    return v


def _v4_of_mapped(gid: str | None) -> str:
    if gid is None:
        return "0.0.0.0"
    assert gid.startswith("::ffff:"), gid
    return gid.removeprefix("::ffff:")


def _raw_smcd_v2_entries(f: dict[str, Any]) -> list[tuple[str, str]]:
    """Our joined SMC-D v2 GID list, split back into the 64-bit wire entries."""
    out: list[tuple[str, str]] = []
    for e in f["smcd_v2_gids"]:
        gid = e["gid"].removeprefix("0x")
        out.append(("0x" + gid[:16], f"0x{e['chid']:04x}"))
        if len(gid) == 32:
            out.append(("0x" + gid[16:], f"0x{e['chid']:04x}"))
    return out


def _proposal_ism_gid(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
    if t.offset == 40:
        return str(f["ism_gid"])
    return _raw_smcd_v2_entries(f)[i - (1 if _native_ism_shown(m) else 0)][0]


def _proposal_chid(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
    if t.offset == 48:
        return f"0x{f['ism_chid']:04x}"
    return _raw_smcd_v2_entries(f)[i - (1 if _native_chid_shown(m) else 0)][1]


def _native_ism_shown(m: ClcMessage) -> bool:
    assert isinstance(m, Proposal)
    return "SMC-D" in m.typev1.paths or (m.typev2 is not None and "SMC-D" in m.typev2.paths)


def _native_chid_shown(m: ClcMessage) -> bool:
    assert isinstance(m, Proposal)
    return m.typev2 is not None and "SMC-D" in m.typev2.paths


def _v2ext_flags(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
    return f"0x{(f['release'] << 4) | (_rsv_bits(m, t.offset) << 1) | f['seid_indicator']:02x}"


def _sizes_byte(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
    rmbe = _code_from_bytes(f["rmbe_size"], 16384)
    mtu = f["qp_mtu_code"] if f["qp_mtu"] is None else _code_from_bytes(f["qp_mtu"], 128)
    return f"0x{(rmbe << 4) | mtu:02x}"


def _qp_mtu(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
    return str(f["qp_mtu_code"] if f["qp_mtu"] is None else _code_from_bytes(f["qp_mtu"], 128))


def _dmbe_byte(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
    return f"0x{(_code_from_bytes(f['dmbe_size'], 16384) << 4) | _rsv_bits(m, t.offset):02x}"


def _fce1(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
    return f"0x{(bool(f['v2_direct']) << 7) | _rsv_bits(m, t.offset):02x}"


def _fce_flags(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
    return f"0x{(f['os_type_code'] << 4) | f['release']:02x}"


def _smcd_gid64(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
    return "0x" + str(f["gid"]).removeprefix("0x")[:16]  # high 64 bits of a 128-bit GID


def _diag(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
    if i == 0:
        return str(f["diagnosis"]["hex"])
    return str(f["supplemental_diagnosis"][i - 1]["hex"])


def _decline_flags2(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
    return f"0x{(f['os_type_code'] << 4) | _rsv_bits(m, t.offset):02x}"


def _hexw(digits: int) -> Callable[[Any], str]:
    """tshark shows BASE_HEX integers zero-padded to the field's width."""
    return lambda v: f"0x{v:0{digits}x}"


def _field(name: str, conv: Callable[[Any], str] = str) -> Expect:
    return lambda m, f, t, i: conv(f[name])


def _indexed(name: str, conv: Callable[[Any], str] = str) -> Expect:
    return lambda m, f, t, i: conv(f[name][i])


def _str_field(name: str) -> Expect:
    return lambda m, f, t, i: _h(f[name], "")


def _header(attr: str) -> Expect:
    return lambda m, f, t, i: str(getattr(m.header, attr))


def _path_bits(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
    assert isinstance(m, AcceptConfirm)
    return str(m.path_bits)


def _typev(which: str) -> Expect:
    def get(m: ClcMessage, f: dict[str, Any], t: TsharkField, i: int) -> str:
        assert isinstance(m, Proposal)
        typ = m.typev1 if which == "v1" else m.typev2
        assert typ is not None
        return str(int(typ))

    return get


def _ipv4_prefix(part: int) -> Expect:
    return lambda m, f, t, i: str(f["ipv4_prefix"]).split("/")[part]


def _ipv6_prefix(part: int) -> Expect:
    return lambda m, f, t, i: str(f["ipv6_prefixes"][i]).split("/")[part]


# Both Accept and Confirm (SMC-R/SMC-D) share most names; tshark field -> expectation.
FIELD_MAP: dict[str, Expect | None] = {
    "smc.reserved": None,  # no decoded value (see module docstring)
    # common
    "smc.clc_msg": _header("type"),
    "smc.length": _header("length"),
    "smc.proposal.smc.version": _header("version"),  # also Accept/Confirm (spec 7.3 quirk)
    # Proposal
    "smc.proposal.flags": _byte7,
    "smc.proposal.smcv2.type": _typev("v2"),
    "smc.proposal.smc.type": _typev("v1"),
    "smc.proposal.sender.client.peer.id": _field("peer_id_hex"),
    "smc.proposal.client.preferred.gid": _field("smcr_gid"),
    "smc.proposal.client.preferred.mac": _field("smcr_mac"),
    "smc.proposal.smcv1_subnet_ext_offset": _field("iparea_offset", lambda v: f"0x{v:04x}"),
    "smc.proposal.ism.gid": _proposal_ism_gid,
    "smc.proposal.smc.chid": _proposal_chid,
    "smc.proposal.smcv2_ext_offset": _field("v2_ext_offset", lambda v: f"0x{v:04x}"),
    "smc.outgoing.interface.subnet.mask": _ipv4_prefix(0),
    "smc.outgoing.interface.subnet.mask.number.of.significant.bits": _ipv4_prefix(1),
    "smc.proposal.ipv6.prefix.count": _field("ipv6_prefix_count"),
    "smc.proposal.ipv6.prefix.value": _ipv6_prefix(0),
    "smc.proposal.ipv6.prefix.length": _ipv6_prefix(1),
    "smc.proposal.eid.count": _field("eid_count"),
    "smc.proposal.ismv2_gid_count": _field("ism_gid_count"),
    "smc.proposal.extflags.2": _v2ext_flags,
    "smc.proposal.smc.version.relnum": _field("release"),
    "smc.proposal.smc.seid": _field("seid_indicator", _b),
    "smc.proposal.smcdv2_ext_offset": _field("smcd_v2_ext_offset", lambda v: f"0x{v:04x}"),
    "smc.proposal.rocev2.gid.ipv4": lambda m, f, t, i: _v4_of_mapped(f["rocev2_gid"]),
    "smc.proposal.rocev2.gid.ipv6": lambda m, f, t, i: _h(f["rocev2_gid"], "::"),
    "smc.proposal.eid": _indexed("eids"),
    "smc.proposal.system.eid": _str_field("seid"),
    # Accept / Confirm flags byte
    "smc.accept.flags": _byte7,
    "smc.confirm.flags": _byte7,
    "smc.proposal.first.contact": _field("first_contact", _b),
    "smc.accept.first.contact": _field("first_contact", _b),
    "smc.confirm.first.contact": _field("first_contact", _b),
    "smc.accept.smc.type": _path_bits,
    "smc.confirm.smc.type": _path_bits,
    # SMC-R
    "smc.accept.sender.server.peer.id": _field("peer_id_hex"),
    "smc.confirm.sender.client.peer.id": _field("peer_id_hex"),
    "smc.accept.server.preferred.gid": _field("gid"),
    "smc.client.gid": _field("gid"),
    "smc.accept.server.preferred.mac": _field("mac"),
    "smc.confirm.client.mac": _field("mac"),
    "smc.accept.server.qp.number": _field("qp_number", _hexw(6)),
    "smc.confirm.client.qp.number": _field("qp_number", _hexw(6)),
    "smc.accept.server.rmb.rkey": _field("rmb_rkey", _hexw(8)),
    "smc.confirm.client.rmb.rkey": _field("rmb_rkey", _hexw(8)),
    "smc.accept.server.tcp.conn.index": _field("rmbe_index"),
    "smc.confirm.client.tcp.conn.index": _field("rmbe_index"),
    "smc.accept.server.rmb.element.alert.token": _field("rmbe_alert_token", _hexw(8)),
    "smc.client.rmb.element.alert.token": _field("rmbe_alert_token", _hexw(8)),
    "smc.accept.flags.2": _sizes_byte,
    "smc.confirm.flags.2": _sizes_byte,
    "smc.accept.rmb.buffer.size": _field("rmbe_size", lambda v: str(_code_from_bytes(v, 16384))),
    "smc.confirm.rmb.buffer.size": _field("rmbe_size", lambda v: str(_code_from_bytes(v, 16384))),
    "smc.accept.qp.mtu.value": _qp_mtu,
    "smc.confirm.qp.mtu.value": _qp_mtu,
    "smc.accept.server.rmb.virtual.address": _field("rmb_virtual_address"),
    "smc.client.rmb.virtual.address": _field("rmb_virtual_address"),
    "smc.accept.initial.psn": _field("psn", _hexw(6)),
    "smc.initial.psn": _field("psn", _hexw(6)),
    # v2 common
    "smc.accept.eid": _str_field("eid"),
    "smc.confirm.eid": _str_field("eid"),
    "smc.accept.fce1.flags": _fce1,
    "smc.accept.v2_lg.type": _field("v2_direct", _b),
    "smc.accept.fce.flags": _fce_flags,
    "smc.accept.os.type": _field("os_type_code"),
    "smc.confirm.os.type": _field("os_type_code"),
    "smc.accept.smc.version.relnum": _field("release"),
    "smc.confirm.smc.version.relnum": _field("release"),
    "smc.accept.peer.host.name": _str_field("hostname"),
    "smc.confirm.peer.host.name": _str_field("hostname"),
    "smc.confirm.gid.list.entry_count": _field("gid_list_count"),
    "smc.confirm.gid.list.entry": _indexed("gid_list"),
    # SMC-D
    "smc.accept.sender.server.ism.gid": _smcd_gid64,
    "smc.confirm.sender.client.ism.gid": _smcd_gid64,
    "smc.accept.dmb.token": _field("dmb_token"),
    "smc.confirm.dmb.token": _field("dmb_token"),
    "smc.accept.dmbe.conn.index": _field("dmbe_index"),
    "smc.confirm.dmbe.conn.index": _field("dmbe_index"),
    "smc.accept.dmbe.size": _dmbe_byte,
    "smc.confirm.dmbe.size": _dmbe_byte,
    "smc.accept.dmbe.buffer.size": _field("dmbe_size", lambda v: str(_code_from_bytes(v, 16384))),
    "smc.confirm.dmbe.buffer.size": _field("dmbe_size", lambda v: str(_code_from_bytes(v, 16384))),
    "smc.accept.server.linkid": _field("link_id", _hexw(8)),
    "smc.confirm.client.linkid": _field("link_id", _hexw(8)),
    "smc.accept.smc.chid": _field("chid", _hexw(4)),
    "smc.confirm.smc.chid": _field("chid", _hexw(4)),
    # Decline
    "smc.decline.flags": _byte7,
    "smc.decline.smc.version": _header("version"),
    "smc.decline.osync": _field("out_of_sync", _b),
    "smc.sender.peer.id": _field("peer_id_hex"),
    "smc.peer.diag.info": _diag,
    "smc.decline.flags2": _decline_flags2,
    "smc.decline.os.type": _field("os_type_code"),
}


def compare(
    msg: ClcMessage, pdu: TsharkPdu, max_offset: int | None = None
) -> tuple[int, list[str]]:
    """Compare every tshark field with smctrace's value: (fields compared, mismatches)."""
    fields = message_fields(msg)
    seen: dict[str, int] = defaultdict(int)
    compared = 0
    problems: list[str] = []
    for t in pdu.fields:
        index = seen[t.name]
        seen[t.name] += 1
        if max_offset is not None and t.offset >= max_offset:
            continue
        if t.name not in FIELD_MAP:
            problems.append(f"frame {pdu.frame}: unmapped tshark field {t.name}")
            continue
        expect = FIELD_MAP[t.name]
        if expect is None:
            continue
        try:
            ours = expect(msg, fields, t, index)
        except (KeyError, IndexError, TypeError, AssertionError) as exc:
            problems.append(f"frame {pdu.frame}: {t.name}@{t.offset}: no smctrace value ({exc!r})")
            continue
        theirs = t.show.rstrip(" ") if t.name.endswith(("eid", "host.name")) else t.show
        compared += 1
        if ours != theirs:
            problems.append(
                f"frame {pdu.frame}: {t.name}@{t.offset}: tshark {theirs!r} smctrace {ours!r}"
            )
    return compared, problems


# --- pcap writing (for the spec vectors) -----------------------------------------------


def _frame(sport: int, seq: int, payload: bytes, v6: bool = False) -> bytes:
    """One data segment of a stream to port 50000, without TCP options."""
    src, dst = ("2001:db8::1", "2001:db8::2") if v6 else ("10.0.0.1", "10.0.0.2")
    return tcp_frame(src, dst, sport, 50000, seq=seq, ack=1, flags=PSH | ACK, payload=payload,
                     tcp_options=b"")


def _patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def _resized(data: bytes, length: int) -> bytes:
    body = _patch(data[: length - 4], 5, length.to_bytes(2, "big"))
    return body + data[-4:]


def _extra_vectors() -> dict[str, tuple[bytes, bool]]:
    """More kernel-conforming variants (built per spec section 3) -> (bytes, send over IPv6)."""
    v = ALL_VECTORS
    p1 = v["P1"]
    prefixes = bytes.fromhex("20010db8000100000000000000000000") + b"\x30"
    prefixes += bytes.fromhex("fd000000000000000000000000000000") + b"\x08"
    x1 = p1[:4] + b"\x01\x00\x7e\x2b" + p1[8:40]  # v2, typev2 N, typev1 B, 126 bytes
    x1 += bytes.fromhex("aaaabbbbccccdddd") + bytes(32)  # SMC-D area, no v2 extension
    x1 += bytes(7) + b"\x02" + prefixes + p1[-4:]  # IPv6 connection: IPv4 0, 2 prefixes
    return {
        "X1-ipv6-prefixes": (x1, True),
        "X2-P2-over-ipv6": (v["P2"], True),
        "X3-smcr-v2-accept-no-fc": (_resized(_patch(v["A3"], 7, b"\x20"), 108), False),
        "X4-smcd-v2-confirm-no-fc": (
            _resized(_patch(_patch(v["A1"], 4, b"\x03"), 7, b"\x21"), 78),
            False,
        ),
        "X5-smcd-v1-confirm": (_patch(v["A5"], 4, b"\x03"), False),
        "X6-smcr-v1-bad-mtu": (_patch(v["A4"], 50, b"\x2f"), False),
        "X7-smcr-v2-confirm-1-gid": (_resized(_patch(v["C3"], 156, b"\x01"), 180), False),
        "X8-smcd-v2-confirm-release0": (_patch(v["A2"], 4, b"\x03"), False),
        # Linux 4.19-5.9 v1 Proposal offering both paths: SMC-D area present (92 bytes)
        "X9-v1-proposal-smcd-area": (
            _patch(_patch(v["P3"], 7, b"\x13"), 40, bytes.fromhex("1122334455667788")),
            False,
        ),
    }


def write_pcap(path: Path, frames: list[bytes]) -> Path:
    return captures.write_pcap(path, LINKTYPE_ETHERNET, [(f, len(f)) for f in frames])


# --- tests ---------------------------------------------------------------------------------

REAL_PCAPS = sorted(REAL.glob("*.pcap")) if REAL.is_dir() else []


@needs_tshark
@pytest.mark.skipif(not REAL_PCAPS, reason=f"no real-kernel captures in {REAL}")
@pytest.mark.parametrize("pcap", REAL_PCAPS, ids=lambda p: p.stem)
def test_real_capture_matches_tshark(pcap: Path) -> None:
    for pdu in tshark_oracle.pdus(pcap):
        msg = decode(pdu.data)
        assert not pdu.malformed, f"tshark flags frame {pdu.frame} malformed"
        assert msg.malformed is None, (pdu.frame, msg.malformed)
        compared, problems = compare(msg, pdu)
        assert not problems, "\n".join(problems)
        assert compared >= 5


@needs_tshark
@pytest.mark.skipif(not REAL_PCAPS, reason=f"no real-kernel captures in {REAL}")
def test_real_captures_cover_all_message_kinds() -> None:
    kinds: set[tuple[str, str, int]] = set()
    total = 0
    for pcap in REAL_PCAPS:
        for pdu in tshark_oracle.pdus(pcap):
            msg = decode(pdu.data)
            path = msg.path if isinstance(msg, AcceptConfirm) else "-"
            kinds.add((msg.kind, path, msg.version))
            total += compare(msg, pdu)[0]
    assert {("proposal", "-", 2), ("decline", "-", 1), ("decline", "-", 2)} <= kinds
    assert {("accept", "SMC-D", 2), ("confirm", "SMC-R", 2)} <= kinds
    assert total > 300


# Known tshark 4.0.17 gaps (spec 7.4): P4 = G4 (v1 Proposal with iparea_offset 0; tshark
# reads past the message, only the fixed 40-byte base is right), A2 = G3 (SMC-D v2 FCE of
# release 0; tshark reads 16 bytes too many, but everything it shows is right).
TSHARK_MALFORMED = {"P4": 40, "hwipl-proposal": 40, "A2": None}


EXTRA = _extra_vectors()


@pytest.fixture(scope="module")
def vector_pdus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TsharkPdu]:
    """Every vector in its own TCP stream of one pcap, decoded by tshark."""
    if TSHARK is None:
        pytest.skip("tshark is not installed")
    vectors = {**{n: (d, False) for n, d in ALL_VECTORS.items()}, **EXTRA}
    frames = [_frame(40000 + i, 1000, d, v6) for i, (d, v6) in enumerate(vectors.values())]
    pcap = write_pcap(tmp_path_factory.mktemp("oracle") / "vectors.pcap", frames)
    pdus = sorted(tshark_oracle.pdus(pcap), key=lambda p: p.frame)
    assert len(pdus) == len(vectors)
    return dict(zip(vectors, pdus, strict=True))


@needs_tshark
@pytest.mark.parametrize("name", list(ALL_VECTORS))
def test_spec_vector_matches_tshark(name: str, vector_pdus: dict[str, TsharkPdu]) -> None:
    pdu = vector_pdus[name]
    assert pdu.data == ALL_VECTORS[name]
    msg = decode(pdu.data)
    assert msg.malformed is None
    assert pdu.malformed == (name in TSHARK_MALFORMED), "spec 8.2: only P4 and A2 are malformed"
    compared, problems = compare(msg, pdu, TSHARK_MALFORMED.get(name))
    assert not problems, "\n".join(problems)
    assert compared >= 5


@needs_tshark
@pytest.mark.parametrize("name", list(EXTRA))
def test_extra_vector_matches_tshark(name: str, vector_pdus: dict[str, TsharkPdu]) -> None:
    pdu = vector_pdus[name]
    assert pdu.data == EXTRA[name][0]
    msg = decode(pdu.data)
    assert msg.malformed is None
    assert not pdu.malformed
    compared, problems = compare(msg, pdu)
    assert not problems, "\n".join(problems)
    assert compared >= 5


@needs_tshark
def test_oracle_covers_every_mapped_field(vector_pdus: dict[str, TsharkPdu]) -> None:
    """Every tshark field of the map is exercised by some vector (none is dead code)."""
    seen = {t.name for pdu in vector_pdus.values() for t in pdu.fields}
    assert set(FIELD_MAP) - seen == set()


@needs_tshark
def test_oracle_reassembly_and_coalesced_pdus(tmp_path: Path) -> None:
    a3, d1, c3 = ALL_VECTORS["A3"], ALL_VECTORS["D1"], SPEC_8_2["C3"][1]
    frames = [
        _frame(41000, 1000, a3[:50]),  # A3 split over two segments ...
        _frame(41000, 1050, a3[50:] + d1),  # ... followed by D1 in the same segment
        _frame(41001, 5000, c3[:7]),  # C3 split inside its header
        _frame(41001, 5007, c3[7:]),
    ]
    pdus = tshark_oracle.pdus(write_pcap(tmp_path / "split.pcap", frames))
    assert [p.data for p in pdus] == [a3, d1, c3]
    for pdu in pdus:
        compared, problems = compare(decode(pdu.data), pdu)
        assert not problems and compared >= 5


@needs_tshark
def test_oracle_can_fail(vector_pdus: dict[str, TsharkPdu]) -> None:
    """A wrong decode must be caught: feed smctrace altered bytes, compare with tshark's."""
    pdu = vector_pdus["C3"]
    bad = bytearray(pdu.data)
    bad[61:64] = b"\x00\x00\x01"  # PSN
    bad[0xB0] ^= 0xFF  # second GID-list entry
    _, problems = compare(decode(bytes(bad)), pdu)
    assert any("smc.initial.psn" in p for p in problems)
    assert any("smc.confirm.gid.list.entry" in p for p in problems)
    # and a message of another kind cannot pass as this one
    _, problems = compare(decode(ALL_VECTORS["A1"]), pdu)
    assert problems

"""PacketFilter against tcpdump: the same expression must select the same frames.

Every real-kernel capture and a synthetic capture per link type smctrace reads go through
tcpdump (``tcpdump -r FILE -w - EXPR``, whose records are found again in FILE) and through
PacketFilter; the sets of frame numbers must be equal, and where tcpdump refuses an
expression for a link type, PacketFilter must refuse it with libpcap's same message.
"""

from __future__ import annotations

import ctypes.util
import io
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from smctrace.capture import pcapfilter
from smctrace.capture.pcapfile import CaptureFile
from smctrace.capture.pcapfilter import PacketFilter
from smctrace.frame import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_ALT_12,
    LINKTYPE_RAW_ALT_14,
    SUPPORTED_LINKTYPES,
    FilterError,
)
from smctrace.packet import SYN
from tests.support.captures import filter_test_frames, write_pcap
from tests.support.synth import tcp_frame

REAL = sorted((Path(__file__).resolve().parent / "data" / "real-kernel").glob("*.pcap"))
TCPDUMP = shutil.which("tcpdump") or ("/usr/sbin/tcpdump" if Path("/usr/sbin/tcpdump").exists()
                                      else None)
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")

# Ethernet with 802.1Q and QinQ tagged frames too; 14 (OpenBSD's raw IP), for which libpcap
# on Linux compiles nothing, has its own test below.
SYNTHETIC_LINKTYPES = tuple(sorted(SUPPORTED_LINKTYPES - {LINKTYPE_RAW_ALT_14}))

EXPRESSIONS = (
    "",
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "arp",
    "ip",
    "ip6",
    "host 127.0.0.1",
    "host 192.0.2.1",
    "host ::1",
    "host 2001:db8::1",
    "src host 192.0.2.2",
    "dst host 192.0.2.1",
    "net 192.0.2.0/24",
    "net 10.0.0.0/8",
    "src net 2001:db8::/32",
    "port 7001",
    "src port 7001",
    "dst port 7001",
    "tcp port 22",
    "not port 22",
    "portrange 7000-7010",
    "udp port 4791",
    "tcp port 7001 and host 192.0.2.1",
    "host 10.1.1.1 and port 7001",
    "tcp and (port 8080 or port 443)",
    "ip6 and tcp port 7001",
    "not (host 127.0.0.1 or host ::1)",
    "tcp[13]&2!=0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)",
    "tcp[tcpflags] & tcp-rst != 0",
    "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0xe2d4c3d9",
    "ip[6:2] & 0x1fff != 0",
    "greater 200",
    "less 80",
    "len > 100 and tcp",
    "vlan",
    "vlan 100",
    "vlan and tcp port 7001",
    "vlan 200 and vlan 300 and host 10.1.1.1",
    "ether host 52:54:00:5c:00:01",
    "ether multicast",
)


@pytest.fixture(scope="module")
def synthetic_captures(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("filter-captures")
    return {
        linktype: write_pcap(folder / f"linktype-{linktype}.pcap", linktype,
                             filter_test_frames(linktype))
        for linktype in SYNTHETIC_LINKTYPES
    }


REJECTS_ALL = "expression rejects all packets"  # libpcap's refusal of a useless program
BPF_RET_K = 0x06

Selection = frozenset[int] | str  # kept frame numbers, or the error libpcap reported


@cache
def _records(path: Path) -> tuple[tuple[int, float, bytes, int, int], ...]:
    """(number, time, data, link type, wire length) of every frame of ``path``."""
    with CaptureFile(str(path)) as capture:
        return tuple((f.number, f.time, f.data, f.linktype, f.orig_len)
                     for f in capture.frames())


def tcpdump_selection(path: Path, expression: str) -> Selection:
    """The numbers of the frames ``tcpdump -r path -w - expression`` keeps.

    tcpdump writes the kept records unchanged and in order, so each is found again as
    the next input record with the same time, bytes and wire length (identical records
    get the same verdict from any filter, so matching the first is right).
    """
    assert TCPDUMP is not None
    proc = subprocess.run(
        [TCPDUMP, "-r", str(path), "-w", "-", expression],
        capture_output=True, timeout=60, check=False,
    )
    if proc.returncode != 0:
        error = proc.stderr.decode().strip().splitlines()[-1]
        return error.removeprefix("tcpdump: ").removeprefix("can't parse filter expression: ")
    with CaptureFile(io.BytesIO(proc.stdout)) as kept:
        kept_records = [(f.time, f.data, f.orig_len) for f in kept.frames()]
    numbers = []
    records = iter(_records(path))
    for kept_record in kept_records:
        for number, time, data, _linktype, orig_len in records:
            if (time, data, orig_len) == kept_record:
                numbers.append(number)
                break
        else:
            raise AssertionError(f"tcpdump kept a record not in {path.name}: {kept_record}")
    return frozenset(numbers)


def filter_selection(path: Path, expression: str) -> Selection:
    with PacketFilter(expression) as packet_filter:
        try:
            return frozenset(
                number
                for number, _time, data, linktype, orig_len in _records(path)
                if packet_filter.matches(data, linktype, orig_len)
            )
        except FilterError as error:
            return str(error)


def _assert_same_selections(path: Path) -> dict[str, Selection]:
    mismatches = []
    selections = {}
    for expression in EXPRESSIONS:
        expected = tcpdump_selection(path, expression)
        actual = filter_selection(path, expression)
        selections[expression] = actual
        if expected == REJECTS_ALL:
            expected = frozenset()  # PacketFilter's reading of it, see pcapfilter
        if isinstance(expected, str):
            # The same libpcap message, after smctrace's "bad filter expression ...: ".
            if not (isinstance(actual, str) and actual.endswith(": " + expected)):
                mismatches.append(f"{expression!r}: tcpdump error {expected!r}, got {actual!r}")
        elif actual != expected:
            shown = actual if isinstance(actual, str) else sorted(actual)
            mismatches.append(f"{expression!r}: tcpdump keeps {sorted(expected)}, "
                              f"PacketFilter {shown}")
    assert not mismatches, f"{path.name}:\n" + "\n".join(mismatches)
    return selections


@needs_tcpdump
@pytest.mark.parametrize("path", REAL, ids=[path.name for path in REAL])
def test_real_captures_select_like_tcpdump(path: Path) -> None:
    selections = _assert_same_selections(path)
    assert selections[""] == frozenset(range(1, len(_records(path)) + 1))


@needs_tcpdump
@pytest.mark.parametrize("linktype", SYNTHETIC_LINKTYPES)
def test_synthetic_link_types_select_like_tcpdump(
    linktype: int, synthetic_captures: dict[int, Path]
) -> None:
    _assert_same_selections(synthetic_captures[linktype])


def test_every_expression_tells_frames_apart(synthetic_captures: dict[int, Path]) -> None:
    """Each expression keeps some frames and drops others somewhere, so the comparisons
    with tcpdump above are not between two empty (or two full) sets."""
    paths = [*REAL, *synthetic_captures.values()]
    for expression in EXPRESSIONS[1:]:
        kept = dropped = 0
        for path in paths:
            selection = filter_selection(path, expression)
            if isinstance(selection, str):
                continue
            kept += len(selection)
            dropped += len(_records(path)) - len(selection)
        assert kept and dropped, f"{expression!r} keeps {kept}, drops {dropped}"


@needs_tcpdump
@pytest.mark.parametrize("linktype", SYNTHETIC_LINKTYPES)
@pytest.mark.parametrize("expression", ["tcp port 7001 and host 192.0.2.1", "ip6 or udp",
                                        "tcp[13]&2!=0"])
def test_instructions_are_tcpdumps_program(
    linktype: int, expression: str, synthetic_captures: dict[int, Path]
) -> None:
    assert TCPDUMP is not None
    proc = subprocess.run(
        [TCPDUMP, "-dd", "-r", str(synthetic_captures[linktype]), expression],
        capture_output=True, text=True, timeout=60, check=False,
    )
    with PacketFilter(expression) as packet_filter:
        if proc.returncode != 0:
            # IPv4 tests on the IPv6-only link type: no frame can match.
            assert proc.stderr.strip().endswith("tcpdump: " + REJECTS_ALL)
            program = packet_filter.instructions(linktype)
            assert not any(packet_filter.matches(frame, linktype)
                           for frame, _wire_len in filter_test_frames(linktype))
            assert program[-1] == (BPF_RET_K, 0, 0, 0)
            return
        expected = [
            tuple(int(field, 0) for field in match)
            for match in re.findall(r"\{ (\w+), (\d+), (\d+), (\w+) \}", proc.stdout)
        ]
        assert expected
        assert packet_filter.instructions(linktype) == expected


def test_syntax_error_is_one_line_with_libpcaps_message() -> None:
    with PacketFilter("host") as packet_filter, pytest.raises(FilterError) as caught:
        packet_filter.check()
    assert str(caught.value) == "bad filter expression 'host': syntax error"


def test_expression_a_link_type_cannot_take_names_the_link_type() -> None:
    with PacketFilter("vlan 100") as packet_filter:
        packet_filter.check(LINKTYPE_ETHERNET)
        with pytest.raises(FilterError) as caught:
            packet_filter.matches(bytes(40), LINKTYPE_RAW)
    assert str(caught.value) == (
        "bad filter expression 'vlan 100' for link type RAW (101): no VLAN support for Raw IP"
    )


def test_unknown_link_type_is_a_filter_error() -> None:
    with PacketFilter("tcp") as packet_filter, pytest.raises(FilterError) as caught:
        packet_filter.matches(bytes(40), 12345)
    assert str(caught.value).startswith("bad filter expression 'tcp' for link type 12345: "
                                        "unknown data link type 12345")


def test_nul_in_expression_is_a_filter_error() -> None:
    with PacketFilter("tcp\0port 1") as packet_filter, pytest.raises(FilterError) as caught:
        packet_filter.check()
    assert "NUL" in str(caught.value)


def test_wire_length_decides_length_tests() -> None:
    frame = tcp_frame("192.0.2.2", "192.0.2.1", 40000, 7001, payload=bytes(900))[:60]
    with PacketFilter("greater 500") as packet_filter:
        assert not packet_filter.matches(frame, LINKTYPE_ETHERNET)
        assert packet_filter.matches(frame, LINKTYPE_ETHERNET, orig_len=974)


def test_alternating_link_types_use_each_ones_program() -> None:
    syn = {lt: tcp_frame("10.1.1.1", "10.2.3.4", 40000, 7001, flags=SYN, linktype=lt)
           for lt in (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, LINKTYPE_NULL)}
    other = tcp_frame("10.1.1.1", "10.2.3.4", 40000, 22, flags=SYN, linktype=LINKTYPE_RAW)
    with PacketFilter("host 10.1.1.1 and port 7001") as packet_filter:
        for _ in range(3):
            for linktype, frame in syn.items():
                assert packet_filter.matches(frame, linktype)
            assert not packet_filter.matches(other, LINKTYPE_RAW)


def test_alternative_raw_link_type_14_filters_as_raw_ip() -> None:
    frame = tcp_frame("10.1.1.1", "10.2.3.4", 40000, 7001, linktype=LINKTYPE_RAW_ALT_14)
    with PacketFilter("port 7001") as packet_filter:
        assert packet_filter.matches(frame, LINKTYPE_RAW_ALT_14)
        assert packet_filter.instructions(LINKTYPE_RAW_ALT_14) == packet_filter.instructions(
            LINKTYPE_RAW_ALT_12
        )


def test_closed_filter_refuses_to_match() -> None:
    frame = tcp_frame("10.1.1.1", "10.2.3.4", 40000, 7001)
    with PacketFilter("port 7001") as packet_filter:
        assert packet_filter.matches(frame, LINKTYPE_ETHERNET)
    with pytest.raises(ValueError, match="closed"):
        packet_filter.matches(frame, LINKTYPE_ETHERNET)


def test_missing_libpcap_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pcapfilter, "_libpcap", None)
    monkeypatch.setattr(pcapfilter, "LIBPCAP_SONAME", "libpcap-not-here.so.0")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(FilterError) as caught:
        PacketFilter("tcp")
    assert str(caught.value) == (
        "filter expressions need libpcap (libpcap-not-here.so.0), which is not installed: "
        "apt-get install libpcap0.8"
    )

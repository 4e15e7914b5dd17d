"""The kernel engines beyond the case table: program shape, counters, state bounds, cost.

What each engine keeps of each frame is tests/test_match_rule.py (the one case table);
this file holds what only the eBPF and classic-BPF programs have: their size and listing,
the counters user space reads, the pending table that absorbs a flood of SMC SYNs, the
SYN rate limit, and the cost per ordinary frame.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from smctrace.frame import LINKTYPE_RAW, LinkLayer
from smctrace.match import cbpf
from smctrace.match.bcc import BccFilter, FilterParams, bcc_problem
from tests.support.bpf_testrun import bpf_prog_test_run, run_socket_filter
from tests.support.match_cases import (
    ACCEPT,
    ACK,
    APP_DATA,
    CLIENT,
    CONFIRM,
    PROPOSAL,
    PSH,
    SERVER,
    SYN,
)
from tests.support.synth import tcp_frame

BPF_UNAVAILABLE = bcc_problem()
needs_bcc = pytest.mark.skipif(
    BPF_UNAVAILABLE is not None, reason=f"eBPF backend unavailable: {BPF_UNAVAILABLE}"
)


def frame(port: int, *, sender: str = "c", flags: int = ACK | PSH, payload: bytes = b"",
          smc_option: bool = False, seq: int = 1000) -> bytes:
    a, b = ((CLIENT[0], port), SERVER) if sender == "c" else (SERVER, (CLIENT[0], port))
    return tcp_frame(a[0], b[0], a[1], b[1], seq=seq, flags=flags, payload=payload,
                     smc_option=smc_option, linktype=LINKTYPE_RAW)


# -- classic BPF -------------------------------------------------------------------------


def test_cbpf_program_size_and_listing() -> None:
    for link_layer in LinkLayer:
        program = cbpf.cbpf_program(link_layer)
        assert len(program) <= cbpf.BPF_MAXINSNS
        # Every jump must land inside the program.
        for index, (code, jt, jf, k) in enumerate(program):
            if code & 0x07 == cbpf.BPF_JMP:
                targets = [k] if code & 0xF0 == cbpf.BPF_JA else [jt, jf]
                assert all(index + 1 + t < len(program) for t in targets)
        text = cbpf.listing(program)
        assert text.splitlines()[0] == "(000) ld       #pkttype"
        assert len(text.splitlines()) == len(program)
    assert len(cbpf.assemble(cbpf.cbpf_program())) == 8 * len(cbpf.cbpf_program())


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for AF_PACKET")
def test_cbpf_attaches_in_kernel() -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        for link_layer in LinkLayer:
            cbpf.attach_filter(sock, cbpf.cbpf_program(link_layer))


# -- eBPF ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> Iterator[BccFilter]:
    """Small tables and a low SYN rate, so bounds and limits show with few frames."""
    if BPF_UNAVAILABLE is not None:
        pytest.skip(f"eBPF backend unavailable: {BPF_UNAVAILABLE}")
    params = FilterParams(max_connections=64, max_pending=64, syn_rate=10, syn_burst=20)
    bpf_filter = BccFilter(LinkLayer.NONE, params)
    yield bpf_filter
    bpf_filter.close()


def handshake(bpf_filter: BccFilter, port: int) -> list[int]:
    return [run_socket_filter(bpf_filter.fd, f) for f in (
        frame(port, flags=SYN, smc_option=True),
        frame(port, sender="s", flags=SYN | ACK, smc_option=True, seq=5000),
        frame(port, payload=PROPOSAL, seq=1001),
        frame(port, sender="s", payload=ACCEPT, seq=5001),
        frame(port, payload=CONFIRM, seq=1001 + len(PROPOSAL)))]


@needs_bcc
def test_counters_count_seen_kept_and_syns(small: BccFilter) -> None:
    small.clear_connections()
    before = small.counters()
    kept = handshake(small, 2000)
    kept.append(run_socket_filter(small.fd, frame(2000, payload=APP_DATA, seq=1200)))
    kept.append(run_socket_filter(small.fd, frame(2001, flags=SYN)))
    after = small.counters()
    delta = {name: after[name] - before[name] for name in after}
    assert delta["seen_by_filter"] == len(kept)
    assert delta["kept_by_filter"] == sum(1 for k in kept if k)
    assert delta["smc_syns"] == 1 and delta["answered"] == 1 and delta["plain_syns"] == 1


@needs_bcc
def test_a_flood_of_smc_syns_is_held_apart_and_rate_limited(small: BccFilter) -> None:
    """Unanswered SYNs fill only the pending table; beyond the rate they are remembered
    but not passed (counted); a real handshake still crosses whole during the flood."""
    small.clear_connections()
    before = small.counters()
    handshake(small, 3000)  # a followed connection in the middle of its CLC phase
    passed = sum(1 for port in range(10_000, 10_500)
                 if run_socket_filter(small.fd, frame(port, flags=SYN, smc_option=True)))
    deferred = small.counters()["syns_deferred"] - before["syns_deferred"]
    assert passed < 100 and passed + deferred == 500
    assert small.pending() <= 64 and small.connections() == 1
    # the followed connection was not evicted by the flood: its late Decline crosses
    late = frame(3000, payload=PROPOSAL[:0] + b"\xe2\xd4\xc3\xd9\x04\x00\x2c\x20" + bytes(36),
                 seq=1001 + len(PROPOSAL) + len(CONFIRM))
    assert run_socket_filter(small.fd, late) > 0
    # and a new handshake answered during the flood is followed
    kept = handshake(small, 3001)
    assert kept[1:] == [k for k in kept[1:] if k > 0]


@needs_bcc
def test_ebpf_program_cost_per_ordinary_frame(small: BccFilter) -> None:
    """Reported, not asserted tightly: the kernel's own timing of 10,000 runs."""
    data = frame(4000, payload=APP_DATA)
    result = bpf_prog_test_run(small.fd, bytes(12) + b"\x08\x00" + data, repeat=10_000)
    assert result.retval == 0
    print(f"eBPF filter: {result.duration_ns} ns per ordinary data frame")


def test_not_root_message_is_one_line() -> None:
    """The capability check names what is missing (runs as root here: nothing)."""
    from smctrace.capabilities import missing_for_capture

    if os.geteuid() == 0:
        assert missing_for_capture(need_bpf=True) == []

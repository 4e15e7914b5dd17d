"""Every real-kernel capture: right messages, versions, lengths and outcomes.

The expectations below come from outside smctrace: tshark 4.0.17's decode of each capture
(`tshark -r F -Y smc -T fields -e smc.clc_msg -e smc.length ...`), tcpdump's frame counts,
and what each lab scenario did (shared/lab-reference/RECIPE.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smctrace.cli import main

REAL = Path(__file__).resolve().parent / "data" / "real-kernel"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-kernel"

# capture: (frames, plain TCP connections, [connection expectations])
# connection: outcome, path, version, release, [(sender, type, version, length)], decline
EXPECTED: dict[str, tuple[int, int, list[dict[str, Any]]]] = {
    "A-smc-lo-decline-k61": (12, 0, [dict(
        outcome="fallback", path=None, version=None, release=None, client="127.0.0.1:46198",
        server="127.0.0.1:7001", syn_option=True, synack_option=True,
        messages=[("client", "decline", 1, 28)], decline=(0x03030000, "client"))]),
    "A6-smc-lo-decline-v6-k612": (12, 0, [dict(
        outcome="fallback", path=None, version=None, release=None, client="[::1]:60682",
        server="[::1]:7001", syn_option=True, synack_option=True,
        messages=[("client", "decline", 1, 28)], decline=(0x03030000, "client"))]),
    "B-smc-client-tcp-server-k61": (10, 0, [dict(
        outcome="fallback", path=None, version=None, release=None, syn_option=True,
        synack_option=False, messages=[], decline=None)]),
    "B2-tcp-client-smc-server-k612": (10, 1, []),
    "C-smcd-loopback-ism-k612lo": (11, 0, [dict(
        outcome="smc", path="SMC-D", version=2, release=1, client="127.0.0.1:57474",
        server="127.0.0.1:7001", syn_option=True, synack_option=True,
        messages=[("client", "proposal", 2, 224), ("server", "accept", 2, 130),
                  ("client", "confirm", 2, 130)], decline=None)]),
    "C6-smcd-loopback-ism-v6-k612lo": (11, 0, [dict(
        outcome="smc", path="SMC-D", version=2, release=1, client="[::1]:46134",
        server="[::1]:7001", syn_option=True, synack_option=True,
        messages=[("client", "proposal", 2, 224), ("server", "accept", 2, 130),
                  ("client", "confirm", 2, 130)], decline=None)]),
    "D2-smcr-v2-rxe-k612": (48, 0, [dict(
        outcome="smc", path="SMC-R", version=2, release=1, client="192.0.2.2:57038",
        server="192.0.2.1:7001", syn_option=True, synack_option=True,
        messages=[("client", "proposal", 2, 156), ("server", "accept", 2, 160),
                  ("client", "confirm", 2, 180)], decline=None)]),
    "D7-smcr-v2-mixed-srv61-cli612-srv_k61-cli_k612": (26, 0, [dict(
        outcome="fallback", path=None, version=None, release=None, client="192.0.2.2:34736",
        server="192.0.2.1:7001", syn_option=True, synack_option=True,
        messages=[("client", "proposal", 2, 156), ("server", "accept", 2, 160),
                  ("client", "confirm", 2, 180), ("client", "decline", 2, 44)],
        decline=(0x02010000, "client"))]),
    "F-smcd-v2-decline-noueid-k612lo": (12, 0, [dict(
        outcome="fallback", path=None, version=None, release=None, client="127.0.0.1:50470",
        server="127.0.0.1:7001", syn_option=True, synack_option=True,
        messages=[("client", "proposal", 2, 192), ("server", "decline", 2, 44)],
        decline=(0x03030008, "server"))]),
    "F2-smcr-server-no-rdma-k612": (19, 0, [dict(
        outcome="fallback", path=None, version=None, release=None, client="192.0.2.2:56564",
        server="192.0.2.1:7001", syn_option=True, synack_option=True,
        messages=[("client", "proposal", 2, 156), ("server", "decline", 2, 44)],
        decline=(0x03030002, "server"))]),
    # issue 12: new kernel generations (k510 = 5.10, k617 = 6.17, k7 = self-built 7.3)
    "C-smcd-loopback-ism-k7": (11, 0, [dict(
        outcome="smc", path="SMC-D", version=2, release=1, client="127.0.0.1:47274",
        server="127.0.0.1:7001", syn_option=True, synack_option=True,
        messages=[("client", "proposal", 2, 224),
                  ("server", "accept", 2, 130), ("client", "confirm", 2, 130)],
        decline=None)]),
    "D2-smcr-v2-rxe-k7": (45, 0, [dict(
        outcome="smc", path="SMC-R", version=2, release=1, client="192.0.2.2:51356",
        server="192.0.2.1:7001", syn_option=True, synack_option=True,
        messages=[("client", "proposal", 2, 224),
                  ("server", "accept", 2, 160), ("client", "confirm", 2, 180)],
        decline=None)]),
    "M-smcr-v2-mapped-v6-k617": (45, 0, [dict(
        outcome="smc", path="SMC-R", version=2, release=1, client="192.0.2.2:60228",
        server="192.0.2.1:7001", syn_option=True, synack_option=True,
        messages=[("client", "proposal", 2, 156),
                  ("server", "accept", 2, 160), ("client", "confirm", 2, 180)],
        decline=None)]),
    "M-smcr-v2-mapped-v6-k612": (17, 0, [dict(
        outcome="fallback", path=None, version=None, release=None, client="192.0.2.2:34870",
        server="192.0.2.1:7001", syn_option=True, synack_option=True,
        messages=[("client", "decline", 1, 28)],
        decline=(0x03030000, "client"))]),
    "D2-smcr-v2-rxe-k510": (20, 0, [dict(
        outcome="fallback", path=None, version=None, release=None, client="192.0.2.2:48356",
        server="192.0.2.1:7001", syn_option=True, synack_option=True,
        messages=[("client", "decline", 1, 28)],
        decline=(0x03030000, "client"))]),
    "X2-smcr-mixed-srv510-cli7-srv_k510-cli_k7": (19, 0, [dict(
        outcome="fallback", path=None, version=None, release=None, client="192.0.2.2:56224",
        server="192.0.2.1:7001", syn_option=True, synack_option=True,
        messages=[("client", "proposal", 2, 224), ("server", "decline", 1, 28)],
        decline=(0x03030000, "server"))]),
    "S-smcr-syncookies-k7": (17, 0, [dict(
        outcome="fallback", path=None, version=None, release=None, client="192.0.2.2:57478",
        server="192.0.2.1:7001", syn_option=True, synack_option=False,
        messages=[],
        decline=None)]),
    "F2-smcr-server-no-rdma-k7": (18, 0, [dict(
        outcome="fallback", path=None, version=None, release=None, client="192.0.2.2:36706",
        server="192.0.2.1:7001", syn_option=True, synack_option=True,
        messages=[("client", "proposal", 2, 224), ("server", "decline", 2, 44)],
        decline=(0x03030007, "server"))]),
}


def trace_json(path: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["-f", str(path), "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_every_bundled_capture_has_expectations() -> None:
    assert sorted(p.stem for p in REAL.glob("*.pcap")) == sorted(EXPECTED)


def test_bundled_captures_are_unchanged_copies_of_shared() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present (only in the development workspace and CI)")
    for pcap in SHARED.glob("*.pcap"):
        assert (REAL / pcap.name).read_bytes() == pcap.read_bytes(), pcap.name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_capture(name: str) -> None:
    frames, plain, conns = EXPECTED[name]
    events = trace_json(REAL / f"{name}.pcap")
    summary = events[-1]
    assert summary["event"] == "summary"
    assert summary["frames"] == frames
    assert summary["plain_tcp"] == plain
    assert summary["connections"] == len(conns)
    assert summary["malformed"] == 0 and summary["gaps"] == 0
    got_conns = [e for e in events if e["event"] == "connection"]
    clc = [e for e in events if e["event"] == "clc"]
    assert len(got_conns) == len(conns)
    for exp, got in zip(conns, got_conns, strict=True):
        for key in ("outcome", "path", "version", "release", "syn_option", "synack_option",
                    "client", "server"):
            if key in exp:
                assert got[key] == exp[key], key
        mine = [m for m in clc if (m["client"], m["server"]) == (got["client"], got["server"])]
        assert [(m["from"], m["type"], m["version"], m["length"]) for m in mine] == \
            exp["messages"]
        assert got["messages"] == [m[1] for m in exp["messages"]]
        assert all(m["malformed"] is None for m in mine)
        if exp["decline"] is None:
            assert got["decline"] is None
        else:
            code, sender = exp["decline"]
            assert got["decline"]["code"] == code and got["decline"]["from"] == sender
            assert got["decline"]["hex"] == f"0x{code:08x}"
        if got["outcome"] != "incomplete":
            assert got["handshake_ms"] is not None and got["handshake_ms"] >= 0
        assert got["start"] <= got["end"]

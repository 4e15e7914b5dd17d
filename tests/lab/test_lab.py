"""Tests of the SMC lab (scripts/smc-lab).

Fast tests (always run): the command line, the scenario headers and their
expectations, the expectation checker, the initramfs cpio writer, and the
expectations against the bundled real-kernel captures (tshark oracle, and
smctrace -f once it works).

Slow tests (QEMU guests; ~10 s each) run only with SMCLAB_RUN=1 and a built lab
(`scripts/smc-lab/smc-lab build`). The full matrix is `smc-lab test` (make lab-test).
"""

from __future__ import annotations

import gzip
import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SMCLAB = REPO / "scripts" / "smc-lab" / "smc-lab"
REAL = REPO / "tests" / "data" / "real-kernel"

_loader = importlib.machinery.SourceFileLoader("smclab", str(SMCLAB))
_spec = importlib.util.spec_from_loader("smclab", _loader)
assert _spec
lab: Any = importlib.util.module_from_spec(_spec)
sys.modules["smclab"] = lab  # dataclasses look their module up
_loader.exec_module(lab)

SCENARIOS = lab.all_scenarios()


def smclab(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SMCLAB), *args], capture_output=True, text=True, timeout=600, **kw)


# --------------------------------------------------------------------------- CLI


def test_entry_point_is_executable() -> None:
    assert os.access(SMCLAB, os.X_OK)


def test_help_lists_subcommands() -> None:
    p = smclab("--help")
    assert p.returncode == 0
    for sub in ("build", "list", "run", "check", "live", "test", "clean"):
        assert re.search(rf"^\s+{sub}\b", p.stdout, re.M), sub


@pytest.mark.parametrize("sub", ["build", "list", "run", "check", "live", "test", "clean"])
def test_subcommand_help(sub: str) -> None:
    p = smclab(sub, "--help")
    assert p.returncode == 0, p.stderr
    assert f"smc-lab {sub}" in p.stdout


def test_list(tmp_path: Path) -> None:
    p = smclab("list", "-v", env=dict(os.environ, SMCLAB_DIR=str(tmp_path)))
    assert p.returncode == 0, p.stderr
    assert "none, run `smc-lab build`" in p.stdout
    for s in SCENARIOS:
        assert s.name in p.stdout


def test_run_unknown_scenario() -> None:
    p = smclab("run", "no-such-scenario")
    assert p.returncode == 2
    assert "no such scenario" in p.stderr


def test_run_unbuilt_lab_is_a_clear_error(tmp_path: Path) -> None:
    p = smclab("run", "C-smcd-loopback-ism", env=dict(os.environ, SMCLAB_DIR=str(tmp_path)))
    assert p.returncode == 2
    assert "not built: run `smc-lab build`" in p.stderr
    assert "Traceback" not in p.stderr


# --------------------------------------------------------------------------- scenarios


def test_scenario_set_covers_the_issue() -> None:
    names = {s.name for s in SCENARIOS}
    for prefix in (
        "A-",
        "A6-",
        "B-",
        "B6-",
        "B2-",
        "C-",
        "C2-",
        "C3-",
        "C6-",
        "D2-",
        "D5-",
        "D7-",
        "D8-",
        "F-",
        "F2-",
        "F3-",
    ):
        assert any(n.startswith(prefix) for n in names), prefix
    assert lab.DEFAULT_LIVE in names
    assert lab.load_scenario(lab.DEFAULT_LIVE).vms == 2


@pytest.mark.parametrize("scn", SCENARIOS, ids=lambda s: s.name)
def test_scenario_header(scn: Any) -> None:
    assert scn.kernel in lab.FLAVORS
    assert scn.vms in (1, 2)
    for k in [scn.server_kernel, scn.client_kernel, *scn.also]:
        assert k is None or k in lab.FLAVORS
    text = scn.script.read_text()  # the guest script (another scenario's with guest=)
    if scn.vms == 1:
        assert "run_single()" in text
    else:
        assert "run_server()" in text and "run_client()" in text
    allowed = {
        "connections",
        "outcome",
        "path",
        "version",
        "release",
        "messages",
        "decline",
        "decline_from",
    }
    for label, exp in scn.expect.items():
        assert set(exp) <= allowed, (label, set(exp) - allowed)
        if exp.get("connections") == "0":
            continue
        assert exp["outcome"] in ("smc", "fallback", "failed", "incomplete")
        msgs = exp.get("messages", "")
        assert all(m in ("proposal", "accept", "confirm", "decline") for m in msgs.split(",") if m)
        if exp["outcome"] == "smc":
            assert exp["path"] in ("SMC-R", "SMC-D")
        if "decline" in exp:
            assert re.fullmatch(r"0x[0-9a-f]{8}", exp["decline"])
            assert msgs.endswith("decline")


def test_expectation_overrides() -> None:
    d3 = lab.load_scenario("D3-smcr-v2-rxe-pnet")
    assert d3.expectation("k61")["release"] == "0"
    assert d3.expectation("k612")["release"] == "1"


# --------------------------------------------------------------------------- checker


def conn(**kw: Any) -> dict[str, Any]:
    base = {
        "event": "connection",
        "client": "127.0.0.1:40000",
        "server": "127.0.0.1:7001",
        "outcome": "smc",
        "path": "SMC-D",
        "version": 2,
        "release": 1,
        "decline": None,
        "messages": ["proposal", "accept", "confirm"],
    }
    base.update(kw)
    return base


def test_compare_pass_and_fail() -> None:
    exp = lab.parse_kv("outcome=smc path=SMC-D version=2 messages=proposal,accept,confirm")
    assert lab.compare([conn()], exp) == []
    errs = lab.compare([conn(path="SMC-R")], exp)
    assert len(errs) == 1 and "path=SMC-R" in errs[0]
    assert "connections: got 2, want 1" in lab.compare([conn(), conn()], exp)[0]


def test_compare_decline() -> None:
    exp = lab.parse_kv(
        "outcome=fallback path=- version=- messages=proposal,decline "
        "decline=0x03030008 decline_from=server"
    )
    c = conn(
        outcome="fallback",
        path=None,
        version=None,
        release=None,
        messages=["proposal", "decline"],
        decline={"code": 0x03030008, "hex": "0x03030008", "from": "server"},
    )
    assert lab.compare([c], exp) == []
    c["decline"] = {"code": 0x03030000, "from": "server"}
    assert lab.compare([c], exp)
    c["decline"] = {"code": 0x03030008, "from": "client"}
    assert lab.compare([c], exp)


def test_compare_no_connections() -> None:
    assert lab.compare([], {"connections": "0"}) == []
    assert lab.compare([conn()], {"connections": "0"})


def test_parse_trace_json_ignores_other_events() -> None:
    text = "\n".join(
        [
            '{"event":"clc","type":"proposal"}',
            "not json",
            '{"event":"connection"}',
            '{"event":"summary"}',
        ]
    )
    assert lab.parse_trace_json(text) == [{"event": "connection"}]


# --------------------------------------------------------------------------- cpio


def read_newc(data: bytes) -> dict[str, tuple[int, bytes]]:
    out: dict[str, tuple[int, bytes]] = {}
    off = 0
    while True:
        hdr = data[off : off + 110]
        assert hdr[:6] == b"070701"
        f = [int(hdr[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[off + 110 : off + 110 + namesize - 1].decode()
        off += 110 + namesize
        off += -off % 4
        body = data[off : off + size]
        off += size + (-size % 4)
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, body)


def test_cpio_newc() -> None:
    arc = gzip.decompress(lab.cpio_newc({"scenario.sh": b"echo hi\n", "usr/local/bin/x": b"abc"}))
    entries = read_newc(arc)
    assert entries["scenario.sh"] == (0o100755, b"echo hi\n")
    assert entries["usr/local/bin/x"] == (0o100755, b"abc")
    assert entries["usr"][0] == entries["usr/local"][0] == entries["usr/local/bin"][0] == 0o40755
    # directories come before the files in them
    names = list(entries)
    assert names.index("usr/local/bin") < names.index("usr/local/bin/x")


@pytest.mark.skipif(not shutil.which("cpio"), reason="no cpio")
def test_cpio_newc_readable_by_cpio() -> None:
    arc = gzip.decompress(lab.cpio_newc({"a/b": b"1", "c": b"22"}))
    p = subprocess.run(["cpio", "-t"], input=arc, capture_output=True)
    assert p.stdout.decode().split() == ["a", "a/b", "c"]


# --------------------------------------------------------------------------- bundled captures


def real_captures() -> list[tuple[str, str, Path]]:
    out = []
    for p in sorted(REAL.glob("*.pcap")):
        for s in SCENARIOS:
            if p.name.startswith(s.name + "-"):
                out.append((s.name, p.stem[len(s.name) + 1 :], p))
    return out


@pytest.mark.skipif(not shutil.which("tshark"), reason="no tshark")
@pytest.mark.parametrize(("name", "label", "pcap"), real_captures(), ids=lambda x: str(x)[-40:])
def test_expectations_hold_on_bundled_captures_tshark(name: str, label: str, pcap: Path) -> None:
    ok, lines = lab.check_pcap(pcap, lab.load_scenario(name).expectation(label), backend="tshark")
    assert ok, "\n".join(lines)


@pytest.mark.skipif(not lab.smctrace_works()[0], reason="smctrace -f not usable yet")
@pytest.mark.parametrize(("name", "label", "pcap"), real_captures(), ids=lambda x: str(x)[-40:])
def test_expectations_hold_on_bundled_captures_smctrace(name: str, label: str, pcap: Path) -> None:
    ok, lines = lab.check_pcap(pcap, lab.load_scenario(name).expectation(label), backend="smctrace")
    assert ok, "\n".join(lines)


# --------------------------------------------------------------------------- QEMU (slow, opt-in)

needs_lab = pytest.mark.skipif(
    os.environ.get("SMCLAB_RUN") != "1" or not {"k612", "k612lo"} <= set(lab.built_flavors()),
    reason="set SMCLAB_RUN=1 and run `smc-lab build` first (boots QEMU guests)",
)


@needs_lab
@pytest.mark.parametrize("name", ["C-smcd-loopback-ism", "P-python-smc-echo"])
def test_run_single_guest(name: str) -> None:
    p = smclab("run", name, "--check")
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"^ok ", p.stdout, re.M)


@needs_lab
def test_run_two_guests() -> None:
    p = smclab("run", "F2-smcr-server-no-rdma", "--check")
    assert p.returncode == 0, p.stdout + p.stderr


@needs_lab
@pytest.mark.skipif(os.geteuid() != 0, reason="live needs root")
def test_live() -> None:
    p = smclab("live")
    assert p.returncode in (0, 3), p.stdout + p.stderr  # 3: tracer unavailable, rest passed
    assert "same 3 CLC messages as the guest capture" in p.stdout
    assert "removed" in p.stdout
    assert not any(
        ln.startswith("smclab")
        for ln in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True
        ).stdout.splitlines()
    )


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))


def test_guest_key_names_an_existing_scenario(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "X.sh").write_text("# smclab: kernel=k612 vms=2 guest=NOPE\n"
                                   "# expect: outcome=smc\n")
    (tmp_path / "Y.sh").write_text("# smclab: kernel=k612 vms=2 guest=D3-smcr-v2-rxe-pnet\n"
                                   "# expect: outcome=smc\n")
    (tmp_path / "D3-smcr-v2-rxe-pnet.sh").write_text("run_server() { :; }\nrun_client() { :; }\n")
    monkeypatch.setattr(lab, "SCENARIO_DIR", tmp_path)
    with pytest.raises(lab.LabError, match="guest=NOPE: no such scenario"):
        lab.load_scenario("X")
    assert lab.load_scenario("Y").script == tmp_path / "D3-smcr-v2-rxe-pnet.sh"

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
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from smclab import check, common, initramfs, kernels, live, matrix, scenario

REPO = Path(__file__).resolve().parents[2]
SMCLAB = REPO / "scripts" / "smc-lab" / "smc-lab"
REAL = REPO / "tests" / "data" / "real-kernel"

SCENARIOS = scenario.all_scenarios()


def smclab(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SMCLAB), *args], capture_output=True, text=True, timeout=600, **kw)


# --------------------------------------------------------------------------- CLI


def test_entry_point_is_executable() -> None:
    assert os.access(SMCLAB, os.X_OK)


def test_help_lists_subcommands() -> None:
    p = smclab("--help")
    assert p.returncode == 0
    for sub in ("build", "kernels", "list", "run", "check", "live", "test", "clean"):
        assert re.search(rf"^\s+{sub}\b", p.stdout, re.M), sub


@pytest.mark.parametrize(
    "sub", ["build", "kernels", "list", "run", "check", "live", "test", "clean"]
)
def test_subcommand_help(sub: str) -> None:
    p = smclab(sub, "--help")
    assert p.returncode == 0, p.stderr
    assert f"smc-lab {sub}" in p.stdout


def test_list(tmp_path: Path) -> None:
    p = smclab("list", "-v", env=dict(os.environ, SMCLAB_DIR=str(tmp_path),
                                      SMCLAB_CACHE=str(tmp_path)))
    assert p.returncode == 0, p.stderr
    assert "none, run `smc-lab build`" in p.stdout
    for s in SCENARIOS:
        assert s.name in p.stdout


def test_run_unknown_scenario() -> None:
    p = smclab("run", "no-such-scenario")
    assert p.returncode == 2
    assert "no such scenario" in p.stderr


def test_run_unbuilt_lab_is_a_clear_error(tmp_path: Path) -> None:
    env = dict(os.environ, SMCLAB_DIR=str(tmp_path), SMCLAB_CACHE=str(tmp_path))
    p = smclab("run", "C-smcd-loopback-ism", env=env)
    assert p.returncode == 2
    assert "not built: run `smc-lab build --kernel k612lo`" in p.stderr
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
    assert live.DEFAULT_LIVE in names
    assert scenario.load_scenario(live.DEFAULT_LIVE).vms == 2


@pytest.mark.parametrize("scn", SCENARIOS, ids=lambda s: s.name)
def test_scenario_header(scn: Any) -> None:
    assert scn.kernel in kernels.NAMES
    assert scn.vms in (1, 2)
    for k in [scn.server_kernel, scn.client_kernel, *scn.also]:
        assert k is None or k in kernels.NAMES
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
        assert set(exp["outcome"].split("|")) <= {"smc", "fallback", "failed", "incomplete"}
        msgs = exp.get("messages", "")
        assert all(m in ("proposal", "accept", "confirm", "decline") for m in msgs.split(",") if m)
        if exp["outcome"] == "smc":
            assert exp["path"] in ("SMC-R", "SMC-D")
        if "outcome" not in exp:
            assert exp.get("connections") == "0", label
        if exp.get("decline", "-") != "-":
            assert re.fullmatch(r"0x[0-9a-f]{8}", exp["decline"])
            assert msgs.endswith("decline")


def test_expectation_overrides() -> None:
    d3 = scenario.load_scenario("D3-smcr-v2-rxe-pnet")
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
    exp = scenario.parse_kv("outcome=smc path=SMC-D version=2 messages=proposal,accept,confirm")
    assert check.compare([conn()], exp) == []
    errs = check.compare([conn(path="SMC-R")], exp)
    assert len(errs) == 1 and "path=SMC-R" in errs[0]
    assert "connections: got 2, want 1" in check.compare([conn(), conn()], exp)[0]


def test_compare_decline() -> None:
    exp = scenario.parse_kv(
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
    assert check.compare([c], exp) == []
    c["decline"] = {"code": 0x03030000, "from": "server"}
    assert check.compare([c], exp)
    c["decline"] = {"code": 0x03030008, "from": "client"}
    assert check.compare([c], exp)


def test_compare_no_connections() -> None:
    assert check.compare([], {"connections": "0"}) == []
    assert check.compare([conn()], {"connections": "0"})


def test_parse_trace_json_ignores_other_events() -> None:
    text = "\n".join(
        [
            '{"event":"clc","type":"proposal"}',
            "not json",
            '{"event":"connection"}',
            '{"event":"summary"}',
        ]
    )
    assert check.parse_trace_json(text) == [{"event": "connection"}]


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
    files = {"scenario.sh": b"echo hi\n", "usr/local/bin/x": b"abc"}
    arc = gzip.decompress(initramfs.cpio_newc(files))
    entries = read_newc(arc)
    assert entries["scenario.sh"] == (0o100755, b"echo hi\n")
    assert entries["usr/local/bin/x"] == (0o100755, b"abc")
    assert entries["usr"][0] == entries["usr/local"][0] == entries["usr/local/bin"][0] == 0o40755
    # directories come before the files in them
    names = list(entries)
    assert names.index("usr/local/bin") < names.index("usr/local/bin/x")


@pytest.mark.skipif(not shutil.which("cpio"), reason="no cpio")
def test_cpio_newc_readable_by_cpio() -> None:
    arc = gzip.decompress(initramfs.cpio_newc({"a/b": b"1", "c": b"22"}))
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
    exp = scenario.load_scenario(name).expectation(label)
    ok, lines = check.check_pcap(pcap, exp, backend="tshark")
    assert ok, "\n".join(lines)


@pytest.mark.skipif(not check.smctrace_works()[0], reason="smctrace -f not usable yet")
@pytest.mark.parametrize(("name", "label", "pcap"), real_captures(), ids=lambda x: str(x)[-40:])
def test_expectations_hold_on_bundled_captures_smctrace(name: str, label: str, pcap: Path) -> None:
    exp = scenario.load_scenario(name).expectation(label)
    ok, lines = check.check_pcap(pcap, exp, backend="smctrace")
    assert ok, "\n".join(lines)


# --------------------------------------------------------------------------- QEMU (slow, opt-in)

needs_lab = pytest.mark.skipif(
    os.environ.get("SMCLAB_RUN") != "1" or not {"k612", "k612lo"} <= set(kernels.built_flavors()),
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
    monkeypatch.setattr(scenario, "SCENARIO_DIR", tmp_path)
    with pytest.raises(common.LabError, match="guest=NOPE: no such scenario"):
        scenario.load_scenario("X")
    assert scenario.load_scenario("Y").script == tmp_path / "D3-smcr-v2-rxe-pnet.sh"


# --------------------------------------------------------------------------- kernels, matrix


def test_kernels_lists_every_generation(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    (build / "kernels.tsv").write_text(
        "k510\t5.10.223-1\tstock\tlinux-image-5.10.0-32-amd64\n"
        "k7\t7.3.4-1~bpo13+1\tself-built\tlinux-source-7.3\n")
    p = smclab("kernels", "-v", env=dict(os.environ, SMCLAB_CACHE=str(tmp_path)))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("k510 5.10.223-1 ")
    assert any(ln.startswith("k7 7.3.4-1~bpo13+1 ") and "source=self-built" in ln for ln in lines)
    assert [ln.split()[0] for ln in lines[: len(kernels.KERNELS)]] == list(kernels.NAMES)
    assert "6.18 and later" in p.stdout and "NO SMC" in p.stdout


def test_kernel_list_parsing() -> None:
    assert kernels.parse_kernel_list(None, ("k510",)) == ["k510"]
    assert kernels.parse_kernel_list(["k7,k510", "k7"], ()) == ["k7", "k510"]
    assert kernels.parse_kernel_list(["all"], ()) == list(kernels.DEFAULT_KERNELS)
    with pytest.raises(common.LabError, match="unknown kernel"):
        kernels.parse_kernel_list(["k99"], ())


def test_matrix_full_on_oldest_and_newest_smoke_elsewhere() -> None:
    runs = matrix.test_matrix(list(kernels.DEFAULT_KERNELS), [kernels.OLDEST, kernels.NEWEST])
    by_kernel: dict[str, set[str]] = {}
    for s, k in runs:
        by_kernel.setdefault(k or s.kernel, set()).add(s.name)
    plain = {s.name for s in SCENARIOS if not s.mixed}
    assert by_kernel[kernels.OLDEST] >= plain and by_kernel[kernels.NEWEST] >= plain
    smoke = {s.name for s in SCENARIOS if s.smoke}
    mixed = {s.name for s in SCENARIOS if s.mixed}
    assert smoke and by_kernel["k612"] - mixed == smoke
    full = matrix.test_matrix(list(kernels.DEFAULT_KERNELS), list(kernels.DEFAULT_KERNELS))
    assert len(full) == len(plain) * len(kernels.DEFAULT_KERNELS) + sum(
        1 for s in SCENARIOS if s.mixed)


def test_every_scenario_runs_on_every_kernel() -> None:
    for s in SCENARIOS:
        if not s.mixed:
            assert set(s.kernels) >= set(kernels.DEFAULT_KERNELS), s.name


def test_compare_alternatives() -> None:
    exp = scenario.parse_kv("connections=2 outcome=smc|fallback")
    assert check.compare([conn(), conn(outcome="fallback")], exp) == []
    assert check.compare([conn(outcome="failed"), conn()], exp)

"""What contrib/ ships for a fleet works as it says: the Prometheus configuration and alert
rules pass promtool (the rules' own unit tests included), the systemd unit passes
systemd-analyze, and smctrace traces with the eBPF filter and serves --http holding
exactly the capabilities the unit grants, as an unprivileged user.  Also: live smctrace
binds a port below 1024 before it drops root to nobody, and serves after.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import netlab
from tests.support.prometheus import PROMTOOL
from tests.support.service import REAL_CAPTURES, REPO, LiveTracer, ServiceLab

CONTRIB = REPO / "contrib"
UNIT = CONTRIB / "systemd" / "smctrace.service"
PROMETHEUS_DIR = CONTRIB / "prometheus"


def unit_setting(name: str) -> str:
    (value,) = re.findall(rf"^{name}=(.*)$", UNIT.read_text(), flags=re.MULTILINE)
    return value


@pytest.fixture(scope="module")
def promtool() -> str:
    if PROMTOOL is None:
        pytest.skip("needs promtool (Debian's prometheus package)")
    return PROMTOOL


def test_prometheus_config_is_valid(promtool: str) -> None:
    proc = subprocess.run([promtool, "check", "config", "prometheus.yml"], cwd=PROMETHEUS_DIR,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 rule files found" in proc.stdout


def test_alert_rules_pass_their_unit_tests(promtool: str) -> None:
    """smctrace-alerts.test.yml: the fallback alert fires on a host with 1/3 fallbacks,
    not on one with 1/61 nor on one with too few connections; drops and a down target
    alert too."""
    proc = subprocess.run([promtool, "test", "rules", "smctrace-alerts.test.yml"],
                          cwd=PROMETHEUS_DIR, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@pytest.fixture(scope="module")
def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("needs systemd-analyze")
    return path


def unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at a binary that exists here (verify checks it)."""
    copy = tmp_path / "smctrace.service"
    copy.write_text(UNIT.read_text().replace("/opt/smctrace/bin/smctrace", "/bin/true"))
    return copy


def test_unit_verifies(analyze: str, tmp_path: Path) -> None:
    proc = subprocess.run([analyze, "verify", str(unit_copy(tmp_path))], capture_output=True,
                          text=True)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr  # no unknown keys


def test_unit_is_hardened(analyze: str, tmp_path: Path) -> None:
    proc = subprocess.run([analyze, "security", "--offline=true", str(unit_copy(tmp_path))],
                          capture_output=True, text=True)
    match = re.search(r"Overall exposure level for smctrace.service: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 2.5  # systemd calls up to 3.9 "OK"
    assert unit_setting("ProtectSystem") == "strict"
    assert unit_setting("DynamicUser") == "yes"
    assert unit_setting("CapabilityBoundingSet") == unit_setting("AmbientCapabilities")
    assert "127.0.0.1:" in unit_setting("Environment")


@pytest.fixture(scope="module")
def lab() -> Iterator[ServiceLab]:
    problem = netlab.available()
    if problem:
        pytest.skip(problem)
    with ServiceLab("smct-dep") as service_lab:
        yield service_lab


def traced_and_served(lab: ServiceLab, tracer: LiveTracer, port: int) -> None:
    lab.replay(REAL_CAPTURES)
    tracer.wait_connections(9)
    deadline = time.monotonic() + 10
    expected = {"smc": 3, "fallback": 6, "failed": 0, "incomplete": 0}
    summary = lab.fetch_json(f"http://127.0.0.1:{port}/api/summary")
    # the counters are published on idle ticks: wait for the first one after the replay
    while (("dropped" not in summary or summary["outcomes"] != expected)
           and time.monotonic() < deadline):
        time.sleep(0.3)
        summary = lab.fetch_json(f"http://127.0.0.1:{port}/api/summary")
    assert summary["outcomes"] == expected
    assert summary["dropped"] == 0
    events = tracer.stop()
    assert tracer.proc.returncode == 0, tracer.stderr
    assert events[-1]["outcomes"] == summary["outcomes"]


def test_the_units_capabilities_are_enough(lab: ServiceLab) -> None:
    """smctrace as nobody with the unit's capabilities and nothing else (setpriv, as
    systemd's AmbientCapabilities/CapabilityBoundingSet would): the eBPF filter loads,
    the 256 MiB buffer is granted, every connection is traced and served."""
    caps = ",".join("+" + cap.removeprefix("CAP_").lower()
                    for cap in unit_setting("AmbientCapabilities").split())
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv (util-linux)")
    proc = lab.lab.popen(lab.namespace, [
        setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
        f"--inh-caps=-all,{caps}", f"--ambient-caps=-all,{caps}",
        f"--bounding-set=-all,{caps}", "--no-new-privs",
        sys.executable, "-m", "smctrace", "-i", lab.traced, "--json", "--backend", "bcc",
        "--http", "127.0.0.1:9465"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    tracer = LiveTracer(proc)
    lab.tracers.append(tracer)
    try:
        tracer.wait_ready()
    except RuntimeError as exc:
        if "BCC" in str(exc) or "headers" in str(exc):
            pytest.skip(f"no eBPF here: {exc}")
        raise
    assert any("backend bcc" in line for line in tracer.stderr), tracer.stderr
    status = Path(f"/proc/{proc.pid}/status").read_text()
    assert re.search(r"^Uid:\s+65534\s", status, flags=re.MULTILINE), status
    # the capture socket's receive buffer (ss shows the kernel's doubled value)
    sockets = lab.lab.run(lab.namespace, "ss", "-0", "-m", "-p").stdout
    (buffer,) = re.findall(rf"pid={proc.pid},.*?rb(\d+)", sockets)
    assert int(buffer) >= 256 << 20, sockets
    traced_and_served(lab, tracer, 9465)


def test_root_binds_below_1024_then_drops_to_nobody(lab: ServiceLab) -> None:
    tracer = lab.start_tracer("--http", "127.0.0.1:80", "-Z", "nobody")
    try:
        tracer.wait_ready()
    except RuntimeError as exc:
        pytest.skip(f"live tracing unavailable here: {exc}")
    assert tracer.url == "http://127.0.0.1:80/"
    status = Path(f"/proc/{tracer.proc.pid}/status").read_text()
    # every thread, the HTTP ones included, runs as nobody
    for task in Path(f"/proc/{tracer.proc.pid}/task").iterdir():
        assert re.search(r"^Uid:\s+65534\s+65534", (task / "status").read_text(),
                         flags=re.MULTILINE), status
    traced_and_served(lab, tracer, 80)

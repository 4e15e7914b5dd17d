"""A real Prometheus server for tests: Debian's ``prometheus``, started inside a test's
network namespace with a generated configuration, queried through its HTTP API (PromQL),
stopped and its data deleted afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from tests.support.service import ServiceLab

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
LISTEN = "127.0.0.1:9090"  # on the namespace's own loopback


def available() -> str | None:
    """None if a Prometheus server can be started here, else why not (for pytest.skip)."""
    if PROMETHEUS is None:
        return "needs Debian's prometheus package (the Makefile's set-up installs it)"
    return None


class Prometheus:
    """``prometheus`` scraping ``targets`` (host:port) every ``scrape_interval``."""

    def __init__(self, lab: ServiceLab, workdir: Path, targets: Sequence[str], *,
                 job: str = "smctrace", scrape_interval: str = "1s",
                 rule_files: Sequence[Path] = ()) -> None:
        self.lab = lab
        self.workdir = workdir
        self.config = workdir / "prometheus.yml"
        config = {
            "global": {"scrape_interval": scrape_interval,
                       "evaluation_interval": scrape_interval},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [{"job_name": job, "scrape_timeout": scrape_interval,
                                "static_configs": [{"targets": list(targets)}]}],
        }
        self.config.write_text(json.dumps(config, indent=2))  # JSON is YAML
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "prometheus.log"

    def __enter__(self) -> Prometheus:
        assert PROMETHEUS is not None
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                self.lab.argv(PROMETHEUS, f"--config.file={self.config}",
                              f"--storage.tsdb.path={self.workdir / 'data'}",
                              f"--web.listen-address={LISTEN}", "--log.level=warn"),
                stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready(60)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.workdir / "data", ignore_errors=True)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                if self.lab.fetch(f"http://{LISTEN}/-/ready", timeout=2)[0] == 200:
                    return
            except RuntimeError:
                pass  # not listening yet
            time.sleep(0.5)
        raise RuntimeError(f"prometheus not ready in {timeout:g} s: "
                           f"{self.log.read_text()[-2000:]}")

    def api(self, path: str) -> Any:
        """GET /api/v1/PATH; the ``data`` member of the reply."""
        reply = self.lab.fetch_json(f"http://{LISTEN}/api/v1/{path}")
        assert reply["status"] == "success", reply
        return reply["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query: the vector's samples."""
        data = self.api(f"query?query={quote(promql)}")
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def by_labels(self, promql: str, *labels: str) -> dict[tuple[str, ...], float]:
        """An instant query as {(label values...): value}."""
        return {tuple(sample["metric"].get(label, "") for label in labels):
                float(sample["value"][1]) for sample in self.query(promql)}

    def wait_for(self, promql: str, labels: Sequence[str],
                 done: Callable[[dict[tuple[str, ...], float]], bool],
                 timeout: float = 60) -> dict[tuple[str, ...], float]:
        """Query until ``done`` holds for the result (new scrapes come every second);
        the last result either way."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.by_labels(promql, *labels)
            if done(result) or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

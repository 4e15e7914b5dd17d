"""``smctrace -i ... --http`` inside a private network namespace, for the service's tests.

A :class:`ServiceLab` is a namespace with a veth pair (made with :mod:`tests.support.netlab`)
where smctrace traces one end while frames are sent out of the other (with
:mod:`tests.support.replay`); its HTTP service listens on the namespace's own loopback,
which clients (Prometheus, Chromium, :func:`ServiceLab.fetch`) reach by running in the
namespace too.  Nothing leaves the namespace.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support import netlab

REPO = Path(__file__).resolve().parents[2]
# The captures these tests count on (their connections, messages, outcomes): a fixed set,
# so that a new real capture in tests/data does not change what they expect.
REAL_CAPTURES = [REPO / "tests" / "data" / "real-kernel" / f"{name}.pcap" for name in (
    "A-smc-lo-decline-k61", "A6-smc-lo-decline-v6-k612", "B-smc-client-tcp-server-k61",
    "B2-tcp-client-smc-server-k612", "C-smcd-loopback-ism-k612lo",
    "C6-smcd-loopback-ism-v6-k612lo", "D2-smcr-v2-rxe-k612",
    "D7-smcr-v2-mixed-srv61-cli612-srv_k61-cli_k612", "F-smcd-v2-decline-noueid-k612lo",
    "F2-smcr-server-no-rdma-k612")]

class LiveTracer:
    """A running ``smctrace -i IFACE --json --http ...``; its JSON events are collected as
    they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self.url = ""
        self._ready = threading.Event()
        self._threads = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))
            if line.startswith("smctrace: serving "):
                self.url = line.split()[2]
                self._ready.set()
        self._ready.set()  # ended: wait_ready() reports why

    def wait_ready(self, timeout: float = 60) -> str:
        """The service's URL once it serves; RuntimeError with stderr if it never does."""
        self._ready.wait(timeout)
        if not self.url:
            raise RuntimeError("smctrace did not start serving: " + " | ".join(self.stderr))
        return self.url

    def connections(self) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e["event"] == "connection"]

    def wait_connections(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.connections()) < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"{len(self.connections())} of {count} connections "
                                     f"traced: {' | '.join(self.stderr)}")
            time.sleep(0.1)
        return self.connections()

    def stop(self) -> list[dict[str, Any]]:
        """SIGINT, then every event it printed (the summary last)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for thread in self._threads:
            thread.join(10)
        return list(self.events)


class ServiceLab:
    """A namespace with a veth pair: ``sender`` sends frames, ``traced`` is traced."""

    def __init__(self, prefix: str) -> None:
        self.lab = netlab.NetLab(prefix)
        self.namespace = ""
        self.sender = self.traced = ""
        self.tracers: list[LiveTracer] = []

    def __enter__(self) -> ServiceLab:
        try:
            self.namespace = self.lab.namespace("svc")
            self.sender, self.traced = self.lab.veth(self.namespace)
        except BaseException:
            self.lab.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for tracer in self.tracers:
            tracer.stop()
        self.lab.close()

    def argv(self, *command: str) -> list[str]:
        return self.lab.argv(self.namespace, *command)

    def start_tracer(self, *args: str) -> LiveTracer:
        """``smctrace -i TRACED --json ARGS`` (ARGS should include --http)."""
        proc = self.lab.popen(self.namespace,
                              [sys.executable, "-m", "smctrace", "-i", self.traced, "--json",
                               *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=REPO)
        tracer = LiveTracer(proc)
        self.tracers.append(tracer)
        return tracer

    def replay(self, paths: Sequence[Path], rate: float = 0.0) -> None:
        """Send every frame of these captures out of the sending end."""
        self.lab.run(self.namespace, sys.executable, "-m", "tests.support.replay",
                     self.sender, "--rate", str(rate), *map(str, paths), timeout=300)

    def fetch(self, url: str, timeout: float = 10) -> tuple[int, bytes]:
        """GET ``url`` from inside the namespace: (status, body)."""
        proc = subprocess.run(self.argv(sys.executable, "-m", "tests.support.fetch", url,
                                        str(timeout)),
                              capture_output=True, timeout=timeout + 20, cwd=REPO)
        if proc.returncode != 0:
            raise RuntimeError(f"GET {url}: {proc.stderr.decode(errors='replace')[-500:]}")
        status, _, body = proc.stdout.partition(b"\n")
        return int(status), body

    def fetch_json(self, url: str) -> Any:
        status, body = self.fetch(url)
        assert status == 200, (url, status, body[:200])
        return json.loads(body)


def offline(path: Path) -> list[dict[str, Any]]:
    """``smctrace -f PATH --json``: the events the live trace must match."""
    out = subprocess.run([sys.executable, "-m", "smctrace", "-f", str(path), "--json"],
                         capture_output=True, text=True, check=True, cwd=REPO).stdout
    return [json.loads(line) for line in out.splitlines()]


def merged_real_capture(path: Path, gap: float = 100.0) -> Path:
    """Every real-kernel capture in one pcap file, one after the other: each capture's
    frames keep their spacing, and each capture starts ``gap`` seconds after the previous
    one began (more than any handshake or late-Decline wait lasts)."""
    from smctrace.capture.pcapfile import CaptureFile
    from smctrace.capture.pcapwriter import PcapWriter
    from smctrace.frame import LINKTYPE_ETHERNET

    start = 1_800_000_000.0
    with path.open("wb") as out:
        writer = PcapWriter(out, LINKTYPE_ETHERNET)
        for n, capture_path in enumerate(REAL_CAPTURES):
            with CaptureFile(str(capture_path)) as capture:
                frames = list(capture.frames())
            assert all(frame.linktype == LINKTYPE_ETHERNET for frame in frames)
            first = frames[0].time
            for frame in frames:
                writer.write(start + n * gap + frame.time - first, frame.data, frame.orig_len)
    return path

"""The live benchmarks' lab: two private namespaces joined by a veth pair (made with
tests/support/netlab.py), and the processes run in them: tracers under test, senders
(tests/support/replay.py), iperf3.

Every process is started in its own session and recorded, so :func:`reap_all` ends
exactly the processes the benchmark started (by their ids), also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn

from bench.measure import smctrace_path
from tests.support.netlab import NetLab

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
TX_ADDR, RX_ADDR = "10.213.0.1", "10.213.0.2"  # only ever inside the two namespaces
FLOOD_MTU = 200  # overhead: small frames, MSS 148, frames <= 214 bytes
# Children find the bench package and the repository (tests.support) on their path.
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(REPO / "scripts"), str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


class BenchLab:
    """tx (sender) and rx (receiver, tracers) namespaces, a veth pair between them."""

    def __init__(self) -> None:
        self.net = NetLab("smcbench")
        self.tx_ns = self.rx_ns = self.tx_if = self.rx_if = ""

    def __enter__(self) -> BenchLab:
        try:
            self.tx_ns = self.net.namespace("tx")
            self.rx_ns = self.net.namespace("rx")
            # One frame per TCP segment, however the sender writes.
            self.tx_if, self.rx_if = self.net.veth(
                self.tx_ns, self.rx_ns, addresses=(f"{TX_ADDR}/24", f"{RX_ADDR}/24"),
                mtu=FLOOD_MTU, gso_max_segs=1)
        except BaseException:
            self.net.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.net.close()

    def rx(self, *command: str) -> list[str]:
        return self.net.argv(self.rx_ns, *command)

    def tx(self, *command: str) -> list[str]:
        return self.net.argv(self.tx_ns, *command)

    def counters(self) -> dict[str, int]:
        """Statistics of the receiving veth end."""
        return {key: self.net.read_counter(self.rx_ns, self.rx_if, name)
                for key, name in (("rx", "rx_packets"), ("tx", "tx_packets"),
                                  ("rx_dropped", "rx_dropped"))}

    def counters_since(self, before: dict[str, int]) -> dict[str, int]:
        """What the receiving veth end counted since ``before`` (from :meth:`counters`)."""
        return {key: value - before[key] for key, value in self.counters().items()}

    def set_mtu(self, mtu: int) -> None:
        self.net.run(self.tx_ns, "ip", "link", "set", self.tx_if, "mtu", str(mtu))
        self.net.run(self.rx_ns, "ip", "link", "set", self.rx_if, "mtu", str(mtu))


def terminate(signum: int, _frame: object) -> NoReturn:
    """A SIGTERM handler: unwind like Ctrl-C, so that every BenchLab removes its namespaces."""
    raise KeyboardInterrupt(f"signal {signum}")


# -- processes ----------------------------------------------------------------------------

live_processes: list[subprocess.Popen[bytes]] = []


def spawn(cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    proc: subprocess.Popen[bytes] = subprocess.Popen(cmd, start_new_session=True, **kwargs)
    live_processes.append(proc)
    return proc


def reap(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 15) -> None:
    """Signal one process this benchmark started and wait; SIGKILL if it does not go."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    if proc in live_processes:
        live_processes.remove(proc)


def reap_all() -> None:
    for proc in list(live_processes):
        reap(proc, signal.SIGTERM, 5)


def cpu_ns(pid: int) -> int:
    """CPU time (user + system) of all threads of a process, nanoseconds (schedstat)."""
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                total += int(fh.read().split()[0])
    return total


class TracerProcess:
    """smctrace or tcpdump under test.  Standard output goes to a file (a pipe read by
    this process would make the tracer wait for the benchmark); standard error is read
    by a thread for the line that says the tracer is attached."""

    def __init__(self, name: str, cmd: list[str], ready: str,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.cmd, self.ready_text = name, cmd, ready
        self.ready = threading.Event()
        self.ready_at = 0.0
        self.stderr: list[str] = []
        self._out: IO[bytes] = tempfile.TemporaryFile(prefix="smcbench-out-")  # noqa: SIM115
        self._scanned = 0
        self._events = 0
        self.last_event_at = 0.0
        self.started_at = time.monotonic()
        self.proc = spawn(cmd, stdin=subprocess.DEVNULL, stdout=self._out,
                          stderr=subprocess.PIPE, env=env or CHILD_ENV)
        self._thread = threading.Thread(target=self._read_err, daemon=True)
        self._thread.start()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.stderr.append(line)
            if self.ready_text in line and not self.ready.is_set():
                self.ready_at = time.monotonic()
                self.ready.set()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                reap(self.proc)
                raise RuntimeError(f"{self.name} did not start: {' | '.join(self.stderr)}")

    def events(self, marker: bytes = b'{"event": "connection"') -> int:
        """Lines starting with ``marker`` written so far (read incrementally)."""
        size = os.fstat(self._out.fileno()).st_size
        if size > self._scanned:
            data = os.pread(self._out.fileno(), size - self._scanned, self._scanned)
            cut = data.rfind(b"\n") + 1  # only whole lines; _scanned is a line start
            count = (b"\n" + data[:cut]).count(b"\n" + marker)
            self._scanned += cut
            if count:
                self._events += count
                self.last_event_at = time.monotonic()
        return self._events

    def cpu_ns(self) -> int:
        return cpu_ns(self.proc.pid)

    def stop(self, timeout: float = 30) -> None:
        reap(self.proc, signal.SIGINT, timeout)
        self._thread.join(5)

    def lines(self) -> list[dict[str, Any]]:
        """Every JSON line it wrote (smctrace --json, or a probe)."""
        self._out.seek(0)
        return [json.loads(line) for line in self._out.read().splitlines()
                if line.startswith(b"{")]

    def summary(self) -> dict[str, Any]:
        """smctrace --json: the summary line; tcpdump: its three counters."""
        if not self.name.startswith("tcpdump"):
            for line in reversed(self.lines()):
                if line.get("event") == "summary":
                    return dict(line)
            raise RuntimeError(f"{self.name} printed no summary: {' | '.join(self.stderr)}")
        text = "\n".join(self.stderr)
        out: dict[str, Any] = {}
        for key, pattern in (("captured", r"(\d+) packets? captured"),
                             ("received", r"(\d+) packets? received by filter"),
                             ("dropped", r"(\d+) packets? dropped by kernel")):
            m = re.search(pattern, text)
            out[key] = int(m.group(1)) if m else -1
        return out


def smctrace_tracer(lab: BenchLab, backend: str, *, python_receive: bool = False,
                    profile: Path | None = None, extra: Sequence[str] = ()) -> TracerProcess:
    """``smctrace -i RX --json`` (``python_receive``: the per-frame Python receive path;
    ``profile``: under cProfile, its statistics written there at exit; ``extra``: more
    arguments)."""
    env = dict(CHILD_ENV)
    if python_receive:
        env["SMCTRACE_RECEIVE"] = "python"
    if profile is not None:
        cmd = [PYTHON, "-m", "cProfile", "-o", str(profile), "-m", "smctrace"]
    else:
        cmd = [smctrace_path()]
    name = f"smctrace/{backend}" + (" (Python receive)" if python_receive else "")
    tracer = TracerProcess(name, lab.rx(*cmd, "-i", lab.rx_if, "--backend", backend,
                                        "--json", "-Z", "root", *extra), "tracing on", env)
    tracer.wait_ready()
    return tracer


def tcpdump_tracer(lab: BenchLab, expression: str = "tcp") -> TracerProcess:
    tracer = TracerProcess("tcpdump", lab.rx("tcpdump", "-i", lab.rx_if, "-w", "/dev/null",
                                             "-B", "262144", expression), "listening on")
    tracer.wait_ready()
    return tracer


class Sender:
    """tests/support/replay.py in the tx namespace, with --wait-go: started, ready, then
    told to go (so the clock starts with the first frame)."""

    def __init__(self, lab: BenchLab, blob: Path, rate: float) -> None:
        cmd = lab.tx(PYTHON, "-m", "tests.support.replay", lab.tx_if, str(blob), "--rate",
                     str(rate), "--wait-go")
        self.proc = spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO,
                          env=CHILD_ENV)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        if not ready or self.proc.stdout.readline().strip() != b"ready":
            reap(self.proc, signal.SIGTERM)
            raise RuntimeError("the sender did not get ready")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def result(self, timeout: float = 300) -> dict[str, float]:
        assert self.proc.stdout is not None and self.proc.stdin is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            reap(self.proc, signal.SIGTERM)
            raise RuntimeError(f"the sender did not finish in {timeout:g} s")
        result: dict[str, float] = json.loads(self.proc.stdout.readline())
        self.proc.stdin.close()
        reap(self.proc, signal.SIGTERM, 10)
        return result


def wait_caught_up(tracer: TracerProcess, want: int, quiet: float = 3.0,
                   limit: float = 300.0) -> None:
    """Until the tracer has written ``want`` connection events, or ``quiet`` seconds
    passed without a new one."""
    deadline = time.monotonic() + limit
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = tracer.events()
        if count >= want:
            return
        if count != last:
            last, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > quiet:
            return
        time.sleep(0.02)

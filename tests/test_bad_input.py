"""The bad-input and signal matrix: every way to call smctrace wrongly ends with one line
on standard error and a documented exit status, and a signal at any time ends with the
summary and status 0; never a traceback.  Each case runs the real command in a process
of its own (closed standard streams, signals)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from smctrace.capture.pcapfile import CaptureFile
from smctrace.capture.pcapwriter import PcapWriter
from smctrace.frame import LINKTYPE_ETHERNET
from tests.support.captures import write_large_capture

REPO = Path(__file__).resolve().parents[1]
SMCD = REPO / "tests" / "data" / "real-kernel" / "C-smcd-loopback-ism-k612lo.pcap"
SCRIPT = Path(sys.executable).parent / "smctrace"  # the console script users run
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "smctrace"]
IS_ROOT = os.geteuid() == 0


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    status: int
    says: str  # in the one line on standard error
    stdin: str = "devnull"  # devnull | closed | capture
    stdout: str = "pipe"  # pipe | closed
    needs_root: bool = False


CASES = (
    Case("unknown option", ("--bogus",), 2, "No such option '--bogus'"),
    Case("no source", (), 2, "give either -f FILE or -i IFACE"),
    Case("both sources", ("-f", str(SMCD), "-i", "lo"), 2, "give either"),
    Case("count 0", ("-f", str(SMCD), "-c", "0"), 2, "'-c' / '--count'"),
    Case("count not a number", ("-f", str(SMCD), "-c", "many"), 2, "'many' is not a valid"),
    Case("duration nan", ("-f", str(SMCD), "--duration", "nan"), 2, "--duration"),
    Case("duration inf", ("-f", str(SMCD), "--duration", "inf"), 2, "--duration"),
    Case("duration negative", ("-f", str(SMCD), "--duration", "-1"), 2, "--duration"),
    Case("duration huge", ("-f", str(SMCD), "--duration", "1e300"), 2, "--duration"),
    Case("buffer 2 GiB", ("-i", "lo", "-B", "2097152"), 2, "--buffer-size"),
    Case("buffer absurd", ("-i", "lo", "-B", "99999999999999999999"), 2, "--buffer-size"),
    Case("snaplen 5", ("-i", "lo", "-s", "5"), 2, "--snaplen"),
    Case("snaplen 70000", ("-i", "lo", "-s", "70000"), 2, "--snaplen"),
    Case("table size 0", ("-f", str(SMCD), "--max-connections", "0"), 2, "--max-connections"),
    Case("json and table", ("-f", str(SMCD), "--json", "--table"), 2, "cannot be combined"),
    Case("quiet and verbose", ("-f", str(SMCD), "-q", "-v"), 2, "cannot be combined"),
    Case("bad filter", ("-f", str(SMCD), "port"), 2, "filter expression"),
    Case("bad filter address", ("-f", str(SMCD), "host", "999.1.1.1"), 2, "filter expression"),
    Case("filter twice", ("-f", str(SMCD), "--filter", "tcp", "udp"), 2, "once"),
    Case("stdin twice", ("-f", "-", "-f", "-"), 2, "only once"),
    Case("missing file", ("-f", "/nonexistent/x.pcap"), 1, "cannot open /nonexistent/x.pcap"),
    Case("not a capture", ("-f", str(REPO / "README.md")), 1, "not a pcap or pcapng file"),
    Case("standard input closed", ("-f", "-"), 1, "standard input", stdin="closed"),
    Case("empty standard input", ("-f", "-"), 1, "empty input"),
    Case("standard output closed", ("-f", str(SMCD)), 1, "standard output is closed",
         stdout="closed"),
    Case("unwritable -w", ("-f", str(SMCD), "-w", "/nonexistent/x.pcapng"), 1,
         "cannot write /nonexistent/x.pcapng"),
    Case("no such interface", ("-i", "nosuch0"), 1, "nosuch0", needs_root=True),
)


def run_case(case: Case) -> subprocess.CompletedProcess[bytes]:
    stdin: int | None = subprocess.DEVNULL
    stdout: int | None = subprocess.PIPE
    pass_fds: tuple[int, ...] = ()

    def close_fds() -> None:
        if case.stdin == "closed":
            os.close(0)
        if case.stdout == "closed":
            os.close(1)

    return subprocess.run([*COMMAND, *case.args], stdin=stdin, stdout=stdout,
                          stderr=subprocess.PIPE, timeout=60, cwd=REPO,
                          preexec_fn=close_fds, pass_fds=pass_fds, check=False)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_bad_input_is_one_line_and_a_documented_status(case: Case) -> None:
    if case.needs_root and not IS_ROOT:
        pytest.skip("needs root")
    result = run_case(case)
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr
    assert result.returncode == case.status, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("smctrace: ") and case.says in lines[0], stderr


def test_the_reader_of_standard_output_going_away_is_not_an_error() -> None:
    """smctrace ... | head -1: exit 0, nothing on standard error."""
    proc = subprocess.Popen([*COMMAND, "-f", str(SMCD)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in err


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler: Python installs none by itself, the
    ``smctrace`` entry point does with its first instructions."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(line for line in status.splitlines()
                      if line.startswith("SigCgt:")).split()[1], 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def slow_pipe_trace(sig: int, *, after: float) -> subprocess.CompletedProcess[bytes]:
    """smctrace -f - fed a real handshake, then nothing more (a quiet live pipe); the
    signal comes ``after`` seconds after smctrace's code began to run."""
    with CaptureFile(str(SMCD)) as capture:
        frames = list(capture.frames())
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as writer:
        pcap = PcapWriter(writer, LINKTYPE_ETHERNET)
        for frame in frames:
            pcap.write(frame.time, frame.data)
        writer.flush()
        proc = subprocess.Popen([*COMMAND, "-f", "-", "--json"], stdin=read_end,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
        os.close(read_end)
        deadline = time.monotonic() + 20
        while not catches_sigterm(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.0005)
        time.sleep(after)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_signal_while_waiting_for_a_pipe_ends_with_the_summary(sig: int) -> None:
    result = slow_pipe_trace(sig, after=2.0)
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr
    assert b"11 frames read, 1 SMC connection (1 smc" in result.stderr
    assert result.stdout.decode().splitlines()[-1].startswith('{"event": "summary"')


@pytest.mark.parametrize("after", [0.0, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15])
def test_a_signal_at_any_moment_of_start_up_ends_with_a_summary(after: float) -> None:
    """From the moment smctrace's code runs (the interpreter's own start-up before it is
    Python's), through the imports and the first read."""
    result = slow_pipe_trace(signal.SIGINT, after=after)
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr
    assert b"frames read" in result.stderr


def test_a_signal_while_reading_a_big_input_ends_with_the_summary(tmp_path: Path) -> None:
    """A big capture arriving over a pipe: Ctrl-C in the middle stops at once, with the
    summary of what was read."""
    big = tmp_path / "big.pcap"
    frames = write_large_capture(big, 64 << 20)
    proc = subprocess.Popen([*COMMAND, "-f", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdin is not None
    sent = 0
    with big.open("rb") as source:
        start = time.monotonic()
        while chunk := source.read(1 << 20):
            try:
                proc.stdin.write(chunk)
                proc.stdin.flush()
            except BrokenPipeError:
                break
            sent += 1
            if time.monotonic() - start > 1.0 and sent > 4:
                proc.send_signal(signal.SIGINT)
                break
            time.sleep(0.05)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in err
    read = int(err.split(b" frames read")[0].rsplit(b"\n", 1)[-1])
    assert 0 < read < frames  # it stopped in the middle, and said how far it got

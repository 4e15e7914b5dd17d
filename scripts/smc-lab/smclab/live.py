"""`smc-lab live`: two guests on a bridge in a private network namespace (made with
tests/support/netlab.py), the handshake traced there by `smctrace -i <bridge>`."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.support.netlab import NetLab, NetLabError

from .check import (
    check_pcap,
    compare,
    compare_traces,
    json_events,
    smctrace_cmd,
    smctrace_works,
    trace_file_tshark,
)
from .common import LabError, lab_dir
from .qemu import RunResult, kernels_for, run_guests
from .scenario import Scenario, load_scenario

DEFAULT_LIVE = "D2-smcr-v2-rxe"


class Procs:
    """Background tools (tcpdump, smctrace) in the namespace, stopped with SIGINT."""

    def __init__(self, lab: NetLab, ns: str) -> None:
        self.lab, self.ns = lab, ns
        self.procs: list[tuple[subprocess.Popen[bytes], str]] = []

    def start(self, cmd: list[str], name: str, stdout: Path | None,
              stderr: Path) -> subprocess.Popen[bytes]:
        with contextlib.ExitStack() as st:
            so = st.enter_context(open(stdout, "wb")) if stdout else subprocess.DEVNULL
            se = st.enter_context(open(stderr, "wb"))
            p: subprocess.Popen[bytes] = self.lab.popen(self.ns, cmd, stdout=so, stderr=se)
        self.procs.append((p, name))
        return p

    @staticmethod
    def wait_for(p: subprocess.Popen[bytes], errfile: Path, text: str, secs: float) -> bool:
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline and p.poll() is None:
            if text in errfile.read_text(errors="replace"):
                return True
            time.sleep(0.05)
        return text in errfile.read_text(errors="replace")

    def stop(self, out: list[str]) -> None:
        for p, _ in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p, nm in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                out.append(f"FAIL: {nm} did not exit within 15 s of SIGINT")
                p.kill()
                p.wait()
            else:
                if nm == "smctrace" and p.returncode != 0:
                    out.append(f"FAIL: smctrace exited {p.returncode} after SIGINT")


def _live_run(scn: Scenario, kernel: str | None, ldir: Path, tracer_ok: bool,
              out: list[str]) -> RunResult:
    """Inside a fresh netns: tcpdump and smctrace on the bridge, then the guests."""
    trace_out, trace_err = ldir / "smctrace.jsonl", ldir / "smctrace.stderr"
    tcpd_err = ldir / "tcpdump.stderr"
    with NetLab("smclab") as lab:
        ns = lab.namespace("live")
        br = lab.bridge(ns)
        taps = (lab.tap(ns, br), lab.tap(ns, br))
        out.append(f"netns {ns}: bridge {br}, taps {taps[0]} (server) {taps[1]} (client)")
        procs = Procs(lab, ns)
        try:
            # tcpdump always runs on the bridge too: an independent record of what crossed it
            tcpd = procs.start(["tcpdump", "-i", br, "-U", "-s", "0", "-w",
                                str(ldir / "bridge.pcap")], "tcpdump", None, tcpd_err)
            if not procs.wait_for(tcpd, tcpd_err, "listening on", 10):
                raise LabError(f"tcpdump -i {br} did not start: {tcpd_err.read_text().strip()}")
            if tracer_ok:
                tcmd = smctrace_cmd()
                assert tcmd
                tracer = procs.start([*tcmd, "-i", br, "--json"], "smctrace", trace_out,
                                     trace_err)
                if not procs.wait_for(tracer, trace_err, f"tracing on {br}", 30):
                    err = trace_err.read_text(errors="replace").strip()[-600:]
                    state = ("did not print 'tracing on' within 30 s" if tracer.poll() is None
                             else f"exited {tracer.returncode}")
                    raise LabError(f"smctrace -i {br} {state}: {err}")
                first = trace_err.read_text(errors="replace").strip().splitlines()[0]
                out.append(f"smctrace attached: {first}")
            res = run_guests(scn, kernel=kernel, netns=ns, taps=taps, tag="-live")
            time.sleep(0.5)
        finally:
            procs.stop(out)
        out.append(f"netns {ns} removed")
    return res


def run_live(name: str, kernel: str | None = None, use_tracer: bool = True,
             backend: str = "auto") -> tuple[bool, list[str]]:
    scn = load_scenario(name)
    if scn.vms != 2:
        raise LabError(f"live needs a two-guest scenario; {name} has vms={scn.vms}")
    if os.geteuid() != 0:
        raise LabError("live needs root (network namespace, tap devices)")
    out: list[str] = []
    tracer_ok, why = smctrace_works() if use_tracer else (False, "disabled (--no-tracer)")
    if use_tracer and not tracer_ok:
        out.append(f"note: live tracer unavailable: {why}; falling back to tcpdump on the bridge")
    _, _, _, label = kernels_for(scn, kernel, None, None)
    ldir = lab_dir() / "live" / f"{scn.name}-{label}"
    shutil.rmtree(ldir, ignore_errors=True)
    ldir.mkdir(parents=True)
    t0 = time.monotonic()
    try:
        res = _live_run(scn, kernel, ldir, tracer_ok, out)
    except (LabError, NetLabError) as e:
        return False, [*out, f"FAIL: {e}"]
    ok = not any(ln.startswith("FAIL") for ln in out)
    out.append(f"guests: wall {res.wall:.1f} s, guest pcap {res.pcap}")
    out.extend(f"!! {n}" for n in res.notes)
    if not res.ok or not res.pcap:
        return False, [*out, "FAIL: guests produced no capture"]
    exp = scn.expectation(label)
    # 1. the guest's own capture matches the scenario's expectation
    g_ok, g_lines = check_pcap(res.pcap, exp, backend=backend)
    out += [f"guest capture: {ln}" for ln in g_lines]
    ok &= g_ok
    # 2. the bridge saw the same handshake (tcpdump on the bridge, decoded by tshark)
    _, b_clcs = trace_file_tshark(ldir / "bridge.pcap")
    _, g_clcs = trace_file_tshark(res.pcap)
    b_seq = [(c["client"], c["server"], c["from"], c["type"], c["version"]) for c in b_clcs]
    g_seq = [(c["client"], c["server"], c["from"], c["type"], c["version"]) for c in g_clcs]
    if b_seq and b_seq == g_seq:
        out.append(f"bridge capture: same {len(b_seq)} CLC messages as the guest capture: "
                   + " ".join(f"{t[2]}:{t[3]}" for t in b_seq))
    else:
        ok = False
        out.append(f"FAIL: bridge capture has CLC {b_seq}, guest capture {g_seq}")
    # 3. the live tracer traced the real handshake, message for message
    if tracer_ok:
        events = json_events((ldir / "smctrace.jsonl").read_text(errors="replace"))
        errs = compare([e for e in events if e.get("event") == "connection"], exp)
        if errs:
            ok = False
            out.append("FAIL: smctrace -i <bridge>: " + "; ".join(errs))
        t_ok, t_lines = compare_traces(events, res.pcap, "smctrace -i <bridge>")
        ok &= t_ok
        out += t_lines
    elif use_tracer:
        out.append("live tracer NOT checked (smctrace unavailable)")
    verdict = "PASS" if ok else "FAIL"
    if ok and use_tracer and not tracer_ok:
        verdict = "PARTIAL (everything but the tracer passed)"
    out.append(f"live {verdict} in {time.monotonic() - t0:.1f} s (outputs in {ldir})")
    return ok, out


def cmd_live(args: argparse.Namespace) -> int:
    ok, lines = run_live(args.scenario, kernel=args.kernel, use_tracer=not args.no_tracer,
                         backend=args.backend)
    print("\n".join(lines))
    if not ok:
        return 1
    if not args.no_tracer and not smctrace_works()[0]:
        return 3  # partial: everything up to the tracer passed
    return 0

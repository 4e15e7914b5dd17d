"""Booting a scenario's guest(s) in QEMU and collecting what they shipped back."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

from .common import REPO, LabError, build_dir, lab_dir, log
from .initramfs import cpio_newc
from .kernels import ensure_built
from .scenario import Scenario


def accel_args() -> tuple[str, list[str]]:
    """KVM only with a hardware-virtualization KVM module (kvm_intel/kvm_amd).

    /dev/kvm backed by kvm_pvm runs only PVM-aware guests (a stock Debian kernel
    hangs after "Probing EDD"), so everything else uses TCG. SMCLAB_ACCEL=kvm|tcg
    and SMCLAB_QEMU_CPU override."""
    mode = os.environ.get("SMCLAB_ACCEL", "auto")
    if mode == "auto":
        mode = "tcg"
        hw = Path("/sys/module/kvm_intel").is_dir() or Path("/sys/module/kvm_amd").is_dir()
        if hw and os.access("/dev/kvm", os.W_OK):
            mode = "kvm"
    if mode == "kvm":
        return mode, [
            "-enable-kvm",
            "-cpu",
            os.environ.get("SMCLAB_QEMU_CPU", "host,-arch-capabilities"),
        ]
    return mode, ["-accel", "tcg", "-cpu", os.environ.get("SMCLAB_QEMU_CPU", "max")]


@dataclasses.dataclass
class RunResult:
    scenario: Scenario
    label: str
    rundir: Path
    pcap: Path | None
    wall: float
    roles: list[str]
    ok: bool
    notes: list[str]
    extra_pcaps: dict[str, Path] = dataclasses.field(default_factory=dict)
    trace: Path | None = None  # smctrace -i JSON lines from inside the guest (trace=yes)


def kernels_for(
    scn: Scenario, kernel: str | None, server_kernel: str | None, client_kernel: str | None
) -> tuple[str, str, str, str]:
    flavor = kernel or scn.kernel
    srv = server_kernel or (None if kernel else scn.server_kernel) or flavor
    cli = client_kernel or (None if kernel else scn.client_kernel) or flavor
    label = flavor
    if scn.vms == 2 and srv != cli:
        label = f"srv_{srv}-cli_{cli}"
    return flavor, srv, cli, label


def host9p_args() -> list[str]:
    """The host's /usr and the project tree, read-only, for the guest's smctrace/python."""
    out: list[str] = []
    for tag, path in (("hostusr", "/usr"), ("hostrepo", str(REPO))):
        out += ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none,readonly=on"]
    return out


class Guests:
    """The QEMU processes of one run (one or two guests)."""

    def __init__(self, scn: Scenario, rdir: Path, initrds: dict[str, Path],
                 netns: str | None, timeout: float) -> None:
        self.scn, self.rdir, self.initrds, self.netns = scn, rdir, initrds, netns
        self.timeout = timeout
        self.accel, self.acc = accel_args()
        self.procs: list[tuple[subprocess.Popen[bytes], str]] = []
        self.notes: list[str] = []

    def start(self, role: str, fl: str, netargs: list[str]) -> subprocess.Popen[bytes]:
        scn = self.scn
        # mitigations=off: no Spectre/Meltdown work-arounds inside throw-away guests, which
        # makes the stock kernels noticeably faster under TCG
        cmdline = (f"console=ttyS0 panic=-1 loglevel=4 mitigations=off smclab.scn={scn.name} "
                   f"smclab.role={role}")
        extra: list[str] = []
        if scn.trace or scn.python:
            cmdline += " smclab.host9p=1"
            extra = host9p_args()
        if scn.trace:
            cmdline += " smclab.trace=1"
        cmd = [
            "qemu-system-x86_64", *self.acc, "-m", os.environ.get("SMCLAB_MEM", "512"),
            "-smp", "1", "-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none",
            "-kernel", str(build_dir() / f"vmlinuz-{fl}"), "-initrd", str(self.initrds[fl]),
            "-append", cmdline,
            "-serial", f"file:{self.rdir}/console-{role}.log",
            "-serial", f"file:{self.rdir}/out-{role}.b64",
            *netargs, *extra,
        ]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        (self.rdir / f"qemu-{role}.cmd").write_text(" ".join(cmd) + "\n")
        with open(self.rdir / f"qemu-{role}.log", "wb") as logf:
            p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        self.procs.append((p, role))
        return p

    def wait_all(self, deadline: float) -> None:
        for p, role in self.procs:
            try:
                p.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.notes.append(f"{role} QEMU killed after {self.timeout:.0f} s")
                self.kill(p)
            if p.returncode not in (0, None):
                self.notes.append(f"{role} QEMU exited with {p.returncode}")

    @staticmethod
    def kill(p: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()

    def kill_all(self) -> None:
        for p, _role in self.procs:
            if p.poll() is None:
                self.kill(p)


def two_guest_nics(i: int, side: str, mode: str, sock: Path,
                   taps: tuple[str, str] | None) -> list[str]:
    """eth0: the wire (a QEMU stream socket, or a tap on a host bridge for live); eth1: the
    side channel for "server ready", kept out of the eth0 capture."""
    mac = f"52:54:00:5c:00:0{1 if side == 'server' else 2}"
    if taps:
        n0 = f"tap,id=n0,ifname={taps[0 if side == 'server' else 1]},script=no,downscript=no"
    else:
        n0 = f"stream,id=n0,server={mode},addr.type=unix,addr.path={sock}"
    return [
        "-netdev", n0, "-device", f"virtio-net-pci,netdev=n0,mac={mac}",
        "-netdev", f"stream,id=n1,server={mode},addr.type=unix,addr.path={sock}.ctl",
        "-device", f"virtio-net-pci,netdev=n1,mac=52:54:00:5c:01:0{i}",
    ]


def run_guests(
    scn: Scenario,
    *,
    kernel: str | None = None,
    server_kernel: str | None = None,
    client_kernel: str | None = None,
    netns: str | None = None,
    taps: tuple[str, str] | None = None,
    tag: str = "",
    quiet: bool = False,
) -> RunResult:
    """Boot the guest(s) of a scenario and collect their /out trees.

    With netns/taps (live mode), eth0 of server and client are the tap devices
    taps[0]/taps[1] (already enslaved to a bridge in netns) and QEMU runs inside
    netns; otherwise eth0 is a QEMU stream netdev over a unix socket."""
    flavor, srv_fl, cli_fl, label = kernels_for(scn, kernel, server_kernel, client_kernel)
    ensure_built(sorted({srv_fl, cli_fl} if scn.vms == 2 else {flavor}))
    if not shutil.which("qemu-system-x86_64"):
        raise LabError(
            "qemu-system-x86_64 not found: run `smc-lab build` (installs qemu-system-x86)"
        )
    lab = lab_dir()
    rdir = lab / "runs" / f"{scn.name}-{label}{tag}"
    shutil.rmtree(rdir, ignore_errors=True)
    rdir.mkdir(parents=True)
    (lab / "pcaps").mkdir(exist_ok=True)
    extra = cpio_newc({"scenario.sh": scn.script.read_bytes()})
    initrds: dict[str, Path] = {}
    for fl in sorted({srv_fl, cli_fl} if scn.vms == 2 else {flavor}):
        ird = rdir / f"initrd-{fl}.cpio.gz"
        ird.write_bytes((build_dir() / f"initrd-{fl}.cpio.gz").read_bytes() + extra)
        initrds[fl] = ird
    timeout = float(os.environ.get("SMCLAB_QEMU_TIMEOUT", "150"))
    g = Guests(scn, rdir, initrds, netns, timeout)
    if not quiet:
        log(f"run {scn.name} on {label} ({scn.vms} guest{'s' if scn.vms == 2 else ''}, "
            f"{g.accel})")
    t0 = time.monotonic()
    try:
        if scn.vms == 1:
            g.start("single", flavor, [])
            roles = ["single"]
        else:
            sock = rdir / "net.sock"
            srv = g.start("server", srv_fl, two_guest_nics(1, "server", "on", sock, taps))
            want = [Path(f"{sock}.ctl")] + ([] if taps else [sock])
            for _ in range(200):
                if all(w.exists() for w in want) or srv.poll() is not None:
                    break
                time.sleep(0.05)
            g.start("client", cli_fl, two_guest_nics(2, "client", "off", sock, taps))
            roles = ["server", "client"]
        g.wait_all(t0 + timeout)
    finally:
        g.kill_all()
    wall = time.monotonic() - t0
    for f in [*initrds.values(), rdir / "net.sock", rdir / "net.sock.ctl"]:
        f.unlink(missing_ok=True)
    return collect(scn, label, tag, rdir, roles, wall, g.notes)


def collect(scn: Scenario, label: str, tag: str, rdir: Path, roles: list[str], wall: float,
            notes: list[str]) -> RunResult:
    """Unpack each guest's /out and copy captures, dmesg and traces to <lab>/pcaps."""
    ok = True
    for role in roles:
        outdir = rdir / f"out-{role}"
        outdir.mkdir()
        try:
            extract_out(rdir / f"out-{role}.b64", outdir)
        except LabError as e:
            notes.append(f"{role}: {e}")
            ok = False
    main = "single" if scn.vms == 1 else "server"
    base = f"{scn.name}-{label}{tag}"
    pdir = lab_dir() / "pcaps"
    pcap = None
    extra_pcaps: dict[str, Path] = {}
    for i, src in enumerate(sorted((rdir / f"out-{main}").glob("*.pcap"))):
        dst = pdir / (f"{base}.pcap" if i == 0 else f"{base}-{src.name}")
        shutil.copyfile(src, dst)
        if i == 0:
            pcap = dst
    if scn.vms == 2:
        for src in sorted((rdir / "out-client").glob("*.pcap")):
            dst = pdir / f"{base}-client.pcap"
            shutil.copyfile(src, dst)
            extra_pcaps["client"] = dst
    trace = None
    if (rdir / f"out-{main}" / "smctrace.jsonl").exists():
        trace = pdir / f"{base}.smctrace.jsonl"
        shutil.copyfile(rdir / f"out-{main}" / "smctrace.jsonl", trace)
    for role in roles:
        src = rdir / f"out-{role}" / "dmesg-smc.txt"
        if src.exists():
            suffix = "" if role == main else f".{role}"
            shutil.copyfile(src, pdir / f"{base}{suffix}.dmesg.txt")
        logtxt = rdir / f"out-{role}" / "log.txt"
        if logtxt.exists() and "WATCHDOG" in logtxt.read_text(errors="replace"):
            notes.append(
                f"{role}: guest watchdog fired (scenario hung; "
                f"see {rdir}/out-{role}/stuck-stacks.txt)"
            )
    if pcap is None:
        ok = False
        notes.append("no pcap produced")
    return RunResult(scn, label, rdir, pcap, wall, roles, ok, notes, extra_pcaps, trace)


def extract_out(b64file: Path, outdir: Path) -> None:
    if not b64file.exists():
        raise LabError(f"{b64file.name} missing (guest did not start?)")
    text = b64file.read_bytes().replace(b"\r", b"").decode("ascii", "replace")
    m = re.search(r"^SMCLAB-OUT-BEGIN\n(.*?)^SMCLAB-OUT-END$", text, re.S | re.M)
    if not m:
        raise LabError(f"no output block in {b64file.name} (guest crashed or timed out?)")
    data = base64.b64decode(m.group(1))
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
            tf.extractall(outdir, filter="data")
            return
        for ti in tf.getmembers():  # our own guest's archive; still refuse odd paths
            if ti.name.startswith("/") or ".." in Path(ti.name).parts or not (
                ti.isfile() or ti.isdir()
            ):
                raise LabError(f"unexpected member {ti.name!r} in guest output")
        tf.extractall(outdir)


def print_run(res: RunResult) -> None:
    print(f"== {res.scenario.name} on {res.label}: wall {res.wall:.1f} s")
    for role in res.roles:
        logtxt = res.rundir / f"out-{role}" / "log.txt"
        if not logtxt.exists():
            continue
        lines = logtxt.read_text(errors="replace").splitlines()
        init = next((ln for ln in lines if "init started" in ln), "")
        print(f"-- {role}: {init.split('] ', 1)[-1]}")
        for ln in lines:
            if re.search(r"smcecho|smc_echo|smctool|smctrace|rc=|pcapcap|WATCHDOG", ln):
                print(f"   {ln}")
    for n in res.notes:
        print(f"!! {n}")
    if res.pcap:
        print(f"pcap: {res.pcap}")
        for role, p in res.extra_pcaps.items():
            print(f"pcap ({role}): {p}")
    if res.trace:
        print(f"in-guest smctrace: {res.trace}")

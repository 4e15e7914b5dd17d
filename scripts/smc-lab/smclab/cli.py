"""smc-lab: reproduce real Linux SMC (net/smc) CLC handshakes without SMC hardware.

Debian's own kernels (and one 7.x kernel the lab builds from Debian's linux-source, since
Debian's 7.x kernels have no SMC) run in QEMU guests with a busybox initramfs; AF_SMC traffic
inside them (SMC-D over loopback-ism, SMC-R over soft-RoCE, declines, fallbacks) is captured
to pcap files, which smctrace is then checked against.

Subcommands:
  build            fetch kernels (--kernel, default all), build the 7.x kernel, initramfs images
  kernels          the kernels the lab can boot: short name, full version, what each can do
  list             list scenarios (kernels, number of guests, expected outcome)
  run SCENARIO     boot the guest(s) of one scenario, write <scenario>-<kernel>.pcap + dmesg
  check PCAP       check `smctrace -f PCAP --json` against a scenario's expectations
  live [SCENARIO]  two-guest SMC-R on a bridge in a network namespace, traced with `smctrace -i`
  test             build if needed, run the scenario matrix, check each capture, then `live`
  results          the last test's outcomes as a table: scenario x kernel
  clean            remove run outputs (--all: also the cache of downloads and kernels)

Run outputs go to $SMCLAB_DIR (default: <repo>/lab, git-ignored); downloads and built
kernels to $SMCLAB_CACHE (default /var/cache/smctrace-lab, or --cache DIR).

Environment: SMCLAB_DIR, SMCLAB_CACHE, SMCLAB_ACCEL=auto|kvm|tcg (auto: KVM only with
kvm_intel/kvm_amd), SMCLAB_QEMU_CPU, SMCLAB_MEM (MiB, 512), SMCLAB_QEMU_TIMEOUT (s, 150),
SMCLAB_SMCTRACE (tracer command; default .venv/bin/smctrace), and for build: SMCLAB_MIRROR
(Debian mirror), SMCLAB_NO_HOST_INSTALL=1, SMCLAB_K7_PKG etc. (pin a kernel package).
Exit status: 0 ok, 1 failure, 2 usage/setup error, 3 live passed without the tracer.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .check import check_guest_trace, check_pcap
from .common import LabError, cache_dir, lab_dir, log, sh
from .kernels import NAMES, built_flavors, cmd_build, cmd_kernels
from .live import DEFAULT_LIVE, cmd_live
from .matrix import cmd_results, cmd_test
from .qemu import print_run, run_guests
from .scenario import all_scenarios, load_scenario

BACKENDS = ("auto", "smctrace", "tshark")


def cmd_run(args: argparse.Namespace) -> int:
    scn = load_scenario(args.scenario)
    res = run_guests(
        scn, kernel=args.kernel, server_kernel=args.server_kernel, client_kernel=args.client_kernel
    )
    print_run(res)
    if args.check and res.pcap:
        ok, lines = check_pcap(res.pcap, scn.expectation(res.label), backend=args.backend)
        if res.trace is not None:  # trace=yes: smctrace -i inside the guest, too
            t_ok, t_lines = check_guest_trace(res.trace, res.pcap)
            ok, lines = ok and t_ok, lines + t_lines
        print("\n".join(lines))
        return 0 if ok and res.ok else 1
    return 0 if res.ok else 1


def cmd_list(args: argparse.Namespace) -> int:
    flavors = " ".join(built_flavors()) or "none, run `smc-lab build`"
    print(f"lab directory: {lab_dir()}  cache: {cache_dir()}  (built kernels: {flavors})")
    for s in all_scenarios():
        kern = s.kernel
        if s.mixed:
            kern = f"srv={s.server_kernel or s.kernel},cli={s.client_kernel or s.kernel}"
        also = [k for k in s.also if k != s.kernel]
        extra = f" (+{','.join(also)})" if also else ""
        flags = "".join(f" {f}" for f, on in (("smoke", s.smoke), ("trace", s.trace)) if on)
        print(f"{s.name:36} {kern + extra:24} vms={s.vms}{flags}  {s.description}")
        if args.verbose:
            for lab, exp in s.expect.items():
                kv = " ".join(f"{k}={v}" for k, v in exp.items())
                print(f"{'':36} expect{'@' + lab if lab else ''}: {kv}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    pcap = Path(args.pcap)
    name, label = args.scenario, args.kernel
    if not name:  # derive from <scenario>-<label>.pcap
        for s in sorted(all_scenarios(), key=lambda s: -len(s.name)):
            if pcap.name.startswith(s.name + "-"):
                name, label = s.name, label or pcap.name[len(s.name) + 1 :].removesuffix(".pcap")
                break
    if not name:
        raise LabError("cannot tell the scenario from the file name: use --scenario")
    scn = load_scenario(name)
    ok, lines = check_pcap(pcap, scn.expectation(label or scn.kernel), backend=args.backend)
    print("\n".join(lines))
    return 0 if ok else 1


def stale_netns() -> list[str]:
    """smclab-<pid>-* namespaces whose `live` process is gone (e.g. killed with SIGKILL)."""
    p = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    names = [ln.split()[0] for ln in p.stdout.splitlines() if ln.startswith("smclab-")]
    return [n for n in names if not Path(f"/proc/{n.split('-')[1]}").exists()]


def cmd_clean(args: argparse.Namespace) -> int:
    for ns in stale_netns():
        log(f"removing stale network namespace {ns}")
        sh("ip", "netns", "del", ns, check=False)
    lab = lab_dir()
    targets = [lab / "runs", lab / "pcaps", lab / "live"]
    if args.all:
        targets += [lab, cache_dir()]
    for t in targets:
        if t.exists():
            log(f"removing {t}")
            shutil.rmtree(t)
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="smc-lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cache", metavar="DIR", help="cache directory (default $SMCLAB_CACHE "
                    "or /var/cache/smctrace-lab)")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="SUBCOMMAND")
    kernel_help = f"kernel(s), comma-separated or repeated, or 'all' ({', '.join(NAMES)})"

    p = sub.add_parser("build", help="fetch kernels and build guest images (idempotent, cached)")
    p.add_argument("--kernel", "-k", action="append", help=kernel_help + "; default: all")
    p.add_argument("--no-host-install", action="store_true",
                   help="fail instead of apt-get installing host tools")
    p.add_argument("--apt-update", action="store_true", help="refresh the private apt lists")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("kernels", help="list the kernels the lab can boot (name, version)")
    p.add_argument("--resolve", action="store_true",
                   help="resolve the version patterns against the package lists now")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also say which Debian kernels have SMC")
    p.set_defaults(func=cmd_kernels)

    p = sub.add_parser("list", help="list scenarios")
    p.add_argument("-v", "--verbose", action="store_true", help="also show expectations")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run one scenario")
    p.add_argument("scenario")
    p.add_argument("--kernel", "-k", choices=NAMES, help="kernel (default: the scenario's)")
    p.add_argument("--server-kernel", choices=NAMES)
    p.add_argument("--client-kernel", choices=NAMES)
    p.add_argument("--check", action="store_true",
                   help="check the capture against the expectation")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check", help="check a capture against a scenario's expectation")
    p.add_argument("pcap")
    p.add_argument("--scenario", "-s")
    p.add_argument("--kernel", "-k", help="kernel label for per-kernel expectations")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="smctrace -f (default when available) or the tshark oracle")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("live",
                       help="two-guest SMC-R on a bridge in a netns, traced live by smctrace -i")
    p.add_argument("scenario", nargs="?", default=DEFAULT_LIVE)
    p.add_argument("--kernel", "-k", choices=NAMES)
    p.add_argument("--no-tracer", action="store_true", help="only tcpdump on the bridge")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="how the guest capture is checked")
    p.set_defaults(func=cmd_live)

    p = sub.add_parser("test",
                       help="build if needed, run the scenario matrix, check every capture, live")
    p.add_argument("--kernel", "-k", action="append", help=kernel_help + "; default: all")
    p.add_argument("--full", metavar="KERNELS",
                   help="kernels that run every scenario (default k510,k7; 'all'); the others "
                   "run the smoke=yes scenarios")
    p.add_argument("--no-live", action="store_true")
    p.add_argument("--only", metavar="REGEX", help="only scenarios whose name matches")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                   help="QEMU guests at once (default: number of CPUs)")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("results", help="the last `test` run's outcomes: scenario x kernel")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("clean", help="remove runs/ pcaps/ live/ and stale live netns "
                       "(--all: the whole lab directory and the cache)")
    p.add_argument("--all", action="store_true")
    p.set_defaults(func=cmd_clean)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.cache:
        os.environ["SMCLAB_CACHE"] = args.cache
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        return int(args.func(args))
    except LabError as e:
        print(f"smc-lab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

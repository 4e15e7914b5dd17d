"""The kernels the lab boots, `smc-lab build` (build.sh does the work) and `smc-lab kernels`.

Kernel choices are version patterns resolved by build.sh against Debian's package lists
(the newest match wins), so they follow point releases; what was resolved and built is
in <cache>/build/kernels.tsv (name, version, source, package).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import time

from .common import SRC, LabError, build_dir, cache_dir, lab_dir, log


@dataclasses.dataclass(frozen=True)
class Kernel:
    name: str
    pattern: str  # the Debian package pattern build.sh resolves
    source: str  # stock | stock + smc.ko | self-built
    smcd_loopback: bool  # SMC-D over loopback-ism / DIBS loopback
    smcr_v2: bool  # SMC-R v2 (Linux >= 5.17)
    ipproto_smc: bool  # socket(AF_INET, SOCK_STREAM, IPPROTO_SMC) (Linux >= 6.11)
    default: bool = True  # built and tested unless asked otherwise


KERNELS: tuple[Kernel, ...] = (
    Kernel("k510", "bullseye linux-image-5.10.0-*-amd64", "stock", False, False, False),
    Kernel("k61", "bookworm linux-image-6.1.0-*-amd64", "stock", False, True, False),
    Kernel("k612", "bookworm-backports linux-image-6.12.*+deb12-amd64", "stock",
           False, True, True),
    Kernel("k612lo", "the same 6.12 + smc.ko from linux-source-6.12 with CONFIG_SMC_LO",
           "stock + smc.ko", True, True, True),
    Kernel("k617", "trixie-backports linux-image-6.17.*+deb13-amd64", "stock",
           False, True, True),
    Kernel("k7", "trixie-backports linux-source-7.* + kernel/smclab.config", "self-built",
           True, True, True),
    Kernel("k612t", "trixie linux-image-6.12.*+deb13-amd64", "stock", False, True, True,
           default=False),
)
BY_NAME = {k.name: k for k in KERNELS}
NAMES = tuple(BY_NAME)
DEFAULT_KERNELS = tuple(k.name for k in KERNELS if k.default)
OLDEST, NEWEST = "k510", "k7"

DISTRO_SMC = """\
Which Debian kernels have SMC (CONFIG_SMC):
  5.10 (bullseye), 6.1 (bookworm), 6.12 (bookworm-backports, trixie),
  6.16 and 6.17 (trixie-backports)                     CONFIG_SMC=m: AF_SMC works
  6.18 and later (trixie-backports 6.18, 7.2, 7.3;
  sid 7.2; experimental 7.3-rc)                         NO SMC: CONFIG_DIBS is not set
                                                        and CONFIG_SMC depends on it
  On a kernel without SMC, socket(AF_SMC) fails with EAFNOSUPPORT, IPPROTO_SMC with
  EPROTONOSUPPORT, and SYNs never carry the SMC option. The TCP core has the SMC hooks only
  when CONFIG_SMC is set at build time, so an out-of-tree smc.ko cannot help: the lab builds
  its 7.x kernel itself (k7). No Debian kernel sets CONFIG_SMC_LO (loopback-ism, 6.10-6.17);
  the lab rebuilds smc.ko with it where the matching linux-source is in the archive (6.12)."""


def read_tsv() -> dict[str, tuple[str, str, str]]:
    """name -> (version, source, package) of the kernels build.sh resolved."""
    out: dict[str, tuple[str, str, str]] = {}
    tsv = build_dir() / "kernels.tsv"
    if tsv.is_file():
        for line in tsv.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 4:
                out[parts[0]] = (parts[1], parts[2], parts[3])
    return out


def built_flavors() -> list[str]:
    b = build_dir()
    return [
        k.name
        for k in KERNELS
        if (b / f"vmlinuz-{k.name}").is_file() and (b / f"initrd-{k.name}.cpio.gz").is_file()
    ]


def ensure_built(flavors: list[str]) -> None:
    missing = [f for f in flavors if f not in built_flavors()]
    if missing:
        ks = ",".join(missing)
        raise LabError(f"kernel(s) {ks} not built: run `smc-lab build --kernel {ks}`")


def parse_kernel_list(values: list[str] | None, default: tuple[str, ...]) -> list[str]:
    """--kernel a,b --kernel c (or 'all') -> names, checked."""
    if not values:
        return list(default)
    names: list[str] = []
    for v in values:
        for n in v.split(","):
            if n == "all":
                names += [k for k in DEFAULT_KERNELS if k not in names]
            elif n not in BY_NAME:
                raise LabError(f"unknown kernel {n!r} (known: {', '.join(NAMES)})")
            elif n not in names:
                names.append(n)
    return names


def run_build(kernels: list[str], *, no_host_install: bool = False,
              apt_update: bool = False, resolve_only: bool = False) -> int:
    env = dict(os.environ, SMCLAB_CACHE=str(cache_dir()), SMCLAB_KERNELS=" ".join(kernels))
    if no_host_install:
        env["SMCLAB_NO_HOST_INSTALL"] = "1"
    if apt_update:
        env["SMCLAB_APT_UPDATE"] = "1"
    if resolve_only:
        env["SMCLAB_RESOLVE_ONLY"] = "1"
    t0 = time.monotonic()
    rc = subprocess.call(["bash", str(SRC / "build.sh")], env=env)
    if not resolve_only:
        log(f"build {'finished' if rc == 0 else 'FAILED'} in {time.monotonic() - t0:.1f} s")
    return rc


def cmd_build(args: argparse.Namespace) -> int:
    kernels = parse_kernel_list(args.kernel, DEFAULT_KERNELS)
    log(f"building {' '.join(kernels)} in {cache_dir()}")
    return run_build(kernels, no_host_install=args.no_host_install, apt_update=args.apt_update)


def yn(b: bool) -> str:
    return "yes" if b else "no"


def cmd_kernels(args: argparse.Namespace) -> int:
    """One line a kernel: short name, full version, then what it is and what it can do."""
    tsv = read_tsv()
    # resolve the patterns against the package lists, without downloading kernels
    if (args.resolve or not tsv) and os.geteuid() == 0 and run_build(
            list(NAMES), resolve_only=True) == 0:
        tsv = read_tsv()
    built = set(built_flavors())
    for k in KERNELS:
        version = tsv.get(k.name, ("(not resolved: smc-lab kernels --resolve)",))[0]
        state = "built" if k.name in built else "not built"
        print(f"{k.name} {version}  source={k.source} smcd-loopback={yn(k.smcd_loopback)} "
              f"smcr-v2={yn(k.smcr_v2)} ipproto-smc={yn(k.ipproto_smc)} [{state}]  "
              f"{k.pattern}")
    if args.verbose:
        print(f"cache: {cache_dir()}  outputs: {lab_dir()}")
        print(DISTRO_SMC)
    return 0

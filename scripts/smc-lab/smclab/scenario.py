"""Scenario files (scripts/smc-lab/scenarios/*.sh): their header and expectations.

Header lines (comments at the top of the file):
  # smclab: kernel=K vms=1|2 [also=K2,K3|*] [server_kernel=K client_kernel=K]
  #         [guest=OTHER] [python=yes] [live=yes] [trace=yes] [smoke=yes]
  # <one line of description>
  # expect: key=value ...          (compared with smctrace's connection events)
  # expect@K: key=value ...        (replaces it for kernel (or pairing label) K)
`also=*` means every default lab kernel; `trace=yes` runs smctrace -i inside the guest as
well; `smoke=yes` puts the scenario into the smoke subset `test` runs on middle kernels.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from .common import SCENARIO_DIR, LabError
from .kernels import DEFAULT_KERNELS


@dataclasses.dataclass
class Scenario:
    name: str
    path: Path
    script: Path  # what runs in the guest: this file, or another scenario's (guest=NAME)
    kernel: str
    vms: int
    server_kernel: str | None
    client_kernel: str | None
    also: list[str]
    description: str
    expect: dict[str, dict[str, str]]  # label ("" = default) -> key -> value
    live: bool
    python: bool
    trace: bool = False
    smoke: bool = False

    @property
    def kernels(self) -> list[str]:
        """The kernels `test` runs this scenario on (its own first)."""
        return [self.kernel, *[k for k in self.also if k != self.kernel]]

    @property
    def mixed(self) -> bool:
        return bool(self.server_kernel or self.client_kernel)

    def expectation(self, label: str) -> dict[str, str]:
        """What smctrace must report for a run on kernel (or pairing) ``label``: its
        expect@ line if there is one (it replaces the default whole), else the default."""
        for key in (label, label.split("-")[0]):
            if key in self.expect and key != "":
                return dict(self.expect[key])
        return dict(self.expect.get("", {}))


def parse_kv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for tok in text.split():
        if "=" not in tok:
            raise LabError(f"bad key=value token {tok!r}")
        k, v = tok.split("=", 1)
        out[k] = v
    return out


def load_scenario(name: str) -> Scenario:
    path = SCENARIO_DIR / f"{name}.sh"
    if not path.is_file():
        raise LabError(f"no such scenario: {name} (see `smc-lab list`)")
    hdr: dict[str, str] = {}
    expect: dict[str, dict[str, str]] = {}
    desc = ""
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        body = line[1:].strip()
        if body.startswith("smclab:"):
            hdr = parse_kv(body[len("smclab:") :])
        elif m := re.match(r"expect(?:@([\w-]+))?:(.*)", body):
            expect[m.group(1) or ""] = parse_kv(m.group(2))
        elif not desc and body:
            desc = body
    if "kernel" not in hdr:
        raise LabError(f"{path}: first line must be '# smclab: kernel=FLAVOR vms=N'")
    if "" not in expect:
        raise LabError(f"{path}: missing '# expect: ...' header line")
    # guest=OTHER: the same guest script as scenario OTHER, e.g. on another kernel pairing
    script = SCENARIO_DIR / f"{hdr['guest']}.sh" if "guest" in hdr else path
    if not script.is_file():
        raise LabError(f"{path}: guest={hdr['guest']}: no such scenario")
    also = hdr.get("also", "")
    return Scenario(
        name=name,
        path=path,
        script=script,
        kernel=hdr["kernel"],
        vms=int(hdr.get("vms", "1")),
        server_kernel=hdr.get("server_kernel"),
        client_kernel=hdr.get("client_kernel"),
        also=list(DEFAULT_KERNELS) if also == "*" else [a for a in also.split(",") if a],
        description=desc,
        expect=expect,
        live=hdr.get("live") == "yes",
        python=hdr.get("python") == "yes",
        trace=hdr.get("trace") == "yes",
        smoke=hdr.get("smoke") == "yes",
    )


def all_scenarios() -> list[Scenario]:
    return [load_scenario(p.stem) for p in sorted(SCENARIO_DIR.glob("*.sh"))]

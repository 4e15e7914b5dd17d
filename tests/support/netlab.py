"""Private network namespaces with veth pairs, bridges and tap devices, written once for
tests, benchmarks and the SMC lab.

Everything a :class:`NetLab` creates lives in namespaces it made itself (named
``<prefix>-<pid>-<role>``), so no traffic can leave them; :meth:`NetLab.close` (also on
``with`` exit) deletes the namespaces and with them every device in them.  Interface names
are short (``<tag><pid><n>``, under 16 bytes) and unique per lab.

    with NetLab("smct") as lab:
        rx = lab.namespace("rx")
        tx = lab.namespace("tx")
        tx_if, rx_if = lab.veth(tx, rx, addresses=("10.213.0.1/24", "10.213.0.2/24"))
        lab.run(rx, "ip", "link", "show", rx_if)
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import struct
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any


class NetLabError(RuntimeError):
    """A namespace or device could not be created (no root, no iproute2, ...)."""


def available() -> str | None:
    """None when network labs can be made here, else why not (for pytest.skip)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2 (the ip command)"
    return None


CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def entered(namespace: str) -> Iterator[None]:
    """Run the calling thread inside ``namespace`` for the ``with`` block (sockets made
    there stay in it afterwards), then return to the namespace it came from."""
    with open("/proc/self/ns/net", "rb") as home, open(f"/run/netns/{namespace}", "rb") as ns:
        if _libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
            raise NetLabError(f"setns {namespace}: {os.strerror(ctypes.get_errno())}")
        try:
            yield
        finally:
            if _libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise NetLabError(f"setns back: {os.strerror(ctypes.get_errno())}")


class NetLab:
    """Namespaces and devices that exist for the lifetime of this object."""

    def __init__(self, prefix: str = "smct") -> None:
        self.prefix = prefix
        self._pid = os.getpid()
        self._namespaces: list[str] = []
        self._fds: list[int] = []
        self._count = 0

    # -- lifetime -----------------------------------------------------------------------

    def __enter__(self) -> NetLab:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Delete every namespace of this lab (and so every device in them)."""
        while self._fds:
            os.close(self._fds.pop())
        while self._namespaces:
            name = self._namespaces.pop()
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)

    # -- commands -----------------------------------------------------------------------

    @staticmethod
    def argv(namespace: str | None, *command: str) -> list[str]:
        """``command`` run inside ``namespace`` (None: the caller's namespace)."""
        if namespace is None:
            return list(command)
        return ["ip", "netns", "exec", namespace, *command]

    def run(self, namespace: str | None, *command: str, check: bool = True,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``command`` in ``namespace``; NetLabError with its stderr if it fails."""
        argv = self.argv(namespace, *command)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError as exc:
            raise NetLabError(f"{argv[0]}: not found") from exc
        if check and proc.returncode != 0:
            raise NetLabError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")
        return proc

    def popen(self, namespace: str | None, command: Sequence[str],
              **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``command`` in ``namespace`` (arguments as for subprocess.Popen)."""
        return subprocess.Popen(self.argv(namespace, *command), **kwargs)

    # -- objects ------------------------------------------------------------------------

    def _name(self, tag: str) -> str:
        self._count += 1
        name = f"{tag}{self._pid % 100000}{self._count}"
        if len(name.encode()) >= 16:
            raise NetLabError(f"interface name {name} is too long")
        return name

    def namespace(self, role: str) -> str:
        """A new namespace with ``lo`` up; its name is returned."""
        name = f"{self.prefix}-{self._pid}-{role}"
        if Path(f"/run/netns/{name}").exists():
            self.run(None, "ip", "netns", "del", name, check=False)
        self.run(None, "ip", "netns", "add", name)
        self._namespaces.append(name)
        self.run(name, "ip", "link", "set", "lo", "up")
        return name

    def veth(self, namespace: str, peer_namespace: str | None = None, *,
             addresses: tuple[str | None, str | None] = (None, None), mtu: int | None = None,
             gso_max_segs: int | None = None, up: bool = True,
             macs: tuple[str | None, str | None] = (None, None)) -> tuple[str, str]:
        """A veth pair with one end in ``namespace`` and the other in ``peer_namespace``
        (default: the same namespace); ``addresses`` are IP addresses with their prefix,
        ``macs`` link-layer addresses; returns the two interface names."""
        peer_namespace = peer_namespace or namespace
        end, peer = self._name("va"), self._name("vb")
        self.run(None, "ip", "link", "add", end, "netns", namespace, "type", "veth",
                 "peer", "name", peer, "netns", peer_namespace)
        for ns, dev, address, mac in ((namespace, end, addresses[0], macs[0]),
                                      (peer_namespace, peer, addresses[1], macs[1])):
            if address is not None:
                self.run(ns, "ip", "addr", "add", address, "dev", dev)
            settings: list[str] = []
            if mac is not None:
                settings += ["address", mac]
            if mtu is not None:
                settings += ["mtu", str(mtu)]
            if gso_max_segs is not None:
                settings += ["gso_max_segs", str(gso_max_segs)]
            if up:
                settings.append("up")
            if settings:
                self.run(ns, "ip", "link", "set", dev, *settings)
        return end, peer

    def bridge(self, namespace: str, ports: Sequence[str] = (), *, up: bool = True) -> str:
        """A bridge in ``namespace`` (no address) with ``ports`` enslaved to it."""
        name = self._name("br")
        self.run(namespace, "ip", "link", "add", name, "type", "bridge")
        for port in ports:
            self.run(namespace, "ip", "link", "set", port, "master", name)
        if up:
            self.run(namespace, "ip", "link", "set", name, "up")
        return name

    def tap(self, namespace: str, master: str | None = None, *, up: bool = True) -> str:
        """A tap device in ``namespace`` (for a QEMU guest's NIC), optionally a bridge port."""
        name = self._name("tp")
        self.run(namespace, "ip", "tuntap", "add", "dev", name, "mode", "tap")
        if master is not None:
            self.run(namespace, "ip", "link", "set", name, "master", master)
        if up:
            self.run(namespace, "ip", "link", "set", name, "up")
        return name

    def tun(self, namespace: str, *, up: bool = True) -> tuple[str, int]:
        """A tun device in ``namespace`` (no link header: ARPHRD_NONE) with a queue
        attached, so it has carrier; returns its name and the queue's fd (closed with the
        lab).  Frames sent out of the device (an AF_PACKET socket) queue on the fd;
        writes to the fd arrive on the device as received IP packets."""
        name = self._name("tn")
        self.run(namespace, "ip", "tuntap", "add", "dev", name, "mode", "tun")
        with entered(namespace):  # the queue attaches in the namespace it was opened in
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        self._fds.append(fd)
        iff_tun, iff_no_pi, tunsetiff = 0x0001, 0x1000, 0x400454CA
        fcntl.ioctl(fd, tunsetiff, struct.pack("16sH14x", name.encode(), iff_tun | iff_no_pi))
        if up:
            self.run(namespace, "ip", "link", "set", name, "up")
        return name, fd

    def read_counter(self, namespace: str, device: str, counter: str) -> int:
        """/sys/class/net/DEVICE/statistics/COUNTER, read inside ``namespace`` (sysfs shows
        the namespace it is mounted in, so it is read through ``ip netns exec``)."""
        out = self.run(namespace, "cat", f"/sys/class/net/{device}/statistics/{counter}")
        return int(out.stdout.split()[0])

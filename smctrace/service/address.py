"""The ``--http`` listen address: ``PORT``, ``:PORT``, ``ADDR:PORT`` or ``[IPv6]:PORT``.

Only numeric addresses (and ``localhost``) are accepted, so what is bound is exactly what
was written; without an address the service binds 127.0.0.1, so reaching it from another
host always takes an address given on purpose.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

DEFAULT_ADDRESS = "127.0.0.1"


class ListenAddressError(ValueError):
    """The --http value cannot be used (one line for the user)."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str  # numeric IPv4 or IPv6 address, without brackets
    port: int  # 0: the kernel picks one (the bound port is then in Service.url)

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.host).is_loopback

    def url(self, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port if port is None else port}/"


def parse_listen_address(text: str) -> ListenAddress:
    """``9100`` and ``:9100`` mean 127.0.0.1:9100; ``[::1]:9100`` is IPv6."""
    value = text.strip()
    if value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise ListenAddressError(f"--http {text}: write an IPv6 address as [ADDR]:PORT")
    elif value.count(":") > 1:
        raise ListenAddressError(f"--http {text}: write an IPv6 address as [ADDR]:PORT")
    elif ":" in value:
        host, _, port_text = value.partition(":")
    else:
        host, port_text = "", value
    host = host or DEFAULT_ADDRESS
    if host == "localhost":
        host = DEFAULT_ADDRESS
    try:
        port = int(port_text, 10)
    except ValueError:
        raise ListenAddressError(f"--http {text}: the port must be a number") from None
    if not 0 <= port <= 65535:
        raise ListenAddressError(f"--http {text}: the port must be 0-65535")
    try:
        parsed = ipaddress.ip_address(host)
    except ValueError:
        raise ListenAddressError(
            f"--http {text}: {host!r} is not a numeric IP address "
            "(give e.g. 127.0.0.1:9100, [::1]:9100 or 0.0.0.0:9100)") from None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.scope_id:
        raise ListenAddressError(f"--http {text}: scoped IPv6 addresses are not supported")
    return ListenAddress(str(parsed), port)

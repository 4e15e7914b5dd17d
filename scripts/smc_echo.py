#!/usr/bin/env python3
"""smc_echo: AF_SMC echo server and client, for generating real SMC traffic on SMC hosts.

    smc_echo.py -s [-a ADDR] [-p PORT] [-n NCONN]          server (echoes what it reads)
    smc_echo.py -c -a ADDR [-p PORT] [-m MESSAGE]          client (sends, waits for the echo)

Socket kinds (the same for both sides):
    default          socket(AF_SMC=43, SOCK_STREAM, SMCPROTO_SMC=0 | SMCPROTO_SMC6=1)
    --ipproto-smc    socket(AF_INET | AF_INET6, SOCK_STREAM, IPPROTO_SMC=256)   (Linux >= 6.11)
    --tcp            socket(AF_INET | AF_INET6, SOCK_STREAM, 0): plain TCP, no SMC

IPv6 is chosen by the address (e.g. -a ::1) or forced with -6.

Python's socket module cannot build socket addresses for a family it does not
know (AF_SMC takes a sockaddr_in / sockaddr_in6), so for AF_SMC sockets bind(),
connect(), accept() and getsockname() are called through libc with ctypes and a
packed sockaddr. Everything else (listen, send, recv) is the socket module's.
Standard library only.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import errno
import ipaddress
import os
import socket
import struct
import sys

AF_SMC = 43
SMCPROTO_SMC = 0  # AF_SMC over IPv4
SMCPROTO_SMC6 = 1  # AF_SMC over IPv6
IPPROTO_SMC = 256  # socket(AF_INET*, SOCK_STREAM, IPPROTO_SMC), Linux >= 6.11
DEFAULT_PORT = 7001
DEFAULT_MESSAGE = "Hello, world"


class EchoError(Exception):
    """A user-facing error (printed without a traceback)."""

    def __init__(self, msg: str, code: int = 1) -> None:
        super().__init__(msg)
        self.code = code


# --------------------------------------------------------------------------- sockaddrs


def pack_sockaddr(addr: str, port: int) -> bytes:
    """A struct sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes), as the kernel expects it."""
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if not 0 <= port <= 65535:
        raise EchoError(f"bad port {port}", 2)
    if ip.version == 4:
        # sa_family (host order), sin_port (network order), sin_addr, 8 bytes zero
        return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + ip.packed + bytes(8)
    scope = 0
    if "%" in addr:
        ifname = addr.split("%", 1)[1]
        scope = int(ifname) if ifname.isdigit() else socket.if_nametoindex(ifname)
    # sin6_family, sin6_port, sin6_flowinfo, sin6_addr, sin6_scope_id
    return (
        struct.pack("=H", socket.AF_INET6)
        + struct.pack("!HI", port, 0)
        + ip.packed
        + struct.pack("=I", scope)
    )


def unpack_sockaddr(raw: bytes) -> tuple[str, int]:
    """(address, port) from a sockaddr_in / sockaddr_in6."""
    if len(raw) < 2:
        return ("?", 0)
    (fam,) = struct.unpack("=H", raw[:2])
    if fam == socket.AF_INET and len(raw) >= 8:
        (port,) = struct.unpack("!H", raw[2:4])
        return (str(ipaddress.IPv4Address(raw[4:8])), port)
    if fam == socket.AF_INET6 and len(raw) >= 24:
        (port,) = struct.unpack("!H", raw[2:4])
        return (str(ipaddress.IPv6Address(raw[8:24])), port)
    return (f"family {fam}", 0)


_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def _check(rc: int, what: str) -> int:
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return rc


def c_bind(sock: socket.socket, addr: str, port: int) -> None:
    sa = pack_sockaddr(addr, port)
    _check(libc().bind(sock.fileno(), ctypes.c_char_p(sa), len(sa)), "bind")


def c_connect(sock: socket.socket, addr: str, port: int) -> None:
    sa = pack_sockaddr(addr, port)
    while True:
        rc = libc().connect(sock.fileno(), ctypes.c_char_p(sa), len(sa))
        if rc == 0:
            return
        if ctypes.get_errno() != errno.EINTR:
            _check(rc, "connect")


def c_accept(sock: socket.socket) -> tuple[socket.socket, tuple[str, int]]:
    buf = ctypes.create_string_buffer(128)
    ln = ctypes.c_uint32(len(buf))
    while True:
        fd = libc().accept(sock.fileno(), buf, ctypes.byref(ln))
        if fd >= 0:
            break
        if ctypes.get_errno() != errno.EINTR:
            _check(fd, "accept")
    conn = socket.socket(sock.family, sock.type, sock.proto, fileno=fd)
    return conn, unpack_sockaddr(buf.raw[: ln.value])


def c_getsockname(sock: socket.socket) -> tuple[str, int]:
    buf = ctypes.create_string_buffer(128)
    ln = ctypes.c_uint32(len(buf))
    _check(libc().getsockname(sock.fileno(), buf, ctypes.byref(ln)), "getsockname")
    return unpack_sockaddr(buf.raw[: ln.value])


# --------------------------------------------------------------------------- sockets


def kind_of(args: argparse.Namespace) -> str:
    return "tcp" if args.tcp else "smcinet" if args.ipproto_smc else "smc"


def make_socket(kind: str, v6: bool) -> socket.socket:
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    try:
        if kind == "smc":
            return socket.socket(AF_SMC, socket.SOCK_STREAM, SMCPROTO_SMC6 if v6 else SMCPROTO_SMC)
        if kind == "smcinet":
            return socket.socket(fam, socket.SOCK_STREAM, IPPROTO_SMC)
        return socket.socket(fam, socket.SOCK_STREAM, 0)
    except OSError as e:
        raise EchoError(no_smc_message(kind, v6, e), 3) from None


def no_smc_message(kind: str, v6: bool, e: OSError) -> str:
    name = errno.errorcode.get(e.errno or 0, str(e.errno))
    if kind == "smc" and e.errno in (errno.EAFNOSUPPORT, errno.EINVAL, errno.EPROTONOSUPPORT):
        return (
            f"this kernel has no AF_SMC sockets: socket(AF_SMC=43, SOCK_STREAM, "
            f"{'SMCPROTO_SMC6' if v6 else 'SMCPROTO_SMC'}) failed with {name} ({e.strerror}).\n"
            "SMC needs a kernel built with CONFIG_SMC and the smc module loaded (modprobe smc); "
            "a host without SMC can still run the echo over plain TCP with --tcp."
        )
    if kind == "smcinet" and e.errno in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT, errno.EINVAL):
        return (
            "this kernel has no IPPROTO_SMC sockets: "
            f"socket(AF_INET{'6' if v6 else ''}, SOCK_STREAM, IPPROTO_SMC=256) "
            f"failed with {name} ({e.strerror}).\n"
            "IPPROTO_SMC needs Linux >= 6.11 with the smc module loaded; older SMC kernels "
            "support AF_SMC sockets (drop --ipproto-smc)."
        )
    return f"socket({kind}, v{6 if v6 else 4}) failed: {name} ({e.strerror})"


def do_bind(sock: socket.socket, kind: str, addr: str, port: int) -> None:
    if kind == "smc":
        c_bind(sock, addr, port)
    else:
        sock.bind((addr, port))


def do_connect(sock: socket.socket, kind: str, addr: str, port: int) -> None:
    if kind == "smc":
        c_connect(sock, addr, port)
    else:
        sock.connect((addr, port))


def do_accept(sock: socket.socket, kind: str) -> tuple[socket.socket, tuple[str, int]]:
    if kind == "smc":
        return c_accept(sock)
    conn, peer = sock.accept()
    return conn, (peer[0], peer[1])


def local_name(sock: socket.socket, kind: str) -> tuple[str, int]:
    if kind == "smc":
        return c_getsockname(sock)
    name = sock.getsockname()
    return (name[0], name[1])


def is_v6(args: argparse.Namespace) -> bool:
    if args.ipv6:
        return True
    if args.addr is None:
        return False
    try:
        return ipaddress.ip_address(args.addr.split("%", 1)[0]).version == 6
    except ValueError:
        raise EchoError(f"not an IP address: {args.addr!r} (names are not resolved)", 2) from None


def say(msg: str) -> None:
    print(f"smc_echo: {msg}", flush=True)


def server(args: argparse.Namespace) -> int:
    kind, v6 = kind_of(args), is_v6(args)
    addr = args.addr or ("::" if v6 else "0.0.0.0")
    s = make_socket(kind, v6)
    with s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        do_bind(s, kind, addr, args.port)
        s.listen(16)
        la, lp = local_name(s, kind)
        say(f"server {kind} v{6 if v6 else 4} listening on {la} port {lp}")
        served = 0
        while args.count == 0 or served < args.count:
            conn, peer = do_accept(s, kind)
            served += 1
            with conn:
                if args.timeout:
                    conn.settimeout(args.timeout)
                total = 0
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    total += len(data)
                    conn.sendall(data)
                say(f"server echoed {total} bytes to {peer[0]} port {peer[1]}")
    return 0


def client(args: argparse.Namespace) -> int:
    kind, v6 = kind_of(args), is_v6(args)
    if not args.addr:
        raise EchoError("the client needs -a ADDR", 2)
    msg = args.message.encode()
    s = make_socket(kind, v6)
    with s:
        # a Python timeout makes the fd non-blocking, which the libc connect() of
        # AF_SMC sockets would see (EINPROGRESS): set it after connecting there
        if args.timeout and kind != "smc":
            s.settimeout(args.timeout)
        do_connect(s, kind, args.addr, args.port)
        if args.timeout:
            s.settimeout(args.timeout)
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            data = s.recv(65536)
            if not data:
                break
            got += data
    if got != msg:
        raise EchoError(f"echo mismatch: sent {msg!r}, got {got!r}")
    say(f"client {kind} v{6 if v6 else 4} got echo: {got.decode(errors='replace')}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="smc_echo.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    role = ap.add_mutually_exclusive_group(required=True)
    role.add_argument("-s", "--server", action="store_true", help="run the echo server")
    role.add_argument("-c", "--client", action="store_true", help="run the echo client")
    ap.add_argument("-a", "--addr", help="address to connect to / bind to (server default: any)")
    ap.add_argument(
        "-p",
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"TCP port (default {DEFAULT_PORT}; server: 0 = any free port, printed)",
    )
    ap.add_argument("-6", "--ipv6", action="store_true", help="IPv6 (default: from the address)")
    kind = ap.add_mutually_exclusive_group()
    kind.add_argument(
        "--ipproto-smc",
        action="store_true",
        help="AF_INET/AF_INET6 socket with IPPROTO_SMC (256) instead of AF_SMC",
    )
    kind.add_argument(
        "--tcp", action="store_true", help="plain TCP (no SMC), e.g. as a peer or for testing"
    )
    ap.add_argument("-m", "--message", default=DEFAULT_MESSAGE, help="client: message to send")
    ap.add_argument(
        "-n", "--count", type=int, default=1, help="server: connections to serve (0 = forever)"
    )
    ap.add_argument(
        "-t", "--timeout", type=float, default=30.0, help="I/O timeout in seconds (0 = none)"
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        return server(args) if args.server else client(args)
    except EchoError as e:
        print(f"smc_echo: error: {e}", file=sys.stderr)
        return e.code
    except OSError as e:
        print(f"smc_echo: error: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Tests for scripts/smc_echo.py (the AF_SMC echo client/server for real SMC hosts).

The AF_SMC paths need a kernel with SMC; on a host without it we check the error
message, and run the socket-module-independent parts (sockaddr packing, the libc
bind/connect/accept wrappers, the echo loop) over plain TCP with --tcp.
"""

from __future__ import annotations

import importlib.util
import re
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "smc_echo.py"

spec = importlib.util.spec_from_file_location("smc_echo", SCRIPT)
assert spec and spec.loader
smc_echo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(smc_echo)


def host_has(family: int, proto: int) -> bool:
    try:
        socket.socket(family, socket.SOCK_STREAM, proto).close()
    except OSError:
        return False
    return True


HAS_AF_SMC = host_has(smc_echo.AF_SMC, 0)
HAS_IPPROTO_SMC = host_has(socket.AF_INET, smc_echo.IPPROTO_SMC)


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout
    )


def start_server(*args: str) -> tuple[subprocess.Popen[str], int]:
    p = subprocess.Popen(
        [sys.executable, str(SCRIPT), "-s", "-p", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout
    line = p.stdout.readline()
    m = re.search(r"listening on (\S+) port (\d+)", line)
    if not m:
        p.kill()
        raise AssertionError(
            f"server did not start: {line!r} {p.stderr.read() if p.stderr else ''}"
        )
    return p, int(m.group(2))


# --------------------------------------------------------------------------- sockaddr packing


def test_pack_sockaddr_in() -> None:
    raw = smc_echo.pack_sockaddr("192.0.2.1", 7001)
    assert len(raw) == 16
    assert struct.unpack("=H", raw[:2])[0] == socket.AF_INET
    assert raw[2:4] == b"\x1b\x59"  # 7001, network order
    assert raw[4:8] == bytes([192, 0, 2, 1])
    assert raw[8:] == bytes(8)
    assert smc_echo.unpack_sockaddr(raw) == ("192.0.2.1", 7001)


def test_pack_sockaddr_in6() -> None:
    raw = smc_echo.pack_sockaddr("2001:db8::1", 443)
    assert len(raw) == 28
    assert struct.unpack("=H", raw[:2])[0] == socket.AF_INET6
    assert raw[2:4] == b"\x01\xbb"
    assert raw[4:8] == bytes(4)  # flowinfo
    assert raw[8:24] == socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert raw[24:] == bytes(4)  # scope id
    assert smc_echo.unpack_sockaddr(raw) == ("2001:db8::1", 443)


def test_pack_sockaddr_scope_id() -> None:
    raw = smc_echo.pack_sockaddr("fe80::1%1", 1)
    assert struct.unpack("=I", raw[24:])[0] == 1


def test_pack_sockaddr_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        smc_echo.pack_sockaddr("not-an-ip", 1)
    with pytest.raises(smc_echo.EchoError):
        smc_echo.pack_sockaddr("127.0.0.1", 70000)


@pytest.mark.parametrize("addr", ["127.0.0.1", "::1"])
def test_libc_wrappers_on_tcp_sockets(addr: str) -> None:
    """The ctypes bind/connect/accept/getsockname used for AF_SMC, exercised on
    TCP sockets (same sockaddr layouts), against each other."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    if fam == socket.AF_INET6 and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    with socket.socket(fam, socket.SOCK_STREAM) as srv:
        smc_echo.c_bind(srv, addr, 0)
        srv.listen(1)
        host, port = smc_echo.c_getsockname(srv)
        assert host == addr and port > 0
        accepted: list[tuple[str, int]] = []

        def acc() -> None:
            conn, peer = smc_echo.c_accept(srv)
            with conn:
                conn.sendall(conn.recv(100))
            accepted.append(peer)

        t = threading.Thread(target=acc)
        t.start()
        with socket.socket(fam, socket.SOCK_STREAM) as cli:
            smc_echo.c_connect(cli, addr, port)
            cli.sendall(b"ping")
            assert cli.recv(100) == b"ping"
            assert accepted == [] or accepted[0][0] == addr
            cport = cli.getsockname()[1]
        t.join(10)
        assert accepted == [(addr, cport)]


def test_libc_connect_error_is_oserror() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: refused
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as c, pytest.raises(OSError) as ei:
            smc_echo.c_connect(c, "127.0.0.1", port)
        assert "connect" in str(ei.value)


# --------------------------------------------------------------------------- CLI


def test_help() -> None:
    p = run("--help")
    assert p.returncode == 0
    for opt in ("-s", "-c", "-a", "-p", "--ipproto-smc", "--tcp", "-6"):
        assert opt in p.stdout


def test_role_required() -> None:
    p = run("-a", "127.0.0.1")
    assert p.returncode == 2


def test_client_needs_address() -> None:
    p = run("-c", "--tcp")
    assert p.returncode == 2
    assert "-a ADDR" in p.stderr


@pytest.mark.skipif(HAS_AF_SMC, reason="this host has AF_SMC")
@pytest.mark.parametrize(
    ("args", "proto"),
    [
        (("-c", "-a", "127.0.0.1"), "SMCPROTO_SMC"),
        (("-c", "-a", "::1"), "SMCPROTO_SMC6"),
        (("-s", "-6"), "SMCPROTO_SMC6"),
    ],
)
def test_no_af_smc_message(args: tuple[str, ...], proto: str) -> None:
    p = run(*args)
    assert p.returncode == 3
    assert "Traceback" not in p.stderr
    assert "this kernel has no AF_SMC sockets" in p.stderr
    assert proto in p.stderr
    assert "EAFNOSUPPORT" in p.stderr
    assert "--tcp" in p.stderr


@pytest.mark.skipif(HAS_IPPROTO_SMC, reason="this host has IPPROTO_SMC")
def test_no_ipproto_smc_message() -> None:
    p = run("-c", "-a", "127.0.0.1", "--ipproto-smc")
    assert p.returncode == 3
    assert "Traceback" not in p.stderr
    assert "this kernel has no IPPROTO_SMC sockets" in p.stderr
    assert "6.11" in p.stderr


@pytest.mark.parametrize("addr", ["127.0.0.1", "::1"])
def test_tcp_echo(addr: str) -> None:
    if ":" in addr and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    srv, port = start_server("--tcp", "-a", addr, "-n", "2")
    try:
        for msg in ("Hello, world", "Hello again"):
            p = run("-c", "--tcp", "-a", addr, "-p", str(port), "-m", msg)
            assert p.returncode == 0, p.stderr
            assert (
                p.stdout.strip()
                == f"smc_echo: client tcp v{6 if ':' in addr else 4} got echo: {msg}"
            )
        out, err = srv.communicate(timeout=10)
        assert srv.returncode == 0, err
        assert out.count("server echoed") == 2
    finally:
        if srv.poll() is None:
            srv.kill()


def test_tcp_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = run("-c", "--tcp", "-a", "127.0.0.1", "-p", str(port))
    assert p.returncode == 1
    assert "refused" in p.stderr.lower()
    assert "Traceback" not in p.stderr


def test_bad_address() -> None:
    p = run("-c", "--tcp", "-a", "localhost")
    assert p.returncode == 2
    assert "not an IP address" in p.stderr


@pytest.mark.skipif(not HAS_AF_SMC, reason="needs a kernel with AF_SMC")
def test_af_smc_echo_on_this_host() -> None:
    srv, port = start_server("-a", "127.0.0.1")
    try:
        p = run("-c", "-a", "127.0.0.1", "-p", str(port))
        assert p.returncode == 0, p.stderr
        assert "got echo: Hello, world" in p.stdout
    finally:
        srv.kill()

"""``smctrace -f FILE --http``: the JSON API returns the very objects of --json, and the
server refuses what it must (other methods, huge or slow requests, path traversal,
thousands of clients) with an error status, without echoing the request and without
changing anything it serves.  Loopback only, no root needed (one test uses a namespace).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from smctrace.service import server
from tests.support import hostile, netlab
from tests.support.service import REPO, merged_real_capture, offline

SMCTRACE = [sys.executable, "-m", "smctrace"]


@dataclass
class Served:
    proc: subprocess.Popen[str]
    host: str
    port: int
    events: list[dict[str, Any]]  # smctrace -f FILE --json of the same file

    def request(self, raw: bytes, *, read: bool = True, timeout: float = 10) -> bytes:
        """Send raw bytes, return everything the server sent back until it closed."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(raw)
            if not read:
                return b""
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
            return reply

    def get(self, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        reply = self.request(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return parse_reply(reply)


def parse_reply(reply: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


@contextlib.contextmanager
def serving(path: Path, *args: str, listen: str = "127.0.0.1:0") -> Iterator[Served]:
    proc = subprocess.Popen([*SMCTRACE, "-f", str(path), "--json", "--http", listen, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=REPO)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        match = re.match(r"smctrace: serving http://\[?([^\]]+?)\]?:(\d+)/", first)
        assert match, first + proc.stderr.read()
        finished = proc.stderr.readline()  # the trace summary, then the serving notice
        while "the trace is finished" not in finished:
            finished = proc.stderr.readline()
            assert finished, "smctrace ended before serving the finished trace"
        yield Served(proc, match.group(1), int(match.group(2)), [])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return merged_real_capture(tmp_path_factory.mktemp("http") / "merged.pcap")


@pytest.fixture(scope="module")
def served(merged: Path) -> Iterator[Served]:
    with serving(merged) as s:
        s.events = offline(merged)
        yield s


def state(s: Served) -> tuple[Any, ...]:
    """Everything the service shows about the trace (not its own request counters)."""
    metrics = []
    status, _, body = s.get("/metrics")
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        if family.name.startswith("smctrace_") and family.name != "smctrace_http_requests":
            metrics += [(x.name, sorted(x.labels.items()), x.value) for x in family.samples]
    page = json.loads(s.get("/api/page")[2])
    page.pop("started")
    return (json.loads(s.get("/api/summary")[2]), json.loads(s.get("/api/connections")[2]),
            sorted(metrics), page)


@pytest.fixture(scope="module")
def before(served: Served) -> tuple[Any, ...]:
    return state(served)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- what it serves -------------------------------------------------------------------------


def test_api_returns_the_json_objects(served: Served) -> None:
    status, headers, body = served.get("/api/connections")
    assert status == 200 and headers["content-type"] == "application/json"
    expected = [e for e in served.events if e["event"] == "connection"]
    assert json.loads(body) == expected
    assert len(expected) == 9
    assert headers["x-smctrace-last-seq"] == "9"
    status, _, body = served.get("/api/summary")
    assert status == 200 and json.loads(body) == served.events[-1]
    assert served.events[-1]["event"] == "summary"


def test_api_connections_since_after_limit(served: Served) -> None:
    expected = [e for e in served.events if e["event"] == "connection"]
    since = sorted(e["end"] for e in expected)[2]
    got = json.loads(served.get(f"/api/connections?since={since!r}")[2])
    assert got == [e for e in expected if e["end"] > since] and len(got) == 6
    assert json.loads(served.get("/api/connections?after=7")[2]) == expected[7:]
    assert json.loads(served.get("/api/connections?limit=2")[2]) == expected[-2:]
    assert json.loads(served.get("/api/connections?after=3&limit=1")[2]) == expected[-1:]
    for query in ("since=yesterday", "since=nan", "after=-1", "limit=1.5", "what=1",
                  "since=1&since=2"):
        status, _, body = served.get(f"/api/connections?{query}")
        assert (status, body) == (400, b"400 Bad Request\n"), query


def test_metrics_agree_with_the_json(served: Served) -> None:
    status, headers, body = served.get("/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        if family.name == "smctrace_connections":
            for sample in family.samples:
                outcome = sample.labels["outcome"]
                totals[outcome] = totals.get(outcome, 0) + sample.value
    assert totals == {k: v for k, v in served.events[-1]["outcomes"].items() if v}


def test_page_and_its_headers(served: Served) -> None:
    status, headers, body = served.get("/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert b'<script src="page.js"' in body and b"http" not in body.split(b"<footer>")[0]
    for path, kind in (("/page.js", "text/javascript"), ("/page.css", "text/css")):
        status, headers, body = served.get(path)
        assert status == 200 and headers["content-type"].startswith(kind) and body
    assert b"innerHTML" not in served.get("/page.js")[2]  # text only, never markup
    status, headers, body = served.get("/api/summary", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


# -- what it refuses ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
                                    "CONNECT", "PROPFIND", "FOO<b>"])
def test_other_methods_are_refused(served: Served, method: str) -> None:
    status, headers, body = served.get("/api/summary", method=method)
    assert (status, body) == (405, b"405 Method Not Allowed\n")
    assert headers["allow"] == "GET, HEAD"


def test_post_with_a_body_is_refused(served: Served, before: tuple[Any, ...]) -> None:
    body = b"x" * 1_000_000
    reply = served.request(b"POST /api/summary HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
                           % len(body) + body)
    assert parse_reply(reply)[0] == 405
    assert state(served) == before


@pytest.mark.parametrize("path", [
    "/../../../../etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/etc/passwd",
    "//etc/passwd", "/static/../../smctrace/cli.py", "/page.js/../../../etc/passwd",
    "/index.html%00.js", "/page.js?/../../etc/passwd", "/smctrace/service/server.py",
    "/api/../../etc/shadow", "/api", "/api/", "/metrics/x", "/favicon.ico"])
def test_paths_outside_the_service_are_not_found(served: Served, path: str) -> None:
    status, _, body = served.get(path)
    if path.startswith("/page.js?"):  # the query is ignored: it is the script itself
        assert status == 200 and body == served.get("/page.js")[2]
        return
    assert (status, body) == (404, b"404 Not Found\n")


def test_huge_requests_are_refused(served: Served, before: tuple[Any, ...]) -> None:
    header = b"X-Big: " + b"a" * 100_000 + b"\r\n"
    assert parse_reply(served.request(b"GET / HTTP/1.1\r\n" + header + b"\r\n"))[0] == 431
    line = b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n"
    assert parse_reply(served.request(line))[0] == 431
    many = b"".join(b"X-%d: 1\r\n" % n for n in range(150))  # small, but too many
    assert parse_reply(served.request(b"GET / HTTP/1.1\r\n" + many + b"\r\n"))[0] == 431
    assert state(served) == before


def test_garbage_gets_an_error_and_is_never_echoed(served: Served) -> None:
    marker = b"<script>alert('echo')</script>"
    for raw in (b"GARBAGE " + marker + b"\r\n\r\n",
                b"GET /" + marker + b" HTTP/1.1\r\n\r\n",
                b"GET / HTTP/9.9" + marker + b"\r\n\r\n",
                b"GET / HTTP/1.1\r\nBad header " + marker + b"\r\n\r\n",
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40) + b"\r\n\r\n"):
        reply = served.request(raw)
        assert 400 <= parse_reply(reply)[0] < 600, raw
        assert marker not in reply and b"alert" not in reply


def hold_slots(s: Served, count: int) -> list[socket.socket]:
    """Connections that never send a byte: each holds one of the server's slots."""
    held = [socket.create_connection((s.host, s.port), timeout=10) for _ in range(count)]
    time.sleep(0.5)  # let the server accept them all
    return held


def test_slow_clients_time_out_and_busy_means_503(served: Served,
                                                  before: tuple[Any, ...]) -> None:
    held = hold_slots(served, server.MAX_CLIENTS)
    try:
        started = time.monotonic()
        status, headers, _ = served.get("/api/summary")
        assert status == 503 and headers["retry-after"] == "1"
        assert time.monotonic() - started < 2  # answered at once, not queued
        # The server gives up on each silent client after READ_TIMEOUT, with a 408.
        held[0].settimeout(server.READ_TIMEOUT + 5)
        assert parse_reply(held[0].recv(4096))[0] == 408
        assert time.monotonic() - started < server.READ_TIMEOUT + 3
    finally:
        for sock in held:
            sock.close()
    time.sleep(server.LINGER + 0.5)
    assert served.get("/api/summary")[0] == 200
    assert state(served) == before


def test_thousands_of_connections(served: Served, before: tuple[Any, ...]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    fds = open_fds(served.proc.pid)
    held = hold_slots(served, server.MAX_CLIENTS)  # every one of the 2000 finds it busy
    statuses: dict[int, int] = {}
    selector = selectors.DefaultSelector()
    try:
        for _ in range(2000):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((served.host, served.port))
            selector.register(sock, selectors.EVENT_WRITE, [b""])
        deadline = time.monotonic() + 60
        while selector.get_map() and time.monotonic() < deadline:
            for key, events in selector.select(timeout=1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if events & selectors.EVENT_WRITE:
                    with contextlib.suppress(OSError):
                        sock.send(b"GET /metrics HTTP/1.0\r\n\r\n")
                    selector.modify(sock, selectors.EVENT_READ, key.data)
                    continue
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    chunk = b""
                key.data[0] += chunk
                if not chunk:
                    reply = key.data[0]
                    status = parse_reply(reply)[0] if reply.startswith(b"HTTP/") else 0
                    statuses[status] = statuses.get(status, 0) + 1
                    selector.unregister(sock)
                    sock.close()
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        for sock in held:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    # Busy: 503 at once.  (A held slot times out after READ_TIMEOUT; a client that comes
    # after that may be served.)
    assert set(statuses) <= {200, 503} and sum(statuses.values()) == 2000, statuses
    assert statuses.get(503, 0) >= 1000, statuses
    time.sleep(server.LINGER + 1)
    assert served.get("/api/summary")[0] == 200
    assert open_fds(served.proc.pid) <= fds + 2  # every rejected socket was closed
    assert state(served) == before


# -- the command line ------------------------------------------------------------------------


def run_smctrace(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SMCTRACE, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


def test_port_in_use_and_bad_addresses_are_one_line(merged: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # the system refuses: exit 1; the option's value is wrong: a usage error, exit 2
        for listen, status, message in (
                (f"127.0.0.1:{port}", 1, "the port is in use"),
                ("192.0.2.1:9100", 1, "no interface has that address"),
                ("example.net:9100", 2, "is not a numeric IP address"),
                ("[::1:9100", 2, "write an IPv6 address as [ADDR]:PORT"),
                ("127.0.0.1:70000", 2, "the port must be 0-65535")):
            proc = run_smctrace("-f", str(merged), "--http", listen)
            assert proc.returncode == status, proc.stderr
            assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
            assert proc.stdout == ""  # nothing traced: the error comes first
    proc = run_smctrace("-f", str(merged), "--http-recent", "5")
    assert (proc.returncode, proc.stderr) == (
        2, "smctrace: --http-recent needs --http (see smctrace --help)\n")


def test_http_recent_bounds_the_ring(merged: Path) -> None:
    with serving(merged, "--http-recent", "2") as s:
        got = json.loads(s.get("/api/connections")[2])
        expected = [e for e in offline(merged) if e["event"] == "connection"]
        assert got == expected[-2:]
        assert json.loads(s.get("/api/page")[2])["recent_size"] == 2


def test_ipv6_loopback(merged: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with serving(merged, listen="[::1]:0") as s:
        assert s.host == "::1"
        with socket.create_connection(("::1", s.port), timeout=10) as sock:
            sock.sendall(b"GET /api/summary HTTP/1.0\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert parse_reply(reply)[0] == 200


def test_sigterm_ends_serving_cleanly(merged: Path) -> None:
    with serving(merged) as s:
        s.proc.send_signal(signal.SIGTERM)
        _, err = s.proc.communicate(timeout=30)
        assert s.proc.returncode == 0 and "Traceback" not in err


def test_hostile_names_stay_escaped_in_json(tmp_path: Path) -> None:
    capture = hostile.write_capture(tmp_path / "hostile.pcap")
    with serving(capture) as s:
        for path in ("/api/page", "/api/connections"):
            body = s.get(path)[2]
            assert b"<" not in body and b">" not in body
        page = json.loads(s.get("/api/page")[2])
        assert page["rows"][0]["eid"] == hostile.HOSTILE_EID


def test_other_than_loopback_is_announced(merged: Path) -> None:
    """0.0.0.0 is served when asked for, with a notice (in a namespace of its own, so that
    no real interface is listened on)."""
    problem = netlab.available()
    if problem:
        pytest.skip(problem)
    with netlab.NetLab("smct-http") as lab:
        ns = lab.namespace("any")
        proc = lab.popen(ns, [*SMCTRACE, "-f", str(merged), "--http", "0.0.0.0:0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         cwd=REPO)
        try:
            assert proc.stderr is not None
            first = proc.stderr.readline()
            assert "--http on 0.0.0.0 can be reached from other hosts" in first
            assert proc.stderr.readline().startswith("smctrace: serving http://0.0.0.0:")
            while "the trace is finished" not in proc.stderr.readline():
                assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err

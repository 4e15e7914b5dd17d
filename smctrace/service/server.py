"""``--http``: the page, ``/metrics`` and the JSON API, served by the standard library's
HTTP machinery (socketserver + http.server's request parser) in threads of their own.

Nothing here can hold up tracing: the tracer thread only updates the sink (O(1), see
:mod:`smctrace.service.sink`), the server threads only read it.  The server is read-only
and defensive: GET and HEAD only; a request head of at most 8 KiB that must arrive within
5 s and a reply that must be taken within 10 s; at most 16 clients served at once, more are
answered 503 at once; fixed error texts that never repeat what the client sent; pages come
from memory (no file is ever opened for a URL).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import io
import socket
import socketserver
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from smctrace.events import EventSink, TraceSummary
from smctrace.frame import describe_os_error
from smctrace.service import api
from smctrace.service.address import ListenAddress, ListenAddressError, parse_listen_address
from smctrace.service.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from smctrace.service.sink import CaptureCounters, ServiceSink

MAX_CLIENTS = 16  # served at once; more get 503 straight away
MAX_REQUEST_HEAD = 8192  # request line and headers, bytes
READ_TIMEOUT = 5.0  # seconds for the whole request head
WRITE_TIMEOUT = 10.0  # seconds for the client to take the whole reply
LINGER = 1.0  # seconds to let a client read a reply before the socket is closed
MAX_LINGERING = 1024  # rejected sockets waiting for their close
LISTEN_BACKLOG = 128

STATIC = {  # URL path -> (package file, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/page.js": ("page.js", "text/javascript; charset=utf-8"),
    "/page.css": ("page.css", "text/css; charset=utf-8"),
}
JSON = "application/json"
# The page needs nothing but its own script, style sheet and API: no inline code runs.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
               "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class ServiceError(Exception):
    """The service cannot start (bad address, port in use): one line for the user."""


class _HeadTooLarge(Exception):
    pass


def _load_static() -> dict[str, tuple[bytes, str]]:
    files = resources.files("smctrace.service") / "static"
    return {path: (files.joinpath(name).read_bytes(), content_type)
            for path, (name, content_type) in STATIC.items()}


def _response(status: HTTPStatus, body: bytes, content_type: str, *, head_only: bool = False,
              extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    headers = [
        f"HTTP/1.0 {status.value} {status.phrase}",
        "Server: smctrace",
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "X-Content-Type-Options: nosniff",
        "Referrer-Policy: no-referrer",
        "X-Frame-Options: DENY",
        "Connection: close",
        *(f"{name}: {value}" for name, value in extra),
    ]
    head = ("\r\n".join(headers) + "\r\n\r\n").encode("ascii")
    return head if head_only else head + body


def _error_response(status: HTTPStatus, *, head_only: bool = False,
                    extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    body = f"{status.value} {status.phrase}\n".encode("ascii")
    return _response(status, body, "text/plain; charset=utf-8", head_only=head_only,
                     extra=extra)


class _Handler(BaseHTTPRequestHandler):
    """One connection: one request, one reply, then close (HTTP/1.0 style).

    Only http.server's request parser (request line and headers) is used; reading and
    writing are done here, with deadlines."""

    server: _Server
    protocol_version = "HTTP/1.0"

    def setup(self) -> None:
        self.connection = self.request
        self.rfile = io.BytesIO()
        self.close_connection = True

    def finish(self) -> None:
        pass

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are counted in smctrace_http_requests_total, never printed

    def _read_head(self) -> bytes:
        """The request line and headers (up to the empty line), within the deadline."""
        deadline = time.monotonic() + READ_TIMEOUT
        data = b""
        while b"\r\n\r\n" not in data and b"\n\n" not in data:
            if len(data) > MAX_REQUEST_HEAD:
                raise _HeadTooLarge
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.connection.settimeout(remaining)
            chunk = self.connection.recv(MAX_REQUEST_HEAD + 1 - len(data))
            if not chunk:
                raise ConnectionResetError
            data += chunk
        end = min(i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0)
        if end > MAX_REQUEST_HEAD:
            raise _HeadTooLarge
        return data[:end + 2]

    def _send(self, reply: bytes, status: HTTPStatus) -> None:
        self.server.count(status)
        self.connection.settimeout(WRITE_TIMEOUT)
        self.connection.sendall(reply)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Called by http.server's parser on a bad request line or headers; the reply is
        fixed text (the parser's message would quote the request)."""
        status = HTTPStatus(code)
        if status == HTTPStatus.NOT_IMPLEMENTED:
            status = HTTPStatus.METHOD_NOT_ALLOWED
        self._send(_error_response(status, extra=self._allow(status)), status)

    @staticmethod
    def _allow(status: HTTPStatus) -> tuple[tuple[str, str], ...]:
        return (("Allow", "GET, HEAD"),) if status == HTTPStatus.METHOD_NOT_ALLOWED else ()

    def handle(self) -> None:
        try:
            try:
                head = self._read_head()
            except _HeadTooLarge:
                self._send(_error_response(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE),
                           HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
                return
            except TimeoutError:
                self._send(_error_response(HTTPStatus.REQUEST_TIMEOUT),
                           HTTPStatus.REQUEST_TIMEOUT)
                return
            line, _, rest = head.partition(b"\n")
            self.raw_requestline = line + b"\n"
            self.rfile = io.BytesIO(rest)
            if not self.parse_request():
                return  # send_error() has answered
            if self.headers.defects:  # e.g. a header line without a colon
                self._send(_error_response(HTTPStatus.BAD_REQUEST), HTTPStatus.BAD_REQUEST)
                return
            self._dispatch()
        except OSError:
            pass  # the client went away or would not take the reply: nothing to do

    def _dispatch(self) -> None:
        head_only = self.command == "HEAD"
        if self.command not in ("GET", "HEAD"):
            status = HTTPStatus.METHOD_NOT_ALLOWED
            self._send(_error_response(status, extra=self._allow(status)), status)
            return
        url = urlsplit(self.path)
        try:
            status, body, content_type, extra = self.server.service.route(url.path, url.query)
        except api.ApiError:
            status = HTTPStatus.BAD_REQUEST
            self._send(_error_response(status, head_only=head_only), status)
            return
        if status != HTTPStatus.OK:
            self._send(_error_response(status, head_only=head_only), status)
            return
        self._send(_response(status, body, content_type, head_only=head_only, extra=extra),
                   status)


class _Server(socketserver.TCPServer):
    """Accepts in one thread, serves each client in a thread of its own, at most
    MAX_CLIENTS at a time."""

    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: ListenAddress, service: Service) -> None:
        self.address_family = address.family
        super().__init__((address.host, address.port), _Handler, bind_and_activate=False)
        self.service = service
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        # rejected clients: (close after this monotonic time, socket), oldest first
        self._lingering: collections.deque[tuple[float, socket.socket]] = collections.deque()

    def count(self, status: HTTPStatus) -> None:
        self.service.sink.metrics.http_requests.labels(str(status.value)).inc()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._reject(request)
            return
        thread = threading.Thread(target=self._serve, args=(request, client_address),
                                  name="smctrace-http", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: treat as busy
            self._slots.release()
            self._reject(request)

    def _serve(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # one client's failure must not end the service
            pass
        finally:
            _close_gently(request)
            self._slots.release()

    def _reject(self, request: socket.socket) -> None:
        """Busy: 503 now, without waiting for the request; the socket is closed a little
        later so that the reply is not lost to a reset."""
        self.count(HTTPStatus.SERVICE_UNAVAILABLE)
        with contextlib.suppress(OSError):
            request.setblocking(False)
            request.send(_error_response(HTTPStatus.SERVICE_UNAVAILABLE,
                                         extra=(("Retry-After", "1"),)))
            request.shutdown(socket.SHUT_WR)
        if len(self._lingering) >= MAX_LINGERING:
            _drain_and_close(self._lingering.popleft()[1])
        self._lingering.append((time.monotonic() + LINGER, request))

    def service_actions(self) -> None:
        now = time.monotonic()
        while self._lingering and self._lingering[0][0] <= now:
            _drain_and_close(self._lingering.popleft()[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # never a traceback on the terminal for a client's doing

    def server_close(self) -> None:
        super().server_close()
        while self._lingering:
            _drain_and_close(self._lingering.popleft()[1])


def _drain_and_close(sock: socket.socket) -> None:
    """Close without a reset: read what the client sent that was never read."""
    with contextlib.suppress(OSError):
        sock.setblocking(False)
        for _ in range(16):
            if not sock.recv(65536):
                break
    sock.close()


def _close_gently(sock: socket.socket) -> None:
    """End of a served request: FIN, a moment for the client to read, then close."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER
        received = 0
        while received < (1 << 20):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += len(chunk)
    sock.close()


class Service:
    """The ``--http`` service of one trace.

    The CLI makes it with its chosen output, traces into :attr:`sink` (which passes every
    event on to that output), calls :meth:`bind` (before dropping root: ports below 1024
    work), :meth:`start` (after), :meth:`tick` from the tracer loop when idle, and
    :meth:`stop` at the end.
    """

    def __init__(self, listen: str, *, recent: int = 1000, source: str = "",
                 output: EventSink | None = None) -> None:
        try:
            self.address = parse_listen_address(listen)
        except ListenAddressError as exc:
            raise ServiceError(str(exc)) from None
        # the sink to trace into: it hands each event to ``output`` first
        self.sink = ServiceSink(recent, output)
        self.info = api.TraceInfo(source=source, started=time.time())
        self._static = _load_static()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        port = self.address.port
        if self._server is not None:
            port = self._server.server_address[1]
        return self.address.url(port)

    def bind(self) -> None:
        """Listen on the address (nothing is served before :meth:`start`)."""
        server = _Server(self.address, self)
        try:
            server.server_bind()
            server.server_activate()
        except OSError as exc:
            server.server_close()
            reason = describe_os_error(exc)
            if exc.errno == errno.EADDRINUSE:
                reason = "the port is in use"
            elif exc.errno == errno.EADDRNOTAVAIL:
                reason = "no interface has that address"
            elif exc.errno == errno.EACCES:
                reason = "ports below 1024 need root or CAP_NET_BIND_SERVICE"
            raise ServiceError(f"cannot serve --http on {self.address.url()}: {reason}") \
                from None
        self._server = server

    def start(self) -> None:
        if self._server is None:
            self.bind()
        assert self._server is not None
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.25,),
                                        name="smctrace-http-accept", daemon=True)
        self._thread.start()

    def tick(self, summary: TraceSummary, followed: int,
             capture: CaptureCounters | None = None) -> None:
        self.sink.tick(summary, followed, capture)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        if self._thread is not None:
            server.shutdown()
            self._thread.join(5)
        server.server_close()

    def route(self, path: str, query: str) -> tuple[HTTPStatus, bytes, str,
                                                    tuple[tuple[str, str], ...]]:
        """The reply to GET ``path``: status, body, content type, extra headers."""
        static = self._static.get(path)
        if static is not None:
            extra = (("Content-Security-Policy", PAGE_POLICY),) if path in ("/", "/index.html") \
                else ()
            return HTTPStatus.OK, static[0], static[1], extra
        if path == "/metrics":
            return HTTPStatus.OK, self.sink.metrics.exposition(), METRICS_CONTENT_TYPE, ()
        if path == "/api/summary":
            return HTTPStatus.OK, api.summary(self.sink), JSON, ()
        if path == "/api/connections":
            body, last_seq = api.connections(self.sink, query)
            return HTTPStatus.OK, body, JSON, (("X-Smctrace-Last-Seq", str(last_seq)),)
        if path == "/api/page":
            return HTTPStatus.OK, api.page(self.sink, self.info, query), JSON, ()
        return HTTPStatus.NOT_FOUND, b"", "", ()

"""``python -m bench.service_clients PORT``, run inside the receiving namespace by the
service benchmark's capacity section: HTTP clients that hold every slot of smctrace's
--http server and never finish, and a scraper once a second."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import sys
import time

SLOW_CLIENTS = 24  # more than the service's 16 slots: every slot is held
HOLD_SECONDS = 4.0  # each slow client gives up and comes back before the server's timeouts


def slow_clients_main(argv: list[str]) -> None:
    """Hold every HTTP slot with clients that never finish, and scrape once a second; on
    SIGTERM print what happened."""
    ap = argparse.ArgumentParser(prog="python -m bench.service_clients")
    ap.add_argument("port", type=int)
    ap.add_argument("--clients", type=int, default=SLOW_CLIENTS)
    args = ap.parse_args(argv)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    held: list[tuple[float, socket.socket, int]] = []  # (reopen after, socket, kind)
    statuses: dict[str, int] = {}
    opened = 0
    next_scrape = trickle_at = time.monotonic()

    def connect(kind: int) -> socket.socket | None:
        sock = socket.socket()
        if kind == 2:  # takes a reply 1 KiB at a time, and never reads even that
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        try:
            sock.connect(("127.0.0.1", args.port))
        except OSError:
            sock.close()
            return None
        if kind == 2:
            sock.sendall(b"GET /api/connections HTTP/1.0\r\n\r\n")
        return sock

    while not stopping:
        now = time.monotonic()
        for entry in [h for h in held if h[0] <= now]:
            held.remove(entry)
            entry[1].close()
        while len(held) < args.clients:
            kind = len(held) % 3
            sock = connect(kind)
            if sock is None:
                break
            opened += 1
            held.append((now + HOLD_SECONDS, sock, kind))
        if now >= trickle_at:  # one byte a second of a request that never ends
            trickle_at = now + 1.0
            for _, sock, kind in held:
                if kind == 1:
                    with contextlib.suppress(OSError):
                        sock.send(b"G")
        if now >= next_scrape:
            next_scrape = now + 1.0
            for path in ("/metrics", "/api/page"):
                status = _status(args.port, path)
                statuses[status] = statuses.get(status, 0) + 1
        time.sleep(0.05)
    print(json.dumps({"opened": opened, "scrapes": statuses}), flush=True)


def _status(port: int, path: str) -> str:
    """The status of one GET (or why there was none)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            first = sock.recv(64).split(b"\r\n", 1)[0].decode(errors="replace")
            return first.split(" ")[1] if first.startswith("HTTP/") else "no reply"
    except OSError as exc:
        return type(exc).__name__


if __name__ == "__main__":
    slow_clients_main(sys.argv[1:])

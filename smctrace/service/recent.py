"""The recent connections behind the page and ``/api/connections``: a bounded ring.

The tracer thread appends each outcome as it is (a frozen object) with a sequence number;
the JSON object is built only when a client asks, in the HTTP thread, so a connection
costs the tracer one deque append.  Readers copy the ring with ``list(deque)``, which runs
in C under the GIL and so never sees it half-changed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from smctrace.clc import Accept, Confirm
from smctrace.events import ConnectionId, ConnectionOutcome, MessageEvent

# Hostnames and EIDs wait here from their Accept/Confirm until the connection's outcome;
# the tracker follows at most 65,536 connections, so this never holds more in practice.
MAX_PENDING_PEERS = 65536


@dataclass(frozen=True, slots=True)
class PeerNames:
    """What the first-contact Accept/Confirm said about the peers (strings from the wire)."""

    client_hostname: str | None = None
    server_hostname: str | None = None
    eid: str | None = None


@dataclass(frozen=True, slots=True)
class RecentConnection:
    seq: int  # 1, 2, ... in the order the outcomes were reported
    outcome: ConnectionOutcome
    peers: PeerNames | None


class PeerNameCollector:
    """Picks hostnames and the negotiated EID out of Accept and Confirm messages."""

    def __init__(self) -> None:
        self._pending: dict[ConnectionId, PeerNames] = {}

    def on_message(self, event: MessageEvent) -> None:
        message = event.message
        if not isinstance(message, Accept | Confirm):
            return
        hostname = message.fce.hostname if message.fce is not None else None
        if hostname is None and message.eid is None:
            return
        known = self._pending.get(event.conn) or PeerNames()
        if isinstance(message, Accept):
            names = PeerNames(known.client_hostname, hostname or known.server_hostname,
                              message.eid or known.eid)
        else:
            names = PeerNames(hostname or known.client_hostname, known.server_hostname,
                              message.eid or known.eid)
        if len(self._pending) >= MAX_PENDING_PEERS and event.conn not in self._pending:
            del self._pending[next(iter(self._pending))]
        self._pending[event.conn] = names

    def take(self, conn: ConnectionId) -> PeerNames | None:
        """The names seen on a connection whose outcome is now known (and forget them)."""
        if not self._pending:
            return None
        return self._pending.pop(conn, None)


class RecentConnections:
    """The last ``size`` connections with an outcome, oldest first."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the ring of recent connections needs room for one at least")
        self.size = size
        self._ring: deque[RecentConnection] = deque(maxlen=size)
        self.last_seq = 0

    def add(self, outcome: ConnectionOutcome, peers: PeerNames | None) -> None:
        self.last_seq += 1
        self._ring.append(RecentConnection(self.last_seq, outcome, peers))

    def snapshot(self) -> list[RecentConnection]:
        return list(self._ring)

    def select(self, *, after: int = 0, since: float | None = None,
               limit: int | None = None) -> list[RecentConnection]:
        """Connections reported after sequence number ``after`` and whose ``end`` is later
        than ``since``; with ``limit``, the newest ``limit`` of them."""
        rows = self.snapshot()
        if after:
            # sequence numbers are consecutive: the first row to keep is found by arithmetic
            first = rows[0].seq if rows else 0
            rows = rows[max(0, after - first + 1):]
        if since is not None:
            rows = [row for row in rows if row.outcome.end > since]
        if limit is not None and len(rows) > limit:
            rows = rows[len(rows) - limit:]
        return rows

"""The recent connections behind the page and ``/api/connections``: a bounded ring.

The tracer thread appends each outcome as it is (a frozen object) with a sequence number;
the JSON object is built only when a client asks, in the HTTP thread, so a connection
costs the tracer one tuple and one deque append.  Readers copy the ring with
``list(deque)``, which runs in C under the GIL and so never sees it half-changed.
"""

from __future__ import annotations

from collections import deque

from smctrace.clc import AcceptConfirm
from smctrace.events import ConnectionId, ConnectionOutcome

# Hostnames and EIDs wait here from their Accept/Confirm until the connection's outcome;
# the tracker follows at most 65,536 connections, so this never holds more in practice.
MAX_PENDING_PEERS = 65536

# What the first-contact Accept/Confirm said about the peers, strings from the wire:
# [client hostname, server hostname, negotiated EID]
PeerNames = list[str | None]
# (sequence number: 1, 2, ... in the order of the reports; outcome; peer names)
RecentConnection = tuple[int, ConnectionOutcome, PeerNames | None]


class PeerNameCollector:
    """Picks hostnames and the negotiated EID out of Accept and Confirm messages.

    A connection's events share one ConnectionId object (the tracker's), so the names
    wait under its id(): a look-up that hashes nothing.  Each entry holds the ConnectionId
    itself, so that the id cannot be reused while the entry waits, and take() checks that
    it is the very object."""

    def __init__(self) -> None:
        self._pending: dict[int, tuple[ConnectionId, PeerNames]] = {}

    def on_message(self, conn: ConnectionId, message: AcceptConfirm) -> None:
        fce = message.fce
        hostname = None if fce is None else fce.hostname
        eid = message.eid
        if hostname is None and eid is None:
            return
        pending = self._pending
        entry = pending.get(id(conn))
        if entry is None:
            if len(pending) >= MAX_PENDING_PEERS:
                del pending[next(iter(pending))]
            entry = pending[id(conn)] = (conn, [None, None, None])
        names = entry[1]
        if hostname is not None:
            names[1 if message.kind == "accept" else 0] = hostname
        if eid is not None:
            names[2] = eid

    def take(self, conn: ConnectionId) -> PeerNames | None:
        """The names seen on a connection whose outcome is now known (and forget them)."""
        if not self._pending:
            return None
        entry = self._pending.pop(id(conn), None)
        return None if entry is None or entry[0] is not conn else entry[1]


class RecentConnections:
    """The last ``size`` connections with an outcome, oldest first."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the ring of recent connections needs room for one at least")
        self.size = size
        self._ring: deque[RecentConnection] = deque(maxlen=size)
        self.last_seq = 0

    def add(self, outcome: ConnectionOutcome, peers: PeerNames | None) -> None:
        seq = self.last_seq + 1
        self._ring.append((seq, outcome, peers))
        self.last_seq = seq  # after the append: a reader never sees a number not yet in

    def select(self, *, after: int = 0, since: float | None = None,
               limit: int | None = None) -> list[RecentConnection]:
        """Connections reported after sequence number ``after`` and whose ``end`` is later
        than ``since``; with ``limit``, the newest ``limit`` of them."""
        rows = list(self._ring)
        if after and rows:
            # sequence numbers are consecutive: the first row to keep is found by arithmetic
            rows = rows[max(0, after - rows[0][0] + 1):]
        if since is not None:
            rows = [row for row in rows if row[1].end > since]
        if limit is not None and len(rows) > limit:
            rows = rows[len(rows) - limit:]
        return rows

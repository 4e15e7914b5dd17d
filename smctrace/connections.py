"""Per-connection state: TCP segments in, CLC messages and connection outcomes out.

A connection is followed when its SYN carried the SMC option, or when CLC messages show up
on it (capture started mid-handshake).  Plain TCP connections are only counted.  Every
followed connection ends in exactly one :class:`ConnectionOutcome`:

* ``smc``        Proposal, Accept and Confirm, and no Decline (path/version from the Confirm)
* ``fallback``   a Decline (its code and sender), or the SYN-ACK lacked the SMC option
* ``failed``     closed by FIN/RST during the CLC exchange without a Decline, or non-CLC
                 bytes where a CLC message had to be (CLC timeout or protocol error)
* ``incomplete`` the capture ended before an outcome
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from smctrace.clc import Accept, Confirm, Decline, decode, describe_decline
from smctrace.events import (
    OUTCOMES,
    ConnectionId,
    ConnectionOutcome,
    Endpoint,
    EventSink,
    GapEvent,
    MessageEvent,
    Outcome,
    Role,
)
from smctrace.packet import ACK, FIN, RST, SYN, Segment
from smctrace.streams import (
    ClcStream,
    StreamData,
    StreamEvent,
    StreamGap,
    StreamMessage,
    starts_clc,
)

# A Decline may follow the client's Confirm when the SMC-R link cannot be brought up over
# RoCE (reference section 6.2).  The reference says "up to ~3 s", but the 6.12 client in
# data/real-kernel/D7 declined TIMEOUT_CL 5.31 s after its Confirm (first LLC wait is 5 s,
# then 1 s short wait); 10 s of packet time covers that with margin.
LATE_DECLINE_GRACE_SMCR = 10.0
LATE_DECLINE_GRACE_SMCD = 2.0  # SMC-D has no LLC; only a quick server-side failure
# A hole in a direction that the peer has not acted on within this time is a capture gap.
GAP_TIMEOUT = 3.0
MAX_CONNECTIONS = 65536  # followed at once; the oldest undecided one is reported incomplete
PLAIN_SYN_MEMORY = 65536  # recent plain SYNs remembered to count retransmitted SYNs once


@dataclass(slots=True)
class _Connection:
    cid: ConnectionId
    start: float
    syn_option: bool | None = None
    synack_option: bool | None = None
    client_isn: int | None = None
    streams: dict[Role, ClcStream] = field(default_factory=dict)
    # What the outcome needs of the messages seen: their kinds, the last Confirm and the
    # release of the last Accept (a connection may wait seconds for a late Decline, so
    # its state is kept small).
    kinds: list[str] = field(default_factory=list)
    accept_release: int | None = None
    confirm: Confirm | None = None
    watched: bool = False  # the capture prefilter lets its segments through
    last_time: float = 0.0
    # Set once the outcome is known; `settle_at` delays the report while a late Decline
    # can still arrive (after a Confirm).
    outcome: Outcome | None = None
    reason: str = ""
    decided_at: float | None = None
    settle_at: float | None = None
    decline: Decline | None = None
    decline_from: Role | None = None



class ConnectionTracker:
    """Follows connections and turns their segments into events."""

    def __init__(self, sink: EventSink,
                 watch: Callable[[ConnectionId, bool], None] | None = None) -> None:
        self._sink = sink
        self._watch = watch  # tells the capture prefilter which flows are in a CLC phase
        self._conns: OrderedDict[tuple[str, int, str, int], _Connection] = OrderedDict()
        self._plain_syns: OrderedDict[tuple[str, int, str, int, int], None] = OrderedDict()
        # Connections already reported: a retransmitted CLC segment must not start a new one.
        self._reported: OrderedDict[tuple[str, int, str, int], None] = OrderedDict()
        # Connections with a timer running (a late-Decline wait, or a hole in a stream):
        # the only ones advance() visits, so its cost does not grow with a SYN flood.
        self._timed: dict[tuple[str, int, str, int], _Connection] = {}
        self.plain_tcp = 0
        self.outcomes: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)
        self.messages = 0
        self.malformed = 0
        self.gaps = 0
        self.now = 0.0

    @property
    def followed(self) -> int:
        """Connections followed right now (no outcome reported yet)."""
        return len(self._conns)

    # -- segments ---------------------------------------------------------------------

    def on_segment(self, seg: Segment) -> None:
        self.now = max(self.now, seg.time)
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        conn = self._conns.get(key)
        role: Role = "client"
        if conn is None:
            conn = self._conns.get((seg.dst, seg.dport, seg.src, seg.sport))
            role = "server"
        flags = seg.flags
        if flags & SYN:
            conn = self._on_syn(seg, conn, role)
            if conn is None:
                return
        elif conn is None:
            if seg.payload and starts_clc(seg.payload) and not self._was_reported(seg):
                conn = self._pick_up(seg)
                role = self._role_of_first_sender(conn, seg)
            else:
                return
        conn.last_time = seg.time
        # During the CLC phase every payload counts; after a Confirm only a late Decline,
        # which is found by its header wherever it starts.
        if seg.payload and (conn.outcome is None
                            or (conn.settle_at is not None and starts_clc(seg.payload))):
            stream = self._stream(conn, role)
            self._stream_events(conn, role, stream.add(seg.seq, seg.payload, seg.time, seg.frame))
            if conn.outcome is None and stream.oldest_pending() is not None:
                self._timed[self._key(conn)] = conn  # a hole: give up on it after a while
        if flags & (FIN | RST) and conn.outcome is None:
            self._closed(conn, role, seg)
        elif flags & (FIN | RST) and conn.settle_at is not None:
            self._report(conn)  # the connection closed: no late Decline can come now

    def _on_syn(self, seg: Segment, conn: _Connection | None, role: Role) -> _Connection | None:
        if not seg.flags & ACK:  # SYN from the client
            if conn is not None and role == "client" and conn.client_isn == seg.seq:
                return conn  # retransmitted SYN
            if conn is not None:
                self._finish(conn, conn.last_time)  # the 4-tuple is reused: a new connection
            if not seg.smc_option:
                self._count_plain(seg)
                return None
            cid = ConnectionId(Endpoint(seg.src, seg.sport), Endpoint(seg.dst, seg.dport))
            self._reported.pop((seg.src, seg.sport, seg.dst, seg.dport), None)
            conn = _Connection(cid, seg.time, syn_option=True, client_isn=seg.seq,
                               last_time=seg.time)
            conn.streams["client"] = ClcStream((seg.seq + 1) % (1 << 32))
            self._add(conn)
            return conn
        if conn is None or role != "server":
            return None  # SYN-ACK of a connection we do not follow
        conn.synack_option = seg.smc_option
        conn.streams.setdefault("server", ClcStream((seg.seq + 1) % (1 << 32)))
        if not seg.smc_option and conn.outcome is None:
            self._decide(conn, "fallback", seg.time,
                         "server did not answer the SMC option (peer not SMC-enabled)")
            self._report(conn)
            return None
        return conn

    def _pick_up(self, seg: Segment) -> _Connection:
        """A CLC message on a connection whose SYN we did not see."""
        head_type = seg.payload[4]
        # Proposal and Confirm come from the client, Accept from the server.  A Decline can
        # come from either side: take the endpoint with the lower port as the server, which
        # is right for ephemeral client ports.
        from_client = head_type in (1, 3) or (head_type == 4 and seg.sport > seg.dport)
        src, dst = Endpoint(seg.src, seg.sport), Endpoint(seg.dst, seg.dport)
        cid = ConnectionId(src, dst) if from_client else ConnectionId(dst, src)
        conn = _Connection(cid, seg.time, last_time=seg.time)
        self._add(conn)
        return conn

    def _was_reported(self, seg: Segment) -> bool:
        return ((seg.src, seg.sport, seg.dst, seg.dport) in self._reported
                or (seg.dst, seg.dport, seg.src, seg.sport) in self._reported)

    @staticmethod
    def _role_of_first_sender(conn: _Connection, seg: Segment) -> Role:
        return "client" if conn.cid.client == Endpoint(seg.src, seg.sport) else "server"

    def _add(self, conn: _Connection) -> None:
        self._conns[self._key(conn)] = conn
        if len(self._conns) > MAX_CONNECTIONS:
            _, oldest = next(iter(self._conns.items()))
            self._finish(oldest, oldest.last_time)
        self._set_watch(conn, True)

    def _stream(self, conn: _Connection, role: Role) -> ClcStream:
        stream = conn.streams.get(role)
        if stream is None:
            stream = conn.streams[role] = ClcStream()
        return stream

    def _count_plain(self, seg: Segment) -> None:
        key = (seg.src, seg.sport, seg.dst, seg.dport, seg.seq)
        if key in self._plain_syns:
            return
        self._plain_syns[key] = None
        if len(self._plain_syns) > PLAIN_SYN_MEMORY:
            self._plain_syns.popitem(last=False)
        self.plain_tcp += 1

    # -- CLC messages ---------------------------------------------------------------------

    def _stream_events(self, conn: _Connection, role: Role, events: list[StreamEvent]) -> None:
        for ev in events:
            if isinstance(ev, StreamMessage):
                self._on_message(conn, role, ev)
            elif isinstance(ev, StreamGap):
                self.gaps += 1
                self._sink.on_gap(GapEvent(ev.time, conn.cid, role, ev.seq, ev.missing))
            elif isinstance(ev, StreamData) and conn.outcome is None:
                if conn.kinds:
                    self._decide(conn, "failed", ev.time,
                                 f"{role} sent non-CLC data during the CLC handshake "
                                 f"(after {conn.kinds[-1]}): protocol error")
                else:
                    self._decide(conn, "failed", ev.time,
                                 f"{role} sent non-CLC data instead of a CLC message")
                self._report(conn)

    def _on_message(self, conn: _Connection, role: Role, sm: StreamMessage) -> None:
        msg = decode(sm.data)
        self.messages += 1
        if msg.malformed:
            self.malformed += 1
        conn.kinds.append(msg.kind)
        if isinstance(msg, Accept):
            conn.accept_release = msg.release
        elif isinstance(msg, Confirm):
            conn.confirm = msg
        conn.last_time = sm.time
        self._sink.on_message(MessageEvent(sm.time, conn.cid, role, msg, sm.frame))
        if isinstance(msg, Decline):
            conn.decline, conn.decline_from = msg, role
            conn.settle_at = None
            conn.outcome = None  # a late Decline overrides a Confirm
            self._decide(conn, "fallback", sm.time, f"{role} declined")
            self._report(conn)
        elif isinstance(msg, Confirm) and conn.outcome is None and not msg.malformed:
            grace = LATE_DECLINE_GRACE_SMCR if msg.path == "SMC-R" else LATE_DECLINE_GRACE_SMCD
            self._decide(conn, "smc", sm.time, "SMC established")
            conn.settle_at = sm.time + grace
            self._timed[self._key(conn)] = conn
            # Nothing but a late Decline may follow on TCP; it is found by its header
            # wherever it starts, so the streams restart unanchored (made when needed).
            conn.streams = {}
            self._set_watch(conn, False)

    # -- outcomes ---------------------------------------------------------------------------

    def _decide(self, conn: _Connection, outcome: Outcome, when: float, reason: str) -> None:
        conn.outcome, conn.reason, conn.decided_at = outcome, reason, when

    def _closed(self, conn: _Connection, role: Role, seg: Segment) -> None:
        how = "reset (RST)" if seg.flags & RST else "closed (FIN)"
        if conn.synack_option is None and not conn.kinds:
            where = "before the SYN-ACK"
        elif conn.kinds:
            where = f"after {conn.kinds[-1]}"
        else:
            where = "before any CLC message"
        self._decide(conn, "failed", seg.time,
                     f"{role} {how} the connection {where} without a Decline "
                     "(CLC timeout or protocol error)")
        self._report(conn)

    def _report(self, conn: _Connection) -> None:
        """Emit the outcome and forget the connection."""
        cid = conn.cid
        key = self._key(conn)
        self._conns.pop(key, None)
        self._timed.pop(key, None)
        self._reported[key] = None
        if len(self._reported) > PLAIN_SYN_MEMORY:
            self._reported.popitem(last=False)
        self._set_watch(conn, False)
        outcome = conn.outcome or "incomplete"
        self.outcomes[outcome] += 1
        confirm = conn.confirm
        path = version = release = None
        first_contact = None
        if outcome == "smc" and isinstance(confirm, Confirm):
            path, version, first_contact = confirm.path, confirm.version, confirm.first_contact
            release = confirm.release
            if release is None:
                release = conn.accept_release
        decided = conn.decided_at
        handshake_ms = None
        if decided is not None and outcome != "incomplete":
            handshake_ms = round((decided - conn.start) * 1000.0, 3)
        self._sink.on_connection(ConnectionOutcome(
            conn=cid, start=conn.start, end=decided if decided is not None else conn.last_time,
            syn_option=conn.syn_option, synack_option=conn.synack_option,
            messages=tuple(conn.kinds), outcome=outcome, path=path,
            version=version, release=release, first_contact=first_contact,
            decline=conn.decline, decline_from=conn.decline_from,
            reason=self._reason(conn, outcome), handshake_ms=handshake_ms))

    @staticmethod
    def _reason(conn: _Connection, outcome: Outcome) -> str:
        if outcome == "incomplete":
            last = conn.kinds[-1] if conn.kinds else (
                "SYN-ACK" if conn.synack_option else "SYN")
            return f"capture ended after {last}"
        if conn.decline is not None:
            d = describe_decline(conn.decline.diagnosis)
            return f"{conn.decline_from} declined {d['hex']} {d['name']} ({d['text']})"
        return conn.reason

    def _finish(self, conn: _Connection, when: float) -> None:
        """End of input for one connection: flush its streams, then report it."""
        for role, stream in list(conn.streams.items()):
            if conn.outcome is None:
                self._stream_events(conn, role, stream.flush(when))
        if self._conns.get(self._key(conn)) is conn:
            self._report(conn)

    @staticmethod
    def _key(conn: _Connection) -> tuple[str, int, str, int]:
        cid = conn.cid
        return (cid.client.ip, cid.client.port, cid.server.ip, cid.server.port)

    def _set_watch(self, conn: _Connection, on: bool) -> None:
        # The prefilter counts watches per flow hash: watch once, unwatch once.
        if self._watch is not None and conn.watched != on:
            conn.watched = on
            self._watch(conn.cid, on)

    def advance(self, now: float) -> None:
        """Packet (or wall-clock, live) time moved on: settle what waited for it."""
        self.now = max(self.now, now)
        for key, conn in list(self._timed.items()):
            if conn.settle_at is not None:
                if now >= conn.settle_at:
                    self._report(conn)
                continue
            waiting = False
            for role, stream in list(conn.streams.items()):
                oldest = stream.oldest_pending()
                if oldest is not None and now - oldest >= GAP_TIMEOUT:
                    events: list[StreamEvent] = []
                    stream.skip_hole(now, events)
                    self._stream_events(conn, role, events)
                waiting = waiting or stream.oldest_pending() is not None
            if not waiting and conn.outcome is None:
                self._timed.pop(key, None)

    def finish(self) -> None:
        """End of input: every connection still open gets its outcome now."""
        for conn in sorted(self._conns.values(), key=lambda c: c.start):
            self._finish(conn, self.now)

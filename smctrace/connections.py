"""Per-connection state: TCP segments in, CLC messages and connection outcomes out.

A connection is followed once its SYN with the SMC option got an answer (SYN-ACK, CLC
bytes, FIN/RST), or when CLC messages show up on it (capture started mid-handshake).
SYNs without an answer are only remembered (compactly) and reported together, with a
sample of their 4-tuples: a flood of them costs no per-connection state.  Every followed
connection ends in exactly one :class:`ConnectionOutcome`:

* ``smc``        Proposal, Accept and Confirm, and no Decline (path/version from the Confirm)
* ``fallback``   a Decline (its code and sender), or the SYN-ACK lacked the SMC option
* ``failed``     closed by FIN/RST during the CLC exchange without a Decline, or non-CLC
                 bytes where a CLC message had to be (CLC timeout or protocol error)
* ``incomplete`` the capture ended before an outcome, or the connection table was full

Segments come as the rule's engines hand them out (:data:`smctrace.match.engine.Segment`
tuples); the per-direction streams stay anchored for the whole life of a connection, so
a segment seen again is never decoded twice and a late Decline after the Confirm is
reassembled like any other message.
"""

from __future__ import annotations

from collections import OrderedDict
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
from smctrace.match.engine import SegmentTuple
from smctrace.match.rule import (
    CLC_TYPE_CONFIRM,
    CLC_TYPE_DECLINE,
    CLC_TYPE_PROPOSAL,
    LATE_DECLINE_GRACE,
    LATE_DECLINE_GRACE_SMCD,
    MAX_CONNECTIONS,
    MAX_PENDING,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    UNANSWERED_SAMPLE,
)
from smctrace.streams import (
    SEQ_MOD,
    ClcStream,
    StreamData,
    StreamEvent,
    StreamGap,
    StreamMessage,
    starts_clc,
)

# A hole in a direction that the peer has not acted on within this time is a capture gap.
GAP_TIMEOUT = 3.0
# Linux gives up connecting after 6 SYN retransmissions, about 127 s: a SYN older than
# this without an answer is reported unanswered.
SYN_GIVE_UP = 130.0
REPORTED_MEMORY = 65536  # recently reported connections (a late retransmission starts none)

Key = tuple[str, int, str, int]


@dataclass(slots=True)
class _PendingSyn:
    """A SYN with the SMC option that has no answer yet: all that is kept of it."""

    time: float
    isn: int


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

    def __init__(self, sink: EventSink, *, max_connections: int = MAX_CONNECTIONS,
                 max_pending: int = MAX_PENDING) -> None:
        self._sink = sink
        self.max_connections = max_connections
        self.max_pending = max_pending
        self._conns: OrderedDict[Key, _Connection] = OrderedDict()
        self._syns: OrderedDict[Key, _PendingSyn] = OrderedDict()  # in arrival order
        # Connections already reported: a retransmitted CLC segment must not start a new one.
        self._reported: OrderedDict[Key, None] = OrderedDict()
        # Connections with a timer running (a late-Decline wait, or a hole in a stream):
        # the only ones advance() visits, so its cost does not grow with a SYN flood.
        self._timed: dict[Key, _Connection] = {}
        self.outcomes: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)
        self.messages = 0
        self.malformed = 0
        self.gaps = 0
        self.evicted = 0  # undecided connections reported because the table was full
        self.unanswered = 0  # SYNs with the SMC option that never got an answer
        self.unanswered_sample: list[str] = []
        self.split_messages = 0  # CLC messages that continued beyond their first segment
        # connections whose TCP handshake agreed on SMC but that showed no CLC message
        self.silent_smc = 0
        self.now = 0.0

    @property
    def followed(self) -> int:
        """Connections followed right now (no outcome reported yet)."""
        return len(self._conns)

    # -- segments ---------------------------------------------------------------------

    def on_segment(self, seg: SegmentTuple) -> None:
        (time, number, _interface, src, dst, sport, dport, seq, _ack, flags, option, payload,
         payload_len, _frame, _linktype, _orig_len) = seg
        if time > self.now:
            self.now = time
        key = (src, sport, dst, dport)
        conn = self._conns.get(key)
        role: Role = "client"
        if conn is None:
            conn = self._conns.get((dst, dport, src, sport))
            role = "server"
        if flags & TCP_SYN:
            if not flags & TCP_ACK:
                self._client_syn(key, conn, role, time, seq, option)
            else:
                self._syn_ack(key, conn, role, time, seq, option)
            return
        if conn is None:
            conn, role = self._answer_or_pick_up(key, time, payload)
            if conn is None:
                return
        conn.last_time = time
        if payload and (conn.outcome is None or conn.settle_at is not None):
            stream = self._stream(conn, role)
            events = stream.add(seq, payload, time, number, payload_len - len(payload))
            if events:
                self._stream_events(conn, role, events)
            if conn.outcome is None and stream.oldest_pending() is not None:
                self._timed[self._key(conn)] = conn  # a hole: give up on it after a while
        if flags & (TCP_FIN | TCP_RST):
            if conn.outcome is None:
                self._closed(conn, role, time, flags)
            elif conn.settle_at is not None:
                self._report(conn)  # the connection closed: no late Decline can come now

    def _client_syn(self, key: Key, conn: _Connection | None, role: Role, time: float,
                    seq: int, option: bool) -> None:
        if conn is not None:
            if role == "client" and conn.client_isn == seq:
                return  # retransmitted SYN
            self._finish(conn, conn.last_time)  # the 4-tuple is reused: a new connection
        held = self._syns.pop(key, None)
        if held is not None:
            if held.isn == seq:
                self._syns[key] = held  # retransmitted SYN of a pending connection
                return
            self._note_unanswered(key)
        if not option:
            return  # plain TCP: the engines count those, they are not followed
        self._reported.pop(key, None)
        self._syns[key] = _PendingSyn(time, seq)
        if len(self._syns) > self.max_pending:
            oldest, _ = self._syns.popitem(last=False)
            self._note_unanswered(oldest)

    def _syn_ack(self, key: Key, conn: _Connection | None, role: Role, time: float,
                 seq: int, option: bool) -> None:
        if conn is None:
            src, sport, dst, dport = key
            client_key = (dst, dport, src, sport)
            held = self._syns.pop(client_key, None)
            if held is not None:
                conn = self._from_syn(client_key, held)
            elif client_key in self._reported:
                return  # a resent SYN-ACK of a connection already reported
            else:
                # The SYN was not seen.  With the option, the SYN-ACK says it had it;
                # without, the rule let it cross only for a SYN with the option that the
                # engine held or, live, that the kernel filter remembered without passing
                # it (SMC SYNs over its rate, in a flood): a fallback either way.
                cid = ConnectionId(Endpoint(dst, dport), Endpoint(src, sport))
                conn = _Connection(cid, time, last_time=time)
                self._add(conn)
            role = "server"
        if role != "server":
            return
        conn.last_time = time
        conn.synack_option = option
        conn.streams.setdefault("server", ClcStream((seq + 1) % SEQ_MOD))
        if not option and conn.outcome is None:
            self._decide(conn, "fallback", time,
                         "server did not answer the SMC option (peer not SMC-enabled)")
            self._report(conn)

    def _from_syn(self, client_key: Key, held: _PendingSyn) -> _Connection:
        client_ip, client_port, server_ip, server_port = client_key
        cid = ConnectionId(Endpoint(client_ip, client_port), Endpoint(server_ip, server_port))
        conn = _Connection(cid, held.time, syn_option=True, client_isn=held.isn,
                           last_time=held.time)
        conn.streams["client"] = ClcStream((held.isn + 1) % SEQ_MOD)
        self._reported.pop(client_key, None)
        self._add(conn)
        return conn

    def _answer_or_pick_up(self, key: Key, time: float,
                           payload: bytes) -> tuple[_Connection | None, Role]:
        """A segment of no followed connection: the answer to a pending SYN, a CLC
        message on a connection whose SYN was not seen, or nothing for us."""
        src, sport, dst, dport = key
        reverse = (dst, dport, src, sport)
        held = self._syns.pop(key, None)
        if held is not None:
            return self._from_syn(key, held), "client"
        held = self._syns.pop(reverse, None)
        if held is not None:
            return self._from_syn(reverse, held), "server"
        if not payload or not starts_clc(payload):
            return None, "client"
        if key in self._reported or reverse in self._reported:
            return None, "client"
        # Proposal and Confirm come from the client, Accept from the server.  A Decline can
        # come from either side: take the endpoint with the lower port as the server, which
        # is right for ephemeral client ports.
        head_type = payload[4]
        from_client = head_type in (CLC_TYPE_PROPOSAL, CLC_TYPE_CONFIRM) or (
            head_type == CLC_TYPE_DECLINE and sport > dport)
        a, b = Endpoint(src, sport), Endpoint(dst, dport)
        conn = _Connection(ConnectionId(a, b) if from_client else ConnectionId(b, a), time,
                           last_time=time)
        self._add(conn)
        return conn, "client" if from_client else "server"

    def _add(self, conn: _Connection) -> None:
        self._conns[self._key(conn)] = conn
        if len(self._conns) > self.max_connections:
            oldest = next(iter(self._conns.values()))
            self._finish(oldest, oldest.last_time, evicted=True)

    def _stream(self, conn: _Connection, role: Role) -> ClcStream:
        stream = conn.streams.get(role)
        if stream is None:
            stream = conn.streams[role] = ClcStream()
        return stream

    def _note_unanswered(self, key: Key) -> None:
        self.unanswered += 1
        if len(self.unanswered_sample) < UNANSWERED_SAMPLE:
            client_ip, client_port, server_ip, server_port = key
            self.unanswered_sample.append(
                f"{Endpoint(client_ip, client_port)} -> {Endpoint(server_ip, server_port)}")

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
            grace = LATE_DECLINE_GRACE if msg.path == "SMC-R" else LATE_DECLINE_GRACE_SMCD
            self._decide(conn, "smc", sm.time, "SMC established")
            conn.settle_at = sm.time + grace
            self._timed[self._key(conn)] = conn

    # -- outcomes ---------------------------------------------------------------------------

    def _decide(self, conn: _Connection, outcome: Outcome, when: float, reason: str) -> None:
        conn.outcome, conn.reason, conn.decided_at = outcome, reason, when

    def _closed(self, conn: _Connection, role: Role, time: float, flags: int) -> None:
        how = "reset (RST)" if flags & TCP_RST else "closed (FIN)"
        if conn.synack_option is None and not conn.kinds:
            where = "before the SYN-ACK"
        elif conn.kinds:
            where = f"after {conn.kinds[-1]}"
        else:
            where = "before any CLC message"
        self._decide(conn, "failed", time,
                     f"{role} {how} the connection {where} without a Decline "
                     "(CLC timeout or protocol error)")
        self._report(conn)

    def _report(self, conn: _Connection) -> None:
        """Emit the outcome and forget the connection."""
        cid = conn.cid
        key = self._key(conn)
        self._conns.pop(key, None)
        self._timed.pop(key, None)
        self.split_messages += sum(s.split for s in conn.streams.values())
        self._reported[key] = None
        if len(self._reported) > REPORTED_MEMORY:
            self._reported.popitem(last=False)
        outcome = conn.outcome or "incomplete"
        self.outcomes[outcome] += 1
        if conn.synack_option and not conn.kinds:
            self.silent_smc += 1
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
            reason=self._reason(conn, outcome), handshake_ms=handshake_ms,
            retransmissions=sum(s.retransmitted for s in conn.streams.values())))

    @staticmethod
    def _reason(conn: _Connection, outcome: Outcome) -> str:
        if outcome == "incomplete":
            if conn.reason:
                return conn.reason
            last = conn.kinds[-1] if conn.kinds else (
                "SYN-ACK" if conn.synack_option else "SYN")
            return f"capture ended after {last}"
        if conn.decline is not None:
            d = describe_decline(conn.decline.diagnosis)
            return f"{conn.decline_from} declined {d['hex']} {d['name']} ({d['text']})"
        return conn.reason

    def _finish(self, conn: _Connection, when: float, *, evicted: bool = False) -> None:
        """End of input for one connection, or (``evicted``) the table is full and it is
        the oldest: flush its streams, then report it (undecided: saying why)."""
        for role, stream in list(conn.streams.items()):
            if conn.outcome is None:
                self._stream_events(conn, role, stream.flush(when))
        if self._conns.get(self._key(conn)) is not conn:
            return  # what the streams held decided it, and it is reported
        if evicted and conn.outcome is None:
            self.evicted += 1
            conn.reason = (f"evicted: connection table full ({self.max_connections} "
                           "connections followed at once)")
        self._report(conn)

    @staticmethod
    def _key(conn: _Connection) -> Key:
        cid = conn.cid
        return (cid.client.ip, cid.client.port, cid.server.ip, cid.server.port)

    def advance(self, now: float) -> None:
        """Packet (or wall-clock, live) time moved on: settle what waited for it."""
        if now > self.now:
            self.now = now
        syns = self._syns
        while syns:
            key, held = next(iter(syns.items()))
            if now - held.time < SYN_GIVE_UP:
                break
            del syns[key]
            self._note_unanswered(key)
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
        """End of input: every connection still open gets its outcome now; SYNs that are
        still waiting for an answer are counted as unanswered."""
        for conn in sorted(self._conns.values(), key=lambda c: c.start):
            self._finish(conn, self.now)
        for key in list(self._syns):
            self._note_unanswered(key)
        self._syns.clear()

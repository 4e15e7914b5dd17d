"""Connection outcomes from segment sequences (no capture layer involved)."""

from __future__ import annotations

import pytest

from smctrace.connections import SYN_GIVE_UP, ConnectionTracker
from smctrace.frame import LINKTYPE_ETHERNET
from smctrace.match.engine import SegmentTuple
from smctrace.packet import ACK, FIN, PSH, RST, SYN, Segment
from smctrace.pipeline import Tracer
from tests.support.synth import tcp_frame
from tests.support.tracing import RecordingSink
from tests.vectors import (
    ACCEPT_D_V1,
    ACCEPT_R_V1,
    CONFIRM_D_V1,
    CONFIRM_R_V1,
    DECLINE_V1_NOSMCDEV,
    DECLINE_V2,
    PROPOSAL_V1_52,
)

C, S = ("10.0.0.2", 40000), ("10.0.0.1", 7001)
CISN, SISN = 100, 5000


class Conversation:
    """Builds the segments of one client/server exchange with correct sequence numbers."""

    def __init__(self, tracker: ConnectionTracker, client: tuple[str, int] = C,
                 server: tuple[str, int] = S) -> None:
        self.t = tracker
        self.client, self.server = client, server
        self.seq = {"client": CISN + 1, "server": SISN + 1}
        self.time = 100.0

    def seg(self, sender: str, flags: int, payload: bytes = b"", *, seq: int | None = None,
            smc_option: bool = False, dt: float = 0.001) -> None:
        self.time += dt
        a, b = (self.client, self.server) if sender == "client" else (self.server, self.client)
        s = self.seq[sender] if seq is None else seq
        self.t.on_segment(Segment(self.time, 0, 0, a[0], b[0], a[1], b[1], s, 0, flags,
                                  smc_option, payload, len(payload), None, 1, 0))
        if seq is None:
            self.seq[sender] = (s + len(payload) + (1 if flags & (SYN | FIN) else 0)) % (1 << 32)

    def handshake(self, syn_option: bool = True, synack_option: bool = True) -> None:
        self.seg("client", SYN, seq=CISN, smc_option=syn_option)
        self.seg("server", SYN | ACK, seq=SISN, smc_option=synack_option)
        self.seg("client", ACK)

    def send(self, sender: str, payload: bytes, dt: float = 0.001) -> None:
        self.seg(sender, PSH | ACK, payload, dt=dt)


def run(script: list[tuple[str, bytes]], finish: bool = True) -> RecordingSink:
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    conv = Conversation(tracker)
    conv.handshake()
    for sender, payload in script:
        conv.send(sender, payload)
    if finish:
        tracker.finish()
    return rec


def test_smcr_v1_established() -> None:
    rec = run([("client", PROPOSAL_V1_52), ("server", ACCEPT_R_V1), ("client", CONFIRM_R_V1)])
    [o] = rec.outcomes
    assert o.outcome == "smc" and o.path == "SMC-R" and o.version == 1
    assert o.messages == ("proposal", "accept", "confirm")
    assert o.first_contact is True
    assert o.syn_option is True and o.synack_option is True
    assert o.conn.client.port == 40000 and o.conn.server.port == 7001
    assert [m.sender for m in rec.messages] == ["client", "server", "client"]
    assert o.handshake_ms == pytest.approx(5.0)  # SYN (t+1 ms) .. Confirm (t+6 ms)


def test_smcd_established() -> None:
    rec = run([("client", PROPOSAL_V1_52), ("server", ACCEPT_D_V1), ("client", CONFIRM_D_V1)])
    [o] = rec.outcomes
    assert (o.outcome, o.path, o.version) == ("smc", "SMC-D", 1)


def test_server_decline_is_fallback_with_code_and_sender() -> None:
    rec = run([("client", PROPOSAL_V1_52), ("server", DECLINE_V2), ("client", b"data")])
    [o] = rec.outcomes
    assert o.outcome == "fallback" and o.decline_from == "server"
    info = o.decline_info()
    assert info is not None and info["code"] == 0x03030009 and info["from"] == "server"
    assert o.path is None and o.version is None


def test_client_decline_as_first_message() -> None:
    rec = run([("client", DECLINE_V1_NOSMCDEV + b"Hello, world")])
    [o] = rec.outcomes
    assert o.outcome == "fallback" and o.decline_from == "client"
    assert o.messages == ("decline",)


def test_late_decline_after_confirm_overrides_smc() -> None:
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    conv = Conversation(tracker)
    conv.handshake()
    for sender, payload in [("client", PROPOSAL_V1_52), ("server", ACCEPT_R_V1),
                            ("client", CONFIRM_R_V1)]:
        conv.send(sender, payload)
    tracker.advance(conv.time + 1.0)
    assert rec.outcomes == []  # SMC-R: still waiting for a possible late Decline
    conv.send("client", DECLINE_V2, dt=5.3)  # like data/real-kernel/D7
    [o] = rec.outcomes
    assert o.outcome == "fallback" and o.decline_from == "client"
    assert o.messages == ("proposal", "accept", "confirm", "decline")


def test_smc_settles_after_grace_or_fin() -> None:
    rec = run([("client", PROPOSAL_V1_52), ("server", ACCEPT_R_V1), ("client", CONFIRM_R_V1)],
              finish=False)
    assert rec.outcomes == []
    rec2 = RecordingSink()
    tracker = ConnectionTracker(rec2)
    conv = Conversation(tracker)
    conv.handshake()
    for sender, payload in [("client", PROPOSAL_V1_52), ("server", ACCEPT_D_V1),
                            ("client", CONFIRM_D_V1)]:
        conv.send(sender, payload)
    conv.seg("server", FIN | ACK)
    assert [o.outcome for o in rec2.outcomes] == ["smc"]


def test_synack_without_option_is_fallback() -> None:
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    Conversation(tracker).handshake(synack_option=False)
    [o] = rec.outcomes
    assert o.outcome == "fallback" and o.synack_option is False and o.decline is None
    assert "did not answer the SMC option" in o.reason


def test_plain_tcp_makes_no_state() -> None:
    """Plain TCP never crosses the rule: through the engine, nothing reaches the tracker."""
    rec = RecordingSink()
    tracer = Tracer(rec)
    frames = [tcp_frame(C[0], S[0], C[1], S[1], flags=SYN, seq=CISN),
              tcp_frame(S[0], C[0], S[1], C[1], flags=SYN | ACK, seq=SISN, ack=CISN + 1),
              tcp_frame(C[0], S[0], C[1], S[1], flags=ACK | PSH, seq=CISN + 1,
                        payload=b"GET / HTTP/1.1\r\n\r\n")]
    crossed: list[SegmentTuple] = []
    for number, data in enumerate(frames, 1):
        tracer.engine.feed(data, LINKTYPE_ETHERNET, 1.0 + number, number, 0, len(data), True,
                           crossed)
    tracer.feed_segments(crossed)
    tracer.finish()
    assert rec.outcomes == [] and tracer.tracker.followed == 0 and tracer.segments == 0
    assert tracer.summary(3).plain_tcp == 1


def test_a_syn_ack_without_option_for_an_unseen_smc_syn_is_a_fallback() -> None:
    """Live, the kernel filter passes only so many SMC SYNs a second and remembers the
    rest: the SYN-ACK without the option of such a SYN still says "fallback"."""
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    conv = Conversation(tracker)
    conv.seg("server", SYN | ACK, seq=SISN, smc_option=False)
    [o] = rec.outcomes
    assert o.outcome == "fallback" and o.syn_option is None and o.synack_option is False
    assert "did not answer the SMC option" in o.reason
    conv.seg("server", SYN | ACK, seq=SISN, smc_option=False)  # resent: no second outcome
    assert len(rec.outcomes) == 1


def test_fin_during_clc_is_failed() -> None:
    rec = run([("client", PROPOSAL_V1_52)], finish=False)
    assert rec.outcomes == []
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    conv = Conversation(tracker)
    conv.handshake()
    conv.send("client", PROPOSAL_V1_52)
    conv.seg("server", RST | ACK, dt=6.0)  # CLC timeout at the server
    [o] = rec.outcomes
    assert o.outcome == "failed" and "after proposal" in o.reason and "server reset" in o.reason


def test_non_clc_data_in_clc_phase_is_failed() -> None:
    rec = run([("client", b"not a CLC message at all")])
    [o] = rec.outcomes
    assert o.outcome == "failed" and "non-CLC data" in o.reason


def test_capture_ending_mid_handshake_is_incomplete() -> None:
    rec = run([("client", PROPOSAL_V1_52), ("server", ACCEPT_R_V1)])
    [o] = rec.outcomes
    assert o.outcome == "incomplete" and o.handshake_ms is None
    assert o.reason == "capture ended after accept"


def test_mid_stream_pickup_without_syn() -> None:
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    conv = Conversation(tracker)  # no handshake: the capture started later
    conv.send("server", ACCEPT_R_V1)
    conv.send("client", CONFIRM_R_V1)
    tracker.finish()
    [o] = rec.outcomes
    assert o.outcome == "smc" and o.syn_option is None
    assert str(o.conn.client) == "10.0.0.2:40000"  # an Accept comes from the server


def test_retransmitted_decline_after_report_is_not_a_new_connection() -> None:
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    conv = Conversation(tracker)
    conv.handshake()
    conv.send("client", PROPOSAL_V1_52)
    conv.send("server", DECLINE_V2)
    conv.seg("server", PSH | ACK, DECLINE_V2, seq=SISN + 1)  # retransmission
    tracker.finish()
    assert len(rec.outcomes) == 1 and len(rec.messages) == 2


def test_gap_is_reported_and_messages_after_it_decoded() -> None:
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    conv = Conversation(tracker)
    conv.handshake()
    conv.seg("client", PSH | ACK, PROPOSAL_V1_52[:20])
    conv.seq["client"] += 32  # the capture missed the rest of the Proposal
    conv.send("client", DECLINE_V1_NOSMCDEV)
    tracker.advance(conv.time + 10.0)
    assert len(rec.gaps) == 1 and rec.gaps[0].missing == 32
    assert [m.message.kind for m in rec.messages] == ["proposal", "decline"]
    assert rec.messages[0].message.malformed  # the truncated Proposal says so
    assert rec.outcomes[0].outcome == "fallback"


def test_ipv6_endpoints_are_bracketed() -> None:
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    conv = Conversation(tracker, ("2001:db8::2", 40000), ("2001:db8::1", 7001))
    conv.handshake()
    conv.send("client", DECLINE_V1_NOSMCDEV)
    [o] = rec.outcomes
    assert str(o.conn.client) == "[2001:db8::2]:40000"


def test_only_connections_with_timers_are_visited_by_advance() -> None:
    """A flood of half-open SMC connections must not make every time tick a full scan."""
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    for port in range(41000, 41500):  # half-open: SYN only, nothing to wait for
        Conversation(tracker, ("10.0.0.3", port)).seg("client", SYN, seq=CISN, smc_option=True)
    assert len(tracker._syns) == 500 and not tracker._conns and not tracker._timed
    smc = Conversation(tracker, ("10.0.0.4", 42000))
    smc.handshake()
    for sender, payload in [("client", PROPOSAL_V1_52), ("server", ACCEPT_R_V1),
                            ("client", CONFIRM_R_V1)]:
        smc.send(sender, payload)  # SMC-R Confirm: waits for a late Decline
    holey = Conversation(tracker, ("10.0.0.5", 43000))
    holey.handshake()
    holey.seg("client", PSH | ACK, PROPOSAL_V1_52[20:], seq=CISN + 21)  # a hole before it
    assert len(tracker._timed) == 2
    tracker.advance(smc.time + 60.0)  # the wait ends, the hole is given up on
    assert not tracker._timed
    assert [o.outcome for o in rec.outcomes] == ["smc"]
    assert len(rec.gaps) == 1


def smc_r_handshake(conv: Conversation) -> None:
    conv.handshake()
    for sender, payload in [("client", PROPOSAL_V1_52), ("server", ACCEPT_R_V1),
                            ("client", CONFIRM_R_V1)]:
        conv.send(sender, payload)


def test_a_confirm_seen_twice_is_one_message() -> None:
    """The streams stay anchored after the Confirm: its copy (a second interface, or a
    TCP retransmission) is not decoded again, and a retransmission is counted."""
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    conv = Conversation(tracker)
    smc_r_handshake(conv)
    confirm_seq = conv.seq["client"] - len(CONFIRM_R_V1)
    conv.seg("client", PSH | ACK, CONFIRM_R_V1, seq=confirm_seq, dt=0.3)
    conv.seg("server", FIN | ACK)
    [o] = rec.outcomes
    assert o.outcome == "smc" and o.messages == ("proposal", "accept", "confirm")
    assert len(rec.messages) == 3 and o.retransmissions == 1


def test_a_late_decline_split_across_segments_decides() -> None:
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    conv = Conversation(tracker)
    smc_r_handshake(conv)
    for a, b in ((0, 5), (5, 30), (30, len(DECLINE_V2))):  # the header split, too
        conv.seg("client", PSH | ACK, DECLINE_V2[a:b], seq=conv.seq["client"] + a, dt=1.7)
    [o] = rec.outcomes
    assert o.outcome == "fallback" and o.decline_from == "client"
    assert o.messages == ("proposal", "accept", "confirm", "decline")


def test_a_late_decline_retransmitted_and_reordered_decides_once() -> None:
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    conv = Conversation(tracker)
    smc_r_handshake(conv)
    start = conv.seq["client"]
    conv.seg("client", PSH | ACK, DECLINE_V2[20:], seq=start + 20, dt=2.0)
    conv.seg("client", PSH | ACK, DECLINE_V2[20:], seq=start + 20)
    conv.seg("client", PSH | ACK, DECLINE_V2[:20], seq=start)
    conv.seg("client", PSH | ACK, DECLINE_V2, seq=start)
    [o] = rec.outcomes
    assert o.outcome == "fallback" and [m.message.kind for m in rec.messages].count(
        "decline") == 1


def test_unanswered_syns_are_reported_together_not_one_by_one() -> None:
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    for port in range(45000, 45020):
        Conversation(tracker, ("10.0.0.9", port)).seg("client", SYN, seq=CISN,
                                                      smc_option=True)
    tracker.finish()
    assert rec.outcomes == [] and tracker.unanswered == 20
    assert tracker.unanswered_sample[0] == "10.0.0.9:45000 -> 10.0.0.1:7001"
    assert len(tracker.unanswered_sample) == 8


def test_an_unanswered_syn_expires_after_the_syn_retries() -> None:
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    conv = Conversation(tracker)
    conv.seg("client", SYN, seq=CISN, smc_option=True)
    tracker.advance(conv.time + SYN_GIVE_UP - 1)
    assert tracker.unanswered == 0
    tracker.advance(conv.time + SYN_GIVE_UP + 1)
    assert tracker.unanswered == 1 and not tracker._syns


def test_a_syn_ack_without_a_seen_syn_starts_the_connection() -> None:
    rec = RecordingSink()
    tracker = ConnectionTracker(rec)
    conv = Conversation(tracker)
    conv.seg("server", SYN | ACK, seq=SISN, smc_option=True)
    conv.send("client", PROPOSAL_V1_52)
    conv.send("server", DECLINE_V2)
    [o] = rec.outcomes
    assert o.outcome == "fallback" and o.syn_option is None and o.synack_option is True
    assert str(o.conn.client) == "10.0.0.2:40000"


def test_a_full_table_evicts_and_says_so() -> None:
    rec = RecordingSink()
    tracker = ConnectionTracker(rec, max_connections=3)
    for port in range(46000, 46005):
        conv = Conversation(tracker, ("10.0.0.7", port))
        conv.handshake()
        conv.send("client", PROPOSAL_V1_52)
    assert tracker.evicted == 2 and tracker.followed == 3
    evicted = [o for o in rec.outcomes if o.outcome == "incomplete"]
    assert [o.conn.client.port for o in evicted] == [46000, 46001]
    assert evicted[0].reason.startswith("evicted: connection table full (3 ")

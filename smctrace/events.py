"""What the pipeline's stages agree on: the events it emits and the sink that takes them.

The connection tracker produces :class:`MessageEvent`, :class:`GapEvent` and
:class:`ConnectionOutcome`; every output (text, JSON lines, tables, pcapng, HTTP/metrics)
is an :class:`EventSink`.  At the end of a trace each sink gets :meth:`EventSink.finish`
with the :class:`TraceSummary`, so the wiring never needs to know which kind of sink it
drives (ptcpdump's ``PacketWriter{Write, Flush, Close}`` is the model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from smctrace.clc import ClcMessage, Decline, describe_decline

Role = Literal["client", "server"]
Outcome = Literal["smc", "fallback", "failed", "incomplete"]
OUTCOMES: tuple[Outcome, ...] = ("smc", "fallback", "failed", "incomplete")


# Events are made for every message and connection: named tuples (hashable, as keys) and
# slot classes, not frozen dataclasses, whose __init__ costs six times as much.
class Endpoint(NamedTuple):
    ip: str
    port: int

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


class ConnectionId(NamedTuple):
    client: Endpoint
    server: Endpoint


@dataclass(slots=True)
class MessageEvent:
    """One decoded CLC message on a connection."""

    time: float
    conn: ConnectionId
    sender: Role
    message: ClcMessage
    frame: int


@dataclass(slots=True)
class GapEvent:
    """Bytes of a CLC phase that the capture never saw."""

    time: float
    conn: ConnectionId
    sender: Role
    seq: int
    missing: int


@dataclass(slots=True)
class ConnectionOutcome:
    """How one connection's SMC negotiation ended."""

    conn: ConnectionId
    start: float
    end: float
    syn_option: bool | None
    synack_option: bool | None
    messages: tuple[str, ...]
    outcome: Outcome
    path: str | None
    version: int | None
    release: int | None
    first_contact: bool | None
    decline: Decline | None
    decline_from: Role | None
    reason: str
    handshake_ms: float | None
    # CLC-phase segments that brought no new byte: TCP retransmissions (the same segment
    # seen twice on two interfaces is one segment, and not counted here)
    retransmissions: int = 0

    def decline_info(self) -> dict[str, object] | None:
        if self.decline is None:
            return None
        return {**describe_decline(self.decline.diagnosis), "from": self.decline_from}


Event = MessageEvent | GapEvent | ConnectionOutcome


@dataclass(slots=True)
class TraceSummary:
    """Counts for the exit summary and the JSON ``summary`` event."""

    frames: int  # frames read from the source (all of them, not only candidates)
    segments: int  # TCP segments the tracer looked at
    # TCP connections without the SMC option (only counted); None when the source cannot
    # see them (live: the kernel filter never lets ordinary SYNs into user space)
    plain_tcp: int | None
    connections: int  # connections followed for SMC
    outcomes: dict[Outcome, int]
    messages: int
    malformed: int
    gaps: int
    # live: what the kernel filter saw and kept, what the socket received and dropped
    capture: dict[str, int | None] = field(default_factory=dict)
    # the same segment seen twice (two interfaces, -i any, merged captures): shown once
    duplicates: int = 0
    # SYNs with the SMC option that never got an answer, and a sample of their 4-tuples
    unanswered_syns: int = 0
    unanswered_sample: list[str] = field(default_factory=list)
    # CLC messages that began following a connection whose start was not seen and got no
    # answer while held (a flood of them, offline): counted, not decoded; and a sample
    unanswered_midstream: int = 0
    unanswered_midstream_sample: list[str] = field(default_factory=list)
    # undecided connections reported early because the connection table was full
    evicted: int = 0
    # CLC messages that continued beyond the segment their header was in
    split_messages: int = 0
    # connections whose TCP handshake agreed on SMC but that showed no CLC message
    silent_smc: int = 0
    # things that could not be searched or may have been missed, one line each
    warnings: list[str] = field(default_factory=list)
    # part of the input could not be searched at all (link types, cut headers): exit 3
    unsearched: bool = False


class EventSink:
    """Receiver of pipeline events (outputs implement this)."""

    def on_message(self, event: MessageEvent) -> None:
        """A CLC message was decoded."""

    def on_gap(self, event: GapEvent) -> None:
        """A hole in a CLC phase."""

    def on_connection(self, outcome: ConnectionOutcome) -> None:
        """A connection's outcome is known."""

    def flush(self) -> None:
        """Nothing more is coming for now (live: the capture is idle): write out what is
        buffered, so a reader sees each connection as it is decided."""

    def finish(self, summary: TraceSummary) -> None:
        """The trace is over: render what waited for the end, flush."""

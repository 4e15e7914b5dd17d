"""The SMC-relevance rule in Python: the reference every engine is tested against, and the
offline fallback when the C engine is not built.

:func:`parse` finds the TCP segment in a frame (link layer, VLAN tags, IPv4/IPv6 with
extension headers, TCP header) by the rule's limits; :class:`Matcher` is the per-connection
state machine of :mod:`smctrace.match.rule` and says of every frame how much of it crosses
(:class:`Keep`); :class:`Deduplicator` recognises a segment seen twice.  The C engines
(``smc_match.h``) implement exactly this, step by step, and the one case table checks it.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

from smctrace.frame import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_ALT_12,
    LINKTYPE_RAW_ALT_14,
)
from smctrace.match import rule as R
from smctrace.streams import SEQ_MOD, seq_diff

ByteData = bytes | bytearray | memoryview

_RAW_LINKTYPES = (LINKTYPE_RAW, LINKTYPE_RAW_ALT_12, LINKTYPE_RAW_ALT_14)


class Keep(IntEnum):
    """How much of a frame crosses (the verdict of the rule)."""

    DROP = 0  # nothing
    HEADERS = 1  # up to the end of the TCP header
    HEAD8 = 2  # the headers and the first CLC_HEADER_LEN payload bytes
    PAYLOAD = 3  # the headers and the payload, capped at PAYLOAD_CAP bytes
    HOLD = 4  # a SYN with the SMC option: held until its connection is answered


class Verdict(NamedTuple):
    keep: Keep
    release: bool = False  # the connection's held SYN crosses first
    # This segment began following a connection whose start was not seen (offline engines
    # hold it until the connection shows more; the kernel filters pass it at once).
    pickup: bool = False


class TcpView(NamedTuple):
    """A TCP segment located in a frame (offsets into the frame, nothing copied)."""

    version: int  # 4 or 6
    src_offset: int  # source address offset (4 or 16 bytes, the destination follows)
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    options_start: int  # first TCP option byte
    payload_start: int  # first payload byte (end of the TCP header)
    captured_end: int  # end of the captured payload (bounded by the IP length)
    payload_len: int  # payload length on the wire (from the IP length)

    @property
    def address_len(self) -> int:
        return 4 if self.version == 4 else 16

    def addresses(self, data: ByteData) -> tuple[bytes, bytes]:
        n = self.address_len
        start = self.src_offset
        return bytes(data[start : start + n]), bytes(data[start + n : start + 2 * n])

    def keep_bytes(self, keep: Keep) -> int:
        """How many bytes of the frame a verdict keeps."""
        captured = self.captured_end - self.payload_start
        if keep == Keep.HEADERS:
            return self.payload_start
        if keep == Keep.HEAD8:
            return self.payload_start + min(captured, R.CLC_HEADER_LEN)
        if keep == Keep.PAYLOAD:
            return self.payload_start + min(captured, R.PAYLOAD_CAP)
        return 0


# --- parsing -----------------------------------------------------------------------------


def _after_ethertype(data: ByteData, type_offset: int, payload_offset: int,
                     offloaded_tags: int) -> tuple[int, int]:
    """Follow VLAN tags from an EtherType field: (IP offset, IP version) or (-1, 0)."""
    length = len(data)
    if type_offset + 2 > length:
        return -1, 0
    ethertype = (data[type_offset] << 8) | data[type_offset + 1]
    tags = offloaded_tags
    while ethertype in R.VLAN_TPIDS:
        tags += 1
        if tags > R.MAX_VLAN_TAGS or payload_offset + 4 > length:
            return -1, 0
        ethertype = (data[payload_offset + 2] << 8) | data[payload_offset + 3]
        payload_offset += 4
    if ethertype == R.ETHERTYPE_IPV4:
        return payload_offset, 4
    if ethertype == R.ETHERTYPE_IPV6:
        return payload_offset, 6
    return -1, 0


def locate_ip(data: ByteData, linktype: int, offloaded_tags: int = 0) -> tuple[int, int]:
    """The IP header after the link layer: (offset, version 4/6), or (-1, 0)."""
    length = len(data)
    if linktype == LINKTYPE_ETHERNET:
        return _after_ethertype(data, 12, 14, offloaded_tags)
    if linktype == LINKTYPE_LINUX_SLL:
        return _after_ethertype(data, 14, 16, offloaded_tags)
    if linktype == LINKTYPE_LINUX_SLL2:
        if length < 20:
            return -1, 0
        return _after_ethertype(data, 0, 20, offloaded_tags)
    if linktype in _RAW_LINKTYPES:
        if length < 1 or data[0] >> 4 not in (4, 6):
            return -1, 0
        return 0, data[0] >> 4
    if linktype == LINKTYPE_IPV4:
        return 0, 4
    if linktype == LINKTYPE_IPV6:
        return 0, 6
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if length < 4:
            return -1, 0
        # NULL is in the capturing host's byte order, LOOP in network order, and writers
        # get both wrong; a family fits in 16 bits, so the wrong order shows as > 0xFFFF.
        family = int.from_bytes(data[:4], "little")
        if family > 0xFFFF:
            family = int.from_bytes(data[:4], "big")
        if family == R.NULL_FAMILY_INET:
            return 4, 4
        if family in R.NULL_FAMILIES_INET6:
            return 4, 6
    return -1, 0


_IPV4 = struct.Struct("!BxH2xHxB")  # version/IHL, total length, fragment field, protocol
_TCP = struct.Struct("!HHIIBB")  # ports, sequence, acknowledgment, data offset, flags


def _ipv4_tcp_offset(data: ByteData, offset: int) -> tuple[int, int]:
    """(TCP offset, IP end) of a first-fragment IPv4 TCP packet, else (-1, 0)."""
    if offset + 20 > len(data):
        return -1, 0
    vihl, total_len, fragment, protocol = _IPV4.unpack_from(data, offset)
    header_len = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or header_len < 20 or offset + header_len > len(data):
        return -1, 0
    if protocol != R.IPPROTO_TCP or fragment & 0x1FFF:
        return -1, 0  # not TCP, or not the first fragment (no TCP header there)
    if total_len == 0:  # TSO/BIG TCP frames captured on the sender carry 0
        return offset + header_len, len(data)
    if total_len < header_len:
        return -1, 0
    return offset + header_len, offset + total_len


def _ipv6_tcp_offset(data: ByteData, offset: int) -> tuple[int, int]:
    """(TCP offset, IP end) after the IPv6 extension headers, else (-1, 0)."""
    length = len(data)
    if offset + 40 > length or data[offset] >> 4 != 6:
        return -1, 0
    payload_len = (data[offset + 4] << 8) | data[offset + 5]
    ip_end = offset + 40 + payload_len if payload_len else length  # 0: jumbogram/BIG TCP
    limit = min(ip_end, length)
    next_header = data[offset + 6]
    cursor = offset + 40
    for _ in range(R.MAX_IPV6_EXT_HEADERS + 1):
        if next_header == R.IPPROTO_TCP:
            return cursor, ip_end
        if cursor + 8 > limit:
            return -1, 0  # every extension header is at least 8 bytes
        if next_header in R.IPV6_EXT_GENERIC:
            header_len = (data[cursor + 1] + 1) * 8
        elif next_header == R.IPV6_EXT_FRAGMENT:
            if ((data[cursor + 2] << 8) | data[cursor + 3]) & 0xFFF8:
                return -1, 0  # not the first fragment
            header_len = 8
        elif next_header == R.IPV6_EXT_AH:
            header_len = (data[cursor + 1] + 2) * 4
        else:
            return -1, 0  # ESP, no next header, UDP, ...: no TCP header to read
        next_header = data[cursor]
        cursor += header_len
    return -1, 0


def parse(data: ByteData, linktype: int, offloaded_tags: int = 0) -> TcpView | None:
    """The TCP segment in a frame, or None (not first-fragment TCP over IP, or cut)."""
    ip_offset, version = locate_ip(data, linktype, offloaded_tags)
    if ip_offset < 0:
        return None
    if version == 4:
        tcp_offset, ip_end = _ipv4_tcp_offset(data, ip_offset)
    else:
        tcp_offset, ip_end = _ipv6_tcp_offset(data, ip_offset)
    if tcp_offset < 0:
        return None
    captured_end = min(ip_end, len(data))
    if tcp_offset + 20 > captured_end:
        return None
    sport, dport, seq, ack, offset_byte, flags = _TCP.unpack_from(data, tcp_offset)
    header_len = (offset_byte >> 4) * 4
    payload_start = tcp_offset + header_len
    # A header longer than the IP packet is malformed; one cut by the snap length is
    # truncated; either way there is no segment to report.
    if header_len < 20 or payload_start > captured_end:
        return None
    return TcpView(version, ip_offset + (12 if version == 4 else 8), sport, dport, seq, ack,
                   flags, tcp_offset + 20, payload_start, captured_end,
                   ip_end - payload_start)


def tcp_header_cut(data: ByteData, linktype: int) -> bool:
    """A TCP packet whose headers the capture's snap length cut (for the warning only)."""
    ip_offset, version = locate_ip(data, linktype)
    if ip_offset < 0:
        return False
    if version == 4:
        if ip_offset + 20 > len(data) or data[ip_offset + 9] != R.IPPROTO_TCP:
            return False
        total = (data[ip_offset + 2] << 8) | data[ip_offset + 3]
        return bool(total) and ip_offset + total > len(data)
    if ip_offset + 40 > len(data):
        return False
    payload = (data[ip_offset + 4] << 8) | data[ip_offset + 5]
    return bool(payload) and ip_offset + 40 + payload > len(data) and \
        data[ip_offset + 6] == R.IPPROTO_TCP


def has_smc_option(data: ByteData, start: int, end: int) -> bool:
    """The SMC option among the TCP options in ``data[start:end]``.

    EOL ends the list; a length byte that is missing, < 2 or runs past the header makes
    the rest unreadable, so the walk stops there (as Linux's does).
    """
    cursor = start
    for _ in range(R.TCP_MAX_OPTION_BYTES):
        if cursor >= end:
            return False
        kind = data[cursor]
        if kind == R.TCPOPT_EOL:
            return False
        if kind == R.TCPOPT_NOP:
            cursor += 1
            continue
        if cursor + 2 > end:
            return False
        option_len = data[cursor + 1]
        if option_len < 2 or cursor + option_len > end:
            return False
        if (kind == R.TCPOPT_EXP and option_len >= R.SMC_OPTION_MIN_LEN
                and option_len % 2 == 0
                and int.from_bytes(data[cursor + 2 : cursor + 6], "big") == R.SMC_OPTION_EXID):
            return True
        cursor += option_len
    return False


def payload_header(data: ByteData, view: TcpView) -> int:
    """The length of the CLC message whose header starts the segment's captured payload,
    or 0 (:func:`rule.plausible_clc_header`; bytes past the IP packet, such as Ethernet
    padding, are not payload)."""
    if view.captured_end - view.payload_start < R.CLC_HEADER_LEN:
        return 0
    return R.plausible_clc_header(data, view.payload_start)


# --- the state machine ------------------------------------------------------------------


@dataclass(slots=True)
class Direction:
    """What the rule knows of one direction of a followed connection."""

    anchored: bool = False  # base is known (SYN or SYN-ACK seen, or a CLC header)
    base: int = 0  # sequence number of the direction's first CLC byte
    limit: int = 0  # payload from here on is not CLC
    next: int = 0  # where the next CLC header starts
    partial: int = 0  # header bytes at `next` seen so far, big-endian
    partial_len: int = 0
    closed: bool = False  # the phase ended before the direction was anchored

    def anchor(self, seq: int) -> None:
        if not self.closed:
            self.anchored = True
            self.base = self.next = seq
            self.limit = (seq + R.CLC_PHASE_BYTES) % SEQ_MOD
            self.partial = self.partial_len = 0

    def end(self) -> None:
        """The CLC phase is over: nothing beyond the current position is CLC."""
        if self.anchored:
            if seq_diff(self.next, self.limit) < 0:
                self.limit = self.next
        else:
            self.closed = True


@dataclass(slots=True)
class Connection:
    pending: bool  # SYN seen, no answer yet
    client_dir: int  # direction of the client's SYN (-1: not seen)
    client_isn: int
    syn_time: int  # nanoseconds
    dirs: tuple[Direction, Direction] = field(default_factory=lambda: (Direction(),
                                                                        Direction()))
    confirm_time: int = 0  # when a Confirm was seen (0: not yet)


Key = tuple[bytes, int, bytes, int]


def flow_key(src: bytes, sport: int, dst: bytes, dport: int) -> tuple[Key, int]:
    """Direction-normalised key and the direction (0: from the lower end)."""
    if (src, sport) <= (dst, dport):
        return (src, sport, dst, dport), 0
    return (dst, dport, src, sport), 1


class Matcher:
    """The rule's state machine over a sequence of frames (one capture or interface)."""

    def __init__(self, *, grace: float = R.LATE_DECLINE_GRACE,
                 max_connections: int = R.MAX_CONNECTIONS,
                 max_pending: int = R.MAX_PENDING) -> None:
        self.grace_ns = int(grace * R.NANOSECONDS)
        self.max_connections = max_connections
        self.max_pending = max_pending
        self.follow: OrderedDict[Key, Connection] = OrderedDict()
        self.pending: OrderedDict[Key, Connection] = OrderedDict()
        self.plain_syns = 0  # client SYNs without the option (retransmissions included)
        self.smc_syns = 0  # new SMC-option SYNs (pending connections)
        self.answered = 0  # pending connections that got an answer
        self.unanswered = 0  # pending connections forgotten without one
        self.unanswered_keys: list[Key] = []  # a sample of them

    def verdict(self, data: ByteData, linktype: int, time_ns: int,
                offloaded_tags: int = 0) -> tuple[Verdict, TcpView | None]:
        """Apply the rule to one frame."""
        view = parse(data, linktype, offloaded_tags)
        if view is None:
            return Verdict(Keep.DROP), None
        src, dst = view.addresses(data)
        key, direction = flow_key(src, view.sport, dst, view.dport)
        return self.step(key, direction, view, data, time_ns), view

    def _insert(self, table: OrderedDict[Key, Connection], key: Key, conn: Connection,
                size: int) -> None:
        table[key] = conn
        table.move_to_end(key)
        if len(table) > size:
            evicted_key, evicted = table.popitem(last=False)
            if evicted.pending:
                self._note_unanswered(evicted_key)

    def _note_unanswered(self, key: Key) -> None:
        self.unanswered += 1
        if len(self.unanswered_keys) < R.UNANSWERED_SAMPLE:
            self.unanswered_keys.append(key)

    def _lookup(self, key: Key) -> Connection | None:
        """A followed connection; looking it up makes it the most recently used (an LRU
        hash map, as the kernel's)."""
        conn = self.follow.get(key)
        if conn is not None:
            self.follow.move_to_end(key)
        return conn

    def _forget(self, key: Key) -> None:
        if self.pending.pop(key, None) is not None:
            self._note_unanswered(key)
        self.follow.pop(key, None)

    def finish(self) -> None:
        """End of input: SYNs still waiting for an answer are unanswered."""
        for key in list(self.pending):
            self._note_unanswered(key)
        self.pending.clear()

    def step(self, key: Key, direction: int, view: TcpView, data: ByteData,
             now: int) -> Verdict:
        flags = view.flags
        if flags & R.TCP_SYN:
            return self._syn(key, direction, view, data, now)
        conn = self._lookup(key)
        release = pickup = False
        if conn is None:
            # Only a CLC header or FIN/RST can answer a pending SYN here (looking up the
            # pending table for every ordinary data segment would cost every frame).
            header = payload_header(data, view)
            held = self.pending.get(key) if header or flags & (R.TCP_FIN | R.TCP_RST) else None
            if held is not None:
                self.answered += 1
                conn = self._promote(key, held)
                release = True
            elif header:
                conn = Connection(pending=False, client_dir=-1, client_isn=0, syn_time=0)
                conn.dirs[direction].anchor(view.seq)
                self._insert(self.follow, key, conn, self.max_connections)
                pickup = True
            else:
                return Verdict(Keep.DROP)
        keep = Keep.DROP
        if view.payload_len > 0:
            keep = self._payload(conn, direction, view, data, now)
        if flags & (R.TCP_FIN | R.TCP_RST):
            self.follow.pop(key, None)
            keep = max(keep, Keep.HEADERS)
        return Verdict(keep, release, pickup)

    def _promote(self, key: Key, held: Connection) -> Connection:
        del self.pending[key]
        held.pending = False
        self._insert(self.follow, key, held, self.max_connections)
        return held

    def _syn(self, key: Key, direction: int, view: TcpView, data: ByteData,
             now: int) -> Verdict:
        option = has_smc_option(data, view.options_start, view.payload_start)
        conn = self._lookup(key) or self.pending.get(key)
        if not view.flags & R.TCP_ACK:  # the client's SYN
            if conn is not None and conn.client_dir == direction and \
                    conn.client_isn == view.seq:
                return Verdict(Keep.DROP)  # retransmitted (or the same SYN seen twice)
            self._forget(key)  # a new connection on this 4-tuple
            if not option:
                self.plain_syns += 1
                return Verdict(Keep.DROP)
            self.smc_syns += 1
            conn = Connection(pending=True, client_dir=direction, client_isn=view.seq,
                              syn_time=now)
            conn.dirs[direction].anchor((view.seq + 1) % SEQ_MOD)
            self._insert(self.pending, key, conn, self.max_pending)
            return Verdict(Keep.HOLD)
        # the server's SYN-ACK
        release = key in self.pending
        if release:
            self.answered += 1
        if not option:
            if conn is None:
                return Verdict(Keep.DROP)
            self.pending.pop(key, None)
            self.follow.pop(key, None)
            return Verdict(Keep.HEADERS, release)  # fallback in the TCP handshake
        if conn is None:  # the SYN was not seen
            conn = Connection(pending=False, client_dir=1 - direction, client_isn=0,
                              syn_time=0)
            self._insert(self.follow, key, conn, self.max_connections)
        elif release:
            conn = self._promote(key, conn)
        server = conn.dirs[direction]
        if not server.anchored:
            server.anchor((view.seq + 1) % SEQ_MOD)
        return Verdict(Keep.HEADERS, release)

    def _payload(self, conn: Connection, direction: int, view: TcpView, data: ByteData,
                 now: int) -> Keep:
        """A payload segment of a followed connection (rule step 4)."""
        if conn.confirm_time and now - conn.confirm_time > self.grace_ns:
            for d in conn.dirs:
                d.end()  # no late Decline came: the handshake is over
        state = conn.dirs[direction]
        start = view.payload_start
        captured = view.captured_end - start
        if not state.anchored:
            if not payload_header(data, view):
                return Keep.DROP
            state.anchor(view.seq)
            if not state.anchored:
                return Keep.DROP  # the phase ended before this direction began
        seq = view.seq
        if seq_diff((seq + view.payload_len) % SEQ_MOD, state.base) <= 0:
            return Keep.DROP  # entirely before the direction's first CLC byte
        if seq_diff(seq, state.limit) >= 0:
            return Keep.DROP  # beyond the CLC phase
        keep = Keep.PAYLOAD
        for _ in range(R.MAX_MESSAGES_PER_SEGMENT):
            wanted = (state.next + state.partial_len) % SEQ_MOD  # next header byte needed
            rel = seq_diff(wanted, seq)
            if rel < 0:
                # A hole before this segment.  A CLC header right at its start within
                # the phase resynchronises (the hole was a message the capture missed).
                if state.partial_len or not payload_header(data, view):
                    break
                state.next, rel = seq, 0
            if rel >= captured:
                break  # the needed byte is not in this segment
            take = min(R.CLC_HEADER_LEN - state.partial_len, captured - rel)
            chunk = int.from_bytes(data[start + rel : start + rel + take], "big")
            state.partial = (state.partial << (8 * take)) | chunk
            state.partial_len += take
            if state.partial_len < R.CLC_HEADER_LEN:
                break  # the header continues in the next segment
            header, state.partial, state.partial_len = state.partial, 0, 0
            length = R.header_length(header)
            if not length:
                # Not CLC where a header must start: the phase is over.  The first such
                # segment shows its first bytes; a message before it in the segment
                # is needed whole.
                keep = Keep.HEAD8 if state.next == seq else Keep.PAYLOAD
                for d in conn.dirs:
                    d.end()
                break
            state.next = (state.next + length) % SEQ_MOD
            msg_type = (header >> 24) & 0xFF
            if msg_type == R.CLC_TYPE_DECLINE:
                for d in conn.dirs:
                    d.end()  # the Decline's own bytes are before its direction's limit
                break
            if msg_type == R.CLC_TYPE_CONFIRM and not conn.confirm_time:
                conn.confirm_time = now | 1  # never 0, which means "not yet"
        return keep


class Deduplicator:
    """Recognises the same TCP segment seen twice within :data:`rule.DUPLICATE_WINDOW`.

    A segment's fingerprint is FNV-1a over addresses, ports, sequence and acknowledgment
    numbers, flags, payload length and the first payload bytes; a direct-mapped table of
    recent fingerprints with their times answers "seen just now?".  A collision can only
    make a duplicate look new (the stream layer then drops it by sequence number).
    """

    def __init__(self) -> None:
        self._slots: list[tuple[int, int] | None] = [None] * R.DUPLICATE_SLOTS
        self._window = int(R.DUPLICATE_WINDOW * R.NANOSECONDS)

    @staticmethod
    def fingerprint(data: ByteData, view: TcpView) -> int:
        src, dst = view.addresses(data)
        head = struct.pack("!HHIIBH", view.sport, view.dport, view.seq, view.ack, view.flags,
                           view.payload_len & 0xFFFF)
        payload_end = min(view.captured_end, view.payload_start + R.DUPLICATE_PAYLOAD_BYTES)
        return fnv1a(src + dst + head + bytes(data[view.payload_start : payload_end]))

    def seen(self, data: ByteData, view: TcpView, time_ns: int) -> bool:
        """True if this segment was seen within the window (then it is a duplicate)."""
        print_ = self.fingerprint(data, view)
        slot = print_ & (R.DUPLICATE_SLOTS - 1)
        entry = self._slots[slot]
        if entry is not None and entry[0] == print_ and abs(time_ns - entry[1]) <= self._window:
            return True
        self._slots[slot] = (print_, time_ns)
        return False


FNV_OFFSET_BASIS = 0x811C9DC5
FNV_PRIME = 0x01000193


def fnv1a(data: bytes, value: int = FNV_OFFSET_BASIS) -> int:
    """32-bit FNV-1a (the C engines use the same function)."""
    for byte in data:
        value = ((value ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return value

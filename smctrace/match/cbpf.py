"""Classic BPF engine: the stateless part of the SMC-relevance rule, generated in Python.

Attached with SO_ATTACH_FILTER it needs no LLVM, no kernel headers and no CAP_BPF, and it
is ready in about a millisecond.  Being stateless it keeps exactly:

* the headers (up to the end of the TCP header) of a SYN or SYN-ACK that carries the SMC
  TCP option (kind 254, even length >= 6, ExID E2D4C3D9, anywhere among the options);
* headers + payload (capped) of a TCP segment whose payload starts with a plausible CLC
  header: eyecatcher SMCR/SMCD, type 1-4, version >= 1, length 28..652.

with the rule's limits on VLAN tags and IPv6 extension headers (:mod:`smctrace.match.rule`).
Everything else is dropped, so ordinary traffic never reaches user space.  What it cannot
follow without state is :data:`LIMITS`: a SYN-ACK without the option (fallback in the TCP
handshake), FIN/RST, the continuation segments of a CLC message split across segments
(also a split late Decline, and a header split before its 8th byte), and the first bytes of
data that ends the CLC phase.  Outgoing copies on ``lo`` are dropped (each frame passes
``lo`` twice) like in the eBPF program.

The module assembles the program for the kernel (:func:`attach_filter`) and prints it in
the ``tcpdump -d`` style (:func:`listing`).
"""

from __future__ import annotations

import ctypes
import functools
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from smctrace.frame import LinkLayer
from smctrace.match import rule

# Instruction classes, sizes, modes and operations (include/uapi/linux/filter.h, bpf_common.h).
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_RET, BPF_MISC = range(8)
BPF_W, BPF_H, BPF_B = 0x00, 0x08, 0x10
BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM, BPF_LEN, BPF_MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70,
)
BPF_NEG, BPF_MOD, BPF_XOR = 0x80, 0x90, 0xA0
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET = 0x00, 0x10, 0x20, 0x30, 0x40
BPF_K, BPF_X, BPF_A = 0x00, 0x08, 0x10
BPF_TAX, BPF_TXA = 0x00, 0x80
BPF_MEMWORDS = 16
BPF_MAXINSNS = 4096

# Ancillary data loads ("ld #pkttype" ...): absolute loads at these magic offsets.
SKF_AD_OFF = 0xFFFFF000  # -0x1000 as an unsigned 32-bit offset
SKF_AD_PKTTYPE = 4
SKF_AD_IFINDEX = 8
SKF_AD_HATYPE = 28

SO_ATTACH_FILTER = 26

SKF_AD_VLAN_TAG_PRESENT = 48

# What the stateless program cannot show (README, --help, the summary's notice).
LIMITS = ("stateless: no SYN-ACK without the option, no FIN/RST, no continuation of a CLC "
          "message split across segments")

# Scratch memory slots of the generated program.
M_L4 = 1  # offset of the TCP header
M_IP_END = 2  # end of the IP packet (bounded by the frame length)
M_PAYLOAD = 3  # offset of the TCP payload
M_CURSOR = 5  # option walk: offset of the current option
M_OPTLEN = 6  # option walk: its length
M_PAYLOAD_LEN = 7
M_NEXTHDR = 8  # IPv6: next header
M_EXTLEN = 9  # IPv6: length of the current extension header
M_KIND = 10  # option walk: current option kind
M_NEXT = 11  # option walk: offset of the option after the current one
M_TAGS = 12  # VLAN tags counted so far (one may have been taken out of band)

Instruction = tuple[int, int, int, int]  # (code, jt, jf, k) as in struct sock_filter


@dataclass(slots=True)
class _Op:
    """One instruction before assembly; jump targets are label names (None = next)."""

    code: int
    k: int = 0
    jt: str | None = None
    jf: str | None = None


@dataclass(slots=True)
class _Builder:
    """Collects instructions and labels; :meth:`assemble` resolves the jumps."""

    items: list[_Op | str] = field(default_factory=list)
    _unique: int = 0

    def label(self, name: str) -> None:
        self.items.append(name)

    def fresh(self, stem: str) -> str:
        self._unique += 1
        return f"{stem}_{self._unique}"

    def op(self, code: int, k: int = 0) -> None:
        self.items.append(_Op(code, k & 0xFFFFFFFF))

    def jump(self, op: int, k: int, jt: str | None, jf: str | None, src: int = BPF_K) -> None:
        self.items.append(_Op(BPF_JMP | op | src, k & 0xFFFFFFFF, jt, jf))

    def goto(self, target: str) -> None:
        self.items.append(_Op(BPF_JMP | BPF_JA, 0, target, None))

    # Shorthands for the instructions used below.
    def ld_abs(self, size: int, offset: int) -> None:
        self.op(BPF_LD | size | BPF_ABS, offset)

    def ld_ind(self, size: int, offset: int) -> None:
        self.op(BPF_LD | size | BPF_IND, offset)

    def ld_mem(self, slot: int) -> None:
        self.op(BPF_LD | BPF_MEM, slot)

    def ld_imm(self, value: int) -> None:
        self.op(BPF_LD | BPF_IMM, value)

    def ld_len(self) -> None:
        self.op(BPF_LD | BPF_W | BPF_LEN)

    def ldx_mem(self, slot: int) -> None:
        self.op(BPF_LDX | BPF_MEM, slot)

    def ldx_imm(self, value: int) -> None:
        self.op(BPF_LDX | BPF_IMM, value)

    def st(self, slot: int) -> None:
        self.op(BPF_ST, slot)

    def stx(self, slot: int) -> None:
        self.op(BPF_STX, slot)

    def alu(self, operation: int, value: int) -> None:
        self.op(BPF_ALU | operation | BPF_K, value)

    def alu_x(self, operation: int) -> None:
        self.op(BPF_ALU | operation | BPF_X)

    def tax(self) -> None:
        self.op(BPF_MISC | BPF_TAX)

    def txa(self) -> None:
        self.op(BPF_MISC | BPF_TXA)

    def ret_k(self, value: int) -> None:
        self.op(BPF_RET | BPF_K, value)

    def ret_a(self) -> None:
        self.op(BPF_RET | BPF_A)

    def assemble(self) -> list[Instruction]:
        """Resolve labels.  Conditional jumps reach at most 255 instructions forward; a
        farther target gets a trampoline (an unconditional ``ja``, which has a 32-bit
        offset) right after the jump.  Inserting trampolines moves other targets, so the
        layout is repeated until every jump fits (two or three rounds)."""
        items = list(self.items)
        while True:
            positions: dict[str, int] = {}
            count = 0
            for item in items:
                if isinstance(item, str):
                    positions[item] = count
                else:
                    count += 1
            relaxed: list[_Op | str] = []
            index = 0
            changed = False
            for item in items:
                relaxed.append(item)
                if isinstance(item, str):
                    continue
                here = index
                index += 1
                if item.code & 0x07 != BPF_JMP or item.code & 0xF0 == BPF_JA:
                    continue
                stubs: list[_Op | str] = []
                for attribute in ("jt", "jf"):
                    target = getattr(item, attribute)
                    if target is not None and positions[target] - here - 1 > 255:
                        stub = self.fresh("trampoline")
                        stubs += [stub, _Op(BPF_JMP | BPF_JA, 0, target, None)]
                        setattr(item, attribute, stub)
                if stubs:
                    changed = True
                    after = self.fresh("after")
                    # A branch that meant "next" must now skip the trampolines.
                    if item.jt is None:
                        item.jt = after
                    if item.jf is None:
                        item.jf = after
                    relaxed += [*stubs, after]
            items = relaxed
            if not changed:
                break
        program: list[Instruction] = []
        ops = [item for item in items if isinstance(item, _Op)]
        for index, op in enumerate(ops):
            if op.code & 0x07 == BPF_JMP and op.code & 0xF0 == BPF_JA:
                assert op.jt is not None
                program.append((op.code, 0, 0, positions[op.jt] - index - 1))
            elif op.code & 0x07 == BPF_JMP:
                jt = 0 if op.jt is None else positions[op.jt] - index - 1
                jf = 0 if op.jf is None else positions[op.jf] - index - 1
                program.append((op.code, jt, jf, op.k))
            else:
                program.append((op.code, 0, 0, op.k))
        return program


def _emit_link_layer(b: _Builder, link_layer: LinkLayer) -> None:
    """Leaves X = offset of the IP header and jumps to "ipv4" / "ipv6" (else "drop")."""
    if link_layer == LinkLayer.NONE:
        b.ldx_imm(0)
        b.ld_abs(BPF_B, 0)
        b.alu(BPF_RSH, 4)
        b.jump(BPF_JEQ, 4, "ipv4", None)
        b.jump(BPF_JEQ, 6, "ipv6", "drop")
        return
    # Ethernet, with VLAN tags still in the frame (QinQ inner tag, transmitted frames); a
    # tag taken out of band counts too, as on the wire.
    b.ld_abs(BPF_W, SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT)
    b.jump(BPF_JEQ, 0, None, "one_tag_out_of_band")
    b.ld_imm(0)
    b.goto("tags_counted")
    b.label("one_tag_out_of_band")
    b.ld_imm(1)
    b.label("tags_counted")
    b.st(M_TAGS)
    type_offset = 12
    for depth in range(rule.MAX_VLAN_TAGS + 1):
        b.ld_abs(BPF_H, type_offset)
        b.ldx_imm(type_offset + 2)
        tagged = f"vlan{depth + 1}"
        for tpid in rule.VLAN_TPIDS:
            b.jump(BPF_JEQ, tpid, tagged, None)
        b.jump(BPF_JEQ, rule.ETHERTYPE_IPV4, "ipv4", None)
        b.jump(BPF_JEQ, rule.ETHERTYPE_IPV6, "ipv6", "drop")
        b.label(tagged)
        b.ld_mem(M_TAGS)
        b.alu(BPF_ADD, 1)
        b.st(M_TAGS)
        b.jump(BPF_JGT, rule.MAX_VLAN_TAGS, "drop", None)
        type_offset += 4
    b.goto("drop")


def _emit_ip_end(b: _Builder, length_field: int, header_len: int, zero: str, done: str) -> None:
    """X = IP header offset.  M_IP_END = X + header_len + the 16-bit length at
    ``length_field``; a length of 0 (IPv4 GSO over 64 KiB, an IPv6 jumbogram or BIG TCP)
    makes the frame length count."""
    b.ld_ind(BPF_H, length_field)
    b.jump(BPF_JEQ, 0, zero, None)
    b.alu_x(BPF_ADD)
    if header_len:
        b.alu(BPF_ADD, header_len)
    b.st(M_IP_END)
    b.goto(done)
    b.label(zero)
    b.ld_len()
    b.st(M_IP_END)
    b.label(done)


def _emit_ipv4(b: _Builder) -> None:
    """X = IP header offset.  Stores M_L4 and M_IP_END, then goes to "tcp"."""
    b.label("ipv4")
    b.ld_ind(BPF_B, 0)
    b.alu(BPF_RSH, 4)
    b.jump(BPF_JEQ, 4, None, "drop")
    b.ld_ind(BPF_B, 9)
    b.jump(BPF_JEQ, rule.IPPROTO_TCP, None, "drop")
    b.ld_ind(BPF_H, 6)
    b.jump(BPF_JSET, 0x1FFF, "drop", None)  # non-first fragment: no TCP header here
    _emit_ip_end(b, 2, 0, "ipv4_gso", "ipv4_ihl")  # the total length includes the header
    b.ld_ind(BPF_B, 0)
    b.alu(BPF_AND, 0x0F)
    b.alu(BPF_LSH, 2)
    b.jump(BPF_JGE, 20, None, "drop")
    b.alu_x(BPF_ADD)
    b.st(M_L4)
    b.goto("tcp")


def _emit_ipv6(b: _Builder) -> None:
    """X = IP header offset.  Walks the rule's extension headers (at most its limit) to TCP."""
    b.label("ipv6")
    b.ld_ind(BPF_B, 0)
    b.alu(BPF_RSH, 4)
    b.jump(BPF_JEQ, 6, None, "drop")
    _emit_ip_end(b, 4, 40, "ipv6_jumbo", "ipv6_ext")  # the payload length excludes the header
    b.ld_ind(BPF_B, 6)
    b.st(M_NEXTHDR)
    b.txa()
    b.alu(BPF_ADD, 40)
    b.st(M_L4)
    for _ in range(rule.MAX_IPV6_EXT_HEADERS):
        generic, fragment, auth, advance = (b.fresh(n) for n in ("opt", "frag", "ah", "adv"))
        b.ld_mem(M_NEXTHDR)
        b.jump(BPF_JEQ, rule.IPPROTO_TCP, "tcp", None)
        b.ldx_mem(M_L4)
        for number in rule.IPV6_EXT_GENERIC:
            b.jump(BPF_JEQ, number, generic, None)
        b.jump(BPF_JEQ, rule.IPV6_EXT_FRAGMENT, fragment, None)
        b.jump(BPF_JEQ, rule.IPV6_EXT_AH, auth, "drop")  # ESP, no next header, ...: drop
        b.label(generic)
        b.ld_ind(BPF_B, 1)
        b.alu(BPF_ADD, 1)
        b.alu(BPF_LSH, 3)
        b.goto(advance)
        b.label(fragment)
        b.ld_ind(BPF_H, 2)
        b.jump(BPF_JSET, 0xFFF8, "drop", None)  # non-first fragment
        b.ld_imm(8)
        b.goto(advance)
        b.label(auth)
        b.ld_ind(BPF_B, 1)
        b.alu(BPF_ADD, 2)
        b.alu(BPF_LSH, 2)
        b.label(advance)
        b.st(M_EXTLEN)
        b.ld_ind(BPF_B, 0)
        b.st(M_NEXTHDR)
        b.ldx_mem(M_EXTLEN)
        b.ld_mem(M_L4)
        b.alu_x(BPF_ADD)
        b.st(M_L4)
        # every extension header is at least 8 bytes: the next one must fit
        b.ldx_mem(M_IP_END)
        b.alu(BPF_ADD, 8)
        b.jump(BPF_JGT, 0, "ipv6_short", None, src=BPF_X)
    # after the last extension header allowed, as when the next one cannot fit: TCP or drop
    b.label("ipv6_short")
    b.ld_mem(M_NEXTHDR)
    b.jump(BPF_JEQ, rule.IPPROTO_TCP, "tcp", "drop")


def _emit_tcp(b: _Builder) -> None:
    """Computes M_PAYLOAD and M_PAYLOAD_LEN; SYN -> "syn", otherwise -> "data"."""
    b.label("tcp")
    # Bound the IP end by the frame: Ethernet padding lies past the IP end, a cut frame
    # ends early.
    b.ldx_mem(M_IP_END)
    b.ld_len()
    b.jump(BPF_JGE, 0, "tcp_end_ok", None, src=BPF_X)
    b.st(M_IP_END)
    b.label("tcp_end_ok")
    b.ldx_mem(M_IP_END)
    b.ld_mem(M_L4)
    b.alu(BPF_ADD, 20)
    b.jump(BPF_JGT, 0, "drop", None, src=BPF_X)
    b.ldx_mem(M_L4)
    b.ld_ind(BPF_B, 12)
    b.alu(BPF_RSH, 4)
    b.alu(BPF_LSH, 2)
    b.jump(BPF_JGE, 20, None, "drop")
    b.alu_x(BPF_ADD)
    b.st(M_PAYLOAD)
    b.ldx_mem(M_IP_END)
    b.jump(BPF_JGT, 0, "drop", None, src=BPF_X)  # TCP header longer than the packet
    b.txa()
    b.ldx_mem(M_PAYLOAD)
    b.alu_x(BPF_SUB)
    b.st(M_PAYLOAD_LEN)
    b.ldx_mem(M_L4)
    b.ld_ind(BPF_B, 13)
    b.jump(BPF_JSET, rule.TCP_SYN, "syn", "data")


def _emit_option_walk(b: _Builder) -> None:
    """SYN / SYN-ACK: keep the headers iff an option is kind 254, len >= 6, ExID SMC.

    One option per step; 40 steps cover an option area of 40 single-byte NOPs.  Each step
    has its own ``ret`` instructions so that no branch needs a trampoline (conditional
    jumps reach only 255 instructions), which keeps the program near 1,500 instructions.
    """
    b.label("syn")
    b.ld_mem(M_L4)
    b.alu(BPF_ADD, 20)
    b.st(M_CURSOR)
    for _ in range(rule.TCP_MAX_OPTION_BYTES):
        nop, check, advance = b.fresh("nop"), b.fresh("exp"), b.fresh("advance")
        fail, keep, next_step = b.fresh("fail"), b.fresh("keep"), b.fresh("step")
        b.ld_mem(M_CURSOR)
        b.ldx_mem(M_PAYLOAD)
        b.jump(BPF_JGE, 0, fail, None, src=BPF_X)  # end of the option area
        b.tax()
        b.ld_ind(BPF_B, 0)
        b.jump(BPF_JEQ, 1, nop, None)
        b.jump(BPF_JEQ, 0, fail, None)  # end-of-option-list
        b.st(M_KIND)
        # The length byte: if the cursor is the last option byte this reads the first
        # payload byte, which the "option runs past the header" test below rejects.
        b.ld_ind(BPF_B, 1)
        b.jump(BPF_JGT, 1, None, fail)  # malformed length: stop like the kernel
        b.st(M_OPTLEN)
        b.alu_x(BPF_ADD)
        b.st(M_NEXT)
        b.ldx_mem(M_PAYLOAD)
        b.jump(BPF_JGT, 0, fail, None, src=BPF_X)  # option runs past the header
        b.ld_mem(M_KIND)
        b.jump(BPF_JEQ, rule.TCPOPT_EXP, None, advance)
        b.ld_mem(M_OPTLEN)
        b.jump(BPF_JGE, rule.SMC_OPTION_MIN_LEN, None, advance)
        b.jump(BPF_JSET, 1, advance, check)  # Linux wants the length even
        b.label(check)
        b.ldx_mem(M_CURSOR)
        b.ld_ind(BPF_W, 2)
        b.jump(BPF_JEQ, rule.SMC_OPTION_EXID, keep, advance)
        b.label(advance)
        b.ld_mem(M_NEXT)
        b.st(M_CURSOR)
        b.goto(next_step)
        b.label(keep)
        b.ld_mem(M_PAYLOAD)
        b.ret_a()
        b.label(fail)
        b.ret_k(0)
        b.label(nop)
        b.txa()
        b.alu(BPF_ADD, 1)
        b.st(M_CURSOR)
        b.label(next_step)
    b.ret_k(0)


def _emit_clc_payload(b: _Builder, snap_payload: int) -> None:
    """Payload starting with a plausible CLC header: keep headers + capped payload."""
    b.label("data")
    b.ld_mem(M_PAYLOAD_LEN)
    b.jump(BPF_JGE, rule.CLC_HEADER_LEN, None, "drop")
    b.ldx_mem(M_PAYLOAD)
    b.ld_ind(BPF_W, 0)
    b.jump(BPF_JEQ, rule.EYECATCHER_SMCR, "clc_type", None)
    b.jump(BPF_JEQ, rule.EYECATCHER_SMCD, "clc_type", "drop")
    b.label("clc_type")
    b.ld_ind(BPF_B, 4)
    b.jump(BPF_JGE, rule.CLC_TYPE_PROPOSAL, None, "drop")
    b.jump(BPF_JGT, rule.CLC_TYPE_DECLINE, "drop", None)
    b.ld_ind(BPF_H, 5)
    b.jump(BPF_JGE, rule.CLC_MIN_LEN, None, "drop")
    b.jump(BPF_JGT, rule.CLC_MAX_LEN, "drop", None)
    b.ld_ind(BPF_B, 7)
    b.alu(BPF_RSH, 4)
    b.jump(BPF_JGE, rule.CLC_VERSION_MIN, None, "drop")
    b.ld_mem(M_PAYLOAD_LEN)
    b.jump(BPF_JGT, snap_payload, None, "keep_payload")
    b.ld_imm(snap_payload)
    b.label("keep_payload")
    b.ldx_mem(M_PAYLOAD)
    b.alu_x(BPF_ADD)
    b.ret_a()


@functools.lru_cache(maxsize=8)
def cbpf_program(
    link_layer: LinkLayer = LinkLayer.ETHERNET, snap_payload: int = rule.PAYLOAD_CAP
) -> tuple[Instruction, ...]:
    """The classic-BPF filter as (code, jt, jf, k) tuples, for frames that start with an
    Ethernet header (SOCK_RAW on Ethernet-like devices) or with the IP header
    (``LinkLayer.NONE``: SOCK_DGRAM sockets, header-less devices, ``-i any``)."""
    b = _Builder()
    # Each frame passes lo twice; keep only the incoming copy.
    b.ld_abs(BPF_W, SKF_AD_OFF + SKF_AD_PKTTYPE)
    b.jump(BPF_JEQ, rule.PACKET_OUTGOING, None, "start")
    b.ld_abs(BPF_W, SKF_AD_OFF + SKF_AD_IFINDEX)
    b.jump(BPF_JEQ, rule.LOOPBACK_IFINDEX, "drop", "start")
    b.label("start")
    _emit_link_layer(b, link_layer)
    _emit_ipv4(b)
    _emit_ipv6(b)
    _emit_tcp(b)
    _emit_option_walk(b)
    _emit_clc_payload(b, snap_payload)
    b.label("drop")
    b.ret_k(0)
    program = b.assemble()
    if len(program) > BPF_MAXINSNS:
        raise ValueError(f"classic BPF program too long: {len(program)} instructions")
    return tuple(program)


def assemble(program: Sequence[Instruction]) -> bytes:
    """The program as an array of ``struct sock_filter`` (what the kernel reads)."""
    return b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in program)


class SockFprog:
    """A ``struct sock_fprog`` for setsockopt(SO_ATTACH_FILTER), owning its filter array."""

    def __init__(self, program: Sequence[Instruction]) -> None:
        raw = assemble(program)
        self._filters = ctypes.create_string_buffer(raw, len(raw))
        # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
        self.packed = struct.pack("@HP", len(program), ctypes.addressof(self._filters))


def attach_filter(sock: socket.socket, program: Sequence[Instruction]) -> None:
    """Attach ``program`` to ``sock`` with SO_ATTACH_FILTER."""
    fprog = SockFprog(program)
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog.packed)


_SIZE_SUFFIX = {BPF_W: "", BPF_H: "h", BPF_B: "b"}
_ALU_NAMES = {
    BPF_ADD: "add", BPF_SUB: "sub", BPF_MUL: "mul", BPF_DIV: "div", BPF_OR: "or",
    BPF_AND: "and", BPF_LSH: "lsh", BPF_RSH: "rsh", BPF_NEG: "neg", BPF_MOD: "mod",
    BPF_XOR: "xor",
}
_JMP_NAMES = {BPF_JEQ: "jeq", BPF_JGT: "jgt", BPF_JGE: "jge", BPF_JSET: "jset"}
_ANCILLARY = {SKF_AD_PKTTYPE: "#pkttype", SKF_AD_IFINDEX: "#ifidx", SKF_AD_HATYPE: "#hatype",
              SKF_AD_VLAN_TAG_PRESENT: "#vlan_avail"}


def _disassemble(index: int, insn: Instruction) -> str:
    code, jt, jf, k = insn
    cls = code & 0x07
    size = code & 0x18
    mode = code & 0xE0
    if cls == BPF_LD:
        if mode == BPF_ABS and k >= SKF_AD_OFF:
            return f"ld       {_ANCILLARY.get(k - SKF_AD_OFF, f'#ad{k - SKF_AD_OFF}')}"
        name = "ld" + _SIZE_SUFFIX[size]
        operand = {
            BPF_ABS: f"[{k}]", BPF_IND: f"[x + {k}]", BPF_MEM: f"M[{k}]",
            BPF_IMM: f"#{k:#x}", BPF_LEN: "#pktlen",
        }[mode]
        return f"{name:<8} {operand}"
    if cls == BPF_LDX:
        operand = {BPF_IMM: f"#{k:#x}", BPF_MEM: f"M[{k}]", BPF_LEN: "#pktlen",
                   BPF_MSH: f"4*([{k}]&0xf)"}[mode]
        return f"{'ldx' if mode != BPF_MSH else 'ldxb':<8} {operand}"
    if cls == BPF_ST:
        return f"st       M[{k}]"
    if cls == BPF_STX:
        return f"stx      M[{k}]"
    if cls == BPF_ALU:
        operand = "x" if code & BPF_X else f"#{k:#x}"
        return f"{_ALU_NAMES[code & 0xF0]:<8} {operand}"
    if cls == BPF_JMP:
        if code & 0xF0 == BPF_JA:
            return f"ja       {index + 1 + k}"
        operand = "x" if code & BPF_X else f"#{k:#x}"
        return (f"{_JMP_NAMES[code & 0xF0]:<8} {operand:<16} "
                f"jt {index + 1 + jt}\tjf {index + 1 + jf}")
    if cls == BPF_RET:
        return f"ret      {'a' if code & 0x18 == BPF_A else f'#{k}'}"
    return "tax" if code & 0xF8 == BPF_TAX else "txa"


def listing(program: Sequence[Instruction]) -> str:
    """The program in ``tcpdump -d`` style, one instruction per line."""
    return "\n".join(f"({i:03d}) {_disassemble(i, insn)}" for i, insn in enumerate(program))


__all__ = [
    "LIMITS",
    "Instruction",
    "SockFprog",
    "assemble",
    "attach_filter",
    "cbpf_program",
    "listing",
]

"""A classic-BPF interpreter, for tests: runs a program on a frame as the kernel does.

The kernel runs smctrace's classic-BPF program in the live tests (a veth pair); this
interpreter lets the case table and the mutation tests run it on many frames quickly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from smctrace.match.cbpf import (
    BPF_A,
    BPF_ABS,
    BPF_ADD,
    BPF_ALU,
    BPF_AND,
    BPF_B,
    BPF_DIV,
    BPF_H,
    BPF_IMM,
    BPF_IND,
    BPF_JA,
    BPF_JEQ,
    BPF_JGE,
    BPF_JGT,
    BPF_JMP,
    BPF_JSET,
    BPF_LD,
    BPF_LDX,
    BPF_LEN,
    BPF_LSH,
    BPF_MEM,
    BPF_MEMWORDS,
    BPF_MISC,
    BPF_MOD,
    BPF_MSH,
    BPF_MUL,
    BPF_NEG,
    BPF_OR,
    BPF_RET,
    BPF_RSH,
    BPF_ST,
    BPF_STX,
    BPF_SUB,
    BPF_TXA,
    BPF_W,
    BPF_X,
    SKF_AD_HATYPE,
    SKF_AD_IFINDEX,
    SKF_AD_OFF,
    SKF_AD_PKTTYPE,
    SKF_AD_VLAN_TAG_PRESENT,
    Instruction,
)


@dataclass(slots=True, frozen=True)
class PacketMeta:
    """What ancillary loads return when a program runs in user space."""

    pkttype: int = 0  # PACKET_HOST
    ifindex: int = 0
    hatype: int = 1  # ARPHRD_ETHER
    vlan_avail: int = 0  # a VLAN tag was taken out of the frame


class _OutOfBounds(Exception):
    pass


def _alu(operation: int, a: int, operand: int) -> int:
    """One 32-bit ALU operation of the interpreter (divisor already checked)."""
    if operation == BPF_ADD:
        result = a + operand
    elif operation == BPF_SUB:
        result = a - operand
    elif operation == BPF_MUL:
        result = a * operand
    elif operation == BPF_DIV:
        result = a // operand
    elif operation == BPF_MOD:
        result = a % operand
    elif operation == BPF_OR:
        result = a | operand
    elif operation == BPF_AND:
        result = a & operand
    elif operation == BPF_LSH:
        result = a << (operand & 31)
    elif operation == BPF_RSH:
        result = a >> (operand & 31)
    elif operation == BPF_NEG:
        result = -a
    else:
        result = a ^ operand
    return result & 0xFFFFFFFF


def run_program(
    program: Sequence[Instruction], packet: bytes, meta: PacketMeta | None = None
) -> int:
    """Run ``program`` on ``packet`` like the kernel does; returns the bytes kept.

    A load past the end of the packet ends the program with 0, as in the kernel.
    """
    meta = meta or PacketMeta()
    a = x = 0
    memory = [0] * BPF_MEMWORDS
    pc = 0
    length = len(packet)

    def load(offset: int, size: int) -> int:
        if offset < 0 or offset + size > length:
            raise _OutOfBounds
        return int.from_bytes(packet[offset : offset + size], "big")

    sizes = {BPF_W: 4, BPF_H: 2, BPF_B: 1}
    try:
        while pc < len(program):
            code, jt, jf, k = program[pc]
            pc += 1
            cls = code & 0x07
            mode = code & 0xE0
            if cls == BPF_LD:
                if mode == BPF_ABS and k >= SKF_AD_OFF:
                    a = {SKF_AD_PKTTYPE: meta.pkttype, SKF_AD_IFINDEX: meta.ifindex,
                         SKF_AD_HATYPE: meta.hatype,
                         SKF_AD_VLAN_TAG_PRESENT: meta.vlan_avail}[k - SKF_AD_OFF]
                elif mode == BPF_ABS:
                    a = load(k, sizes[code & 0x18])
                elif mode == BPF_IND:
                    a = load(x + k, sizes[code & 0x18])
                elif mode == BPF_MEM:
                    a = memory[k]
                elif mode == BPF_IMM:
                    a = k
                elif mode == BPF_LEN:
                    a = length
            elif cls == BPF_LDX:
                if mode == BPF_IMM:
                    x = k
                elif mode == BPF_MEM:
                    x = memory[k]
                elif mode == BPF_LEN:
                    x = length
                elif mode == BPF_MSH:
                    x = (load(k, 1) & 0x0F) * 4
            elif cls == BPF_ST:
                memory[k] = a
            elif cls == BPF_STX:
                memory[k] = x
            elif cls == BPF_ALU:
                operand = x if code & BPF_X else k
                operation = code & 0xF0
                if operation in (BPF_DIV, BPF_MOD) and operand == 0:
                    return 0
                a = _alu(operation, a, operand)
            elif cls == BPF_JMP:
                operation = code & 0xF0
                if operation == BPF_JA:
                    pc += k
                    continue
                operand = x if code & BPF_X else k
                taken = {
                    BPF_JEQ: a == operand, BPF_JGT: a > operand, BPF_JGE: a >= operand,
                    BPF_JSET: bool(a & operand),
                }[operation]
                pc += jt if taken else jf
            elif cls == BPF_RET:
                value = a if code & 0x18 == BPF_A else k
                return min(value, length)
            elif cls == BPF_MISC:
                if code & 0xF8 == BPF_TXA:
                    a = x
                else:
                    x = a
    except _OutOfBounds:
        return 0
    return 0


__all__ = ["PacketMeta", "run_program"]

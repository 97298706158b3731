"""A tiny classic BPF interpreter: just the instructions :mod:`auroral.gateway.bpf` emits, with the kernel's
rules (a load out of the packet ends the program with 0; jumps only forward; ``SKF_NET_OFF`` loads from
the network header, ``SKF_AD_OFF + SKF_AD_PKTTYPE`` the packet type) — to check programs on many inputs
without a kernel, next to the tests that run them in one."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from auroral.gateway import bpf

_SIZES = {0x00: 4, 0x08: 2, 0x10: 1}  # BPF_W, BPF_H, BPF_B


class _OutOfPacket(Exception):
    pass


def _load(buf: bytes, offset: int, size: int) -> int:
    if offset < 0 or offset + size > len(buf):
        raise _OutOfPacket
    return int.from_bytes(buf[offset:offset + size], "big")


def run(program: Sequence[bpf.Insn], packet: bytes, *, data_offset: int = 0, pkttype: int = 0) -> int:
    """The program's verdict (bytes to keep; 0 drops) for ``packet``, which starts at the IP header;
    plain offsets count from ``data_offset`` (a TCP socket's filter sees the segment from its TCP header)."""
    assert 0 < len(program) <= bpf.MAX_INSNS
    data = packet[data_offset:]
    a = x = 0
    pc = 0
    try:
        while True:
            code, jt, jf, k = program[pc]
            pc += 1
            cls = code & 0x07
            if code == bpf.RET_K:
                return k
            if code == bpf.LDX_B_MSH:
                x = (_load(data, k, 1) & 0x0F) * 4
            elif cls == 0x00:  # BPF_LD
                size, mode = _SIZES[code & 0x18], code & 0xE0
                if mode == 0x20:  # BPF_ABS
                    signed = struct.unpack("i", struct.pack("I", k & 0xFFFFFFFF))[0]
                    if signed == bpf.SKF_AD_OFF + bpf.SKF_AD_PKTTYPE:
                        a = pkttype
                    elif signed <= bpf.SKF_NET_OFF + 0xFFFF and signed >= bpf.SKF_NET_OFF:
                        a = _load(packet, signed - bpf.SKF_NET_OFF, size)
                    else:
                        a = _load(data, signed, size)
                elif mode == 0x40:  # BPF_IND
                    a = _load(data, x + k, size)
                else:
                    raise AssertionError(f"unsupported load {code:#x}")
            elif code == bpf.ALU_AND_K:
                a &= k
            elif code == bpf.JA:
                pc += k
            elif code in (bpf.JEQ_K, bpf.JGE_K, bpf.JSET_K):
                taken = {bpf.JEQ_K: a == k, bpf.JGE_K: a >= k, bpf.JSET_K: bool(a & k)}[code]
                pc += jt if taken else jf
            else:
                raise AssertionError(f"unsupported instruction {code:#x}")
            assert pc < len(program), "ran off the end of the program"
    except _OutOfPacket:
        return 0


def ipv4_tcp(src: int, dst: int, sport: int, dport: int, *, flags: int = 0x02, ihl: int = 5,
             frag: int = 0, proto: int = 6, seq: int = 1) -> bytes:
    """An IPv4 packet holding a TCP header (``flags``: SYN by default)."""
    options = b"\x01" * (ihl * 4 - 20)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0)
    total = ihl * 4 + len(tcp)
    ip = struct.pack("!BBHHHBBHII", 0x40 | ihl, 0, total, 0, frag, 64, proto, 0, src, dst) + options
    return ip + tcp


def listener_keeps(program: Sequence[bpf.Insn], src: int, dst: int = 0x7F000001) -> bool:
    """What a TCP listener's filter does with a SYN from ``src``: it sees the segment from its TCP header."""
    return run(program, ipv4_tcp(src, dst, 40000, 5432), data_offset=20) != 0

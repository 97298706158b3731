"""Classic BPF socket filters (``SO_ATTACH_FILTER``: no privilege needed): the two programs the gateway uses.

* :func:`source_filter`, for an IPv4 TCP listener: keep or drop a segment by its *source address*, from a
  sorted table of address ranges (a binary search, one comparison per level). Linux runs a listening
  socket's filter on every segment addressed to it before any TCP processing (``tcp_v4_rcv`` →
  ``tcp_filter``), the SYN and the handshake's final ACK included: a dropped SYN is never answered, so
  the client's handshake never completes and it sees a connect timeout — what a security group does. A
  socket accepted from the listener starts with the listener's filter as it was when the handshake
  completed (``sk_clone_lock`` copies the pointer): a later change of the listener's filter never touches
  it. The filter sees the segment from its TCP header on; the source address is read with the
  ``SKF_NET_OFF`` negative offset (byte 12 of the IPv4 header).
* :func:`syn_filter`, for an ``AF_PACKET``/``SOCK_DGRAM`` socket of IPv4 packets (which starts at the IP
  header): keep only incoming (``PACKET_HOST``) TCP SYNs without ACK to a set of listeners, so that the
  gateway sees the SYNs the listeners' filters drop (see :mod:`auroral.gateway.synfilter`).

A program is a list of instructions ``(code, jt, jf, k)``; conditional jumps reach at most 255
instructions ahead (the generator inserts ``ja`` trampolines) and a program has at most
:data:`MAX_INSNS` instructions (the kernel's ``BPF_MAXINSNS``).
"""

from __future__ import annotations

import ctypes
import itertools
import socket
import struct
from collections.abc import Sequence

Insn = tuple[int, int, int, int]

MAX_INSNS = 4096
SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>; SO_GET_FILTER has the same number
SO_DETACH_FILTER = 27
SKF_AD_OFF = -0x1000
SKF_AD_PKTTYPE = 4
SKF_NET_OFF = -0x100000
PACKET_HOST = 0
KEEP_ALL = 0xFFFFFFFF

# opcodes (<linux/filter.h>: class | size | mode, class | op | source)
LD_W_ABS = 0x20
LD_H_ABS = 0x28
LD_B_ABS = 0x30
LD_H_IND = 0x48
LD_B_IND = 0x50
LDX_B_MSH = 0xB1
ALU_AND_K = 0x54
JA = 0x05
JEQ_K = 0x15
JGE_K = 0x35
JSET_K = 0x45
RET_K = 0x06

_MAX_JUMP = 255


def ret(keep: bool | int) -> Insn:
    value = (KEEP_ALL if keep else 0) if isinstance(keep, bool) else keep
    return (RET_K, 0, 0, value)


def encode(program: Sequence[Insn]) -> bytes:
    return b"".join(struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF) for code, jt, jf, k in program)


def attach(sock: socket.socket, program: Sequence[Insn]) -> None:
    """Replace ``sock``'s filter (atomically, for the packets that follow)."""
    if not 0 < len(program) <= MAX_INSNS:
        raise ValueError(f"a classic BPF program has 1 to {MAX_INSNS} instructions, not {len(program)}")
    code = ctypes.create_string_buffer(encode(program))  # the kernel copies it during the call
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HP", len(program), ctypes.addressof(code)))


def detach(sock: socket.socket) -> bool:
    """Remove ``sock``'s filter; False if it had none."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
    except FileNotFoundError:  # ENOENT: no filter
        return False
    return True


# --- the source-address filter of a listener --------------------------------------------------


def source_filter(starts: Sequence[int], keep: Sequence[bool]) -> list[Insn]:
    """Keep the segments whose IPv4 source is in a kept range. Range ``i`` is ``[starts[i], starts[i+1])``
    (the last one ends at 2**32); ``starts[0]`` is 0 and ``starts`` increases. About two instructions
    per range."""
    if not starts or starts[0] != 0 or len(starts) != len(keep):
        raise ValueError("starts must begin at 0 and have one keep flag each")
    if any(b <= a for a, b in itertools.pairwise(starts)) or starts[-1] >= 1 << 32:
        raise ValueError("starts must increase and stay below 2**32")
    if len(starts) == 1:
        return [ret(keep[0])]
    return [(LD_W_ABS, 0, 0, SKF_NET_OFF + 12), *_tree(starts, keep, 0, len(starts) - 1)]


def _tree(starts: Sequence[int], keep: Sequence[bool], lo: int, hi: int) -> list[Insn]:
    """The search over ranges ``lo..hi`` (A holds the address): ``A >= starts[mid]`` goes right."""
    if lo == hi:
        return [ret(keep[lo])]
    mid = (lo + hi + 1) // 2
    left, right = _tree(starts, keep, lo, mid - 1), _tree(starts, keep, mid, hi)
    if len(left) <= _MAX_JUMP:
        return [(JGE_K, len(left), 0, starts[mid]), *left, *right]
    # too far for a conditional jump: true falls onto a ``ja`` over the left subtree
    return [(JGE_K, 0, 1, starts[mid]), (JA, 0, 0, len(left)), *left, *right]


def source_filter_size(ranges: int) -> int:
    """An upper bound of ``len(source_filter(...))`` for ``ranges`` ranges."""
    if ranges <= 1:
        return 1
    # one load, one jge per inner node, one ret per range, a ja at each node whose left side is long
    return 1 + (ranges - 1) + ranges + (ranges // 128 + 1)


# --- the SYN observer's filter ------------------------------------------------------------------

_SYN_KEEP = 128  # bytes: the IP header (at most 60) and the TCP header's first 20


def syn_filter(listeners: Sequence[tuple[int | None, int]]) -> list[Insn]:
    """For ``AF_PACKET``/``SOCK_DGRAM`` IPv4 packets: keep incoming TCP SYNs (SYN set, ACK clear) to one of
    ``listeners`` — ``(address, port)``, address None for any — whole fragments only. Drop everything
    else (an empty ``listeners`` drops everything)."""
    prog: list[Insn] = [
        (LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_PKTTYPE), (JEQ_K, 1, 0, PACKET_HOST), ret(False),
        (LD_B_ABS, 0, 0, 9), (JEQ_K, 1, 0, socket.IPPROTO_TCP), ret(False),
        (LD_H_ABS, 0, 0, 6), (JSET_K, 0, 1, 0x1FFF), ret(False),  # a later fragment: no TCP header
        (LDX_B_MSH, 0, 0, 0),  # X = IP header length
        (LD_B_IND, 0, 0, 13), (ALU_AND_K, 0, 0, 0x12), (JEQ_K, 1, 0, 0x02), ret(False),
    ]
    for address, port in dict.fromkeys(listeners):
        if address is None:
            prog += [(LD_H_IND, 0, 0, 2), (JEQ_K, 0, 1, port), ret(_SYN_KEEP)]
        else:
            prog += [(LD_H_IND, 0, 0, 2), (JEQ_K, 0, 3, port), (LD_W_ABS, 0, 0, 16), (JEQ_K, 0, 1, address),
                     ret(_SYN_KEEP)]
    prog.append(ret(False))
    if len(prog) > MAX_INSNS:  # that many listeners: keep every SYN, the reader sorts them out
        return [*prog[:14], ret(_SYN_KEEP)]
    return prog

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
    _check_ranges(starts, keep)
    if len(starts) == 1:
        return [ret(keep[0])]
    return [(LD_W_ABS, 0, 0, SKF_NET_OFF + 12), *_tree(starts, [KEEP_ALL if k else 0 for k in keep], 0,
                                                          len(starts) - 1)]


def _check_ranges(starts: Sequence[int], keep: Sequence[bool]) -> None:
    if not starts or starts[0] != 0 or len(starts) != len(keep):
        raise ValueError("starts must begin at 0 and have one keep flag each")
    if any(b <= a for a, b in itertools.pairwise(starts)) or starts[-1] >= 1 << 32:
        raise ValueError("starts must increase and stay below 2**32")


def _tree(starts: Sequence[int], values: Sequence[int], lo: int, hi: int) -> list[Insn]:
    """Return ``values[i]`` for the range ``i`` among ``lo..hi`` that holds A: ``A >= starts[mid]`` goes
    right."""
    if lo == hi:
        return [ret(values[lo])]
    mid = (lo + hi + 1) // 2
    left, right = _tree(starts, values, lo, mid - 1), _tree(starts, values, mid, hi)
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
Listener = tuple[int | None, int]  # (IPv4 address, None for any; port)
_HEADER: list[Insn] = [  # A = X = 0 at the start; ends with X = the IP header's length
    (LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_PKTTYPE), (JEQ_K, 1, 0, PACKET_HOST), ret(False),
    (LD_B_ABS, 0, 0, 9), (JEQ_K, 1, 0, socket.IPPROTO_TCP), ret(False),
    (LD_H_ABS, 0, 0, 6), (JSET_K, 0, 1, 0x1FFF), ret(False),  # a later fragment: no TCP header
    (LDX_B_MSH, 0, 0, 0),
    (LD_B_IND, 0, 0, 13), (ALU_AND_K, 0, 0, 0x12), (JEQ_K, 1, 0, 0x02), ret(False),  # SYN without ACK
]


def syn_filter(groups: Sequence[tuple[Sequence[Listener], Sequence[int], Sequence[bool]]]) -> list[Insn]:
    """For ``AF_PACKET``/``SOCK_DGRAM`` IPv4 packets (from the IP header on): keep the incoming TCP SYNs
    (SYN set, ACK clear; whole fragments only) to a listener of a group ``(listeners, starts, keep)``
    whose source address that group's ranges do *not* keep — the SYNs its listeners' filters drop, and
    only those: an admitted client's SYN never wakes the observer. Drop everything else (no groups: all).
    Too large a program for the kernel: the SYNs to any listener, whatever the source; too many listeners
    even for that: every SYN."""
    program = _syn_program(groups)
    if len(program) <= MAX_INSNS:
        return program
    everyone = [listener for listeners, _, _ in groups for listener in listeners]
    program = _syn_program([(everyone, (0,), (False,))])
    return program if len(program) <= MAX_INSNS else [*_HEADER, ret(_SYN_KEEP)]


def _syn_program(groups: Sequence[tuple[Sequence[Listener], Sequence[int], Sequence[bool]]]) -> list[Insn]:
    program = list(_HEADER)
    for listeners, starts, keep in groups:
        _check_ranges(starts, keep)
        if all(keep) or not listeners:
            continue
        values = [0 if k else _SYN_KEEP for k in keep]
        tree = [ret(values[0])] if len(starts) == 1 else [(LD_W_ABS, 0, 0, 12),
                                                          *_tree(starts, values, 0, len(starts) - 1)]
        checks: list[list[Insn]] = []
        for address, port in dict.fromkeys(listeners):
            if address is None:
                checks.append([(LD_H_IND, 0, 0, 2), (JEQ_K, 0, 1, port), (JA, 0, 0, 0)])
            else:
                checks.append([(LD_H_IND, 0, 0, 2), (JEQ_K, 0, 3, port), (LD_W_ABS, 0, 0, 16),
                               (JEQ_K, 0, 1, address), (JA, 0, 0, 0)])
        # each check ends with a ``ja`` to the tree, which follows the checks and a ``ja`` over it
        after = sum(len(c) for c in checks)
        for check in checks:
            after -= len(check)
            check[-1] = (JA, 0, 0, after + 1)
            program += check
        program += [(JA, 0, 0, len(tree)), *tree]
    program.append(ret(False))
    return program

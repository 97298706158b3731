"""The socket filters as programs: :func:`auroral.gateway.bpf.source_filter` agrees with its plan on any
address (run in the test interpreter, ``bpf_interp``), plans fit the kernel's limits, coarsening only ever
passes more, and the SYN observer's filter keeps exactly incoming SYNs to the listeners."""

from __future__ import annotations

import asyncio
import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auroral.gateway import bpf
from auroral.gateway.decision import SourceSpace, Verdict
from auroral.gateway.synfilter import MAX_RANGES, SPACE, SourcePlan, coarsen, compile_plan, merge, parse_syn

from .bpf_interp import ipv4_tcp, listener_keeps, run

LOOPBACK = int(ipaddress.IPv4Address("127.0.0.1"))


@st.composite
def plans(draw: st.DrawFn, max_ranges: int = 600) -> SourcePlan:
    bounds = draw(st.sets(st.integers(1, SPACE - 1), max_size=max_ranges - 1))
    starts = [0, *sorted(bounds)]
    keep = draw(st.lists(st.booleans(), min_size=len(starts), max_size=len(starts)))
    merged = merge(starts, keep)
    return SourcePlan(*merged)


def _probes(plan: SourcePlan, rnd: random.Random) -> list[int]:
    out = [0, SPACE - 1, *(rnd.randrange(SPACE) for _ in range(50))]
    for start in plan.starts:
        out += [s for s in (start - 1, start, start + 1) if 0 <= s < SPACE]
    return out


@settings(max_examples=60, deadline=None)
@given(plans(), st.randoms(use_true_random=False))
def test_the_program_agrees_with_its_plan_everywhere(plan: SourcePlan, rnd: random.Random) -> None:
    program = plan.program()
    assert len(program) <= bpf.source_filter_size(len(plan.starts)) <= bpf.MAX_INSNS
    for address in _probes(plan, rnd):
        assert listener_keeps(program, address) == plan.keeps(address), hex(address)


def test_the_largest_plan_fits_and_needs_trampolines() -> None:
    rnd = random.Random(7)
    starts = [0, *sorted(rnd.sample(range(1, SPACE), MAX_RANGES - 1))]
    plan = SourcePlan(tuple(starts), tuple(i % 2 == 0 for i in range(MAX_RANGES)))
    program = plan.program()
    assert len(program) <= bpf.MAX_INSNS
    assert any(code == bpf.JA for code, *_ in program)  # subtrees too far for an 8-bit jump
    for address in _probes(plan, rnd):
        assert listener_keeps(program, address) == plan.keeps(address)


def test_one_range_needs_no_load() -> None:
    assert bpf.source_filter([0], [True]) == [bpf.ret(True)]
    assert not listener_keeps(bpf.source_filter([0], [False]), LOOPBACK)
    with pytest.raises(ValueError):
        bpf.source_filter([1, 5], [True, False])
    with pytest.raises(ValueError):
        bpf.source_filter([0, 5, 5], [True, False, True])


@settings(max_examples=80, deadline=None)
@given(plans(max_ranges=200), st.integers(1, 200), st.randoms(use_true_random=False))
def test_coarsening_only_passes_more(plan: SourcePlan, limit: int, rnd: random.Random) -> None:
    starts, keep = coarsen(plan.starts, plan.keep, limit)
    coarse = SourcePlan(starts, keep)
    assert len(starts) <= max(limit, 1) or all(keep)
    assert merge(starts, keep) == (starts, keep)
    for address in _probes(plan, rnd):
        if plan.keeps(address):
            assert coarse.keeps(address)  # never drops what the exact plan keeps


def test_compile_plan_asks_decide_once_per_interval_and_merges() -> None:
    asked: list[str] = []
    denied = ipaddress.ip_network("127.0.0.0/24")
    closed = ipaddress.ip_network("127.0.1.0/24")

    def verdict(source: str) -> Verdict:
        asked.append(source)
        address = ipaddress.ip_address(source)
        if address in closed:
            return Verdict(False, "closed", drop_mode="close")
        return Verdict(address not in denied, "r")

    bounds = {int(n.network_address) for n in (denied, closed)} | {int(n.broadcast_address) + 1
                                                                    for n in (denied, closed)}
    plan = asyncio.run(compile_plan(SourceSpace(frozenset(bounds | {0, SPACE}), key="k"), verdict))
    assert asked == ["0.0.0.0", "127.0.0.0", "127.0.1.0", "127.0.2.0"]
    # "close" refusals are not dropped in the kernel: the gateway closes them after the handshake
    assert plan.starts == (0, int(denied.network_address), int(denied.broadcast_address) + 1)
    assert plan.keep == (True, False, True) and plan.key == "k" and plan.exact
    coarse = asyncio.run(compile_plan(SourceSpace(frozenset(bounds)), verdict, limit=1))
    assert coarse.keeps_all and not coarse.exact


# --- the SYN observer's filter -----------------------------------------------------------------------------

A, B = int(ipaddress.IPv4Address("127.0.0.1")), int(ipaddress.IPv4Address("127.0.5.9"))
SRC = int(ipaddress.IPv4Address("127.0.0.2"))
SYN_TABLE = [
    # packet, pkttype, kept
    (ipv4_tcp(SRC, A, 40000, 5432), 0, True),
    (ipv4_tcp(SRC, A, 40000, 5432, ihl=7), 0, True),  # IP options: the TCP header is further on
    (ipv4_tcp(SRC, B, 40000, 6000), 0, True),
    (ipv4_tcp(SRC, B, 40000, 7000), 0, True),  # the wildcard listener on 7000
    (ipv4_tcp(SRC, A, 40000, 5432), 4, False),  # PACKET_OUTGOING: the loopback's other copy
    (ipv4_tcp(SRC, A, 40000, 5432, flags=0x12), 0, False),  # SYN-ACK
    (ipv4_tcp(SRC, A, 40000, 5432, flags=0x10), 0, False),  # ACK
    (ipv4_tcp(SRC, A, 40000, 5433), 0, False),  # another port
    (ipv4_tcp(SRC, B, 40000, 5432), 0, False),  # another address
    (ipv4_tcp(SRC, A, 40000, 5432, proto=17), 0, False),  # not TCP
    (ipv4_tcp(SRC, A, 40000, 5432, frag=3), 0, False),  # a later fragment
]


EVERYONE = ((0,), (False,))  # ranges that keep no source: every SYN to these listeners is reported


@pytest.mark.parametrize(("packet", "pkttype", "kept"), SYN_TABLE)
def test_the_syn_filter(packet: bytes, pkttype: int, kept: bool) -> None:
    program = bpf.syn_filter([([(A, 5432), (B, 6000), (None, 7000)], *EVERYONE)])
    assert (run(program, packet, pkttype=pkttype) > 0) == kept
    assert run(bpf.syn_filter([]), packet, pkttype=pkttype) == 0


def test_the_syn_filter_reports_only_the_sources_a_listeners_plan_drops() -> None:
    denied = int(ipaddress.IPv4Address("127.0.0.2"))
    groups = [([(A, 5432), (None, 7000)], (0, denied, denied + 1), (True, False, True)),
              ([(B, 6000)], (0, denied), (True, False))]  # 127.0.0.2 and up refused
    program = bpf.syn_filter(groups)
    assert run(program, ipv4_tcp(denied, A, 1, 5432)) > 0
    assert run(program, ipv4_tcp(denied + 1, A, 1, 5432)) == 0  # admitted: the observer never sees it
    assert run(program, ipv4_tcp(denied - 1, A, 1, 7000)) == 0
    assert run(program, ipv4_tcp(denied + 5, B, 1, 6000)) > 0
    assert run(program, ipv4_tcp(denied - 1, B, 1, 6000)) == 0
    assert run(program, ipv4_tcp(denied + 5, B, 1, 5432)) == 0  # B:5432 is nobody's


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.lists(st.tuples(st.sampled_from([A, B, None]), st.integers(1, 4)), min_size=1,
                                   max_size=3), plans(max_ranges=60)), max_size=4),
       st.randoms(use_true_random=False))
def test_the_syn_filter_agrees_with_the_plans(drawn: list[tuple[list[tuple[int | None, int]], SourcePlan]],
                                               rnd: random.Random) -> None:
    # A port is one endpoint's (one listener's, or one wildcard's): the first group to name it gets it.
    owner: dict[int, SourcePlan] = {}
    groups: list[tuple[list[tuple[int | None, int]], SourcePlan]] = []
    for listeners, plan in drawn:
        mine = [(address, port) for address, port in listeners if owner.setdefault(port, plan) is plan]
        groups.append((mine, plan))
    program = bpf.syn_filter([(listeners, plan.starts, plan.keep) for listeners, plan in groups])
    for dst in (A, B):
        for port in (1, 2, 3, 4, 5):
            named = [plan for listeners, plan in groups for listener in listeners if listener in ((dst, port),
                                                                                                (None, port))]
            for _, plan in groups:
                for src in _probes(plan, rnd)[:20]:
                    expected = bool(named) and not named[0].keeps(src)
                    assert (run(program, ipv4_tcp(src, dst, 9, port)) > 0) == expected


def test_too_large_a_program_falls_back_to_every_syn_to_the_listeners() -> None:
    rnd = random.Random(3)
    starts = (0, *sorted(rnd.sample(range(1, SPACE), 999)))
    keep = tuple(i % 2 == 0 for i in range(1000))
    groups = [([(A + i, 5432)], starts, keep) for i in range(4)]  # 4 x ~2000 instructions
    program = bpf.syn_filter(groups)
    assert len(program) <= bpf.MAX_INSNS
    assert run(program, ipv4_tcp(SRC, A + 3, 1, 5432)) > 0  # whatever the source
    assert run(program, ipv4_tcp(SRC, A + 4, 1, 5432)) == 0
    many = bpf.syn_filter([([(A + i, 5432) for i in range(1000)], *EVERYONE)])
    assert len(many) <= bpf.MAX_INSNS
    assert run(many, ipv4_tcp(SRC, B, 1, 2)) > 0  # too many listeners even for that: every SYN
    assert run(many, ipv4_tcp(SRC, B, 1, 2, flags=0x10)) == 0


def test_parse_syn() -> None:
    syn = parse_syn(ipv4_tcp(SRC, A, 40001, 5432, ihl=6, seq=77))
    assert syn is not None
    assert (syn.src, syn.sport, syn.dst, syn.dport, syn.seq, syn.length) == ("127.0.0.2", 40001, "127.0.0.1", 5432,
                                                                            77, 44)
    assert parse_syn(b"\x45" + bytes(10)) is None
    assert parse_syn(b"\x60" + bytes(60)) is None  # IPv6

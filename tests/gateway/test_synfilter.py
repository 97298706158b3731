"""Refused clients never complete the TCP handshake (real sockets, this kernel): an endpoint whose config
says where its ``decide`` changes its mind (``source_space``) gets a socket filter on its listener that
drops the refused sources' SYNs; the SYN observer writes their REJECT flow records; a rule change applies
to the next connection once the owner refreshes the filters, while established connections stay."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import psycopg
import pytest

from auroral.gateway import ConnectionInfo, Verdict, bpf
from auroral.gateway.decision import SourceSpace
from auroral.gateway.flows import FlowRecord
from auroral.gateway.synfilter import SourcePlan

from .bpf_interp import listener_keeps
from .conftest import APP_PASSWORD, GatewayThread, Postgres, endpoints, running_gateway

Open = Callable[..., tuple[str, int]]
Outcome = Literal["connected", "timeout", "refused"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the SYN observer needs CAP_NET_RAW (root)")


class Rules:
    """A toy security group: the sources it admits, by network; ``drop`` for the refused ones."""

    def __init__(self, *nets: str, drop: Literal["timeout", "close"] = "timeout") -> None:
        self.nets = [ipaddress.ip_network(n) for n in nets]
        self.drop: Literal["timeout", "close"] = drop
        self.version = 0
        self.asked = 0

    def set(self, *nets: str) -> None:
        self.nets = [ipaddress.ip_network(n) for n in nets]
        self.version += 1

    def decide(self, info: ConnectionInfo) -> Verdict:
        self.asked += 1
        address = ipaddress.ip_address(info.peer_ip)
        for net in self.nets:
            if address in net:
                return Verdict(True, f"admitted by {net}", "eni-0aa")
        return Verdict(False, f"no rule admits {address}", "eni-0bb", self.drop)

    def space(self) -> SourceSpace:
        bounds = {int(n.network_address) for n in self.nets} | {int(n.broadcast_address) + 1 for n in self.nets}
        return SourceSpace(frozenset(bounds), ("rules", self.version, self.drop))


def tcp_connect(port: int, source: str, timeout: float = 1.0) -> tuple[Outcome, socket.socket | None]:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
    except TimeoutError:
        s.close()
        return "timeout", None
    except ConnectionRefusedError:
        s.close()
        return "refused", None
    return "connected", s


def outcome(port: int, source: str, timeout: float = 1.0) -> Outcome:
    result, sock = tcp_connect(port, source, timeout)
    if sock is not None:
        sock.close()
    return result


def rejects(gwt: GatewayThread, eid: str, source: str, wait: float = 3.0) -> list[FlowRecord]:
    deadline = time.monotonic() + wait
    while True:
        found = [r for r in gwt.flows.recent(1000, endpoint=eid) if r.action == "REJECT" and r.srcaddr == source]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture(scope="module")
def sgw() -> Iterator[GatewayThread]:
    with running_gateway("auroral-syn-") as t:
        yield t


@pytest.fixture
def sep(sgw: GatewayThread, postgres: Postgres) -> Iterator[Open]:
    with endpoints(sgw, postgres) as open_:
        yield open_


def open_with(sep: Open, rules: Rules) -> tuple[str, int]:
    return sep(decide=rules.decide, source_space=rules.space)


def test_a_refused_source_times_out_in_connect_and_gets_one_reject_record(sgw: GatewayThread, sep: Open) -> None:
    rules = Rules("127.0.0.1/32")
    eid, port = open_with(sep, rules)
    assert sgw.stats()["syn_filter"]["active"]
    started = time.monotonic()
    assert outcome(port, "127.0.0.2", timeout=2.5) == "timeout"  # the SYN and two retransmissions
    assert time.monotonic() - started >= 2.4
    assert outcome(port, "127.0.0.1") == "connected"
    [record] = rejects(sgw, eid, "127.0.0.2")  # one record, retransmissions not counted again
    assert record.reason == "no rule admits 127.0.0.2" and record.interface_id == "eni-0bb"
    assert (record.phase, record.packets, record.bytes, record.dstport) == ("open", 1, 60, 5432)
    assert record.dstaddr == "127.0.0.1" and record.srcport > 0
    stats = sgw.stats()
    assert stats["endpoints"][eid]["held"] == 0 and stats["held"] == 0  # nothing was accepted for it
    assert stats["endpoints"][eid]["rejected"] == 1
    assert stats["syn_filter"]["filtered_endpoints"] >= 1


def test_psql_reports_a_connect_timeout(sgw: GatewayThread, sep: Open) -> None:
    rules = Rules("127.0.0.9/32")  # psql connects from 127.0.0.1: refused
    eid, port = open_with(sep, rules)
    started = time.monotonic()
    out = subprocess.run(["psql", f"host=127.0.0.1 port={port} user=app dbname=postgres connect_timeout=2",
                          "-XAtc", "SELECT 1"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PGPASSWORD": APP_PASSWORD})
    assert out.returncode != 0 and "timeout expired" in out.stderr, out.stderr
    assert "server closed the connection" not in out.stderr
    assert time.monotonic() - started >= 1.9
    assert rejects(sgw, eid, "127.0.0.1")


def test_rule_changes_apply_to_the_next_connection_and_established_ones_stay(sgw: GatewayThread,
                                                                              sep: Open) -> None:
    rules = Rules()
    eid, port = open_with(sep, rules)
    assert outcome(port, "127.0.0.1", timeout=0.5) == "timeout"
    rules.set("127.0.0.0/24")
    sgw.call(sgw.gw.refresh_filters())  # what the API does before answering the authorize call
    established = psycopg.connect(host="127.0.0.1", port=port, user="app", password=APP_PASSWORD,
                                  dbname="postgres", sslmode="disable", autocommit=True, connect_timeout=5)
    try:
        rules.set()  # revoked
        sgw.call(sgw.gw.refresh_filters())
        assert outcome(port, "127.0.0.1", timeout=0.5) == "timeout"
        assert established.execute("SELECT 41 + 1").fetchone() == (42,)  # stateful: admitted before
        rules.set("127.0.0.1/32")
        sgw.call(sgw.gw.refresh_filters())
        assert outcome(port, "127.0.0.1", timeout=0.5) == "connected"
        assert outcome(port, "127.0.0.2", timeout=0.5) == "timeout"
    finally:
        established.close()
    sgw.wait_idle(eid)


def test_a_refresh_scheduled_from_another_thread(sgw: GatewayThread, sep: Open) -> None:
    """A change made outside an API call (the EC2 state's change listeners call this from any thread)."""
    rules = Rules("127.0.0.1/32")
    _, port = open_with(sep, rules)
    rules.set("127.0.0.2/32")
    sgw.gw.schedule_refresh()
    deadline = time.monotonic() + 5
    while outcome(port, "127.0.0.2", timeout=0.3) != "connected":
        assert time.monotonic() < deadline, "the scheduled refresh never ran"
    assert outcome(port, "127.0.0.1", timeout=0.3) == "timeout"


def test_an_unchanged_key_is_not_recompiled(sgw: GatewayThread, sep: Open) -> None:
    rules = Rules("127.0.0.1/32")
    open_with(sep, rules)
    asked = rules.asked
    sgw.call(sgw.gw.refresh_filters())
    assert rules.asked == asked
    rules.set("127.0.0.0/8")
    sgw.call(sgw.gw.refresh_filters())
    assert rules.asked > asked


def test_endpoints_with_equal_keys_share_one_compilation(sgw: GatewayThread, sep: Open) -> None:
    rules = Rules("127.0.0.1/32")
    ports = [open_with(sep, rules)[1] for _ in range(3)]  # a cluster's instances: the same inputs
    rules.set("127.0.0.2/32")
    asked = rules.asked
    sgw.call(sgw.gw.refresh_filters())
    assert rules.asked - asked == 3  # the intervals 0.0.0.0, 127.0.0.2, 127.0.0.3: once for all three
    for port in ports:
        assert outcome(port, "127.0.0.2", timeout=0.5) == "connected"
        assert outcome(port, "127.0.0.1", timeout=0.5) == "timeout"


def test_close_mode_refusals_complete_the_handshake_and_are_closed(sgw: GatewayThread, sep: Open) -> None:
    rules = Rules("127.0.0.1/32", drop="close")
    eid, port = open_with(sep, rules)
    result, sock = tcp_connect(port, "127.0.0.2")
    assert result == "connected" and sock is not None
    with sock:
        sock.settimeout(3)
        assert sock.recv(10) == b""
    [record] = [r for r in rejects(sgw, eid, "127.0.0.2") if r.phase == "open"]
    assert record.reason == "no rule admits 127.0.0.2" and record.packets == 0  # the accept-time record


def test_a_broken_space_hook_leaves_the_decision_to_accept(sgw: GatewayThread, sep: Open) -> None:
    rules = Rules("127.0.0.1/32")

    def broken() -> SourceSpace:
        raise RuntimeError("no network view")

    eid, port = sep(decide=rules.decide, source_space=broken)
    result, sock = tcp_connect(port, "127.0.0.2")
    assert result == "connected" and sock is not None  # accepted, then held silently
    with sock:
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)
    assert rejects(sgw, eid, "127.0.0.2")[0].packets == 0


def test_without_the_observer_refusals_are_held_as_before(postgres: Postgres) -> None:
    with running_gateway("auroral-nosyn-", syn_filter=False) as gwt, endpoints(gwt, postgres) as open_:
        rules = Rules("127.0.0.1/32")
        eid, port = open_with(open_, rules)
        assert not gwt.stats()["syn_filter"]["active"]
        result, sock = tcp_connect(port, "127.0.0.2")
        assert result == "connected" and sock is not None
        with sock:
            sock.settimeout(0.5)
            with pytest.raises(TimeoutError):
                sock.recv(1)
            assert gwt.stats()["endpoints"][eid]["held"] == 1
        assert rejects(gwt, eid, "127.0.0.2")


def test_the_kernel_runs_the_program_as_the_interpreter_does() -> None:
    """A listener with a many-range filter (trampolines included) drops exactly the refused sources."""
    base = int(ipaddress.IPv4Address("127.0.0.0"))
    starts = [0, *range(base + 1, base + 1 + 1500)]  # 127.0.0.1 .. 127.0.5.220: one address each
    plan = SourcePlan(tuple(starts), tuple(i % 2 == 0 for i in range(len(starts))))  # odd offsets refused
    program = plan.program()
    assert any(code == bpf.JA for code, *_ in program)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        bpf.attach(listener, program)
        port = listener.getsockname()[1]
        for offset in (1, 2, 3, 254, 255, 256, 1000, 1499, 1500, 1501, 3000):
            source = str(ipaddress.IPv4Address(base + offset))
            expected: Any = "connected" if plan.keeps(base + offset) else "timeout"
            assert listener_keeps(program, base + offset) == (expected == "connected")
            assert outcome(port, source, timeout=0.3) == expected, source
            if expected == "connected":
                conn, _ = listener.accept()
                assert bpf.detach(conn)  # the accepted socket started with the listener's filter
                assert not bpf.detach(conn)
                conn.close()


def test_the_listener_filter_also_sees_the_handshakes_final_ack() -> None:
    """Why a rule change between a client's SYN and its ACK leaves that client hanging (a documented limit):
    a filter that keeps only segments with SYN set lets the client's connect() return but never lets the
    server finish the handshake; without the filter the retransmitted SYN-ACK's ACK completes it."""
    with socket.socket() as listener, socket.socket() as client:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        bpf.attach(listener, [(bpf.LD_B_ABS, 0, 0, 13), (bpf.JSET_K, 0, 1, 0x02), bpf.ret(True), bpf.ret(False)])
        client.settimeout(2)
        client.connect(listener.getsockname())
        listener.settimeout(1.5)
        with pytest.raises(TimeoutError):
            listener.accept()
        assert bpf.detach(listener)
        listener.settimeout(5)
        conn, _ = listener.accept()
        conn.close()

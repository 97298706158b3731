"""The DNS server over real UDP and TCP sockets, queried with dnspython as a stub resolver would."""

from __future__ import annotations

import socket
import struct

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from auroral.dns.records import CNAME, A
from tests.dns.conftest import Running

ID = "c7tj4example"
W = f"db1.cluster-{ID}.us-east-1.rds.amazonaws.com"
RO = f"db1.cluster-ro-{ID}.us-east-1.rds.amazonaws.com"
I1 = f"inst1.{ID}.us-east-1.rds.amazonaws.com"
I2 = f"inst2.{ID}.us-east-1.rds.amazonaws.com"
CN = f"inst9.{ID}.cn-north-1.rds.amazonaws.com.cn"


@pytest.fixture
def srv(dns_server: Running) -> Running:
    dns_server.zone.replace("rds:123456789012:us-east-1", {
        W: [CNAME(I1)], RO: [CNAME(I1), CNAME(I2)], I1: [A("127.0.0.5")], I2: [A("127.0.0.6")],
    })
    dns_server.zone.replace("rds:123456789012:cn-north-1", {CN: [A("127.0.0.9")]})
    return dns_server


def udp(srv: Running, name: str, rdtype: str = "A", **kw: object) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, rdtype, **kw), srv.host, port=srv.port, timeout=3)  # type: ignore[arg-type]


def chain(msg: dns.message.Message) -> list[tuple[str, str, int, list[str]]]:
    # targets lowercased: name compression may point into the question's spelling (DNS is case-insensitive)
    return [(r.name.to_text(), dns.rdatatype.to_text(r.rdtype), r.ttl, [x.to_text().lower() for x in r])
            for r in msg.answer]


def test_instance_a_record(srv: Running) -> None:
    msg = udp(srv, I1)
    assert msg.rcode() == dns.rcode.NOERROR
    assert msg.flags & dns.flags.AA and not msg.flags & dns.flags.RA
    assert chain(msg) == [(I1 + ".", "A", 5, ["127.0.0.5"])]


def test_cluster_endpoint_cname_chain_in_one_answer(srv: Running) -> None:
    msg = udp(srv, W.upper())  # names are case-insensitive; the question's spelling is kept
    assert msg.question[0].name.to_text() == W.upper() + "."
    assert [(o.lower(), *rest) for o, *rest in chain(msg)] == [
        (W + ".", "CNAME", 5, [I1 + "."]), (I1 + ".", "A", 5, ["127.0.0.5"])]
    only_cname = udp(srv, W, "CNAME")
    assert chain(only_cname) == [(W + ".", "CNAME", 5, [I1 + "."])]


def test_reader_endpoint_rotates_over_the_readers(srv: Running) -> None:
    targets = [chain(udp(srv, RO))[0][3][0] for _ in range(4)]
    assert set(targets) == {I1 + ".", I2 + "."}
    assert targets[0] != targets[1] and targets[0] == targets[2]
    assert all(len(chain(udp(srv, RO))) == 2 for _ in range(2))


def test_several_addresses_rotate(srv: Running) -> None:
    srv.zone.replace("multi", {f"multi.{ID}.us-east-1.rds.amazonaws.com": [A("127.0.0.1"), A("127.0.0.2"), A("127.0.0.3")]})
    orders = [chain(udp(srv, f"multi.{ID}.us-east-1.rds.amazonaws.com"))[0][3] for _ in range(3)]
    assert sorted(orders[0]) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert len({o[0] for o in orders}) == 3


def test_unknown_names_nxdomain_others_refused(srv: Running) -> None:
    for name in (f"nope.{ID}.us-east-1.rds.amazonaws.com", "rds.amazonaws.com.cn.x.rds.amazonaws.com.cn"):
        msg = udp(srv, name)
        assert msg.rcode() == dns.rcode.NXDOMAIN and msg.answer == []
        assert msg.authority and msg.authority[0].rdtype == dns.rdatatype.SOA
    assert chain(udp(srv, CN)) == [(CN + ".", "A", 5, ["127.0.0.9"])]
    for name in ("example.com", "amazonaws.com", "xrds.amazonaws.com", "localhost"):
        msg = udp(srv, name)
        assert msg.rcode() == dns.rcode.REFUSED and msg.answer == [] and not msg.flags & dns.flags.RA


def test_existing_name_other_type_and_empty_non_terminal_are_nodata(srv: Running) -> None:
    for name, rdtype in ((I1, "AAAA"), (f"{ID}.us-east-1.rds.amazonaws.com", "A"), ("rds.amazonaws.com", "A")):
        msg = udp(srv, name, rdtype)
        assert msg.rcode() == dns.rcode.NOERROR and msg.answer == [], name


def test_changes_are_served_at_once(srv: Running) -> None:
    srv.zone.replace("rds:123456789012:us-east-1", {W: [CNAME(I2)], I2: [A("127.0.0.6")]})
    assert chain(udp(srv, W))[-1][3] == ["127.0.0.6"]
    srv.zone.remove("rds:123456789012:us-east-1")
    assert udp(srv, W).rcode() == dns.rcode.NXDOMAIN


def test_tcp_and_truncation(srv: Running) -> None:
    big = f"big.{ID}.us-east-1.rds.amazonaws.com"
    srv.zone.replace("big", {big: [A(f"127.0.1.{i}") for i in range(1, 101)]})
    small = udp(srv, big, use_edns=False)
    assert small.flags & dns.flags.TC
    full = dns.query.tcp(dns.message.make_query(big, "A"), srv.host, port=srv.port, timeout=3)
    assert not full.flags & dns.flags.TC and len(full.answer[0]) == 100
    # several queries on one connection
    with socket.create_connection((srv.host, srv.port), timeout=3) as conn:
        for name in (W, I2):
            wire = dns.message.make_query(name, "A").to_wire()
            conn.sendall(struct.pack("!H", len(wire)) + wire)
            reply = dns.query.receive_tcp(conn, expiration=None)[0]
            assert reply.answer and reply.answer[-1].rdtype == dns.rdatatype.A


@pytest.mark.parametrize("garbage", [
    b"", b"\x00", b"\x12\x34", b"\xff" * 12, b"\x00" * 11,
    # a header that promises a question and an answer that are not there
    b"\xab\xcd\x01\x00\x00\x01\x00\x01\x00\x00\x00\x00",
    # a question whose name is a compression pointer to itself
    b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
    # a label longer than the packet
    b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc",
    bytes(range(256)) * 4,
], ids=lambda b: f"{len(b)}-bytes-{bytes(b[:4]).hex()}")
def test_malformed_packets_are_dropped_and_the_server_goes_on(srv: Running, garbage: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        s.sendto(garbage, (srv.host, srv.port))
        with pytest.raises(TimeoutError):
            s.recv(4096)
    with socket.create_connection((srv.host, srv.port), timeout=3) as conn:
        conn.sendall(struct.pack("!H", len(garbage)) + garbage)
        conn.settimeout(3)
        assert conn.recv(4096) == b""  # closed without a reply
    assert chain(udp(srv, I1))[-1][3] == ["127.0.0.5"]


def test_responses_are_not_answered_and_other_opcodes_are_notimp(srv: Running) -> None:
    reply = udp(srv, I1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        s.sendto(reply.to_wire(), (srv.host, srv.port))  # a reflected answer would loop
        with pytest.raises(TimeoutError):
            s.recv(4096)
    notify = dns.message.make_query(I1, "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    answer = dns.query.udp(notify, srv.host, port=srv.port, timeout=3)
    assert answer.rcode() == dns.rcode.NOTIMP


def test_idle_and_half_messages_do_not_hold_the_server(srv: Running) -> None:
    idle = [socket.create_connection((srv.host, srv.port), timeout=3) for _ in range(8)]
    try:
        idle[0].sendall(b"\x00\x40abc")  # promises 64 bytes, sends 3
        msg = dns.query.tcp(dns.message.make_query(I2, "A"), srv.host, port=srv.port, timeout=3)
        assert chain(msg)[-1][3] == ["127.0.0.6"]
    finally:
        for conn in idle:
            conn.close()


def test_formerr_for_no_or_several_questions_and_refused_for_other_classes(srv: Running) -> None:
    one = dns.message.make_query(I1, "A").to_wire()
    none = one[:4] + b"\x00\x00" + one[6:12]
    two = one[:4] + b"\x00\x02" + one[6:12] + one[12:] * 2
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        for wire in (none, two):
            s.sendto(wire, (srv.host, srv.port))
            assert dns.message.from_wire(s.recv(4096)).rcode() == dns.rcode.FORMERR
    chaos = dns.query.udp(dns.message.make_query("version.bind", "TXT", "CH"), srv.host, port=srv.port, timeout=3)
    assert chaos.rcode() == dns.rcode.REFUSED

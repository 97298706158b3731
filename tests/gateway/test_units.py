"""Unit tests: SCRAM (RFC 7677 vector), startup parsing, error framing on the wire, TLS files, flow log."""

from __future__ import annotations

import json
import socket
import ssl
import stat
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from auroral.gateway import FlowLog, FlowRecord, TlsMaterial
from auroral.gateway import startup as pg
from auroral.gateway.scram import ScramClient
from tests.gateway.conftest import GatewayThread, recv_message, startup_packet


def test_scram_rfc7677_vector() -> None:
    c = ScramClient("pencil", nonce="rOprNGfwEbeRWgbNEkqO", user="user")
    assert c.first_message() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    final = c.final_message(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                            b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    assert final == (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    c.verify_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    with pytest.raises(pg.ProtocolViolation):
        c.verify_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")


def test_parse_startup() -> None:
    raw = startup_packet(user="alice", database="db1", application_name="psql")
    info = pg.parse_startup(raw[4:])
    assert (info.user, info.database, info.application_name, info.raw) == ("alice", "db1", "psql", raw)
    assert pg.parse_startup(startup_packet(user="bob")[4:]).database == "bob"
    with pytest.raises(pg.ProtocolViolation, match="no PostgreSQL user name"):
        pg.parse_startup(startup_packet(database="x")[4:])


def test_force_ssl_error_fields_on_the_wire(gwt: GatewayThread, endpoint: Callable[..., tuple[str, int]]) -> None:
    _, port = endpoint(force_ssl=lambda: True)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(startup_packet(user="u1", database="d1"))
        kind, body = recv_message(s)
        assert s.recv(10) == b""
    assert kind == b"E"
    assert pg.parse_error_fields(body) == {
        "S": "FATAL", "V": "FATAL", "C": "28000", "R": "ClientAuthentication",
        "M": 'no pg_hba.conf entry for host "127.0.0.1", user "u1", database "d1", no encryption'}


def test_tls_material(tmp_path: Path) -> None:
    tls = TlsMaterial.load_or_create(tmp_path / "tls")
    assert stat.S_IMODE((tmp_path / "tls" / "ca.key").stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(tls.bundle_path.read_bytes())
    assert "rds-ca-rsa2048-g1" in ca.subject.rfc4514_string()
    cert_path, key_path = tls.server_certificate(["db.cluster-xyz.local"], ["127.0.0.1"])
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["db.cluster-xyz.local"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert cert.issuer == ca.subject
    # reloaded: same CA, same cached certificate, same context object
    again = TlsMaterial.load_or_create(tmp_path / "tls")
    assert again.ca_pem == tls.ca_pem
    assert again.server_certificate(["db.cluster-xyz.local"], ["127.0.0.1"]) == (cert_path, key_path)
    assert cert_path.read_bytes() == again.server_certificate(["db.cluster-xyz.local"], ["127.0.0.1"])[0].read_bytes()
    ctx = tls.server_context(["db.cluster-xyz.local"], ["127.0.0.1"])
    assert ctx is tls.server_context(["db.cluster-xyz.local"], ["127.0.0.1"])
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def _rec(i: int, endpoint: str = "e1") -> FlowRecord:
    return FlowRecord(account_id="123456789012", interface_id="-", srcaddr="10.0.0.1", dstaddr="10.0.0.2",
                      srcport=40000 + i, dstport=5432, start=1, end=2, action="REJECT", reason="r",
                      endpoint_id=endpoint, connection_id=i, phase="open")


def test_flow_log_ring_file_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    log = FlowLog(path, capacity=5, max_file_bytes=2000)
    for i in range(12):
        log.record(_rec(i, "e1" if i % 2 else "e2"))
    assert [r.connection_id for r in log.recent(10)] == [7, 8, 9, 10, 11]
    assert [r.connection_id for r in log.recent(2, endpoint="e1")] == [9, 11]
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    assert {"version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
            "packets", "bytes", "start", "end", "action", "log-status", "reason", "endpoint-id"} <= first.keys()
    assert path.stat().st_size <= 2000 and (tmp_path / "flows.jsonl.1").exists()
    assert _rec(1).line() == "2 123456789012 - 10.0.0.1 10.0.0.2 40001 5432 6 0 0 1 2 REJECT OK"


def test_startup_packet_limits() -> None:
    assert pg.MIN_STARTUP_PACKET == 8 and pg.MAX_STARTUP_PACKET == 10000
    assert pg.error_response("08P01", "x")[:1] == b"E"
    assert struct.unpack("!I", pg.auth_request(3)[1:5])[0] == 8


def test_upstream_startup_speaks_for_the_client() -> None:
    from auroral.gateway.startup import parse_startup, upstream_startup

    body = struct.pack("!I", 196608) + b"\x00".join(
        [b"user", b"u1", b"database", b"d1", b"AURORAL.client", b"203.0.113.9 1", b"application_name", b"app", b"", b""])
    rebuilt = upstream_startup(parse_startup(body), "10.0.1.10 5555 TLSv1.3 TLS_AES_256_GCM_SHA384 256")
    assert struct.unpack("!I", rebuilt[:4])[0] == len(rebuilt)
    again = parse_startup(rebuilt[4:])
    assert again.params == {"user": "u1", "database": "d1", "application_name": "app",
                            "auroral.client": "10.0.1.10 5555 TLSv1.3 TLS_AES_256_GCM_SHA384 256"}
    # the endpoint address the client reached (inet_server_addr()); a client's own auroral.server is dropped
    body = struct.pack("!I", 196608) + b"\x00".join(
        [b"user", b"u1", b"auroral.server", b"203.0.113.9 1", b"", b""])
    again = parse_startup(upstream_startup(parse_startup(body), "10.0.1.10 5555", "10.0.0.5 5432")[4:])
    assert again.params == {"user": "u1", "auroral.client": "10.0.1.10 5555", "auroral.server": "10.0.0.5 5432"}


def test_names_postgresql_would_truncate_and_reserved_users_on_the_wire(
        gwt: GatewayThread, endpoint: Callable[..., tuple[str, int]]) -> None:
    """Refused before any hook runs (IAM or not) and before the server is reached: a name PostgreSQL would
    cut to 63 bytes, and the users the endpoint never logs in."""
    asked: list[str] = []

    def authenticate(startup: pg.StartupInfo, tls: bool, peer_ip: str) -> None:
        asked.append(startup.user)

    _, port = endpoint(authenticate=authenticate, reserved_users=frozenset({"rdsadmin"}),
                       force_ssl=lambda: True)
    u64, d64 = "u" * 64, "d" * 64
    cases = [
        ({"user": u64, "database": "postgres"}, "28000", "ProcessStartupPacket",
         f'role name "{u64}" is too long (PostgreSQL allows at most 63 bytes)'),
        ({"user": "é" * 32}, "28000", "ProcessStartupPacket",  # 64 bytes; the database defaults to the user
         f'role name "{"é" * 32}" is too long (PostgreSQL allows at most 63 bytes)'),
        ({"user": "u1", "database": d64}, "28000", "ProcessStartupPacket",
         f'database name "{d64}" is too long (PostgreSQL allows at most 63 bytes)'),
        ({"user": "rdsadmin", "database": "postgres"}, "28000", "ClientAuthentication",
         'pg_hba.conf rejects connection for host "127.0.0.1", user "rdsadmin", database "postgres", no encryption'),
    ]
    for params, code, routine, text in cases:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(startup_packet(**params))
            kind, body = recv_message(s)
            assert s.recv(10) == b""
        assert kind == b"E"
        assert pg.parse_error_fields(body) == {"S": "FATAL", "V": "FATAL", "C": code, "R": routine, "M": text}
    assert asked == []
    # 63 bytes, and a name that is only like a reserved one, go on (here to the force_ssl refusal)
    for user in ("u" * 63, "RDSADMIN"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(startup_packet(user=user, database="d" * 63))
            kind, body = recv_message(s)
        assert "no encryption" in pg.parse_error_fields(body)["M"]

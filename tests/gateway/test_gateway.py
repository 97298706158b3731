"""End-to-end tests of the endpoint gateway against a real PostgreSQL, with psycopg, psql and raw sockets."""

from __future__ import annotations

import gc
import os
import resource
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from auroral.gateway import AuthPlan, ConnectionInfo, StartupInfo, Verdict
from tests.gateway.conftest import (
    APP_PASSWORD,
    IAM_DB_PASSWORD,
    GatewayThread,
    Postgres,
    query_message,
    raw_login,
    recv_message,
    startup_packet,
)

Open = Callable[..., tuple[str, int]]


def connect(port: int, *, user: str = "app", password: str = APP_PASSWORD, sslmode: str = "disable",
            **kw: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(host="127.0.0.1", port=port, user=user, password=password, dbname="postgres",
                           sslmode=sslmode, autocommit=True, connect_timeout=kw.pop("connect_timeout", 10), **kw)


def select_one(port: int, **kw: Any) -> Any:
    with connect(port, **kw) as c:
        row = c.execute("SELECT current_user, 40 + 2").fetchone()
        assert row is not None
        return row


def psql(port: int, conninfo: str, sql: str, password: str = APP_PASSWORD) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}
    return subprocess.run(["psql", f"host=127.0.0.1 port={port} user=app dbname=postgres {conninfo}", "-XAtc", sql],
                          capture_output=True, text=True, env=env, timeout=30)


def test_relay_with_password_auth_and_flow_records(gwt: GatewayThread, endpoint: Open) -> None:
    eid, port = endpoint()
    assert select_one(port) == ("app", 42)
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "app"'):
        connect(port, password="wrong")
    gwt.wait_idle(eid)
    recs = gwt.flows.recent(10, endpoint=eid)
    assert {r.action for r in recs} == {"ACCEPT"}
    closed = [r for r in recs if r.phase == "close"]
    assert closed and closed[0].bytes > 0 and closed[0].bytes_out > 0
    assert closed[0].dstport == 5432 and closed[0].srcaddr == "127.0.0.1" and closed[0].version == 2
    assert f'"endpoint-id":"{eid}"' in (gwt.data_dir / "flows.jsonl").read_text()


def test_tls_verify_full_with_psql_and_psycopg(gwt: GatewayThread, endpoint: Open) -> None:
    eid, port = endpoint()
    bundle = gwt.tls.bundle_path
    # by IP address (IP SAN)
    out = psql(port, f"sslmode=verify-full sslrootcert={bundle}", "SELECT 1")
    assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr
    # by endpoint name (DNS SAN), connecting to the address
    name = f"{eid}.us-east-1.rds.local"
    with psycopg.connect(host=name, hostaddr="127.0.0.1", port=port, user="app", password=APP_PASSWORD,
                         dbname="postgres", sslmode="verify-full", sslrootcert=str(bundle)) as c:
        assert c.pgconn.ssl_in_use
        assert c.execute("SELECT 1").fetchone() == (1,)
    # a name the certificate does not carry fails verification
    with pytest.raises(psycopg.OperationalError, match="does not match host name"):
        psycopg.connect(host="other.example", hostaddr="127.0.0.1", port=port, user="app",
                        password=APP_PASSWORD, dbname="postgres", sslmode="verify-full", sslrootcert=str(bundle))


def test_force_ssl_refuses_plaintext(gwt: GatewayThread, endpoint: Open) -> None:
    eid, port = endpoint(force_ssl=lambda: True)
    expected = 'no pg_hba.conf entry for host "127.0.0.1", user "app", database "postgres", no encryption'
    with pytest.raises(psycopg.OperationalError) as info:
        connect(port)
    assert expected in str(info.value)
    assert info.value.sqlstate in (None, "28000")  # libpq does not always expose it for startup errors
    out = psql(port, "sslmode=disable", "SELECT 1")
    assert out.returncode != 0 and f"FATAL:  {expected}" in out.stderr
    assert select_one(port, sslmode="require") == ("app", 42)
    out = psql(port, "sslmode=require", "SELECT 1")
    assert out.returncode == 0, out.stderr
    gwt.wait_idle(eid)


def test_denied_connection_times_out_and_logs_reject(gwt: GatewayThread, endpoint: Open) -> None:
    allow = {"on": True}

    def decide(info: ConnectionInfo) -> Verdict:
        if allow["on"]:
            return Verdict(True, "sg-0abc: tcp 5432 from 127.0.0.0/8", interface_id="eni-0123")
        return Verdict(False, f"no security group rule admits {info.peer_ip}", interface_id="eni-0123")

    eid, port = endpoint(decide=decide)
    established = connect(port)
    allow["on"] = False  # a rule change: established connections survive (stateful)
    t0 = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="timeout"):
        connect(port, connect_timeout=2)
    assert time.monotonic() - t0 >= 1.9
    assert established.execute("SELECT 7").fetchone() == (7,)
    established.close()
    rejects = [r for r in gwt.flows.recent(20, endpoint=eid) if r.action == "REJECT"]
    assert rejects and rejects[0].reason == "no security group rule admits 127.0.0.1"
    assert rejects[0].interface_id == "eni-0123"
    gc.collect()  # the exception's traceback kept psycopg's connection (and its socket) alive
    gwt.wait_idle(eid)  # the client gave up: the held socket is released
    assert gwt.stats()["held"] == 0


def test_denied_close_mode_closes_at_once(gwt: GatewayThread, endpoint: Open) -> None:
    async def decide(info: ConnectionInfo) -> Verdict:
        return Verdict(False, "blackhole route", drop_mode="close")

    eid, port = endpoint(decide=decide)
    t0 = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        connect(port, connect_timeout=5)
    assert time.monotonic() - t0 < 1.5
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        assert s.recv(10) == b""  # nothing written, just closed
    gwt.wait_idle(eid)


def test_silent_client_is_closed_after_startup_timeout(gwt: GatewayThread, endpoint: Open) -> None:
    eid, port = endpoint(startup_timeout=1.0)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        assert select_one(port) == ("app", 42)  # others keep working meanwhile
        t0 = time.monotonic()
        assert s.recv(10) == b""
        assert 0.3 < time.monotonic() - t0 < 3
    gwt.wait_idle(eid)


@pytest.mark.parametrize("payload", [
    struct.pack("!I", 4),                                   # length below 8
    struct.pack("!II", 20000, 196608),                      # length above 10000
    struct.pack("!II", 8, 12345678),                        # unknown request code
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                   # not PostgreSQL at all
    struct.pack("!II", 8, 80877103) + b"\x16\x03\x01garbage-not-a-client-hello" * 4,  # SSLRequest + early data
    struct.pack("!I", 12) + struct.pack("!I", 196608) + b"x\0y\0",  # params without terminator
])
def test_garbage_is_closed_cleanly(gwt: GatewayThread, endpoint: Open, payload: bytes) -> None:
    eid, port = endpoint()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        assert data in (b"", b"S") or data.startswith(b"E")
    assert select_one(port) == ("app", 42)
    gwt.wait_idle(eid)


def test_tls_garbage_after_ssl_request(gwt: GatewayThread, endpoint: Open) -> None:
    eid, port = endpoint()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack("!II", 8, 80877103))
        assert s.recv(1) == b"S"
        s.sendall(b"\x16\x03\x01\x00\x05hello" + os.urandom(300))
        while s.recv(4096):
            pass
    assert select_one(port, sslmode="require") == ("app", 42)
    gwt.wait_idle(eid)


def test_gssenc_request_is_declined(gwt: GatewayThread, endpoint: Open) -> None:
    eid, port = endpoint()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack("!II", 8, 80877104))
        assert s.recv(1) == b"N"
        s.sendall(struct.pack("!II", 8, 80877103))
        assert s.recv(1) == b"S"
    gwt.wait_idle(eid)


def test_cancel_request_is_forwarded(gwt: GatewayThread, endpoint: Open) -> None:
    eid, port = endpoint()
    with connect(port) as c:
        # cancel_safe: the blocking PQcancel would hold the GIL the in-process gateway needs
        timer = threading.Timer(0.5, c.cancel_safe)
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("SELECT pg_sleep(20)")
        assert time.monotonic() - t0 < 5
    gwt.wait_idle(eid)


def _idle_from(source: str, port: int) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def test_thousand_idle_connections(gwt: GatewayThread, endpoint: Open) -> None:
    """Up to a thousand idle connections (as many as the handshake limits take: they never send a byte),
    spread over loopback addresses within each one's share, and the gateway still serves."""
    limits = gwt.gw.limits
    count = min(1000, limits.max_handshakes - 10)
    per_source = limits.max_handshakes_per_source
    eid, port = endpoint(startup_timeout=60.0)
    idle = [_idle_from(f"127.0.3.{n // per_source + 1}", port) for n in range(count)]
    try:
        deadline = time.monotonic() + 10
        while gwt.stats()["endpoints"][eid]["connections"] < count:
            assert time.monotonic() < deadline, gwt.stats()
            time.sleep(0.05)
        for _ in range(5):
            assert select_one(port) == ("app", 42)
        with connect(port, sslmode="require") as c:
            assert c.execute("SELECT count(*) FROM generate_series(1, 1000)").fetchone() == (1000,)
    finally:
        for s in idle:
            s.close()
    gwt.wait_idle(eid)


def test_client_vanishing_mid_query_leaks_nothing(gwt: GatewayThread, endpoint: Open, postgres: Postgres) -> None:
    eid, port = endpoint()
    s = raw_login(port)
    s.sendall(query_message("SELECT repeat('x', 200) FROM generate_series(1, 5000000)"))
    assert recv_message(s)[0] in (b"T", b"D")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, like a crash
    s.close()
    gwt.wait_idle(eid)
    with postgres.connect() as c:  # the backend goes away too
        deadline = time.monotonic() + 10
        while c.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'rawuser'").fetchone() != (0,):
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_backpressure_bounds_gateway_buffers(gwt: GatewayThread, endpoint: Open) -> None:
    eid, port = endpoint()
    s = raw_login(port, rcvbuf=16384)
    s.sendall(query_message("SELECT repeat('x', 1000) FROM generate_series(1, 2000000)"))  # ~2 GB of rows
    peak = 0
    for _ in range(20):
        time.sleep(0.1)
        peak = max(peak, gwt.stats()["buffered_bytes"])
    assert peak < 2 * 1024 * 1024, peak  # high water (256 KiB) + at most one read per direction
    assert gwt.stats()["endpoints"][eid]["relaying"] == 1
    # the client reads again: the stream resumes
    got = 0
    while got < 10_000_000:
        got += len(s.recv(1 << 20))
    s.close()
    gwt.wait_idle(eid)


def _iam_hook(user_is_iam: str) -> Callable[[StartupInfo, bool, str], Any]:
    async def verify(token: str) -> bool:
        return token == "good-token"

    async def authenticate(startup: StartupInfo, tls: bool, peer_ip: str) -> AuthPlan | None:
        if startup.user != user_is_iam:
            return None
        return AuthPlan(kind="iam", verify=verify, db_password=IAM_DB_PASSWORD)

    return authenticate


def test_iam_authentication(gwt: GatewayThread, endpoint: Open) -> None:
    eid, port = endpoint(authenticate=_iam_hook("iamuser"))
    with connect(port, user="iamuser", password="good-token", sslmode="require") as c:
        assert c.execute("SELECT current_user").fetchone() == ("iamuser",)
        assert c.info.parameter_status("server_version")
        assert c.info.backend_pid > 0
    with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "iamuser"'):
        connect(port, user="iamuser", password="bad-token", sslmode="require")
    with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "iamuser"'):
        connect(port, user="iamuser", password="good-token", sslmode="disable")
    # other users are untouched by the hook
    assert select_one(port, sslmode="require") == ("app", 42)
    out = subprocess.run(["psql", f"host=127.0.0.1 port={port} user=iamuser dbname=postgres sslmode=require",
                          "-XAtc", "SELECT current_user"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PGPASSWORD": "good-token"})
    assert out.stdout.strip() == "iamuser", out.stderr
    gwt.wait_idle(eid)


def test_iam_upstream_password_wrong_is_reported(gwt: GatewayThread, endpoint: Open) -> None:
    async def authenticate(startup: StartupInfo, tls: bool, peer_ip: str) -> AuthPlan:
        async def verify(token: str) -> bool:
            return True
        return AuthPlan(kind="iam", verify=verify, db_password="not-the-password")

    eid, port = endpoint(authenticate=authenticate)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(port, user="iamuser", password="any", sslmode="require")
    gwt.wait_idle(eid)


def test_update_target_and_unreachable_socket(gwt: GatewayThread, endpoint: Open, postgres: Postgres) -> None:
    eid, port = endpoint()
    established = connect(port)
    gwt.call(gwt.gw.update(eid, target_socket=postgres.socket_dir / ".s.PGSQL.1"))
    with pytest.raises(psycopg.OperationalError, match="not accepting connections"):
        connect(port)
    assert established.execute("SELECT 1").fetchone() == (1,)
    established.close()
    gwt.call(gwt.gw.update(eid, target_socket=postgres.socket))
    assert select_one(port) == ("app", 42)
    gwt.wait_idle(eid)


def test_close_drops_connections(gwt: GatewayThread, postgres: Postgres, endpoint: Open) -> None:
    eid, port = endpoint()
    c = connect(port)
    gwt.call(gwt.gw.close(eid, drop_connections=True))
    with pytest.raises(psycopg.OperationalError):
        c.execute("SELECT 1")
    c.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert eid not in gwt.stats()["endpoints"]


def test_plaintext_sent_after_an_ssl_request_is_never_read_as_a_startup(gwt: GatewayThread, endpoint: Open) -> None:
    """An SSLRequest with a StartupMessage behind it in the same write (a man in the middle injecting
    plaintext, CVE-2021-23214's shape): the connection is closed before any authentication, on both
    relays (the Python one answers 'S' first, then sees the buffered bytes and closes)."""
    eid, port = endpoint()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack("!II", 8, 80877103) + startup_packet(user="rawuser", database="postgres"))
        received = b""
        while chunk := s.recv(4096):
            received += chunk
        assert received in (b"", b"S")
    gwt.wait_idle(eid)


def test_clients_reset_before_their_accept_leave_the_listener_serving(gwt: GatewayThread, endpoint: Open) -> None:
    eid, port = endpoint()
    for _ in range(50):  # queued in the backlog, then reset: accept() returns them already dead
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    assert select_one(port, sslmode="require") == ("app", 42)
    gwt.wait_idle(eid)


def test_out_of_descriptors_pauses_accepting_then_serves(gwt: GatewayThread, endpoint: Open,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """accept() failing with EMFILE leaves the listener readable: the gateway stops accepting for a
    second (as asyncio does) instead of spinning, then serves the client that waited in the backlog."""
    eid, port = endpoint()
    caplog.set_level("ERROR", logger="auroral.gateway.listener")
    client = socket.socket()
    client.settimeout(15)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(n) for n in os.listdir("/proc/self/fd"))
    fillers = []  # every free descriptor number below the new limit taken, so accept() finds none
    while (fd := os.open(os.devnull, os.O_RDONLY)) < highest:
        fillers.append(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, (fd, hard))
    os.close(fd)
    try:
        client.connect(("127.0.0.1", port))  # completes in the kernel's backlog
        deadline = time.monotonic() + 5
        while not any("cannot accept" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the accept did not fail"
            time.sleep(0.01)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for fd in fillers:
            os.close(fd)
    with client:
        client.sendall(startup_packet(user="rawuser", database="postgres"))
        kind, body = recv_message(client)  # served after the pause: the server asks for the password
        assert kind == b"R" and body[:4] == struct.pack("!I", 3), (kind, body)
    assert select_one(port) == ("app", 42)
    gwt.wait_idle(eid)

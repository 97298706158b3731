"""Direct TLS negotiation (libpq 17+ ``sslnegotiation=direct``): the Python relay on the default asyncio loop and
on uvloop, and the native relay (which then does the handshake and the ALPN check itself)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.gateway.conftest import (
    APP_PASSWORD,
    RAW_PASSWORD,
    GatewayThread,
    Postgres,
    endpoints,
    native_relay,
    recv_message,
    running_gateway,
    startup_packet,
)

Open = Callable[..., tuple[str, int]]

pytestmark = pytest.mark.skipif(psycopg.pq.version() < 170000, reason="libpq 17+ needed for sslnegotiation=direct")


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


@pytest.fixture(scope="module", params=["asyncio", "uvloop", "native"])
def lgwt(request: pytest.FixtureRequest) -> Iterator[GatewayThread]:
    native = request.param == "native"
    with running_gateway("auroral-gw-direct-", relay=native_relay() if native else None,
                         loop=_new_loop("uvloop" if native else request.param)) as t:
        yield t


@pytest.fixture
def ep(lgwt: GatewayThread, postgres: Postgres) -> Iterator[Callable[..., tuple[str, int]]]:
    with endpoints(lgwt, postgres) as open_:
        yield open_


def connect(port: int, **kw: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(host="127.0.0.1", port=port, user="app", password=APP_PASSWORD, dbname="postgres",
                           autocommit=True, connect_timeout=10, **kw)


def test_direct_tls_require(lgwt: GatewayThread, ep: Open) -> None:
    eid, port = ep(force_ssl=lambda: True)
    with connect(port, sslmode="require", sslnegotiation="direct") as c:
        assert c.pgconn.ssl_in_use
        assert c.execute("SELECT 1").fetchone() == (1,)
        assert c.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() in ((False,), None)
    lgwt.wait_idle(eid)


def test_direct_tls_verify_full(lgwt: GatewayThread, ep: Open) -> None:
    eid, port = ep()
    bundle = str(lgwt.tls.bundle_path)
    with connect(port, sslmode="verify-full", sslrootcert=bundle, sslnegotiation="direct") as c:
        assert c.pgconn.ssl_in_use
        assert c.execute("SELECT 40 + 2").fetchone() == (42,)
    with psycopg.connect(host=f"{eid}.us-east-1.rds.local", hostaddr="127.0.0.1", port=port, user="app",
                         password=APP_PASSWORD, dbname="postgres", sslmode="verify-full", sslrootcert=bundle,
                         sslnegotiation="direct", connect_timeout=10) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
    lgwt.wait_idle(eid)


def test_classic_paths_still_work(lgwt: GatewayThread, ep: Open) -> None:
    eid, port = ep()
    with connect(port, sslmode="require", sslnegotiation="postgres") as c:
        assert c.pgconn.ssl_in_use
        assert c.execute("SELECT 1").fetchone() == (1,)
    with connect(port, sslmode="disable") as c:
        assert not c.pgconn.ssl_in_use
        assert c.execute("SELECT 1").fetchone() == (1,)
    lgwt.wait_idle(eid)


def _tls_client(alpn: list[str] | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    return ctx


def test_direct_tls_requires_alpn(lgwt: GatewayThread, ep: Open) -> None:
    eid, port = ep()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            _tls_client(None).wrap_socket(raw) as s:
        kind, body = recv_message(s)
        assert kind == b"E" and b"ALPN" in body
        assert s.recv(4096) == b""
    # with ALPN: a StartupMessage inside TLS, no SSLRequest
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            _tls_client(["postgresql"]).wrap_socket(raw) as s:
        assert s.selected_alpn_protocol() == "postgresql"
        s.sendall(startup_packet(user="rawuser", database="postgres"))
        kind, body = recv_message(s)
        assert kind == b"R" and body[:4] == b"\0\0\0\3"  # cleartext password
        pw = RAW_PASSWORD.encode() + b"\0"
        s.sendall(b"p" + (len(pw) + 4).to_bytes(4, "big") + pw)
        while (kind := recv_message(s)[0]) != b"Z":
            assert kind != b"E"
    # an SSLRequest inside direct TLS is a protocol violation
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            _tls_client(["postgresql"]).wrap_socket(raw) as s:
        s.sendall((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))
        assert s.recv(4096) == b""
    lgwt.wait_idle(eid)


@pytest.mark.parametrize("payload", [
    b"\x16",
    b"\x16\x03\x01\x00\x05hello" + bytes(range(256)),
    b"\x16garbage-that-is-not-tls" * 20,
], ids=["one-byte", "bad-record", "not-tls"])
def test_tls_like_garbage_is_closed_cleanly(lgwt: GatewayThread, ep: Open, payload: bytes) -> None:
    eid, port = ep()
    with connect(port, sslmode="require", sslnegotiation="direct") as other:
        with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
            s.sendall(payload)
            if payload == b"\x16":
                s.shutdown(socket.SHUT_WR)
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
        assert other.execute("SELECT 1").fetchone() == (1,)
    with connect(port, sslmode="require", sslnegotiation="direct") as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
    lgwt.wait_idle(eid)


def test_close_while_waiting_for_the_first_byte(lgwt: GatewayThread, ep: Open) -> None:
    eid, port = ep()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        deadline = 50
        while lgwt.stats()["endpoints"][eid]["connections"] == 0 and deadline:
            deadline -= 1
            time.sleep(0.05)
        lgwt.call(lgwt.gw.close(eid))
        with contextlib.suppress(ConnectionResetError):
            assert s.recv(4096) == b""
    _, port2 = ep()
    with connect(port2, sslmode="require", sslnegotiation="direct") as c:
        assert c.execute("SELECT 1").fetchone() == (1,)

"""Direct TLS negotiation (libpq 17+ ``sslnegotiation=direct``): the Python relay on the default asyncio loop and
on uvloop, and the native relay (which then does the handshake and the ALPN check itself)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from auroral.gateway import EndpointConfig, Gateway
from tests.gateway.conftest import (
    APP_PASSWORD,
    RAW_PASSWORD,
    GatewayThread,
    Postgres,
    native_relay,
    recv_message,
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
    data = Path(tempfile.mkdtemp(prefix="auroral-gw-direct-"))
    native = request.param == "native"
    t = GatewayThread(data, loop=_new_loop("uvloop" if native else request.param))
    relay = native_relay() if native else None

    async def make() -> Gateway:
        return Gateway(t.tls, t.flows, startup_timeout=10.0, hold_timeout=30.0, relay=relay)

    t.gateway = t.call(make())
    try:
        yield t
    finally:
        t.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def ep(lgwt: GatewayThread, postgres: Postgres) -> Iterator[Callable[..., tuple[str, int]]]:
    opened: list[str] = []

    def open_(**kw: Any) -> tuple[str, int]:
        eid = f"direct{len(opened)}-{id(kw)}.cluster-xyz"
        cfg = EndpointConfig(endpoint_id=eid, host="127.0.0.1", port=0, target_socket=postgres.socket,
                             server_names=(f"{eid}.us-east-1.rds.local",), **kw)
        port = lgwt.call(lgwt.gw.open(cfg))
        opened.append(eid)
        return eid, port

    yield open_
    for eid in opened:
        lgwt.call(lgwt.gw.close(eid))


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

"""The native relay (``gateway/native.py`` + ``ext/auroral_relay.c``): what only it can get wrong.

Every test of ``test_gateway.py`` already runs on both relays; these look at the handoff from the
Python startup phase to the library (bytes pipelined by the client must arrive in order), bulk data
both ways through TLS, the library's own connection count, flow-record byte counts, and the build's
failure reporting.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from auroral.gateway import native
from tests.gateway.conftest import (
    APP_PASSWORD,
    RAW_PASSWORD,
    GatewayThread,
    Postgres,
    endpoints,
    native_relay,
    query_message,
    recv_message,
    running_gateway,
    startup_packet,
)

Open = Callable[..., tuple[str, int]]


@pytest.fixture(scope="module")
def ngwt() -> Iterator[GatewayThread]:
    with running_gateway("auroral-gw-native-", relay=native_relay()) as t:
        yield t


@pytest.fixture
def nep(ngwt: GatewayThread, postgres: Postgres) -> Iterator[Open]:
    with endpoints(ngwt, postgres) as open_:
        yield open_


def _password_message(password: str) -> bytes:
    body = password.encode() + b"\0"
    return b"p" + struct.pack("!I", len(body) + 4) + body


def _pipelined(sock: socket.socket | ssl.SSLSocket) -> list[bytes]:
    """Startup, password and two queries in one write, before the server asked for anything; the rows."""
    sock.sendall(startup_packet(user="rawuser", database="postgres") + _password_message(RAW_PASSWORD)
                 + query_message("SELECT 'first'") + query_message("SELECT 'second'"))
    rows: list[bytes] = []
    ready = 0
    while ready < 3:  # after the login, and after each query
        kind, body = recv_message(sock)
        assert kind != b"E", body
        if kind == b"D":
            rows.append(body[6:])
        ready += kind == b"Z"
    return rows


def _tls_socket(port: int) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.sendall(struct.pack("!II", 8, 80877103))
    assert raw.recv(1) == b"S"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(raw)


def test_pipelined_bytes_cross_the_handoff_in_order_tls(ngwt: GatewayThread, nep: Open) -> None:
    eid, port = nep()
    with _tls_socket(port) as s:
        assert _pipelined(s) == [b"first", b"second"]
    ngwt.wait_idle(eid)


def test_pipelined_bytes_cross_the_handoff_in_order_plain(ngwt: GatewayThread, nep: Open) -> None:
    eid, port = nep()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        assert _pipelined(s) == [b"first", b"second"]
    ngwt.wait_idle(eid)


def _connect(port: int, **kw: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(host="127.0.0.1", port=port, user="app", password=APP_PASSWORD, dbname="postgres",
                           autocommit=True, connect_timeout=10, **kw)


@pytest.mark.parametrize("sslmode", ["require", "disable"])
def test_bulk_data_both_ways(ngwt: GatewayThread, nep: Open, sslmode: str) -> None:
    eid, port = nep()
    rows = [(i, hashlib.sha256(str(i).encode()).hexdigest() * 30) for i in range(4000)]  # ~7.7 MB
    with _connect(port, sslmode=sslmode) as c:
        assert (c.info.pgconn.ssl_in_use) == (sslmode == "require")
        c.execute("CREATE TEMP TABLE t (i int, v text)")
        with c.cursor().copy("COPY t (i, v) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        assert c.execute("SELECT count(*), sum(length(v)) FROM t").fetchone() == (4000, 4000 * 64 * 30)
        back = c.execute("SELECT i, v FROM t ORDER BY i").fetchall()
        assert back == rows
    ngwt.wait_idle(eid)


def test_the_library_holds_relayed_connections_and_counts_bytes(ngwt: GatewayThread, nep: Open) -> None:
    relay = native_relay()
    eid, port = nep()
    before = relay.connections()
    with _connect(port, sslmode="require") as c:
        assert c.execute("SELECT repeat('z', 100000)").fetchone() == ("z" * 100000,)
        assert relay.connections() == before + 1
        assert ngwt.stats()["relay"] == "native"
    ngwt.wait_idle(eid)
    assert relay.connections() == before
    close = [r for r in ngwt.flows.recent(10, endpoint=eid) if r.phase == "close"]
    assert len(close) == 1
    assert close[0].bytes_out > 100000  # the row, counted by the library after the handoff
    assert close[0].bytes > 0 and close[0].packets > 0


def test_endpoint_close_drops_native_connections(ngwt: GatewayThread, nep: Open, postgres: Postgres) -> None:
    relay = native_relay()
    eid, port = nep()
    before = relay.connections()
    c = _connect(port, sslmode="require")
    assert c.execute("SELECT 1").fetchone() == (1,)
    ngwt.call(ngwt.gw.close(eid))
    with pytest.raises(psycopg.OperationalError):
        c.execute("SELECT 1")
    c.close()
    deadline = time.monotonic() + 10
    while relay.connections() != before:
        assert time.monotonic() < deadline, relay.connections()
        time.sleep(0.05)


def test_server_closing_reaches_the_client(ngwt: GatewayThread, nep: Open, postgres: Postgres) -> None:
    eid, port = nep()
    with _connect(port, sslmode="require") as c:
        pid = c.info.backend_pid
        with postgres.connect() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            c.execute("SELECT 1")
    ngwt.wait_idle(eid)


def test_build_reports_why_it_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURORAL_CC", "no-such-compiler-here")
    assert native.build(tmp_path / "a") == (None, "no C compiler (no-such-compiler-here) on PATH")
    monkeypatch.setenv("AURORAL_CC", "false")
    path, reason = native.build(tmp_path / "b")
    assert path is None and reason.startswith("false exited with code 1")
    monkeypatch.delenv("AURORAL_CC")
    path, reason = native.build(tmp_path / "c")
    assert path is not None and path.is_file(), reason


def test_python_relay_is_chosen_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.ENV_RELAY, "python")
    assert native.load(tmp_path) is None
    monkeypatch.setenv(native.ENV_RELAY, "fast")
    with pytest.raises(ValueError, match="AURORAL_GATEWAY_RELAY"):
        native.load(tmp_path)


def test_many_concurrent_tls_sessions_never_cross(ngwt: GatewayThread, nep: Open) -> None:
    """Sessions handed off at the same time, each checking that every answer is its own."""
    eid, port = nep()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with _connect(port, sslmode="require") as c:
                for i in range(20):
                    tag = f"{n}-{i}-" + "x" * (n * 37 % 3000)
                    assert c.execute("SELECT %s::text", (tag,)).fetchone() == (tag,)
        except BaseException as exc:  # reported below, with the worker's number
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    ngwt.wait_idle(eid, timeout=30)

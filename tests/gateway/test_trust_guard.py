"""The gateway's invariant "upstream trust only after gateway verification": a server that answers a
startup with an immediate AuthenticationOk (here ``trustuser``, ``trust`` in pg_hba.conf; in auroral a
user listed for IAM peer login) is relayed only after the gateway itself verified an IAM token."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from auroral.gateway import AuthPlan, StartupInfo
from tests.gateway.conftest import GatewayThread, Postgres, recv_message, startup_packet
from tests.gateway.test_gateway import connect, select_one

Open = Callable[..., tuple[str, int]]
PAM = 'PAM authentication failed for user "trustuser"'


def _backends(postgres: Postgres, user: str) -> int:
    with postgres.connect() as c:
        row = c.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (user,)).fetchone()
        assert row is not None
        return int(row[0])


def test_unverified_authentication_ok_is_refused(gwt: GatewayThread, endpoint: Open, postgres: Postgres) -> None:
    told: list[tuple[str, str]] = []

    async def unearned(startup: StartupInfo, peer_ip: str) -> None:
        told.append((startup.user, peer_ip))

    eid, port = endpoint(unearned_trust=unearned)
    for sslmode in ("disable", "require"):
        with pytest.raises(psycopg.OperationalError, match=PAM):
            connect(port, user="trustuser", password="whatever", sslmode=sslmode)
    assert told == [("trustuser", "127.0.0.1")] * 2
    # the client never got past authentication: not a byte of a session reached it
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(startup_packet(user="trustuser", database="postgres"))
    kind, body = recv_message(s)
    assert kind == b"E" and b"PAM authentication failed" in body and b"C28000\0" in body
    assert s.recv(100) == b""
    s.close()
    gwt.wait_idle(eid)
    deadline = time.monotonic() + 10
    while _backends(postgres, "trustuser") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _backends(postgres, "trustuser") == 0
    # users the server asks for a password are relayed as before
    assert select_one(port) == ("app", 42)
    gwt.wait_idle(eid)


def test_guard_without_hooks_and_with_a_hook_that_fails(gwt: GatewayThread, endpoint: Open) -> None:
    eid, port = endpoint()
    with pytest.raises(psycopg.OperationalError, match=PAM):
        connect(port, user="trustuser", password="x")

    def broken(startup: StartupInfo, peer_ip: str) -> None:
        raise RuntimeError("boom")

    eid2, port2 = endpoint(unearned_trust=broken)
    with pytest.raises(psycopg.OperationalError, match=PAM):
        connect(port2, user="trustuser", password="x")
    gwt.wait_idle(eid)
    gwt.wait_idle(eid2)


def _hook(verify_ok: bool, db_password: str | None = None) -> Callable[[StartupInfo, bool, str], Any]:
    async def verify(token: str) -> bool:
        return verify_ok and token == "good-token"

    async def authenticate(startup: StartupInfo, tls: bool, peer_ip: str) -> AuthPlan | None:
        if startup.user not in ("trustuser", "app"):
            return None
        return AuthPlan(kind="iam", verify=verify, db_password=db_password)

    return authenticate


def test_verified_iam_login_accepts_an_immediate_authentication_ok(gwt: GatewayThread, endpoint: Open) -> None:
    eid, port = endpoint(authenticate=_hook(True))
    with connect(port, user="trustuser", password="good-token", sslmode="require") as c:
        assert c.execute("SELECT current_user").fetchone() == ("trustuser",)
    with pytest.raises(psycopg.OperationalError, match=PAM):
        connect(port, user="trustuser", password="bad-token", sslmode="require")
    with pytest.raises(psycopg.OperationalError, match=PAM):
        connect(port, user="trustuser", password="good-token", sslmode="disable")
    # no password to give and the server asks for one: refused, never a password-less login
    with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "app"'):
        connect(port, user="app", password="good-token", sslmode="require")
    gwt.wait_idle(eid)


def test_negotiate_protocol_version_before_the_guard(gwt: GatewayThread, endpoint: Open) -> None:
    """An unknown ``_pq_`` option makes the server send NegotiateProtocolVersion first; it is passed on
    and the guard still looks at the authentication message after it."""
    eid, port = endpoint()
    for user, expect in (("trustuser", b"E"), ("rawuser", b"R")):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(startup_packet(user=user, database="postgres", **{"_pq_.auroral_test": "1"}))
        kinds = []
        while True:
            kind, body = recv_message(s)
            kinds.append(kind)
            if kind != b"v":
                break
        assert kinds == [b"v", expect], kinds
        if expect == b"R":
            assert body[:4] == struct.pack("!I", 3)
        s.close()
    gwt.wait_idle(eid)

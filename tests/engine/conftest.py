"""Fixtures for engine tests: one event loop and one LocalEngine for the session, real PostgreSQL.

Every test runs against one installation of each major auroral serves (the embedded PostgreSQL 18,
system packages, ``AURORAL_PG_BINDIR``, and the builds it fetches: 14 to 18). As root, each server runs as its own unprivileged OS user (templates as ``auroral-pg``).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from auroral.engine import Installation, LocalEngine, PgServer, RestartPolicy, Status, available, fetch
from auroral.engine.extension import servable
from tests.conftest import ENGINE_CACHE


def _one_per_major() -> list[Installation]:
    """The preferred installation of each major found (``available()`` lists them in that order) that
    may serve clusters (14/15: only where auroral_rds can be built, ``extension.servable``), after
    fetching every major auroral can fetch that is not here with server headers (into the tests' shared
    cache, tests/conftest.py; ``AURORAL_ENGINE_FETCH=0``: only what is installed)."""
    # tests/conftest.py exports the cache in pytest_configure, which runs after this module is imported
    # when pytest is given tests/engine paths (an initial conftest): fall back to the same default
    cache = Path(os.environ.get(fetch.ENV_CACHE) or ENGINE_CACHE)
    have = {i.major for i in available(fetched=cache) if i.headers}
    for major in fetch.fetchable_majors():
        if major not in have:
            try:
                fetch.fetch(major, cache)
            except fetch.FetchError as exc:  # offline: the majors at hand are tested
                print(f"PostgreSQL {major} is not tested: {exc}")
    seen: dict[int, Installation] = {}
    for inst in available(refresh=True, fetched=cache):
        if servable(inst):
            seen.setdefault(inst.major, inst)
    return list(seen.values())


# Every major auroral serves (AURORAL_PG_BINDIR, the embedded wheel, system packages, fetched builds):
# the tests of each module, the escalation tests among them, run once per major.
INSTALLATIONS = _one_per_major()
# The newest major only: for modules whose tests exercise auroral's own file, OS-user and process
# handling, which does not depend on the major (test_engine_files, test_engine_lifecycle). Each major
# still gets its servers created, attacked and checked by the modules that stay on every major
# (test_engine_security, test_aurora, test_engine_extensions, test_engine_reset, test_restrict_password,
# test_replication), which is where what differs by major is tested.
NEWEST = INSTALLATIONS[:1]
ADMIN_PASSWORD = "rdsadmin-Secret-1"
MASTER = "postgres"
MASTER_PASSWORD = "Master-Passw0rd!"
DATABASE = "app"

Events = list[tuple[str, Status, str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not INSTALLATIONS:
        skip = pytest.mark.skip(reason="no PostgreSQL installation available")
        for item in items:
            if "tests/engine" in str(item.path):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@pytest.fixture(scope="session")
def events() -> Events:
    return []


@pytest.fixture(scope="session")
def engine(runner: asyncio.Runner, tmp_path_factory: pytest.TempPathFactory, events: Events) -> Iterator[LocalEngine]:
    data_dir = tmp_path_factory.mktemp("auroral")
    eng = LocalEngine(
        data_dir,
        on_status_change=lambda cid, status, reason: events.append((cid, status, reason)),
        restart_policy=RestartPolicy(first_delay=0.2, max_attempts=3),
    )
    yield eng
    for server in eng.list_servers():
        runner.run(eng.delete_server(server.cluster_id))
    if not eng.root.is_relative_to(data_dir):  # as root: /var/lib/auroral/<hash>
        shutil.rmtree(eng.root, ignore_errors=True)


def _ids(inst: Installation) -> str:
    return f"pg{inst.major}"


@pytest.fixture(scope="module", params=INSTALLATIONS, ids=_ids)
def installation(request: pytest.FixtureRequest) -> Installation:
    inst: Installation = request.param
    return inst


def newest_installation_only() -> object:
    """A module's own ``installation`` fixture, on :data:`NEWEST` only: ``installation =
    newest_installation_only()`` at module level replaces the one above for that module."""

    @pytest.fixture(scope="module", params=NEWEST, ids=_ids, name="installation")
    def _installation(request: pytest.FixtureRequest) -> Installation:
        inst: Installation = request.param
        return inst

    return _installation


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, runner: asyncio.Runner, engine: LocalEngine, installation: Installation
) -> Iterator[PgServer]:
    module = re.sub(r"[^a-z0-9]", "", request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))
    cluster_id = f"cluster-{module}-pg{installation.major}"
    srv = runner.run(
        engine.create_server(
            cluster_id, f"{installation.major}.4", admin_password=ADMIN_PASSWORD, master_username=MASTER,
            master_password=MASTER_PASSWORD, database_name=DATABASE,
        )
    )
    yield srv
    runner.run(engine.delete_server(cluster_id))


def connect(server: PgServer, user: str = MASTER, password: str = MASTER_PASSWORD,
            dbname: str = DATABASE) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=str(server.socket_dir), port=server.port, user=user, password=password, dbname=dbname,
        autocommit=True, connect_timeout=10,
    )


@pytest.fixture
def master(server: PgServer) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with connect(server) as conn:
        yield conn


def pg_error(conn: psycopg.Connection[tuple[object, ...]], statement: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(statement.encode())
    return info.value


async def wait_status(server: PgServer, wanted: Status, timeout: float = 30.0,
                      until: Callable[[], bool] = lambda: True) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (server.status() == wanted and until()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"status {server.status()} ({server.reason}), wanted {wanted}")
        await asyncio.sleep(0.05)


def processes_under(path: Path) -> list[int]:
    """Live pids whose working directory or command line mentions ``path``."""
    found = []
    target = str(path)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    continue
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(target) or target in cmdline:
            found.append(int(entry))
    return found

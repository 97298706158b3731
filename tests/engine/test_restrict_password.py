"""``rds.restrict_password_commands`` on real PostgreSQL: the ``auroral_rds`` module compiled at run time
(engine/extension.py), loaded with ``shared_preload_libraries``; without it (no compiler or no server
headers, like Debian's PostgreSQL 15 here) turning the setting on is refused."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest

from auroral.engine import EngineError, Installation, LocalEngine, ParameterError, PgServer, extension
from auroral.engine.osuser import current
from auroral.rds.local_runtime import LocalRuntime

from .conftest import MASTER, MASTER_PASSWORD, connect, pg_error

MESSAGE = "must be a member of rds_password to alter passwords"
ADMIN, ADMIN_PASSWORD = "app_admin", "App-admin-Passw0rd"
PARAM = "rds.restrict_password_commands"


def has_server_headers(inst: Installation) -> bool:
    pg_config = inst.tool("pg_config")
    if not pg_config.is_file():
        return False
    out = subprocess.run([str(pg_config), "--includedir-server"], capture_output=True, text=True, check=True)
    return (Path(out.stdout.strip()) / "postgres.h").is_file()


def refused(conn: psycopg.Connection[tuple[object, ...]], statement: str) -> None:
    error = pg_error(conn, statement)
    assert error.sqlstate == "42501", (statement, error)
    assert error.diag.message_primary == MESSAGE, statement


def setting(server: PgServer) -> str:
    with connect(server) as conn:
        row = conn.execute(f"SHOW {PARAM}").fetchone()
    assert row is not None
    return str(row[0])


def test_module_built_where_headers_exist(engine: LocalEngine, installation: Installation) -> None:
    inst = engine.installation(f"{installation.major}.4")
    if has_server_headers(installation):
        assert len(inst.preload) == 1
        assert Path(f"{inst.preload[0]}.so").is_file()
        assert (Path(f"{inst.preload[0]}.so").stat().st_mode & 0o444) == 0o444
    else:
        assert inst.preload == ()


def test_off_by_default(server: PgServer, installation: Installation) -> None:
    with connect(server) as master:
        master.execute(f"CREATE ROLE {ADMIN} LOGIN CREATEROLE PASSWORD '{ADMIN_PASSWORD}'".encode())
    if server.installation.preload:
        assert setting(server) == "off"
    with connect(server, ADMIN, ADMIN_PASSWORD) as admin:  # off: a CREATEROLE role manages passwords
        admin.execute("CREATE ROLE app_user1 LOGIN PASSWORD 'u1-Passw0rd'")
        admin.execute("ALTER ROLE app_user1 PASSWORD 'u1-Passw0rd-2' VALID UNTIL 'infinity'")
        admin.execute(f"ALTER USER {ADMIN} PASSWORD '{ADMIN_PASSWORD}'")


@pytest.fixture(scope="module")
def restricted(server: PgServer, runner: asyncio.Runner) -> PgServer:
    if not server.installation.preload:
        with pytest.raises(ParameterError, match="auroral_rds server module could not be built"):
            runner.run(server.set_parameters({PARAM: "1"}))
        assert PARAM not in server.parameters()
        runner.run(server.set_parameters({PARAM: "0"}))  # off is always fine
        pytest.skip(f"auroral_rds is not built for PostgreSQL {server.major} (no server headers)")
    with pytest.raises(ParameterError, match="Boolean"):
        runner.run(server.set_parameters({PARAM: "maybe"}))
    change = runner.run(server.set_parameters({PARAM: "0"}))  # what it runs with: no restart needed
    assert change.applied == [PARAM] and change.pending_reboot == []
    change = runner.run(server.set_parameters({PARAM: "1"}))
    assert change.pending_reboot == [PARAM]  # static, like in Aurora
    assert setting(server) == "off"
    runner.run(server.restart())
    assert setting(server) == "on"
    return server


def test_app_admin_without_rds_password_is_refused(restricted: PgServer, runner: asyncio.Runner) -> None:
    # an MD5 password (md5 + md5(password || user)), set by rdsadmin: renaming the role would clear it
    md5 = "md5" + hashlib.md5(b"u2-Passw0rdapp_user2").hexdigest()
    with connect(restricted, ADMIN, ADMIN_PASSWORD) as admin:
        refused(admin, "CREATE ROLE app_user2 LOGIN PASSWORD 'u2-Passw0rd'")
        refused(admin, "CREATE USER app_user2 PASSWORD NULL")
        refused(admin, "CREATE ROLE app_user2 VALID UNTIL '2030-01-01'")
        refused(admin, "ALTER ROLE app_user1 PASSWORD 'u1-Passw0rd-3'")
        refused(admin, "ALTER ROLE app_user1 WITH ENCRYPTED PASSWORD 'u1-Passw0rd-3' VALID UNTIL '2030-01-01'")
        refused(admin, "ALTER ROLE app_user1 VALID UNTIL '2030-01-01'")
        refused(admin, f"ALTER USER {ADMIN} PASSWORD 'new-Passw0rd'")  # its own, as psql's \password does
        refused(admin, "DO $$ BEGIN EXECUTE 'ALTER ROLE app_user1 PASSWORD NULL'; END $$")
        # not password commands: still allowed
        admin.execute("CREATE ROLE app_user2 LOGIN")
        admin.execute("ALTER ROLE app_user2 CONNECTION LIMIT 5")
        admin.execute("ALTER ROLE app_user2 SET work_mem = '8MB'")
        admin.execute("ALTER ROLE app_user2 RENAME TO app_user3")  # no password: nothing cleared
        admin.execute("ALTER ROLE app_user3 RENAME TO app_user2")
    runner.run(restricted.run_admin_sql(f"ALTER ROLE app_user2 PASSWORD '{md5}'"))
    with connect(restricted, ADMIN, ADMIN_PASSWORD) as admin:
        refused(admin, "ALTER ROLE app_user2 RENAME TO app_user3")


def test_master_and_rds_password_members_may(restricted: PgServer, runner: asyncio.Runner) -> None:
    with connect(restricted) as master:  # rds_superuser, which has the privileges of rds_password
        master.execute("CREATE ROLE app_user4 LOGIN PASSWORD 'u4-Passw0rd' VALID UNTIL 'infinity'")
        master.execute("ALTER ROLE app_user4 PASSWORD 'u4-Passw0rd-2'")
        master.execute(f"ALTER USER {MASTER} PASSWORD '{MASTER_PASSWORD}'")
        master.execute(f"GRANT rds_password TO {ADMIN}")
    with connect(restricted, ADMIN, ADMIN_PASSWORD) as admin:
        admin.execute("ALTER ROLE app_user1 PASSWORD 'u1-Passw0rd-4' VALID UNTIL '2030-01-01'")
        admin.execute("CREATE ROLE app_user5 PASSWORD 'u5-Passw0rd'")
        admin.execute(f"ALTER USER {ADMIN} PASSWORD '{ADMIN_PASSWORD}'")
    with connect(restricted) as master:
        master.execute(f"REVOKE rds_password FROM {ADMIN}")
    with connect(restricted, ADMIN, ADMIN_PASSWORD) as admin:
        refused(admin, "ALTER ROLE app_user1 PASSWORD 'u1-Passw0rd-5'")
    # rdsadmin (a superuser) is never restricted: the control plane sets master passwords with it
    runner.run(restricted.run_admin_sql("ALTER ROLE app_user1 PASSWORD 'u1-Passw0rd-6'"))


def test_turned_off_again(restricted: PgServer, runner: asyncio.Runner) -> None:
    change = runner.run(restricted.set_parameters({PARAM: None}))
    assert change.pending_reboot == [PARAM]
    runner.run(restricted.restart())
    assert setting(restricted) == "off"
    with connect(restricted, ADMIN, ADMIN_PASSWORD) as admin:
        admin.execute("ALTER ROLE app_user1 PASSWORD 'u1-Passw0rd-7'")


def test_no_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                     installation: Installation) -> None:
    monkeypatch.setenv("AURORAL_CC", "no-such-compiler-for-auroral")
    monkeypatch.setattr(extension, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="auroral.engine.extension"):
        assert extension.ensure_built(installation, tmp_path / "ext") is None
        assert extension.ensure_built(installation, tmp_path / "ext") is None
    warnings = [r for r in caplog.records if "could not be built" in r.getMessage()]
    assert len(warnings) == 1  # once per major and source
    assert "no C compiler (no-such-compiler-for-auroral)" in warnings[0].getMessage()
    assert not (tmp_path / "ext").exists() or not any((tmp_path / "ext").iterdir())

    # the RDS layer refuses to turn the parameter on where the module is missing
    engine = LocalEngine(tmp_path / "data", installations=[installation], runas=current())
    runtime = LocalRuntime(tmp_path / "data", cast(Any, None), cast(Any, None), cast(Any, None),
                           installations=[installation])
    runtime._engine = engine
    if installation.major < 16:  # not served at all without the module (a CREATEROLE master's escape)
        with pytest.raises(EngineError, match="served only with the auroral_rds module"):
            engine.installation(str(installation.major))
        return
    reason = runtime.parameter_refusal(PARAM, "1", installation.major)
    assert reason is not None and "could not be built" in reason and "gcc" in reason
    assert runtime.parameter_refusal(PARAM, "0", installation.major) is None
    assert runtime.parameter_refusal("log_connections", "1", installation.major) is None

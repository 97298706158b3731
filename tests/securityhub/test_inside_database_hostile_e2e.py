"""The advisor's reads of a cluster's databases against a hostile master user, through a running server:
the master user owns its databases, so it can set their session defaults (ALTER DATABASE ... SET
search_path) and create operators and functions of its own. The control plane reads as ``rdsadmin`` (a
superuser): none of the master user's code may run in that session, and the read still answers.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import Server
from tests.rds.e2e_helpers import Db, create_db, delete_db, psql, served_engine_versions, until
from tests.securityhub.findings import cluster_finding


@pytest.fixture(scope="module")
def db(server: Server) -> Iterator[Db]:
    rds = server.client("rds")
    created = create_db(rds, prefix="hostile")
    try:
        yield created
    finally:
        delete_db(rds, created)


finding = cluster_finding


def test_shadowing_operator_never_runs_as_rdsadmin(server: Server, db: Db) -> None:
    """The master user's own ``>`` (bigint, integer) first in its database's search_path: the advisor's
    read of the written tables (which compares their counters with ``>``) neither calls it nor fails."""
    psql(db, "CREATE TABLE public.pwned (who text, superuser bool); "
             "CREATE SCHEMA trap; "
             "CREATE FUNCTION trap.gt(bigint, integer) RETURNS boolean LANGUAGE sql AS $$ "
             "INSERT INTO public.pwned SELECT current_user, rolsuper FROM pg_catalog.pg_roles "
             "WHERE rolname = current_user; SELECT pg_catalog.int84gt($1, $2) $$; "
             "CREATE OPERATOR trap.> (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = trap.gt); "
             "GRANT USAGE ON SCHEMA trap TO PUBLIC; "
             f"ALTER DATABASE {db.database} SET search_path = trap, pg_catalog; "
             # another login that writes a schema of its own: AURORAL.8's read of the tables runs
             "CREATE ROLE writer LOGIN PASSWORD 'Writer-pass-1'; "
             f"GRANT CREATE ON DATABASE {db.database} TO writer")
    with db.connect(user="writer", password="Writer-pass-1") as conn:
        conn.execute("CREATE SCHEMA writer")
        conn.execute("CREATE TABLE writer.rows (id int)")
        conn.execute("INSERT INTO writer.rows VALUES (1)")
    # the read happened: the writer's own schema is found
    failed = until(lambda: [f for f in [finding(server, db, "AURORAL.8")]
                            if f["Compliance"]["Status"] == "FAILED"], timeout=30, what="AURORAL.8 FAILED")[0]
    assert "writer" in json.dumps(failed["ProductFields"])
    out = psql(db, "SELECT count(*) FROM public.pwned").stdout.strip()
    assert out == "0", "the master user's operator ran in the control plane's session"


def _waiting_admin_backends(db: Db, database: str) -> list[str]:
    """The cluster's rdsadmin backends for ``database`` still in their startup (waiting for a lock)."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines()
            if db.resource_id in line and f"rdsadmin {database} " in line and "startup" in line]


def test_a_locked_database_neither_piles_up_connections_nor_stops_the_reads(server: Server, db: Db) -> None:
    """The master user holds a lock on one of its databases (ALTER DATABASE ... RENAME in an open
    transaction: a new connection to it waits in its startup, and a client that gives up leaves that
    backend waiting). The reads skip that database (its last known state is kept) instead of leaving a
    waiting rdsadmin backend behind at each read, and the rest is still read: a role created meanwhile
    is found."""
    psql(db, "CREATE DATABASE locked_db")
    psql(db, "CREATE ROLE lock_visitor LOGIN PASSWORD 'Visitor-pass-1'")
    with db.connect(user="lock_visitor", password="Visitor-pass-1") as conn:  # the tables are read from now on
        conn.execute("SELECT 1")
    until(lambda: finding(server, db, "AURORAL.7"), timeout=30, what="a first read of the cluster")
    holder = db.connect()
    holder.autocommit = False
    try:
        holder.execute("ALTER DATABASE locked_db RENAME TO locked_db_2")
        psql(db, "CREATE ROLE ghost_locked LOGIN")
        failed = until(lambda: [f for f in [finding(server, db, "AURORAL.7")]
                                if "ghost_locked" in json.dumps(f["ProductFields"])], timeout=30,
                       what="AURORAL.7 naming the role created while a database was locked")[0]
        assert failed["Compliance"]["Status"] == "FAILED"
        for _ in range(3):  # each GetFindings reads the databases first
            finding(server, db, "AURORAL.8")
        assert _waiting_admin_backends(db, "locked_db") == []
    finally:
        holder.rollback()
        holder.close()
    psql(db, "DROP ROLE ghost_locked")


def test_deferrable_serializable_defaults_do_not_hold_up_the_reads(server: Server, db: Db) -> None:
    """The database's owner makes every transaction there SERIALIZABLE, READ ONLY and DEFERRABLE by
    default (ALTER DATABASE ... SET), then keeps a serializable read-write transaction open: a deferrable
    one would wait for it to end. The reads do not: a written table of a new schema is still seen."""
    psql(db, f"ALTER DATABASE {db.database} SET default_transaction_isolation = 'serializable'; "
             f"ALTER DATABASE {db.database} SET default_transaction_deferrable = on; "
             f"ALTER DATABASE {db.database} SET default_transaction_read_only = on; "
             "CREATE ROLE deferrer LOGIN PASSWORD 'Deferrer-pass-1'; "
             f"GRANT CREATE ON DATABASE {db.database} TO deferrer")
    until(lambda: finding(server, db, "AURORAL.8"), timeout=30, what="a first read of the cluster")
    holder = db.connect()
    holder.autocommit = False
    try:
        holder.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE")
        holder.execute("CREATE TEMP TABLE held (i int)")
        holder.execute("INSERT INTO held VALUES (1)")
        with db.connect(user="deferrer", password="Deferrer-pass-1") as conn:
            conn.execute("SET default_transaction_read_only = off")
            conn.execute("SET default_transaction_isolation = 'read committed'")
            conn.execute("CREATE SCHEMA deferrer")
            conn.execute("CREATE TABLE deferrer.rows (id int)")
            conn.execute("INSERT INTO deferrer.rows VALUES (1)")
        until(lambda: [f for f in [finding(server, db, "AURORAL.8")]
                       if "deferrer" in json.dumps(f["ProductFields"])], timeout=30,
              what="AURORAL.8 naming the deferrer's schema while a serializable transaction is open")
    finally:
        holder.rollback()
        holder.close()
        psql(db, "SET transaction_read_only = off; "
                 f"ALTER DATABASE {db.database} RESET default_transaction_isolation; "
                 f"ALTER DATABASE {db.database} RESET default_transaction_deferrable; "
                 f"ALTER DATABASE {db.database} RESET default_transaction_read_only")


def test_a_long_chain_of_roles_does_not_stop_the_roles_read(server: Server, db: Db) -> None:
    """Thousands of roles granted one to the next (a chain): asking each role's membership on its own is
    quadratic in the chain's length (seconds for a few thousand), so such a read timed out, every time,
    and no inside finding moved again. The memberships are computed in one pass: a login created after
    the chain is found, and a login at the end of a chain that leads to rds_superuser is a member."""
    until(lambda: finding(server, db, "AURORAL.4"), timeout=30, what="a first read of the cluster")
    psql(db, "DO $$ BEGIN FOR i IN 1..5000 LOOP EXECUTE format('CREATE ROLE chain_%s NOLOGIN', i); "
             "IF i > 1 THEN EXECUTE format('GRANT chain_%s TO chain_%s', i, i - 1); END IF; END LOOP; END $$; "
             "GRANT rds_superuser TO chain_5000; "
             "CREATE ROLE chain_login LOGIN PASSWORD 'Chain-pass-1' IN ROLE chain_1")
    failed = until(lambda: [f for f in [finding(server, db, "AURORAL.4")]
                            if "chain_login" in json.dumps(f["ProductFields"])], timeout=60,
                   what="AURORAL.4 naming the login at the end of the chain")[0]
    assert failed["Compliance"]["Status"] == "FAILED"
    psql(db, "DROP ROLE chain_login")
    until(lambda: "chain_login" not in json.dumps(finding(server, db, "AURORAL.4")["ProductFields"]),
          timeout=30, what="AURORAL.4 without the dropped login")


@pytest.mark.parametrize(("version", "major"), [v for v in served_engine_versions() if v[1] in (15, 17)],
                         ids=lambda v: str(v))
def test_memberships_are_pg_has_roles(server: Server, version: str, major: int) -> None:
    """The one-pass memberships (rds_superuser: MEMBER; rds_iam: USAGE) name exactly the logins that
    PostgreSQL's own pg_has_role names, before PostgreSQL 16 (the member's INHERIT decides) and after (the
    grant's INHERIT option decides): direct grants, through groups, and through a NOINHERIT link."""
    rds = server.client("rds")
    db = create_db(rds, prefix=f"members{major}", engine_version=version,
                   EnableIAMDatabaseAuthentication=True)
    try:
        psql(db, "CREATE ROLE g_su NOLOGIN IN ROLE rds_superuser; CREATE ROLE g_iam NOLOGIN IN ROLE rds_iam; "
                 "CREATE ROLE g_noinh NOLOGIN NOINHERIT IN ROLE rds_iam; "
                 "CREATE ROLE su_direct LOGIN PASSWORD 'Pass-word-1' IN ROLE rds_superuser; "
                 "CREATE ROLE su_group LOGIN PASSWORD 'Pass-word-1' IN ROLE g_su; "
                 "CREATE ROLE su_noinh LOGIN NOINHERIT PASSWORD 'Pass-word-1' IN ROLE g_su; "
                 "CREATE ROLE iam_direct LOGIN IN ROLE rds_iam; CREATE ROLE iam_group LOGIN IN ROLE g_iam; "
                 "CREATE ROLE iam_noinh LOGIN NOINHERIT PASSWORD 'Pass-word-1' IN ROLE g_iam; "
                 "CREATE ROLE iam_via_noinh LOGIN PASSWORD 'Pass-word-1' IN ROLE g_noinh; "
                 "CREATE ROLE plain LOGIN PASSWORD 'Pass-word-1'")

        def expected(role: str, mode: str) -> str:
            rows = psql(db, f"SELECT rolname FROM pg_roles WHERE rolcanlogin AND NOT rolsuper "
                            f"AND rolname <> '{db.master}' AND rolname !~ '^(pg_|rds)' "
                            f"AND pg_has_role(oid, '{role}', '{mode}') ORDER BY rolname").stdout.split()
            return ", ".join(rows) or "none"

        want_su, want_iam = expected("rds_superuser", "MEMBER"), expected("rds_iam", "USAGE")
        assert "su_noinh" in want_su and "iam_direct" in want_iam and "iam_noinh" not in want_iam
        until(lambda: evidence_of(server, db, "AURORAL.4", "SuperuserMembers") == want_su, timeout=30,
              what=f"AURORAL.4's members = pg_has_role's ({want_su})")
        until(lambda: evidence_of(server, db, "AURORAL.9", "RdsIamMembers") == want_iam, timeout=30,
              what=f"AURORAL.9's members = pg_has_role's ({want_iam})")
    finally:
        delete_db(rds, db)


def evidence_of(server: Server, db: Db, control: str, key: str) -> str:
    return str(finding(server, db, control)["ProductFields"][f"auroral/Evidence/{key}"])

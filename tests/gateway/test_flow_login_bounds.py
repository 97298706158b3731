"""What a client's startup packet puts into the flow log is bounded: a client (before any password) may
send an application_name or a user name of nearly the startup packet's 10000 bytes, and the flow log keeps
10000 records in memory (and the security advisor reloads the file's logins at start): PostgreSQL itself
keeps only NAMEDATALEN - 1 (63) bytes of either, so the records keep no more. Real gateway, real
PostgreSQL, psycopg."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from auroral.gateway.flows import FlowRecord
from tests.gateway.conftest import APP_PASSWORD, GatewayThread

Open = Callable[..., tuple[str, int]]


def test_long_startup_names_are_cut_to_postgresqls(gwt: GatewayThread, endpoint: Open) -> None:
    eid, port = endpoint()
    long_app = "orders-api-" + "x" * 4000
    with psycopg.connect(host="127.0.0.1", port=port, user="app", password=APP_PASSWORD, dbname="postgres",
                         sslmode="disable", autocommit=True, connect_timeout=10,
                         application_name=long_app) as conn:
        conn.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, user="u" * 4000, password="nope", dbname="postgres",
                        sslmode="disable", connect_timeout=10)
    gwt.wait_idle(eid)
    closed = [r for r in gwt.flows.recent(10, endpoint=eid) if r.phase == "close" and r.db_user]
    assert len(closed) == 2
    app = next(r for r in closed if r.db_user == "app")
    assert app.application_name == long_app[:63]
    other = next(r for r in closed if r.db_user != "app")
    assert other.db_user == "u" * 63
    # and as read back from the file (an earlier run's records)
    back = FlowRecord.from_dict({**app.to_dict(), "application-name": long_app, "db-user": "v" * 500})
    assert back.application_name == long_app[:63] and back.db_user == "v" * 63

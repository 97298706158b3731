"""Connection limits end to end (finding: every endpoint shared one process-wide cap of 10,000
connections, so idle connections to one cluster made another refuse logins). Each instance's endpoint
now counts its own connections against the instance's ``max_connections`` (here set low through a
cluster parameter group) and refuses the next one as PostgreSQL does, FATAL 53300 "sorry, too many
clients already"; another cluster is not affected."""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest

from auroral.gateway.startup import parse_error_fields
from tests.gateway.conftest import recv_message, startup_packet

from .e2e_helpers import create_db, delete_db, ident, psql, until

LIMIT = 10  # the smallest allowed is 6


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


def test_idle_connections_to_one_cluster_leave_another_alone(rds: Any) -> None:
    group = ident("e2e-limits")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group,
                                          DBParameterGroupFamily="aurora-postgresql16", Description="e2e")
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
        {"ParameterName": "max_connections", "ParameterValue": str(LIMIT), "ApplyMethod": "pending-reboot"}])
    flooded = create_db(rds, prefix="e2e-flood", DBClusterParameterGroupName=group)
    other = create_db(rds, prefix="e2e-calm")
    try:
        # (max_connections is checked at the end: a connection closed just before the flood may hold its
        # slot for a moment longer, as a backend does until it has exited)
        with ExitStack() as stack:
            # the attack: idle TCP connections (they never send a byte), the limit and some more
            for _ in range(LIMIT + 5):
                s = stack.enter_context(socket.create_connection((flooded.host, flooded.port), timeout=10))
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Connected is not accepted: on a busy machine the gateway may not have accepted them all
            # yet, and a probe accepted before them is under the limit (then refused for its plaintext).
            deadline = time.monotonic() + 20
            while True:
                with socket.create_connection((flooded.host, flooded.port), timeout=10) as s:
                    s.sendall(startup_packet(user=flooded.master, database=flooded.database))
                    kind, body = recv_message(s)
                assert kind == b"E"
                fields = parse_error_fields(body)
                if fields["C"] != "53300" and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                assert (fields["S"], fields["C"], fields["M"]) == ("FATAL", "53300", "sorry, too many clients already")
                break
            with pytest.raises(psycopg.OperationalError, match="sorry, too many clients already"):
                flooded.connect()

            # another cluster logs in as usual, with psycopg and with psql
            with other.connect() as conn:
                assert conn.execute("SELECT 40 + 2").fetchone() == (42,)
            assert psql(other, "SELECT 6 * 7").stdout.strip() == "42"
        # the idle connections are gone: their slots come back
        with until(lambda: flooded.connect(), what="a login once the flood is gone") as conn:
            assert conn.execute("SHOW max_connections").fetchone() == (str(LIMIT),)
    finally:
        delete_db(rds, flooded)
        delete_db(rds, other)
    until(lambda: rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=group) or True,
          timeout=30, what="delete the parameter group")

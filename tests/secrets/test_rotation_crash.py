"""kill -9 of auroral at every step boundary of a managed master password rotation.

For each boundary (``AURORAL_TEST_CRASH_AT``, see ``auroral.rds.managed_password.CRASH_POINTS``) a
server on one data directory is started with the variable set; ``RotateMasterUserPassword`` makes it
kill itself (SIGKILL) at that point. While it is dead, PostgreSQL (which survives it) is asked through
its private socket whether the old AWSCURRENT password still opens the database — it must exactly when
the crash came before the ALTER ROLE, and otherwise the database runs with the AWSPENDING password.
Restarted without the variable, auroral resumes the rotation with the same token: SecretStatus goes
back to ``active``, AWSCURRENT holds the password that was pending, opens the database through the
endpoint, and the old one (now AWSPREVIOUS) does not. The cases share one cluster and run in order.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from auroral.engine.postmaster import socket_dir_for
from auroral.rds.managed_password import CRASH_ENV, CRASH_POINTS
from tests.conftest import Server, new_root_key, server_tmpdir, start_server, stop_server
from tests.rds.e2e_helpers import FAST, MASTER, cluster_dir, ident, postgres_processes, until

ACCOUNT = "444455556666"
# Before the ALTER ROLE the database still has AWSCURRENT's password; from then on AWSPENDING's.
BEFORE_SET = ("createSecret:recorded", "createSecret:done", "setSecret:recorded")
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)


@dataclass
class World:
    base: Path
    data: Path
    key: str
    secret: str
    port: int
    cluster_id: str = ""
    resource_id: str = ""
    secret_arn: str = ""

    def start(self, crash_at: str | None = None) -> Server:
        env = {CRASH_ENV: crash_at} if crash_at else {}
        return start_server(self.data, access_key=self.key, secret_key=self.secret, account=ACCOUNT,
                            port=self.port, extra_env=env)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    key, secret = new_root_key()
    base = server_tmpdir()
    srv = start_server(base / "data", access_key=key, secret_key=secret, account=ACCOUNT)
    w = World(base, base / "data", key, secret, int(srv.url.rsplit(":", 1)[1]))
    try:
        rds = srv.client("rds")
        w.cluster_id = ident("crash")
        out = rds.create_db_cluster(DBClusterIdentifier=w.cluster_id, Engine="aurora-postgresql",
                                    EngineVersion="16.4", MasterUsername=MASTER, ManageMasterUserPassword=True)
        w.resource_id = out["DBCluster"]["DbClusterResourceId"]
        w.secret_arn = out["DBCluster"]["MasterUserSecret"]["SecretArn"]
        rds.create_db_instance(DBInstanceIdentifier=w.cluster_id + "-i", DBClusterIdentifier=w.cluster_id,
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=w.cluster_id + "-i", WaiterConfig=FAST)
        secret_status(srv, w, "active")
    finally:
        stop_server(srv)
    yield w
    for pid in postgres_processes(str(base)):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(base, ignore_errors=True)


def secret_status(srv: Server, w: World, want: str, timeout: float = 30) -> dict[str, Any]:
    rds = srv.client("rds")
    deadline = time.monotonic() + timeout
    while True:
        cluster: dict[str, Any] = rds.describe_db_clusters(DBClusterIdentifier=w.cluster_id)["DBClusters"][0]
        if cluster["Status"] == "available" and cluster["MasterUserSecret"]["SecretStatus"] == want:
            return cluster
        if time.monotonic() > deadline:
            raise AssertionError(f"cluster {cluster['Status']}, secret {cluster['MasterUserSecret']}, not {want}")
        time.sleep(0.05)


def password(srv: Server, w: World, stage: str) -> tuple[str, str] | None:
    try:
        out = srv.client("secretsmanager").get_secret_value(SecretId=w.secret_arn, VersionStage=stage)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise
    return out["VersionId"], str(json.loads(out["SecretString"])["password"])


def opens_private(w: World, pw: str) -> bool:
    """A login through the cluster's private socket (the endpoint died with auroral)."""
    sock = socket_dir_for(cluster_dir(w.data, w.resource_id))
    try:
        psycopg.connect(host=str(sock), port=5432, user=MASTER, password=pw, dbname="postgres",
                        connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc), exc
        return False
    return True


def opens_endpoint(cluster: dict[str, Any], pw: str) -> bool:
    try:
        psycopg.connect(host=cluster["Endpoint"], port=cluster["Port"], user=MASTER, password=pw,
                        dbname="postgres", sslmode="require", connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc), exc
        return False
    return True


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_kill9_during_rotation(world: World, point: str) -> None:
    w = world
    srv = w.start(crash_at=point)
    try:
        secret_status(srv, w, "active")
        old = password(srv, w, "AWSCURRENT")
        assert old is not None and password(srv, w, "AWSPENDING") is None
        with contextlib.suppress(Exception):  # the process may die before it answers
            srv.client("rds", config=NO_RETRY).modify_db_cluster(
                DBClusterIdentifier=w.cluster_id, RotateMasterUserPassword=True, ApplyImmediately=True)
        assert srv.proc is not None
        assert srv.proc.wait(timeout=30) == -signal.SIGKILL
    except BaseException:
        stop_server(srv)
        raise

    # auroral is dead, PostgreSQL is not: which password does the database have right now?
    assert opens_private(w, old[1]) is (point in BEFORE_SET), f"{point}: old password"

    srv = w.start()
    try:
        right_after = password(srv, w, "AWSPENDING") or password(srv, w, "AWSCURRENT")
        assert right_after is not None
        cluster = secret_status(srv, w, "active")
        current, previous = password(srv, w, "AWSCURRENT"), password(srv, w, "AWSPREVIOUS")
        assert current is not None and previous is not None
        assert previous == old and current[1] != old[1]
        assert password(srv, w, "AWSPENDING") is None
        until(lambda: opens_endpoint(cluster, current[1]), what="login with the new AWSCURRENT")
        assert not opens_endpoint(cluster, old[1])
        if point not in BEFORE_SET:
            # the database had the pending password at the crash: it must be the one now current
            assert opens_private(w, current[1])
            assert right_after[0] == current[0]
        stages = [v["VersionStages"] for v in
                  srv.client("secretsmanager").list_secret_version_ids(SecretId=w.secret_arn)["Versions"]]
        assert sorted(s for v in stages for s in v) == ["AWSCURRENT", "AWSPREVIOUS"]
    finally:
        stop_server(srv)

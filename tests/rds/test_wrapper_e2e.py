"""Acceptance with a client nobody here wrote: AWS's own driver wrapper (``aws-advanced-python-wrapper``
from PyPI, unmodified) over psycopg, against a cluster with a writer and a reader, by the endpoint names
Describe reports (resolved by the system resolver: auroral's managed ``/etc/hosts`` block).

(a) ``plugins="iam"`` against the cluster endpoint's name: the wrapper recognises an Aurora host, makes a
    token for it with botocore and logs in;
(b) ``failover`` and ``failover_v2`` while a workload runs and FailoverDBCluster is called: the wrapper
    raises its documented ``FailoverSuccessError``, is connected to the new writer, and the workload goes on
    with every acknowledged row present;
(c) ``read_write_splitting``: a read-only connection is served by the reader (in recovery), a writable one
    by the writer;
(d) connecting through the wrapper costs a plain connect plus its own topology query: no stall.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from .e2e_helpers import FAST, MASTER, Db, create_db, delete_db, ident, until

REGION = "us-east-1"
if os.geteuid() != 0:  # the names resolve through the /etc/hosts block auroral keeps as root
    pytest.skip("the endpoint names resolve without client change only where auroral runs as root",
                allow_module_level=True)


@dataclass
class Topo:
    db: Db
    reader_id: str
    cluster_endpoint: str
    reader_endpoint: str
    port: int
    names: dict[str, str] = field(default_factory=dict)  # instance id -> DNS name


def _describe(rds: Any, cluster_id: str) -> dict[str, Any]:
    return dict(rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0])


def _writer(rds: Any, cluster_id: str) -> str:
    members = _describe(rds, cluster_id)["DBClusterMembers"]
    return next(str(m["DBInstanceIdentifier"]) for m in members if m["IsClusterWriter"])


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


@pytest.fixture(scope="module")
def topo(rds: Any) -> Iterator[Topo]:
    db = create_db(rds, prefix="e2e-wrap", EnableIAMDatabaseAuthentication=True)
    reader = ident("e2e-wrap-r")
    rds.create_db_instance(DBInstanceIdentifier=reader, DBClusterIdentifier=db.cluster_id,
                           Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=reader, WaiterConfig=FAST)
    cluster = _describe(rds, db.cluster_id)
    names = {}
    for member in (db.instance_id, reader):
        instance = rds.describe_db_instances(DBInstanceIdentifier=member)["DBInstances"][0]
        names[member] = instance["Endpoint"]["Address"]
    with db.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS work (id int PRIMARY KEY, at timestamptz DEFAULT now())")
        conn.execute("CREATE ROLE iamuser LOGIN")
        conn.execute("GRANT rds_iam TO iamuser")
    yield Topo(db, reader, cluster["Endpoint"], cluster["ReaderEndpoint"], cluster["Port"], names)
    with contextlib.suppress(Exception):  # best-effort cleanup
        rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)
    delete_db(rds, db)


@pytest.fixture(autouse=True)
def _release_wrapper_threads() -> Iterator[None]:
    yield
    import aws_advanced_python_wrapper as wrapper

    # the wrapper's topology monitors are threads that keep the process alive until released
    wrapper.release_resources()
    # the read/write splitting plugin leaves its internal reader connection to the garbage collector
    # (psycopg then warns "deleted while still open"): collected here, so the leak is the wrapper's alone
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def _conninfo(topo: Topo, host: str, **extra: Any) -> str:
    parts = {"host": host, "port": topo.port, "dbname": topo.db.database, "user": MASTER,
             "password": topo.db.password, "sslmode": "require", "connect_timeout": 10, **extra}
    return " ".join(f"{k}={v}" for k, v in parts.items())


def test_names_resolve_to_the_instances(topo: Topo) -> None:
    writer_address = socket.gethostbyname(topo.names[topo.db.instance_id])
    reader_address = socket.gethostbyname(topo.names[topo.reader_id])
    assert writer_address != reader_address and writer_address.startswith("127.")
    assert socket.gethostbyname(topo.cluster_endpoint) == writer_address
    assert socket.gethostbyname(topo.reader_endpoint) == reader_address
    assert topo.port == 5432
    with psycopg.connect(_conninfo(topo, topo.reader_endpoint), autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery(), aurora_db_instance_identifier()").fetchone() == (
            True, topo.reader_id)


def test_iam_plugin_against_the_cluster_endpoint_name(topo: Topo, server: Any, make_user: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import aws_advanced_python_wrapper as wrapper

    arn = f"arn:aws:rds-db:{REGION}:{server.account}:dbuser:{topo.db.resource_id}/iamuser"
    keys = make_user({"Version": "2012-10-17",
                      "Statement": [{"Effect": "Allow", "Action": "rds-db:connect", "Resource": arn}]})
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys.secret_key)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    conn = wrapper.AwsWrapperConnection.connect(
        psycopg.Connection.connect,
        f"host={topo.cluster_endpoint} port={topo.port} dbname={topo.db.database} user=iamuser sslmode=require "
        "connect_timeout=10", plugins="iam", wrapper_dialect="aurora-pg", autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT current_user, aurora_db_instance_identifier()")
            assert cursor.fetchone() == ("iamuser", topo.db.instance_id)
    finally:
        conn.close()


def test_read_write_splitting_sends_read_only_to_a_reader(topo: Topo) -> None:
    import aws_advanced_python_wrapper as wrapper

    conn = wrapper.AwsWrapperConnection.connect(
        psycopg.Connection.connect, _conninfo(topo, topo.cluster_endpoint),
        plugins="read_write_splitting,failover", autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery()")
            assert cursor.fetchone() == (False,)
        conn.read_only = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery(), aurora_db_instance_identifier()")
            row = cursor.fetchone()
            assert row is not None and row[0] is True
        conn.read_only = False
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery()")
            assert cursor.fetchone() == (False,)
    finally:
        conn.close()


def test_connect_costs_no_more_than_a_connect_and_the_topology_query(topo: Topo) -> None:
    import aws_advanced_python_wrapper as wrapper

    started = time.monotonic()
    with psycopg.connect(_conninfo(topo, topo.cluster_endpoint), autocommit=True):
        pass
    plain = time.monotonic() - started
    started = time.monotonic()
    conn = wrapper.AwsWrapperConnection.connect(
        psycopg.Connection.connect, _conninfo(topo, topo.cluster_endpoint), plugins="failover", autocommit=True)
    try:
        wrapped = time.monotonic() - started
        hosts = sorted((h.host_id, h.role.name) for h in conn._plugin_service.hosts)
        assert hosts == sorted([(topo.db.instance_id, "WRITER"), (topo.reader_id, "READER")]) or \
            hosts == sorted([(topo.db.instance_id, "READER"), (topo.reader_id, "WRITER")])
    finally:
        conn.close()
    # generous: the stall this guards against was 15 s per connect (740 failing topology queries)
    assert wrapped < plain + 3, f"wrapper connect {wrapped:.2f} s vs plain {plain:.2f} s"


@pytest.mark.parametrize("plugin", ["failover", "failover_v2"])
def test_failover_while_a_workload_runs(topo: Topo, rds: Any, plugin: str) -> None:
    import aws_advanced_python_wrapper as wrapper
    from aws_advanced_python_wrapper.errors import FailoverSuccessError

    old_writer = _writer(rds, topo.db.cluster_id)
    conn = wrapper.AwsWrapperConnection.connect(
        psycopg.Connection.connect, _conninfo(topo, topo.cluster_endpoint),
        plugins=plugin, autocommit=True, failover_timeout_sec=60, topology_refresh_ms=1000)
    acknowledged: list[int] = []
    switched: list[BaseException] = []
    stop = threading.Event()
    errors: list[BaseException] = []
    base = {"failover": 1_000_000, "failover_v2": 2_000_000}[plugin]

    def work() -> None:
        n = base
        while not stop.is_set() or not switched:
            n += 1
            try:
                with conn.cursor() as cursor:
                    cursor.execute("INSERT INTO work (id) VALUES (%s) ON CONFLICT DO NOTHING", (n,))
                acknowledged.append(n)
            except FailoverSuccessError as exc:
                switched.append(exc)
            except Exception as exc:  # reported below
                errors.append(exc)
                return
            if len(acknowledged) > 200_000 or (stop.is_set() and time.monotonic() > deadline):
                return
            time.sleep(0.005)

    deadline = time.monotonic() + 120
    thread = threading.Thread(target=work)
    thread.start()
    try:
        until(lambda: len(acknowledged) > 20, timeout=30, what="the workload to run")
        rds.failover_db_cluster(DBClusterIdentifier=topo.db.cluster_id)
        until(lambda: _writer(rds, topo.db.cluster_id) != old_writer, timeout=60, what="a new writer")
        until(lambda: switched or errors, timeout=90, what="the wrapper to fail over")
        count = len(acknowledged)
        until(lambda: len(acknowledged) > count + 20 or errors, timeout=60, what="the workload to go on")
    finally:
        stop.set()
        thread.join(timeout=120)
    try:
        assert not errors, errors
        assert switched, "the wrapper raised no FailoverSuccessError"
        new_writer = _writer(rds, topo.db.cluster_id)
        with conn.cursor() as cursor:
            cursor.execute("SELECT aurora_db_instance_identifier(), pg_is_in_recovery()")
            assert cursor.fetchone() == (new_writer, False)
    finally:
        conn.close()
    with psycopg.connect(_conninfo(topo, topo.cluster_endpoint), autocommit=True) as check:
        present = {row[0] for row in check.execute(
            "SELECT id FROM work WHERE id > %s AND id < %s", (base, base + 1_000_000)).fetchall()}
    missing = sorted(set(acknowledged) - present)
    assert not missing, f"{len(missing)} acknowledged rows lost: {missing[:10]}"
    # the old writer is a reader of the new one
    with psycopg.connect(_conninfo(topo, topo.names[old_writer]), autocommit=True) as old:
        until(lambda: old.execute("SELECT pg_is_in_recovery()").fetchone() == (True,), timeout=60,
              what="the old writer to follow the new one")


def test_describe_reports_the_new_topology(topo: Topo, rds: Any) -> None:
    cluster = _describe(rds, topo.db.cluster_id)
    members = {m["DBInstanceIdentifier"]: m for m in cluster["DBClusterMembers"]}
    assert sorted(members) == sorted([topo.db.instance_id, topo.reader_id])
    assert sum(1 for m in members.values() if m["IsClusterWriter"]) == 1
    assert all(m["PromotionTier"] == 1 for m in members.values())
    assert json.dumps(cluster, default=str)  # the answer is whole

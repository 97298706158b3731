"""A login counts when it happens, not when its connection ends: through a running server, an
application's pool (real psycopg connections, application_name 'orders-api') holds master-user
sessions open, and AURORAL.1 fails while they are open, with their IDs and peak concurrency in the
evidence (the store's finding follows without any GetFindings: the poller notices the login); closing
them keeps the finding (the logins stay in the window, now from their close records), and the
administration-host tag passes it. AURORAL.2 likewise with an open plaintext session; and an IAM
database login's audit event is in AURORAL.1's evidence, as CloudTrail's LookupEvents finds it.

One cluster for the module (rds.force_ssl 0: plaintext allowed), on the session's server.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import Server
from tests.rds.e2e_helpers import MASTER, Db, create_db, delete_db, ident, until
from tests.securityhub.findings import cluster_arn, cluster_finding

POOL = 3  # the pool's sessions, held open
DEADLINE = 10.0  # generous: the finding follows a login within about a second
FLOW_ID = re.compile(r"eni-[0-9a-f]+/\d+")


@pytest.fixture(scope="module")
def db(server: Server) -> Iterator[Db]:
    rds = server.client("rds")
    group = ident("live-pg")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group, DBParameterGroupFamily="aurora-postgresql16",
                                          Description="plaintext allowed")
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "0", "ApplyMethod": "immediate"}])
    created = create_db(rds, prefix="live", DBClusterParameterGroupName=group)
    try:
        yield created
    finally:
        delete_db(rds, created)
        with contextlib.suppress(Exception):
            rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=group)


finding = cluster_finding


def status(f: dict[str, Any]) -> str:
    return str(f["Compliance"]["Status"])


def evidence(f: dict[str, Any], key: str) -> str:
    return str(f["ProductFields"].get(f"auroral/Evidence/{key}", ""))


def ids(text: str) -> set[str]:
    found = set(text.split(", ")) if text else set()
    assert all(FLOW_ID.fullmatch(i) for i in found), text
    return found


def stored(server: Server, db: Db, control: str) -> dict[str, Any]:
    """The finding as the store holds it (``auroral findings --json``: no API call, so no evaluation
    that a GetFindings would start): what the advisor's own poller wrote."""
    out = subprocess.run([sys.executable, "-m", "auroral.cli", "findings", "--data-dir", str(server.data_dir),
                          "--all", "--json", "--control", control], capture_output=True, text=True, timeout=60,
                         env=server.env, check=True).stdout
    docs = [json.loads(line) for line in out.splitlines() if line.strip()]
    mine = [d for d in docs if d["Resources"][0]["Id"] == cluster_arn(server, db)]
    assert len(mine) == 1, out
    return dict(mine[0])


def closed_ids(server: Server, db: Db, application_name: str) -> set[str]:
    """The IDs of the close records of ``application_name``'s logins at the cluster's writer, from
    ``auroral flows --json`` (the server is shared: other clusters' records are in the same log)."""
    endpoint = server.client("rds").describe_db_instances(DBInstanceIdentifier=db.instance_id)[
        "DBInstances"][0]["DbiResourceId"]
    out = subprocess.run([sys.executable, "-m", "auroral.cli", "flows", "--data-dir", str(server.data_dir),
                          "--json", "--phase", "close", "--endpoint", endpoint, "--limit", "100000"],
                         capture_output=True, text=True, timeout=60, env=server.env, check=True).stdout
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {f"{r['interface-id']}/{r['connection-id']}" for r in records
            if r.get("application-name") == application_name and r.get("relayed")}


def test_an_open_pool_of_master_sessions_fails_at_once(server: Server, db: Db) -> None:
    rds = server.client("rds")
    assert status(finding(server, db, "AURORAL.1")) == "PASSED"
    with contextlib.ExitStack() as stack:
        pool = [stack.enter_context(db.connect(application_name="orders-api")) for _ in range(POOL)]
        for conn in pool:
            conn.execute("SELECT 1")
        # no GetFindings: the advisor's poller saw the logins and wrote the finding
        failed = until(lambda: [f for f in [stored(server, db, "AURORAL.1")] if status(f) == "FAILED"],
                       timeout=DEADLINE, what="AURORAL.1 FAILED in the store, the pool still open")[0]
        assert not any(conn.closed for conn in pool)
        assert ids(evidence(failed, "OpenSessions")) and len(ids(evidence(failed, "OpenSessions"))) == POOL
        # and GetFindings, the pool still open
        live = finding(server, db, "AURORAL.1")
        assert status(live) == "FAILED" and live["Workflow"]["Status"] == "NEW"
        open_ids = ids(evidence(live, "OpenSessions"))
        assert len(open_ids) == POOL and open_ids <= ids(evidence(live, "FlowRecords"))
        sources = evidence(live, "ApplicationSources")
        peak = re.search(r"peak (\d+) at once", sources)
        assert peak is not None and int(peak.group(1)) >= POOL, sources
        assert f"{POOL} login(s)" in sources and f"{POOL} sessions at once" in sources
        assert "application_name not an administration tool: orders-api" in sources
        assert evidence(live, "MasterLogins") == str(POOL)
        assert "auroral/Evidence/AuditEvents" not in live["ProductFields"]  # password logins have none
        assert evidence(live, "SuggestedRole").startswith("CREATE ROLE orders_api LOGIN;")
        # the open sessions have no close record yet
        assert not closed_ids(server, db, "orders-api") & open_ids
    # closed: the same logins, from their close records (the same IDs), still in the window
    closed = until(lambda: [f for f in [finding(server, db, "AURORAL.1")] if not evidence(f, "OpenSessions")],
                   timeout=DEADLINE, what="the pool's sessions closed")[0]
    assert status(closed) == "FAILED" and evidence(closed, "MasterLogins") == str(POOL)
    assert ids(evidence(closed, "FlowRecords")) == open_ids == closed_ids(server, db, "orders-api")
    assert f"{POOL} sessions at once" in evidence(closed, "ApplicationSources")
    # the fix: the source designated an administration host
    address = evidence(closed, "ApplicationSources").split(" ", 1)[0]
    rds.add_tags_to_resource(ResourceName=cluster_arn(server, db), Tags=[{"Key": "auroral:admin-hosts", "Value": address}])
    passed = finding(server, db, "AURORAL.1")
    assert status(passed) == "PASSED" and passed["Workflow"]["Status"] == "RESOLVED"
    assert passed["Id"] == closed["Id"]


def test_an_open_plaintext_session_fails_at_once(server: Server, db: Db) -> None:
    rds = server.client("rds")
    assert status(finding(server, db, "AURORAL.2")) == "PASSED"
    with db.connect(sslmode="disable", application_name="report-job") as plain:
        assert not plain.info.pgconn.ssl_in_use
        plain.execute("SELECT 1")
        failed = until(lambda: [f for f in [stored(server, db, "AURORAL.2")] if status(f) == "FAILED"],
                       timeout=DEADLINE, what="AURORAL.2 FAILED in the store, the session still open")[0]
        assert len(ids(evidence(failed, "OpenSessions"))) == 1
        live = finding(server, db, "AURORAL.2")
        assert status(live) == "FAILED" and live["Severity"]["Label"] == "HIGH"
        assert evidence(live, "PlaintextConnections") == "1"
        open_ids = ids(evidence(live, "OpenSessions"))
        assert open_ids == ids(evidence(live, "FlowRecords")) and len(open_ids) == 1
        assert "(report-job) x1" in evidence(live, "Sources")
    closed = until(lambda: [f for f in [finding(server, db, "AURORAL.2")] if not evidence(f, "OpenSessions")],
                   timeout=DEADLINE, what="the plaintext session closed")[0]
    assert status(closed) == "FAILED" and evidence(closed, "PlaintextConnections") == "1"
    assert ids(evidence(closed, "FlowRecords")) == open_ids == closed_ids(server, db, "report-job")
    # the fix: rds.force_ssl=1
    group = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["DBClusterParameterGroup"]
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    fixed = until(lambda: [f for f in [finding(server, db, "AURORAL.2")] if status(f) == "PASSED"],
                  timeout=DEADLINE, what="AURORAL.2 PASSED")[0]
    assert fixed["Workflow"]["Status"] == "RESOLVED"
    with pytest.raises(psycopg.OperationalError):
        db.connect(sslmode="disable").close()


def test_an_iam_login_brings_its_audit_event(server: Server, db: Db) -> None:
    """The master user in rds_iam logs in with a token: AURORAL.1's evidence names the audit event of
    the token's verification (rds-db connect), while the session is open and after it closed."""
    rds, trail = server.client("rds"), server.client("cloudtrail")
    rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, EnableIAMDatabaseAuthentication=True,
                          ApplyImmediately=True)
    rds.remove_tags_from_resource(ResourceName=cluster_arn(server, db), TagKeys=["auroral:admin-hosts"])
    with db.connect() as conn:
        conn.execute(f"GRANT rds_iam TO {MASTER}")
    token = rds.generate_db_auth_token(DBHostname=db.host, Port=db.port, DBUsername=MASTER,
                                       Region=server.region)
    try:
        with db.connect(MASTER, token, application_name="orders-api") as iam_session:
            failed = until(lambda: [f for f in [finding(server, db, "AURORAL.1")]
                                    if status(f) == "FAILED" and evidence(f, "AuditEvents")],
                           timeout=DEADLINE, what="AURORAL.1 with the IAM login's audit event")[0]
            [event_id] = evidence(failed, "AuditEvents").split(", ")
            assert len(ids(evidence(failed, "OpenSessions"))) == 1
            found = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventId",
                                                           "AttributeValue": event_id}])["Events"]
            assert len(found) == 1 and found[0]["EventName"] == "connect"
            event = json.loads(found[0]["CloudTrailEvent"])
            assert event["eventSource"] == "rds-db.amazonaws.com" and "errorCode" not in event
            assert event["requestParameters"]["dbUser"] == MASTER
            assert event["requestParameters"]["dbClusterIdentifier"] == db.cluster_id
            iam_session.execute(f"REVOKE rds_iam FROM {MASTER}")
        # the close record carries it too (what a restart reads back)
        after = until(lambda: [f for f in [finding(server, db, "AURORAL.1")] if not evidence(f, "OpenSessions")],
                      timeout=DEADLINE, what="the IAM session closed")[0]
        assert evidence(after, "AuditEvents") == event_id
    finally:
        with contextlib.suppress(psycopg.Error), db.connect() as conn:
            conn.execute(f"REVOKE rds_iam FROM {MASTER}")

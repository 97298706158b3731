"""auroral's own controls from inside the database (AURORAL.4 to AURORAL.9) and AURORAL.1's application
rule, through a running server: one cluster made with boto3; the insecure situations built with psql
and psycopg as the master user and the applications (CREATE ROLE, GRANT rds_superuser, CREATEROLE,
password_encryption = 'md5', a LOGIN role without a password, an application that owns its schema, IAM
database authentication with nobody in rds_iam, the master user used by a service); each FAILED, then
fixed with SQL or an API call and PASSED by the next GetFindings (boto3's securityhub client). No
finding carries a password or a password hash.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import Server
from tests.rds.e2e_helpers import MASTER, Db, create_db, delete_db, psql, until
from tests.securityhub.findings import cluster_arn, cluster_finding

PASSWORDS = ("Master-pass-1", "Admin-pass-1", "Legacy-pass-1", "Legacy-pass-2", "Shop-pass-1")
MD5_HASH = re.compile(r"md5[0-9a-f]{32}")


@pytest.fixture(scope="module")
def db(server: Server) -> Iterator[Db]:
    rds = server.client("rds")
    created = create_db(rds, prefix="inside")
    try:
        # the first read of its database (GetFindings asks for it; a loaded machine may take a while)
        until(lambda: len(server.client("securityhub").get_findings(Filters={
            "ComplianceSecurityControlId": [{"Value": "AURORAL.7", "Comparison": "EQUALS"}],
            "ResourceId": [{"Value": cluster_arn(server, created), "Comparison": "EQUALS"}]})["Findings"]) == 1,
            timeout=30, what="the cluster's inside-database findings")
        yield created
    finally:
        delete_db(rds, created)


def finding(server: Server, db: Db, control: str) -> dict[str, Any]:
    """The cluster's finding of ``control``, checked for secrets."""
    found = cluster_finding(server, db, control)
    text = json.dumps(found)
    assert not MD5_HASH.search(text) and not any(p in text for p in PASSWORDS), "a secret in a finding"
    return found


def status(server: Server, db: Db, control: str) -> str:
    return str(finding(server, db, control)["Compliance"]["Status"])


def evidence(f: dict[str, Any], key: str) -> str:
    return str(f["ProductFields"][f"auroral/Evidence/{key}"])


def stored_status(server: Server, control: str, cluster_id: str) -> str:
    """What ``auroral findings`` prints from the store (no API call, no read of the database)."""
    out = subprocess.run([sys.executable, "-m", "auroral.cli", "findings", "--data-dir", str(server.data_dir),
                          "--all", "--control", control], capture_output=True, text=True, timeout=60,
                         env=server.env, check=True).stdout
    rows = [line.split() for line in out.splitlines() if cluster_id in line]
    return rows[0][2] if rows else ""


def test_master_user_used_by_an_application(server: Server, db: Db) -> None:
    """AURORAL.1: an interactive psql session passes; a service with two sessions at once fails, with
    the flow records and the role to create instead; the source designated an administration host
    (the cluster tag auroral:admin-hosts) passes."""
    rds = server.client("rds")
    psql(db, "SELECT 1")
    until(lambda: evidence(finding(server, db, "AURORAL.1"), "MasterLogins") == "1", what="the psql login")
    assert status(server, db, "AURORAL.1") == "PASSED"

    with db.connect(application_name="orders-api") as one, db.connect(application_name="orders-api") as two:
        one.execute("SELECT 1")
        two.execute("SELECT 1")
    failed = until(lambda: [f for f in [finding(server, db, "AURORAL.1")]
                            if f["Compliance"]["Status"] == "FAILED"], what="AURORAL.1 FAILED")[0]
    assert failed["Severity"]["Label"] == "MEDIUM"
    sources = evidence(failed, "ApplicationSources")
    # the source's three logins: the psql session and the service's two at once
    assert "3 login(s)" in sources and "2 at once" in sources and "orders-api, psql" in sources
    assert "application_name not an administration tool: orders-api" in sources
    groups = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["VpcSecurityGroups"]
    assert all(g["VpcSecurityGroupId"] in sources for g in groups) and groups
    flow_ids = evidence(failed, "FlowRecords").split(", ")
    assert len(flow_ids) == 3 and all(re.fullmatch(r"eni-[0-9a-f]+/\d+", i) for i in flow_ids), flow_ids
    suggested = evidence(failed, "SuggestedRole")
    # no password in it: the role gets one with psql's \password (a SCRAM verifier), or IAM
    assert suggested.startswith("CREATE ROLE orders_api LOGIN;") and "PASSWORD '" not in suggested.upper()
    assert "\\password orders_api" in suggested
    assert 'GRANT CONNECT ON DATABASE "appdb" TO orders_api' in suggested
    assert evidence(failed, "AdminHosts") == "none (tag auroral:admin-hosts not set)"

    # the service's host, designated an administration host: its logins are an administrator's
    address = sources.split(" ", 1)[0]
    host = ipaddress.ip_network(address)
    rds.add_tags_to_resource(ResourceName=cluster_arn(server, db),
                             Tags=[{"Key": "auroral:admin-hosts", "Value": f"{host}, not-a-cidr"}])
    passed = finding(server, db, "AURORAL.1")
    assert passed["Compliance"]["Status"] == "PASSED" and passed["Workflow"]["Status"] == "RESOLVED"
    assert evidence(passed, "AdminHosts") == str(host) and evidence(passed, "AdminHostsIgnored") == "not-a-cidr"


def test_roles_inside_the_database(server: Server, db: Db) -> None:
    """AURORAL.4 (a login in rds_superuser, through a group), AURORAL.5 (CREATEROLE), AURORAL.6 (an MD5
    password), AURORAL.7 (a login without a password or rds_iam): FAILED naming the roles, PASSED once
    fixed with SQL. A fix is seen without GetFindings too: the session's end has the database read."""
    for control in ("AURORAL.4", "AURORAL.5", "AURORAL.6", "AURORAL.7"):
        assert status(server, db, control) == "PASSED", control  # the master user fails none of them
    psql(db, "CREATE ROLE ops NOLOGIN IN ROLE rds_superuser; "
             "CREATE ROLE app_admin LOGIN PASSWORD 'Admin-pass-1' IN ROLE ops; "
             "CREATE ROLE provisioner NOLOGIN CREATEROLE; "
             "SET password_encryption = 'md5'; CREATE ROLE legacy LOGIN PASSWORD 'Legacy-pass-1'; "
             "CREATE ROLE ghost LOGIN")
    expected = {"AURORAL.4": ("SuperuserMembers", "app_admin", "HIGH"),
                "AURORAL.5": ("CreateRoleRoles", "provisioner", "HIGH"),
                "AURORAL.6": ("Md5PasswordRoles", "legacy", "MEDIUM"),
                "AURORAL.7": ("LoginRolesWithoutCredential", "ghost", "LOW")}
    for control, (key, role, severity) in expected.items():
        f = finding(server, db, control)
        assert f["Compliance"]["Status"] == "FAILED" and f["Workflow"]["Status"] == "NEW", control
        assert evidence(f, key) == role and f["Severity"]["Label"] == severity
        assert role in f["ProductFields"]["auroral/Why"]
    # the endpoints take SCRAM only: an MD5-stored password does not even log in
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        db.connect(user="legacy", password="Legacy-pass-1")

    # the fixes, one session each; the first is seen without a GetFindings (the session's end)
    psql(db, "ALTER ROLE provisioner NOCREATEROLE")
    until(lambda: stored_status(server, "AURORAL.5", db.cluster_id) == "PASSED", timeout=5,
          what="AURORAL.5 PASSED in the store after the session ended")
    psql(db, "REVOKE ops FROM app_admin")
    psql(db, "SET password_encryption = 'scram-sha-256'; ALTER ROLE legacy PASSWORD 'Legacy-pass-2'")
    psql(db, "ALTER ROLE ghost NOLOGIN")
    for control in expected:
        f = finding(server, db, control)
        assert f["Compliance"]["Status"] == "PASSED" and f["Workflow"]["Status"] == "RESOLVED", control
    with db.connect(user="legacy", password="Legacy-pass-2") as conn:
        conn.execute("SELECT 1")
    # nor is any in auroral's own log
    assert server.log_path is not None
    log = server.log_path.read_text(errors="replace")
    assert not MD5_HASH.search(log) and not any(p in log for p in PASSWORDS)


def test_application_owns_its_schema(server: Server, db: Db) -> None:
    """AURORAL.8: a role that logs in at the endpoint and writes the schema it created fails; with the
    schema and table handed to a NOLOGIN owner and the login granted DML only, it passes."""
    assert status(server, db, "AURORAL.8") == "PASSED"
    psql(db, "CREATE ROLE shop LOGIN PASSWORD 'Shop-pass-1'; GRANT CREATE ON DATABASE appdb TO shop")
    with db.connect(user="shop", password="Shop-pass-1", application_name="shop") as conn:
        conn.execute("CREATE SCHEMA shop")
        conn.execute("CREATE TABLE shop.orders (id int)")
        conn.execute("INSERT INTO shop.orders VALUES (1), (2)")
    failed = until(lambda: [f for f in [finding(server, db, "AURORAL.8")]
                            if f["Compliance"]["Status"] == "FAILED"], what="AURORAL.8 FAILED")[0]
    assert evidence(failed, "OwnerLogins") == "shop" and failed["Severity"]["Label"] == "MEDIUM"
    owned = evidence(failed, "OwnedWrites")
    assert "schema appdb.shop" in owned and "1 written table(s) in appdb.shop" in owned and "1 login(s)" in owned

    psql(db, "CREATE ROLE shop_owner NOLOGIN; GRANT shop, shop_owner TO CURRENT_USER; "
             "REASSIGN OWNED BY shop TO shop_owner; REVOKE CREATE ON DATABASE appdb FROM shop; "
             "GRANT USAGE ON SCHEMA shop TO shop; "
             "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA shop TO shop")
    fixed = finding(server, db, "AURORAL.8")
    assert fixed["Compliance"]["Status"] == "PASSED", fixed["ProductFields"]
    with db.connect(user="shop", password="Shop-pass-1") as conn:  # the application still works
        conn.execute("INSERT INTO shop.orders VALUES (3)")


def test_iam_authentication_without_iam_users(server: Server, db: Db) -> None:
    """AURORAL.9: IAM database authentication on, nobody in rds_iam (the master user holds rds_iam only
    to grant it) fails; a login granted rds_iam passes, and is no AURORAL.7 login without a password."""
    rds = server.client("rds")
    assert status(server, db, "AURORAL.9") == "PASSED"  # off: RDS.12's business
    rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, EnableIAMDatabaseAuthentication=True,
                          ApplyImmediately=True)
    failed = until(lambda: [f for f in [finding(server, db, "AURORAL.9")]
                            if f["Compliance"]["Status"] == "FAILED"], what="AURORAL.9 FAILED")[0]
    assert evidence(failed, "RdsIamMembers") == "none" and failed["Severity"]["Label"] == "LOW"
    psql(db, "CREATE ROLE iam_app LOGIN; GRANT rds_iam TO iam_app")
    passed = finding(server, db, "AURORAL.9")
    assert passed["Compliance"]["Status"] == "PASSED" and evidence(passed, "RdsIamMembers") == "iam_app"
    assert status(server, db, "AURORAL.7") == "PASSED"
    assert MASTER not in evidence(passed, "RdsIamMembers")

"""AURORAL.4 to AURORAL.9, pure: who is named (never the master user where the rule excludes it, never the
engine's roles), a cluster not read yet has no finding, long lists are cut with an exact count, and
AURORAL.8 needs both a login at the endpoints and a written schema or table owned."""

from __future__ import annotations

import datetime as dt

from auroral.advisor.checks import evaluate
from auroral.advisor.database import DatabaseState, RoleInfo, SchemaWrites
from auroral.advisor.snapshot import Snapshot
from auroral.gateway.flows import FlowRecord
from auroral.rds.model import Cluster, Instance

NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
ACCOUNT = "111122223333"


def role(name: str, *, login: bool = True, createrole: bool = False, superuser: bool = False,
         iam: bool = False, password: bool = True, md5: bool = False) -> RoleInfo:
    return RoleInfo(name, login, createrole, superuser, iam, password, md5)


MASTER = role("boss", createrole=True, superuser=True)
ENGINE = [role("rds_superuser", login=False, createrole=True), role("rds_iam", login=False, iam=True),
          role("rdsrepladmin", password=False)]


def snapshot(roles: list[RoleInfo] | None, writes: tuple[SchemaWrites, ...] = (), users: tuple[str, ...] = (),
             iam_auth: bool = False, major: int = 16) -> Snapshot:
    cluster = Cluster(identifier="c1", resource_id="cluster-1", account=ACCOUNT, region="us-east-1",
                      engine_version=f"{major}.4", major=major, master_username="boss", created=NOW,
                      parameter_group="default", iam_auth=iam_auth)
    instance = Instance(identifier="i1", resource_id="db-1", cluster_identifier="c1", account=ACCOUNT,
                        region="us-east-1", instance_class="db.r6g.large", engine_version="16.4", created=NOW,
                        availability_zone="us-east-1a")
    flows = [FlowRecord(account_id=ACCOUNT, interface_id="eni-1", srcaddr="10.0.0.5", dstaddr="10.0.0.9",
                        srcport=40000 + n, dstport=5432, start=int(NOW.timestamp()) - 60,
                        end=int(NOW.timestamp()) - 60, action="ACCEPT", reason="", endpoint_id="db-1",
                        connection_id=n, phase="close", db_user=user, application_name="svc", tls=True,
                        relayed=True) for n, user in enumerate(users)]
    databases = {} if roles is None else {"cluster-1": DatabaseState(0.0, tuple(roles), writes)}
    return Snapshot(account=ACCOUNT, region="us-east-1", partition="aws", now=NOW, clusters=[cluster],
                    instances=[instance], flows=flows, databases=databases)


def results(s: Snapshot) -> dict[str, tuple[str, dict[str, str], str]]:
    return {e.control.id: (e.status, e.evidence, e.why) for e in evaluate(s, with_global=False)
            if e.control.id in {f"AURORAL.{n}" for n in range(4, 10)}}


def test_not_read_yet_means_no_finding() -> None:
    assert results(snapshot(None)) == {}


def test_the_master_and_the_engine_roles_pass() -> None:
    found = results(snapshot([MASTER, *ENGINE]))
    assert {c: s for c, (s, _e, _w) in found.items()} == {f"AURORAL.{n}": "PASSED" for n in range(4, 10)}


def test_each_rule_names_its_roles() -> None:
    found = results(snapshot([MASTER, *ENGINE, role("deployer", superuser=True), role("ops", login=False, superuser=True),
                              role("prov", login=False, createrole=True), role("legacy", md5=True),
                              role("ghost", password=False), role("iam_app", password=False, iam=True)],
                             major=15))
    assert found["AURORAL.4"][:2] == ("FAILED", {"SuperuserMembers": "deployer", "MasterUsername": "boss"})
    assert found["AURORAL.5"][0] == "FAILED" and found["AURORAL.5"][1]["CreateRoleRoles"] == "prov"
    assert "PostgreSQL 15: CREATEROLE can grant itself rds_superuser" in found["AURORAL.5"][2]
    assert found["AURORAL.6"][1]["Md5PasswordRoles"] == "legacy"
    assert found["AURORAL.7"][1]["LoginRolesWithoutCredential"] == "ghost"  # iam_app is an IAM user


def test_long_lists_are_cut_with_the_count() -> None:
    many = [role(f"r{n:02d}", md5=True) for n in range(25)]
    status, evidence, why = results(snapshot([MASTER, *many]))["AURORAL.6"]
    assert status == "FAILED" and why.startswith("25 role(s)") and evidence["Md5PasswordRoles"].endswith("(+5 more)")


def test_schema_owner_rule_needs_a_login_and_a_write() -> None:
    writes = (SchemaWrites("app", "shop", "shop", "shop", 2), SchemaWrites("app", "public", "boss", "etl", 1))
    roles = [MASTER, role("shop"), role("etl")]
    assert results(snapshot(roles, writes))["AURORAL.8"][0] == "PASSED"  # nobody logged in
    assert results(snapshot(roles, writes, users=("boss",)))["AURORAL.8"][0] == "PASSED"  # the master: AURORAL.1's
    status, evidence, _why = results(snapshot(roles, writes, users=("shop", "etl", "shop")))["AURORAL.8"]
    assert status == "FAILED" and evidence["OwnerLogins"] == "etl, shop"
    assert evidence["OwnedWrites"] == ("etl: 1 written table(s) in app.public; 1 login(s) | "
                                       "shop: schema app.shop; 2 written table(s) in app.shop; 2 login(s)")


def test_iam_authentication_without_members() -> None:
    assert results(snapshot([MASTER, *ENGINE], iam_auth=True))["AURORAL.9"][0] == "FAILED"
    assert results(snapshot([MASTER, *ENGINE, role("iam_app", password=False, iam=True)], iam_auth=True))[
        "AURORAL.9"][:2] == ("PASSED", {"IAMDatabaseAuthenticationEnabled": "true", "RdsIamMembers": "iam_app"})


def test_memberships_follow_chains_and_inheritance_in_one_pass() -> None:
    from auroral.advisor.database import memberships
    # 1 <- 2 <- 3 (inheriting), 3 <- 4 (not inheriting), a cycle 5 <-> 6 through 2, and a long chain
    grants = [(1, 2, True), (2, 3, True), (3, 4, False), (2, 5, True), (5, 6, True), (6, 5, True)]
    assert memberships(1, grants, inheriting_only=False) == {1, 2, 3, 4, 5, 6}
    assert memberships(1, grants, inheriting_only=True) == {1, 2, 3, 5, 6}
    assert memberships(None, grants, inheriting_only=False) == set()
    chain = [(i, i + 1, True) for i in range(100_000)]
    assert len(memberships(0, chain, inheriting_only=True)) == 100_001

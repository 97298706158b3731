"""AURORAL.3, pure: which policies let a principal create or modify an Aurora cluster with a master
password of its own, decided by the real policy evaluation (resource-narrowed grants, permissions
boundaries, condition keys, explicit Denies) over a ``Snapshot``."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from auroral.advisor.checks import Snapshot, auroral_3, evaluate
from auroral.advisor.master_password import IamPrincipal, PolicySource

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ACCOUNT = "111122223333"


def doc(*statements: dict[str, Any]) -> PolicySource:
    return PolicySource("p", json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": "*", **extra}


UNMANAGED = {"Bool": {"rds:ManageMasterUserPassword": "false"}}


def verdict(*sources: PolicySource, boundary: PolicySource | None = None, kind: str = "user",
            tags: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    arn = f"arn:aws:iam::{ACCOUNT}:{kind}/ops"
    p = IamPrincipal(kind, "ops", arn, "AIDAEXAMPLE", tags or {}, list(sources), boundary)
    s = Snapshot(account=ACCOUNT, region="eu-west-1", partition="aws", now=NOW, principals=[p])
    (ev,) = list(auroral_3(s))
    assert ev.resource_id == arn and ev.resource_type == ("AwsIamUser" if kind == "user" else "AwsIamRole")
    return ev.status, ev.evidence


@pytest.mark.parametrize(("sources", "status", "allowed"), [
    ([], "PASSED", "none"),
    ([doc(allow("rds:Describe*"))], "PASSED", "none"),
    ([doc(allow("rds:*"))], "FAILED", "rds:CreateDBCluster, rds:ModifyDBCluster"),
    ([doc(allow("*"))], "FAILED", "rds:CreateDBCluster, rds:ModifyDBCluster"),
    ([doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})], "FAILED",
     "rds:CreateDBCluster, rds:ModifyDBCluster"),
    # a grant narrowed to some clusters still counts (a name the pattern matches is tried)
    ([doc(allow("rds:CreateDBCluster", "arn:aws:rds:*:*:cluster:prod-*"))], "FAILED", "rds:CreateDBCluster"),
    # ... but not one of another account
    ([doc(allow("rds:CreateDBCluster", "arn:aws:rds:*:999988887777:cluster:*"))], "PASSED", "none"),
    # a grant only for managed passwords is not one for a password of one's own
    ([doc(allow("rds:CreateDBCluster", Condition={"Bool": {"rds:ManageMasterUserPassword": "true"}}))],
     "PASSED", "none"),
    # an engine condition: the creates this control is about are aurora-postgresql's
    ([doc(allow("rds:CreateDBCluster", Condition={"StringEquals": {"rds:DatabaseEngine": "aurora-postgresql"}}))],
     "FAILED", "rds:CreateDBCluster"),
    ([doc(allow("rds:CreateDBCluster", Condition={"StringEquals": {"rds:DatabaseEngine": "aurora-mysql"}}))],
     "PASSED", "none"),
    # an unconditional Deny of everything rds wins over any Allow
    ([doc(allow("*")), doc(deny("rds:*"))], "PASSED", "none"),
    ([doc(allow("*"), deny(["rds:CreateDBCluster", "rds:ModifyDBCluster"], Condition=UNMANAGED))], "PASSED", "none"),
])
def test_policies(sources: list[PolicySource], status: str, allowed: str) -> None:
    got, evidence = verdict(*sources)
    assert (got, evidence["AllowedActions"]) == (status, allowed)


def test_the_modify_loophole() -> None:
    status, evidence = verdict(doc(allow("rds:*")), doc(deny("rds:CreateDBCluster", Condition=UNMANAGED)))
    assert status == "FAILED" and evidence["AllowedActions"] == "rds:ModifyDBCluster"
    assert evidence["CreateDBClusterDeniedBy"] == "p, Statement[0]"
    assert "rds:ModifyDBCluster stays allowed" in evidence["Loophole"]
    # Modify allowed without any Deny on Create is no loophole, just a failure
    status, evidence = verdict(doc(allow("rds:ModifyDBCluster")))
    assert status == "FAILED" and "Loophole" not in evidence and "CreateDBClusterDeniedBy" not in evidence


def test_permissions_boundary_limits() -> None:
    grant = doc(allow("rds:*"))
    assert verdict(grant, boundary=doc(allow("rds:Describe*")))[0] == "PASSED"
    status, evidence = verdict(grant, boundary=doc(allow("rds:*"), deny("rds:CreateDBCluster", Condition=UNMANAGED)))
    assert status == "FAILED" and evidence["AllowedActions"] == "rds:ModifyDBCluster"
    assert evidence["CreateDBClusterDeniedBy"] == "p (permissions boundary), Statement[1]"
    # a boundary that no longer parses allows nothing
    assert verdict(grant, boundary=PolicySource("b", "{not json"))[0] == "PASSED"


def test_principal_keys() -> None:
    tagged = doc(allow("rds:*", Condition={"StringEquals": {"aws:PrincipalTag/team": "dba"}}))
    assert verdict(tagged, tags={"team": "dba"})[0] == "FAILED"
    assert verdict(tagged, tags={"team": "app"})[0] == "PASSED"
    by_name = doc(allow("rds:*", Condition={"StringEquals": {"aws:username": "ops"}}))
    assert verdict(by_name)[0] == "FAILED"
    assert verdict(by_name, kind="role")[0] == "PASSED"  # a role session has no aws:username
    region = doc(allow("rds:*", Condition={"StringEquals": {"aws:RequestedRegion": "us-east-1"}}))
    assert verdict(region)[0] == "PASSED"  # the home region of the snapshot is eu-west-1


def test_home_region_only() -> None:
    p = IamPrincipal("user", "ops", f"arn:aws:iam::{ACCOUNT}:user/ops", "AIDAEXAMPLE", {}, [doc(allow("*"))])
    s = Snapshot(account=ACCOUNT, region="eu-west-1", partition="aws", now=NOW, principals=[p])
    assert [e.control.id for e in evaluate(s, with_global=True) if e.control.id == "AURORAL.3"] == ["AURORAL.3"]
    assert not [e for e in evaluate(s, with_global=False) if e.control.id == "AURORAL.3"]

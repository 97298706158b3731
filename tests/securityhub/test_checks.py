"""The advisor's checks, pure: which security-group rules each EC2 control fails on, and the engine's
finding lifecycle (stable IDs, PASSED resolves, ARCHIVED when the resource is gone, the user's
workflow kept) over a real Store."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest

from auroral.advisor.checks import Snapshot, ec2_18, ec2_19, ec2_53, ec2_54
from auroral.advisor.engine import Advisor
from auroral.ec2.model import Rule, SecurityGroup
from auroral.errors import AwsError
from auroral.securityhub.service import _untoken
from auroral.store import Store

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def snap(*rules: Rule) -> Snapshot:
    group = SecurityGroup(id="sg-1", vpc_id="vpc-1", name="g")
    return Snapshot(account="111122223333", region="us-east-1", partition="aws", now=NOW,
                    groups=[(group, list(rules))])


def rule(protocol: str, lo: int, hi: int, v4: str | None = "0.0.0.0/0", v6: str | None = None,
         egress: bool = False) -> Rule:
    return Rule(id="sgr-1", group_id="sg-1", egress=egress, protocol=protocol, from_port=lo, to_port=hi,
                cidr_ipv4=v4, cidr_ipv6=v6)


@pytest.mark.parametrize(("r", "fails"), [
    (rule("tcp", 5432, 5432), {"EC2.18", "EC2.19"}),
    (rule("tcp", 5000, 6000), {"EC2.18", "EC2.19"}),  # a range covering 5432
    (rule("-1", -1, -1), {"EC2.18", "EC2.19", "EC2.53"}),  # every port
    (rule("tcp", 22, 22, v4=None, v6="::/0"), {"EC2.18", "EC2.19", "EC2.54"}),
    (rule("tcp", 443, 443), set()),  # an authorized port
    (rule("tcp", 80, 81), {"EC2.18"}),  # more than the authorized ports, no high-risk one
    (rule("tcp", 80, 443), {"EC2.18", "EC2.19"}),  # covers 110, 135, 143
    (rule("tcp", 5432, 5432, v4="10.0.0.0/8"), set()),  # not unrestricted
    (rule("tcp", 5432, 5432, egress=True), set()),  # egress is not checked
    (rule("icmp", -1, -1), {"EC2.18"}),  # ICMP covers no port
])
def test_security_group_controls(r: Rule, fails: set[str]) -> None:
    s = snap(r)
    failed = {e.control.id for check in (ec2_18, ec2_19, ec2_53, ec2_54) for e in check(s) if e.status == "FAILED"}
    assert failed == fails


def test_engine_lifecycle(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    current: list[Rule] = [rule("tcp", 5432, 5432)]
    groups = [True]

    def snapshot() -> Snapshot:
        return snap(*current) if groups[0] else Snapshot(account="111122223333", region="us-east-1",
                                                         partition="aws", now=NOW)

    advisor = Advisor(store, region="us-east-1", account="111122223333", partition="aws", snapshot=snapshot,
                      with_global=False)
    try:
        assert advisor.refresh() == 4
        assert advisor.refresh() == 0  # nothing written since: nothing evaluated
        by = {d["Compliance"]["SecurityControlId"]: d for d in advisor.findings()}
        assert by["EC2.19"]["Compliance"]["Status"] == "FAILED" and by["EC2.19"]["Workflow"]["Status"] == "NEW"
        assert by["EC2.53"]["Compliance"]["Status"] == "PASSED" and by["EC2.53"]["Workflow"]["Status"] == "RESOLVED"
        advisor.save_all([dict(by["EC2.18"], Workflow={"Status": "SUPPRESSED"})])
        current[:] = []
        store.put("x", "111122223333", "k", {})  # any write: the next refresh re-evaluates
        advisor.refresh()
        again = {d["Compliance"]["SecurityControlId"]: d for d in advisor.findings()}
        assert again["EC2.19"]["Id"] == by["EC2.19"]["Id"]
        assert again["EC2.19"]["Compliance"]["Status"] == "PASSED"
        assert again["EC2.19"]["Workflow"]["Status"] == "RESOLVED"
        assert again["EC2.18"]["Workflow"]["Status"] == "SUPPRESSED"  # the user's choice stays
        groups[0] = False
        store.put("x", "111122223333", "k", {"n": 1})
        advisor.refresh()
        assert {d["RecordState"] for d in advisor.findings()} == {"ARCHIVED"}
        # a new Advisor over the same store reads the same findings (kept across restarts)
        other = Advisor(store, region="us-east-1", account="111122223333", partition="aws", snapshot=snapshot,
                        with_global=False)
        assert sorted(d["Id"] for d in other.findings()) == sorted(d["Id"] for d in advisor.findings())
    finally:
        store.close()


@pytest.mark.parametrize("token", [
    "!!!", "", base64.urlsafe_b64encode(b"[1]").decode(), base64.urlsafe_b64encode(b'{"o": 1e999, "f": "q"}').decode(),
    base64.urlsafe_b64encode(b'{"o": -1, "f": "q"}').decode(), base64.urlsafe_b64encode(b'{"o": 1, "f": "other"}').decode(),
])
def test_hostile_next_tokens_are_invalid_input(token: str) -> None:
    with pytest.raises(AwsError) as err:
        _untoken(token, "q")
    assert err.value.code == "InvalidInputException"

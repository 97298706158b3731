"""AURORAL.1's application rule, pure: which master-user login patterns fail (application_name, repeated,
concurrent), which pass (an occasional administration session, an administration host), and the
suggested role's name (plain identifiers only, whatever the client sent)."""

from __future__ import annotations

import datetime as dt

import pytest

from auroral.advisor.master_use import auroral_1, peak_concurrency, role_name
from auroral.advisor.snapshot import Snapshot, sequence_of
from auroral.gateway.flows import FlowRecord
from auroral.rds.model import Cluster, Instance

NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
T = int(NOW.timestamp()) - 3600


def login(n: int, *, src: str = "10.0.0.5", app: str | None = "psql", start: int = T, end: int | None = None,
          user: str = "master", phase: str = "close") -> FlowRecord:
    return FlowRecord(account_id="111122223333", interface_id="eni-1", srcaddr=src, dstaddr="10.0.0.9",
                      srcport=40000 + n, dstport=5432, start=start, end=start if end is None else end,
                      action="ACCEPT", reason="", endpoint_id="db-1", connection_id=n,
                      phase="close" if phase == "close" else "open", db_user=user if phase == "close" else None,
                      application_name=app, tls=True, relayed=True)


def verdict(flows: list[FlowRecord], tags: dict[str, str] | None = None,
            ordered: list[FlowRecord] | None = None) -> tuple[str, dict[str, str]]:
    cluster = Cluster(identifier="c1", resource_id="cluster-1", account="111122223333", region="us-east-1",
                      engine_version="16.4", major=16, master_username="master", created=NOW,
                      parameter_group="default.aurora-postgresql16", database_name="appdb",
                      vpc_security_group_ids=["sg-1"], tags=tags or {})
    instance = Instance(identifier="i1", resource_id="db-1", cluster_identifier="c1", account="111122223333",
                        region="us-east-1", instance_class="db.r6g.large", engine_version="16.4", created=NOW,
                        availability_zone="us-east-1a")
    s = Snapshot(account="111122223333", region="us-east-1", partition="aws", now=NOW, clusters=[cluster],
                 instances=[instance], flows=flows, sequence=sequence_of(ordered or []))
    [ev] = list(auroral_1(s))
    return ev.status, ev.evidence


def test_occasional_admin_session_passes() -> None:
    assert verdict([login(1), login(2, start=T + 60, app="pgAdmin 4 - DB:appdb")])[0] == "PASSED"
    assert verdict([])[0] == "PASSED"
    assert verdict([login(1, user="app")])[0] == "PASSED"  # not the master user


def test_application_name_fails_with_evidence() -> None:
    status, ev = verdict([login(1, app="orders-api")])
    assert status == "FAILED"
    assert ev["FlowRecords"] == "eni-1/1" and "[sg-1]" in ev["ApplicationSources"]
    assert ev["SuggestedRole"].startswith("CREATE ROLE orders_api LOGIN;")
    assert verdict([login(1, app=None)])[0] == "FAILED"  # a driver's default: no name


def test_repeated_logins_fail() -> None:
    nine = [login(i, start=T + 60 * i) for i in range(9)]
    assert verdict(nine)[0] == "PASSED"
    status, ev = verdict([*nine, login(9, start=T + 600)])
    assert status == "FAILED" and "10 logins in 24 h (>= 10)" in ev["ApplicationSources"]
    assert ev["SuggestedRole"].startswith("CREATE ROLE app LOGIN;")  # no application name to go by


def test_concurrency_from_the_flow_log_order() -> None:
    a, b = login(1), login(2)
    # the same second, one after the other (a closed before b opened) ...
    sequential = [login(1, phase="open"), a, login(2, phase="open"), b]
    assert peak_concurrency([a, b], sequence_of(sequential)) == 1
    assert verdict([a, b], ordered=sequential)[0] == "PASSED"
    # ... or at once (b opened before a closed)
    together = [login(1, phase="open"), login(2, phase="open"), a, b]
    assert peak_concurrency([a, b], sequence_of(together)) == 2
    assert verdict([a, b], ordered=together)[0] == "FAILED"
    # an earlier run's records: by their times (overlapping seconds)
    assert peak_concurrency([login(1, end=T + 10), login(2, start=T + 5, end=T + 20)]) == 2


def test_admin_hosts_are_exempt() -> None:
    flows = [login(1, app="orders-api", src="10.0.0.5"), login(2, app="orders-api", src="::ffff:10.0.0.6")]
    status, ev = verdict(flows, {"auroral:admin-hosts": "10.0.0.0/29"})
    assert status == "PASSED" and ev["AdminHosts"] == "10.0.0.0/29"
    status, ev = verdict(flows, {"auroral:admin-hosts": "10.0.0.5/32,bogus"})
    assert status == "FAILED" and ev["AdminHostsIgnored"] == "bogus"
    assert ev["ApplicationSources"].startswith("::ffff:10.0.0.6 ")


@pytest.mark.parametrize(("app", "role"), [
    ("orders-api", "orders_api"), ("Billing Service v2", "billing_service_v2"), ("9lives", "app_9lives"),
    ("'; DROP ROLE x; --", "drop_role_x"), ("psql", "app"), ("", "app"), (None, "app"), ("ü" * 80, "app"),
    ("user", "app_user"), ("Select", "app_select"), ("public", "app_public"), ("pg_monitor", "app_pg_monitor"),
    ("rds_superuser", "app_rds_superuser"), ("rdsadmin", "app_rdsadmin"), ("users", "users"),
])
def test_suggested_role_names_are_plain_identifiers(app: str | None, role: str) -> None:
    assert role_name(app) == role

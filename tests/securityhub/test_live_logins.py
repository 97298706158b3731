"""Live logins, pure: the flow log keeps a connection's login from the moment it reaches the relay until
its close record replaces it (never written to the file, never counted twice); AURORAL.1 and AURORAL.2
count the open sessions (their IDs, the peak, the audit events of IAM logins); and a close record keeps
an IAM login's audit event across a restart (read back from the file)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from auroral.advisor.checks import auroral_2
from auroral.advisor.master_use import auroral_1
from auroral.advisor.snapshot import Snapshot, open_session, sequence_of, with_live
from auroral.gateway.flows import FlowLog, FlowRecord
from auroral.rds.model import Cluster, Instance

NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
T = int(NOW.timestamp()) - 3600


def record(n: int, phase: str, *, login: bool = True, app: str | None = "orders-api", tls: bool = True,
           audit: str | None = None) -> FlowRecord:
    """Connection ``n``'s record of ``phase``; ``login``: with the startup packet's fields (a close
    record's, or a live login's)."""
    return FlowRecord(account_id="111122223333", interface_id="eni-1", srcaddr="10.0.0.5", dstaddr="10.0.0.9",
                      srcport=40000 + n, dstport=5432, start=T, end=T, action="ACCEPT", reason="",
                      endpoint_id="db-1", connection_id=n, phase="close" if phase == "close" else "open",
                      db_user="master" if login else None, application_name=app if login else None,
                      tls=tls if login else None, relayed=login, audit_event_id=audit if login else None)


def snapshot(flows: list[FlowRecord], ordered: list[FlowRecord], live: list[FlowRecord],
             **params: str) -> Snapshot:
    cluster = Cluster(identifier="c1", resource_id="cluster-1", account="111122223333", region="us-east-1",
                      engine_version="16.4", major=16, master_username="master", created=NOW,
                      parameter_group="default.aurora-postgresql16", database_name="appdb",
                      vpc_security_group_ids=["sg-1"], parameters=dict(params))
    instance = Instance(identifier="i1", resource_id="db-1", cluster_identifier="c1", account="111122223333",
                        region="us-east-1", instance_class="db.r6g.large", engine_version="16.4", created=NOW,
                        availability_zone="us-east-1a")
    return Snapshot(account="111122223333", region="us-east-1", partition="aws", now=NOW, clusters=[cluster],
                    instances=[instance], flows=with_live(flows, live, NOW), sequence=sequence_of(ordered, live))


def test_the_flow_log_keeps_a_login_until_its_close_record(tmp_path: Path) -> None:
    flows = FlowLog(tmp_path / "flows.jsonl")
    flows.record(record(1, "open", login=False))
    flows.login(record(1, "open"))
    assert flows.logins == 1 and flows.count == 1
    ring, live = flows.view()
    assert [r.phase for r in ring] == ["open"] and ring[0].db_user is None
    assert live == [record(1, "open")] and open_session(live[0])
    # the file has the two records per connection only: the live login is not written
    flows.record(record(1, "close"))
    assert flows.live() == [] and flows.count == 2 and flows.logins == 1
    lines = [json.loads(line) for line in (tmp_path / "flows.jsonl").read_text().splitlines()]
    assert [(d["phase"], "db-user" in d) for d in lines] == [("open", False), ("close", True)]
    # a close record of another connection leaves a live login alone
    flows.login(record(2, "open"))
    flows.record(record(3, "close"))
    assert [r.connection_id for r in flows.live()] == [2]


def test_an_iam_logins_audit_event_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    flows = FlowLog(path)
    flows.record(record(1, "close", audit="0b6c5a4e-1111-4222-8333-944445555666"))
    flows.record(record(2, "close"))
    assert "audit-event-id" not in record(2, "close").to_dict()
    back = FlowLog(path).logins_before(T - 1)
    assert [r.audit_event_id for r in back] == ["0b6c5a4e-1111-4222-8333-944445555666", None]
    assert back[0] == record(1, "close", audit="0b6c5a4e-1111-4222-8333-944445555666")


def test_open_sessions_count_once_with_their_ids_and_the_peak() -> None:
    ordered = [record(1, "open", login=False), record(2, "open", login=False), record(3, "open", login=False),
               record(1, "close")]
    live = [record(2, "open"), record(3, "open", audit="evt-3")]
    s = snapshot([record(1, "close")], ordered, live)
    assert [(r.connection_id, r.phase, r.end) for r in s.flows] == [
        (1, "close", T), (2, "open", int(NOW.timestamp())), (3, "open", int(NOW.timestamp()))]
    [ev] = list(auroral_1(s))
    assert ev.status == "FAILED"
    assert ev.evidence["FlowRecords"] == "eni-1/1, eni-1/2, eni-1/3"
    assert ev.evidence["OpenSessions"] == "eni-1/2, eni-1/3"
    assert ev.evidence["AuditEvents"] == "evt-3"
    assert ev.evidence["MasterLogins"] == "3" and "peak 3 at once" in ev.evidence["ApplicationSources"]
    # a connection seen both ways (its close record and a stale live login) counts once
    again = snapshot([record(1, "close"), record(2, "close")], ordered, live)
    assert [r.connection_id for r in again.flows] == [1, 2, 3]


def test_a_live_admin_session_alone_passes_and_live_sessions_make_concurrency() -> None:
    # one open psql session: occasional administration
    [ev] = list(auroral_1(snapshot([], [record(1, "open", login=False)], [record(1, "open", app="psql")])))
    assert ev.status == "PASSED" and ev.evidence["MasterLogins"] == "1" and "OpenSessions" not in ev.evidence
    # two psql sessions open at once: the pool pattern, decided while they are open
    ordered = [record(1, "open", login=False), record(2, "open", login=False)]
    live = [record(1, "open", app="psql"), record(2, "open", app="psql")]
    [ev] = list(auroral_1(snapshot([], ordered, live)))
    assert ev.status == "FAILED" and "2 sessions at once (>= 2)" in ev.evidence["ApplicationSources"]
    # their open records gone from memory (an old connection): by their times, open until now
    [ev] = list(auroral_1(snapshot([], [], live)))
    assert ev.status == "FAILED" and "peak 2 at once" in ev.evidence["ApplicationSources"]


def test_an_open_plaintext_session_fails_auroral_2() -> None:
    live = [record(1, "open", tls=False), record(2, "open")]
    [ev] = list(auroral_2(snapshot([], [], live)))
    assert ev.status == "FAILED" and ev.evidence["PlaintextConnections"] == "1"
    assert ev.evidence["FlowRecords"] == ev.evidence["OpenSessions"] == "eni-1/1"
    closed = dataclasses.replace(record(1, "close", tls=False), end=T + 60)
    [ev] = list(auroral_2(snapshot([closed], [], [])))
    assert ev.status == "FAILED" and ev.evidence["FlowRecords"] == "eni-1/1" and "OpenSessions" not in ev.evidence
    [ev] = list(auroral_2(snapshot([], [], live, **{"rds.force_ssl": "1"})))
    assert ev.status == "PASSED"

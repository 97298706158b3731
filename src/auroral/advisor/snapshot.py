"""What the checks decide on (``Snapshot``: one account and region at one moment) and what they answer
(``Evaluation``: one per control and resource). Pure data: the engine (``auroral.advisor.engine``)
takes the snapshot from the services and turns evaluations into findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from auroral.ec2.model import Rule, SecurityGroup
from auroral.gateway.flows import FlowRecord, connection_key
from auroral.iam.model import AccessKey, ManagedPolicy
from auroral.kms.model import KeyRecord
from auroral.rds.model import Cluster, Instance
from auroral.secrets.model import Secret

from .controls import FLOW_WINDOW_HOURS, Control
from .database import DatabaseState
from .master_password import IamPrincipal

PASSED = "PASSED"
FAILED = "FAILED"


@dataclass(frozen=True)
class Evaluation:
    control: Control
    resource_id: str  # an ARN, or AWS::::Account:<id>
    status: str
    why: str
    evidence: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # the ASFF Resources[].Details, when known
    resource_type: str | None = None  # when not the control's (AURORAL.3: AwsIamUser or AwsIamRole)


@dataclass
class Snapshot:
    account: str
    region: str
    partition: str
    now: datetime
    clusters: list[Cluster] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    groups: list[tuple[SecurityGroup, list[Rule]]] = field(default_factory=list)
    root_keys: list[AccessKey] = field(default_factory=list)
    policies: list[ManagedPolicy] = field(default_factory=list)
    keys: list[KeyRecord] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    # the logins: the gateway's close records, oldest first, then the live logins of the connections
    # open now (``open_session``: phase "open" with a ``db_user``, ``end`` the snapshot's time); each
    # connection once
    flows: list[FlowRecord] = field(default_factory=list)
    principals: list[IamPrincipal] = field(default_factory=list)  # IAM users and roles (home region only)
    # the inside of each cluster's database as last read (``auroral.advisor.database``), by the
    # cluster's resource id; a cluster not read yet has none, and no inside-database finding
    databases: dict[str, DatabaseState] = field(default_factory=dict)
    # where each of this run's connections opened and closed in the flow log's sequence (positions),
    # by ``session_key``: what tells sessions open at once apart from sessions one after the other in
    # the same second (the records' times are whole seconds)
    sequence: dict[tuple[int, int, int], tuple[int, int]] = field(default_factory=dict)

    def cluster_arn(self, c: Cluster) -> str:
        return f"arn:{self.partition}:rds:{self.region}:{self.account}:cluster:{c.identifier}"

    def instance_arn(self, i: Instance) -> str:
        return f"arn:{self.partition}:rds:{self.region}:{self.account}:db:{i.identifier}"

    def group_arn(self, g: SecurityGroup) -> str:
        return f"arn:{self.partition}:ec2:{self.region}:{self.account}:security-group/{g.id}"


def session_key(rec: FlowRecord) -> tuple[int, int, int]:
    """A connection's records' key (connection ids restart with the process: the start and source port
    tell an earlier run's apart)."""
    return connection_key(rec)


def open_session(rec: FlowRecord) -> bool:
    """A live login: its connection is open (the flow log's file never has an open record with a
    ``db_user``)."""
    return rec.phase == "open" and rec.db_user is not None


def sequence_of(records: list[FlowRecord],
                live: list[FlowRecord] | None = None) -> dict[tuple[int, int, int], tuple[int, int]]:
    """``Snapshot.sequence`` from the flow log's records in order (opens and closes); a live login
    (``live``) is open from its open record to after the last record."""
    opened: dict[tuple[int, int, int], int] = {}
    out: dict[tuple[int, int, int], tuple[int, int]] = {}
    for i, rec in enumerate(records):
        key = session_key(rec)
        if rec.phase == "open":
            opened[key] = i
        elif rec.db_user and key in opened:
            out[key] = (opened.pop(key), i)
    for rec in live or []:
        key = session_key(rec)
        if key in opened:
            out[key] = (opened[key], len(records))
    return out


def with_live(closed: list[FlowRecord], live: list[FlowRecord], now: datetime) -> list[FlowRecord]:
    """``Snapshot.flows``: the close records, then the live logins not among them (a connection counts
    once, whichever of its records the reader saw: ``FlowLog.view`` gives each in one place, and an
    earlier run's records differ in start or port), open until ``now``."""
    if not live:
        return closed
    ids = {r.connection_id for r in live}
    seen = {session_key(r) for r in closed if r.connection_id in ids}
    end = int(now.timestamp())
    return closed + [replace(r, end=max(end, r.start)) for r in live if session_key(r) not in seen]


def verdict(ok: bool) -> str:
    return PASSED if ok else FAILED


def logins(s: Snapshot) -> dict[str, list[FlowRecord]]:
    """The relayed logins of the window, by cluster identifier (an instance's endpoint is its resource id)."""
    cluster_of = {i.resource_id: i.cluster_identifier for i in s.instances}
    since = (s.now - timedelta(hours=FLOW_WINDOW_HOURS)).timestamp()
    out: dict[str, list[FlowRecord]] = {}
    for rec in s.flows:
        if rec.db_user is None or not rec.relayed or rec.end < since or rec.endpoint_id not in cluster_of:
            continue
        out.setdefault(cluster_of[rec.endpoint_id], []).append(rec)
    return out


def flow_ids(records: list[FlowRecord]) -> str:
    """The connections' IDs as the evidence gives them: ``<interface-id>/<connection-id>``."""
    return ", ".join(f"{r.interface_id}/{r.connection_id}" for r in records)


def sources(records: list[FlowRecord]) -> str:
    """``<address> (<application_name>) xN`` per source, most frequent first, at most 10."""
    counts: dict[tuple[str, str], int] = {}
    for rec in records:
        key = (rec.srcaddr, rec.application_name or "")
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return ", ".join(f"{addr} ({app or 'no application_name'}) x{n}" for (addr, app), n in ranked)

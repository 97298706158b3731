"""What the checks decide on (``Snapshot``: one account and region at one moment) and what they answer
(``Evaluation``: one per control and resource). Pure data: the engine (``auroral.advisor.engine``)
takes the snapshot from the services and turns evaluations into findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from auroral.ec2.model import Rule, SecurityGroup
from auroral.gateway.flows import FlowRecord
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
    flows: list[FlowRecord] = field(default_factory=list)  # the gateway's close records, oldest first
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
    return (rec.connection_id, rec.start, rec.srcport)


def sequence_of(records: list[FlowRecord]) -> dict[tuple[int, int, int], tuple[int, int]]:
    """``Snapshot.sequence`` from the flow log's records in order (opens and closes)."""
    opened: dict[tuple[int, int, int], int] = {}
    out: dict[tuple[int, int, int], tuple[int, int]] = {}
    for i, rec in enumerate(records):
        key = session_key(rec)
        if rec.phase == "open":
            opened[key] = i
        elif rec.db_user and key in opened:
            out[key] = (opened[key], i)
    return out


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


def sources(records: list[FlowRecord]) -> str:
    """``<address> (<application_name>) xN`` per source, most frequent first, at most 10."""
    counts: dict[tuple[str, str], int] = {}
    for rec in records:
        key = (rec.srcaddr, rec.application_name or "")
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return ", ".join(f"{addr} ({app or 'no application_name'}) x{n}" for (addr, app), n in ranked)

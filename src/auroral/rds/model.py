"""RDS resources as typed records, their store documents and their state machines.

A status changes only through ``transition(new_status)``, which refuses moves the state
machine does not allow (a bug, not a client error: the operations check states first and raise
AWS's errors). The service calls ``transition`` when something real happened — the runtime
finished creating a server, an endpoint opened — never in a getter or on a timer.

Store documents: kind ``rds.cluster`` / ``rds.instance`` / ``rds.cluster-pg``, keyed by
``(account, lower-cased identifier)``.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from auroral.regions import partition_of

KIND_CLUSTER = "rds.cluster"
KIND_INSTANCE = "rds.instance"
KIND_CLUSTER_PG = "rds.cluster-pg"

ENGINE = "aurora-postgresql"

# Route 53 zone AWS reports for RDS endpoints in us-east-1; the endpoints here are host
# addresses, but clients (and Terraform) expect the member to be present.
HOSTED_ZONE_ID = "Z2R2ITUGPM61AM"

_RESOURCE_ALPHABET = string.ascii_uppercase + string.digits


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_resource_id(prefix: str) -> str:
    """``cluster-`` / ``db-`` followed by 26 uppercase alphanumerics, as AWS shows them."""
    return prefix + "".join(secrets.choice(_RESOURCE_ALPHABET) for _ in range(26))


def _ts(value: datetime) -> str:
    return value.isoformat()


def _parse_ts(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class IllegalTransition(RuntimeError):
    """A status change the state machine does not allow (a bug in the caller)."""


# RDS's DB instance status for "PostgreSQL cannot start with these parameters". Aurora documents it for
# instances only; auroral reports it for the cluster too, because the cluster's one server is what does
# not start (its documented cluster statuses have no word for that; unconfirmed what Aurora shows).
INCOMPATIBLE = "incompatible-parameters"
FAILING_OVER = "failing-over"
UPGRADING = "upgrading"  # an engine version upgrade runs (cluster and instances)

# Cluster statuses (a subset of AWS's vocabulary that auroral reaches through real events).
CLUSTER_TRANSITIONS: dict[str, frozenset[str]] = {
    "creating": frozenset({"available", "failed", "deleting", INCOMPATIBLE}),
    "available": frozenset(
        {"modifying", "resetting-master-credentials", "stopping", "deleting", "failed",
         "inaccessible-encryption-credentials", INCOMPATIBLE, FAILING_OVER, UPGRADING}
    ),
    # ModifyDBCluster EngineVersion / ApplyPendingMaintenanceAction (rds/upgrades.py)
    UPGRADING: frozenset({"available", "failed"}),
    # FailoverDBCluster, or the writer's server lost (rds/failover.py)
    FAILING_OVER: frozenset({"available", "failed"}),
    "modifying": frozenset({"available", "failed"}),
    "resetting-master-credentials": frozenset({"available", "failed"}),
    "stopping": frozenset({"stopped", "failed"}),
    "stopped": frozenset({"starting", "deleting"}),
    "starting": frozenset({"available", "failed", INCOMPATIBLE}),
    # A failed server may come back when the runtime's supervisor restarts it.
    "failed": frozenset({"available", "deleting", "starting", INCOMPATIBLE, FAILING_OVER}),
    # PostgreSQL will not run with the cluster's parameters: fix them and reboot (or delete).
    INCOMPATIBLE: frozenset({"available", "deleting", "failed"}),
    "inaccessible-encryption-credentials": frozenset({"available", "failed", "deleting"}),
    "deleting": frozenset(),
}

INSTANCE_TRANSITIONS: dict[str, frozenset[str]] = {
    "creating": frozenset({"available", "failed", "deleting", "stopped", INCOMPATIBLE}),
    "available": frozenset({"modifying", "renaming", "rebooting", "stopping", "deleting", "failed",
                            "inaccessible-encryption-credentials", INCOMPATIBLE, UPGRADING}),
    UPGRADING: frozenset({"available", "failed"}),
    "modifying": frozenset({"available", "failed"}),
    # ModifyDBInstance NewDBInstanceIdentifier: the instance restarts under its new name (AWS reboots it)
    "renaming": frozenset({"available", "failed"}),
    "rebooting": frozenset({"available", "failed", INCOMPATIBLE}),
    "stopping": frozenset({"stopped", "failed"}),
    "stopped": frozenset({"starting", "deleting"}),
    "starting": frozenset({"available", "failed", INCOMPATIBLE}),
    "failed": frozenset({"available", "deleting", "starting", "stopped", INCOMPATIBLE}),
    # AWS: an instance in incompatible-parameters can only be rebooted or deleted.
    INCOMPATIBLE: frozenset({"available", "rebooting", "deleting", "failed"}),
    "inaccessible-encryption-credentials": frozenset({"available", "failed", "deleting"}),
    "deleting": frozenset(),
}


def _check(table: dict[str, frozenset[str]], kind: str, ident: str, old: str, new: str) -> None:
    if old != new and new not in table.get(old, frozenset()):
        raise IllegalTransition(f"{kind} {ident}: {old} -> {new} is not a valid transition")


@dataclass
class Cluster:
    identifier: str  # lower-cased, as AWS stores it
    account: str
    region: str
    resource_id: str
    engine_version: str  # what the client asked for (Describe reports it)
    major: int
    master_username: str
    created: datetime
    parameter_group: str
    port: int = 5432  # where every instance listens (security groups are evaluated against it)
    database_name: str | None = None
    vpc_security_group_ids: list[str] = field(default_factory=list)
    subnet_group: str = "default"
    # The VPC of the subnet group when the cluster was placed (None: created before placement existed,
    # which means the account's default VPC).
    vpc_id: str | None = None
    availability_zones: list[str] = field(default_factory=list)
    storage_encrypted: bool = False
    kms_key_id: str | None = None  # the key ARN of an encrypted cluster
    kms_grant_id: str | None = None  # RDS's grant on it (rds/storage_keys.py)
    backup_retention_period: int = 1
    preferred_backup_window: str = "07:00-07:30"
    final_snapshot: str | None = None  # DeleteDBCluster FinalDBSnapshotIdentifier, taken before the data goes
    keep_automated_backups: bool = False  # DeleteDBCluster DeleteAutomatedBackups=false
    iam_auth: bool = False
    deletion_protection: bool = False
    copy_tags_to_snapshot: bool = False
    manage_master_password: bool = False
    master_user_secret: dict[str, str] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "creating"
    status_reason: str | None = None
    # Effective parameter values the server runs with (see runtime.py); pending_reboot is set
    # while static changes of the parameter group wait for a reboot of the writer.
    parameters: dict[str, str] = field(default_factory=dict)
    pending_reboot: bool = False
    engine: str = ENGINE
    # IAM roles associated with the cluster (AddRoleToDBCluster): {"RoleArn", "FeatureName"} (the Status
    # Describe shows is whether RDS may assume the role now: rds/cluster_roles.py)
    associated_roles: list[dict[str, str]] = field(default_factory=list)

    def arn(self) -> str:
        return f"arn:{partition_of(self.region)}:rds:{self.region}:{self.account}:cluster:{self.identifier}"

    def transition(self, new: str, reason: str | None = None) -> None:
        _check(CLUSTER_TRANSITIONS, "cluster", self.identifier, self.status, new)
        if new == self.status and reason is None:
            return  # staying put keeps the reason already recorded
        self.status = new
        self.status_reason = reason

    def to_doc(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "account": self.account,
            "region": self.region,
            "resource_id": self.resource_id,
            "engine": self.engine,
            "engine_version": self.engine_version,
            "major": self.major,
            "master_username": self.master_username,
            "created": _ts(self.created),
            "parameter_group": self.parameter_group,
            "port": self.port,
            "database_name": self.database_name,
            "vpc_security_group_ids": list(self.vpc_security_group_ids),
            "subnet_group": self.subnet_group,
            "vpc_id": self.vpc_id,
            "availability_zones": list(self.availability_zones),
            "storage_encrypted": self.storage_encrypted,
            "kms_key_id": self.kms_key_id,
            "kms_grant_id": self.kms_grant_id,
            "backup_retention_period": self.backup_retention_period,
            "preferred_backup_window": self.preferred_backup_window,
            "final_snapshot": self.final_snapshot,
            "keep_automated_backups": self.keep_automated_backups,
            "iam_auth": self.iam_auth,
            "deletion_protection": self.deletion_protection,
            "copy_tags_to_snapshot": self.copy_tags_to_snapshot,
            "manage_master_password": self.manage_master_password,
            "master_user_secret": self.master_user_secret,
            "tags": dict(self.tags),
            "status": self.status,
            "status_reason": self.status_reason,
            "parameters": dict(self.parameters),
            "pending_reboot": self.pending_reboot,
            "associated_roles": [dict(r) for r in self.associated_roles],
        }

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> Cluster:
        return cls(
            identifier=d["identifier"],
            account=d["account"],
            region=d["region"],
            resource_id=d["resource_id"],
            engine=d.get("engine", ENGINE),
            engine_version=d["engine_version"],
            major=int(d["major"]),
            master_username=d["master_username"],
            created=_parse_ts(d["created"]),
            parameter_group=d["parameter_group"],
            port=int(d.get("port", 5432)),
            database_name=d.get("database_name"),
            vpc_security_group_ids=list(d.get("vpc_security_group_ids") or []),
            subnet_group=d.get("subnet_group", "default"),
            vpc_id=d.get("vpc_id"),
            availability_zones=list(d.get("availability_zones") or []),
            storage_encrypted=bool(d.get("storage_encrypted")),
            kms_key_id=d.get("kms_key_id"),
            kms_grant_id=d.get("kms_grant_id"),
            backup_retention_period=int(d.get("backup_retention_period", 1)),
            preferred_backup_window=str(d.get("preferred_backup_window") or "07:00-07:30"),
            final_snapshot=d.get("final_snapshot"),
            keep_automated_backups=bool(d.get("keep_automated_backups")),
            iam_auth=bool(d.get("iam_auth")),
            deletion_protection=bool(d.get("deletion_protection")),
            copy_tags_to_snapshot=bool(d.get("copy_tags_to_snapshot")),
            manage_master_password=bool(d.get("manage_master_password")),
            master_user_secret=d.get("master_user_secret"),
            tags=dict(d.get("tags") or {}),
            status=d.get("status", "creating"),
            status_reason=d.get("status_reason"),
            parameters=dict(d.get("parameters") or {}),
            pending_reboot=bool(d.get("pending_reboot")),
            associated_roles=[{str(k): str(v) for k, v in r.items()} for r in d.get("associated_roles") or []],
        )


@dataclass
class Instance:
    identifier: str  # lower-cased
    account: str
    region: str
    resource_id: str
    cluster_identifier: str
    instance_class: str
    engine_version: str
    created: datetime
    availability_zone: str
    is_writer: bool = False
    promotion_tier: int = 1
    publicly_accessible: bool = False
    copy_tags_to_snapshot: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "creating"
    status_reason: str | None = None
    # Where clients connect, once the runtime opened the endpoint (refreshed at recovery).
    address: str | None = None
    endpoint_port: int | None = None
    engine: str = ENGINE

    def arn(self) -> str:
        return f"arn:{partition_of(self.region)}:rds:{self.region}:{self.account}:db:{self.identifier}"

    def transition(self, new: str, reason: str | None = None) -> None:
        _check(INSTANCE_TRANSITIONS, "instance", self.identifier, self.status, new)
        if new == self.status and reason is None:
            return  # staying put keeps the reason already recorded
        self.status = new
        self.status_reason = reason

    def to_doc(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "account": self.account,
            "region": self.region,
            "resource_id": self.resource_id,
            "cluster_identifier": self.cluster_identifier,
            "instance_class": self.instance_class,
            "engine": self.engine,
            "engine_version": self.engine_version,
            "created": _ts(self.created),
            "availability_zone": self.availability_zone,
            "is_writer": self.is_writer,
            "promotion_tier": self.promotion_tier,
            "publicly_accessible": self.publicly_accessible,
            "copy_tags_to_snapshot": self.copy_tags_to_snapshot,
            "tags": dict(self.tags),
            "status": self.status,
            "status_reason": self.status_reason,
            "address": self.address,
            "endpoint_port": self.endpoint_port,
        }

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> Instance:
        return cls(
            identifier=d["identifier"],
            account=d["account"],
            region=d["region"],
            resource_id=d["resource_id"],
            cluster_identifier=d["cluster_identifier"],
            instance_class=d["instance_class"],
            engine=d.get("engine", ENGINE),
            engine_version=d["engine_version"],
            created=_parse_ts(d["created"]),
            availability_zone=d["availability_zone"],
            is_writer=bool(d.get("is_writer")),
            promotion_tier=int(d.get("promotion_tier", 1)),
            publicly_accessible=bool(d.get("publicly_accessible")),
            copy_tags_to_snapshot=bool(d.get("copy_tags_to_snapshot")),
            tags=dict(d.get("tags") or {}),
            status=d.get("status", "creating"),
            status_reason=d.get("status_reason"),
            address=d.get("address"),
            endpoint_port=d.get("endpoint_port"),
        )


@dataclass
class ClusterParameterGroup:
    """A custom DB cluster parameter group. The ``default.<family>`` groups are not stored:
    they are the engine defaults, synthesized on demand."""

    name: str  # lower-cased
    account: str
    region: str
    family: str
    description: str
    # Values the user set: name -> (value, apply method)
    values: dict[str, tuple[str, str]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def arn(self) -> str:
        return f"arn:{partition_of(self.region)}:rds:{self.region}:{self.account}:cluster-pg:{self.name}"

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "account": self.account,
            "region": self.region,
            "family": self.family,
            "description": self.description,
            "values": {k: list(v) for k, v in self.values.items()},
            "tags": dict(self.tags),
        }

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> ClusterParameterGroup:
        return cls(
            name=d["name"],
            account=d["account"],
            region=d["region"],
            family=d["family"],
            description=d.get("description", ""),
            values={k: (str(v[0]), str(v[1])) for k, v in (d.get("values") or {}).items()},
            tags=dict(d.get("tags") or {}),
        )

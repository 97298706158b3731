"""DB cluster snapshots as stored records (kind ``rds.cluster-snapshot``, keyed by ``(account, lower-cased
identifier)``) and their AWS view.

A snapshot's data is one sealed file, ``<data_dir>/snapshots/<sid>.snap`` (``rds/envelope.py``), under a data
key of its own; ``data_key`` is that key wrapped by the snapshot's KMS key (encrypted) or by the installation's
master key (unencrypted). ``admin`` is rdsadmin's password in the data, sealed: a restore's new cluster needs it.
Statuses: ``creating`` / ``copying`` (recorded before the work starts) → ``available`` | ``failed``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auroral.rds.model import ENGINE, _parse_ts, _ts
from auroral.regions import partition_of

KIND_SNAPSHOT = "rds.cluster-snapshot"
MANUAL = "manual"
AUTOMATED = "automated"


def new_sid() -> str:
    return secrets.token_hex(16)


@dataclass
class ClusterSnapshot:
    identifier: str  # lower-cased (automated ones: "rds:<cluster>-<yyyy-mm-dd-hh-mm>")
    account: str
    region: str
    sid: str  # names the sealed file; never reused
    cluster_identifier: str
    cluster_resource_id: str
    engine_version: str
    major: int
    master_username: str
    port: int
    cluster_created: datetime
    created: datetime
    snapshot_type: str = MANUAL
    status: str = "creating"
    status_reason: str | None = None
    storage_encrypted: bool = False
    kms_key_id: str | None = None  # key ARN
    kms_grant_id: str | None = None
    data_key: dict[str, str] | None = None
    admin: str | None = None
    vpc_id: str | None = None
    availability_zones: list[str] = field(default_factory=list)
    iam_auth: bool = False
    database_name: str | None = None
    size: int = 0
    source_arn: str | None = None  # a copy's source
    copy_of: str | None = None  # a copy in progress: the source's sid
    shared_with: list[str] = field(default_factory=list)  # "restore" attribute: account ids or "all"
    tags: dict[str, str] = field(default_factory=dict)
    engine: str = ENGINE

    def arn(self) -> str:
        return (f"arn:{partition_of(self.region)}:rds:{self.region}:{self.account}:cluster-snapshot:"
                f"{self.identifier}")

    def context(self) -> dict[str, str]:
        """The encryption context of the snapshot's data key."""
        return {"aws:rds:cluster-snapshot": self.sid}

    def to_doc(self) -> dict[str, Any]:
        doc = {k: v for k, v in self.__dict__.items()}
        doc["cluster_created"] = _ts(self.cluster_created)
        doc["created"] = _ts(self.created)
        doc["availability_zones"] = list(self.availability_zones)
        doc["shared_with"] = list(self.shared_with)
        doc["tags"] = dict(self.tags)
        return doc

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> ClusterSnapshot:
        values = dict(d)
        values["cluster_created"] = _parse_ts(d["cluster_created"])
        values["created"] = _parse_ts(d["created"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "AvailabilityZones": list(self.availability_zones),
            "DBClusterSnapshotIdentifier": self.identifier,
            "DBClusterIdentifier": self.cluster_identifier,
            "SnapshotCreateTime": self.created,
            "Engine": self.engine,
            "EngineMode": "provisioned",
            "AllocatedStorage": max(1, (self.size + (1 << 30) - 1) >> 30),
            "Status": self.status,
            "Port": self.port,
            "ClusterCreateTime": self.cluster_created,
            "MasterUsername": self.master_username,
            "EngineVersion": self.engine_version,
            "LicenseModel": "postgresql-license",
            "SnapshotType": self.snapshot_type,
            "PercentProgress": 100 if self.status == "available" else 0,
            "StorageEncrypted": self.storage_encrypted,
            "DBClusterSnapshotArn": self.arn(),
            "IAMDatabaseAuthenticationEnabled": self.iam_auth,
            "TagList": [{"Key": k, "Value": v} for k, v in self.tags.items()],
            "StorageType": "aurora",
            "DbClusterResourceId": self.cluster_resource_id,
        }
        if self.vpc_id:
            view["VpcId"] = self.vpc_id
        if self.kms_key_id:
            view["KmsKeyId"] = self.kms_key_id
        if self.source_arn:
            view["SourceDBClusterSnapshotArn"] = self.source_arn
        return view

"""Secrets as typed records, and the names that address them.

A secret is one store document (kind ``secretsmanager-secret``, keyed by name within the account):
its metadata, its versions (each sealed by ``envelope``) and its rotation state, so every change
to a secret — a new version, a moved staging label, a recorded rotation step — is one atomic write.
``SecretId`` may be a name, a full ARN or a partial ARN (the ARN without the ``-XXXXXX`` suffix).
"""

from __future__ import annotations

import re
import secrets as _random
from dataclasses import asdict, dataclass, field
from typing import Any

from auroral.regions import partition_of

SECRET_KIND = "secretsmanager-secret"
CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
PENDING = "AWSPENDING"
DEFAULT_KEY_ALIAS = "alias/aws/secretsmanager"
MAX_VERSIONS = 100

_NAME = re.compile(r"[A-Za-z0-9/_+=.@!-]{1,512}")
_ARN = re.compile(r"arn:aws(?:-[a-z-]+)?:secretsmanager:([a-z0-9-]+):(\d{12}):secret:(.+)")
_SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def new_arn(region: str, account: str, name: str) -> str:
    suffix = "".join(_random.choice(_SUFFIX_ALPHABET) for _ in range(6))
    return f"arn:{partition_of(region)}:secretsmanager:{region}:{account}:secret:{name}-{suffix}"


def parse_arn(text: str) -> tuple[str, str, str] | None:
    """(region, account, name-with-suffix-or-partial) of a secret ARN."""
    m = _ARN.fullmatch(text)
    return (m.group(1), m.group(2), m.group(3)) if m else None


@dataclass
class Version:
    version_id: str
    stages: list[str]
    created: float
    data_key: str  # base64 KMS ciphertext blob of the data key
    ciphertext: str  # base64 nonce + AES-256-GCM(value)
    binary: bool
    kms_key_arn: str
    last_accessed: float | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Version:
        return cls(**{**doc, "stages": list(doc["stages"])})


@dataclass
class Rotation:
    """How and when the secret rotates (``RotationRules`` and the dates Describe shows)."""

    enabled: bool = False
    lambda_arn: str | None = None
    every_days: int | None = None
    schedule: str | None = None
    duration: str | None = None
    last_rotated: float | None = None
    next_rotation: float | None = None


@dataclass
class RotationRun:
    """A rotation recorded before the rotator is called: resumed with the same token after a crash."""

    token: str
    started: float
    status: str = "rotating"  # "rotating" | "failed"
    attempts: int = 0
    error: str | None = None
    retry_at: float | None = None


@dataclass
class Secret:
    account: str
    name: str
    arn: str
    kms_key_arn: str
    customer_key: bool
    created: float
    last_changed: float
    description: str = ""
    tags: list[list[str]] = field(default_factory=list)  # [[key, value]] in the order given
    owning_service: str | None = None
    policy: str | None = None
    deleted: float | None = None
    deletion_date: float | None = None
    last_accessed: float | None = None
    versions: dict[str, Version] = field(default_factory=dict)
    rotation: Rotation = field(default_factory=Rotation)
    run: RotationRun | None = None

    # --- documents ----------------------------------------------------------------------

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Secret:
        # Every mutable part is copied: documents may be cached and shared (SecretRecords).
        d = dict(doc)
        d["tags"] = [list(t) for t in d.get("tags") or []]
        d["versions"] = {k: Version.from_doc(v) for k, v in (d.get("versions") or {}).items()}
        d["rotation"] = Rotation(**(d.get("rotation") or {}))
        d["run"] = RotationRun(**d["run"]) if d.get("run") else None
        return cls(**d)

    # --- tags and stages ----------------------------------------------------------------

    @property
    def tag_map(self) -> dict[str, str]:
        return {k: v for k, v in self.tags}

    def set_tags(self, tags: dict[str, str]) -> None:
        current = self.tag_map
        current.update(tags)
        self.tags = [[k, v] for k, v in current.items()]

    def remove_tags(self, keys: list[str]) -> None:
        self.tags = [[k, v] for k, v in self.tags if k not in set(keys)]

    def version_with(self, stage: str) -> Version | None:
        for v in self.versions.values():
            if stage in v.stages:
                return v
        return None

    def stage_map(self) -> dict[str, list[str]]:
        return {vid: list(v.stages) for vid, v in self.versions.items() if v.stages}

    def attach(self, version_id: str, stage: str) -> None:
        """Attach ``stage`` to one version (taking it from any other); moving AWSCURRENT labels
        the version that held it AWSPREVIOUS, as Secrets Manager does."""
        target = self.versions[version_id]
        if stage in target.stages:
            return
        for vid, v in self.versions.items():
            if vid != version_id and stage in v.stages:
                v.stages.remove(stage)
                if stage == CURRENT:
                    for other in self.versions.values():
                        if PREVIOUS in other.stages:
                            other.stages.remove(PREVIOUS)
                    v.stages.append(PREVIOUS)
        if stage == CURRENT and PREVIOUS in target.stages:
            target.stages.remove(PREVIOUS)
        target.stages.append(stage)

    def detach(self, version_id: str, stage: str) -> None:
        v = self.versions.get(version_id)
        if v is not None and stage in v.stages:
            v.stages.remove(stage)

    def prune(self) -> None:
        """Keep at most MAX_VERSIONS versions: the oldest unlabelled ones go first."""
        extra = len(self.versions) - MAX_VERSIONS
        if extra <= 0:
            return
        idle = sorted((v for v in self.versions.values() if not v.stages), key=lambda v: v.created)
        for v in idle[:extra]:
            del self.versions[v.version_id]

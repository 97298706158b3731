"""IAM resources as typed records, and their conversion to and from store documents.

Each record is a plain dataclass; ``to_doc``/``from_doc`` are the only code that knows the stored
layout. Secrets never appear in a record in plaintext form *on disk*: an access key document
holds the secret sealed with the installation key (``Sealer``, aad ``iam:access-key:<id>``), and
the record keeps the opened secret only in memory (``secret`` is excluded from ``to_doc``).
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from auroral.errors import AwsError

_ID_ALPHABET = string.ascii_uppercase + string.digits

# Store kinds.
KIND_USER = "iam-user"
KIND_GROUP = "iam-group"
KIND_ROLE = "iam-role"
KIND_POLICY = "iam-policy"
KIND_ACCESS_KEY = "iam-access-key"
KIND_ROOT_KEY = "iam-root-key"
KIND_SESSION = "sts-session"
KIND_DELETION_TASK = "iam-slr-deletion"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """An IAM unique id / access key id: a 4-letter prefix (AIDA, AROA, AGPA, ANPA, AKIA, ASIA)
    and 16 uppercase alphanumerics, like AWS."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def new_secret() -> str:
    """A 40-character secret access key (AWS uses base64-ish characters)."""
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def ts(value: datetime) -> str:
    return value.isoformat()


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def encode_document(text: str) -> str:
    """IAM returns policy documents URL-encoded; botocore unquotes and json-decodes them."""
    return quote(text, safe="")


# --- validation --------------------------------------------------------------------------------

# ASCII, as AWS: a Unicode \w would admit look-alikes ("\u0430dmin", a Cyrillic a) and names whose
# lower-case form (the directory's key) is another name's ("\u212a" is "k").
_NAME = re.compile(r"[\w+=,.@-]+", re.ASCII)
_PATH = re.compile(r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)")


def validate_name(value: str, member: str, max_len: int = 64) -> None:
    """AWS's query-protocol validation message for a name pattern/length violation."""
    if not (1 <= len(value) <= max_len):
        raise AwsError(
            "ValidationError",
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {max_len}",
        )
    if not _NAME.fullmatch(value):
        raise AwsError(
            "ValidationError",
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
            r"Member must satisfy regular expression pattern: [\w+=,.@-]+",
        )


def validate_path(value: str, member: str = "path") -> None:
    if not (1 <= len(value) <= 512) or not _PATH.fullmatch(value):
        raise AwsError(
            "ValidationError",
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
            r"Member must satisfy regular expression pattern: (\u002F)|(\u002F[\u0021-\u007E]+\u002F)",
        )


def tags_from_params(raw: Any) -> dict[str, str]:
    tags: dict[str, str] = {}
    for t in raw or []:
        key = str(t["Key"])
        if len(key) > 128 or len(str(t.get("Value", ""))) > 256:
            raise AwsError(
                "ValidationError", "Tag keys must be at most 128 and values at most 256 characters."
            )
        tags[key] = str(t.get("Value", ""))
    return tags


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


# --- records -----------------------------------------------------------------------------------


@dataclass
class User:
    name: str
    path: str
    user_id: str
    created: datetime
    tags: dict[str, str] = field(default_factory=dict)
    inline: dict[str, str] = field(default_factory=dict)  # policy name -> document text
    attached: list[str] = field(default_factory=list)  # managed policy ARNs
    groups: list[str] = field(default_factory=list)  # group names
    boundary: str | None = None

    def arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:user{self.path}{self.name}"

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "id": self.user_id,
            "created": ts(self.created),
            "tags": self.tags,
            "inline": self.inline,
            "attached": self.attached,
            "groups": self.groups,
            "boundary": self.boundary,
        }

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> User:
        return cls(
            name=d["name"],
            path=d["path"],
            user_id=d["id"],
            created=parse_ts(d["created"]),
            tags=dict(d.get("tags") or {}),
            inline=dict(d.get("inline") or {}),
            attached=list(d.get("attached") or []),
            groups=list(d.get("groups") or []),
            boundary=d.get("boundary"),
        )


@dataclass
class Group:
    name: str
    path: str
    group_id: str
    created: datetime
    inline: dict[str, str] = field(default_factory=dict)
    attached: list[str] = field(default_factory=list)

    def arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:group{self.path}{self.name}"

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "id": self.group_id,
            "created": ts(self.created),
            "inline": self.inline,
            "attached": self.attached,
        }

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> Group:
        return cls(
            name=d["name"],
            path=d["path"],
            group_id=d["id"],
            created=parse_ts(d["created"]),
            inline=dict(d.get("inline") or {}),
            attached=list(d.get("attached") or []),
        )


@dataclass
class Role:
    name: str
    path: str
    role_id: str
    created: datetime
    trust: str  # AssumeRolePolicyDocument text
    description: str | None = None
    max_session: int = 3600
    tags: dict[str, str] = field(default_factory=dict)
    inline: dict[str, str] = field(default_factory=dict)
    attached: list[str] = field(default_factory=list)
    boundary: str | None = None
    service_linked: str | None = None  # the AWS service name for service-linked roles
    last_used: datetime | None = None
    last_used_region: str | None = None

    def arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role{self.path}{self.name}"

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "id": self.role_id,
            "created": ts(self.created),
            "trust": self.trust,
            "description": self.description,
            "max_session": self.max_session,
            "tags": self.tags,
            "inline": self.inline,
            "attached": self.attached,
            "boundary": self.boundary,
            "service_linked": self.service_linked,
            "last_used": ts(self.last_used) if self.last_used else None,
            "last_used_region": self.last_used_region,
        }

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> Role:
        return cls(
            name=d["name"],
            path=d["path"],
            role_id=d["id"],
            created=parse_ts(d["created"]),
            trust=d["trust"],
            description=d.get("description"),
            max_session=int(d.get("max_session") or 3600),
            tags=dict(d.get("tags") or {}),
            inline=dict(d.get("inline") or {}),
            attached=list(d.get("attached") or []),
            boundary=d.get("boundary"),
            service_linked=d.get("service_linked"),
            last_used=parse_ts(d["last_used"]) if d.get("last_used") else None,
            last_used_region=d.get("last_used_region"),
        )


@dataclass
class PolicyVersion:
    version_id: str
    document: str
    created: datetime


@dataclass
class ManagedPolicy:
    """A customer-managed policy (stored) or an AWS-managed one (``aws_managed``, from the bundled data)."""

    name: str
    path: str
    policy_id: str
    arn: str
    created: datetime
    updated: datetime
    default_version: str
    versions: dict[str, PolicyVersion]
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    next_version: int = 2
    aws_managed: bool = False

    @property
    def document(self) -> str:
        return self.versions[self.default_version].document

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "id": self.policy_id,
            "arn": self.arn,
            "created": ts(self.created),
            "updated": ts(self.updated),
            "default": self.default_version,
            "versions": [
                {"id": v.version_id, "document": v.document, "created": ts(v.created)}
                for v in self.versions.values()
            ],
            "description": self.description,
            "tags": self.tags,
            "next_version": self.next_version,
        }

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> ManagedPolicy:
        versions = {
            v["id"]: PolicyVersion(v["id"], v["document"], parse_ts(v["created"])) for v in d["versions"]
        }
        return cls(
            name=d["name"],
            path=d["path"],
            policy_id=d["id"],
            arn=d["arn"],
            created=parse_ts(d["created"]),
            updated=parse_ts(d["updated"]),
            default_version=d["default"],
            versions=versions,
            description=d.get("description"),
            tags=dict(d.get("tags") or {}),
            next_version=int(d.get("next_version") or 2),
        )


@dataclass
class AccessKey:
    key_id: str
    user: str  # user name ("" for the account root)
    secret: str  # in memory only
    status: str
    created: datetime
    last_used: datetime | None = None
    last_service: str | None = None
    last_region: str | None = None

    def aad(self) -> str:
        return f"iam:access-key:{self.key_id}"

    def to_doc(self, sealed_secret: str) -> dict[str, Any]:
        return {
            "id": self.key_id,
            "user": self.user,
            "secret": sealed_secret,
            "status": self.status,
            "created": ts(self.created),
            "last_used": ts(self.last_used) if self.last_used else None,
            "last_service": self.last_service,
            "last_region": self.last_region,
        }

    @classmethod
    def from_doc(cls, d: dict[str, Any], secret: str) -> AccessKey:
        return cls(
            key_id=d["id"],
            user=d["user"],
            secret=secret,
            status=d["status"],
            created=parse_ts(d["created"]),
            last_used=parse_ts(d["last_used"]) if d.get("last_used") else None,
            last_service=d.get("last_service"),
            last_region=d.get("last_region"),
        )


@dataclass
class Session:
    """Temporary credentials issued by STS (AssumeRole or GetSessionToken)."""

    key_id: str
    secret: str  # in memory only
    token: str  # in memory only
    kind: str  # "assumed-role" | "user" | "root"
    name: str  # role name or user name ("root" for the root)
    entity_id: str  # role id / user id at issue time (a recreated role does not inherit sessions)
    entity_arn: str  # role ARN / user ARN at issue time (aws:PrincipalArn of a role session)
    issued: datetime
    expires: datetime
    session_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    policies: list[str] = field(default_factory=list)
    policy_given: bool = False
    source_identity: str | None = None
    chained: bool = False
    # keys of ``tags`` passed on to the sessions of a role chain (TransitiveTagKeys, and inherited ones)
    transitive: list[str] = field(default_factory=list)

    def aad(self, what: str) -> str:
        return f"sts:{what}:{self.key_id}"

    def to_doc(self, sealed_secret: str, sealed_token: str) -> dict[str, Any]:
        return {
            "id": self.key_id,
            "secret": sealed_secret,
            "token": sealed_token,
            "kind": self.kind,
            "name": self.name,
            "entity_id": self.entity_id,
            "entity_arn": self.entity_arn,
            "issued": ts(self.issued),
            "expires": ts(self.expires),
            "session_name": self.session_name,
            "tags": self.tags,
            "policies": self.policies,
            "policy_given": self.policy_given,
            "source_identity": self.source_identity,
            "chained": self.chained,
            "transitive": self.transitive,
        }

    @classmethod
    def from_doc(cls, d: dict[str, Any], secret: str, token: str) -> Session:
        return cls(
            key_id=d["id"],
            secret=secret,
            token=token,
            kind=d["kind"],
            name=d["name"],
            entity_id=d["entity_id"],
            entity_arn=d.get("entity_arn", ""),
            issued=parse_ts(d["issued"]),
            expires=parse_ts(d["expires"]),
            session_name=d.get("session_name"),
            tags=dict(d.get("tags") or {}),
            policies=list(d.get("policies") or []),
            policy_given=bool(d.get("policy_given")),
            source_identity=d.get("source_identity"),
            chained=bool(d.get("chained")),
            transitive=list(d.get("transitive") or []),
        )


def aws_principals(text: str) -> list[str]:
    """The ``Principal.AWS`` values named by a policy document (for trust-policy checks)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return []
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    out: list[str] = []
    for st in statements or []:
        principal = st.get("Principal") if isinstance(st, dict) else None
        if not isinstance(principal, dict):
            continue
        aws = principal.get("AWS")
        values = aws if isinstance(aws, list) else [aws]
        out += [v for v in values if isinstance(v, str)]
    return out

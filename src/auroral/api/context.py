"""What a handler knows about the request it serves: the caller, where it came from, and how
to authorize further actions it performs on the caller's behalf (RDS asking whether the caller
may create the service-linked role, for example)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

PrincipalKind = Literal["root", "user", "assumed-role", "service"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``arn`` is what AWS shows in messages and in ``GetCallerIdentity``:
    ``arn:aws:iam::<acct>:root``, ``arn:aws:iam::<acct>:user/<path><name>`` or
    ``arn:aws:sts::<acct>:assumed-role/<role>/<session>``.
    """

    account: str
    arn: str
    kind: PrincipalKind
    user_id: str  # aws:userid: AIDA... for users, AROA...:<session> for role sessions, the account for root
    name: str  # user name, role name, or "root"
    access_key_id: str = ""
    session_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    # Session policies of an assumed-role session (the AssumeRole ``Policy`` and ``PolicyArns`` documents).
    session_policies: tuple[str, ...] = ()
    session_policy_given: bool = False
    mfa: bool = False
    token_expires: datetime | None = None
    source_identity: str | None = None

    @property
    def is_root(self) -> bool:
        return self.kind == "root"


class Authorizer(Protocol):
    def authorize(
        self,
        ctx: RequestContext,
        action: str,
        resources: Sequence[str],
        keys: Mapping[str, Any] | None = None,
    ) -> None:
        """Raise ``AccessDenied`` unless ``ctx.principal`` may perform ``action`` on every resource."""
        ...

    def authorize_unless_denied(
        self,
        ctx: RequestContext,
        action: str,
        resources: Sequence[str],
        keys: Mapping[str, Any] | None = None,
    ) -> None:
        """Raise ``AccessDenied`` only for an explicit Deny (actions that need no permission)."""
        ...


@dataclass
class RequestContext:
    request_id: str
    service: str
    operation: str
    region: str
    principal: Principal
    source_ip: str
    user_agent: str
    secure_transport: bool
    time: datetime
    params: dict[str, Any]
    authorizer: Authorizer
    # Resources the handler touched, recorded on the audit trail ({"ResourceType", "ResourceName"}).
    resources: list[dict[str, str]] = field(default_factory=list)
    # Extra fields the handler wants on its audit event's responseElements (never secrets).
    response_elements: dict[str, Any] | None = None

    @property
    def account(self) -> str:
        return self.principal.account

    def authorize(self, action: str, resources: Sequence[str], keys: Mapping[str, Any] | None = None) -> None:
        self.authorizer.authorize(self, action, resources, keys)

    def record_resource(self, resource_type: str, name: str) -> None:
        self.resources.append({"ResourceType": resource_type, "ResourceName": name})

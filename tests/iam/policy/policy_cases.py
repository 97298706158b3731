"""Helpers shared by the policy tables: build documents, evaluate one request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auroral.iam.policy import AuthzRequest, Decision, evaluate, parse_policy

V2012 = "2012-10-17"
ACCOUNT = "123456789012"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"


def doc(*statements: Mapping[str, Any], version: str | None = V2012) -> dict[str, Any]:
    out: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        out["Version"] = version
    return out


def allow(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(
    statements: list[dict[str, Any]],
    action: str = "svc:Act",
    resource: str = "*",
    context: Mapping[str, Any] | None = None,
    *,
    version: str | None = V2012,
) -> Decision:
    policy = parse_policy(doc(*statements, version=version))
    request = AuthzRequest(action, resource, dict(context or {}), USER, ACCOUNT)
    return evaluate(request, [policy]).decision


def condition_holds(
    block: Mapping[str, Any], context: Mapping[str, Any], *, version: str | None = V2012
) -> bool:
    """Does an Allow statement guarded by ``block`` allow a request with ``context``?"""
    return decide([allow(Condition=dict(block))], context=context, version=version) is Decision.ALLOW

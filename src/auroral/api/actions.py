"""The authorization table: for every implemented operation, its IAM action, the resource ARN(s)
it acts on and the service condition keys it supplies (from the Service Authorization Reference).

Each service declares its part as data in ``auroral/<service>/actions.py`` (a dict
``ACTIONS: dict[str, ActionSpec]`` keyed by operation name); ``table()`` joins them. The
request pipeline authorizes every operation through this table before the handler runs, and a
test fails if an implemented operation has no entry.

Resource templates name request parameters in braces: ``arn:{partition}:iam::{account}:user{Path|/}{UserName}``.
``{partition}``, ``{account}`` and ``{region}`` are built in; ``{Name|default}`` gives a default,
and a missing parameter without a default becomes ``*``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from auroral.regions import partition_of

_FIELD = re.compile(r"\{(\w+)(?:\|([^}]*))?\}")

SERVICES = ("iam", "sts", "rds", "ec2", "secretsmanager", "kms", "cloudtrail")


@dataclass(frozen=True)
class ActionSpec:
    action: str
    resources: tuple[str, ...] = ("*",)
    # condition key -> request parameter name (e.g. "rds:DatabaseEngine": "Engine")
    keys: Mapping[str, str] = field(default_factory=dict)
    # parameter holding the request's tags ([{Key, Value}] list or {k: v} map): aws:RequestTag/*, aws:TagKeys
    request_tags: str | None = None
    # parameter holding tag keys being removed (aws:TagKeys for Untag*/RemoveTags*)
    tag_keys: str | None = None
    # look up aws:ResourceTag/* of the resource through the provider's ``resource_tags(arn)``
    resource_tags: bool = False
    read_only: bool = False
    # operations that authenticate but are not authorized (sts:GetCallerIdentity needs no permission)
    unauthorized: bool = False
    # operations that need no permission but obey an explicit Deny (sts:GetSessionToken)
    deny_only: bool = False

    def render(self, params: Mapping[str, Any], account: str, region: str) -> list[str]:
        builtins = {"partition": partition_of(region), "account": account, "region": region}

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in builtins:
                return builtins[name]
            value = params.get(name)
            if value is None or value == "":
                return default if default is not None else "*"
            return str(value)

        return [_FIELD.sub(sub, template) for template in self.resources]


def request_tag_keys(spec: ActionSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """``aws:RequestTag/<k>`` and ``aws:TagKeys`` context keys for the request's tags."""
    out: dict[str, Any] = {}
    keys: list[str] = []
    if spec.request_tags:
        tags = params.get(spec.request_tags)
        pairs: list[tuple[str, str]] = []
        if isinstance(tags, Mapping):
            pairs = [(str(k), str(v)) for k, v in tags.items()]
        elif isinstance(tags, list):
            for t in tags:
                if isinstance(t, Mapping) and "Key" in t:
                    pairs.append((str(t["Key"]), str(t.get("Value", ""))))
        for k, v in pairs:
            out[f"aws:RequestTag/{k}"] = v
            keys.append(k)
    if spec.tag_keys:
        removed = params.get(spec.tag_keys) or []
        keys.extend(str(k) for k in removed)
    if spec.request_tags or spec.tag_keys:
        out["aws:TagKeys"] = keys
    return out


@cache
def table() -> dict[tuple[str, str], ActionSpec]:
    """Every service's ACTIONS, keyed by (service, operation)."""
    joined: dict[tuple[str, str], ActionSpec] = {}
    for service in SERVICES:
        try:
            module = importlib.import_module(f"auroral.{service}.actions")
        except ModuleNotFoundError:
            continue
        for op, spec in module.ACTIONS.items():
            joined[(service, op)] = spec
    return joined

"""The authorization table: for every implemented operation, its IAM action, the resource ARN(s)
it acts on and the service condition keys it supplies (from the Service Authorization Reference).

Each service declares its part as data in ``auroral/<service>/actions.py`` (a dict
``ACTIONS: dict[str, ActionSpec]`` keyed by operation name); ``table()`` joins them. The
request pipeline authorizes every operation through this table before the handler runs, and a
test fails if an implemented operation has no entry.

Resource templates name request parameters in braces: ``arn:{partition}:iam::{account}:user{Path|/}{UserName}``.
``{partition}``, ``{account}`` and ``{region}`` are built in; ``{Name|default}`` gives a default,
and a missing parameter without a default becomes ``*``.

A resource that a request parameter names is not a template but a ``Ref``: the parameter and the
kind of resource, which the provider's ``resolve_resource(ctx, kind, value, params)`` turns into the
canonical ARN(s) of exactly the resource the handler will act on (its case, a name or ARN, an alias
resolved to its key...). A raw parameter spliced into an ARN would let ``DEMO`` or a full ARN slip past
a Deny on ``...:cluster:demo``; services whose handlers canonicalize names declare every such
resource as a ``Ref`` (``tests/api/test_actions_table.py`` checks it).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from auroral.regions import partition_of

if TYPE_CHECKING:
    from auroral.api.context import RequestContext

_FIELD = re.compile(r"\{(\w+)(?:\|([^}]*))?\}")

SERVICES = ("iam", "sts", "rds", "ec2", "secretsmanager", "kms", "cloudtrail", "securityhub")


BUILTINS = frozenset({"partition", "account", "region"})


@dataclass(frozen=True)
class Ref:
    """The resource(s) request parameter ``param`` names, canonicalized by the provider's resolver
    ``kind``. ``optional``: an optional resource type of the action, authorized only when given
    (otherwise the resolver is asked with ``None``: a wildcard, or the default the handler picks)."""

    param: str
    kind: str
    optional: bool = False


class Resolver(Protocol):
    def resolve_resource(self, ctx: RequestContext, kind: str, value: Any, params: Mapping[str, Any]) -> list[str]:
        """The canonical ARNs ``value`` of parameter kind ``kind`` names, resolved as the handler will;
        raise the handler's ``AwsError`` for a value it would refuse (an ARN of another region...)."""
        ...


def fields(template: str) -> list[str]:
    """The request parameters a string template splices in (built-ins excluded)."""
    return [m.group(1) for m in _FIELD.finditer(template) if m.group(1) not in BUILTINS]


@dataclass(frozen=True)
class ActionSpec:
    action: str
    resources: tuple[str | Ref, ...] = ("*",)
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
    # (tagging action, parameter): a create whose request carries tags in that parameter also needs the
    # service's tagging action on the new resource ("rds:AddTagsToResource", "ec2:CreateTags"...), as AWS
    # authorizes tag-on-create
    tag_on_create: tuple[str, str] | None = None

    def render(self, params: Mapping[str, Any], account: str, region: str) -> list[str]:
        """The string templates filled in; a ``Ref`` (which needs its provider) renders as ``*``."""
        builtins = {"partition": partition_of(region), "account": account, "region": region}
        return [_render(t, builtins, params) if isinstance(t, str) else "*" for t in self.resources]

    def resolve(self, ctx: RequestContext, provider: object, params: Mapping[str, Any]) -> list[str]:
        """The ARNs to authorize: templates rendered, each ``Ref`` resolved by ``provider``."""
        builtins = {"partition": partition_of(ctx.region), "account": ctx.account, "region": ctx.region}
        out: list[str] = []
        for template in self.resources:
            if isinstance(template, str):
                out.append(_render(template, builtins, params))
                continue
            value = params.get(template.param)
            if template.optional and (value is None or value == "" or value == []):
                continue
            resolve = getattr(provider, "resolve_resource", None)  # see ``Resolver``
            if resolve is None:
                raise TypeError(f"{self.action}: {type(provider).__name__} cannot resolve {template}")
            out += resolve(ctx, template.kind, value, params)
        return out or ["*"]


def _render(template: str, builtins: Mapping[str, str], params: Mapping[str, Any]) -> str:
    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in builtins:
            return builtins[name]
        value = params.get(name)
        if value is None or value == "":
            return default if default is not None else "*"
        return str(value)

    return _FIELD.sub(sub, template)


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

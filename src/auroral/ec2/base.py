"""What every EC2 operation family shares: the state, lookups that raise EC2's NotFound errors,
tags from ``TagSpecifications``, and ARNs.

    Ec2Base                     base.py
     └ VpcOperations            vpcs.py        VPCs, subnets
        └ GatewayOperations     gateways.py    internet gateways, customer/VPN gateways, VPN connections
           └ GroupOperations    groups.py      security groups and their rules
              └ InterfaceOperations  interfaces.py  network interfaces, tags
                 └ Ec2Service   service.py     authorization hooks, the Network view
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from auroral.api.context import RequestContext
from auroral.ec2 import errors
from auroral.ec2.model import Resource, kind_of_id
from auroral.ec2.state import Account, Ec2State
from auroral.errors import AwsError
from auroral.regions import partition_of

R = TypeVar("R", bound=Resource)

MAX_TAGS = 50


def tags_from_list(tags: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in tags or []:
        key = str(tag.get("Key") or "")
        if not key:
            raise errors.invalid("Tag key must not be empty")
        if key.lower().startswith("aws:"):
            raise errors.invalid("Tag keys starting with 'aws:' are reserved for internal use")
        out[key] = str(tag.get("Value") or "")
    if len(out) > MAX_TAGS:
        raise tag_limit()
    return out


def tag_limit() -> AwsError:
    return AwsError("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.", 400)


def request_tags(params: Mapping[str, Any], kind: str) -> dict[str, str]:
    """The tags ``TagSpecifications`` give a new resource of ``kind``."""
    out: dict[str, str] = {}
    for spec in params.get("TagSpecifications") or []:
        resource_type = str(spec.get("ResourceType") or kind)
        if resource_type != kind:
            raise errors.invalid(f"'{resource_type}' is not a valid taggable resource type for this operation.")
        out.update(tags_from_list(spec.get("Tags")))
    return out


class Ec2Base:
    service = "ec2"

    def __init__(self, state: Ec2State) -> None:
        self.state = state
        self.region = state.region

    def _acct(self, ctx: RequestContext) -> Account:
        return self.state.account(ctx.account)

    def _get(self, ctx: RequestContext, cls: type[R], resource_id: object) -> R:
        rid = str(resource_id or "")
        item = self._acct(ctx).get(rid, cls)
        if item is None:
            raise errors.not_found(cls.kind, rid)
        return item

    def arn(self, account: str, resource_id: str) -> str:
        kind = kind_of_id(resource_id) or "resource"
        return f"arn:{partition_of(self.region)}:ec2:{self.region}:{account}:{kind}/{resource_id}"

    @staticmethod
    def _required(params: Mapping[str, Any], name: str) -> str:
        value = params.get(name)
        if value is None or value == "":
            raise errors.missing(name)
        return str(value)

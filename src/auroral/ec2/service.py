"""The EC2 provider: the operation families (see ``base.py``) composed into one class, the
authorization hooks, and the ``Network`` view the RDS side and the gateway read."""

from __future__ import annotations

from typing import Any

from auroral.api.context import RequestContext
from auroral.ec2.interfaces import InterfaceOperations
from auroral.ec2.model import CLASS_BY_KIND, SecurityGroup, kind_of_id
from auroral.ec2.network import Network
from auroral.ec2.state import Ec2State
from auroral.store import Store

_BY_GROUP_NAME = (
    "DeleteSecurityGroup", "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress",
    "UpdateSecurityGroupRuleDescriptionsIngress", "UpdateSecurityGroupRuleDescriptionsEgress",
)


class Ec2Service(InterfaceOperations):
    def __init__(self, store: Store, region: str, *, translation: str | None = None) -> None:
        super().__init__(Ec2State(store, region))
        self.network = Network(self.state, translation)

    # --- authorization hooks ----------------------------------------------------------------

    def resource_arns(self, ctx: RequestContext, operation: str, params: dict[str, Any]) -> list[str] | None:
        if operation in ("CreateTags", "DeleteTags"):
            return [self.arn(ctx.account, str(rid)) for rid in params.get("Resources") or []] or ["*"]
        if operation in _BY_GROUP_NAME and not params.get("GroupId") and params.get("GroupName"):
            acct = self.state.account(ctx.account)
            default = next((v.id for v in acct.items.values() if getattr(v, "is_default", False)), None)
            for group in acct.all(SecurityGroup):
                if group.name == params["GroupName"] and group.vpc_id == default:
                    return [self.arn(ctx.account, group.id)]
        return None

    def resource_tags(self, account: str, arn: str) -> dict[str, str]:
        resource_id = arn.rpartition("/")[2]
        kind = kind_of_id(resource_id)
        if kind is None:
            return {}
        item = self.state.account(account).get(resource_id, CLASS_BY_KIND[kind])
        return dict(item.tags) if item is not None else {}

    def authz_keys(self, ctx: RequestContext, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        pairs: list[tuple[str, str]] = []
        for spec in params.get("TagSpecifications") or []:
            pairs += [(str(t.get("Key")), str(t.get("Value") or "")) for t in spec.get("Tags") or []]
        if operation == "CreateTags":
            pairs += [(str(t.get("Key")), str(t.get("Value") or "")) for t in params.get("Tags") or []]
        keys: dict[str, Any] = {f"aws:RequestTag/{k}": v for k, v in pairs}
        tag_keys = [k for k, _v in pairs]
        if operation == "DeleteTags":
            tag_keys += [str(t.get("Key")) for t in params.get("Tags") or []]
        if tag_keys or params.get("TagSpecifications") is not None or operation in ("CreateTags", "DeleteTags"):
            keys["aws:TagKeys"] = tag_keys
        return keys

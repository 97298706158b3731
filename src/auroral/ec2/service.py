"""The EC2 provider: the operation families (see ``base.py``) composed into one class, the
authorization hooks, and the ``Network`` view the RDS side and the gateway read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auroral.api.context import RequestContext
from auroral.ec2.interfaces import InterfaceOperations
from auroral.ec2.model import CLASS_BY_KIND, SecurityGroup, Subnet, Vpc, kind_of_id
from auroral.ec2.network import Network
from auroral.ec2.regions import RegionOperations
from auroral.ec2.state import Ec2State
from auroral.errors import AwsError
from auroral.regions import partition_of
from auroral.store import Store

# Resolver kinds of the table's ``Ref``s that name one resource of their own type (ec2/actions.py).
_PLAIN = frozenset({"vpc", "subnet", "network-interface", "internet-gateway", "customer-gateway",
                    "vpn-gateway", "vpn-connection"})


class Ec2Service(InterfaceOperations, RegionOperations):
    def __init__(self, store: Store, region: str, *, translation: str | None = None) -> None:
        super().__init__(Ec2State(store, region))
        self.network = Network(self.state, translation)

    # --- authorization hooks ----------------------------------------------------------------

    def resolve_resource(self, ctx: RequestContext, kind: str, value: Any, params: Mapping[str, Any]) -> list[str]:
        """The ARNs of the resources a parameter names, as the handler finds them: EC2 IDs are
        case-sensitive and looked up exactly (``SG-1`` or ``sg-1 `` name nothing), a group named by
        ``GroupName`` is the default VPC's, and an omitted VPC or group list is the default the handler
        picks."""
        acct = self.state.account(ctx.account)

        def arn(rtype: str, rid: str) -> str:
            return f"arn:{partition_of(ctx.region)}:ec2:{ctx.region}:{ctx.account}:{rtype}/{rid}"

        if kind in _PLAIN:
            return [arn(kind, str(value) if value else "*")]
        if kind == "security-group":  # GroupId, or GroupName in the default VPC (GroupOperations._group)
            if value:
                return [arn(kind, str(value))]
            name = params.get("GroupName")
            default = next((v.id for v in acct.all(Vpc) if v.is_default), None)
            found = next((g.id for g in acct.all(SecurityGroup)
                          if name and g.name == name and g.vpc_id == default), "*")
            return [arn(kind, found)]
        if kind == "vpc-or-default":  # CreateSecurityGroup without VpcId: the default VPC
            vpc = str(value) if value else next((v.id for v in acct.all(Vpc) if v.is_default), "*")
            return [arn("vpc", vpc)]
        if kind == "security-groups":  # a new interface without Groups gets its VPC's default group
            if value:
                return [arn("security-group", str(g)) for g in value]
            subnet = acct.get(str(params.get("SubnetId") or ""), Subnet)
            default = next((g.id for g in acct.all(SecurityGroup)
                            if subnet is not None and g.vpc_id == subnet.vpc_id and g.name == "default"), "*")
            return [arn("security-group", default)]
        if kind == "resources":  # CreateTags/DeleteTags: every ID, typed by its prefix
            out = []
            for rid in value or []:
                rtype = kind_of_id(str(rid))
                if rtype is None:  # as InterfaceOperations._taggable
                    raise AwsError("InvalidID", f"The ID '{rid}' is not valid", 400)
                out.append(arn(rtype, str(rid)))
            return out or ["*"]
        raise KeyError(kind)

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

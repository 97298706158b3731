"""Security groups and their rules.

A new group admits nothing in and everything out (one egress rule to ``0.0.0.0/0``). Rules are
added, removed and changed one peer at a time (``rules.py``); a rule may name another group of the
same VPC as its peer, which then admits every network interface carrying that group. A group that
another group's rules reference, or that a network interface carries, cannot be deleted, nor can a
VPC's ``default`` group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from auroral.api.context import RequestContext
from auroral.ec2 import errors, filters, rules
from auroral.ec2.base import request_tags
from auroral.ec2.gateways import GatewayOperations
from auroral.ec2.model import NetworkInterface, Rule, SecurityGroup, Vpc, new_id
from auroral.ec2.rules import tag_list
from auroral.errors import AwsError


class GroupOperations(GatewayOperations):
    # --- lookups ---------------------------------------------------------------------------

    def _default_vpc(self, ctx: RequestContext) -> Vpc:
        for vpc in self._acct(ctx).all(Vpc):
            if vpc.is_default:
                return vpc
        raise AwsError("VPCIdNotSpecified", "No default VPC for this user", 400)

    def _group(self, ctx: RequestContext, params: dict[str, Any]) -> SecurityGroup:
        """The group a request names by ``GroupId``, or by ``GroupName`` in the default VPC."""
        acct = self._acct(ctx)
        if params.get("GroupId"):
            group = acct.get(str(params["GroupId"]), SecurityGroup)
            if group is None:
                raise errors.group_not_found(str(params["GroupId"]))
            return group
        if params.get("GroupName"):
            name = str(params["GroupName"])
            vpc = self._default_vpc(ctx)
            for group in acct.all(SecurityGroup):
                if group.vpc_id == vpc.id and group.name == name:
                    return group
            raise errors.group_name_not_found(name, vpc.id)
        raise errors.missing("groupName or groupId")

    def _resolver(self, ctx: RequestContext, group: SecurityGroup) -> rules.GroupResolver:
        acct = self._acct(ctx)

        def resolve(group_id: str | None, name: str | None) -> str:
            if group_id:
                ref = acct.get(group_id, SecurityGroup)
                if ref is None:
                    raise errors.group_not_found(group_id)
            elif name:
                found = [g for g in acct.all(SecurityGroup) if g.vpc_id == group.vpc_id and g.name == name]
                if not found:
                    raise errors.group_not_found(name)
                ref = found[0]
            else:
                raise errors.missing("UserIdGroupPairs.GroupId")
            if ref.vpc_id != group.vpc_id:
                raise errors.invalid("You have specified two resources that belong to different networks.")
            return ref.id

        return resolve

    def _group_output(self, account: str, group: SecurityGroup) -> dict[str, Any]:
        own = self.state.account(account).rules_of(group.id)
        return {
            "GroupId": group.id,
            "GroupName": group.name,
            "Description": group.description,
            "VpcId": group.vpc_id,
            "OwnerId": account,
            "SecurityGroupArn": self.arn(account, group.id),
            "IpPermissions": rules.permissions((r for r in own if not r.egress), account),
            "IpPermissionsEgress": rules.permissions((r for r in own if r.egress), account),
            "Tags": tag_list(group.tags),
        }

    # --- groups ----------------------------------------------------------------------------

    def CreateSecurityGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._required(params, "GroupName")
        description = self._required(params, "Description")
        for member, text in (("GroupName", name), ("GroupDescription", description)):
            if not text.isascii():
                # AWS's answer; a Unicode look-alike of another group's name ("d\u0435fault") is refused.
                raise errors.invalid_value(member, text, "Character sets beyond ASCII are not supported.")
        if name.lower().startswith("sg-"):
            raise errors.invalid("Group names may not be in the format sg-*")
        if len(name) > 255 or len(description) > 255:
            raise errors.invalid("Group name and description must be at most 255 characters")
        if name == "default":
            raise AwsError("InvalidGroup.Reserved", "The security group 'default' is reserved", 400)
        vpc = self._get(ctx, Vpc, params["VpcId"]) if params.get("VpcId") else self._default_vpc(ctx)
        if any(g.vpc_id == vpc.id and g.name == name for g in self._acct(ctx).all(SecurityGroup)):
            raise errors.group_duplicate(name, vpc.id)
        group = SecurityGroup(id=new_id("sg"), vpc_id=vpc.id, name=name, description=description,
                              tags=request_tags(params, "security-group"))
        egress = Rule(id=new_id("sgr"), group_id=group.id, egress=True, protocol="-1", cidr_ipv4="0.0.0.0/0")
        self.state.save(ctx.account, group, egress)
        ctx.record_resource("AWS::EC2::SecurityGroup", group.id)
        return {"GroupId": group.id, "Tags": tag_list(group.tags), "SecurityGroupArn": self.arn(ctx.account, group.id)}

    def DeleteSecurityGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group(ctx, params)
        acct = self._acct(ctx)
        if group.name == "default":
            raise errors.cannot_delete_default(group.id)
        referenced = any(r.referenced_group_id == group.id and r.group_id != group.id for r in acct.all(Rule))
        carried = any(group.id in i.group_ids for i in acct.all(NetworkInterface))
        if referenced or carried:
            raise errors.dependency(f"resource {group.id} has a dependent object")
        self.state.remove(ctx.account, *acct.rules_of(group.id), group)
        return {"Return": True, "GroupId": group.id}

    def DescribeSecurityGroups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct = self._acct(ctx)
        groups = list(acct.all(SecurityGroup))
        ids = params.get("GroupIds") or []
        names = params.get("GroupNames") or []
        for gid in ids:
            if acct.get(str(gid), SecurityGroup) is None:
                raise errors.group_not_found(str(gid))
        if names:
            vpc = self._default_vpc(ctx)
            in_default = {g.name for g in groups if g.vpc_id == vpc.id}
            for name in names:
                if name not in in_default:
                    raise errors.group_name_not_found(str(name), vpc.id)
        if ids or names:
            default_vpc = self._default_vpc(ctx).id if names else ""
            groups = [g for g in groups
                      if g.id in ids or (g.name in names and g.vpc_id == default_vpc)]
        groups = filters.apply(groups, params.get("Filters"), self._group_filters(ctx))
        return {"SecurityGroups": [self._group_output(ctx.account, g) for g in groups]}

    def _group_filters(self, ctx: RequestContext) -> dict[str, filters.Getter[SecurityGroup]]:
        acct = self._acct(ctx)

        def over_rules(egress: bool, pick: Callable[[Rule], Iterable[str]]) -> filters.Getter[SecurityGroup]:
            return lambda g: [v for r in acct.rules_of(g.id) if r.egress == egress for v in pick(r)]

        out: dict[str, filters.Getter[SecurityGroup]] = {
            "group-id": lambda g: [g.id],
            "group-name": lambda g: [g.name],
            "vpc-id": lambda g: [g.vpc_id],
            "description": lambda g: [g.description],
            "owner-id": lambda g: [ctx.account],
        }
        picks: dict[str, Callable[[Rule], Iterable[str]]] = {
            "cidr": lambda r: [r.cidr_ipv4] if r.cidr_ipv4 else [],
            "ipv6-cidr": lambda r: [r.cidr_ipv6] if r.cidr_ipv6 else [],
            "group-id": lambda r: [r.referenced_group_id] if r.referenced_group_id else [],
            "prefix-list-id": lambda r: [r.prefix_list_id] if r.prefix_list_id else [],
            "protocol": lambda r: [r.protocol],
            "from-port": lambda r: [str(r.from_port)],
            "to-port": lambda r: [str(r.to_port)],
            "user-id": lambda r: [ctx.account] if r.referenced_group_id else [],
        }
        for name, pick in picks.items():
            out[f"ip-permission.{name}"] = over_rules(False, pick)
            out[f"egress.ip-permission.{name}"] = over_rules(True, pick)
        return out

    # --- rules -----------------------------------------------------------------------------

    def _authorize(self, ctx: RequestContext, params: dict[str, Any], egress: bool) -> dict[str, Any]:
        group = self._group(ctx, params)
        wanted = rules.from_request(group.id, egress, params, self._resolver(ctx, group))
        existing = [r for r in self._acct(ctx).rules_of(group.id) if r.egress == egress]
        accepted: list[Rule] = []
        for rule in wanted:
            if any(rule.same_permission(other) for other in (*existing, *accepted)):
                raise errors.permission_duplicate(rules.describe(rule))
            accepted.append(rule)
        tags = request_tags(params, "security-group-rule")
        created = rules.assign_ids(accepted, tags)
        self.state.save(ctx.account, *created)
        return {"Return": True,
                "SecurityGroupRules": [rules.rule_output(r, ctx.account, self.region) for r in created]}

    def AuthorizeSecurityGroupIngress(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._authorize(ctx, params, egress=False)

    def AuthorizeSecurityGroupEgress(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._authorize(ctx, params, egress=True)

    def _rules_by_ids(self, ctx: RequestContext, group: SecurityGroup, ids: Iterable[object],
                      egress: bool | None) -> list[Rule]:
        acct = self._acct(ctx)
        found: list[Rule] = []
        for rid in ids:
            rule = acct.get(str(rid), Rule)
            if rule is None or rule.group_id != group.id or (egress is not None and rule.egress != egress):
                raise errors.not_found("security-group-rule", str(rid))
            found.append(rule)
        return found

    def _revoke(self, ctx: RequestContext, params: dict[str, Any], egress: bool) -> dict[str, Any]:
        group = self._group(ctx, params)
        if params.get("SecurityGroupRuleIds"):
            gone = self._rules_by_ids(ctx, group, params["SecurityGroupRuleIds"], egress)
        else:
            wanted = rules.from_request(group.id, egress, params, self._resolver(ctx, group))
            existing = [r for r in self._acct(ctx).rules_of(group.id) if r.egress == egress]
            gone = []
            for rule in wanted:
                match = next((r for r in existing if r.same_permission(rule)), None)
                if match is None:
                    raise errors.permission_not_found()
                gone.append(match)
        self.state.remove(ctx.account, *gone)
        return {"Return": True}

    def RevokeSecurityGroupIngress(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._revoke(ctx, params, egress=False)

    def RevokeSecurityGroupEgress(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._revoke(ctx, params, egress=True)

    def DescribeSecurityGroupRules(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = filters.by_ids(self._acct(ctx).all(Rule), params.get("SecurityGroupRuleIds"), "security-group-rule")
        found = filters.apply(found, params.get("Filters"), {
            "group-id": lambda r: [r.group_id],
            "security-group-rule-id": lambda r: [r.id],
        })
        return {"SecurityGroupRules": [rules.rule_output(r, ctx.account, self.region) for r in found]}

    def ModifySecurityGroupRules(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group(ctx, {"GroupId": params.get("GroupId")})
        resolve = self._resolver(ctx, group)
        updates = params.get("SecurityGroupRules") or []
        current = {r.id: r for r in self._acct(ctx).rules_of(group.id)}
        changed: list[Rule] = []
        for update in updates:
            (base,) = self._rules_by_ids(ctx, group, [update.get("SecurityGroupRuleId")], None)
            new = rules.from_rule_request(base, update.get("SecurityGroupRule") or {}, resolve)
            current[new.id] = new
            changed.append(new)
        for rule in changed:
            if any(o.id != rule.id and o.same_permission(rule) for o in current.values()):
                raise errors.permission_duplicate(rules.describe(rule))
        self.state.save(ctx.account, *changed)
        return {"Return": True}

    def _update_descriptions(self, ctx: RequestContext, params: dict[str, Any], egress: bool) -> dict[str, Any]:
        group = self._group(ctx, params)
        changed: list[Rule] = []
        for item in params.get("SecurityGroupRuleDescriptions") or []:
            (rule,) = self._rules_by_ids(ctx, group, [item.get("SecurityGroupRuleId")], egress)
            desc = None if item.get("Description") is None else str(item["Description"])
            changed.append(replace(rule, description=desc))
        if params.get("IpPermissions"):
            wanted = rules.from_request(group.id, egress, {"IpPermissions": params["IpPermissions"]},
                                        self._resolver(ctx, group))
            existing = [r for r in self._acct(ctx).rules_of(group.id) if r.egress == egress]
            for rule in wanted:
                match = next((r for r in existing if r.same_permission(rule)), None)
                if match is None:
                    raise errors.permission_not_found()
                changed.append(replace(match, description=rule.description))
        self.state.save(ctx.account, *changed)
        return {"Return": True}

    def UpdateSecurityGroupRuleDescriptionsIngress(self, ctx: RequestContext, params: dict[str, Any],
                                                   ) -> dict[str, Any]:
        return self._update_descriptions(ctx, params, egress=False)

    def UpdateSecurityGroupRuleDescriptionsEgress(self, ctx: RequestContext, params: dict[str, Any],
                                                  ) -> dict[str, Any]:
        return self._update_descriptions(ctx, params, egress=True)

"""Security-group rules: from the request forms to ``Rule`` records and back.

Requests describe rules as ``IpPermissions`` (one protocol and port range, many peers), as the
legacy top-level ``IpProtocol``/``FromPort``/``ToPort``/``CidrIp`` form, or as
``SecurityGroupRuleRequest`` (ModifySecurityGroupRules). Each peer becomes one ``Rule``. Responses
show rules one by one (``SecurityGroupRule``) or grouped back into ``IpPermissions``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from auroral.ec2 import errors
from auroral.ec2.model import Rule, new_id
from auroral.regions import partition_of

_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "-1"}
_PORTED = ("tcp", "udp")

# Resolves a referenced group (GroupId or, failing that, GroupName) to a group ID, or raises.
GroupResolver = Callable[[str | None, str | None], str]


def normalize_protocol(value: object) -> str:
    text = str(value if value is not None else "").strip().lower()
    text = _PROTOCOL_NAMES.get(text, text)
    if text in ("tcp", "udp", "icmp", "icmpv6", "-1"):
        return text
    if text.isdigit() and 0 <= int(text) <= 255:
        return text
    raise errors.invalid(f"Invalid value '{value}' for IP protocol. Unknown protocol.")


def _ports(protocol: str, from_port: Any, to_port: Any) -> tuple[int, int]:
    if protocol in _PORTED:
        if from_port is None or to_port is None:
            raise errors.invalid("Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange")
        lo, hi = int(from_port), int(to_port)
        if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or lo > hi:
            raise errors.invalid(f"Invalid value 'Invalid port range: {lo}-{hi}' for portRange")
        return lo, hi
    if protocol in ("icmp", "icmpv6"):
        icmp_type = -1 if from_port is None else int(from_port)
        code = -1 if to_port is None else int(to_port)
        if not (-1 <= icmp_type <= 255 and -1 <= code <= 255):
            raise errors.invalid(f"Invalid value '{icmp_type}/{code}' for ICMP type and code")
        return icmp_type, code
    return -1, -1


def cidr(value: object, version: int) -> str:
    text = str(value or "").strip()
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        net = None
    if net is None or net.version != version or "/" not in text:
        raise errors.invalid(f"CIDR block {text} is malformed")
    return text


def _peer_description(item: Mapping[str, Any]) -> str | None:
    desc = item.get("Description")
    return None if desc is None else str(desc)


def from_permission(group_id: str, egress: bool, perm: Mapping[str, Any], resolve: GroupResolver) -> list[Rule]:
    """The rules one ``IpPermission`` stands for (without IDs yet)."""
    if perm.get("IpProtocol") is None:
        raise errors.missing("IpPermissions.IpProtocol")
    protocol = normalize_protocol(perm["IpProtocol"])
    lo, hi = _ports(protocol, perm.get("FromPort"), perm.get("ToPort"))

    def rule(**peer: Any) -> Rule:
        return Rule(id="", group_id=group_id, egress=egress, protocol=protocol, from_port=lo, to_port=hi, **peer)

    out: list[Rule] = []
    for item in perm.get("IpRanges") or []:
        out.append(rule(cidr_ipv4=cidr(item.get("CidrIp"), 4), description=_peer_description(item)))
    for item in perm.get("Ipv6Ranges") or []:
        out.append(rule(cidr_ipv6=cidr(item.get("CidrIpv6"), 6), description=_peer_description(item)))
    for item in perm.get("UserIdGroupPairs") or []:
        gid = item.get("GroupId")
        name = item.get("GroupName")
        ref = resolve(None if gid is None else str(gid), None if name is None else str(name))
        out.append(rule(referenced_group_id=ref, description=_peer_description(item)))
    for item in perm.get("PrefixListIds") or []:
        out.append(rule(prefix_list_id=str(item.get("PrefixListId") or ""), description=_peer_description(item)))
    if not out:
        raise errors.missing("IpRanges, Ipv6Ranges, UserIdGroupPairs or PrefixListIds")
    return out


def from_request(group_id: str, egress: bool, params: Mapping[str, Any], resolve: GroupResolver) -> list[Rule]:
    """Rules from an Authorize/Revoke request: ``IpPermissions`` or the legacy top-level form."""
    perms = params.get("IpPermissions") or []
    rules = [r for perm in perms for r in from_permission(group_id, egress, perm, resolve)]
    legacy_peer = params.get("CidrIp") or params.get("SourceSecurityGroupName")
    if legacy_peer is not None or params.get("IpProtocol") is not None:
        perm: dict[str, Any] = {
            "IpProtocol": params.get("IpProtocol") if params.get("IpProtocol") is not None else "-1",
            "FromPort": params.get("FromPort"),
            "ToPort": params.get("ToPort"),
        }
        if params.get("CidrIp"):
            perm["IpRanges"] = [{"CidrIp": params["CidrIp"]}]
        if params.get("SourceSecurityGroupName"):
            perm["UserIdGroupPairs"] = [{"GroupName": params["SourceSecurityGroupName"]}]
        rules.extend(from_permission(group_id, egress, perm, resolve))
    if not rules:
        raise errors.missing("IpPermissions")
    return rules


def from_rule_request(base: Rule, req: Mapping[str, Any], resolve: GroupResolver) -> Rule:
    """The rule ``base`` becomes under a ``SecurityGroupRuleRequest`` (ModifySecurityGroupRules)."""
    if req.get("IpProtocol") is None:
        raise errors.missing("SecurityGroupRule.IpProtocol")
    protocol = normalize_protocol(req["IpProtocol"])
    lo, hi = _ports(protocol, req.get("FromPort"), req.get("ToPort"))
    peers = [k for k in ("CidrIpv4", "CidrIpv6", "ReferencedGroupId", "PrefixListId") if req.get(k)]
    if len(peers) != 1:
        raise errors.invalid("Exactly one of CidrIpv4, CidrIpv6, ReferencedGroupId or PrefixListId must be specified.")
    rule = Rule(id=base.id, tags=dict(base.tags), group_id=base.group_id, egress=base.egress, protocol=protocol,
                from_port=lo, to_port=hi, description=None if req.get("Description") is None
                else str(req["Description"]))
    if req.get("CidrIpv4"):
        rule.cidr_ipv4 = cidr(req["CidrIpv4"], 4)
    elif req.get("CidrIpv6"):
        rule.cidr_ipv6 = cidr(req["CidrIpv6"], 6)
    elif req.get("ReferencedGroupId"):
        rule.referenced_group_id = resolve(str(req["ReferencedGroupId"]), None)
    else:
        rule.prefix_list_id = str(req["PrefixListId"])
    return rule


def describe(rule: Rule) -> str:
    """EC2's wording of a rule in InvalidPermission.Duplicate messages."""
    if rule.protocol == "-1":
        return f"peer: {rule.peer()}, ALL, ALLOW"
    if rule.protocol in _PORTED:
        return (f"peer: {rule.peer()}, {rule.protocol.upper()}, from port: {rule.from_port}, "
                f"to port: {rule.to_port}, ALLOW")
    if rule.protocol in ("icmp", "icmpv6"):
        return f"peer: {rule.peer()}, {rule.protocol.upper()}, type: {rule.from_port}, code: {rule.to_port}, ALLOW"
    return f"peer: {rule.peer()}, {rule.protocol}, ALLOW"


def assign_ids(rules: Iterable[Rule], tags: Mapping[str, str]) -> list[Rule]:
    out = []
    for rule in rules:
        rule.id = new_id("sgr")
        rule.tags = dict(tags)
        out.append(rule)
    return out


# --- output ---------------------------------------------------------------------------------


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def rule_output(rule: Rule, account: str, region: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "SecurityGroupRuleId": rule.id,
        "GroupId": rule.group_id,
        "GroupOwnerId": account,
        "IsEgress": rule.egress,
        "IpProtocol": rule.protocol,
        "FromPort": rule.from_port,
        "ToPort": rule.to_port,
        "Tags": tag_list(rule.tags),
        "SecurityGroupRuleArn": f"arn:{partition_of(region)}:ec2:{region}:{account}:security-group-rule/{rule.id}",
    }
    if rule.cidr_ipv4:
        out["CidrIpv4"] = rule.cidr_ipv4
    if rule.cidr_ipv6:
        out["CidrIpv6"] = rule.cidr_ipv6
    if rule.prefix_list_id:
        out["PrefixListId"] = rule.prefix_list_id
    if rule.referenced_group_id:
        out["ReferencedGroupInfo"] = {"GroupId": rule.referenced_group_id, "UserId": account}
    if rule.description is not None:
        out["Description"] = rule.description
    return out


def permissions(rules: Iterable[Rule], account: str) -> list[dict[str, Any]]:
    """Rules grouped into ``IpPermissions`` by protocol and port range, in first-seen order."""
    grouped: dict[tuple[str, int, int], dict[str, Any]] = {}
    for rule in rules:
        key = (rule.protocol, rule.from_port, rule.to_port)
        perm = grouped.get(key)
        if perm is None:
            perm = {"IpProtocol": rule.protocol, "IpRanges": [], "Ipv6Ranges": [], "UserIdGroupPairs": [],
                    "PrefixListIds": []}
            if rule.protocol != "-1":
                perm["FromPort"], perm["ToPort"] = rule.from_port, rule.to_port
            grouped[key] = perm
        desc = {"Description": rule.description} if rule.description is not None else {}
        if rule.cidr_ipv4:
            perm["IpRanges"].append({"CidrIp": rule.cidr_ipv4, **desc})
        elif rule.cidr_ipv6:
            perm["Ipv6Ranges"].append({"CidrIpv6": rule.cidr_ipv6, **desc})
        elif rule.referenced_group_id:
            perm["UserIdGroupPairs"].append({"GroupId": rule.referenced_group_id, "UserId": account, **desc})
        elif rule.prefix_list_id:
            perm["PrefixListIds"].append({"PrefixListId": rule.prefix_list_id, **desc})
    return list(grouped.values())

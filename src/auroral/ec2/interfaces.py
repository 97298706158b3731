"""Network interfaces (the identity of a client inside a subnet) and tags on every resource.

An ENI has one private IPv4 address inside its subnet (given, or the lowest free one after the
four addresses AWS reserves at the start of every subnet) and carries security groups of its VPC.
At the endpoints, a client whose address is an ENI's private address carries that ENI's groups,
which is what makes rules that reference a security group work.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from auroral.api.context import RequestContext
from auroral.ec2 import errors, filters
from auroral.ec2.base import MAX_TAGS, request_tags, tag_limit, tags_from_list
from auroral.ec2.groups import GroupOperations
from auroral.ec2.model import (
    CLASS_BY_KIND,
    NetworkInterface,
    Resource,
    SecurityGroup,
    Subnet,
    kind_of_id,
    new_id,
)
from auroral.ec2.rules import tag_list
from auroral.errors import AwsError


class InterfaceOperations(GroupOperations):
    # --- network interfaces -----------------------------------------------------------------

    def _eni_output(self, account: str, eni: NetworkInterface) -> dict[str, Any]:
        acct = self.state.account(account)
        groups = []
        for gid in eni.group_ids:
            group = acct.get(gid, SecurityGroup)
            groups.append({"GroupId": gid, "GroupName": group.name if group else ""})
        out: dict[str, Any] = {
            "NetworkInterfaceId": eni.id,
            "SubnetId": eni.subnet_id,
            "VpcId": eni.vpc_id,
            "AvailabilityZone": eni.availability_zone,
            "Description": eni.description,
            "Groups": groups,
            "InterfaceType": "interface",
            "MacAddress": eni.mac_address,
            "OwnerId": account,
            "PrivateIpAddress": eni.private_ip,
            "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": eni.private_ip}],
            "Ipv6Addresses": [],
            "RequesterManaged": False,
            "SourceDestCheck": True,
            "Status": "available",
            "TagSet": tag_list(eni.tags),
        }
        if eni.requester_id:
            # As EC2 shows an interface RDS made for a DB instance: requester-managed, in use, attached
            # to an instance in RDS's own account.
            out.update({
                "RequesterManaged": True,
                "RequesterId": eni.requester_id,
                "Status": "in-use",
                "Attachment": {
                    "AttachmentId": eni.attachment_id or "",
                    "AttachTime": eni.attach_time or "",
                    "DeleteOnTermination": False,
                    "DeviceIndex": 1,
                    "NetworkCardIndex": 0,
                    "InstanceOwnerId": eni.requester_id,
                    "Status": "attached",
                },
            })
        return out

    def _eni_groups(self, ctx: RequestContext, vpc_id: str, ids: list[Any] | None) -> list[str]:
        acct = self._acct(ctx)
        if not ids:
            default = next(g for g in acct.all(SecurityGroup) if g.vpc_id == vpc_id and g.name == "default")
            return [default.id]
        out: list[str] = []
        for gid in ids:
            group = acct.get(str(gid), SecurityGroup)
            if group is None:
                raise errors.eni_group_not_found(str(gid))
            if group.vpc_id != vpc_id:
                raise errors.invalid("You have specified two resources that belong to different networks.")
            if group.id not in out:
                out.append(group.id)
        return out

    def _private_ip(self, ctx: RequestContext, subnet: Subnet, wanted: object) -> str:
        net = ipaddress.ip_network(subnet.cidr)
        taken = {i.private_ip for i in self._acct(ctx).all(NetworkInterface) if i.subnet_id == subnet.id}
        # AWS reserves the first four addresses and the last one of every subnet.
        first, last = int(net.network_address) + 4, int(net.broadcast_address) - 1
        if wanted:
            try:
                address = ipaddress.IPv4Address(str(wanted))
            except ValueError:
                raise errors.invalid_value("privateIpAddress", wanted, "This is not a valid IPv4 address.") from None
            if address not in net:
                raise errors.invalid("Address does not fall within the subnet's address range")
            if not first <= int(address) <= last:
                raise errors.invalid(f"The specified address {address} is reserved by AWS")
            if str(address) in taken:
                raise AwsError("InvalidIPAddress.InUse", "The specified address is already in use.", 400)
            return str(address)
        for number in range(first, last + 1):
            candidate = str(ipaddress.IPv4Address(number))
            if candidate not in taken:
                return candidate
        raise AwsError("InsufficientFreeAddressesInSubnet",
                       "There are not enough free addresses in subnet to satisfy the requested number of addresses.",
                       400)

    def CreateNetworkInterface(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        subnet = self._get(ctx, Subnet, params.get("SubnetId"))
        groups = self._eni_groups(ctx, subnet.vpc_id, params.get("Groups"))
        address = self._private_ip(ctx, subnet, params.get("PrivateIpAddress"))
        mac = "02:" + ":".join(secrets.token_hex(1) for _ in range(5))
        eni = NetworkInterface(id=new_id("eni"), subnet_id=subnet.id, vpc_id=subnet.vpc_id, private_ip=address,
                               group_ids=groups, description=str(params.get("Description") or ""),
                               mac_address=mac, availability_zone=subnet.availability_zone,
                               tags=request_tags(params, "network-interface"))
        self.state.save(ctx.account, eni)
        return {"NetworkInterface": self._eni_output(ctx.account, eni)}

    def DescribeNetworkInterfaces(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct = self._acct(ctx)
        enis = filters.by_ids(acct.all(NetworkInterface), params.get("NetworkInterfaceIds"), "network-interface")

        def group_names(eni: NetworkInterface) -> list[str]:
            return [g.name for gid in eni.group_ids if (g := acct.get(gid, SecurityGroup)) is not None]

        enis = filters.apply(enis, params.get("Filters"), {
            "network-interface-id": lambda i: [i.id],
            "subnet-id": lambda i: [i.subnet_id],
            "vpc-id": lambda i: [i.vpc_id],
            "private-ip-address": lambda i: [i.private_ip],
            "addresses.private-ip-address": lambda i: [i.private_ip],
            "group-id": lambda i: list(i.group_ids),
            "group-name": group_names,
            "availability-zone": lambda i: [i.availability_zone],
            "description": lambda i: [i.description],
            "mac-address": lambda i: [i.mac_address],
            "status": lambda i: ["in-use" if i.requester_id else "available"],
            "interface-type": lambda i: ["interface"],
            "owner-id": lambda i: [ctx.account],
            "requester-managed": lambda i: ["true" if i.requester_id else "false"],
            "requester-id": lambda i: [i.requester_id] if i.requester_id else [],
            "attachment.instance-owner-id": lambda i: [i.requester_id] if i.requester_id else [],
            "attachment.attachment-id": lambda i: [i.attachment_id] if i.attachment_id else [],
            "attachment.status": lambda i: ["attached"] if i.requester_id else [],
        })
        return {"NetworkInterfaces": [self._eni_output(ctx.account, i) for i in enis]}

    def DeleteNetworkInterface(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        eni = self._get(ctx, NetworkInterface, params.get("NetworkInterfaceId"))
        if eni.requester_id:
            # Observed wording: an attached interface cannot be deleted; this one goes away with its DB instance.
            raise errors.invalid(f"Network interface '{eni.id}' is currently in use.")
        self.state.remove(ctx.account, eni)
        return {}

    def ModifyNetworkInterfaceAttribute(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        eni = self._get(ctx, NetworkInterface, params.get("NetworkInterfaceId"))
        if eni.requester_id:
            # Unconfirmed wording (EC2's answer for attachments another service manages).
            raise AwsError("OperationNotPermitted",
                           f"You are not allowed to manage '{eni.requester_id}' attachments.", 400)
        changed = eni
        if params.get("Groups") is not None:
            if not params["Groups"]:
                raise errors.missing("Groups")
            changed = replace(changed, group_ids=self._eni_groups(ctx, eni.vpc_id, params["Groups"]))
        description = params.get("Description")
        if isinstance(description, Mapping) and description.get("Value") is not None:
            changed = replace(changed, description=str(description["Value"]))
        if changed is not eni:
            self.state.save(ctx.account, changed)
        return {}

    # --- tags ------------------------------------------------------------------------------

    def _taggable(self, ctx: RequestContext, resource_id: object) -> Resource:
        rid = str(resource_id or "")
        kind = kind_of_id(rid)
        if kind is None:
            raise AwsError("InvalidID", f"The ID '{rid}' is not valid", 400)
        return self._get(ctx, CLASS_BY_KIND[kind], rid)

    def CreateTags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        new = tags_from_list(params.get("Tags"))
        items = [self._taggable(ctx, rid) for rid in params.get("Resources") or []]
        changed = []
        for item in items:
            merged = {**item.tags, **new}
            if len(merged) > MAX_TAGS:
                raise tag_limit()
            changed.append(replace(item, tags=merged))
        self.state.save(ctx.account, *changed)
        return {}

    def DeleteTags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        items = [self._taggable(ctx, rid) for rid in params.get("Resources") or []]
        given = params.get("Tags")
        changed = []
        for item in items:
            if given is None:
                kept: dict[str, str] = {}
            else:
                kept = dict(item.tags)
                for tag in given:
                    key = str(tag.get("Key") or "")
                    value = tag.get("Value")
                    if key in kept and (value is None or kept[key] == str(value)):
                        del kept[key]
            changed.append(replace(item, tags=kept))
        self.state.save(ctx.account, *changed)
        return {}

    def DescribeTags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rows = [
            {"ResourceId": item.id, "ResourceType": item.kind, "Key": k, "Value": v}
            for item in self._acct(ctx).items.values()
            for k, v in sorted(item.tags.items())
        ]
        names = {"resource-id": "ResourceId", "resource-type": "ResourceType", "key": "Key", "value": "Value"}
        for f in params.get("Filters") or []:
            name = str(f.get("Name") or "")
            if name not in names:
                raise errors.invalid(f"The filter '{name}' is invalid")
            field = names[name]
            wanted = [str(v) for v in f.get("Values") or []]
            rows = [r for r in rows if filters.matches([r[field]], wanted)]
        return {"Tags": rows}

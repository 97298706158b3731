"""VPCs and subnets.

A VPC is created with its default security group (and the ID of its main route table, which is
reported nowhere else yet). Subnets must lie inside their VPC's CIDR, between /16 and /28, and not
overlap each other. A VPC with subnets, non-default security groups, network interfaces or attached
gateways cannot be deleted.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from auroral.api.context import RequestContext
from auroral.ec2 import errors, filters
from auroral.ec2.base import Ec2Base, request_tags
from auroral.ec2.model import (
    InternetGateway,
    NetworkInterface,
    Resource,
    Rule,
    SecurityGroup,
    Subnet,
    Vpc,
    VpnGateway,
    new_id,
)
from auroral.ec2.rules import tag_list
from auroral.ec2.state import availability_zones, new_vpc

_Net = ipaddress.IPv4Network


def parse_cidr_block(value: object, parameter: str = "cidrBlock") -> _Net:
    text = str(value or "")
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        net = None
    if not isinstance(net, ipaddress.IPv4Network) or "/" not in text:
        raise errors.invalid_value(parameter, text, "This is not a valid CIDR block.")
    return net


class VpcOperations(Ec2Base):
    # --- VPCs ------------------------------------------------------------------------------

    def _vpc_output(self, account: str, vpc: Vpc) -> dict[str, Any]:
        return {
            "VpcId": vpc.id,
            "CidrBlock": vpc.cidr,
            "State": "available",
            "DhcpOptionsId": "default",
            "InstanceTenancy": vpc.tenancy,
            "IsDefault": vpc.is_default,
            "OwnerId": account,
            "CidrBlockAssociationSet": [{
                "AssociationId": vpc.cidr_association_id,
                "CidrBlock": vpc.cidr,
                "CidrBlockState": {"State": "associated"},
            }],
            "Tags": tag_list(vpc.tags),
        }

    def CreateVpc(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("CidrBlock"):
            raise errors.missing("CidrBlock")
        net = parse_cidr_block(params["CidrBlock"])
        if not 16 <= net.prefixlen <= 28:
            raise errors.vpc_range(str(params["CidrBlock"]))
        tenancy = str(params.get("InstanceTenancy") or "default")
        if tenancy not in ("default", "dedicated"):
            raise errors.invalid_value("instanceTenancy", tenancy, "Valid values are default and dedicated.")
        tags = request_tags(params, "vpc")
        vpc, group, rules = new_vpc(str(net), tags=tags)
        vpc.tenancy = tenancy
        self.state.save(ctx.account, vpc, group, *rules)
        ctx.record_resource("AWS::EC2::VPC", vpc.id)
        return {"Vpc": self._vpc_output(ctx.account, vpc)}

    def DescribeVpcs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct = self._acct(ctx)
        vpcs = filters.by_ids(acct.all(Vpc), params.get("VpcIds"), "vpc")
        vpcs = filters.apply(vpcs, params.get("Filters"), {
            "vpc-id": lambda v: [v.id],
            "cidr": lambda v: [v.cidr],
            "cidr-block-association.cidr-block": lambda v: [v.cidr],
            "cidr-block-association.association-id": lambda v: [v.cidr_association_id],
            "cidr-block-association.state": lambda v: ["associated"],
            "is-default": lambda v: [filters.text(v.is_default)],
            "isDefault": lambda v: [filters.text(v.is_default)],
            "state": lambda v: ["available"],
            "owner-id": lambda v: [ctx.account],
            "dhcp-options-id": lambda v: ["default"],
        })
        return {"Vpcs": [self._vpc_output(ctx.account, v) for v in vpcs]}

    def DeleteVpc(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct = self._acct(ctx)
        vpc = self._get(ctx, Vpc, params.get("VpcId"))
        blockers: list[Resource] = [s for s in acct.all(Subnet) if s.vpc_id == vpc.id]
        blockers += [g for g in acct.all(SecurityGroup) if g.vpc_id == vpc.id and g.name != "default"]
        blockers += [i for i in acct.all(NetworkInterface) if i.vpc_id == vpc.id]
        blockers += [g for g in acct.all(InternetGateway) if g.vpc_id == vpc.id]
        blockers += [g for g in acct.all(VpnGateway) if g.vpc_id == vpc.id]
        if blockers:
            raise errors.has_dependencies("vpc", vpc.id)
        groups = [g for g in acct.all(SecurityGroup) if g.vpc_id == vpc.id]
        group_ids = {g.id for g in groups}
        rules = [r for r in acct.all(Rule) if r.group_id in group_ids]
        self.state.remove(ctx.account, *rules, *groups, vpc)
        return {}

    # --- subnets ---------------------------------------------------------------------------

    def _subnet_output(self, account: str, subnet: Subnet) -> dict[str, Any]:
        net = ipaddress.ip_network(subnet.cidr)
        used = sum(1 for i in self.state.account(account).all(NetworkInterface) if i.subnet_id == subnet.id)
        zones = availability_zones(self.region)
        zone_index = zones.index(subnet.availability_zone) + 1 if subnet.availability_zone in zones else 1
        return {
            "SubnetId": subnet.id,
            "VpcId": subnet.vpc_id,
            "CidrBlock": subnet.cidr,
            "AvailabilityZone": subnet.availability_zone,
            "AvailabilityZoneId": f"{_zone_prefix(self.region)}-az{zone_index}",
            "AvailableIpAddressCount": max(net.num_addresses - 5 - used, 0),
            "DefaultForAz": subnet.default_for_az,
            "MapPublicIpOnLaunch": subnet.map_public_ip_on_launch,
            "State": "available",
            "OwnerId": account,
            "AssignIpv6AddressOnCreation": False,
            "Ipv6CidrBlockAssociationSet": [],
            "SubnetArn": self.arn(account, subnet.id),
            "Tags": tag_list(subnet.tags),
        }

    def CreateSubnet(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vpc = self._get(ctx, Vpc, params.get("VpcId"))
        if not params.get("CidrBlock"):
            raise errors.missing("CidrBlock")
        text = str(params["CidrBlock"])
        net = parse_cidr_block(text)
        vpc_net = ipaddress.ip_network(vpc.cidr)
        if not (16 <= net.prefixlen <= 28 and isinstance(vpc_net, ipaddress.IPv4Network)
                and net.subnet_of(vpc_net)):
            raise errors.subnet_range(text)
        for other in self._acct(ctx).all(Subnet):
            if other.vpc_id == vpc.id and net.overlaps(ipaddress.ip_network(other.cidr)):
                raise errors.subnet_conflict(text)
        zones = availability_zones(self.region)
        zone = str(params.get("AvailabilityZone") or zones[0])
        if zone not in zones:
            raise errors.invalid_value(
                "availabilityZone", zone,
                f"Subnets can currently only be created in the following availability zones: {', '.join(zones)}.")
        subnet = Subnet(id=new_id("subnet"), vpc_id=vpc.id, cidr=str(net), availability_zone=zone,
                        tags=request_tags(params, "subnet"))
        self.state.save(ctx.account, subnet)
        ctx.record_resource("AWS::EC2::Subnet", subnet.id)
        return {"Subnet": self._subnet_output(ctx.account, subnet)}

    def DescribeSubnets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct = self._acct(ctx)
        subnets = filters.by_ids(acct.all(Subnet), params.get("SubnetIds"), "subnet")
        subnets = filters.apply(subnets, params.get("Filters"), {
            "subnet-id": lambda s: [s.id],
            "vpc-id": lambda s: [s.vpc_id],
            "cidr-block": lambda s: [s.cidr],
            "cidr": lambda s: [s.cidr],
            "cidrBlock": lambda s: [s.cidr],
            "availability-zone": lambda s: [s.availability_zone],
            "availabilityZone": lambda s: [s.availability_zone],
            "default-for-az": lambda s: [filters.text(s.default_for_az)],
            "defaultForAz": lambda s: [filters.text(s.default_for_az)],
            "map-public-ip-on-launch": lambda s: [filters.text(s.map_public_ip_on_launch)],
            "state": lambda s: ["available"],
            "owner-id": lambda s: [ctx.account],
            "subnet-arn": lambda s: [self.arn(ctx.account, s.id)],
        })
        return {"Subnets": [self._subnet_output(ctx.account, s) for s in subnets]}

    def DeleteSubnet(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        subnet = self._get(ctx, Subnet, params.get("SubnetId"))
        if any(i.subnet_id == subnet.id for i in self._acct(ctx).all(NetworkInterface)):
            raise errors.has_dependencies("subnet", subnet.id)
        self.state.remove(ctx.account, subnet)
        return {}


def _zone_prefix(region: str) -> str:
    # us-east-1 -> use1, eu-west-2 -> euw2
    parts = region.split("-")
    if len(parts) == 3:
        return f"{parts[0]}{parts[1][0]}{parts[2]}"
    return region

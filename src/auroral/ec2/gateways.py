"""Internet gateways, and Site-to-Site VPN: customer gateways, virtual private gateways, VPN
connections with static routes.

What these decide at the endpoints (see ``network.py``): an attached internet gateway makes a
publicly accessible instance reachable from anywhere; a VPN connection whose virtual private
gateway is attached to the VPC routes its static destination CIDRs into the VPC. Nothing here runs
a tunnel, so a connection is ``available`` as soon as it exists.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

from auroral.api.context import RequestContext
from auroral.ec2 import errors, filters
from auroral.ec2.base import request_tags
from auroral.ec2.model import CustomerGateway, InternetGateway, Vpc, VpnConnection, VpnGateway, new_id
from auroral.ec2.rules import tag_list
from auroral.ec2.vpcs import VpcOperations, parse_cidr_block
from auroral.errors import AwsError

_VPN_TYPE = "ipsec.1"


def _vpn_type(params: dict[str, Any]) -> str:
    value = str(params.get("Type") or "")
    if value != _VPN_TYPE:
        raise errors.invalid_value("type", value, f"Valid values are {_VPN_TYPE}.")
    return value


class GatewayOperations(VpcOperations):
    # --- internet gateways ------------------------------------------------------------------

    def _igw_output(self, account: str, igw: InternetGateway) -> dict[str, Any]:
        attachments = [{"State": "available", "VpcId": igw.vpc_id}] if igw.vpc_id else []
        return {"InternetGatewayId": igw.id, "OwnerId": account, "Attachments": attachments,
                "Tags": tag_list(igw.tags)}

    def CreateInternetGateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        igw = InternetGateway(id=new_id("igw"), tags=request_tags(params, "internet-gateway"))
        self.state.save(ctx.account, igw)
        return {"InternetGateway": self._igw_output(ctx.account, igw)}

    def AttachInternetGateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        igw = self._get(ctx, InternetGateway, params.get("InternetGatewayId"))
        vpc = self._get(ctx, Vpc, params.get("VpcId"))
        if igw.vpc_id is not None:
            raise errors.already_attached(igw.id, igw.vpc_id)
        if any(g.vpc_id == vpc.id for g in self._acct(ctx).all(InternetGateway)):
            raise errors.invalid(f"Network {vpc.id} already has an internet gateway attached")
        self.state.save(ctx.account, replace(igw, vpc_id=vpc.id))
        return {}

    def DetachInternetGateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        igw = self._get(ctx, InternetGateway, params.get("InternetGatewayId"))
        vpc = self._get(ctx, Vpc, params.get("VpcId"))
        if igw.vpc_id != vpc.id:
            raise errors.not_attached(igw.id, vpc.id)
        self.state.save(ctx.account, replace(igw, vpc_id=None))
        return {}

    def DescribeInternetGateways(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        igws = filters.by_ids(self._acct(ctx).all(InternetGateway), params.get("InternetGatewayIds"),
                              "internet-gateway")
        igws = filters.apply(igws, params.get("Filters"), {
            "internet-gateway-id": lambda g: [g.id],
            "attachment.vpc-id": lambda g: [g.vpc_id] if g.vpc_id else [],
            "attachment.state": lambda g: ["available"] if g.vpc_id else [],
            "owner-id": lambda g: [ctx.account],
        })
        return {"InternetGateways": [self._igw_output(ctx.account, g) for g in igws]}

    def DeleteInternetGateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        igw = self._get(ctx, InternetGateway, params.get("InternetGatewayId"))
        if igw.vpc_id is not None:
            raise errors.has_dependencies("internetGateway", igw.id)
        self.state.remove(ctx.account, igw)
        return {}

    # --- customer gateways ------------------------------------------------------------------

    @staticmethod
    def _cgw_output(cgw: CustomerGateway) -> dict[str, Any]:
        out: dict[str, Any] = {"CustomerGatewayId": cgw.id, "Type": cgw.type, "BgpAsn": str(cgw.bgp_asn),
                               "IpAddress": cgw.ip_address, "State": cgw.state, "Tags": tag_list(cgw.tags)}
        if cgw.device_name:
            out["DeviceName"] = cgw.device_name
        return out

    def CreateCustomerGateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        kind = _vpn_type(params)
        address = str(params.get("IpAddress") or params.get("PublicIp") or "")
        if not address:
            raise errors.missing("IpAddress")
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise errors.invalid_value("ipAddress", address, "This is not a valid IPv4 address.") from None
        asn = int(params.get("BgpAsn") or params.get("BgpAsnExtended") or 65000)
        if not 1 <= asn <= 4294967294:
            raise errors.invalid_value("bgpAsn", asn, "The ASN must be between 1 and 4294967294.")
        for existing in self._acct(ctx).all(CustomerGateway):  # EC2 returns the same gateway again
            if (existing.ip_address, existing.bgp_asn, existing.type) == (address, asn, kind):
                return {"CustomerGateway": self._cgw_output(existing)}
        device = params.get("DeviceName")
        cgw = CustomerGateway(id=new_id("cgw"), type=kind, bgp_asn=asn, ip_address=address,
                              device_name=None if device is None else str(device),
                              tags=request_tags(params, "customer-gateway"))
        self.state.save(ctx.account, cgw)
        return {"CustomerGateway": self._cgw_output(cgw)}

    def DescribeCustomerGateways(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        cgws = filters.by_ids(self._acct(ctx).all(CustomerGateway), params.get("CustomerGatewayIds"),
                              "customer-gateway")
        cgws = filters.apply(cgws, params.get("Filters"), {
            "customer-gateway-id": lambda g: [g.id],
            "bgp-asn": lambda g: [str(g.bgp_asn)],
            "ip-address": lambda g: [g.ip_address],
            "state": lambda g: [g.state],
            "type": lambda g: [g.type],
        })
        return {"CustomerGateways": [self._cgw_output(g) for g in cgws]}

    def DeleteCustomerGateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        cgw = self._get(ctx, CustomerGateway, params.get("CustomerGatewayId"))
        if any(v.customer_gateway_id == cgw.id for v in self._acct(ctx).all(VpnConnection)):
            raise AwsError("IncorrectState", f"The customer gateway {cgw.id} is in use.", 400)
        self.state.remove(ctx.account, cgw)
        return {}

    # --- virtual private gateways -----------------------------------------------------------

    @staticmethod
    def _vgw_output(vgw: VpnGateway) -> dict[str, Any]:
        attachments = [{"VpcId": vgw.vpc_id, "State": "attached"}] if vgw.vpc_id else []
        return {"VpnGatewayId": vgw.id, "Type": vgw.type, "State": vgw.state, "AmazonSideAsn": vgw.amazon_side_asn,
                "VpcAttachments": attachments, "Tags": tag_list(vgw.tags)}

    def CreateVpnGateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        kind = _vpn_type(params)
        asn = int(params.get("AmazonSideAsn") or 64512)
        vgw = VpnGateway(id=new_id("vgw"), type=kind, amazon_side_asn=asn, tags=request_tags(params, "vpn-gateway"))
        self.state.save(ctx.account, vgw)
        return {"VpnGateway": self._vgw_output(vgw)}

    def AttachVpnGateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vgw = self._get(ctx, VpnGateway, params.get("VpnGatewayId"))
        vpc = self._get(ctx, Vpc, params.get("VpcId"))
        if vgw.vpc_id is not None and vgw.vpc_id != vpc.id:
            raise errors.already_attached(vgw.id, vgw.vpc_id)
        if any(g.vpc_id == vpc.id and g.id != vgw.id for g in self._acct(ctx).all(VpnGateway)):
            raise errors.invalid(f"Network {vpc.id} already has a VPN gateway attached")
        self.state.save(ctx.account, replace(vgw, vpc_id=vpc.id))
        return {"VpcAttachment": {"VpcId": vpc.id, "State": "attached"}}

    def DetachVpnGateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vgw = self._get(ctx, VpnGateway, params.get("VpnGatewayId"))
        vpc_id = str(params.get("VpcId") or "")
        if vgw.vpc_id != vpc_id:
            raise AwsError("InvalidVpnGatewayAttachment.NotFound",
                           f"The attachment with vpn gateway ID '{vgw.id}' and vpc ID '{vpc_id}' does not exist", 400)
        self.state.save(ctx.account, replace(vgw, vpc_id=None))
        return {}

    def DescribeVpnGateways(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vgws = filters.by_ids(self._acct(ctx).all(VpnGateway), params.get("VpnGatewayIds"), "vpn-gateway")
        vgws = filters.apply(vgws, params.get("Filters"), {
            "vpn-gateway-id": lambda g: [g.id],
            "attachment.vpc-id": lambda g: [g.vpc_id] if g.vpc_id else [],
            "attachment.state": lambda g: ["attached"] if g.vpc_id else [],
            "amazon-side-asn": lambda g: [str(g.amazon_side_asn)],
            "state": lambda g: [g.state],
            "type": lambda g: [g.type],
        })
        return {"VpnGateways": [self._vgw_output(g) for g in vgws]}

    def DeleteVpnGateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vgw = self._get(ctx, VpnGateway, params.get("VpnGatewayId"))
        in_use = any(v.vpn_gateway_id == vgw.id for v in self._acct(ctx).all(VpnConnection))
        if vgw.vpc_id is not None or in_use:
            raise AwsError("IncorrectState", f"The VPN gateway {vgw.id} is in use.", 400)
        self.state.remove(ctx.account, vgw)
        return {}

    # --- VPN connections --------------------------------------------------------------------

    @staticmethod
    def _vpn_output(vpn: VpnConnection) -> dict[str, Any]:
        return {
            "VpnConnectionId": vpn.id,
            "Type": vpn.type,
            "Category": "VPN",
            "State": vpn.state,
            "CustomerGatewayId": vpn.customer_gateway_id,
            "VpnGatewayId": vpn.vpn_gateway_id,
            "Options": {"StaticRoutesOnly": vpn.static_routes_only, "EnableAcceleration": False,
                        "LocalIpv4NetworkCidr": "0.0.0.0/0", "RemoteIpv4NetworkCidr": "0.0.0.0/0",
                        "TunnelInsideIpVersion": "ipv4"},
            "Routes": [{"DestinationCidrBlock": c, "Source": "Static", "State": "available"} for c in vpn.routes],
            "Tags": tag_list(vpn.tags),
        }

    def CreateVpnConnection(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        kind = _vpn_type(params)
        cgw = self._get(ctx, CustomerGateway, params.get("CustomerGatewayId"))
        if not params.get("VpnGatewayId"):
            raise errors.missing("VpnGatewayId")
        vgw = self._get(ctx, VpnGateway, params.get("VpnGatewayId"))
        options = params.get("Options") or {}
        vpn = VpnConnection(id=new_id("vpn"), type=kind, customer_gateway_id=cgw.id, vpn_gateway_id=vgw.id,
                            static_routes_only=bool(options.get("StaticRoutesOnly", False)),
                            tags=request_tags(params, "vpn-connection"))
        self.state.save(ctx.account, vpn)
        return {"VpnConnection": self._vpn_output(vpn)}

    def DescribeVpnConnections(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vpns = filters.by_ids(self._acct(ctx).all(VpnConnection), params.get("VpnConnectionIds"), "vpn-connection")
        vpns = filters.apply(vpns, params.get("Filters"), {
            "vpn-connection-id": lambda v: [v.id],
            "customer-gateway-id": lambda v: [v.customer_gateway_id],
            "vpn-gateway-id": lambda v: [v.vpn_gateway_id],
            "state": lambda v: [v.state],
            "type": lambda v: [v.type],
            "option.static-routes-only": lambda v: [filters.text(v.static_routes_only)],
            "route.destination-cidr-block": lambda v: list(v.routes),
        })
        return {"VpnConnections": [self._vpn_output(v) for v in vpns]}

    def CreateVpnConnectionRoute(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vpn = self._get(ctx, VpnConnection, params.get("VpnConnectionId"))
        net = str(parse_cidr_block(params.get("DestinationCidrBlock"), "destinationCidrBlock"))
        if not vpn.static_routes_only:
            # Unconfirmed wording: EC2 refuses static routes on a BGP-routed connection.
            raise errors.invalid(f"The VPN connection {vpn.id} does not use static routing.")
        if net not in vpn.routes:
            self.state.save(ctx.account, replace(vpn, routes=[*vpn.routes, net]))
        return {}

    def DeleteVpnConnectionRoute(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vpn = self._get(ctx, VpnConnection, params.get("VpnConnectionId"))
        net = str(parse_cidr_block(params.get("DestinationCidrBlock"), "destinationCidrBlock"))
        if net not in vpn.routes:
            raise AwsError("InvalidRoute.NotFound",
                           f"The route with destination-cidr-block {net} does not exist in {vpn.id}", 400)
        self.state.save(ctx.account, replace(vpn, routes=[c for c in vpn.routes if c != net]))
        return {}

    def DeleteVpnConnection(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vpn = self._get(ctx, VpnConnection, params.get("VpnConnectionId"))
        self.state.remove(ctx.account, vpn)
        return {}

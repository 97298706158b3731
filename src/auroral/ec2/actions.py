"""Authorization table entries for EC2 (Service Authorization Reference, "Amazon EC2").

Resource types: ``vpc``, ``subnet``, ``security-group``, ``security-group-rule``,
``network-interface``, ``internet-gateway``, ``customer-gateway``, ``vpn-gateway`` and
``vpn-connection``, each ``arn:aws:ec2:<region>:<account>:<type>/<id>``; a resource being created is
``<type>/*``. Describe* actions support no resource-level permissions (``*``). An existing resource is
a ``Ref`` resolved by ``Ec2Service.resolve_resource`` exactly as the handler finds it: CreateTags/DeleteTags
name every resource in ``Resources``, a group named by ``GroupName`` is resolved to its ID, an omitted
VPC (CreateSecurityGroup) or group list (CreateNetworkInterface) is the default the handler picks. ``aws:RequestTag/*`` and ``aws:TagKeys`` come from
``TagSpecifications`` (or ``Tags``) through ``Ec2Service.authz_keys``.
"""

from auroral.api.actions import ActionSpec, Ref

_P = "arn:{partition}:ec2:{region}:{account}:"
_VPC = Ref("VpcId", "vpc")
_SUBNET = Ref("SubnetId", "subnet")
_SG = Ref("GroupId", "security-group")
_ENI = Ref("NetworkInterfaceId", "network-interface")
_IGW = Ref("InternetGatewayId", "internet-gateway")
_CGW = Ref("CustomerGatewayId", "customer-gateway")
_VGW = Ref("VpnGatewayId", "vpn-gateway")
_VPN = Ref("VpnConnectionId", "vpn-connection")


# "To tag resources on creation, users must have permissions to use the action that creates the resource,
# such as ec2:CreateVpc... also ec2:CreateTags" (EC2 user guide); ec2:CreateAction names the create.
_TAG_ON_CREATE = ("ec2:CreateTags", "TagSpecifications")


def _new(kind: str) -> str:
    return _P + kind + "/*"


def _read(action: str) -> ActionSpec:
    return ActionSpec(f"ec2:{action}", ("*",), read_only=True)


def _one(action: str, arn: Ref) -> ActionSpec:
    return ActionSpec(f"ec2:{action}", (arn,), resource_tags=True)


ACTIONS: dict[str, ActionSpec] = {
    "CreateVpc": ActionSpec("ec2:CreateVpc", (_new("vpc"),), tag_on_create=_TAG_ON_CREATE),
    "DescribeVpcs": _read("DescribeVpcs"),
    "DescribeRegions": _read("DescribeRegions"),
    "DeleteVpc": _one("DeleteVpc", _VPC),
    "CreateSubnet": ActionSpec(
        "ec2:CreateSubnet", (_new("subnet"), _VPC), resource_tags=True, tag_on_create=_TAG_ON_CREATE
    ),
    "DescribeSubnets": _read("DescribeSubnets"),
    "DeleteSubnet": _one("DeleteSubnet", _SUBNET),
    "CreateSecurityGroup": ActionSpec(
        "ec2:CreateSecurityGroup", (_new("security-group"), Ref("VpcId", "vpc-or-default")), resource_tags=True,
        tag_on_create=_TAG_ON_CREATE,
    ),
    "DeleteSecurityGroup": _one("DeleteSecurityGroup", _SG),
    "DescribeSecurityGroups": _read("DescribeSecurityGroups"),
    "AuthorizeSecurityGroupIngress": _one("AuthorizeSecurityGroupIngress", _SG),
    "AuthorizeSecurityGroupEgress": _one("AuthorizeSecurityGroupEgress", _SG),
    "RevokeSecurityGroupIngress": _one("RevokeSecurityGroupIngress", _SG),
    "RevokeSecurityGroupEgress": _one("RevokeSecurityGroupEgress", _SG),
    "DescribeSecurityGroupRules": _read("DescribeSecurityGroupRules"),
    "ModifySecurityGroupRules": _one("ModifySecurityGroupRules", _SG),
    "UpdateSecurityGroupRuleDescriptionsIngress": _one("UpdateSecurityGroupRuleDescriptionsIngress", _SG),
    "UpdateSecurityGroupRuleDescriptionsEgress": _one("UpdateSecurityGroupRuleDescriptionsEgress", _SG),
    # aws:ResourceTag/* of each resource: "users can change a resource's tag in order to bypass those
    # restrictions" (EC2 user guide) unless a tag-based Deny also covers the tagging calls.
    "CreateTags": ActionSpec("ec2:CreateTags", (Ref("Resources", "resources"),), resource_tags=True),
    "DeleteTags": ActionSpec("ec2:DeleteTags", (Ref("Resources", "resources"),), resource_tags=True),
    "DescribeTags": _read("DescribeTags"),
    "CreateNetworkInterface": ActionSpec(
        "ec2:CreateNetworkInterface", (_new("network-interface"), _SUBNET, Ref("Groups", "security-groups")),
        resource_tags=True, tag_on_create=_TAG_ON_CREATE,
    ),
    "DescribeNetworkInterfaces": _read("DescribeNetworkInterfaces"),
    "DeleteNetworkInterface": _one("DeleteNetworkInterface", _ENI),
    # Groups puts the interface into security groups (and under every rule admitting their members):
    # authorized on each group it joins, as CreateNetworkInterface (the Service Authorization Reference
    # lists security-group for both).
    "ModifyNetworkInterfaceAttribute": ActionSpec(
        "ec2:ModifyNetworkInterfaceAttribute", (_ENI, Ref("Groups", "security-groups", optional=True)),
        resource_tags=True,
    ),
    "CreateInternetGateway": ActionSpec(
        "ec2:CreateInternetGateway", (_new("internet-gateway"),), tag_on_create=_TAG_ON_CREATE
    ),
    "AttachInternetGateway": ActionSpec("ec2:AttachInternetGateway", (_IGW, _VPC), resource_tags=True),
    "DetachInternetGateway": ActionSpec("ec2:DetachInternetGateway", (_IGW, _VPC), resource_tags=True),
    "DescribeInternetGateways": _read("DescribeInternetGateways"),
    "DeleteInternetGateway": _one("DeleteInternetGateway", _IGW),
    "CreateCustomerGateway": ActionSpec(
        "ec2:CreateCustomerGateway", (_new("customer-gateway"),), tag_on_create=_TAG_ON_CREATE
    ),
    "DescribeCustomerGateways": _read("DescribeCustomerGateways"),
    "DeleteCustomerGateway": _one("DeleteCustomerGateway", _CGW),
    "CreateVpnGateway": ActionSpec(
        "ec2:CreateVpnGateway", (_new("vpn-gateway"),), tag_on_create=_TAG_ON_CREATE
    ),
    "AttachVpnGateway": ActionSpec("ec2:AttachVpnGateway", (_VGW, _VPC), resource_tags=True),
    "DetachVpnGateway": ActionSpec("ec2:DetachVpnGateway", (_VGW, _VPC), resource_tags=True),
    "DescribeVpnGateways": _read("DescribeVpnGateways"),
    "DeleteVpnGateway": _one("DeleteVpnGateway", _VGW),
    "CreateVpnConnection": ActionSpec(
        "ec2:CreateVpnConnection", (_new("vpn-connection"), _CGW, _VGW), resource_tags=True,
        tag_on_create=_TAG_ON_CREATE,
    ),
    "DescribeVpnConnections": _read("DescribeVpnConnections"),
    "CreateVpnConnectionRoute": _one("CreateVpnConnectionRoute", _VPN),
    "DeleteVpnConnectionRoute": _one("DeleteVpnConnectionRoute", _VPN),
    "DeleteVpnConnection": _one("DeleteVpnConnection", _VPN),
}

"""Attacks on EC2 authorization through the running server (adversarial review, second pass).

* ModifyNetworkInterfaceAttribute ``Groups`` puts an interface into security groups: like
  CreateNetworkInterface it must be authorized on every group it joins (the Service Authorization
  Reference lists ``security-group`` for it). Otherwise a user denied everything on a group joins it
  anyway, and with it every ingress rule that admits the group's members — a DB endpoint included.
* Tag-based conditions hold for every resource of a request: CreateTags/DeleteTags (the EC2 user
  guide's warning: "users can change a resource's tag in order to bypass those restrictions") and
  operations that name several resources see each resource's own ``aws:ResourceTag/*``.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

ARN = "arn:aws:ec2:us-east-1:123456789012:"


def _denied(call: Any, **kwargs: Any) -> None:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    assert info.value.response["Error"]["Code"] == "UnauthorizedOperation", info.value.response
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_joining_a_denied_group_through_modify_network_interface_attribute(
        server: Any, make_user: Any, ec2: Any, vpc: dict[str, Any]) -> None:
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.7.0/24")["Subnet"]["SubnetId"]
    prod = ec2.create_security_group(GroupName="prod-app", Description="d", VpcId=vpc["VpcId"])["GroupId"]
    mine = ec2.create_security_group(GroupName="mine", Description="d", VpcId=vpc["VpcId"])["GroupId"]
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[mine])["NetworkInterface"]["NetworkInterfaceId"]
    user = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:*", "Resource": f"{ARN}security-group/{prod}"},
    ]})
    attacker = server.client("ec2", user.access_key, user.secret_key)
    _denied(attacker.modify_network_interface_attribute, NetworkInterfaceId=eni, Groups=[prod])
    _denied(attacker.modify_network_interface_attribute, NetworkInterfaceId=eni, Groups=[mine, prod])
    (found,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]
    assert [g["GroupId"] for g in found["Groups"]] == [mine]
    # the groups it may use, and a change that names no group, still work
    attacker.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[mine])
    attacker.modify_network_interface_attribute(NetworkInterfaceId=eni, Description={"Value": "mine"})


@pytest.mark.parametrize("key", ["aws:ResourceTag/env", "ec2:ResourceTag/env"])
def test_retagging_a_protected_resource(server: Any, make_user: Any, ec2: Any, vpc: dict[str, Any], key: str) -> None:
    prod = ec2.create_security_group(GroupName=f"tagged-prod-{key[:3]}", Description="d", VpcId=vpc["VpcId"],
                                     TagSpecifications=[{"ResourceType": "security-group",
                                                         "Tags": [{"Key": "env", "Value": "prod"}]}])["GroupId"]
    dev = ec2.create_security_group(GroupName=f"tagged-dev-{key[:3]}", Description="d",
                                    VpcId=vpc["VpcId"])["GroupId"]
    user = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:*", "Resource": "*", "Condition": {"StringEquals": {key: "prod"}}},
    ]})
    attacker = server.client("ec2", user.access_key, user.secret_key)
    retag = [{"Key": "env", "Value": "dev"}]
    _denied(attacker.create_tags, Resources=[prod], Tags=retag)
    _denied(attacker.delete_tags, Resources=[prod], Tags=[{"Key": "env"}])
    _denied(attacker.create_tags, Resources=[dev, prod], Tags=retag)  # hidden behind an untagged resource
    _denied(attacker.authorize_security_group_ingress, GroupId=prod, IpProtocol="tcp", FromPort=5432,
            ToPort=5432, CidrIp="0.0.0.0/0")
    (group,) = ec2.describe_security_groups(GroupIds=[prod])["SecurityGroups"]
    assert group["Tags"] == [{"Key": "env", "Value": "prod"}] and group["IpPermissions"] == []
    attacker.create_tags(Resources=[dev], Tags=[{"Key": "owner", "Value": "me"}])


def test_a_tagged_vpc_behind_a_new_resource(server: Any, make_user: Any, ec2: Any) -> None:
    """CreateSubnet names the new subnet and the VPC: the VPC's tags decide for the VPC."""
    vpc = ec2.create_vpc(CidrBlock="10.61.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "env", "Value": "prod"}]}])["Vpc"]["VpcId"]
    try:
        user = make_user({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ec2:*", "Resource": "*",
             "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}},
        ]})
        attacker = server.client("ec2", user.access_key, user.secret_key)
        _denied(attacker.create_subnet, VpcId=vpc, CidrBlock="10.61.1.0/24")
        _denied(attacker.create_security_group, GroupName="sneaky", Description="d", VpcId=vpc)
        assert ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"] == []
    finally:
        for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]:
            ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        for group in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]:
            if group["GroupName"] != "default":
                ec2.delete_security_group(GroupId=group["GroupId"])
        ec2.delete_vpc(VpcId=vpc)



def test_sensitive_request_members_never_reach_the_audit_trail(server: Any, make_user: Any, ec2: Any) -> None:
    """botocore marks secret members ``sensitive`` (a VPN tunnel's PreSharedKey...): CloudTrail hides them
    whatever their name, also when the request fails, so a reader of LookupEvents never sees one."""
    import secrets
    import time

    marker = f"psk{secrets.token_hex(12)}"
    with pytest.raises(ClientError):
        ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId="cgw-00000000000000000",
                                  VpnGatewayId="vgw-00000000000000000",
                                  Options={"TunnelOptions": [{"PreSharedKey": marker}]})
    trail = server.client("cloudtrail")
    deadline = time.monotonic() + 10
    while True:
        events = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName",
                                                        "AttributeValue": "CreateVpnConnection"}])["Events"]
        if any("00000000000000000" in e["CloudTrailEvent"] for e in events) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert any("cgw-00000000000000000" in e["CloudTrailEvent"] for e in events)
    assert not [e for e in events if marker in e["CloudTrailEvent"]]


def test_group_names_are_ascii(ec2: Any, vpc: dict[str, Any]) -> None:
    """A Unicode look-alike of another group's name ("d\\u0435fault" with a Cyrillic e) is refused, with
    AWS's message."""
    for name in ("d\u0435fault", "prod\u2010app"):
        with pytest.raises(ClientError) as info:
            ec2.create_security_group(GroupName=name, Description="d", VpcId=vpc["VpcId"])
        assert info.value.response["Error"]["Code"] == "InvalidParameterValue"
        assert "Character sets beyond ASCII are not supported." in info.value.response["Error"]["Message"]

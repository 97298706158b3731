"""Network interfaces, tags, Site-to-Site VPN and authorization through unmodified boto3."""

from __future__ import annotations

from typing import Any

from .conftest import client_error


def test_network_interfaces(ec2: Any, vpc: dict[str, Any]) -> None:
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.5.0/24")["Subnet"]["SubnetId"]
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc["VpcId"])["GroupId"]
    eni = ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress="10.0.5.20", Groups=[app],
                                       Description="client")["NetworkInterface"]
    eni_id = eni["NetworkInterfaceId"]
    assert eni_id.startswith("eni-") and eni["PrivateIpAddress"] == "10.0.5.20"
    assert eni["Groups"] == [{"GroupId": app, "GroupName": "app"}] and eni["VpcId"] == vpc["VpcId"]
    auto = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]
    assert auto["PrivateIpAddress"] == "10.0.5.4"  # the first four addresses are reserved
    assert [g["GroupName"] for g in auto["Groups"]] == ["default"]
    assert client_error(ec2.create_network_interface, SubnetId=subnet, PrivateIpAddress="10.0.5.20") == (
        "InvalidIPAddress.InUse", "The specified address is already in use.")
    assert client_error(ec2.create_network_interface, SubnetId=subnet, PrivateIpAddress="10.0.6.1") == (
        "InvalidParameterValue", "Address does not fall within the subnet's address range")
    assert client_error(ec2.create_network_interface, SubnetId=subnet, Groups=["sg-00000000000000000"]) == (
        "InvalidSecurityGroupID.NotFound", "The securityGroup ID 'sg-00000000000000000' does not exist")
    assert client_error(ec2.create_network_interface, SubnetId="subnet-00000000000000000") == (
        "InvalidSubnetID.NotFound", "The subnet ID 'subnet-00000000000000000' does not exist")
    found = ec2.describe_network_interfaces(Filters=[{"Name": "private-ip-address", "Values": ["10.0.5.20"]},
                                                     {"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    assert [i["NetworkInterfaceId"] for i in found["NetworkInterfaces"]] == [eni_id]
    # a group carried by an interface cannot be deleted; a subnet with interfaces neither
    assert client_error(ec2.delete_security_group, GroupId=app) == (
        "DependencyViolation", f"resource {app} has a dependent object")
    assert client_error(ec2.delete_subnet, SubnetId=subnet) == (
        "DependencyViolation", f"The subnet '{subnet}' has dependencies and cannot be deleted.")
    default_group = auto["Groups"][0]["GroupId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=[default_group])
    (described,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"]
    assert described["Groups"] == [{"GroupId": default_group, "GroupName": "default"}]
    ec2.delete_security_group(GroupId=app)
    ec2.delete_network_interface(NetworkInterfaceId=eni_id)
    assert client_error(ec2.delete_network_interface, NetworkInterfaceId=eni_id) == (
        "InvalidNetworkInterfaceID.NotFound", f"The networkInterface ID '{eni_id}' does not exist")


def test_tags(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    group = ec2.create_security_group(GroupName="tagged", Description="d", VpcId=vpc_id)["GroupId"]
    ec2.create_tags(Resources=[vpc_id, group], Tags=[{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "a"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc_id, group]}])["Tags"]
    assert sorted((t["ResourceType"], t["Key"], t["Value"]) for t in tags) == [
        ("security-group", "env", "test"), ("security-group", "team", "a"), ("vpc", "env", "test"),
        ("vpc", "team", "a")]
    ec2.delete_tags(Resources=[group], Tags=[{"Key": "env", "Value": "other"}])  # value differs: kept
    ec2.delete_tags(Resources=[group], Tags=[{"Key": "team"}])
    assert ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["Tags"] == [
        {"Key": "env", "Value": "test"}]
    assert client_error(ec2.create_tags, Resources=["vpc-00000000000000000"], Tags=[{"Key": "a", "Value": "b"}]) \
        == ("InvalidVpcID.NotFound", "The vpc ID 'vpc-00000000000000000' does not exist")
    assert client_error(ec2.create_tags, Resources=["i-0123"], Tags=[{"Key": "a", "Value": "b"}]) == (
        "InvalidID", "The ID 'i-0123' is not valid")


def test_vpn(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    cgw = ec2.create_customer_gateway(Type="ipsec.1", BgpAsn=65010, IpAddress="198.51.100.7")["CustomerGateway"]
    assert cgw["CustomerGatewayId"].startswith("cgw-") and cgw["BgpAsn"] == "65010" and cgw["State"] == "available"
    vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]
    vgw_id = vgw["VpnGatewayId"]
    assert vgw_id.startswith("vgw-") and vgw["VpcAttachments"] == []
    attachment = ec2.attach_vpn_gateway(VpnGatewayId=vgw_id, VpcId=vpc_id)["VpcAttachment"]
    assert attachment == {"VpcId": vpc_id, "State": "attached"}
    vpn = ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw["CustomerGatewayId"],
                                    VpnGatewayId=vgw_id, Options={"StaticRoutesOnly": True})["VpnConnection"]
    vpn_id = vpn["VpnConnectionId"]
    assert vpn_id.startswith("vpn-") and vpn["Options"]["StaticRoutesOnly"] is True
    ec2.create_vpn_connection_route(VpnConnectionId=vpn_id, DestinationCidrBlock="192.168.0.0/16")
    (described,) = ec2.describe_vpn_connections(VpnConnectionIds=[vpn_id])["VpnConnections"]
    assert described["Routes"] == [{"DestinationCidrBlock": "192.168.0.0/16", "Source": "Static",
                                    "State": "available"}]
    assert client_error(ec2.create_vpn_connection_route, VpnConnectionId=vpn_id,
                        DestinationCidrBlock="nope")[0] == "InvalidParameterValue"
    ec2.delete_vpn_connection_route(VpnConnectionId=vpn_id, DestinationCidrBlock="192.168.0.0/16")
    assert ec2.describe_vpn_connections(VpnConnectionIds=[vpn_id])["VpnConnections"][0]["Routes"] == []
    assert [g["VpnGatewayId"] for g in ec2.describe_vpn_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["VpnGateways"]] == [vgw_id]
    assert [g["CustomerGatewayId"] for g in ec2.describe_customer_gateways(
        CustomerGatewayIds=[cgw["CustomerGatewayId"]])["CustomerGateways"]] == [cgw["CustomerGatewayId"]]
    assert client_error(ec2.create_vpn_connection, Type="ipsec.1", CustomerGatewayId="cgw-00000000000000000",
                        VpnGatewayId=vgw_id) == (
        "InvalidCustomerGatewayID.NotFound", "The customerGateway ID 'cgw-00000000000000000' does not exist")
    assert client_error(ec2.create_customer_gateway, Type="ipsec.2", BgpAsn=65000,
                        IpAddress="198.51.100.7")[0] == "InvalidParameterValue"
    ec2.delete_vpn_connection(VpnConnectionId=vpn_id)
    assert client_error(ec2.describe_vpn_connections, VpnConnectionIds=[vpn_id]) == (
        "InvalidVpnConnectionID.NotFound", f"The vpnConnection ID '{vpn_id}' does not exist")
    ec2.detach_vpn_gateway(VpnGatewayId=vgw_id, VpcId=vpc_id)
    ec2.delete_vpn_gateway(VpnGatewayId=vgw_id)
    ec2.delete_customer_gateway(CustomerGatewayId=cgw["CustomerGatewayId"])
    assert client_error(ec2.describe_vpn_gateways, VpnGatewayIds=[vgw_id]) == (
        "InvalidVpnGatewayID.NotFound", f"The vpnGateway ID '{vgw_id}' does not exist")


def test_authorization(server: Any, make_user: Any, vpc: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    arn_prefix = "arn:aws:ec2:us-east-1:123456789012:"
    user = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:CreateSecurityGroup", "Resource": [
            f"{arn_prefix}security-group/*", f"{arn_prefix}vpc/{vpc['VpcId']}"],
         "Condition": {"StringEquals": {"aws:RequestTag/team": "db"}}},
        # tags at creation also need ec2:CreateTags (EC2 user guide, "Grant permission to tag resources
        # during creation")
        {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": f"{arn_prefix}security-group/*",
         "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}}},
    ]})
    ec2 = server.client("ec2", user.access_key, user.secret_key)
    assert ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"]
    with_tag = [{"ResourceType": "security-group", "Tags": [{"Key": "team", "Value": "db"}]}]
    group = ec2.create_security_group(GroupName="authz", Description="d", VpcId=vpc["VpcId"],
                                      TagSpecifications=with_tag)["GroupId"]
    for call, kwargs in [
        (ec2.create_security_group, {"GroupName": "authz2", "Description": "d", "VpcId": vpc["VpcId"]}),
        (ec2.delete_security_group, {"GroupId": group}),
        (ec2.create_vpc, {"CidrBlock": "10.50.0.0/16"}),
    ]:
        try:
            call(**kwargs)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "UnauthorizedOperation"
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        else:
            raise AssertionError(f"{call} was allowed")

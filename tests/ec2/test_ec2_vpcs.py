"""VPCs, subnets and internet gateways through unmodified boto3 against ``auroral up``."""

from __future__ import annotations

from typing import Any

from .conftest import client_error


def _by_vpc(vpc_id: str) -> list[dict[str, Any]]:
    return [{"Name": "vpc-id", "Values": [vpc_id]}]


def test_default_network_exists_on_first_use(ec2: Any) -> None:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1
    default = vpcs[0]
    assert default["CidrBlock"] == "172.31.0.0/16" and default["IsDefault"] is True
    assert default["VpcId"].startswith("vpc-") and len(default["VpcId"]) == 21
    subnets = ec2.describe_subnets(Filters=_by_vpc(default["VpcId"]))["Subnets"]
    assert sorted((s["AvailabilityZone"], s["CidrBlock"]) for s in subnets) == [
        ("us-east-1a", "172.31.0.0/20"), ("us-east-1b", "172.31.16.0/20"), ("us-east-1c", "172.31.32.0/20")]
    assert all(s["DefaultForAz"] and s["MapPublicIpOnLaunch"] for s in subnets)
    igws = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [default["VpcId"]]}])["InternetGateways"]
    assert len(igws) == 1
    (group,) = ec2.describe_security_groups(
        Filters=[*_by_vpc(default["VpcId"]), {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    assert group["IpPermissions"] == [{"IpProtocol": "-1", "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [],
                                       "UserIdGroupPairs": [{"GroupId": group["GroupId"], "UserId": "123456789012"}]}]
    assert group["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]


def test_create_describe_delete_vpc(ec2: Any) -> None:
    made = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "app"}]}])["Vpc"]
    vpc_id = made["VpcId"]
    assert made["IsDefault"] is False and made["State"] == "available"
    assert made["Tags"] == [{"Key": "Name", "Value": "app"}]
    (found,) = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    assert found["CidrBlock"] == "10.20.0.0/16"
    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["app"]}])["Vpcs"]] \
        == [vpc_id]
    # its own default security group came with it
    groups = ec2.describe_security_groups(Filters=_by_vpc(vpc_id))["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["default"]
    ec2.delete_vpc(VpcId=vpc_id)
    assert client_error(ec2.describe_vpcs, VpcIds=[vpc_id]) == (
        "InvalidVpcID.NotFound", f"The vpc ID '{vpc_id}' does not exist")


def test_vpc_errors(ec2: Any) -> None:
    assert client_error(ec2.create_vpc, CidrBlock="10.0.0.0/8") == (
        "InvalidVpc.Range", "The CIDR '10.0.0.0/8' is invalid.")
    code, message = client_error(ec2.create_vpc, CidrBlock="not-a-cidr")
    assert code == "InvalidParameterValue"
    assert message == "Value (not-a-cidr) for parameter cidrBlock is invalid. This is not a valid CIDR block."
    assert client_error(ec2.delete_vpc, VpcId="vpc-0123456789abcdef0") == (
        "InvalidVpcID.NotFound", "The vpc ID 'vpc-0123456789abcdef0' does not exist")
    assert client_error(ec2.create_vpc)[0] == "MissingParameter"


def test_delete_vpc_with_dependencies(ec2: Any, vpc: dict[str, Any]) -> None:
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]
    assert client_error(ec2.delete_vpc, VpcId=vpc["VpcId"]) == (
        "DependencyViolation", f"The vpc '{vpc['VpcId']}' has dependencies and cannot be deleted.")
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc["VpcId"])
    assert client_error(ec2.delete_vpc, VpcId=vpc["VpcId"])[0] == "DependencyViolation"
    sg = ec2.create_security_group(GroupName="x", Description="x", VpcId=vpc["VpcId"])["GroupId"]
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc["VpcId"])
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    assert client_error(ec2.delete_vpc, VpcId=vpc["VpcId"])[0] == "DependencyViolation"
    ec2.delete_security_group(GroupId=sg)


def test_subnets(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.0.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    assert subnet["SubnetId"].startswith("subnet-") and subnet["AvailableIpAddressCount"] == 251
    assert subnet["AvailabilityZone"] == "us-east-1b" and subnet["DefaultForAz"] is False
    assert client_error(ec2.create_subnet, VpcId=vpc_id, CidrBlock="10.0.0.128/25") == (
        "InvalidSubnet.Conflict", "The CIDR '10.0.0.128/25' conflicts with another subnet")
    assert client_error(ec2.create_subnet, VpcId=vpc_id, CidrBlock="10.1.0.0/24") == (
        "InvalidSubnet.Range", "The CIDR '10.1.0.0/24' is invalid.")
    assert client_error(ec2.create_subnet, VpcId=vpc_id, CidrBlock="10.0.1.0/29") == (
        "InvalidSubnet.Range", "The CIDR '10.0.1.0/29' is invalid.")
    assert client_error(ec2.create_subnet, VpcId="vpc-00000000000000000", CidrBlock="10.0.1.0/24") == (
        "InvalidVpcID.NotFound", "The vpc ID 'vpc-00000000000000000' does not exist")
    assert client_error(ec2.create_subnet, VpcId=vpc_id, CidrBlock="10.0.1.0/24",
                        AvailabilityZone="mars-1a")[0] == "InvalidParameterValue"
    listed = ec2.describe_subnets(Filters=[*_by_vpc(vpc_id), {"Name": "availability-zone", "Values": ["*-1b"]}])
    assert [s["SubnetId"] for s in listed["Subnets"]] == [subnet["SubnetId"]]
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    assert client_error(ec2.delete_subnet, SubnetId=subnet["SubnetId"]) == (
        "InvalidSubnetID.NotFound", f"The subnet ID '{subnet['SubnetId']}' does not exist")
    assert client_error(ec2.describe_subnets, Filters=[{"Name": "bogus", "Values": ["x"]}]) == (
        "InvalidParameterValue", "The filter 'bogus' is invalid")


def test_internet_gateways(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    igw = ec2.create_internet_gateway(TagSpecifications=[
        {"ResourceType": "internet-gateway", "Tags": [{"Key": "k", "Value": "v"}]}])["InternetGateway"]
    igw_id = igw["InternetGatewayId"]
    assert igw_id.startswith("igw-") and igw["Attachments"] == [] and igw["Tags"] == [{"Key": "k", "Value": "v"}]
    assert client_error(ec2.detach_internet_gateway, InternetGatewayId=igw_id, VpcId=vpc_id) == (
        "Gateway.NotAttached", f"resource {igw_id} is not attached to network {vpc_id}")
    ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    (described,) = ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"]
    assert described["Attachments"] == [{"State": "available", "VpcId": vpc_id}]
    assert client_error(ec2.attach_internet_gateway, InternetGatewayId=igw_id, VpcId=vpc_id) == (
        "Resource.AlreadyAssociated", f"resource {igw_id} is already attached to network {vpc_id}")
    other = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    assert client_error(ec2.attach_internet_gateway, InternetGatewayId=other, VpcId=vpc_id) == (
        "InvalidParameterValue", f"Network {vpc_id} already has an internet gateway attached")
    ec2.delete_internet_gateway(InternetGatewayId=other)
    assert client_error(ec2.delete_internet_gateway, InternetGatewayId=igw_id) == (
        "DependencyViolation", f"The internetGateway '{igw_id}' has dependencies and cannot be deleted.")
    ec2.detach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    ec2.delete_internet_gateway(InternetGatewayId=igw_id)
    assert client_error(ec2.describe_internet_gateways, InternetGatewayIds=[igw_id]) == (
        "InvalidInternetGatewayID.NotFound", f"The internetGateway ID '{igw_id}' does not exist")

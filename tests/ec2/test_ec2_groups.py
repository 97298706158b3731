"""Security groups and their rules through unmodified boto3 (and the AWS CLI) against ``auroral up``."""

from __future__ import annotations

import json
from typing import Any

from .conftest import client_error

PG = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432}


def _group(ec2: Any, vpc_id: str, name: str = "db") -> str:
    return str(ec2.create_security_group(GroupName=name, Description=f"{name} tier", VpcId=vpc_id)["GroupId"])


def _describe(ec2: Any, group_id: str) -> dict[str, Any]:
    (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return dict(group)


def test_create_describe_delete(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    made = ec2.create_security_group(GroupName="db", Description="database", VpcId=vpc_id, TagSpecifications=[
        {"ResourceType": "security-group", "Tags": [{"Key": "tier", "Value": "data"}]}])
    group_id = made["GroupId"]
    assert group_id.startswith("sg-") and made["Tags"] == [{"Key": "tier", "Value": "data"}]
    group = _describe(ec2, group_id)
    assert (group["GroupName"], group["Description"], group["VpcId"]) == ("db", "database", vpc_id)
    assert group["IpPermissions"] == []
    assert group["IpPermissionsEgress"] == [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                                             "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}]
    by_name = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                    {"Name": "group-name", "Values": ["db"]}])["SecurityGroups"]
    assert [g["GroupId"] for g in by_name] == [group_id]
    assert client_error(ec2.create_security_group, GroupName="db", Description="again", VpcId=vpc_id) == (
        "InvalidGroup.Duplicate", f"The security group 'db' already exists for VPC '{vpc_id}'")
    ec2.delete_security_group(GroupId=group_id)
    assert client_error(ec2.describe_security_groups, GroupIds=[group_id]) == (
        "InvalidGroup.NotFound", f"The security group '{group_id}' does not exist")
    assert client_error(ec2.delete_security_group, GroupId=group_id) == (
        "InvalidGroup.NotFound", f"The security group '{group_id}' does not exist")


def test_create_errors_and_default_vpc(ec2: Any) -> None:
    assert client_error(ec2.create_security_group, GroupName="x", Description="") == (
        "MissingParameter", "The request must contain the parameter Description")
    assert client_error(ec2.create_security_group, GroupName="sg-123", Description="d")[0] == "InvalidParameterValue"
    assert client_error(ec2.create_security_group, GroupName="x", Description="d",
                        VpcId="vpc-00000000000000000")[0] == "InvalidVpcID.NotFound"
    group_id = ec2.create_security_group(GroupName="in-default-vpc", Description="d")["GroupId"]
    try:
        default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        assert _describe(ec2, group_id)["VpcId"] == default_vpc
        found = ec2.describe_security_groups(GroupNames=["in-default-vpc"])["SecurityGroups"]
        assert [g["GroupId"] for g in found] == [group_id]
        assert client_error(ec2.describe_security_groups, GroupNames=["nope"]) == (
            "InvalidGroup.NotFound", f"The security group 'nope' does not exist in default VPC '{default_vpc}'")
    finally:
        ec2.delete_security_group(GroupName="in-default-vpc")


def test_default_group_cannot_be_deleted(ec2: Any, vpc: dict[str, Any]) -> None:
    (default,) = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["SecurityGroups"]
    assert client_error(ec2.delete_security_group, GroupId=default["GroupId"]) == (
        "CannotDelete", f'the specified group: "{default["GroupId"]}" name: "default" cannot be deleted by a user')


def test_authorize_revoke_ingress(ec2: Any, vpc: dict[str, Any]) -> None:
    group_id = _group(ec2, vpc["VpcId"])
    out = ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[{
        **PG, "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "app subnet"}, {"CidrIp": "192.168.1.0/24"}],
        "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]}])
    assert out["Return"] is True
    rules = out["SecurityGroupRules"]
    assert [r["SecurityGroupRuleId"][:4] for r in rules] == ["sgr-"] * 3
    assert {r.get("CidrIpv4") or r.get("CidrIpv6") for r in rules} == {"10.0.0.0/16", "192.168.1.0/24",
                                                                        "2001:db8::/32"}
    assert rules[0]["Description"] == "app subnet" and rules[0]["IsEgress"] is False
    (perm,) = _describe(ec2, group_id)["IpPermissions"]
    assert perm["IpProtocol"] == "tcp" and (perm["FromPort"], perm["ToPort"]) == (5432, 5432)
    assert perm["IpRanges"] == [{"CidrIp": "10.0.0.0/16", "Description": "app subnet"}, {"CidrIp": "192.168.1.0/24"}]
    assert perm["Ipv6Ranges"] == [{"CidrIpv6": "2001:db8::/32"}]
    assert client_error(ec2.authorize_security_group_ingress, GroupId=group_id,
                        IpPermissions=[{**PG, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}]) == (
        "InvalidPermission.Duplicate",
        'the specified rule "peer: 10.0.0.0/16, TCP, from port: 5432, to port: 5432, ALLOW" already exists')
    filtered = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.cidr", "Values": ["192.168.1.0/24"]},
                                                     {"Name": "group-id", "Values": [group_id]}])
    assert len(filtered["SecurityGroups"]) == 1
    ec2.revoke_security_group_ingress(GroupId=group_id,
                                      IpPermissions=[{**PG, "IpRanges": [{"CidrIp": "192.168.1.0/24"}]}])
    assert client_error(ec2.revoke_security_group_ingress, GroupId=group_id,
                        IpPermissions=[{**PG, "IpRanges": [{"CidrIp": "192.168.1.0/24"}]}]) == (
        "InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
    ipv6_rule = next(r["SecurityGroupRuleId"] for r in rules if r.get("CidrIpv6"))
    ec2.revoke_security_group_ingress(GroupId=group_id, SecurityGroupRuleIds=[ipv6_rule])
    assert client_error(ec2.revoke_security_group_ingress, GroupId=group_id, SecurityGroupRuleIds=[ipv6_rule]) == (
        "InvalidSecurityGroupRuleId.NotFound", f"The security group rule ID '{ipv6_rule}' does not exist")
    (perm,) = _describe(ec2, group_id)["IpPermissions"]
    assert perm["IpRanges"] == [{"CidrIp": "10.0.0.0/16", "Description": "app subnet"}]
    assert perm["Ipv6Ranges"] == []


def test_legacy_form_protocols_and_errors(ec2: Any, vpc: dict[str, Any]) -> None:
    group_id = _group(ec2, vpc["VpcId"])
    ec2.authorize_security_group_ingress(GroupId=group_id, IpProtocol="tcp", FromPort=22, ToPort=22,
                                         CidrIp="203.0.113.0/24")
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.9.0.0/16"}]},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "10.9.0.0/16"}]},
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.9.0.0/16"}]}])
    perms = {p["IpProtocol"]: p for p in _describe(ec2, group_id)["IpPermissions"]}
    assert set(perms) == {"tcp", "-1", "icmp", "udp"}
    assert "FromPort" not in perms["-1"] and perms["icmp"]["FromPort"] == 8
    assert perms["tcp"]["IpRanges"] == [{"CidrIp": "203.0.113.0/24"}]
    assert client_error(ec2.authorize_security_group_ingress, GroupId=group_id, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.9.0.0/16"}]}]) == (
        "InvalidPermission.Duplicate", 'the specified rule "peer: 10.9.0.0/16, ALL, ALLOW" already exists')
    assert client_error(ec2.authorize_security_group_ingress, GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "IpRanges": [{"CidrIp": "10.9.0.0/16"}]}])[0] == "InvalidParameterValue"
    assert client_error(ec2.authorize_security_group_ingress, GroupId=group_id, IpPermissions=[
        {**PG, "IpRanges": [{"CidrIp": "10.9.0.0/33"}]}]) == ("InvalidParameterValue",
                                                              "CIDR block 10.9.0.0/33 is malformed")
    assert client_error(ec2.authorize_security_group_ingress, GroupId=group_id, IpPermissions=[
        {"IpProtocol": "bogus", "IpRanges": [{"CidrIp": "10.9.0.0/16"}]}])[0] == "InvalidParameterValue"
    assert client_error(ec2.authorize_security_group_ingress, GroupId="sg-00000000000000000", IpPermissions=[
        {**PG, "IpRanges": [{"CidrIp": "10.9.0.0/16"}]}]) == (
        "InvalidGroup.NotFound", "The security group 'sg-00000000000000000' does not exist")


def test_egress_rules(ec2: Any, vpc: dict[str, Any]) -> None:
    group_id = _group(ec2, vpc["VpcId"])
    assert client_error(ec2.authorize_security_group_egress, GroupId=group_id, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]) == (
        "InvalidPermission.Duplicate", 'the specified rule "peer: 0.0.0.0/0, ALL, ALLOW" already exists')
    ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    out = ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert out["SecurityGroupRules"][0]["IsEgress"] is True
    (perm,) = _describe(ec2, group_id)["IpPermissionsEgress"]
    assert perm["FromPort"] == 443


def test_group_references_and_dependencies(ec2: Any, vpc: dict[str, Any]) -> None:
    app = _group(ec2, vpc["VpcId"], "app")
    db = _group(ec2, vpc["VpcId"], "db")
    out = ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[
        {**PG, "UserIdGroupPairs": [{"GroupId": app, "Description": "from app tier"}]}])
    (rule,) = out["SecurityGroupRules"]
    assert rule["ReferencedGroupInfo"]["GroupId"] == app
    (perm,) = _describe(ec2, db)["IpPermissions"]
    assert perm["UserIdGroupPairs"] == [{"Description": "from app tier", "GroupId": app, "UserId": "123456789012"}]
    assert client_error(ec2.authorize_security_group_ingress, GroupId=db, IpPermissions=[
        {**PG, "UserIdGroupPairs": [{"GroupId": app}]}]) == (
        "InvalidPermission.Duplicate",
        f'the specified rule "peer: {app}, TCP, from port: 5432, to port: 5432, ALLOW" already exists')
    assert client_error(ec2.delete_security_group, GroupId=app) == (
        "DependencyViolation", f"resource {app} has a dependent object")
    listed = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.group-id", "Values": [app]}])
    assert [g["GroupId"] for g in listed["SecurityGroups"]] == [db]
    # a group of another VPC cannot be referenced
    other_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    (foreign,) = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [other_vpc]},
                                                       {"Name": "group-name", "Values": ["default"]}])[
        "SecurityGroups"]
    assert client_error(ec2.authorize_security_group_ingress, GroupId=db, IpPermissions=[
        {**PG, "UserIdGroupPairs": [{"GroupId": foreign["GroupId"]}]}])[0] == "InvalidParameterValue"


def test_rules_describe_modify_and_descriptions(ec2: Any, vpc: dict[str, Any]) -> None:
    group_id = _group(ec2, vpc["VpcId"])
    out = ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {**PG, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}], TagSpecifications=[
        {"ResourceType": "security-group-rule", "Tags": [{"Key": "owner", "Value": "team"}]}])
    rule_id = out["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    listed = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    assert {r["SecurityGroupRuleId"] for r in listed["SecurityGroupRules"]} >= {rule_id}
    assert len(listed["SecurityGroupRules"]) == 2  # plus the default egress rule
    (rule,) = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"]
    assert rule["Tags"] == [{"Key": "owner", "Value": "team"}] and rule["FromPort"] == 5432
    ec2.modify_security_group_rules(GroupId=group_id, SecurityGroupRules=[{
        "SecurityGroupRuleId": rule_id,
        "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5433, "CidrIpv4": "10.1.0.0/16",
                              "Description": "moved"}}])
    (rule,) = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"]
    assert (rule["CidrIpv4"], rule["ToPort"], rule["Description"]) == ("10.1.0.0/16", 5433, "moved")
    ec2.update_security_group_rule_descriptions_ingress(GroupId=group_id, SecurityGroupRuleDescriptions=[
        {"SecurityGroupRuleId": rule_id, "Description": "renamed"}])
    (rule,) = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"]
    assert rule["Description"] == "renamed"
    assert client_error(ec2.describe_security_group_rules, SecurityGroupRuleIds=["sgr-00000000000000000"]) == (
        "InvalidSecurityGroupRuleId.NotFound", "The security group rule ID 'sgr-00000000000000000' does not exist")


def test_cli_flow(server: Any, vpc: dict[str, Any]) -> None:
    made = server.cli_json("ec2", "create-security-group", "--group-name", "cli", "--description", "from the cli",
                           "--vpc-id", vpc["VpcId"])
    group_id = made["GroupId"]
    out = server.cli_json("ec2", "authorize-security-group-ingress", "--group-id", group_id, "--protocol", "tcp",
                          "--port", "5432", "--cidr", "10.0.0.0/16")
    assert out["Return"] is True
    described = server.cli_json("ec2", "describe-security-groups", "--group-ids", group_id)
    (group,) = described["SecurityGroups"]
    assert group["IpPermissions"][0]["IpRanges"] == [{"CidrIp": "10.0.0.0/16"}]
    failed = server.cli("ec2", "authorize-security-group-ingress", "--group-id", group_id, "--protocol", "tcp",
                        "--port", "5432", "--cidr", "10.0.0.0/16", check=False)
    assert failed.returncode != 0 and "InvalidPermission.Duplicate" in failed.stderr
    server.cli("ec2", "delete-security-group", "--group-id", group_id)
    assert json.loads(server.cli("ec2", "describe-security-groups", "--filters",
                                 f"Name=group-id,Values={group_id}").stdout)["SecurityGroups"] == []

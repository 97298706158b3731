"""Regions are real: a request for a region AWS does not have is refused as AWS refuses it, each real
region has its own RDS, EC2, KMS and Secrets Manager resources (and its partition's ARNs), IAM and STS
are global, and a Deny on one region's resource cannot be walked around by signing for another.

Security issue finding 2: ``--region eu-west-1`` used to reach the us-east-1 resources a Deny
protected, and ``xx-fake-9`` was accepted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, UserKeys, fresh_server, start_server, stop_server, unique


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.mark.parametrize("service", ["rds", "ec2", "kms", "secretsmanager", "iam", "sts"])
def test_a_region_aws_does_not_have_is_refused(server: Server, service: str) -> None:
    client = server.client(service, region_name="xx-fake-9")
    call = {
        "rds": lambda: client.describe_db_clusters(),
        "ec2": lambda: client.describe_vpcs(),
        "kms": lambda: client.list_keys(),
        "secretsmanager": lambda: client.list_secrets(),
        "iam": lambda: client.list_users(),
        "sts": lambda: client.get_caller_identity(),
    }[service]
    with pytest.raises(ClientError) as exc:
        call()
    assert _code(exc) == "SignatureDoesNotMatch"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert exc.value.response["Error"]["Message"].startswith(
        "Credential should be scoped to a valid region, not 'xx-fake-9'.")


def test_each_region_has_its_own_network_keys_and_secrets(server: Server) -> None:
    east, west = server.client("ec2"), server.client("ec2", region_name="eu-west-1")
    east_vpc = east.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    west_vpc = west.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    assert east_vpc != west_vpc
    zones = {s["AvailabilityZone"] for s in west.describe_subnets()["Subnets"]}
    assert zones and all(z.startswith("eu-west-1") for z in zones)
    name = unique("grp")
    group = east.create_security_group(GroupName=name, Description="east only", VpcId=east_vpc)["GroupId"]
    assert name not in {g["GroupName"] for g in west.describe_security_groups()["SecurityGroups"]}
    with pytest.raises(ClientError) as exc:
        west.describe_security_groups(GroupIds=[group])
    assert _code(exc) == "InvalidGroup.NotFound"

    key = server.client("kms").create_key()["KeyMetadata"]["Arn"]
    assert key.startswith(f"arn:aws:kms:us-east-1:{server.account}:key/")
    west_kms = server.client("kms", region_name="eu-west-1")
    assert key.rsplit("/", 1)[1] not in {k["KeyId"] for k in west_kms.list_keys()["Keys"]}
    with pytest.raises(ClientError) as exc:
        west_kms.encrypt(KeyId=key.rsplit("/", 1)[1], Plaintext=b"x")
    assert _code(exc) == "NotFoundException"

    secret = unique("s")
    server.client("secretsmanager").create_secret(Name=secret, SecretString="east")
    west_sm = server.client("secretsmanager", region_name="eu-west-1")
    with pytest.raises(ClientError) as exc:
        west_sm.get_secret_value(SecretId=secret)
    assert _code(exc) == "ResourceNotFoundException"
    arn = west_sm.create_secret(Name=secret, SecretString="west")["ARN"]
    assert arn.startswith(f"arn:aws:secretsmanager:eu-west-1:{server.account}:secret:{secret}-")
    assert west_sm.get_secret_value(SecretId=secret)["SecretString"] == "west"
    assert server.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"] == "east"


def test_partitions_follow_their_regions(server: Server) -> None:
    kms = server.client("kms", region_name="cn-north-1")
    assert kms.create_key()["KeyMetadata"]["Arn"].startswith(f"arn:aws-cn:kms:cn-north-1:{server.account}:key/")
    groups = server.client("rds", region_name="us-gov-west-1").describe_db_cluster_parameter_groups()
    arn = groups["DBClusterParameterGroups"][0]["DBClusterParameterGroupArn"]
    assert arn.startswith(f"arn:aws-us-gov:rds:us-gov-west-1:{server.account}:cluster-pg:")


def test_iam_and_sts_are_global(server: Server, make_user: Any) -> None:
    user: UserKeys = make_user()
    for region in ("eu-west-1", "ap-southeast-2", "cn-north-1"):
        iam = server.client("iam", region_name=region)
        assert user.name in {u["UserName"] for u in iam.list_users()["Users"]}
        arn = server.client("sts", region_name=region, access_key=user.access_key,
                            secret_key=user.secret_key).get_caller_identity()["Arn"]
        assert arn == user.arn


_DENY_OTHER_REGIONS = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["ec2:*", "rds:*"], "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}},
    ],
}


def test_requested_region_is_the_region_signed_for(server: Server, make_user: Any) -> None:
    user: UserKeys = make_user(_DENY_OTHER_REGIONS)
    keys = {"access_key": user.access_key, "secret_key": user.secret_key}
    server.client("ec2", **keys).describe_vpcs()
    with pytest.raises(ClientError) as exc:
        server.client("ec2", region_name="eu-west-1", **keys).describe_vpcs()
    assert _code(exc) in ("UnauthorizedOperation", "AccessDenied")


def test_a_deny_on_one_regions_resource_cannot_be_walked_around(server: Server, make_user: Any) -> None:
    """The review's attack: Allow ec2:*, Deny AuthorizeSecurityGroupIngress on the DB's group, then the
    same call signed for eu-west-1. The group is us-east-1's: another region does not have it."""
    east = server.client("ec2")
    vpc = east.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group = east.create_security_group(GroupName=unique("db"), Description="db", VpcId=vpc)["GroupId"]
    group_arn = f"arn:aws:ec2:us-east-1:{server.account}:security-group/{group}"
    pg = unique("pg")
    server.client("rds").create_db_cluster_parameter_group(
        DBClusterParameterGroupName=pg, DBParameterGroupFamily="aurora-postgresql16", Description="x")
    pg_arn = f"arn:aws:rds:us-east-1:{server.account}:cluster-pg:{pg}"
    user: UserKeys = make_user({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["ec2:*", "rds:*"], "Resource": "*"},
            {"Effect": "Deny", "Action": "ec2:AuthorizeSecurityGroupIngress", "Resource": group_arn},
            {"Effect": "Deny", "Action": "rds:ModifyDBClusterParameterGroup", "Resource": pg_arn},
        ],
    })
    keys = {"access_key": user.access_key, "secret_key": user.secret_key}
    open_world = [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    with pytest.raises(ClientError) as exc:
        server.client("ec2", **keys).authorize_security_group_ingress(GroupId=group, IpPermissions=open_world)
    assert _code(exc) == "UnauthorizedOperation"
    for region in ("eu-west-1", "us-west-2"):
        with pytest.raises(ClientError) as exc:
            server.client("ec2", region_name=region, **keys).authorize_security_group_ingress(
                GroupId=group, IpPermissions=open_world)
        assert _code(exc) == "InvalidGroup.NotFound"
        with pytest.raises(ClientError) as exc:
            server.client("rds", region_name=region, **keys).modify_db_cluster_parameter_group(
                DBClusterParameterGroupName=pg, Parameters=[
                    {"ParameterName": "log_min_duration_statement", "ParameterValue": "1",
                     "ApplyMethod": "immediate"}])
        assert _code(exc) == "DBParameterGroupNotFound"
    rules = east.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    assert rules == []


@pytest.fixture
def own_server() -> Iterator[Server]:
    with fresh_server("210987654321") as srv:
        yield srv


def test_other_regions_resources_survive_a_restart(own_server: Server) -> None:
    srv = own_server
    west = srv.client("ec2", region_name="eu-west-1")
    group = west.create_security_group(GroupName="kept", Description="kept")["GroupId"]
    srv.client("secretsmanager", region_name="eu-west-1").create_secret(Name="kept", SecretString="v")
    stop_server(srv)
    again = start_server(srv.data_dir, access_key=srv.access_key, secret_key=srv.secret_key, account=srv.account)
    srv.proc = again.proc
    try:
        assert again.client("ec2", region_name="eu-west-1").describe_security_groups(
            GroupIds=[group])["SecurityGroups"][0]["GroupName"] == "kept"
        value = again.client("secretsmanager", region_name="eu-west-1").get_secret_value(SecretId="kept")
        assert value["SecretString"] == "v"
        with pytest.raises(ClientError):
            again.client("ec2").describe_security_groups(GroupIds=[group])
        lookup = again.client("cloudtrail").lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateSecurityGroup"}])
        regions = {json.loads(e["CloudTrailEvent"])["awsRegion"] for e in lookup["Events"]}
        assert regions == {"eu-west-1"}
    finally:
        stop_server(again)

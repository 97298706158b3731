"""Finding "resource spelling": a Deny on a resource's canonical ARN holds however a request spells
the resource — upper or mixed case RDS identifiers, full ARNs, partial secret ARNs, KMS aliases.

Through a running server with unmodified boto3, a user allowed everything in rds, ec2, secretsmanager
and kms but denied everything on a set of real resources calls EVERY operation of the authorization
table that names a resource, once per spelling of each resource parameter, and must get the service's
AccessDenied. The table is walked, not listed: an operation with a resource parameter added without a
row here fails ``test_every_resource_parameter_is_covered``. Other parameters of the same call name
resources that exist nowhere or are not denied, so only the spelling under test can be refused (and
every call is refused before its handler acts: the shared resources survive the module).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from tests.conftest import Server, UserKeys
from tests.rds.e2e_helpers import PASSWORD, Db, create_db, delete_db

from auroral.api.actions import Ref, table
from auroral.api.protocol import service_model

SERVICES = ("rds", "ec2", "secretsmanager", "kms")
DENIED_CODE = {"rds": "AccessDenied", "ec2": "UnauthorizedOperation", "secretsmanager": "AccessDeniedException",
               "kms": "AccessDeniedException"}
REGION = "us-east-1"


def _mixed(text: str) -> str:
    return "".join(c.upper() if i % 2 else c for i, c in enumerate(text))


def _cases(name: str) -> list[str]:
    """The spellings RDS treats as one identifier (it stores identifiers lower-cased)."""
    return [name, name.upper(), _mixed(name)]


@dataclass
class World:
    """The denied resources (created by the root user) and the spellings of each."""

    account: str
    db: Db
    pg: str
    subgrp: str
    endpoint: str  # a custom endpoint of db's cluster
    snapshot: str  # a snapshot of db's cluster
    ec2: dict[str, str]
    sg_name: str
    secret_name: str
    secret_arn: str
    key_id: str
    key_arn: str
    alias: str
    free_key: str
    free_alias: str
    blob: bytes
    new_secret_prefix: str
    denied: list[str] = field(default_factory=list)

    def rds_arn(self, rtype: str, name: str) -> str:
        return f"arn:aws:rds:{REGION}:{self.account}:{rtype}:{name}"


def _ec2_arn(account: str, rtype: str, rid: str) -> str:
    return f"arn:aws:ec2:{REGION}:{account}:{rtype}/{rid}"


# A resource parameter's value that names nothing denied (nor anything at all, where resolving it needs no lookup).
_FREE_EC2 = {
    "vpc": "vpc-0123456789abcdef0", "subnet": "subnet-0123456789abcdef0", "security-group": "sg-0123456789abcdef0",
    "network-interface": "eni-0123456789abcdef0", "internet-gateway": "igw-0123456789abcdef0",
    "customer-gateway": "cgw-0123456789abcdef0", "vpn-gateway": "vgw-0123456789abcdef0",
    "vpn-connection": "vpn-0123456789abcdef0", "vpc-or-default": "vpc-0123456789abcdef0",
}
_EC2_KEY = {"vpc": "vpc", "subnet": "subnet", "security-group": "sg", "network-interface": "eni",
            "internet-gateway": "igw", "customer-gateway": "cgw", "vpn-gateway": "vgw", "vpn-connection": "vpn",
            "vpc-or-default": "vpc"}
_PERMS = [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]

# Required parameters that name no resource, per operation.
BASE: dict[tuple[str, str], dict[str, Any]] = {
    ("rds", "AddRoleToDBCluster"): {"RoleArn": "arn:aws:iam::123456789012:role/canon", "FeatureName": "s3Import"},
    ("rds", "AddTagsToResource"): {"Tags": [{"Key": "k", "Value": "v"}]},
    ("rds", "ApplyPendingMaintenanceAction"): {"ApplyAction": "db-upgrade", "OptInType": "immediate"},
    ("rds", "CreateDBCluster"): {"Engine": "aurora-postgresql", "MasterUsername": "master",
                                 "MasterUserPassword": PASSWORD},
    ("rds", "CreateDBClusterEndpoint"): {"EndpointType": "ANY"},
    ("rds", "CreateDBClusterParameterGroup"): {"DBParameterGroupFamily": "aurora-postgresql16", "Description": "d"},
    ("rds", "CreateDBInstance"): {"DBInstanceClass": "db.r6g.large", "Engine": "aurora-postgresql"},
    ("rds", "CreateDBSubnetGroup"): {"DBSubnetGroupDescription": "d", "SubnetIds": ["subnet-0123456789abcdef0"]},
    ("rds", "DeleteDBCluster"): {"SkipFinalSnapshot": True},
    ("rds", "DeleteDBInstance"): {"SkipFinalSnapshot": True},
    ("rds", "DownloadDBLogFilePortion"): {"LogFileName": "error/postgresql.log.2026-01-01-0000"},
    ("rds", "ModifyDBCluster"): {"MasterUserPassword": "Attacker-pass-1", "ApplyImmediately": True},
    ("rds", "ModifyDBClusterParameterGroup"): {
        "Parameters": [{"ParameterName": "work_mem", "ParameterValue": "8192", "ApplyMethod": "immediate"}]},
    ("rds", "ModifyDBSubnetGroup"): {"SubnetIds": ["subnet-0123456789abcdef0"]},
    ("rds", "RemoveRoleFromDBCluster"): {"RoleArn": "arn:aws:iam::123456789012:role/canon"},
    ("rds", "RemoveTagsFromResource"): {"TagKeys": ["k"]},
    ("rds", "RestoreDBClusterFromSnapshot"): {"Engine": "aurora-postgresql"},
    ("rds", "ModifyDBClusterSnapshotAttribute"): {"AttributeName": "restore"},
    ("ec2", "AuthorizeSecurityGroupEgress"): {"IpPermissions": _PERMS},
    ("ec2", "AuthorizeSecurityGroupIngress"): {"IpPermissions": _PERMS},
    ("ec2", "RevokeSecurityGroupEgress"): {"IpPermissions": _PERMS},
    ("ec2", "RevokeSecurityGroupIngress"): {"IpPermissions": _PERMS},
    ("ec2", "UpdateSecurityGroupRuleDescriptionsEgress"): {"IpPermissions": _PERMS},
    ("ec2", "UpdateSecurityGroupRuleDescriptionsIngress"): {"IpPermissions": _PERMS},
    ("ec2", "ModifySecurityGroupRules"): {"SecurityGroupRules": [{
        "SecurityGroupRuleId": "sgr-0123456789abcdef0",
        "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "CidrIpv4": "10.0.0.0/8"}}]},
    ("ec2", "CreateSecurityGroup"): {"GroupName": "canon-new", "Description": "d"},
    ("ec2", "CreateSubnet"): {"CidrBlock": "10.98.1.0/24"},
    ("ec2", "CreateTags"): {"Tags": [{"Key": "k", "Value": "v"}]},
    ("ec2", "CreateVpnConnection"): {"Type": "ipsec.1"},
    ("ec2", "CreateVpnConnectionRoute"): {"DestinationCidrBlock": "10.1.0.0/16"},
    ("ec2", "DeleteVpnConnectionRoute"): {"DestinationCidrBlock": "10.1.0.0/16"},
    ("ec2", "ModifyNetworkInterfaceAttribute"): {"Description": {"Value": "d"}},
    ("secretsmanager", "PutResourcePolicy"): {"ResourcePolicy": json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}]})},
    ("secretsmanager", "ValidateResourcePolicy"): {"ResourcePolicy": json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}]})},
    ("secretsmanager", "PutSecretValue"): {"SecretString": "stolen"},
    ("secretsmanager", "TagResource"): {"Tags": [{"Key": "k", "Value": "v"}]},
    ("secretsmanager", "UntagResource"): {"TagKeys": ["k"]},
    ("secretsmanager", "UpdateSecretVersionStage"): {"VersionStage": "X"},
    ("kms", "CreateGrant"): {"GranteePrincipal": "arn:aws:iam::123456789012:root", "Operations": ["Decrypt"]},
    ("kms", "Encrypt"): {"Plaintext": b"x"},
    ("kms", "GenerateDataKey"): {"KeySpec": "AES_256"},
    ("kms", "GenerateDataKeyWithoutPlaintext"): {"KeySpec": "AES_256"},
    ("kms", "PutKeyPolicy"): {"PolicyName": "default", "Policy": json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*",
                                                "Resource": "*"}]})},
    ("kms", "RevokeGrant"): {"GrantId": "0" * 64},
    ("kms", "ScheduleKeyDeletion"): {"PendingWindowInDays": 7},
    ("kms", "TagResource"): {"Tags": [{"TagKey": "k", "TagValue": "v"}]},
    ("kms", "UntagResource"): {"TagKeys": ["k"]},
    ("kms", "UpdateKeyDescription"): {"Description": "d"},
}


def _refs(service: str, op: str) -> list[Ref]:
    spec = table()[(service, op)]
    if spec.unauthorized:  # kms:RetireGrant is decided by its handler (grant's retiring principal)
        return []
    return [r for r in spec.resources if isinstance(r, Ref)]


def _operations() -> list[tuple[str, str]]:
    return sorted(k for k in table() if k[0] in SERVICES and _refs(*k))


def _free(w: World, service: str, ref: Ref) -> Any:
    """A value for ``ref`` that names nothing denied."""
    if service == "rds":
        return "canon-free"
    if service == "ec2":
        return ["sg-0123456789abcdef0"] if ref.kind == "security-groups" else _FREE_EC2[ref.kind]
    if service == "kms":
        return w.free_alias if ref.param == "AliasName" else w.free_key
    raise AssertionError((service, ref))


# Spellings of the denied resource for each (service, resolver kind): (accepted, refused). Accepted
# spellings name the resource, so the Deny must hold; refused ones must fail (not found, invalid), never
# reach the resource. Each spelling is the request parameters to set.
Spellings = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def _spellings(w: World, service: str, op: str, ref: Ref) -> Spellings:
    p = ref.param
    if service == "rds" and ref.kind in ("cluster-snapshot", "shared-snapshot"):
        # shared-snapshot: another account's ARN names that account's snapshot, not found unless shared
        arn = w.rds_arn("cluster-snapshot", w.snapshot)
        accepted = [{p: s} for s in _cases(w.snapshot)] + [{p: arn}, {p: w.rds_arn("cluster-snapshot", w.snapshot.upper())}]
        refused = [{p: arn.replace(REGION, "us-west-2")}, {p: arn.replace(f":{w.account}:", ":210987654321:")},
                   {p: w.rds_arn("cluster", w.snapshot)}]
        return accepted, refused
    if service == "rds":
        name = {"cluster": w.db.cluster_id, "cluster-or-arn": w.db.cluster_id, "db": w.db.instance_id,
                "db-or-arn": w.db.instance_id, "cluster-pg": w.pg, "subgrp": w.subgrp,
                "cluster-endpoint": w.endpoint}.get(ref.kind)
        if ref.kind == "arn":
            arns = [w.rds_arn(t, n) for t, n in (("cluster", w.db.cluster_id), ("db", w.db.instance_id),
                                                 ("cluster-pg", w.pg), ("subgrp", w.subgrp),
                                                 ("cluster-endpoint", w.endpoint),
                                                 ("cluster-snapshot", w.snapshot))]
            foreign = [a.replace(REGION, "us-west-2") for a in arns] + [a.replace("arn:aws:", "arn:aws-cn:") for a in arns]
            return ([{p: arn[: arn.rindex(":") + 1] + s} for arn in arns for s in _cases(arn[arn.rindex(":") + 1:])],
                    [{p: a} for a in foreign])
        assert name is not None, ref.kind
        rtype = {"cluster-or-arn": "cluster", "db-or-arn": "db"}.get(ref.kind, ref.kind)
        arn = w.rds_arn(rtype, name)
        accepted = [{p: s} for s in _cases(name)]
        refused = [{p: arn.replace(REGION, "us-west-2")}, {p: arn.replace(f":{w.account}:", ":210987654321:")}]
        if ref.kind.endswith("-or-arn"):
            accepted += [{p: arn}, {p: w.rds_arn(rtype, name.upper())}]
            other = "db" if rtype == "cluster" else "cluster"
            refused += [{p: w.rds_arn(other, name)}]
        elif op.startswith(("Create", "Describe")):
            refused = []  # these create the resource, or list: an unknown name is no error
        else:
            refused.append({p: arn})  # handlers without ARN support: an identifier that names nothing
        return accepted, refused
    if service == "ec2":
        if ref.kind == "resources":
            return [{p: [rid]} for rid in w.ec2.values()], [{p: [w.ec2["sg"].upper()]}]
        if ref.kind == "security-groups":
            return [{p: [w.ec2["sg"]]}], [{p: [w.ec2["sg"].upper()]}]
        rid = w.ec2[_EC2_KEY[ref.kind]]
        accepted = [{p: rid}]
        if ref.kind == "vpc-or-default":
            accepted.append({})  # no VpcId: the default VPC (denied)
        model = service_model("ec2").operation_model(op).input_shape
        if ref.kind == "security-group" and "GroupName" in model.members:
            accepted.append({"GroupName": w.sg_name})
        return accepted, [{p: rid.upper()}]
    if service == "secretsmanager":
        if ref.kind == "new-secret":
            return [{p: w.new_secret_prefix + secrets.token_hex(3)}], []
        partial = w.secret_arn[: -7]
        return ([{p: w.secret_name}, {p: w.secret_arn}, {p: partial}],
                [{p: w.secret_name.upper()}, {p: partial.replace(REGION, "us-west-2")}])
    if service == "kms":
        alias_arn = f"arn:aws:kms:{REGION}:{w.account}:{w.alias}"
        if ref.kind == "blob":
            return [{p: w.blob}], []
        if ref.kind in ("alias", "alias-target"):
            other_account = alias_arn.replace(f":{w.account}:", ":210987654321:")
            return [{p: w.alias}, {p: alias_arn}], [{p: other_account}, {p: alias_arn.replace(REGION, "us-west-2")}]
        if ref.kind == "target":
            return [{p: w.key_id}, {p: w.key_arn}], [{p: w.alias}, {p: w.key_id.upper()}]
        return ([{p: w.key_id}, {p: w.key_arn}, {p: w.alias}, {p: alias_arn}],
                [{p: w.key_id.upper()}, {p: w.key_arn.replace(REGION, "us-west-2")}])
    raise AssertionError(service)


def _call(client: Any, op: str, params: dict[str, Any]) -> Any:
    return getattr(client, xform_name(op))(**params)


def _base(w: World, service: str, op: str) -> dict[str, Any]:
    base = dict(BASE.get((service, op), {}))
    if (service, op) == ("kms", "ReEncrypt"):
        base["DestinationKeyId"] = w.free_key
    return base


# --- the world ------------------------------------------------------------------------------------------


def _make_world(server: Server) -> Iterator[World]:
    rds, ec2 = server.client("rds"), server.client("ec2")
    sm, kms = server.client("secretsmanager"), server.client("kms")
    tag = secrets.token_hex(3)
    db = create_db(rds, prefix="canon")
    pg = f"canon-pg-{tag}"
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=pg, DBParameterGroupFamily="aurora-postgresql16",
                                          Description="d")
    default_subnets = [s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]]
    subgrp = f"canon-net-{tag}"
    rds.create_db_subnet_group(DBSubnetGroupName=subgrp, DBSubnetGroupDescription="d", SubnetIds=default_subnets[:2])
    endpoint = f"canon-ep-{tag}"
    rds.create_db_cluster_endpoint(DBClusterIdentifier=db.cluster_id, DBClusterEndpointIdentifier=endpoint,
                                   EndpointType="ANY")
    snapshot = f"canon-snap-{tag}"
    rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=snapshot, DBClusterIdentifier=db.cluster_id)
    rds.get_waiter("db_cluster_snapshot_available").wait(DBClusterSnapshotIdentifier=snapshot,
                                                         WaiterConfig={"Delay": 0.2, "MaxAttempts": 600})
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    vpc = ec2.create_vpc(CidrBlock="10.97.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.97.1.0/24")["Subnet"]["SubnetId"]
    sg_name = f"canon-sg-{tag}"
    sg = ec2.create_security_group(GroupName=sg_name, Description="d")["GroupId"]  # in the default VPC
    eni = ec2.create_network_interface(SubnetId=default_subnets[0], Groups=[sg])["NetworkInterface"]["NetworkInterfaceId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    cgw = ec2.create_customer_gateway(Type="ipsec.1", PublicIp="203.0.113.7", BgpAsn=65000)["CustomerGateway"][
        "CustomerGatewayId"]
    vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    vpn = ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw, VpnGatewayId=vgw)["VpnConnection"][
        "VpnConnectionId"]
    secret_name = f"canon/secret-{tag}"
    secret_arn = sm.create_secret(Name=secret_name, SecretString="s3cret")["ARN"]
    key = kms.create_key()["KeyMetadata"]
    free_key = kms.create_key()["KeyMetadata"]["KeyId"]
    alias, free_alias = f"alias/canon-{tag}", f"alias/canon-free-{tag}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    kms.create_alias(AliasName=free_alias, TargetKeyId=free_key)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"data")["CiphertextBlob"]
    w = World(
        account=server.account, db=db, pg=pg, subgrp=subgrp, endpoint=endpoint, snapshot=snapshot,
        ec2={"vpc": vpc, "default-vpc": default_vpc, "subnet": subnet, "sg": sg, "eni": eni, "igw": igw, "cgw": cgw,
             "vgw": vgw, "vpn": vpn},
        sg_name=sg_name, secret_name=secret_name, secret_arn=secret_arn, key_id=key["KeyId"], key_arn=key["Arn"],
        alias=alias, free_key=free_key, free_alias=free_alias, blob=blob, new_secret_prefix=f"canon-new-{tag}-",
    )
    kinds = {"vpc": "vpc", "default-vpc": "vpc", "subnet": "subnet", "sg": "security-group",
             "eni": "network-interface", "igw": "internet-gateway", "cgw": "customer-gateway", "vgw": "vpn-gateway",
             "vpn": "vpn-connection"}
    w.denied = [
        w.rds_arn("cluster", db.cluster_id), w.rds_arn("db", db.instance_id), w.rds_arn("cluster-pg", pg),
        w.rds_arn("subgrp", subgrp), w.rds_arn("cluster-endpoint", endpoint), w.rds_arn("cluster-snapshot", snapshot),
        *(_ec2_arn(w.account, kinds[k], rid) for k, rid in w.ec2.items()),
        secret_arn, f"arn:aws:secretsmanager:{REGION}:{w.account}:secret:{w.new_secret_prefix}*",
        key["Arn"], f"arn:aws:kms:{REGION}:{w.account}:{alias}",
    ]
    try:
        yield w
    finally:
        rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=snapshot)
        delete_db(rds, db)


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[World]:
    yield from _make_world(server)


@pytest.fixture(scope="module")
def denied_user(server: Server, world: World) -> UserKeys:
    iam = server.client("iam")
    name = f"canon-{secrets.token_hex(4)}"
    user = iam.create_user(UserName=name)["User"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": [f"{s}:*" for s in SERVICES], "Resource": "*"},
        {"Effect": "Deny", "Action": [f"{s}:*" for s in SERVICES], "Resource": world.denied},
    ]}
    arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return UserKeys(name, user["Arn"], key["AccessKeyId"], key["SecretAccessKey"])


# --- the tests -------------------------------------------------------------------------------------------


def test_every_resource_parameter_is_covered() -> None:
    """Every (operation, resource parameter) of the four services has spellings here: a new operation
    naming a resource cannot join the table without this matrix knowing how to spell it."""
    kinds = {("rds", k) for k in ("cluster", "cluster-or-arn", "db", "db-or-arn", "cluster-pg", "subgrp", "arn",
                                  "cluster-endpoint", "cluster-snapshot", "shared-snapshot")}
    kinds |= {("ec2", k) for k in (*_EC2_KEY, "resources", "security-groups")}
    kinds |= {("secretsmanager", "secret"), ("secretsmanager", "new-secret")}
    kinds |= {("kms", k) for k in ("key", "blob", "alias", "alias-target", "target")}
    ops = _operations()
    assert len(ops) >= 90
    for service, op in ops:
        for ref in _refs(service, op):
            assert (service, ref.kind) in kinds, (service, op, ref)
        model = service_model(service).operation_model(op).input_shape
        given = {r.param for r in _refs(service, op)} | set(BASE.get((service, op), {}))
        given |= {"DestinationKeyId"} if (service, op) == ("kms", "ReEncrypt") else set()
        missing = set(model.required_members) - given
        assert not missing, (service, op, missing)


@pytest.mark.parametrize(("service", "op"), _operations())
def test_deny_on_canonical_arn_holds_for_every_spelling(
        server: Server, world: World, denied_user: UserKeys, service: str, op: str) -> None:
    client = server.client(service, denied_user.access_key, denied_user.secret_key)
    refs = _refs(service, op)
    for i, ref in enumerate(refs):
        if any(r.param == ref.param for r in refs[:i]):
            continue  # one parameter, two resources (a KMS alias and the key it points to)
        accepted, refused = _spellings(world, service, op, ref)
        others = {r.param: _free(world, service, r) for r in refs if r.param != ref.param and not r.optional}
        for spelling in accepted:
            params = {**_base(world, service, op), **others, **spelling}
            with pytest.raises(ClientError) as info:
                _call(client, op, params)
            assert info.value.response["Error"]["Code"] == DENIED_CODE[service], (op, ref, spelling)
        for spelling in refused:
            params = {**_base(world, service, op), **others, **spelling}
            with pytest.raises(ClientError) as info:  # never reaches the resource
                _call(client, op, params)
            assert info.value.response["Error"]["Code"] != "InternalFailure", (op, ref, spelling)


def test_the_reported_attack(server: Server, world: World, make_user: Any) -> None:
    """The finding as reported: ``rds:*`` allowed, everything denied on ``cluster:<id>`` and
    ``db:<id>``; ``--db-cluster-identifier <ID>`` reset the master password, the ARN described the
    cluster, ``<ID>`` rebooted, tagged and deleted. Every one is AccessDenied now, nothing changed, and
    the audit trail names the canonical ARN."""
    cid, iid = world.db.cluster_id, world.db.instance_id
    cluster_arn, db_arn = world.rds_arn("cluster", cid), world.rds_arn("db", iid)
    user: UserKeys = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rds:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": [cluster_arn, db_arn]},
    ]})
    rds = server.client("rds", user.access_key, user.secret_key)
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("ModifyDBCluster", {"DBClusterIdentifier": cid.upper(), "MasterUserPassword": "Attacker-pass-1",
                             "ApplyImmediately": True}),
        ("DescribeDBClusters", {"DBClusterIdentifier": cluster_arn}),
        ("DescribeDBInstances", {"DBInstanceIdentifier": world.rds_arn("db", iid.upper())}),
        ("RebootDBInstance", {"DBInstanceIdentifier": iid.upper()}),
        ("AddTagsToResource", {"ResourceName": world.rds_arn("cluster", _mixed(cid)),
                               "Tags": [{"Key": "owner", "Value": "attacker"}]}),
        ("DeleteDBInstance", {"DBInstanceIdentifier": iid.upper(), "SkipFinalSnapshot": True}),
        ("DeleteDBCluster", {"DBClusterIdentifier": cid.upper(), "SkipFinalSnapshot": True}),
    ]
    for op, params in attempts:
        with pytest.raises(ClientError) as info:
            _call(rds, op, params)
        assert info.value.response["Error"]["Code"] == "AccessDenied", op

    root = server.client("rds")
    cluster = root.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]
    assert cluster["Status"] == "available" and cluster.get("TagList", []) == []
    assert root.describe_db_instances(DBInstanceIdentifier=iid)["DBInstances"][0]["DBInstanceStatus"] == "available"
    with world.db.connect() as conn:  # the master password is still the old one
        assert conn.execute("SELECT 1").fetchone() == (1,)

    events = server.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": cluster_arn}])["Events"]
    modify = [e for e in events if e["EventName"] == "ModifyDBCluster" and e.get("Username") == user.name]
    assert modify and all(json.loads(e["CloudTrailEvent"])["errorCode"] == "AccessDenied" for e in modify)

"""Network security at the endpoints, end to end: a real ``auroral up`` with a translation that puts
loopback aliases inside a VPC (``127.10.x.y`` = ``10.0.x.y``), outside it on the internet
(``127.20.0.x`` = ``203.0.113.x``) and on an on-premises network (``127.30.0.x`` = ``192.168.50.x``);
connections from those source addresses (raw probes and full TLS logins through a relay bound to
them); EC2 and RDS driven with unmodified boto3 and the AWS CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..conftest import Server, new_root_key, server_tmpdir, start_server, stop_server
from .e2e_helpers import FAST, MASTER, PASSWORD, ident
from .net_helpers import REFUSED, Relay, probe, vpc_with_app_and_db_groups

TRANSLATE = "127.10.0.0/16=10.0.0.0/16,127.20.0.0/24=203.0.113.0/24,127.30.0.0/24=192.168.50.0/24"
APP_CLIENT = "127.10.1.10"  # 10.0.1.10: the application's network interface (app security group)


@dataclass
class Net:
    server: Server
    rds: Any
    ec2: Any
    vpc: str
    subnets: list[str]
    app_sg: str
    db_sg: str
    app_eni: str
    cluster: str
    instance: str
    resource_id: str

    def endpoint(self, instance: str | None = None) -> tuple[str, int]:
        found = self.rds.describe_db_instances(DBInstanceIdentifier=instance or self.instance)["DBInstances"][0]
        return str(found["Endpoint"]["Address"]), int(found["Endpoint"]["Port"])

    def login(self, source: str, *, sslmode: str = "verify-full") -> psycopg.Connection[tuple[Any, ...]]:
        """A full psycopg login (TLS verified against the CA bundle) from ``source``, via a relay."""
        endpoint = self.endpoint()
        relay = Relay(endpoint, source)
        # the relay's address is where the bytes go; the endpoint's name is what the certificate must match
        conn = psycopg.connect(host=endpoint[0], hostaddr="127.0.0.1", port=relay.port, user=MASTER, password=PASSWORD, dbname="appdb",
                               sslmode=sslmode, sslrootcert=str(self.server.data_dir / "tls" / "rds-ca-bundle.pem"),
                               connect_timeout=5, autocommit=True)
        conn._relay = relay  # type: ignore[attr-defined]  # kept alive with the connection
        return conn

    def flows(self, action: str) -> list[dict[str, Any]]:
        out = subprocess.run(
            [sys.executable, "-m", "auroral.cli", "flows", "--data-dir", str(self.server.data_dir), "--json",
             "--action", action, "--limit", "1000"], capture_output=True, text=True, check=True, timeout=30)
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def ingress(self, group: str, **peer: Any) -> str:
        perm = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, **peer}
        rules = self.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[perm])
        return str(rules["SecurityGroupRules"][0]["SecurityGroupRuleId"])

    def revoke(self, group: str, rule: str) -> None:
        self.ec2.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=[rule])


def wait_available(rds: Any, cluster: str, *instances: str) -> None:
    rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=cluster, WaiterConfig=FAST)
    for instance in instances:
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=instance, WaiterConfig=FAST)


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    key, secret = new_root_key()
    base = server_tmpdir()
    server = start_server(base / "data", access_key=key, secret_key=secret, account="210987654321",
                          extra_env={"AURORAL_NET_TRANSLATE": TRANSLATE})
    try:
        ec2, rds = server.client("ec2"), server.client("rds")
        vpc, subnets, app_sg, db_sg = vpc_with_app_and_db_groups(ec2, "10.0")
        ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": app_sg}]}])
        eni = ec2.create_network_interface(SubnetId=subnets[0], PrivateIpAddress="10.0.1.10",
                                           Groups=[app_sg])["NetworkInterface"]["NetworkInterfaceId"]
        rds.create_db_subnet_group(DBSubnetGroupName="app-db", DBSubnetGroupDescription="app database subnets",
                                   SubnetIds=subnets)
        cluster, instance = ident("net"), ident("net-i")
        created = rds.create_db_cluster(
            DBClusterIdentifier=cluster, Engine="aurora-postgresql", EngineVersion="16.4", MasterUsername=MASTER,
            MasterUserPassword=PASSWORD, DatabaseName="appdb", DBSubnetGroupName="app-db",
            VpcSecurityGroupIds=[db_sg])["DBCluster"]
        rds.create_db_instance(DBInstanceIdentifier=instance, DBClusterIdentifier=cluster,
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
        wait_available(rds, cluster, instance)
        yield Net(server, rds, ec2, vpc, subnets, app_sg, db_sg, eni, cluster, instance,
                  created["DbClusterResourceId"])
    finally:
        stop_server(server)
        shutil.rmtree(base, ignore_errors=True)


def test_placement_is_reported(net: Net) -> None:
    cluster = net.rds.describe_db_clusters(DBClusterIdentifier=net.cluster)["DBClusters"][0]
    assert cluster["DBSubnetGroup"] == "app-db"
    assert cluster["VpcSecurityGroups"] == [{"VpcSecurityGroupId": net.db_sg, "Status": "active"}]
    assert sorted(cluster["AvailabilityZones"]) == ["us-east-1a", "us-east-1b"]
    instance = net.rds.describe_db_instances(DBInstanceIdentifier=net.instance)["DBInstances"][0]
    group = instance["DBSubnetGroup"]
    assert (group["DBSubnetGroupName"], group["VpcId"], group["SubnetGroupStatus"]) == ("app-db", net.vpc, "Complete")
    assert sorted(s["SubnetIdentifier"] for s in group["Subnets"]) == sorted(net.subnets)
    assert instance["VpcSecurityGroups"] == [{"VpcSecurityGroupId": net.db_sg, "Status": "active"}]
    assert instance["PubliclyAccessible"] is False


def test_only_the_app_security_group_gets_in(net: Net) -> None:
    host, port = net.endpoint()
    with net.login(APP_CLIENT) as conn:  # verify-full against the installation's CA
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.pgconn.ssl_in_use
    # 10.0.1.11 is inside the VPC, but no network interface carries the app group: its SYN is dropped, the
    # handshake never completes (a connect timeout, not a connection accepted and then held or closed).
    assert probe(host, port, "127.10.1.11", timeout=1.0) == REFUSED
    with pytest.raises(psycopg.OperationalError):
        net.login("127.10.1.11").close()
    # From the host itself (127.0.0.1 = 172.31.0.1, the default VPC): another VPC, not routed.
    assert probe(host, port, "127.0.0.1", timeout=0.5) == REFUSED

    accepted = [r for r in net.flows("accept") if r["srcaddr"] == APP_CLIENT]
    assert accepted and accepted[-1]["interface-id"] == net.app_eni and accepted[-1]["dstport"] == 5432
    assert f"{net.db_sg} " in accepted[-1]["reason"] and net.app_sg in accepted[-1]["reason"]
    rejected = [r for r in net.flows("reject") if r["srcaddr"] == "127.10.1.11"]
    assert rejected, "no REJECT flow record"
    assert rejected[-1]["action"] == "REJECT" and rejected[-1]["account-id"] == "210987654321"
    if REFUSED == "timeout":
        assert (rejected[-1]["packets"], rejected[-1]["phase"]) == (1, "open")  # the dropped SYN, seen once
    assert f"no rule of {net.db_sg} admits tcp 5432 from 10.0.1.11" in rejected[-1]["reason"]
    table = subprocess.run([sys.executable, "-m", "auroral.cli", "flows", "--data-dir", str(net.server.data_dir),
                            "--action", "reject"], capture_output=True, text=True, check=True).stdout
    assert "127.10.1.11" in table and "no rule of" in table


def test_cidr_rule_admits_a_subnet_and_revoking_keeps_established_connections(net: Net) -> None:
    host, port = net.endpoint()
    source = "127.10.2.20"
    assert probe(host, port, source, timeout=0.5) == REFUSED
    rule = net.ingress(net.db_sg, IpRanges=[{"CidrIp": "10.0.2.0/24", "Description": "batch subnet"}])
    assert probe(host, port, source, timeout=1.0) == "ok"  # at once: no waiting for the rule to apply
    conn = net.login(source)
    try:
        net.revoke(net.db_sg, rule)
        revoked = time.monotonic()
        # New connections see the change at once (the first probe after the revoke is refused) ...
        assert probe(host, port, source, timeout=0.5) == REFUSED
        assert probe(host, port, "127.10.2.21", timeout=0.5) == REFUSED
        assert revoked > 0
        # ... while the established connection keeps working (security groups are stateful).
        assert conn.execute("SELECT 2").fetchone() == (2,)
    finally:
        conn.close()


def test_psql_from_a_refused_host_reports_a_connect_timeout(net: Net) -> None:
    """psql itself (from 127.0.0.1 = 172.31.0.1: the default VPC, not routed to this one) gets libpq's
    connect timeout, not "server closed the connection unexpectedly"."""
    host, port = net.endpoint()
    started = time.monotonic()
    out = subprocess.run(["psql", f"host={host} port={port} user={MASTER} dbname=appdb connect_timeout=2",
                          "-XAtc", "SELECT 1"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PGPASSWORD": PASSWORD})
    assert out.returncode != 0 and "timeout expired" in out.stderr, out.stderr
    assert time.monotonic() - started >= 1.9
    assert any(r["srcaddr"] == "127.0.0.1" and "172.31.0.1" in r["reason"] for r in net.flows("reject"))


def test_modify_cluster_security_groups_applies_to_every_instance(net: Net) -> None:
    reader = ident("net-r")
    net.rds.create_db_instance(DBInstanceIdentifier=reader, DBClusterIdentifier=net.cluster,
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
    wait_available(net.rds, net.cluster, reader)
    wide = net.ec2.create_security_group(GroupName="wide", Description="whole vpc", VpcId=net.vpc)["GroupId"]
    net.ingress(wide, IpRanges=[{"CidrIp": "10.0.0.0/16"}])
    endpoints = [net.endpoint(), net.endpoint(reader)]
    outsider = "127.10.3.30"
    established = net.login(APP_CLIENT)
    try:
        for host, port in endpoints:
            assert probe(host, port, outsider, timeout=0.5) == REFUSED
        net.rds.modify_db_cluster(DBClusterIdentifier=net.cluster, VpcSecurityGroupIds=[wide], ApplyImmediately=True)
        for host, port in endpoints:  # no restart of any endpoint: the next connection is admitted
            assert probe(host, port, outsider, timeout=0.5) == "ok"
        for inst in (net.instance, reader):
            described = net.rds.describe_db_instances(DBInstanceIdentifier=inst)["DBInstances"][0]
            assert described["VpcSecurityGroups"] == [{"VpcSecurityGroupId": wide, "Status": "active"}]
            assert described["DBInstanceStatus"] == "available"
        net.rds.modify_db_cluster(DBClusterIdentifier=net.cluster, VpcSecurityGroupIds=[net.db_sg],
                                  ApplyImmediately=True)
        for host, port in endpoints:
            assert probe(host, port, outsider, timeout=0.5) == REFUSED
        assert established.execute("SELECT 3").fetchone() == (3,)  # never dropped
    finally:
        established.close()
        net.rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)


def test_public_access_needs_an_internet_gateway(net: Net) -> None:
    host, port = net.endpoint()
    internet = "127.20.0.5"  # 203.0.113.5
    rule = net.ingress(net.db_sg, IpRanges=[{"CidrIp": "203.0.113.0/24"}])
    with pytest.raises(ClientError) as err:
        net.rds.modify_db_instance(DBInstanceIdentifier=net.instance, PubliclyAccessible=True, ApplyImmediately=True)
    assert err.value.response["Error"]["Code"] == "InvalidVPCNetworkStateFault"
    with pytest.raises(ClientError) as err:
        net.rds.create_db_instance(DBInstanceIdentifier=ident("pub"), DBClusterIdentifier=net.cluster,
                                   Engine="aurora-postgresql", DBInstanceClass="db.r6g.large", PubliclyAccessible=True)
    assert err.value.response["Error"]["Message"] == (
        "Cannot create a publicly accessible DBInstance. The specified VPC has no internet gateway attached.")
    igw = net.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    net.ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=net.vpc)
    try:
        assert probe(host, port, internet, timeout=0.5) == REFUSED  # private instance: not routed
        net.rds.modify_db_instance(DBInstanceIdentifier=net.instance, PubliclyAccessible=True, ApplyImmediately=True)
        assert probe(host, port, internet, timeout=0.5) == "ok"
        with net.login(internet) as conn:
            assert conn.execute("SELECT 4").fetchone() == (4,)
        net.ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=net.vpc)
        assert probe(host, port, internet, timeout=0.5) == REFUSED
        reason = [r for r in net.flows("reject") if r["srcaddr"] == internet][-1]["reason"]
        assert "has no internet gateway" in reason and "203.0.113.5" in reason
    finally:
        net.rds.modify_db_instance(DBInstanceIdentifier=net.instance, PubliclyAccessible=False, ApplyImmediately=True)
        net.revoke(net.db_sg, rule)


def test_vpn_static_route_admits_the_on_premises_network(net: Net) -> None:
    host, port = net.endpoint()
    office = "127.30.0.5"  # 192.168.50.5
    rule = net.ingress(net.db_sg, IpRanges=[{"CidrIp": "192.168.0.0/16"}])
    try:
        assert probe(host, port, office, timeout=0.5) == REFUSED
        cgw = net.ec2.create_customer_gateway(Type="ipsec.1", BgpAsn=65000, PublicIp="198.51.100.7")
        vgw = net.ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
        net.ec2.attach_vpn_gateway(VpnGatewayId=vgw, VpcId=net.vpc)
        vpn = net.ec2.create_vpn_connection(
            Type="ipsec.1", CustomerGatewayId=cgw["CustomerGateway"]["CustomerGatewayId"], VpnGatewayId=vgw,
            Options={"StaticRoutesOnly": True})["VpnConnection"]["VpnConnectionId"]
        assert probe(host, port, office, timeout=0.5) == REFUSED  # no route yet
        net.ec2.create_vpn_connection_route(VpnConnectionId=vpn, DestinationCidrBlock="192.168.50.0/24")
        assert probe(host, port, office, timeout=0.5) == "ok"
        with net.login(office) as conn:
            assert conn.execute("SELECT 5").fetchone() == (5,)
        net.ec2.delete_vpn_connection_route(VpnConnectionId=vpn, DestinationCidrBlock="192.168.50.0/24")
        assert probe(host, port, office, timeout=0.5) == REFUSED
    finally:
        net.revoke(net.db_sg, rule)


def test_security_groups_are_validated(net: Net) -> None:
    def create(**extra: Any) -> ClientError:
        with pytest.raises(ClientError) as err:
            net.rds.create_db_cluster(DBClusterIdentifier=ident("bad"), Engine="aurora-postgresql",
                                      MasterUsername=MASTER, MasterUserPassword=PASSWORD, **extra)
        return err.value

    unknown = create(DBSubnetGroupName="app-db", VpcSecurityGroupIds=["sg-0123456789abcdef0"])
    assert unknown.response["Error"]["Code"] == "InvalidParameterValue"
    assert unknown.response["Error"]["Message"] == "Invalid security group , groupId= sg-0123456789abcdef0, groupName=."
    default_vpc_sg = net.ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["default"]}, {"Name": "vpc-id", "Values": [net.vpc]}])
    assert default_vpc_sg["SecurityGroups"]
    other = create(VpcSecurityGroupIds=[net.db_sg])  # the default subnet group is in the default VPC
    assert other.response["Error"]["Code"] == "InvalidParameterCombination"
    assert "different VPCs" in other.response["Error"]["Message"]
    missing = create(DBSubnetGroupName="no-such-group")
    assert missing.response["Error"]["Code"] == "DBSubnetGroupNotFoundFault"
    with pytest.raises(ClientError) as err:
        net.rds.modify_db_cluster(DBClusterIdentifier=net.cluster, VpcSecurityGroupIds=["sg-0123456789abcdef0"])
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_subnet_group_crud_and_errors(net: Net) -> None:
    rds, ec2 = net.rds, net.ec2

    def error(call: Any, **params: Any) -> tuple[str, str]:
        with pytest.raises(ClientError) as err:
            call(**params)
        return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]

    code, message = error(rds.create_db_subnet_group, DBSubnetGroupName="one-az", DBSubnetGroupDescription="x",
                          SubnetIds=[net.subnets[0]])
    assert code == "DBSubnetGroupDoesNotCoverEnoughAZs" and "Current AZ coverage: us-east-1a" in message
    assert error(rds.create_db_subnet_group, DBSubnetGroupName="ghost", DBSubnetGroupDescription="x",
                 SubnetIds=["subnet-00000000000000000", net.subnets[0]])[0] == "InvalidSubnet"
    default_subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    assert error(rds.create_db_subnet_group, DBSubnetGroupName="mixed", DBSubnetGroupDescription="x",
                 SubnetIds=[net.subnets[0], default_subnet["SubnetId"]])[0] == "InvalidSubnet"
    assert error(rds.create_db_subnet_group, DBSubnetGroupName="app-db", DBSubnetGroupDescription="x",
                 SubnetIds=net.subnets) == ("DBSubnetGroupAlreadyExists", "The DB subnet group 'app-db' already exists.")

    created = rds.create_db_subnet_group(DBSubnetGroupName="Spare", DBSubnetGroupDescription="spare",
                                         SubnetIds=net.subnets, Tags=[{"Key": "team", "Value": "db"}])["DBSubnetGroup"]
    assert created["DBSubnetGroupName"] == "spare" and created["VpcId"] == net.vpc
    assert created["DBSubnetGroupArn"] == "arn:aws:rds:us-east-1:210987654321:subgrp:spare"
    assert {s["SubnetAvailabilityZone"]["Name"] for s in created["Subnets"]} == {"us-east-1a", "us-east-1b"}
    assert rds.list_tags_for_resource(ResourceName=created["DBSubnetGroupArn"])["TagList"] == [
        {"Key": "team", "Value": "db"}]
    modified = rds.modify_db_subnet_group(DBSubnetGroupName="spare", DBSubnetGroupDescription="spare 2",
                                          SubnetIds=net.subnets)["DBSubnetGroup"]
    assert modified["DBSubnetGroupDescription"] == "spare 2"
    listed = net.server.cli_json("rds", "describe-db-subnet-groups")["DBSubnetGroups"]
    names = {g["DBSubnetGroupName"]: g for g in listed}
    assert {"app-db", "spare", "default"} <= names.keys()
    assert len(names["default"]["Subnets"]) == 3 and names["default"]["VpcId"] != net.vpc

    assert error(rds.delete_db_subnet_group, DBSubnetGroupName="app-db") == (
        "InvalidDBSubnetGroupStateFault",
        f"Cannot delete the subnet group 'app-db' because at least one database cluster: {net.cluster} is still "
        "using it.")
    rds.delete_db_subnet_group(DBSubnetGroupName="spare")
    assert error(rds.describe_db_subnet_groups, DBSubnetGroupName="spare") == (
        "DBSubnetGroupNotFoundFault", "DB subnet group 'spare' does not exist.")


def test_describe_certificates_names_the_installation_ca(net: Net) -> None:
    certs = net.rds.describe_certificates()
    assert certs["DefaultCertificateForNewLaunches"] == "rds-ca-rsa2048-g1"
    [entry] = certs["Certificates"]
    pem = Path(subprocess.run([sys.executable, "-m", "auroral.cli", "ca", "--path", "--data-dir",
                               str(net.server.data_dir)], capture_output=True, text=True, check=True).stdout.strip())
    ca = x509.load_pem_x509_certificate(pem.read_bytes())
    der = ca.public_bytes(serialization.Encoding.DER)
    assert entry["CertificateIdentifier"] == "rds-ca-rsa2048-g1" and entry["CertificateType"] == "CA"
    assert entry["Thumbprint"] == hashlib.sha1(der).hexdigest()
    assert entry["ValidTill"] == ca.not_valid_after_utc and entry["ValidFrom"] == ca.not_valid_before_utc
    assert entry["CertificateArn"] == "arn:aws:rds:us-east-1:210987654321:cert:rds-ca-rsa2048-g1"
    assert entry["CustomerOverride"] is False
    with pytest.raises(ClientError) as err:
        net.rds.describe_certificates(CertificateIdentifier="rds-ca-2019")
    assert err.value.response["Error"]["Code"] == "CertificateNotFound"
    instance = net.rds.describe_db_instances(DBInstanceIdentifier=net.instance)["DBInstances"][0]
    assert instance["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"
    assert instance["CertificateDetails"] == {"CAIdentifier": "rds-ca-rsa2048-g1", "ValidTill": ca.not_valid_after_utc}
    cluster = net.rds.describe_db_clusters(DBClusterIdentifier=net.cluster)["DBClusters"][0]
    assert cluster["CertificateDetails"]["CAIdentifier"] == "rds-ca-rsa2048-g1"

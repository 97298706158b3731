"""The default network, end to end: a cluster created without any network parameter lands in the
default VPC with its default security group; this machine (``127.0.0.1`` = ``172.31.0.1``) is a host
of that VPC whose network interface carries the default group, so psql from it logs in; another
loopback address is another host and is refused — here with ``AURORAL_NET_DROP=close``."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ..conftest import Server, new_root_key, server_tmpdir, start_server, stop_server
from .e2e_helpers import Db, create_db, psql
from .net_helpers import probe


@pytest.fixture(scope="module")
def server_close() -> Iterator[Server]:
    key, secret = new_root_key()
    base = server_tmpdir()
    server = start_server(base / "data", access_key=key, secret_key=secret, account="345678901234",
                          extra_env={"AURORAL_NET_DROP": "close"})
    yield server
    stop_server(server)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def db(server_close: Server) -> Db:
    return create_db(server_close.client("rds"), prefix="dflt")


def test_default_placement_and_the_host_interface(server_close: Server, db: Db) -> None:
    ec2, rds = server_close.client("ec2"), server_close.client("rds")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    default_sg = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}, {"Name": "group-name", "Values": ["default"]}],
    )["SecurityGroups"][0]["GroupId"]
    cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
    assert cluster["DBSubnetGroup"] == "default"
    assert cluster["VpcSecurityGroups"] == [{"VpcSecurityGroupId": default_sg, "Status": "active"}]
    instance = rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)["DBInstances"][0]
    assert instance["DBSubnetGroup"]["VpcId"] == vpc["VpcId"] and len(instance["DBSubnetGroup"]["Subnets"]) == 3
    [host] = ec2.describe_network_interfaces(
        Filters=[{"Name": "private-ip-address", "Values": ["172.31.0.1"]}])["NetworkInterfaces"]
    assert host["VpcId"] == vpc["VpcId"] and [g["GroupId"] for g in host["Groups"]] == [default_sg]
    assert host["Description"].startswith("auroral host")


def test_this_machine_logs_in_and_another_host_is_closed(server_close: Server, db: Db) -> None:
    assert psql(db, "SELECT current_user").stdout.strip() == db.master  # from 127.0.0.1
    start = time.monotonic()
    assert probe(db.host, db.port, "127.0.0.2", timeout=5.0) == "closed"
    assert time.monotonic() - start < 1.0  # closed at once, not held

    ec2 = server_close.client("ec2")
    default_sg = server_close.client("rds").describe_db_clusters(
        DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["VpcSecurityGroups"][0]["VpcSecurityGroupId"]
    perm: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                            "IpRanges": [{"CidrIp": "172.31.0.2/32"}]}
    ec2.authorize_security_group_ingress(GroupId=default_sg, IpPermissions=[perm])
    try:
        assert probe(db.host, db.port, "127.0.0.2", timeout=1.0) == "ok"
        assert probe(db.host, db.port, "127.0.0.3", timeout=1.0) == "closed"
    finally:
        ec2.revoke_security_group_ingress(GroupId=default_sg, IpPermissions=[perm])
    assert probe(db.host, db.port, "127.0.0.2", timeout=1.0) == "closed"

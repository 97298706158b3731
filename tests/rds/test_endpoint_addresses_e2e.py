"""Where DB instances listen, end to end: each instance's RDS-managed network interface (as EC2 shows
it), the loopback address standing for its private address, the cluster's port, and what follows when
the port or the security groups change. A real ``auroral up`` whose translation puts ``127.10.x.y`` in
``10.0.0.0/16`` (besides the default ``127.0.x.y`` = ``172.31.x.y``); unmodified boto3, psycopg, psql."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from ..conftest import Server, new_root_key, server_tmpdir, start_server, stop_server
from .e2e_helpers import FAST, MASTER, PASSWORD, create_db, delete_db, ident, until, wait_instance_gone
from .net_helpers import probe, vpc_with_app_and_db_groups, wait_probe

TRANSLATE = "127.10.0.0/16=10.0.0.0/16"


@pytest.fixture(scope="module")
def srv() -> Iterator[Server]:
    key, secret = new_root_key()
    base = server_tmpdir()
    server = start_server(base / "data", access_key=key, secret_key=secret, account="210987654321",
                          extra_env={"AURORAL_NET_TRANSLATE": TRANSLATE})
    try:
        yield server
    finally:
        stop_server(server)
        shutil.rmtree(base, ignore_errors=True)


def listening(rds: Any, instance: str) -> tuple[str, int]:
    """The address (resolved, if Describe gives a name) and port of an instance's endpoint."""
    endpoint = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]["Endpoint"]
    host = str(endpoint["Address"])
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = socket.gethostbyname(host)
    return host, int(endpoint["Port"])


def vpc_address(loopback: str) -> str:
    """The VPC address a loopback address stands for (this server's translation)."""
    a, b, c, d = (int(x) for x in loopback.split("."))
    assert a == 127
    if b == 10:
        return f"10.0.{c}.{d}"
    assert b == 0, loopback
    return f"172.31.{c}.{d}"


def interface_at(ec2: Any, private_ip: str) -> dict[str, Any]:
    found = ec2.describe_network_interfaces(
        Filters=[{"Name": "addresses.private-ip-address", "Values": [private_ip]}])["NetworkInterfaces"]
    assert len(found) == 1, found
    return dict(found[0])


def login(host: str, port: int, **kw: Any) -> psycopg.Connection[tuple[Any, ...]]:
    kw.setdefault("sslmode", "require")
    return psycopg.connect(host=host, port=port, user=MASTER, password=PASSWORD, dbname="appdb",
                           connect_timeout=10, autocommit=True, **kw)


def add_instance(rds: Any, cluster: str) -> str:
    iid = ident("addr-r")
    rds.create_db_instance(DBInstanceIdentifier=iid, DBClusterIdentifier=cluster, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large")
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=iid, WaiterConfig=FAST)
    return iid


def test_an_instance_listens_on_its_network_interface_address_on_port_5432(srv: Server) -> None:
    rds, ec2 = srv.client("rds"), srv.client("ec2")
    db = create_db(rds, prefix="addr")
    try:
        cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
        instance = rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)["DBInstances"][0]
        assert cluster["Port"] == 5432
        host, port = listening(rds, db.instance_id)
        assert port == 5432 and host != "127.0.0.1" and host.startswith("127.0.")
        eni = interface_at(ec2, vpc_address(host))
        assert eni["RequesterManaged"] is True and eni["RequesterId"] == "amazon-rds"
        assert eni["Description"] == "RDSNetworkInterface" and eni["Status"] == "in-use"
        assert eni["InterfaceType"] == "interface"
        assert eni["Attachment"]["InstanceOwnerId"] == "amazon-rds" and eni["Attachment"]["Status"] == "attached"
        assert [g["GroupId"] for g in eni["Groups"]] == [g["VpcSecurityGroupId"] for g in cluster["VpcSecurityGroups"]]
        assert eni["AvailabilityZone"] == instance["AvailabilityZone"]
        assert eni["SubnetId"] in {s["SubnetIdentifier"] for s in instance["DBSubnetGroup"]["Subnets"]}
        # not one of the addresses AWS reserves in a subnet
        subnet = ec2.describe_subnets(SubnetIds=[eni["SubnetId"]])["Subnets"][0]
        net = ipaddress.ip_network(subnet["CidrBlock"])
        offset = int(ipaddress.ip_address(eni["PrivateIpAddress"])) - int(net.network_address)
        assert 4 <= offset < net.num_addresses - 1
        with login(host, port) as conn:
            assert str(conn.execute("SELECT inet_server_addr()").fetchone()[0]) == host  # type: ignore[index]
        out = subprocess.run(
            ["psql", f"host={host} port=5432 user={MASTER} dbname=appdb sslmode=require", "-XAtc", "SELECT 1"],
            env={**os.environ, "PGPASSWORD": PASSWORD, "PGCONNECT_TIMEOUT": "10"},
            capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr
        # nothing listens for the instance on 127.0.0.1, where a local PostgreSQL may run
        assert probe("127.0.0.1", 5432, "127.0.0.1") == "refused"
    finally:
        delete_db(rds, db)


def test_two_instances_have_addresses_of_their_own_on_the_same_port(srv: Server) -> None:
    rds = srv.client("rds")
    db = create_db(rds, prefix="addr2")
    try:
        reader = add_instance(rds, db.cluster_id)
        first, second = listening(rds, db.instance_id), listening(rds, reader)
        assert first[0] != second[0] and first[1] == second[1] == 5432
        for host, port in (first, second):
            with login(host, port) as conn:
                assert str(conn.execute("SELECT inet_server_addr()").fetchone()[0]) == host  # type: ignore[index]
    finally:
        delete_db(rds, db)


def test_the_interface_is_rds_s_to_change_and_goes_away_with_the_instance(srv: Server) -> None:
    rds, ec2 = srv.client("rds"), srv.client("ec2")
    db = create_db(rds, prefix="addr3")
    try:
        reader = add_instance(rds, db.cluster_id)
        eni = interface_at(ec2, vpc_address(listening(rds, reader)[0]))
        with pytest.raises(ClientError) as err:
            ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
        assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
        assert "currently in use" in err.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as err:
            ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["NetworkInterfaceId"],
                                                   Description={"Value": "mine now"})
        assert err.value.response["Error"]["Code"] == "OperationNotPermitted"
        rds.delete_db_instance(DBInstanceIdentifier=reader)
        wait_instance_gone(rds, reader)
        left = ec2.describe_network_interfaces(NetworkInterfaceIds=[])["NetworkInterfaces"]
        assert eni["NetworkInterfaceId"] not in {i["NetworkInterfaceId"] for i in left}
    finally:
        delete_db(rds, db)


def test_the_cluster_port_is_where_every_instance_listens_and_a_modify_moves_them(srv: Server) -> None:
    rds = srv.client("rds")
    with pytest.raises(ClientError) as err:
        rds.create_db_cluster(DBClusterIdentifier=ident("badport"), Engine="aurora-postgresql", Port=1149,
                              MasterUsername=MASTER, MasterUserPassword=PASSWORD)
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    db = create_db(rds, prefix="addr4", Port=6543)
    try:
        assert rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["Port"] == 6543
        host, port = listening(rds, db.instance_id)
        assert port == 6543
        with login(host, port):
            pass
        rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, Port=7654, ApplyImmediately=True)
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=db.instance_id, WaiterConfig=FAST)
        assert rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["Port"] == 7654
        moved, new_port = listening(rds, db.instance_id)
        assert (moved, new_port) == (host, 7654)
        with login(moved, new_port):
            pass
        assert probe(host, 6543, "127.0.0.1") == "refused"
    finally:
        delete_db(rds, db)


def test_an_address_held_by_another_process_moves_the_interface(srv: Server) -> None:
    rds, ec2 = srv.client("rds"), srv.client("ec2")
    db = create_db(rds, prefix="addr5")
    try:
        host, _ = listening(rds, db.instance_id)
        eni = interface_at(ec2, vpc_address(host))
        with socket.socket() as squatter:  # another process on the instance's address and the next port
            squatter.bind((host, 7001))
            squatter.listen()
            rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, Port=7001, ApplyImmediately=True)
            rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=db.instance_id, WaiterConfig=FAST)
            moved, port = listening(rds, db.instance_id)
            assert port == 7001 and moved != host
            now = interface_at(ec2, vpc_address(moved))
            assert now["NetworkInterfaceId"] == eni["NetworkInterfaceId"]
            with login(moved, port):
                pass
    finally:
        delete_db(rds, db)


def test_security_groups_of_the_cluster_follow_to_its_interfaces(srv: Server) -> None:
    rds, ec2 = srv.client("rds"), srv.client("ec2")
    db = create_db(rds, prefix="addr6")
    try:
        vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        extra = ec2.create_security_group(GroupName=ident("extra"), Description="extra", VpcId=vpc)["GroupId"]
        rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, VpcSecurityGroupIds=[extra], ApplyImmediately=True)
        eni = interface_at(ec2, vpc_address(listening(rds, db.instance_id)[0]))
        assert [g["GroupId"] for g in eni["Groups"]] == [extra]
    finally:
        delete_db(rds, db)


def _subnet_group(rds: Any, ec2: Any, prefix: str) -> tuple[str, str, str]:
    """A DB subnet group in a new VPC ``<prefix>.0.0/16``; (its name, the app group, the db group)."""
    _, subnets, app_sg, db_sg = vpc_with_app_and_db_groups(ec2, prefix)
    name = ident("sng")
    rds.create_db_subnet_group(DBSubnetGroupName=name, DBSubnetGroupDescription="two zones", SubnetIds=subnets)
    return name, app_sg, db_sg


def test_an_instance_in_a_translated_vpc_listens_on_the_loopback_address_of_its_private_address(srv: Server) -> None:
    rds, ec2 = srv.client("rds"), srv.client("ec2")
    group, _, db_sg = _subnet_group(rds, ec2, "10.0")
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.1.0/24"}]}])
    db = create_db(rds, prefix="addr7", DBSubnetGroupName=group, VpcSecurityGroupIds=[db_sg])
    try:
        host, port = listening(rds, db.instance_id)
        assert host.startswith("127.10.") and port == 5432
        eni = interface_at(ec2, vpc_address(host))
        assert eni["PrivateIpAddress"].startswith("10.0.") and eni["Groups"][0]["GroupId"] == db_sg
        assert wait_probe(host, port, "127.10.1.9", "ok") >= 0  # 10.0.1.9: admitted by CIDR
        assert probe(host, port, "127.10.3.9", timeout=1.0) == "timeout"  # 10.0.3.9: not
    finally:
        delete_db(rds, db)


def test_a_vpc_no_translation_covers_gets_a_loopback_range_of_its_own(srv: Server) -> None:
    rds, ec2 = srv.client("rds"), srv.client("ec2")
    group, _, db_sg = _subnet_group(rds, ec2, "10.77")
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.77.1.0/24"}]}])
    db = create_db(rds, prefix="addr8", DBSubnetGroupName=group, VpcSecurityGroupIds=[db_sg])
    try:
        host, port = listening(rds, db.instance_id)
        a, b, c, d = (int(x) for x in host.split("."))
        assert a == 127 and b not in (0, 10) and port == 5432
        found = ec2.describe_network_interfaces(
            Filters=[{"Name": "requester-id", "Values": ["amazon-rds"]},
                     {"Name": "addresses.private-ip-address", "Values": [f"10.77.{c}.{d}"]}])["NetworkInterfaces"]
        assert len(found) == 1
        # client addresses in the range are hosts of the VPC too: 127.<b>.1.9 is 10.77.1.9
        assert wait_probe(host, port, f"127.{b}.1.9", "ok") >= 0
        assert probe(host, port, f"127.{b}.3.9", timeout=1.0) == "timeout"
    finally:
        delete_db(rds, db)


def test_names_resolve_and_iam_tokens_are_good_for_the_endpoint_names(srv: Server) -> None:
    rds = srv.client("rds")
    db = create_db(rds, prefix="addr9", EnableIAMDatabaseAuthentication=True)
    try:
        reader = add_instance(rds, db.cluster_id)
        cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
        writer_name = rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)["DBInstances"][0]["Endpoint"][
            "Address"]
        reader_name = rds.describe_db_instances(DBInstanceIdentifier=reader)["DBInstances"][0]["Endpoint"]["Address"]
        ident = writer_name.split(".")[1]
        assert writer_name == f"{db.instance_id}.{ident}.us-east-1.rds.amazonaws.com"
        assert cluster["Endpoint"] == f"{db.cluster_id}.cluster-{ident}.us-east-1.rds.amazonaws.com"
        assert cluster["ReaderEndpoint"] == f"{db.cluster_id}.cluster-ro-{ident}.us-east-1.rds.amazonaws.com"
        # the cluster endpoint is the writer's address, the reader endpoint the reader's
        assert socket.gethostbyname(cluster["Endpoint"]) == listening(rds, db.instance_id)[0]
        assert socket.gethostbyname(cluster["ReaderEndpoint"]) == listening(rds, reader)[0]
        bundle = str(srv.data_dir / "tls" / "rds-ca-bundle.pem")
        with login(cluster["Endpoint"], 5432, sslmode="verify-full", sslrootcert=bundle) as conn:
            conn.execute("CREATE USER iamuser")
            conn.execute("GRANT rds_iam TO iamuser")

        def iam_login(host: str, signed_for: str) -> None:
            token = rds.generate_db_auth_token(DBHostname=signed_for, Port=5432, DBUsername="iamuser",
                                               Region="us-east-1")
            with psycopg.connect(host=host, port=5432, user="iamuser", password=token, dbname="appdb",
                                 sslmode="verify-full", sslrootcert=bundle, connect_timeout=10) as conn:
                assert conn.execute("SELECT current_user").fetchone() == ("iamuser",)

        for name in (cluster["Endpoint"], writer_name, cluster["ReaderEndpoint"]):
            iam_login(writer_name, name)
        iam_login(reader_name, reader_name)
        iam_login(reader_name, cluster["ReaderEndpoint"])
        refused = 'PAM authentication failed for user "iamuser"'
        with pytest.raises(psycopg.OperationalError, match=refused):  # the writer's name is not the reader's
            iam_login(reader_name, writer_name)
        with pytest.raises(psycopg.OperationalError, match=refused):  # the cluster endpoint is the writer's
            iam_login(reader_name, cluster["Endpoint"])
    finally:
        delete_db(rds, db)


def test_addresses_and_loopback_ranges_survive_a_restart(base: Path) -> None:
    key, secret = new_root_key()
    data = base / "data"
    server = start_server(data, access_key=key, secret_key=secret, account="210987654322")
    try:
        rds, ec2 = server.client("rds"), server.client("ec2")
        group, _, db_sg = _subnet_group(rds, ec2, "10.78")
        ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.78.1.0/24"}]}])
        in_vpc = create_db(rds, prefix="addr10", DBSubnetGroupName=group, VpcSecurityGroupIds=[db_sg])
        default = create_db(rds, prefix="addr11")
        before = {i: listening(rds, i) for i in (in_vpc.instance_id, default.instance_id)}
        stop_server(server)
        server = start_server(data, access_key=key, secret_key=secret, account="210987654322",
                              port=int(server.url.rsplit(":", 1)[1]))
        rds = server.client("rds")
        for instance in before:
            rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=instance, WaiterConfig=FAST)
        assert {i: listening(rds, i) for i in before} == before
        host, port = before[in_vpc.instance_id]
        b = host.split(".")[1]
        assert wait_probe(host, port, f"127.{b}.1.9", "ok") >= 0  # the range still stands for 10.78
        with login(*before[default.instance_id]):
            pass
    finally:
        stop_server(server)


def test_a_token_signed_for_localhost_is_not_good_at_every_cluster(srv: Server) -> None:
    """Every endpoint listens on port 5432 of an address of its own, so ``localhost:5432`` names none of
    them: a token signed for it would otherwise be replayable at every cluster of the account."""
    rds = srv.client("rds")
    db = create_db(rds, prefix="addr11", EnableIAMDatabaseAuthentication=True)
    try:
        bundle = str(srv.data_dir / "tls" / "rds-ca-bundle.pem")
        with login(db.host, 5432, sslmode="verify-full", sslrootcert=bundle) as conn:
            conn.execute("CREATE USER iamuser")
            conn.execute("GRANT rds_iam TO iamuser")

        def iam_login(signed_for: str) -> None:
            token = rds.generate_db_auth_token(DBHostname=signed_for, Port=5432, DBUsername="iamuser",
                                               Region="us-east-1")
            with psycopg.connect(host=db.host, port=5432, user="iamuser", password=token, dbname="appdb",
                                 sslmode="verify-full", sslrootcert=bundle, connect_timeout=10) as conn:
                assert conn.execute("SELECT current_user").fetchone() == ("iamuser",)

        iam_login(db.host)  # the endpoint's own name
        with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "iamuser"'):
            iam_login("localhost")
    finally:
        delete_db(rds, db)


def test_a_token_signed_for_a_custom_endpoint_name_logs_in_there(srv: Server) -> None:
    """A driver signs its token for the name it connects to: a custom endpoint's name is one of the
    cluster's, good at the instances it leads to; another cluster's custom endpoint name is not."""
    rds = srv.client("rds")
    db = create_db(rds, prefix="addr12", EnableIAMDatabaseAuthentication=True)
    other = create_db(rds, prefix="addr13", EnableIAMDatabaseAuthentication=True)
    try:
        bundle = str(srv.data_dir / "tls" / "rds-ca-bundle.pem")
        with login(db.host, 5432, sslmode="verify-full", sslrootcert=bundle) as conn:
            conn.execute("CREATE USER iamuser")
            conn.execute("GRANT rds_iam TO iamuser")
        names = {}
        for cluster, ep in ((db, "mine12"), (other, "theirs13")):
            rds.create_db_cluster_endpoint(DBClusterIdentifier=cluster.cluster_id, DBClusterEndpointIdentifier=ep,
                                           EndpointType="ANY", StaticMembers=[cluster.instance_id])
            names[ep] = until(lambda ep=ep: next(  # type: ignore[misc]
                (e["Endpoint"] for e in rds.describe_db_cluster_endpoints(DBClusterEndpointIdentifier=ep)[
                    "DBClusterEndpoints"] if e["Status"] == "available"), None), timeout=30, what=ep)
        host = until(lambda: socket.gethostbyname(names["mine12"]), timeout=10, what="the custom name")
        assert host == socket.gethostbyname(db.host)

        def iam_login(signed_for: str) -> None:
            token = rds.generate_db_auth_token(DBHostname=signed_for, Port=5432, DBUsername="iamuser",
                                               Region="us-east-1")
            with psycopg.connect(host=names["mine12"], port=5432, user="iamuser", password=token, dbname="appdb",
                                 sslmode="verify-full", sslrootcert=bundle, connect_timeout=10) as conn:
                assert conn.execute("SELECT current_user").fetchone() == ("iamuser",)

        iam_login(names["mine12"])
        with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "iamuser"'):
            iam_login(names["theirs13"])
    finally:
        for ep in ("mine12", "theirs13"):
            with contextlib.suppress(Exception):
                rds.delete_db_cluster_endpoint(DBClusterEndpointIdentifier=ep)
        delete_db(rds, db)
        delete_db(rds, other)

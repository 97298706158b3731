"""Network security between real hosts: two network namespaces, each a host on its own veth link to
this machine, with no address translation at all. The endpoint listens on this machine's end of the
first link (``AURORAL_ENDPOINT_HOST``); unmodified ``psql`` runs inside the namespaces
(``ip netns exec``), so the gateway sees each host's own address as the TCP peer.

    host A  10.231.1.10/24 ──veth── 10.231.1.1  (this machine; the endpoint)   subnet A of the VPC
    host B  10.231.2.10/24 ──veth── 10.231.2.1  (route to 10.231.1.1 via it)   subnet B of the VPC

The database security group admits subnet A by CIDR; host B gets in only once it is a network
interface carrying the application security group that the database group admits.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ..conftest import Server, new_root_key, server_tmpdir, start_server, stop_server
from .e2e_helpers import FAST, MASTER, PASSWORD, ident
from .net_helpers import vpc_with_app_and_db_groups

HOST_A, HOST_B, ENDPOINT_HOST = "10.231.1.10", "10.231.2.10", "10.231.1.1"


@dataclass
class Hosts:
    a: str  # namespace names
    b: str

    def psql(self, ns: str, conninfo: str, sql: str, *, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, "psql", conninfo, "-XAtc", sql], capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, "PGPASSWORD": PASSWORD,
                                                               "PGCONNECT_TIMEOUT": "3"})


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs root and iproute2 (ip netns)")
    tag = f"au{os.getpid() % 100000}"
    ns = Hosts(f"{tag}a", f"{tag}b")
    links = [(ns.a, f"{tag}a0", "10.231.1.1/24", "10.231.1.10/24", "10.231.1.1"),
             (ns.b, f"{tag}b0", "10.231.2.1/24", "10.231.2.10/24", "10.231.2.1")]
    try:
        for name, link, mine, theirs, via in links:
            _ip("netns", "add", name)
            _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", name)
            _ip("addr", "add", mine, "dev", link)
            _ip("link", "set", link, "up")
            _ip("-n", name, "addr", "add", theirs, "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
            _ip("-n", name, "link", "set", "lo", "up")
            _ip("-n", name, "route", "add", "default", "via", via)
    except subprocess.CalledProcessError as exc:
        for name, link, *_ in links:
            subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        pytest.skip(f"network namespaces are not available here: {exc.stderr.decode().strip()}")
    try:
        yield ns
    finally:
        for name, link, *_ in links:
            subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@dataclass
class Db:
    server: Server
    rds: Any
    ec2: Any
    subnets: list[str]
    app_sg: str
    db_sg: str
    port: int
    host: str  # the cluster endpoint's name

    def conninfo(self, sslmode: str = "verify-full") -> str:
        bundle = self.server.data_dir / "tls" / "rds-ca-bundle.pem"
        return (f"host={self.host} port={self.port} user={MASTER} dbname=appdb sslmode={sslmode} "
                f"sslrootcert={bundle}")

    def flows(self, action: str) -> list[dict[str, Any]]:
        out = subprocess.run(
            [sys.executable, "-m", "auroral.cli", "flows", "--data-dir", str(self.server.data_dir), "--json",
             "--action", action, "--limit", "1000"], capture_output=True, text=True, check=True, timeout=30)
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def db(hosts: Hosts) -> Iterator[Db]:
    key, secret = new_root_key()
    base = server_tmpdir()
    server = start_server(base / "data", access_key=key, secret_key=secret, account="310987654321",
                          extra_env={"AURORAL_ENDPOINT_HOST": ENDPOINT_HOST})
    try:
        ec2, rds = server.client("ec2"), server.client("rds")
        _, subnets, app_sg, db_sg = vpc_with_app_and_db_groups(ec2, "10.231")
        ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.231.1.0/24"}]}])
        rds.create_db_subnet_group(DBSubnetGroupName="hosts", DBSubnetGroupDescription="two hosts",
                                   SubnetIds=subnets)
        cluster, instance = ident("ns"), ident("ns-i")
        rds.create_db_cluster(DBClusterIdentifier=cluster, Engine="aurora-postgresql", EngineVersion="16.4",
                              MasterUsername=MASTER, MasterUserPassword=PASSWORD, DatabaseName="appdb",
                              DBSubnetGroupName="hosts", VpcSecurityGroupIds=[db_sg])
        rds.create_db_instance(DBInstanceIdentifier=instance, DBClusterIdentifier=cluster,
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=instance, WaiterConfig=FAST)
        found = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
        # the cluster endpoint's name resolves (the hosts block) to the one shared endpoint address
        assert found["Endpoint"].startswith(f"{cluster}.cluster-")
        assert socket.gethostbyname(found["Endpoint"]) == ENDPOINT_HOST
        yield Db(server, rds, ec2, subnets, app_sg, db_sg, int(found["Port"]), str(found["Endpoint"]))
    finally:
        stop_server(server)
        shutil.rmtree(base, ignore_errors=True)


def test_a_host_in_the_admitted_subnet_logs_in_with_verify_full(hosts: Hosts, db: Db) -> None:
    out = hosts.psql(hosts.a, db.conninfo(), "SELECT current_user")
    assert out.returncode == 0 and out.stdout.strip() == MASTER, out.stderr
    accepts = [f for f in db.flows("ACCEPT") if f["srcaddr"] == HOST_A]
    assert accepts and accepts[-1]["dstport"] == 5432


def test_the_server_sees_the_real_client_address_and_its_tls(hosts: Hosts, db: Db) -> None:
    """What PostgreSQL reports of the client (inet_client_addr, pg_stat_activity, pg_stat_ssl) is the
    host's own address and the TLS the gateway terminated, as on Aurora; a client cannot claim
    another address through the setting the gateway uses."""
    sql = ("SELECT inet_client_addr(), a.client_addr, a.client_port = inet_client_port(), s.ssl, s.version, "
           "s.bits > 0 FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE pid = pg_backend_pid()")
    out = hosts.psql(hosts.a, db.conninfo() + " options='-c auroral.client=203.0.113.9'", sql)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{HOST_A}|{HOST_A}|t|t|TLSv1.3|t"


def test_force_ssl_names_the_real_client_address(hosts: Hosts, db: Db) -> None:
    out = hosts.psql(hosts.a, db.conninfo("disable"), "SELECT 1")
    assert out.returncode != 0
    assert (f'no pg_hba.conf entry for host "{HOST_A}", user "{MASTER}", database "appdb", no encryption'
            in out.stderr), out.stderr


def test_a_host_outside_the_rules_times_out_until_its_interface_carries_the_app_group(hosts: Hosts, db: Db) -> None:
    started = time.monotonic()
    out = hosts.psql(hosts.b, db.conninfo(), "SELECT 1")
    assert out.returncode != 0 and "timeout expired" in out.stderr, out.stderr
    assert time.monotonic() - started >= 2.5  # its SYN dropped, as a security group drops it
    rejects = [f for f in db.flows("REJECT") if f["srcaddr"] == HOST_B]
    assert rejects and "10.231.2.10" in json.dumps(rejects[-1])
    # the SYN seen on the link's interface (not lo): one record for it and its retransmissions
    assert (rejects[-1]["packets"], rejects[-1]["dstaddr"]) == (1, ENDPOINT_HOST)
    db.ec2.authorize_security_group_ingress(GroupId=db.db_sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": db.app_sg}]}])
    out = hosts.psql(hosts.b, db.conninfo(), "SELECT 1")
    assert out.returncode != 0, "host B has no network interface with the app group yet"
    eni = db.ec2.create_network_interface(SubnetId=db.subnets[1], PrivateIpAddress=HOST_B,
                                          Groups=[db.app_sg])["NetworkInterface"]["NetworkInterfaceId"]
    out = hosts.psql(hosts.b, db.conninfo(), "SELECT current_user")
    assert out.returncode == 0 and out.stdout.strip() == MASTER, out.stderr
    accepts = [f for f in db.flows("ACCEPT") if f["srcaddr"] == HOST_B]
    assert accepts and accepts[-1]["interface-id"] == eni

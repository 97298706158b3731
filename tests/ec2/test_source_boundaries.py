"""``Network.source_boundaries``: between two consecutive boundaries ``decide`` gives one verdict, so the
listener's kernel filter compiled from one ``decide`` per interval agrees with ``decide`` on every source
address — checked on random addresses, on every boundary and its neighbours, and through the filter program
itself (the test interpreter), over a network with everything ``decide`` reads: VPC CIDRs, subnets,
security-group CIDRs (overlapping, /32, /0, other ports, IPv6), group references resolved through network
interfaces, VPN routes, an internet gateway, and translations (overlapping ones, first match wins)."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import random
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auroral.ec2.network import Network
from auroral.gateway.decision import SourceSpace, Verdict
from auroral.gateway.synfilter import SourcePlan, compile_plan
from tests.gateway.bpf_interp import listener_keeps

from .conftest import ACCOUNT, Env

TRANSLATION = ("127.10.0.0/16=10.0.0.0/16,127.10.5.0/24=192.168.50.0/24,127.20.0.0/24=203.0.113.0/24,"
               "127.30.0.0/24=192.168.50.0/24,127.0.0.0/16=172.31.0.0/16,10.9.0.0/16=10.0.0.0/16")


@dataclass
class World:
    env: Env
    network: Network
    vpc: str
    groups: dict[str, str]
    igw: str

    def decide(self, source: str, groups: list[str], public: bool) -> Any:
        return self.network.decide(ACCOUNT, vpc_id=self.vpc, security_group_ids=[self.groups[g] for g in groups],
                                   publicly_accessible=public, client_ip=self.network.translate(source), port=5432)

    def plan(self, groups: list[str], public: bool) -> SourcePlan:
        ids = [self.groups[g] for g in groups]
        bounds = self.network.source_boundaries(ACCOUNT, vpc_id=self.vpc, security_group_ids=ids)

        def verdict(source: str) -> Verdict:
            decision = self.decide(source, groups, public)
            return Verdict(decision.allow, decision.reason)

        return asyncio.run(compile_plan(SourceSpace(frozenset(bounds)), verdict, limit=10**6))


@pytest.fixture
def world(env: Env) -> World:
    call = env.call
    vpc = call("CreateVpc", CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [call("CreateSubnet", VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    groups = {name: call("CreateSecurityGroup", GroupName=name, Description=name, VpcId=vpc)["GroupId"]
              for name in ("app", "db", "wide", "other")}
    tcp = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432}

    def rule(group: str, **perm: Any) -> None:
        call("AuthorizeSecurityGroupIngress", GroupId=groups[group], IpPermissions=[{**tcp, **perm}])

    rule("db", IpRanges=[{"CidrIp": "10.0.2.0/25"}, {"CidrIp": "10.0.2.64/26"}, {"CidrIp": "10.0.1.77/32"},
                         {"CidrIp": "192.168.50.128/25"}, {"CidrIp": "203.0.113.8/29"}])
    rule("db", UserIdGroupPairs=[{"GroupId": groups["app"]}])
    rule("db", Ipv6Ranges=[{"CidrIpv6": "2001:db8::/32"}])
    call("AuthorizeSecurityGroupIngress", GroupId=groups["db"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 6000, "ToPort": 6000, "IpRanges": [{"CidrIp": "10.0.1.0/24"}]}])
    rule("wide", IpRanges=[{"CidrIp": "0.0.0.0/0"}])
    rule("other", IpRanges=[{"CidrIp": "172.31.0.0/20"}])
    for address, group in (("10.0.1.50", "app"), ("10.0.1.51", "app"), ("10.0.2.200", "app"), ("10.0.1.52", "other")):
        subnet = subnets[0] if address.startswith("10.0.1.") else subnets[1]
        call("CreateNetworkInterface", SubnetId=subnet, PrivateIpAddress=address, Groups=[groups[group]])
    cgw = call("CreateCustomerGateway", Type="ipsec.1", BgpAsn=65000, IpAddress="198.51.100.1")
    vgw = call("CreateVpnGateway", Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    call("AttachVpnGateway", VpnGatewayId=vgw, VpcId=vpc)
    vpn = call("CreateVpnConnection", Type="ipsec.1", CustomerGatewayId=cgw["CustomerGateway"]["CustomerGatewayId"],
               VpnGatewayId=vgw, Options={"StaticRoutesOnly": True})["VpnConnection"]["VpnConnectionId"]
    call("CreateVpnConnectionRoute", VpnConnectionId=vpn, DestinationCidrBlock="192.168.50.0/24")
    igw = call("CreateInternetGateway")["InternetGateway"]["InternetGatewayId"]
    call("AttachInternetGateway", InternetGatewayId=igw, VpcId=vpc)
    return World(env, Network(env.service.state, TRANSLATION), vpc, groups, igw)


CASES = [(["db"], False), (["db"], True), (["db", "other"], False), (["wide"], False), (["wide"], True),
         (["app"], False)]


# The world's own edges (written out here, not taken from source_boundaries): CIDR ends and interfaces.
ANCHORS = ["10.0.0.0", "10.1.0.0", "10.0.2.0", "10.0.2.128", "10.0.2.64", "10.0.1.77", "10.0.1.78",
           "192.168.50.128", "192.168.51.0", "192.168.50.0", "203.0.113.8", "203.0.113.16", "172.31.0.0",
           "172.31.16.0", "10.0.1.50", "10.0.1.51", "10.0.1.52", "10.0.1.53", "10.0.2.200", "10.0.2.201"]


def _anchored() -> list[int]:
    """Each anchor and its neighbours, as they are and through every translation that reaches them."""
    pairs = [(ipaddress.ip_network(a), ipaddress.ip_network(b)) for a, b in
             (part.split("=") for part in TRANSLATION.split(","))]
    out: list[int] = []
    for anchor in map(ipaddress.IPv4Address, ANCHORS):
        seen = [int(anchor)] + [int(src.network_address) + int(anchor) - int(dst.network_address)
                                for src, dst in pairs if anchor in dst]
        out += [a + d for a in seen for d in (-1, 0, 1)]
    return out


def _interesting(plan: SourcePlan) -> list[int]:
    out = [0, (1 << 32) - 1]
    for start in plan.starts:
        out += [a for a in (start - 1, start, start + 1) if 0 <= a < 1 << 32]
    return out


@pytest.mark.parametrize(("groups", "public"), CASES)
def test_the_plan_agrees_with_decide_on_every_boundary_and_random_addresses(world: World, groups: list[str],
                                                                            public: bool) -> None:
    plan = world.plan(groups, public)
    program = plan.program()
    rnd = random.Random(f"{groups}{public}")
    near = [int(ipaddress.IPv4Address(a)) for a in ("127.10.0.0", "127.20.0.0", "127.30.0.0", "127.0.0.0",
                                                     "10.9.0.0", "10.0.0.0", "192.168.50.0", "203.0.113.0")]
    addresses = _interesting(plan) + _anchored() + [rnd.randrange(1 << 32) for _ in range(300)] + [
        base + rnd.randrange(1 << 16) for base in near for _ in range(60)]
    for address in addresses:
        source = str(ipaddress.IPv4Address(address))
        allowed = world.decide(source, groups, public).allow
        assert plan.keeps(address) == allowed, source
        assert listener_keeps(program, address) == allowed, source


def test_what_the_plan_admits(world: World) -> None:
    """A readable sample of the same plans, to see that they are not trivially right."""
    plan = world.plan(["db"], False)
    admitted = {a: plan.keeps(int(ipaddress.IPv4Address(a))) for a in (
        "127.10.1.50", "127.10.1.51", "127.10.1.52", "127.10.1.77", "127.10.1.78", "127.10.2.0", "127.10.2.127",
        "127.10.2.128", "127.10.2.200", "10.9.1.50", "127.30.0.128", "127.30.0.127", "127.10.5.200",
        "127.20.0.9", "127.0.0.1", "10.0.1.50")}
    assert admitted == {
        "127.10.1.50": True, "127.10.1.51": True, "127.10.1.52": False,  # app's interfaces, not other's
        "127.10.1.77": True, "127.10.1.78": False, "127.10.2.0": True, "127.10.2.127": True,
        "127.10.2.128": False, "127.10.2.200": True,  # an app interface outside the CIDRs
        "10.9.1.50": True,  # another translation onto the same interface
        "127.30.0.128": True, "127.30.0.127": False,  # the VPN route, and the rule's half of it
        "127.10.5.200": False,  # 127.10.0.0/16 matches first: 10.0.5.200, not the VPN's 192.168.50.200
        "127.20.0.9": False,  # not public
        "127.0.0.1": False,  # another VPC
        "10.0.1.50": True,  # untranslated, but 10.0.1.50 is the interface (a local client could bind it)
    }
    assert world.plan(["db"], True).keeps(int(ipaddress.IPv4Address("127.20.0.9")))


_names = itertools.count()


# The env is shared by the examples on purpose: each adds a group of its own (and the state grows).
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cidrs=st.lists(st.tuples(st.integers(0, (1 << 32) - 1), st.integers(0, 32)), min_size=1, max_size=6),
       seed=st.integers(0, 1000))
def test_random_rules(env: Env, cidrs: list[tuple[int, int]], seed: int) -> None:
    """Random rule CIDRs anywhere (a fresh group each time): still one verdict per interval."""
    network = Network(env.service.state, TRANSLATION)
    vpc = network.default_vpc(ACCOUNT).id
    group = env.call("CreateSecurityGroup", GroupName=f"random-{next(_names)}", Description="random",
                     VpcId=vpc)["GroupId"]
    nets = dict.fromkeys(str(ipaddress.ip_network((address, prefix), strict=False)) for address, prefix in cidrs)
    ranges = [{"CidrIp": net} for net in nets]
    env.call("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": ranges}])

    def decide(source: str) -> bool:
        return network.decide(ACCOUNT, vpc_id=vpc, security_group_ids=[group], publicly_accessible=True,
                              client_ip=network.translate(source), port=5432).allow

    bounds = network.source_boundaries(ACCOUNT, vpc_id=vpc, security_group_ids=[group])
    plan = asyncio.run(compile_plan(SourceSpace(frozenset(bounds)), lambda s: Verdict(decide(s), "")))
    rnd = random.Random(seed)
    for address in _interesting(plan) + [rnd.randrange(1 << 32) for _ in range(100)]:
        assert plan.keeps(address) == decide(str(ipaddress.IPv4Address(address)))

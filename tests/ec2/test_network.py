"""``Network.decide``: reachability and security groups, as tables over one small network.

    vpc 10.0.0.0/16 (subnet 10.0.1.0/24)      eni 10.0.1.50 carries "app"
    db:    tcp 5432 from 10.0.0.0/16, tcp 5432 from group app, tcp 5432 from 2001:db8::/32
    range: tcp 5000-6000 from 192.168.7.0/24  all:   -1 from 172.16.0.0/12   udp: udp 5432 from 0.0.0.0/0
    VPN (static route 192.168.0.0/16) through a virtual private gateway attached to the VPC
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from auroral.ec2.network import Network, parse_translation

from .conftest import ACCOUNT, Env


@dataclass
class Net:
    env: Env
    vpc: str
    groups: dict[str, str]
    rules: dict[str, str]
    eni: str
    vpn: str

    @property
    def network(self) -> Network:
        return self.env.service.network

    def decide(self, ip: str, groups: list[str], *, public: bool = False, port: int = 5432) -> Any:
        return self.network.decide(ACCOUNT, vpc_id=self.vpc, security_group_ids=[self.groups[g] for g in groups],
                                   publicly_accessible=public, client_ip=ip, port=port)


def _rule(env: Env, group: str, perm: dict[str, Any]) -> str:
    out = env.call("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[perm])
    return str(out["SecurityGroupRules"][0]["SecurityGroupRuleId"])


@pytest.fixture
def net(env: Env) -> Net:
    vpc = env.call("CreateVpc", CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = env.call("CreateSubnet", VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    groups = {name: env.call("CreateSecurityGroup", GroupName=name, Description=name, VpcId=vpc)["GroupId"]
              for name in ("app", "db", "range", "all", "udp", "empty")}
    tcp = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432}
    rules = {
        "db-cidr": _rule(env, groups["db"], {**tcp, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}),
        "db-app": _rule(env, groups["db"], {**tcp, "UserIdGroupPairs": [{"GroupId": groups["app"]}]}),
        "db-v6": _rule(env, groups["db"], {**tcp, "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]}),
        "range": _rule(env, groups["range"], {"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 6000,
                                              "IpRanges": [{"CidrIp": "192.168.7.0/24"}]}),
        "all": _rule(env, groups["all"], {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "172.16.0.0/12"}]}),
        "udp": _rule(env, groups["udp"], {"IpProtocol": "udp", "FromPort": 5432, "ToPort": 5432,
                                          "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}),
    }
    eni = env.call("CreateNetworkInterface", SubnetId=subnet, PrivateIpAddress="10.0.1.50",
                   Groups=[groups["app"]])["NetworkInterface"]["NetworkInterfaceId"]
    cgw = env.call("CreateCustomerGateway", Type="ipsec.1", BgpAsn=65000, IpAddress="198.51.100.1")
    vgw = env.call("CreateVpnGateway", Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    env.call("AttachVpnGateway", VpnGatewayId=vgw, VpcId=vpc)
    vpn = env.call("CreateVpnConnection", Type="ipsec.1", CustomerGatewayId=cgw["CustomerGateway"][
        "CustomerGatewayId"], VpnGatewayId=vgw, Options={"StaticRoutesOnly": True})["VpnConnection"]["VpnConnectionId"]
    env.call("CreateVpnConnectionRoute", VpnConnectionId=vpn, DestinationCidrBlock="192.168.0.0/16")
    return Net(env, vpc, groups, rules, eni, vpn)


ALLOW_TABLE = [
    # ip, groups, public, port, rule that admits
    ("10.0.3.3", ["db"], False, 5432, "db-cidr"),  # CIDR
    ("10.0.1.50", ["app", "db"], False, 5432, "db-cidr"),  # first matching rule wins
    ("192.168.7.9", ["range"], False, 5000, "range"),  # VPN route + port range, low edge
    ("192.168.7.9", ["range"], False, 6000, "range"),  # high edge
    ("172.20.1.1", ["all"], True, 5432, None),  # protocol -1, public through the IGW (added in the test)
    ("192.168.7.9", ["empty", "range"], False, 5555, "range"),  # union of groups
]


@pytest.mark.parametrize(("ip", "groups", "public", "port", "rule"), ALLOW_TABLE)
def test_admitted(net: Net, ip: str, groups: list[str], public: bool, port: int, rule: str | None) -> None:
    if public:
        igw = net.env.call("CreateInternetGateway")["InternetGateway"]["InternetGatewayId"]
        net.env.call("AttachInternetGateway", InternetGatewayId=igw, VpcId=net.vpc)
    decision = net.decide(ip, groups, public=public, port=port)
    assert decision.allow, decision.reason
    expected = net.rules[rule] if rule else net.rules["all"]
    assert decision.rule == expected
    assert decision.reason.startswith("sg-") and f" {expected}: " in decision.reason


DENY_TABLE = [
    ("10.0.3.3", ["db"], False, 5433, "no rule of {db} admits tcp 5433 from 10.0.3.3"),  # port
    ("10.0.3.3", ["range"], False, 5432, "no rule of {range} admits tcp 5432 from 10.0.3.3"),  # wrong CIDR
    ("10.0.3.3", ["udp"], False, 5432, "no rule of {udp} admits tcp 5432 from 10.0.3.3"),  # udp is not tcp
    ("192.168.7.9", ["range"], False, 4999, "no rule of {range} admits tcp 4999 from 192.168.7.9"),
    ("203.0.113.9", ["db"], False, 5432,
     "not routable: 203.0.113.9 is outside {vpc} and no VPN route covers it (instance not publicly accessible)"),
    ("203.0.113.9", ["all"], True, 5432,
     "not routable: 203.0.113.9 is outside {vpc} and no VPN route covers it "
     "(publicly accessible, but {vpc} has no internet gateway)"),
    ("2001:db8::1", ["db"], False, 5432,
     "not routable: 2001:db8::1 is outside {vpc} and no VPN route covers it (instance not publicly accessible)"),
]


@pytest.mark.parametrize(("ip", "groups", "public", "port", "reason"), DENY_TABLE)
def test_denied(net: Net, ip: str, groups: list[str], public: bool, port: int, reason: str) -> None:
    decision = net.decide(ip, groups, public=public, port=port)
    assert not decision.allow
    names = {name: net.groups[name] for name in net.groups}
    assert decision.reason == reason.format(vpc=net.vpc, **names)
    assert decision.rule is None


def test_referenced_group_via_interface(net: Net) -> None:
    net.env.call("RevokeSecurityGroupIngress", GroupId=net.groups["db"], SecurityGroupRuleIds=[net.rules["db-cidr"]])
    inside = net.decide("10.0.1.50", ["db"])
    assert inside.allow and inside.rule == net.rules["db-app"] and inside.interface_id == net.eni
    assert inside.reason == (f"{net.groups['db']} {net.rules['db-app']}: tcp 5432 from {net.groups['app']} "
                             f"({net.eni})")
    # another address in the subnet carries no group
    assert not net.decide("10.0.1.51", ["db"]).allow
    # the interface loses the group: denied at once
    version = net.network.version
    net.env.call("ModifyNetworkInterfaceAttribute", NetworkInterfaceId=net.eni, Groups=[net.groups["empty"]])
    assert net.network.version > version
    assert not net.decide("10.0.1.50", ["db"]).allow


def test_vpn_route_needs_attached_gateway_and_route(net: Net) -> None:
    assert net.decide("192.168.7.9", ["range"], port=5500).allow
    net.env.call("DeleteVpnConnectionRoute", VpnConnectionId=net.vpn, DestinationCidrBlock="192.168.0.0/16")
    assert net.decide("192.168.7.9", ["range"], port=5500).reason.startswith("not routable")


def test_public_with_internet_gateway_and_ipv6(net: Net) -> None:
    assert not net.decide("2001:db8::1", ["db"], public=True).allow  # no internet gateway yet
    igw = net.env.call("CreateInternetGateway")["InternetGateway"]["InternetGatewayId"]
    net.env.call("AttachInternetGateway", InternetGatewayId=igw, VpcId=net.vpc)
    assert net.network.has_internet_gateway(ACCOUNT, net.vpc)
    v6 = net.decide("2001:db8::1", ["db"], public=True)
    assert v6.allow and v6.rule == net.rules["db-v6"]
    assert not net.decide("2001:db9::1", ["db"], public=True).allow
    # public access does not open a non-public instance
    assert not net.decide("203.0.113.9", ["all"], public=False).allow
    # IPv4-mapped IPv6 peers (dual-stack sockets) are their IPv4 address
    assert net.decide("::ffff:10.0.3.3", ["db"]).allow


def test_translation_and_lookups(net: Net) -> None:
    network = net.network
    assert network.translate("127.10.1.50") == "10.0.1.50"
    assert network.translate("127.0.0.1") == "127.0.0.1"
    decision = net.decide(network.translate("127.10.3.3"), ["db"])
    assert decision.allow and decision.rule == net.rules["db-cidr"]
    assert not net.decide("127.10.3.3", ["db"]).allow  # untranslated loopback is outside the VPC
    assert Network(net.env.service.state, "").translate("127.10.1.50") == "127.10.1.50"
    assert parse_translation("127.10.0.0/16=10.0.0.0/16, 127.20.0.0/24->192.168.0.0/24")[1][1].prefixlen == 24
    with pytest.raises(ValueError):
        parse_translation("127.10.0.0/16=10.0.0.0/24")
    assert network.security_group_exists(ACCOUNT, net.groups["db"])
    assert not network.security_group_exists(ACCOUNT, "sg-00000000000000000")
    assert network.vpc_of_group(ACCOUNT, net.groups["db"]) == net.vpc
    default_vpc = network.default_vpc(ACCOUNT)
    assert default_vpc.cidr == "172.31.0.0/16" and network.has_internet_gateway(ACCOUNT, default_vpc.id)
    assert network.default_security_group(ACCOUNT, net.vpc).startswith("sg-")


def test_default_group_admits_its_members(net: Net) -> None:
    default = net.network.default_security_group(ACCOUNT, net.vpc)
    subnet = net.env.call("DescribeSubnets", Filters=[{"Name": "vpc-id", "Values": [net.vpc]}])["Subnets"][0]
    net.env.call("CreateNetworkInterface", SubnetId=subnet["SubnetId"], PrivateIpAddress="10.0.1.60")
    decision = net.network.decide(ACCOUNT, vpc_id=net.vpc, security_group_ids=[default], publicly_accessible=False,
                                  client_ip="10.0.1.60", port=5432)
    assert decision.allow, decision.reason
    assert not net.network.decide(ACCOUNT, vpc_id=net.vpc, security_group_ids=[default],
                                  publicly_accessible=False, client_ip="10.0.1.61", port=5432).allow


def test_state_survives_restart(net: Net, env: Env) -> None:
    from auroral.ec2 import Ec2Service

    again = Ec2Service(env.store, "us-east-1")
    decision = again.network.decide(ACCOUNT, vpc_id=net.vpc, security_group_ids=[net.groups["db"]],
                                    publicly_accessible=False, client_ip="10.0.3.3", port=5432)
    assert decision.allow and decision.rule == net.rules["db-cidr"]
    assert len([v for v in again.state.account(ACCOUNT).items.values() if v.kind == "vpc"]) == 2

"""Requester-managed network interfaces (``ec2/managed.py``) and the reverse of the address translation
(``Network.loopback_of``), on a real store with every output read back by botocore."""

from __future__ import annotations

import ipaddress

import pytest

from auroral.ec2.managed import NoFreeAddress, choose_address, create_managed, managed_by, readdress
from auroral.ec2.model import Subnet

from .conftest import ACCOUNT, Env


def _subnet(env: Env, cidr: str) -> Subnet:
    vpc = env.call("CreateVpc", CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    sid = env.call("CreateSubnet", VpcId=vpc, CidrBlock=cidr, AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    subnet = env.service.state.account(ACCOUNT).get(sid, Subnet)
    assert subnet is not None
    return subnet


def test_a_managed_interface_is_shown_as_rds_shows_it_and_refused_to_the_account(env: Env) -> None:
    subnet = _subnet(env, "10.0.1.0/24")
    group = env.call("DescribeSecurityGroups", Filters=[{"Name": "vpc-id", "Values": [subnet.vpc_id]}])[
        "SecurityGroups"][0]["GroupId"]
    eni = create_managed(env.service.state, ACCOUNT, subnet, [group], attached_to="db-ABC")
    assert managed_by(env.service.state, ACCOUNT, "db-ABC") == eni
    shown = env.call("DescribeNetworkInterfaces", Filters=[{"Name": "requester-managed", "Values": ["true"]}])[
        "NetworkInterfaces"]
    assert [i["NetworkInterfaceId"] for i in shown] == [eni.id]
    out = shown[0]
    assert (out["RequesterManaged"], out["RequesterId"], out["Status"], out["Description"]) == (
        True, "amazon-rds", "in-use", "RDSNetworkInterface")
    assert out["Attachment"]["InstanceOwnerId"] == "amazon-rds" and out["Attachment"]["Status"] == "attached"
    assert [g["GroupId"] for g in out["Groups"]] == [group]
    err = env.fails("DeleteNetworkInterface", NetworkInterfaceId=eni.id)
    assert (err.code, err.message) == ("InvalidParameterValue", f"Network interface '{eni.id}' is currently in use.")
    err = env.fails("ModifyNetworkInterfaceAttribute", NetworkInterfaceId=eni.id, Groups=[group])
    assert err.code == "OperationNotPermitted"
    # an interface of the account's own is not requester-managed
    own = env.call("CreateNetworkInterface", SubnetId=subnet.id)["NetworkInterface"]
    assert own["RequesterManaged"] is False and own["Status"] == "available" and "Attachment" not in own


def test_addresses_are_free_ones_never_reserved_and_readdress_moves(env: Env) -> None:
    subnet = _subnet(env, "10.0.2.0/28")  # 16 addresses, 5 reserved: .4 to .14 usable
    usable = {f"10.0.2.{n}" for n in range(4, 15)}
    state = env.service.state
    made = [create_managed(state, ACCOUNT, subnet, [], attached_to=f"db-{n}") for n in range(10)]
    assert {e.private_ip for e in made} <= usable and len({e.private_ip for e in made}) == 10
    last = (usable - {e.private_ip for e in made}).pop()
    assert choose_address(state, ACCOUNT, subnet) == last
    moved = readdress(state, ACCOUNT, made[0])
    assert moved.private_ip == last and moved.id == made[0].id
    # the address it left is free again: the next interface takes it, and the subnet is full
    assert create_managed(state, ACCOUNT, subnet, [], attached_to="db-last").private_ip == made[0].private_ip
    with pytest.raises(NoFreeAddress):
        readdress(state, ACCOUNT, made[1])
    with pytest.raises(NoFreeAddress):
        create_managed(state, ACCOUNT, subnet, [], attached_to="db-none")


def test_loopback_of_reverses_the_translation_and_added_ranges_apply_both_ways(env: Env) -> None:
    network = env.service.network  # 127.10.0.0/16 = 10.0.0.0/16
    assert network.loopback_of("10.0.1.57") == "127.10.1.57"
    assert network.translate("127.10.1.57") == "10.0.1.57"
    assert network.loopback_of("10.77.1.57") is None
    network.add_translation("127.42.0.0/16", "10.77.0.0/16")
    assert network.loopback_of("10.77.1.57") == "127.42.1.57"
    assert network.translate("127.42.1.57") == "10.77.1.57"
    assert ipaddress.ip_address(network.loopback_of("10.0.0.1") or "").is_loopback

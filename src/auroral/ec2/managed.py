"""Network interfaces that another service makes and manages in the account's VPC (requester-managed).

RDS gives every DB instance one, in a subnet of its DB subnet group: it carries the DB cluster's VPC
security groups, and its private address is where the instance's endpoint is reached. EC2 shows it
(``RequesterManaged``, ``RequesterId`` ``amazon-rds``, ``in-use``) but refuses to delete or modify it
(``ec2/interfaces.py``); it goes when the service removes it.

The private address is chosen at random among the subnet's free ones (never one of the five AWS
reserves: the network address, the next three and the broadcast address), so that several auroral
servers on one machine, whose subnets are the same ranges, rarely pick the same one; a caller that
finds the address taken all the same (its endpoint cannot bind it) asks for another with
:func:`readdress`.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from auroral.ec2.model import NetworkInterface, Subnet, new_id
from auroral.ec2.state import Ec2State

RDS_REQUESTER = "amazon-rds"
RDS_DESCRIPTION = "RDSNetworkInterface"
# Addresses tried at random before the subnet is searched from its start (a nearly full subnet).
_RANDOM_TRIES = 64


class NoFreeAddress(LookupError):
    """The subnet has no free address left (EC2: InsufficientFreeAddressesInSubnet)."""


def _usable_range(subnet: Subnet) -> tuple[int, int]:
    net = ipaddress.IPv4Network(subnet.cidr)
    return int(net.network_address) + 4, int(net.broadcast_address) - 1


def choose_address(state: Ec2State, account: str, subnet: Subnet, avoid: Collection[str] = ()) -> str:
    """A random free private address of ``subnet`` (not reserved, not any interface's, not in ``avoid``)."""
    first, last = _usable_range(subnet)
    if last < first:
        raise NoFreeAddress(subnet.id)
    taken = {i.private_ip for i in state.account(account).all(NetworkInterface) if i.subnet_id == subnet.id}
    taken.update(avoid)
    for _ in range(_RANDOM_TRIES):
        candidate = str(ipaddress.IPv4Address(first + secrets.randbelow(last - first + 1)))
        if candidate not in taken:
            return candidate
    for number in range(first, last + 1):
        candidate = str(ipaddress.IPv4Address(number))
        if candidate not in taken:
            return candidate
    raise NoFreeAddress(subnet.id)


def create_managed(state: Ec2State, account: str, subnet: Subnet, group_ids: Sequence[str], *,
                   attached_to: str, requester: str = RDS_REQUESTER,
                   description: str = RDS_DESCRIPTION) -> NetworkInterface:
    """Make and save a requester-managed interface attached to ``attached_to`` (the service's resource)."""
    eni = NetworkInterface(
        id=new_id("eni"), subnet_id=subnet.id, vpc_id=subnet.vpc_id,
        private_ip=choose_address(state, account, subnet), group_ids=list(group_ids), description=description,
        mac_address="02:" + ":".join(secrets.token_hex(1) for _ in range(5)),
        availability_zone=subnet.availability_zone, requester_id=requester,
        attachment_id=new_id("eni-attach"), attach_time=datetime.now(UTC).isoformat(), attached_to=attached_to,
    )
    state.save(account, eni)
    return eni


def readdress(state: Ec2State, account: str, eni: NetworkInterface, avoid: Collection[str] = ()) -> NetworkInterface:
    """Give ``eni`` another free address of its subnet (the old one and ``avoid`` excluded)."""
    subnet = state.account(account).get(eni.subnet_id, Subnet)
    if subnet is None:
        raise NoFreeAddress(eni.subnet_id)
    moved = replace(eni, private_ip=choose_address(state, account, subnet, {eni.private_ip, *avoid}))
    state.save(account, moved)
    return moved


def managed_by(state: Ec2State, account: str, attached_to: str) -> NetworkInterface | None:
    """The requester-managed interface attached to ``attached_to``, if any."""
    for eni in state.account(account).all(NetworkInterface):
        if eni.requester_id and eni.attached_to == attached_to:
            return eni
    return None

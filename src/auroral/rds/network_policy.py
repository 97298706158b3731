"""Who may open a connection to a DB instance's endpoint: the accept-time decision, wired into the
runtime as ``LocalRuntime.decide_for``.

For every accepted TCP connection, before a byte is read:

1. the client's address is the real peer address after translation (``AURORAL_NET_TRANSLATE``,
   e.g. ``127.10.0.0/16=10.0.0.0/16``, so loopback aliases stand for hosts inside a subnet);
2. :meth:`auroral.ec2.network.Network.decide` answers with the cluster's VPC, its *current*
   security groups and port, and the instance's *current* ``PubliclyAccessible`` (read from
   the RDS service's in-memory network view, which every save refreshes), so a ModifyDBCluster,
   a ModifyDBInstance or a security-group rule change applies to the next connection, while
   established connections keep running (security groups are stateful);
3. a denied connection is dropped the way a VPC drops it (``timeout``, the default): its SYN is dropped
   by the listener's kernel filter, so the client's TCP handshake never completes and it sees a connect
   timeout; or closed at once after the handshake (``AURORAL_NET_DROP=close``). The flow record carries
   the decision's reason and the client's network interface, if its address is one.

The kernel filter is this same decision, asked once per interval of source addresses between the
boundaries :meth:`auroral.ec2.network.Network.source_boundaries` finds (``source_space_for``), and
recompiled when anything it reads changes (see :mod:`auroral.gateway.synfilter`, which also says when
the filter is not used and a refused connection is accepted and held silently instead, as before: no
``CAP_NET_RAW`` to observe the dropped SYNs for their REJECT records, an IPv6 client, a policy too large
for a filter).

Defaults, so that ``auroral up`` + create-db-cluster + psql work out of the box without an
implicit hole in any security group:

* the translation ``127.0.0.0/16 → 172.31.0.0/16`` is always in force, after any given in
  ``AURORAL_NET_TRANSLATE``: loopback addresses are hosts of the default VPC (``172.31.0.0/16``);
  ``127.0.0.1`` is ``172.31.0.1``;
* this machine is a host *inside* the default VPC: auroral gives each account one network
  interface, in the default subnet that holds ``172.31.0.1``, carrying the default VPC's default
  security group (description "auroral host ..."). A cluster with no ``VpcSecurityGroupIds`` gets
  the VPC's default group, whose only ingress rule admits members of itself — so ``psql`` from
  ``127.0.0.1`` is admitted, exactly as an EC2 instance with the default group would be. Another
  loopback address (``127.0.0.2`` = ``172.31.0.2``) is another host with no interface: refused
  unless a rule admits it. The interface is created once per account; delete it
  (``aws ec2 delete-network-interface``) to take this machine out of the VPC for good.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from auroral.ec2 import Ec2Service
from auroral.ec2.model import NetworkInterface, Subnet, new_id
from auroral.ec2.network import TRANSLATE_ENV
from auroral.gateway.decision import ConnectionInfo, Decide, SourceSpace, Verdict
from auroral.rds.model import Cluster, Instance
from auroral.rds.subnet_groups import SubnetGroupOperations, SubnetInfo
from auroral.store import Store

log = logging.getLogger(__name__)

DROP_ENV = "AURORAL_NET_DROP"
# Loopback addresses are hosts of the default VPC (applied after any user-given translation).
DEFAULT_TRANSLATION = "127.0.0.0/16=172.31.0.0/16"
HOST_ADDRESS = "127.0.0.1"
KIND_HOST_INTERFACE = "rds.host-interface"
HOST_DESCRIPTION = "auroral host: connections from 127.0.0.1 (this machine)"

DropMode = Literal["timeout", "close"]


def translation_spec(env: Mapping[str, str]) -> str:
    """The translation in force: ``AURORAL_NET_TRANSLATE``'s pairs first, then the default one."""
    return ",".join(part for part in (env.get(TRANSLATE_ENV, "").strip(), DEFAULT_TRANSLATION) if part)


def drop_mode(env: Mapping[str, str]) -> DropMode:
    value = env.get(DROP_ENV, "timeout").strip().lower() or "timeout"
    if value == "timeout":
        return "timeout"
    if value == "close":
        return "close"
    raise ValueError(f"{DROP_ENV} must be 'timeout' or 'close', not {value!r}")


class Ec2Directory:
    """The RDS side's view of EC2 (``auroral.rds.subnet_groups.NetworkDirectory``)."""

    def __init__(self, ec2: Ec2Service) -> None:
        self._ec2 = ec2

    @staticmethod
    def _info(subnet: Subnet) -> SubnetInfo:
        return SubnetInfo(subnet.id, subnet.vpc_id, subnet.availability_zone)

    def subnets(self, account: str, ids: Sequence[str]) -> dict[str, SubnetInfo]:
        acct = self._ec2.state.account(account)
        out: dict[str, SubnetInfo] = {}
        for sid in ids:
            subnet = acct.get(sid, Subnet)
            if subnet is not None:
                out[sid] = self._info(subnet)
        return out

    def default_vpc(self, account: str) -> tuple[str, list[SubnetInfo]]:
        vpc = self._ec2.network.default_vpc(account)
        acct = self._ec2.state.account(account)
        subnets = [self._info(s) for s in acct.all(Subnet) if s.vpc_id == vpc.id and s.default_for_az]
        return vpc.id, sorted(subnets, key=lambda s: s.availability_zone)

    def group_vpc(self, account: str, group_id: str) -> str | None:
        return self._ec2.network.vpc_of_group(account, group_id)

    def default_security_group(self, account: str, vpc_id: str) -> str:
        return self._ec2.network.default_security_group(account, vpc_id)

    def has_internet_gateway(self, account: str, vpc_id: str) -> bool:
        return self._ec2.network.has_internet_gateway(account, vpc_id)


class NetworkPolicy:
    def __init__(self, ec2: Ec2Service, rds: SubnetGroupOperations, store: Store, *,
                 drop: DropMode = "timeout") -> None:
        self._ec2 = ec2
        self._network = ec2.network
        self._rds = rds
        self._store = store
        self.drop: DropMode = drop
        self._host_done: set[str] = set()

    # --- this machine as a host of the default VPC -----------------------------------------

    def ensure_host_interface(self, account: str) -> None:
        """Give this machine its network interface in the default VPC (once per account, ever)."""
        if account in self._host_done:
            return
        if self._store.get(KIND_HOST_INTERFACE, account, "host") is None:
            eni = self._host_interface(account)
            if eni is not None:
                self._ec2.state.save(account, eni)
                log.info("network: %s (%s) is this machine in %s", eni.id, eni.private_ip, eni.vpc_id)
            self._store.put(KIND_HOST_INTERFACE, account, "host", {"interface": eni.id if eni else None})
        self._host_done.add(account)

    def _host_interface(self, account: str) -> NetworkInterface | None:
        address = ipaddress.ip_address(self._network.translate(HOST_ADDRESS))
        try:
            vpc = self._network.default_vpc(account)
        except LookupError:  # no default VPC any more: this machine is in no VPC
            return None
        acct = self._ec2.state.account(account)
        if any(e.vpc_id == vpc.id and e.private_ip == str(address) for e in acct.all(NetworkInterface)):
            return None
        for subnet in acct.all(Subnet):
            if subnet.vpc_id == vpc.id and address in ipaddress.ip_network(subnet.cidr):
                group = self._network.default_security_group(account, vpc.id)
                return NetworkInterface(
                    id=new_id("eni"), subnet_id=subnet.id, vpc_id=vpc.id, private_ip=str(address),
                    group_ids=[group], description=HOST_DESCRIPTION,
                    mac_address="02:" + ":".join(secrets.token_hex(1) for _ in range(5)),
                    availability_zone=subnet.availability_zone,
                )
        return None

    # --- the decision -------------------------------------------------------------------------

    def decide_for(self, cluster: Cluster, instance: Instance) -> Decide:
        """The accept-time hook of one instance endpoint. It captures only resource ids: everything
        else is read when a connection arrives."""
        cluster_rid, instance_rid = cluster.resource_id, instance.resource_id

        def decide(info: ConnectionInfo) -> Verdict:
            return self.decide(cluster_rid, instance_rid, info)

        return decide

    def source_space_for(self, cluster: Cluster, instance: Instance) -> Callable[[], SourceSpace | None]:
        """Where ``decide_for``'s verdict changes, for the listener's kernel filter (read when the gateway
        refreshes its filters)."""
        cluster_rid, instance_rid = cluster.resource_id, instance.resource_id

        def space() -> SourceSpace | None:
            return self.source_space(cluster_rid, instance_rid)

        return space

    def source_space(self, cluster_rid: str, instance_rid: str) -> SourceSpace:
        view = self._rds.network_view(cluster_rid, instance_rid)
        if view is None:  # decide refuses everyone (and closes)
            return SourceSpace(frozenset(), None)
        cnet, public = view
        vpc_id, groups = self._placement(cnet.account, cnet.vpc_id, cnet.security_group_ids)
        # Everything decide reads: this region's EC2 state (one version for all of it), the endpoint's network
        # view and the drop mode — the same for every instance of a cluster with the same public access.
        # Taken before the boundaries: a change made meanwhile changes the key again.
        key = (id(self), self._network.version, cnet, public, self.drop)
        return SourceSpace(frozenset(self._network.source_boundaries(cnet.account, vpc_id=vpc_id,
                                                                     security_group_ids=groups)), key)

    def _placement(self, account: str, vpc_id: str | None, group_ids: Sequence[str]) -> tuple[str, Sequence[str]]:
        """The endpoint's VPC and security groups (the default VPC's and its default group when unset)."""
        self.ensure_host_interface(account)
        vpc = vpc_id or self._network.default_vpc(account).id
        return vpc, tuple(group_ids) or (self._network.default_security_group(account, vpc),)

    def decide(self, cluster_rid: str, instance_rid: str, info: ConnectionInfo) -> Verdict:
        view = self._rds.network_view(cluster_rid, instance_rid)
        if view is None:
            return Verdict(False, "the DB instance does not exist any more", None, "close")
        cnet, public = view
        vpc_id, groups = self._placement(cnet.account, cnet.vpc_id, cnet.security_group_ids)
        account = cnet.account
        client = self._network.translate(info.peer_ip)
        decision = self._network.decide(account, vpc_id=vpc_id, security_group_ids=groups,
                                        publicly_accessible=public, client_ip=client, port=cnet.port)
        reason = decision.reason if client == info.peer_ip else f"{info.peer_ip} is {client}: {decision.reason}"
        return Verdict(decision.allow, reason, decision.interface_id, self.drop)

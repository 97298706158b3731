"""Where a DB instance's endpoint listens: the private address of its RDS-managed network interface,
as the loopback address that stands for it, on the cluster's port.

* Every DB instance gets a network interface (``ec2/managed.py``) when it is created, in a subnet of its
  cluster's DB subnet group in the instance's availability zone, with a random free private address and
  the cluster's VPC security groups (kept in sync by ModifyDBCluster); it goes away with the instance.
* The endpoint listens on the loopback address that the network translation maps to that private address
  (the reverse of the client translation, ``Network.loopback_of``): with the default
  ``127.0.0.0/16=172.31.0.0/16``, ``172.31.3.77`` listens on ``127.0.3.77``; with
  ``AURORAL_NET_TRANSLATE=127.10.0.0/16=10.0.0.0/16``, ``10.0.1.57`` on ``127.10.1.57``. So every
  instance has an address of its own, all on the cluster's port (5432 by default), and none on
  ``127.0.0.1``, where a local PostgreSQL may listen.
* A VPC whose addresses no translation covers gets a loopback range of its own: a free ``127.N.0.0/16``
  for the ``/16`` around the address (not one any region uses), remembered in the store's meta and added
  to the region's translation, so client source addresses in that range are hosts of the VPC too.
* If the address and port are held by another process (another auroral server on this machine picked
  the same address), the interface gets another free address and the listener tries again
  (:func:`bind_endpoint`).

``AURORAL_ENDPOINT_HOST`` (an explicit endpoint address, e.g. a real interface in a network namespace)
bypasses this: every endpoint listens on that one address with a port of its own
(``LocalRuntime``), the limit of that mode. The interfaces exist all the same.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Protocol

from auroral.ec2 import Ec2Service
from auroral.ec2.managed import NoFreeAddress, create_managed, managed_by, readdress
from auroral.ec2.model import NetworkInterface, Subnet
from auroral.rds.model import Cluster, Instance
from auroral.rds.subnet_groups import SubnetGroupOperations
from auroral.store import Store

log = logging.getLogger(__name__)

# The ranges given to VPCs, for every region (loopback addresses are the machine's, not a region's):
# JSON {"127.N.0.0/16": {"region": ..., "target": "<vpc /16>"}} in the store's meta.
META_LOOPBACK = "net.loopback-ranges"
# How often a listener tries another address when the one it got is held by someone else.
BIND_ATTEMPTS = 16
_RETRY_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL})


class PlacementError(RuntimeError):
    """The instance cannot get an address (no subnet, no free address)."""


class Placement(Protocol):
    """One instance's listening address, as the runtime asks for it."""

    def address(self) -> str:
        """The address to bind (the instance's network interface is made if it has none)."""
        ...

    def relocate(self, refused: str) -> str:
        """``refused`` could not be bound: move the interface to another free address; the new one."""
        ...


async def bind_endpoint(open_at: Callable[[str, int], Awaitable[int]], placement: Placement, port: int,
                        attempts: int = BIND_ATTEMPTS) -> tuple[str, int]:
    """Open a listener with ``open_at(host, port)`` on the placement's address, moving to another
    address while the one tried is taken; the ``(host, port)`` bound."""
    host = placement.address()
    for attempt in range(attempts):
        try:
            return host, await open_at(host, port)
        except OSError as exc:
            if exc.errno not in _RETRY_ERRNOS or attempt == attempts - 1:
                raise
            log.info("endpoint address %s:%d is taken (%s): trying another", host, port, exc.strerror)
            host = placement.relocate(host)
    raise AssertionError("unreachable")


class EndpointAddresses:
    """One region's instance interfaces and the loopback addresses their endpoints bind."""

    def __init__(self, ec2: Ec2Service, rds: SubnetGroupOperations, store: Store, region: str) -> None:
        self._ec2 = ec2
        self._rds = rds
        self._store = store
        self._region = region
        for source, entry in self._ranges().items():
            if entry.get("region") == region:
                ec2.network.add_translation(source, str(entry["target"]))

    def _ranges(self) -> dict[str, dict[str, str]]:
        try:
            found = json.loads(self._store.get_meta(META_LOOPBACK) or "{}")
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    # --- the interfaces (for the RDS control plane) --------------------------------------------

    def interface(self, account: str, instance_rid: str) -> NetworkInterface | None:
        return managed_by(self._ec2.state, account, instance_rid)

    def ensure(self, cluster: Cluster, instance: Instance) -> NetworkInterface:
        """The instance's network interface, made now if it has none."""
        found = managed_by(self._ec2.state, cluster.account, instance.resource_id)
        if found is not None:
            return found
        subnet = self._subnet_for(cluster, instance)
        try:
            eni = create_managed(self._ec2.state, cluster.account, subnet, self._groups(cluster),
                                 attached_to=instance.resource_id)
        except NoFreeAddress as exc:
            raise PlacementError(f"subnet {subnet.id} has no free address left") from exc
        log.info("instance %s: network interface %s (%s) in %s", instance.identifier, eni.id, eni.private_ip,
                 subnet.id)
        return eni

    def release(self, account: str, instance_rid: str) -> None:
        """The instance is gone: so is its interface."""
        eni = managed_by(self._ec2.state, account, instance_rid)
        if eni is not None:
            self._ec2.state.remove(account, eni)

    def sync_groups(self, cluster: Cluster, members: Sequence[Instance]) -> None:
        """The cluster's security groups changed: its instances' interfaces carry the new ones."""
        groups = self._groups(cluster)
        changed = []
        for member in members:
            eni = managed_by(self._ec2.state, cluster.account, member.resource_id)
            if eni is not None and eni.group_ids != groups:
                changed.append(replace(eni, group_ids=list(groups)))
        if changed:
            self._ec2.state.save(cluster.account, *changed)

    def _groups(self, cluster: Cluster) -> list[str]:
        if cluster.vpc_security_group_ids:
            return list(cluster.vpc_security_group_ids)
        vpc_id = self._vpc_of(cluster)
        return [self._ec2.network.default_security_group(cluster.account, vpc_id)]

    def _vpc_of(self, cluster: Cluster) -> str:
        return cluster.vpc_id or self._ec2.network.default_vpc(cluster.account).id

    def _subnet_for(self, cluster: Cluster, instance: Instance) -> Subnet:
        """A subnet of the cluster's DB subnet group in the instance's zone (any of the group's if none
        is there; the VPC's in that zone if the group is gone)."""
        acct = self._ec2.state.account(cluster.account)
        group = self._rds.subnet_group_of(cluster)
        ids = [s.id for s in group.subnets] if group is not None else []
        subnets = [s for sid in ids if (s := acct.get(sid, Subnet)) is not None]
        if not subnets:
            vpc_id = self._vpc_of(cluster)
            subnets = [s for s in acct.all(Subnet) if s.vpc_id == vpc_id]
        if not subnets:
            raise PlacementError(f"the DB cluster {cluster.identifier} has no subnet to place {instance.identifier} in")
        in_zone = [s for s in subnets if s.availability_zone == instance.availability_zone]
        pool = sorted(in_zone or subnets, key=lambda s: s.id)
        return pool[secrets.randbelow(len(pool))]

    # --- the listening address (for the runtime) -----------------------------------------------

    def placement(self, cluster: Cluster, instance: Instance) -> Placement:
        return _Placement(self, cluster, instance)

    def loopback(self, ip: str) -> str:
        """The loopback address that stands for VPC address ``ip`` (a new range for it if none does)."""
        network = self._ec2.network
        found = network.loopback_of(ip)
        if found is not None:
            return found
        target = ipaddress.IPv4Network(f"{ip}/16", strict=False)
        ranges = self._ranges()
        used = {src.network_address.packed[1] for src, _ in network.translations()
                if src.version == 4 and src.is_loopback}
        used.update(ipaddress.IPv4Network(source).network_address.packed[1] for source in ranges)
        free = [n for n in range(1, 255) if n not in used]
        if not free:
            raise PlacementError(f"no loopback range is left for {target}")
        source = ipaddress.IPv4Network(f"127.{free[secrets.randbelow(len(free))]}.0.0/16")
        ranges[str(source)] = {"region": self._region, "target": str(target)}
        self._store.set_meta(META_LOOPBACK, json.dumps(ranges, sort_keys=True))
        network.add_translation(str(source), str(target))
        log.info("network: %s stands for %s (no translation covered it)", source, target)
        found = network.loopback_of(ip)
        if found is None:  # shadowed by an earlier pair: cannot happen with a fresh 127.N range
            raise PlacementError(f"no loopback address stands for {ip}")
        return found

    def relocate(self, cluster: Cluster, instance: Instance, refused: str) -> str:
        eni = self.ensure(cluster, instance)
        try:
            moved = readdress(self._ec2.state, cluster.account, eni)
        except NoFreeAddress as exc:
            raise PlacementError(f"subnet {eni.subnet_id} has no free address left") from exc
        log.info("instance %s: %s was taken; network interface %s moves to %s", instance.identifier, refused,
                 eni.id, moved.private_ip)
        return self.loopback(moved.private_ip)


class _Placement:
    def __init__(self, owner: EndpointAddresses, cluster: Cluster, instance: Instance) -> None:
        self._owner = owner
        self._cluster = cluster
        self._instance = instance

    def address(self) -> str:
        eni = self._owner.ensure(self._cluster, self._instance)
        return self._owner.loopback(eni.private_ip)

    def relocate(self, refused: str) -> str:
        return self._owner.relocate(self._cluster, self._instance, refused)

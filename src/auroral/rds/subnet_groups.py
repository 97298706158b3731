"""DB subnet groups, and where a cluster lives on the network.

* ``CreateDBSubnetGroup`` / ``DescribeDBSubnetGroups`` / ``ModifyDBSubnetGroup`` /
  ``DeleteDBSubnetGroup``: subnets of one VPC covering at least two availability zones, as AWS
  requires. The implicit ``default`` group is the default VPC's default subnets; it is computed,
  never stored, and can be neither modified nor deleted.
* A cluster is placed in its subnet group's VPC (``Cluster.vpc_id``). Its ``VpcSecurityGroupIds``
  must exist and belong to that VPC; without them it gets the VPC's default security group.
* The network facts the endpoint gateway needs on every connection (the cluster's VPC, security
  groups and port; each instance's ``PubliclyAccessible``) are kept in memory and refreshed
  by every save, so a decision never reads the store and a change applies to the next connection.

The EC2 side is reached through :class:`NetworkDirectory` (``auroral.rds.network_policy`` implements
it over the EC2 service); without one (unit tests of other features) nothing is validated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from auroral.api.context import RequestContext
from auroral.errors import AwsError, invalid_parameter_combination, invalid_parameter_value
from auroral.rds import validate
from auroral.rds.base import RdsBase, paginate, rds_error
from auroral.rds.model import Cluster, Instance
from auroral.regions import partition_of

KIND_SUBNET_GROUP = "rds.subnet-group"
DEFAULT_GROUP = "default"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._ -]{0,254}")


@dataclass(frozen=True)
class SubnetInfo:
    id: str
    vpc_id: str
    availability_zone: str


class NetworkDirectory(Protocol):
    """What RDS asks the EC2 side."""

    def subnets(self, account: str, ids: Sequence[str]) -> dict[str, SubnetInfo]: ...

    def default_vpc(self, account: str) -> tuple[str, list[SubnetInfo]]:
        """The default VPC's id and its default subnets."""
        ...

    def group_vpc(self, account: str, group_id: str) -> str | None: ...

    def default_security_group(self, account: str, vpc_id: str) -> str: ...

    def has_internet_gateway(self, account: str, vpc_id: str) -> bool: ...


@dataclass
class SubnetGroup:
    name: str  # lower-cased
    account: str
    region: str
    description: str
    vpc_id: str
    subnets: list[SubnetInfo] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    def arn(self) -> str:
        return f"arn:{partition_of(self.region)}:rds:{self.region}:{self.account}:subgrp:{self.name}"

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name, "account": self.account, "region": self.region, "description": self.description,
            "vpc_id": self.vpc_id, "tags": dict(self.tags),
            "subnets": [{"id": s.id, "vpc_id": s.vpc_id, "az": s.availability_zone} for s in self.subnets],
        }

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> SubnetGroup:
        return cls(
            name=d["name"], account=d["account"], region=d["region"], description=d.get("description", ""),
            vpc_id=d["vpc_id"], tags=dict(d.get("tags") or {}),
            subnets=[SubnetInfo(s["id"], s["vpc_id"], s["az"]) for s in d.get("subnets") or []],
        )

    def view(self) -> dict[str, Any]:
        return {
            "DBSubnetGroupName": self.name,
            "DBSubnetGroupDescription": self.description,
            "VpcId": self.vpc_id,
            "SubnetGroupStatus": "Complete",
            "Subnets": [
                {"SubnetIdentifier": s.id, "SubnetAvailabilityZone": {"Name": s.availability_zone},
                 "SubnetOutpost": {}, "SubnetStatus": "Active"}
                for s in self.subnets
            ],
            "DBSubnetGroupArn": self.arn(),
            "SupportedNetworkTypes": ["IPV4"],
        }


@dataclass(frozen=True)
class ClusterNet:
    """A cluster's network facts, as the accept-time decision reads them."""

    account: str
    vpc_id: str | None
    security_group_ids: tuple[str, ...]
    port: int


@dataclass(frozen=True)
class Placement:
    subnet_group: str
    vpc_id: str | None
    security_group_ids: list[str]
    zones: list[str]


def not_found(name: str) -> AwsError:
    return rds_error("DBSubnetGroupNotFoundFault", f"DB subnet group '{name}' does not exist.")


def invalid_group(group_id: str) -> AwsError:
    # Observed wording (RDS answers an unknown VPC security group with this).
    return invalid_parameter_value(f"Invalid security group , groupId= {group_id}, groupName=.")


class InstanceInterfaces(Protocol):
    """The DB instances' RDS-managed network interfaces (``auroral.rds.addresses.EndpointAddresses``)."""

    def ensure(self, cluster: Cluster, instance: Instance) -> Any: ...

    def release(self, account: str, instance_rid: str) -> None: ...

    def sync_groups(self, cluster: Cluster, members: Sequence[Instance]) -> None: ...


class SubnetGroupOperations(RdsBase):
    network: NetworkDirectory | None = None
    interfaces: InstanceInterfaces | None = None

    def attach_network(self, network: NetworkDirectory) -> None:
        self.network = network

    def attach_interfaces(self, interfaces: InstanceInterfaces) -> None:
        self.interfaces = interfaces

    def subnet_group_of(self, cluster: Cluster) -> SubnetGroup | None:
        return self._get_subnet_group(cluster.account, cluster.subnet_group)

    def _ensure_interface(self, cluster: Cluster, instance: Instance) -> None:
        """Give a new instance its network interface (in its zone's subnet of the DB subnet group)."""
        if self.interfaces is None:
            return
        try:
            self.interfaces.ensure(cluster, instance)
        except (RuntimeError, LookupError) as exc:
            # Unconfirmed code and wording for "no address for the instance in the subnet group".
            raise rds_error("InvalidSubnet", f"Cannot place DB instance {instance.identifier}: {exc}") from exc

    def _release_interface(self, instance: Instance) -> None:
        """The instance is gone for good (not renamed): its network interface goes too."""
        if self.interfaces is not None:
            self.interfaces.release(instance.account, instance.resource_id)

    def _sync_interface_groups(self, cluster: Cluster) -> None:
        if self.interfaces is not None:
            self.interfaces.sync_groups(cluster, self._members(cluster))

    # --- the in-memory network view (for the gateway) ------------------------------------

    def _net(self) -> tuple[dict[str, ClusterNet], dict[str, bool]]:
        cache: tuple[dict[str, ClusterNet], dict[str, bool]] | None = self.__dict__.get("_net_cache")
        if cache is None:
            cache = ({}, {})
            self.__dict__["_net_cache"] = cache
        return cache

    @staticmethod
    def _cluster_net(cluster: Cluster) -> ClusterNet:
        return ClusterNet(cluster.account, cluster.vpc_id, tuple(cluster.vpc_security_group_ids), cluster.port)

    def on_network_view_change(self, listener: Callable[[], None]) -> None:
        """``listener()`` after a save that changed an endpoint's network facts (its cluster's VPC, security
        groups or port, its own public access): the listeners' kernel filters follow changes made outside
        an API call too (the API pipeline refreshes them after every call)."""
        self.__dict__.setdefault("_net_listeners", []).append(listener)

    def _network_view_changed(self) -> None:
        for listener in self.__dict__.get("_net_listeners", ()):
            listener()

    def _save_cluster(self, cluster: Cluster) -> None:
        super()._save_cluster(cluster)
        new = self._cluster_net(cluster)
        if self._net()[0].get(cluster.resource_id, new) != new:
            self._network_view_changed()
        self._net()[0][cluster.resource_id] = new

    def _drop_cluster(self, cluster: Cluster) -> None:
        super()._drop_cluster(cluster)
        self._net()[0].pop(cluster.resource_id, None)

    def _save_instance(self, instance: Instance) -> None:
        super()._save_instance(instance)
        if self._net()[1].get(instance.resource_id, instance.publicly_accessible) != instance.publicly_accessible:
            self._network_view_changed()
        self._net()[1][instance.resource_id] = instance.publicly_accessible

    def _drop_instance(self, instance: Instance) -> None:
        super()._drop_instance(instance)
        self._net()[1].pop(instance.resource_id, None)

    def network_view(self, cluster_rid: str, instance_rid: str) -> tuple[ClusterNet, bool] | None:
        """The current network facts of one endpoint (None if the cluster or instance is gone)."""
        clusters, public = self._net()
        cnet = clusters.get(cluster_rid)
        if cnet is None:
            cluster = self._cluster_by_rid(cluster_rid)
            if cluster is None:
                return None
            cnet = clusters[cluster_rid] = self._cluster_net(cluster)
        pub = public.get(instance_rid)
        if pub is None:
            instance = self._instance_by_rid(cnet.account, instance_rid)
            if instance is None:
                return None
            pub = public[instance_rid] = instance.publicly_accessible
        return cnet, pub

    # --- placement -------------------------------------------------------------------------

    def _get_subnet_group(self, account: str, name: str) -> SubnetGroup | None:
        name = name.lower()
        if name == DEFAULT_GROUP:
            if self.network is None:
                return None
            try:
                vpc_id, subnets = self.network.default_vpc(account)
            except LookupError:  # the account deleted its default VPC
                return None
            return SubnetGroup(DEFAULT_GROUP, account, self.region, "default", vpc_id, subnets)
        doc = self.store.get(KIND_SUBNET_GROUP, account, name)
        return None if doc is None else SubnetGroup.from_doc(doc)

    def _subnet_group(self, account: str, name: str) -> SubnetGroup:
        group = self._get_subnet_group(account, name)
        if group is None:
            raise not_found(name)
        return group

    def _check_groups(self, account: str, vpc_id: str, ids: Sequence[Any]) -> list[str]:
        assert self.network is not None
        out: list[str] = []
        for raw in ids:
            gid = str(raw)
            owner = self.network.group_vpc(account, gid)
            if owner is None:
                raise invalid_group(gid)
            if owner != vpc_id:
                # Observed wording.
                raise invalid_parameter_combination(
                    f"The DB instance and EC2 security group are in different VPCs. The DB instance is in {vpc_id} "
                    f"and the EC2 security group is in {owner}"
                )
            if gid not in out:
                out.append(gid)
        return out

    def _place(self, account: str, subnet_group: Any, security_groups: Sequence[Any] | None) -> Placement:
        """Where a new cluster goes: its subnet group, VPC, security groups and zones."""
        name = str(subnet_group or DEFAULT_GROUP).lower()
        given = [str(g) for g in security_groups or []]
        if self.network is None:
            return Placement(name, None, given, [])
        group = self._subnet_group(account, name)
        if not group.subnets:
            # Observed wording (a default VPC without default subnets).
            raise rds_error("InvalidSubnet", "No default subnet detected in VPC. Please contact AWS Support to "
                                             "recreate default Subnets.")
        if given:
            groups = self._check_groups(account, group.vpc_id, given)
        else:
            groups = [self.network.default_security_group(account, group.vpc_id)]
        zones = sorted({s.availability_zone for s in group.subnets})
        return Placement(group.name, group.vpc_id, groups, zones)

    def _cluster_vpc(self, cluster: Cluster) -> str | None:
        if cluster.vpc_id is not None or self.network is None:
            return cluster.vpc_id
        try:
            return self.network.default_vpc(cluster.account)[0]
        except LookupError:
            return None

    def _checked_security_groups(self, cluster: Cluster, ids: Sequence[Any]) -> list[str]:
        """``VpcSecurityGroupIds`` of a ModifyDBCluster, validated against the cluster's VPC."""
        vpc_id = self._cluster_vpc(cluster)
        if vpc_id is None:
            return [str(g) for g in ids]
        if not ids:
            assert self.network is not None
            return [self.network.default_security_group(cluster.account, vpc_id)]
        return self._check_groups(cluster.account, vpc_id, ids)

    def _check_public(self, cluster: Cluster, *, modify: bool = False) -> None:
        """``PubliclyAccessible`` needs an internet gateway attached to the cluster's VPC."""
        vpc_id = self._cluster_vpc(cluster)
        if vpc_id is None or self.network is None or self.network.has_internet_gateway(cluster.account, vpc_id):
            return
        verb = "modify" if modify else "create"  # the modify wording is unconfirmed
        raise rds_error("InvalidVPCNetworkStateFault",
                        f"Cannot {verb} a publicly accessible DBInstance. The specified VPC has no internet gateway "
                        "attached.")

    def subnet_group_view(self, cluster: Cluster | None) -> dict[str, Any]:
        """The ``DBSubnetGroup`` of a DBInstance."""
        name = cluster.subnet_group if cluster else DEFAULT_GROUP
        group = self._get_subnet_group(cluster.account, name) if cluster else None
        if group is None:
            return {"DBSubnetGroupName": name, "DBSubnetGroupDescription": name, "SubnetGroupStatus": "Complete",
                    "Subnets": []}
        return group.view()

    # --- subnet group operations -----------------------------------------------------------

    def _resolve_subnets(self, account: str, params: dict[str, Any]) -> tuple[str, list[SubnetInfo]]:
        ids = [str(s) for s in params.get("SubnetIds") or []]
        if not ids:
            raise rds_error("InvalidSubnet", "Subnet IDs are required.")
        if self.network is None:
            raise invalid_parameter_value("DB subnet groups need the EC2 network, which is not attached.")
        found = self.network.subnets(account, ids)
        missing = [s for s in ids if s not in found]
        if missing:
            # Observed wording.
            raise rds_error("InvalidSubnet", f"Some input subnets in :[{', '.join(missing)}] are invalid.")
        subnets = [found[s] for s in dict.fromkeys(ids)]
        vpcs = {s.vpc_id for s in subnets}
        if len(vpcs) > 1:
            # Unconfirmed wording (the documented meaning of InvalidSubnet).
            raise rds_error("InvalidSubnet", "The requested subnets are not all in a common VPC: "
                                             f"{', '.join(sorted(vpcs))}.")
        zones = sorted({s.availability_zone for s in subnets})
        if len(zones) < 2:
            # Observed wording.
            raise rds_error("DBSubnetGroupDoesNotCoverEnoughAZs",
                            "The DB subnet group doesn't meet Availability Zone (AZ) coverage requirement. "
                            f"Current AZ coverage: {', '.join(zones)}. Add subnets to cover at least 2 AZs.")
        return subnets[0].vpc_id, subnets

    @staticmethod
    def _group_name(params: dict[str, Any]) -> str:
        raw = str(params.get("DBSubnetGroupName") or "")
        if not raw:
            raise invalid_parameter_value("The parameter DBSubnetGroupName must be provided and must not be blank.")
        return raw

    def _users(self, account: str, name: str) -> list[Cluster]:
        return [c for c in self._clusters(account) if c.subnet_group.lower() == name.lower()]

    def CreateDBSubnetGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        raw = self._group_name(params)
        if raw.lower() == DEFAULT_GROUP or not _NAME.fullmatch(raw):
            # Unconfirmed wording.
            raise invalid_parameter_value(
                "The parameter DBSubnetGroupName is not a valid identifier. It must contain no more than 255 "
                "letters, numbers, periods, underscores, spaces, or hyphens, begin with a letter, and not be default.")
        description = str(params.get("DBSubnetGroupDescription") or "")
        if not description:
            raise invalid_parameter_value(
                "The parameter DBSubnetGroupDescription must be provided and must not be blank.")
        tags = validate.tags(params.get("Tags"))
        name = raw.lower()
        if self.store.get(KIND_SUBNET_GROUP, ctx.account, name) is not None:
            raise rds_error("DBSubnetGroupAlreadyExistsFault", f"The DB subnet group '{name}' already exists.")
        vpc_id, subnets = self._resolve_subnets(ctx.account, params)
        group = SubnetGroup(name, ctx.account, self.region, description, vpc_id, subnets, tags)
        self.store.put(KIND_SUBNET_GROUP, ctx.account, name, group.to_doc())
        ctx.record_resource("AWS::RDS::DBSubnetGroup", group.arn())
        return {"DBSubnetGroup": group.view()}

    def DescribeDBSubnetGroups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("Filters"):
            raise invalid_parameter_value(f"Unrecognized filter name: {params['Filters'][0].get('Name')}")
        if params.get("DBSubnetGroupName"):
            groups = [self._subnet_group(ctx.account, str(params["DBSubnetGroupName"]))]
        else:
            groups = [SubnetGroup.from_doc(d) for _, _, d in self.store.list(KIND_SUBNET_GROUP, ctx.account)]
            default = self._get_subnet_group(ctx.account, DEFAULT_GROUP)
            if default is not None:
                groups.append(default)
        items, marker = paginate(groups, lambda g: g.name, params)
        out: dict[str, Any] = {"DBSubnetGroups": [g.view() for g in items]}
        if marker:
            out["Marker"] = marker
        return out

    def ModifyDBSubnetGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._group_name(params).lower()
        if name == DEFAULT_GROUP:
            # Unconfirmed wording.
            raise invalid_parameter_value("The default DB subnet group cannot be modified.")
        group = self._subnet_group(ctx.account, name)
        vpc_id, subnets = self._resolve_subnets(ctx.account, params)
        users = self._users(ctx.account, name)
        if users and vpc_id != group.vpc_id:
            # Unconfirmed wording.
            raise rds_error("InvalidSubnet", f"The DB subnet group '{name}' is in use by DB cluster "
                                             f"{users[0].identifier}: its subnets must stay in {group.vpc_id}.")
        group.vpc_id, group.subnets = vpc_id, subnets
        if params.get("DBSubnetGroupDescription"):
            group.description = str(params["DBSubnetGroupDescription"])
        self.store.put(KIND_SUBNET_GROUP, ctx.account, name, group.to_doc())
        ctx.record_resource("AWS::RDS::DBSubnetGroup", group.arn())
        return {"DBSubnetGroup": group.view()}

    def DeleteDBSubnetGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._group_name(params).lower()
        if name == DEFAULT_GROUP:
            # Unconfirmed wording.
            raise rds_error("InvalidDBSubnetGroupStateFault", "The default DB subnet group cannot be deleted.")
        group = self._subnet_group(ctx.account, name)
        users = self._users(ctx.account, name)
        if users:
            # Observed wording.
            raise rds_error("InvalidDBSubnetGroupStateFault",
                            f"Cannot delete the subnet group '{name}' because at least one database cluster: "
                            f"{users[0].identifier} is still using it.")
        self.store.delete(KIND_SUBNET_GROUP, ctx.account, name)
        ctx.record_resource("AWS::RDS::DBSubnetGroup", group.arn())
        return {}

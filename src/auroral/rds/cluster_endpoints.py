"""Custom endpoints of Aurora clusters: CreateDBClusterEndpoint, DescribeDBClusterEndpoints,
ModifyDBClusterEndpoint, DeleteDBClusterEndpoint, and the membership the DNS side resolves.

A custom endpoint (Aurora User Guide, "Custom endpoints for Amazon Aurora") names a set of a
cluster's instances: a *static* list (exactly those) or an *exclusion* list (every instance of the
cluster, present and future, except those), narrowed by its type — ``READER`` (readers only) or
``ANY``. Up to five per cluster; the name is unique in the account and region (it is a DNS name:
``<name>.cluster-custom-<id>.<region>.rds.amazonaws.com``). Its ARN is
``arn:<partition>:rds:<region>:<account>:cluster-endpoint:<name>``.

States: ``creating → available``, ``available → modifying → available``, ``available → deleting →
(gone)``. The work behind a transition is telling the endpoint listeners (the DNS side publishes or
withdraws the name's records) on the cluster's background queue; the status moves on once they have
been told. ``custom_endpoint_members`` is what they resolve the name to.

For the DNS side (``RdsService`` has these): ``custom_endpoint_members(cluster)`` maps each custom
endpoint's DNS name to the identifiers of the instances reachable through it now (available ones);
``add_custom_endpoint_listener(fn)`` has ``fn(cluster)`` called when the endpoints or their lists
change. Instance status and role changes (an instance becoming available, a failover) change the
members too without a call here: the DNS side refreshes on those with its instance hooks, and after
a restart it reads every cluster's members once.

Store documents: kind ``rds.cluster-endpoint`` keyed by ``(account, endpoint identifier)``. The
record names its cluster by resource id, so a renamed cluster keeps its endpoints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AwsError, invalid_parameter_combination, invalid_parameter_value
from auroral.rds import validate
from auroral.rds.base import RdsBase, filter_values, not_found, paginate, rds_error
from auroral.rds.endpoints import (
    cluster_endpoint_name,
    custom_endpoint_name,
    reader_endpoint_name,
)
from auroral.rds.model import Cluster, Instance, new_resource_id
from auroral.regions import partition_of

log = logging.getLogger("auroral.rds")

KIND_CLUSTER_ENDPOINT = "rds.cluster-endpoint"
# "You can create up to five custom endpoints for each provisioned Aurora cluster" (Aurora User Guide).
MAX_CUSTOM_ENDPOINTS = 5
CUSTOM_TYPES = ("READER", "ANY")
_FILTERS = ("db-cluster-endpoint-type", "db-cluster-endpoint-custom-type", "db-cluster-endpoint-id",
            "db-cluster-endpoint-status")

EndpointListener = Callable[[Cluster], None]


@dataclass
class ClusterEndpoint:
    identifier: str  # lower-cased, as AWS stores it
    account: str
    region: str
    resource_id: str  # cluster-endpoint-<26 uppercase alphanumerics>
    cluster_resource_id: str
    endpoint_type: str  # READER | ANY
    static_members: list[str] = field(default_factory=list)
    excluded_members: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "creating"

    def arn(self) -> str:
        return (f"arn:{partition_of(self.region)}:rds:{self.region}:{self.account}:"
                f"cluster-endpoint:{self.identifier}")

    def to_doc(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier, "account": self.account, "region": self.region,
            "resource_id": self.resource_id, "cluster_resource_id": self.cluster_resource_id,
            "endpoint_type": self.endpoint_type, "static_members": list(self.static_members),
            "excluded_members": list(self.excluded_members), "tags": dict(self.tags), "status": self.status,
        }

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> ClusterEndpoint:
        return cls(
            identifier=d["identifier"], account=d["account"], region=d["region"], resource_id=d["resource_id"],
            cluster_resource_id=d["cluster_resource_id"], endpoint_type=d["endpoint_type"],
            static_members=list(d.get("static_members") or []),
            excluded_members=list(d.get("excluded_members") or []),
            tags=dict(d.get("tags") or {}), status=d.get("status", "creating"),
        )


def endpoint_not_found(name: str) -> AwsError:
    return not_found("cluster-endpoint", name)


def _members_param(value: Any) -> list[str]:
    """A member list, lower-cased (RDS stores identifiers so), duplicates dropped, order kept."""
    return list(dict.fromkeys(str(item).lower() for item in value or []))


def _custom_type(value: Any) -> str:
    text = str(value or "").upper()
    if text == "WRITER":
        # Observed wording (Neptune, the same API, for WRITER on a single-writer cluster); Aurora documents
        # WRITER custom endpoints for multi-master clusters only, which auroral does not have.
        raise invalid_parameter_value("Endpoint type not supported by the cluster")
    if text not in CUSTOM_TYPES:
        # Unconfirmed wording.
        raise invalid_parameter_value(
            f"Invalid endpoint type: {value}. The endpoint type must be one of: READER, ANY.")
    return text


class ClusterEndpointOperations(RdsBase):
    """The four operations, the membership the DNS side resolves, and the hooks instance and
    cluster deletion call (``_forget_member``, ``_drop_cluster_endpoints``)."""

    def add_custom_endpoint_listener(self, fn: EndpointListener) -> None:
        """``fn(cluster)`` is called (on the cluster's background queue) whenever a custom endpoint of
        ``cluster`` is created, modified or deleted, or its lists change because an instance went away:
        the moment to read ``custom_endpoint_members(cluster)`` again. It must not raise."""
        self._endpoint_listeners.append(fn)

    def _notify_endpoints(self, cluster: Cluster) -> None:
        for fn in list(self._endpoint_listeners):
            try:
                fn(cluster)
            except Exception:  # a listener's bug must not stop the state machine
                log.exception("custom endpoint listener failed for cluster %s", cluster.identifier)

    # --- records -----------------------------------------------------------------------------

    def _get_endpoint(self, account: str, ident: str) -> ClusterEndpoint | None:
        doc = self.store.get(KIND_CLUSTER_ENDPOINT, account, ident.lower())
        return None if doc is None else ClusterEndpoint.from_doc(doc)

    def _endpoint(self, account: str, ident: str) -> ClusterEndpoint:
        found = self._get_endpoint(account, ident)
        if found is None:
            raise endpoint_not_found(ident)
        return found

    def _endpoints_of(self, cluster: Cluster) -> list[ClusterEndpoint]:
        docs = self.store.list(KIND_CLUSTER_ENDPOINT, cluster.account)
        found = [ClusterEndpoint.from_doc(d) for _, _, d in docs]
        return sorted((e for e in found if e.cluster_resource_id == cluster.resource_id), key=lambda e: e.identifier)

    def _save_endpoint(self, endpoint: ClusterEndpoint) -> None:
        self.store.put(KIND_CLUSTER_ENDPOINT, endpoint.account, endpoint.identifier, endpoint.to_doc())

    def custom_endpoint_dns_names(self, cluster: Cluster) -> list[str]:
        """``DBCluster.CustomEndpoints``: the DNS names of the cluster's custom endpoints."""
        ident = self.dns_id(cluster.account)
        return [custom_endpoint_name(e.identifier, ident, self.region) for e in self._endpoints_of(cluster)]

    def custom_endpoint_members(self, cluster: Cluster) -> dict[str, list[str]]:
        """For the DNS side: each custom endpoint's DNS name -> the identifiers (sorted) of the instances a
        connection to it may reach now. A static list gives its members that are available (whatever their
        role: AWS's driver wrapper notes that a READER endpoint's static writer is reachable); an exclusion
        list gives every available instance of the cluster it does not name, readers only for ``READER``.
        Endpoints being deleted are left out (their name stops resolving); an endpoint with no reachable
        member maps to an empty list."""
        available = {m.identifier: m for m in self._members(cluster) if m.status == "available"}
        ident = self.dns_id(cluster.account)
        out: dict[str, list[str]] = {}
        for endpoint in self._endpoints_of(cluster):
            if endpoint.status == "deleting":
                continue
            if endpoint.static_members:
                chosen = [name for name in endpoint.static_members if name in available]
            else:
                chosen = [name for name, m in available.items() if name not in endpoint.excluded_members
                          and (endpoint.endpoint_type == "ANY" or not m.is_writer)]
            out[custom_endpoint_name(endpoint.identifier, ident, self.region)] = sorted(chosen)
        return out

    # --- views -------------------------------------------------------------------------------

    def _endpoint_view(self, endpoint: ClusterEndpoint, cluster_identifier: str) -> dict[str, Any]:
        return {
            "DBClusterEndpointIdentifier": endpoint.identifier,
            "DBClusterIdentifier": cluster_identifier,
            "DBClusterEndpointResourceIdentifier": endpoint.resource_id,
            "Endpoint": custom_endpoint_name(endpoint.identifier, self.dns_id(endpoint.account), self.region),
            "Status": endpoint.status,
            "EndpointType": "CUSTOM",
            "CustomEndpointType": endpoint.endpoint_type,
            "StaticMembers": list(endpoint.static_members),
            "ExcludedMembers": list(endpoint.excluded_members),
            "DBClusterEndpointArn": endpoint.arn(),
        }

    def _builtin_views(self, cluster: Cluster) -> list[dict[str, Any]]:
        """The cluster's own WRITER and READER endpoints, as DescribeDBClusterEndpoints lists them (no
        identifier, ARN or members: the User Guide's sample output)."""
        # Unconfirmed how AWS reports them for a stopped or failed cluster: "available" but while the
        # cluster is created or deleted.
        status = cluster.status if cluster.status in ("creating", "deleting") else "available"
        ident = self.dns_id(cluster.account)
        return [
            {"Endpoint": cluster_endpoint_name(cluster.identifier, ident, self.region), "Status": status,
             "DBClusterIdentifier": cluster.identifier, "EndpointType": "WRITER"},
            {"Endpoint": reader_endpoint_name(cluster.identifier, ident, self.region), "Status": status,
             "DBClusterIdentifier": cluster.identifier, "EndpointType": "READER"},
        ]

    # --- checks ------------------------------------------------------------------------------

    def _endpoint_cluster(self, endpoint: ClusterEndpoint) -> Cluster:
        cluster = self._cluster_by_rid(endpoint.cluster_resource_id)
        if cluster is None:  # its cluster is gone: so is the endpoint, whatever a racing request saw
            raise endpoint_not_found(endpoint.identifier)
        return cluster

    @staticmethod
    def _check_cluster_state(cluster: Cluster) -> None:
        if cluster.status != "available":
            # Unconfirmed wording, modelled on RDS's "... is in <state> state but expected it to be one of ...".
            raise rds_error("InvalidDBClusterStateFault",
                            f"DbCluster {cluster.identifier} is in {cluster.status} state but expected it to be "
                            "one of available.")

    @staticmethod
    def _check_endpoint_state(endpoint: ClusterEndpoint) -> None:
        if endpoint.status != "available":
            # Unconfirmed wording.
            raise rds_error("InvalidDBClusterEndpointStateFault",
                            f"DBClusterEndpoint {endpoint.identifier} is in {endpoint.status} state but expected "
                            "it to be available.")

    def _check_members(self, cluster: Cluster, names: list[str]) -> None:
        """Every member named must be an instance of ``cluster`` that is not being deleted."""
        members = {m.identifier: m for m in self._members(cluster)}
        for name in names:
            member = members.get(name)
            if member is None:
                # Unconfirmed whether AWS answers an instance of another cluster so; an instance the cluster
                # does not have is not found among its members.
                raise rds_error("DBInstanceNotFoundFault", f"DBInstance {name} not found.")
            if member.status == "deleting":
                # Unconfirmed wording.
                raise rds_error("InvalidDBInstanceStateFault", f"Instance {name} is being deleted.")

    @staticmethod
    def _lists(params: dict[str, Any]) -> tuple[list[str], list[str]]:
        static, excluded = _members_param(params.get("StaticMembers")), _members_param(params.get("ExcludedMembers"))
        if static and excluded:
            # "Each custom endpoint can contain only one of these list types" (Aurora User Guide). Unconfirmed
            # whether AWS refuses both or ignores ExcludedMembers ("relevant only if the list of static
            # members is empty"); refusing says so instead of dropping half the request.
            raise invalid_parameter_combination("StaticMembers and ExcludedMembers can't both be specified.")
        return static, excluded

    # --- background work ---------------------------------------------------------------------

    def _spawn_settle(self, cluster: Cluster, endpoint: ClusterEndpoint, expected: str) -> None:
        """Tell the listeners, then move ``expected`` (creating, modifying) to available, or drop a
        deleted endpoint."""
        account, name, rid = endpoint.account, endpoint.identifier, endpoint.resource_id

        async def work() -> None:
            current = self._get_endpoint(account, name)
            if current is None or current.resource_id != rid or current.status != expected:
                return
            owner = self._cluster_by_rid(current.cluster_resource_id)
            if expected == "deleting":
                self.store.delete(KIND_CLUSTER_ENDPOINT, account, name)
            if owner is not None:
                self._notify_endpoints(owner)
            if expected != "deleting":
                current.status = "available"
                self._save_endpoint(current)

        self._spawn(cluster.resource_id, f"cluster-endpoint-{expected}", work)

    def _forget_member(self, instance: Instance) -> None:
        """An instance is gone: AWS takes it off the static and exclusion lists naming it. (An endpoint
        whose static list empties so lists every eligible instance, as one created without members.)"""
        cluster = self._get_cluster(instance.account, instance.cluster_identifier)
        if cluster is None:
            return
        changed = False
        for endpoint in self._endpoints_of(cluster):
            if instance.identifier in endpoint.static_members + endpoint.excluded_members:
                endpoint.static_members = [m for m in endpoint.static_members if m != instance.identifier]
                endpoint.excluded_members = [m for m in endpoint.excluded_members if m != instance.identifier]
                self._save_endpoint(endpoint)
                changed = True
        if changed:
            self._notify_endpoints(cluster)

    def _rename_member(self, instance: Instance, old: str) -> None:
        """An instance was renamed (ModifyDBInstance NewDBInstanceIdentifier): the lists follow it.
        Unconfirmed whether AWS's do; lists naming an identifier that no longer exists would silently drop
        the instance from a static endpoint and add it to an exclusion-list one."""
        cluster = self._get_cluster(instance.account, instance.cluster_identifier)
        if cluster is None:
            return
        for endpoint in self._endpoints_of(cluster):
            if old in endpoint.static_members + endpoint.excluded_members:
                endpoint.static_members = [instance.identifier if m == old else m for m in endpoint.static_members]
                endpoint.excluded_members = [instance.identifier if m == old else m
                                             for m in endpoint.excluded_members]
                self._save_endpoint(endpoint)

    def _drop_cluster_endpoints(self, cluster: Cluster) -> None:
        """The cluster is gone: so are its custom endpoints."""
        endpoints = self._endpoints_of(cluster)
        for endpoint in endpoints:
            self.store.delete(KIND_CLUSTER_ENDPOINT, endpoint.account, endpoint.identifier)
        if endpoints:
            self._notify_endpoints(cluster)

    def _recover_cluster_endpoints(self) -> None:
        """At startup: finish what a stop interrupted (the listeners are told again when they start)."""
        for _, _, doc in self.store.list(KIND_CLUSTER_ENDPOINT, None):
            endpoint = ClusterEndpoint.from_doc(doc)
            if endpoint.status == "deleting" or self._cluster_by_rid(endpoint.cluster_resource_id) is None:
                self.store.delete(KIND_CLUSTER_ENDPOINT, endpoint.account, endpoint.identifier)
            elif endpoint.status != "available":
                endpoint.status = "available"
                self._save_endpoint(endpoint)

    # --- operations --------------------------------------------------------------------------

    def CreateDBClusterEndpoint(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = validate.identifier("DBClusterEndpointIdentifier", params.get("DBClusterEndpointIdentifier"))
        cluster = self._cluster(ctx.account, self.ident(ctx, params.get("DBClusterIdentifier"), "cluster"))
        custom_type = _custom_type(params.get("EndpointType"))
        static, excluded = self._lists(params)
        tags = validate.tags(params.get("Tags"))
        self._check_cluster_state(cluster)
        self._check_members(cluster, static + excluded)
        if self._get_endpoint(ctx.account, name) is not None:
            # Unconfirmed wording.
            raise rds_error("DBClusterEndpointAlreadyExistsFault", f"DBClusterEndpoint {name} already exists.")
        if len(self._endpoints_of(cluster)) >= MAX_CUSTOM_ENDPOINTS:
            # Unconfirmed wording.
            raise rds_error("DBClusterEndpointQuotaExceededFault",
                            f"Cannot create more than {MAX_CUSTOM_ENDPOINTS} custom endpoints for DB cluster "
                            f"{cluster.identifier}.")
        endpoint = ClusterEndpoint(
            identifier=name, account=ctx.account, region=self.region,
            resource_id=new_resource_id("cluster-endpoint-"), cluster_resource_id=cluster.resource_id,
            endpoint_type=custom_type, static_members=static, excluded_members=excluded, tags=tags,
        )
        self._save_endpoint(endpoint)
        ctx.record_resource("AWS::RDS::DBClusterEndpoint", endpoint.arn())
        self._spawn_settle(cluster, endpoint, "creating")
        return self._endpoint_view(endpoint, cluster.identifier)

    def ModifyDBClusterEndpoint(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(ctx.account, self.ident(ctx, params.get("DBClusterEndpointIdentifier"),
                                                          "cluster-endpoint"))
        cluster = self._endpoint_cluster(endpoint)
        custom_type = _custom_type(params["EndpointType"]) if params.get("EndpointType") else None
        # An empty list is as if not given: boto/boto3#3058 observes that ExcludedMembers=[] leaves the list
        # as it was (the query protocol sends an empty list as an empty parameter).
        static, excluded = self._lists(params)
        self._check_endpoint_state(endpoint)
        self._check_cluster_state(cluster)
        self._check_members(cluster, static + excluded)
        if custom_type is not None:
            endpoint.endpoint_type = custom_type
        if static:
            endpoint.static_members, endpoint.excluded_members = static, []
        elif excluded:
            endpoint.static_members, endpoint.excluded_members = [], excluded
        endpoint.status = "modifying"
        self._save_endpoint(endpoint)
        ctx.record_resource("AWS::RDS::DBClusterEndpoint", endpoint.arn())
        self._spawn_settle(cluster, endpoint, "modifying")
        return self._endpoint_view(endpoint, cluster.identifier)

    def DeleteDBClusterEndpoint(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(ctx.account, self.ident(ctx, params.get("DBClusterEndpointIdentifier"),
                                                          "cluster-endpoint"))
        cluster = self._endpoint_cluster(endpoint)
        self._check_endpoint_state(endpoint)
        self._check_cluster_state(cluster)
        endpoint.status = "deleting"
        self._save_endpoint(endpoint)
        ctx.record_resource("AWS::RDS::DBClusterEndpoint", endpoint.arn())
        self._spawn_settle(cluster, endpoint, "deleting")
        return self._endpoint_view(endpoint, cluster.identifier)

    def DescribeDBClusterEndpoints(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("DBClusterIdentifier"):
            clusters = [self._cluster(ctx.account, self.ident(ctx, params["DBClusterIdentifier"], "cluster"))]
        else:
            clusters = self._clusters(ctx.account)
        wanted = self.ident(ctx, params["DBClusterEndpointIdentifier"], "cluster-endpoint") \
            if params.get("DBClusterEndpointIdentifier") else None
        filters = {name: {v.lower() for v in values} for name, values in filter_values(params, _FILTERS).items()}
        rows: list[tuple[str, dict[str, Any]]] = []
        for cluster in clusters:
            if wanted is None:  # the built-in endpoints have no identifier: a named describe never lists them
                rows += [(f"{cluster.identifier} {i}", view) for i, view in enumerate(self._builtin_views(cluster))]
            for endpoint in self._endpoints_of(cluster):
                if wanted is None or endpoint.identifier == wanted:
                    rows.append((f"{cluster.identifier} 2 {endpoint.identifier}",
                                 self._endpoint_view(endpoint, cluster.identifier)))
        # Unconfirmed: a DBClusterEndpointIdentifier that names nothing lists nothing (the operation
        # declares no DBClusterEndpointNotFoundFault; AWS's driver wrapper checks the list's length).
        rows = [row for row in rows if _matches(row[1], filters)]
        page, marker = paginate(rows, lambda row: row[0], params)
        out: dict[str, Any] = {"DBClusterEndpoints": [view for _, view in page]}
        if marker:
            out["Marker"] = marker
        return out


def _matches(view: dict[str, Any], filters: dict[str, set[str]]) -> bool:
    """Filter values compare case-insensitively (the model documents them lower-case: ``custom``, ``reader``)."""
    attributes = {
        "db-cluster-endpoint-type": view["EndpointType"],
        "db-cluster-endpoint-custom-type": view.get("CustomEndpointType"),
        "db-cluster-endpoint-id": view.get("DBClusterEndpointIdentifier"),
        "db-cluster-endpoint-status": view["Status"],
    }
    for name, values in filters.items():
        value = attributes[name]
        if value is None or value.lower() not in values:
            return False
    return True

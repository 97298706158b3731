"""What every RDS operation family shares: the store, the runtime seam, lookups that raise AWS's
not-found errors, Marker/MaxRecords paging, filters, and the background work queue.

Background work: the API returns as soon as the new state ("creating", "stopping"...) is in the
store; the real work runs as an asyncio task. Tasks touching one cluster run one at a time in
submission order (a lock per cluster resource id), so "create the cluster" finishes before "open
the first instance's endpoint" starts. ``drain()`` waits for all of them (shutdown, tests).

A create answers once its background work is done, for at most ``settle_seconds`` (``_settle``):
the answer still says "creating", as AWS's does, but boto3's ``db_instance_available`` /
``db_cluster_available`` waiters, which poll first after a 30 s delay, then find the resource
available instead of waiting 30 s for a provisioning of a few seconds.
Every task re-reads its resources from the store by resource id, because an identifier may
have been renamed meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from auroral.api.context import RequestContext
from auroral.api.protocol import error_from_shape
from auroral.errors import AwsError, invalid_parameter_value
from auroral.rds import validate
from auroral.rds.endpoints import account_region_id
from auroral.rds.model import (
    KIND_CLUSTER,
    KIND_CLUSTER_PG,
    KIND_INSTANCE,
    Cluster,
    ClusterParameterGroup,
    Instance,
)
from auroral.rds.runtime import ClusterRuntime, MasterSecretManager, ServiceLinkedRoles
from auroral.regions import partition_of
from auroral.store import Store

log = logging.getLogger("auroral.rds")

T = TypeVar("T")


def rds_error(shape: str, message: str) -> AwsError:
    """An error declared in the RDS model, with its wire code and status."""
    return error_from_shape("rds", shape, message)


def paginate(items: Sequence[T], key: Callable[[T], str], params: dict[str, Any]) -> tuple[list[T], str | None]:
    """One page of ``items`` ordered by ``key``: those from the ``Marker`` on, at most ``MaxRecords``.
    The marker is the encoded key of the first item of the next page."""
    limit = validate.max_records(params)
    ordered = sorted(items, key=key)
    start = 0
    if params.get("Marker"):
        try:
            after = base64.urlsafe_b64decode(str(params["Marker"]).encode()).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise invalid_parameter_value("The parameter Marker is not valid.") from None
        start = next((i for i, item in enumerate(ordered) if key(item) >= after), len(ordered))
    page = ordered[start : start + limit]
    marker = None
    if start + limit < len(ordered):
        marker = base64.urlsafe_b64encode(key(ordered[start + limit]).encode()).decode()
    return page, marker


def filter_values(params: dict[str, Any], known: Sequence[str]) -> dict[str, set[str]]:
    """``Filters`` as {name: values}; unknown names are refused (unconfirmed wording)."""
    out: dict[str, set[str]] = {}
    for f in params.get("Filters") or []:
        name = str(f.get("Name") or "")
        if name not in known:
            raise invalid_parameter_value(f"Unrecognized filter name: {name}")
        out.setdefault(name, set()).update(str(v) for v in f.get("Values") or [])
    return out


def name_from_arn_or_id(value: str) -> str:
    """A ``db-cluster-id`` / ``db-instance-id`` filter value: an identifier or an ARN (filters narrow a
    listing already authorized on ``*``; the resource a request names goes through ``RdsBase.ident``)."""
    return value.rsplit(":", 1)[-1].lower() if value.startswith("arn:") else value.lower()


# arn:<partition>:rds:<region>:<account>:<type>:<name>; every part but the name free of ":".
RESOURCE_ARN = re.compile(r"arn:([a-z-]+):rds:([a-z0-9-]+):(\d{12}):([a-z-]+):([^:]+)")
_NOT_FOUND = {
    "cluster": ("DBClusterNotFoundFault", "DBCluster {} not found."),
    "db": ("DBInstanceNotFoundFault", "DBInstance {} not found."),
    "cluster-pg": ("DBParameterGroupNotFoundFault", "DBClusterParameterGroup not found: {}"),
    "subgrp": ("DBSubnetGroupNotFoundFault", "DB subnet group '{}' does not exist."),
    # Unconfirmed wording, modelled on the cluster's.
    "cluster-endpoint": ("DBClusterEndpointNotFoundFault", "DBClusterEndpoint {} not found."),
    "cluster-snapshot": ("DBClusterSnapshotNotFoundFault", "DBClusterSnapshot {} not found."),
}


def not_found(rtype: str, name: str) -> AwsError:
    shape, message = _NOT_FOUND[rtype]
    return rds_error(shape, message.format(name))


def rds_arn(ctx: RequestContext, rtype: str, name: str) -> str:
    """The canonical ARN of resource ``name`` (already lower-cased, as RDS stores it) in the request's
    partition, region and account."""
    return f"arn:{partition_of(ctx.region)}:rds:{ctx.region}:{ctx.account}:{rtype}:{name}"


class RdsBase:
    service = "rds"
    # The longest a create waits for its background work before answering anyway (see ``_settle``).
    settle_seconds: float = 10.0
    # Waits until the endpoint names resolve as the zone has them now (RdsService.attach_zone).
    _names_published: Callable[[], Awaitable[bool]] | None = None

    def __init__(
        self,
        store: Store,
        runtime: ClusterRuntime,
        directory: ServiceLinkedRoles,
        region: str,
        secrets: MasterSecretManager | None = None,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.directory = directory
        self.region = region
        self.secrets = secrets
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        # told of changes to a cluster's custom endpoints (cluster_endpoints.py)
        self._endpoint_listeners: list[Callable[[Cluster], None]] = []

    # --- background work -----------------------------------------------------------------

    async def _names_resolve(self) -> None:
        """Wait (briefly) until the endpoint names as they are now resolve, before reporting an instance
        ``available``: a client that reads its name from Describe can connect by it at once."""
        published = self._names_published
        if published is not None and not await published():
            log.warning("the endpoint names were not published in time")

    def _spawn(self, resource_id: str, what: str, work: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        lock = self._locks.setdefault(resource_id, asyncio.Lock())

        async def run() -> None:
            async with lock:
                try:
                    await work()
                except Exception:  # a bug: keep serving, and say where
                    log.exception("background task %s for %s failed", what, resource_id)

        task = asyncio.get_running_loop().create_task(run(), name=f"rds {what} {resource_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _settle(self, task: asyncio.Task[None]) -> None:
        """Wait until ``task`` is done, but at most ``settle_seconds``: the event loop keeps serving
        meanwhile, and the task keeps running when the time is up (it is not cancelled)."""
        if self.settle_seconds > 0 and not task.done():
            await asyncio.wait({task}, timeout=self.settle_seconds)

    async def drain(self) -> None:
        """Wait until every background task (including ones they start) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def dns_id(self, account: str) -> str:
        """The account's id in this region's endpoint DNS names (``rds/endpoints.py``)."""
        cache: dict[str, str] = self.__dict__.setdefault("_dns_ids", {})
        if account not in cache:
            cache[account] = account_region_id(self.store, account, self.region)
        return cache[account]

    # --- naming: one resolution for the handler and the authorization of the same request ----

    def ident(self, ctx: RequestContext, value: Any, rtype: str, *, arn_ok: bool = False) -> str:
        """The stored (lower-cased) identifier ``value`` names. With ``arn_ok`` (Describe* take
        "the identifier or the ARN") an ARN must be one of this partition, region and account and
        of type ``rtype``: anything else is refused as not found, never cut down to its last segment
        (unconfirmed: AWS's answer to a foreign ARN; not found is the plausible one). Without it, an
        ARN is just an identifier that matches nothing."""
        text = "" if value is None else str(value)
        if arn_ok and text.startswith("arn:"):
            m = RESOURCE_ARN.fullmatch(text)
            if (m is None or m.group(1) != partition_of(ctx.region) or m.group(2) != ctx.region
                    or m.group(3) != ctx.account or m.group(4) != rtype):
                raise not_found(rtype, text)
            return m.group(5).lower()
        return text.lower()

    # --- clusters --------------------------------------------------------------------------

    def _get_cluster(self, account: str, ident: str) -> Cluster | None:
        doc = self.store.get(KIND_CLUSTER, account, ident.lower())
        return None if doc is None else Cluster.from_doc(doc)

    def _cluster(self, account: str, ident: str) -> Cluster:
        cluster = self._get_cluster(account, ident)
        if cluster is None:
            raise rds_error("DBClusterNotFoundFault", f"DBCluster {ident} not found.")
        return cluster

    def _clusters(self, account: str | None) -> list[Cluster]:
        return [Cluster.from_doc(d) for _, _, d in self.store.list(KIND_CLUSTER, account)]

    def _cluster_by_rid(self, resource_id: str) -> Cluster | None:
        for cluster in self._clusters(None):
            if cluster.resource_id == resource_id:
                return cluster
        return None

    def _save_cluster(self, cluster: Cluster) -> None:
        self.store.put(KIND_CLUSTER, cluster.account, cluster.identifier, cluster.to_doc())

    def _drop_cluster(self, cluster: Cluster) -> None:
        self.store.delete(KIND_CLUSTER, cluster.account, cluster.identifier)
        self._locks.pop(cluster.resource_id, None)
        self._locks.pop(f"backup:{cluster.resource_id}", None)  # its first backup's (backups.py)

    def clusters_exist(self, account: str) -> bool:
        """Whether the account still has DB clusters or instances (IAM refuses to delete
        ``AWSServiceRoleForRDS`` while it does)."""
        return bool(self.store.list(KIND_CLUSTER, account) or self.store.list(KIND_INSTANCE, account))

    def associated_role_views(self, cluster: Cluster) -> list[dict[str, str]]:
        """DescribeDBClusters' AssociatedRoles (``rds/cluster_roles.py`` gives each its current status)."""
        return [dict(r) for r in cluster.associated_roles]

    # --- instances -------------------------------------------------------------------------

    def _get_instance(self, account: str, ident: str) -> Instance | None:
        doc = self.store.get(KIND_INSTANCE, account, ident.lower())
        return None if doc is None else Instance.from_doc(doc)

    def _instance(self, account: str, ident: str) -> Instance:
        instance = self._get_instance(account, ident)
        if instance is None:
            raise rds_error("DBInstanceNotFoundFault", f"DBInstance {ident} not found.")
        return instance

    def _instances(self, account: str | None) -> list[Instance]:
        return [Instance.from_doc(d) for _, _, d in self.store.list(KIND_INSTANCE, account)]

    def _members(self, cluster: Cluster) -> list[Instance]:
        return [i for i in self._instances(cluster.account) if i.cluster_identifier == cluster.identifier]

    def _instance_by_rid(self, account: str, resource_id: str) -> Instance | None:
        for instance in self._instances(account):
            if instance.resource_id == resource_id:
                return instance
        return None

    def _save_instance(self, instance: Instance) -> None:
        self.store.put(KIND_INSTANCE, instance.account, instance.identifier, instance.to_doc())

    def _drop_instance(self, instance: Instance) -> None:
        self.store.delete(KIND_INSTANCE, instance.account, instance.identifier)

    # --- parameter groups ------------------------------------------------------------------

    def _get_group(self, account: str, name: str) -> ClusterParameterGroup | None:
        doc = self.store.get(KIND_CLUSTER_PG, account, name.lower())
        return None if doc is None else ClusterParameterGroup.from_doc(doc)

    def _save_group(self, group: ClusterParameterGroup) -> None:
        self.store.put(KIND_CLUSTER_PG, group.account, group.name, group.to_doc())

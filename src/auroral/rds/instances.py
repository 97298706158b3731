"""DB instances of Aurora clusters: CreateDBInstance, DescribeDBInstances, ModifyDBInstance,
DeleteDBInstance, RebootDBInstance.

The first instance of a cluster is the writer (``IsClusterWriter``) and serves the cluster's first
PostgreSQL server; later ones are readers, each a streaming replica of the writer's server with an
endpoint of its own (the runtime makes the server when the endpoint first opens). Deleting the writer
while readers remain fails over to one of them first (``failover.py``), as Aurora does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AwsError, invalid_parameter_combination, invalid_parameter_value
from auroral.rds import events, validate
from auroral.rds.base import filter_values, name_from_arn_or_id, paginate, rds_error
from auroral.rds.clusters import ClusterOperations
from auroral.rds.endpoints import instance_endpoint_name
from auroral.rds.model import ENGINE, INCOMPATIBLE, Cluster, Instance, new_resource_id, utcnow
from auroral.rds.runtime import IncompatibleParameters, RuntimeFailure
from auroral.rds.views import instance_view

log = logging.getLogger("auroral.rds")

_SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge")
# Instance classes Aurora PostgreSQL offers (memory-optimized, burstable, Serverless v2).
INSTANCE_CLASSES = frozenset(
    [f"db.{family}.{size}" for family in ("r5", "r6g", "r6i", "r7g", "r7i", "r8g", "x2g") for size in _SIZES]
    + ["db.t3.medium", "db.t3.large", "db.t4g.medium", "db.t4g.large", "db.serverless"]
)
_INSTANCE_FILTERS = ("db-cluster-id", "db-instance-id", "dbi-resource-id", "engine", "domain")
# Filters auroral can answer; "domain" matches nothing here.
_INSTANCE_ATTRIBUTES: dict[str, Callable[[Instance], str]] = {
    "db-cluster-id": lambda i: i.cluster_identifier,
    "db-instance-id": lambda i: i.identifier,
    "dbi-resource-id": lambda i: i.resource_id,
    "engine": lambda i: i.engine,
}


def not_available(instance: Instance) -> AwsError:
    # Observed wording (StopDBInstance): "Instance <id> is not in available state."
    return rds_error("InvalidDBInstanceStateFault", f"Instance {instance.identifier} is not in available state.")


def unsupported_class(instance_class: str, version: str) -> AwsError:
    return invalid_parameter_combination(
        f"RDS does not support creating a DB instance with the following combination: "
        f"DBInstanceClass={instance_class}, Engine={ENGINE}, EngineVersion={version}, "
        "LicenseModel=postgresql-license. For supported combinations of instance class and database "
        "engine version, see the documentation."
    )


class InstanceOperations(ClusterOperations):
    def view_instance(self, instance: Instance, cluster: Cluster | None = None) -> dict[str, Any]:
        if cluster is None:
            cluster = self._get_cluster(instance.account, instance.cluster_identifier)
        name = instance_endpoint_name(instance.identifier, self.dns_id(instance.account), instance.region)
        return instance_view(instance, cluster, name, subnet_group=self.subnet_group_view(cluster),
                             certificate=self.certificate_details())

    async def CreateDBInstance(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ident = validate.identifier("DBInstanceIdentifier", params.get("DBInstanceIdentifier"))
        if params.get("Engine") != ENGINE:
            raise invalid_parameter_value("Invalid DB engine")
        if not params.get("DBClusterIdentifier"):
            # Unconfirmed wording: Aurora instances exist only inside a cluster.
            raise invalid_parameter_value("The parameter DBClusterIdentifier must be provided for Aurora DB instances.")
        cluster = self._cluster(ctx.account, str(params["DBClusterIdentifier"]))
        for param, what in (("MasterUserPassword", "master user password"), ("MasterUsername", "master user name"),
                            ("DBName", "database name")):
            if params.get(param):
                raise invalid_parameter_combination(
                    f"The requested DB Instance will be a member of a DB Cluster. Set {what} for the DB Cluster."
                )
        if params.get("EngineVersion") and params["EngineVersion"] != cluster.engine_version:
            # Unconfirmed wording.
            raise invalid_parameter_combination(
                f"The engine version you requested for your DB instance ({params['EngineVersion']}) does not "
                f"match the engine version of your DB cluster ({cluster.engine_version})."
            )
        instance_class = str(params.get("DBInstanceClass") or "")
        if instance_class not in INSTANCE_CLASSES:
            raise unsupported_class(instance_class, cluster.engine_version)
        tier = int(params.get("PromotionTier", 1))
        if not 0 <= tier <= 15:
            raise invalid_parameter_value(f"Invalid value {tier} for PromotionTier. Must be between 0 and 15.")
        # incompatible-parameters: unconfirmed whether AWS accepts it; accepted (the instance takes
        # the cluster's state) so that a cluster created with a group PostgreSQL refuses gets the
        # instance whose reboot, after ModifyDBCluster fixes the group, recovers it — as it did when
        # the instance was created while the cluster was still creating.
        if cluster.status not in ("creating", "available", INCOMPATIBLE):
            # Unconfirmed wording.
            raise rds_error("InvalidDBClusterStateFault",
                            f"DB cluster {cluster.identifier} is in {cluster.status} state.")
        if self._get_instance(ctx.account, ident) is not None:
            raise rds_error("DBInstanceAlreadyExistsFault", "DB instance already exists")
        members = [m for m in self._members(cluster) if m.status != "deleting"]
        zone = str(params.get("AvailabilityZone") or "")
        if zone and zone not in cluster.availability_zones:
            # Unconfirmed wording.
            raise invalid_parameter_combination(
                f"The availability zone {zone} is not one of the DB cluster's availability zones."
            )
        zone = zone or cluster.availability_zones[len(members) % len(cluster.availability_zones)]
        tags = validate.tags(params.get("Tags"))
        if params.get("PubliclyAccessible") is True:
            self._check_public(cluster)
        instance = Instance(
            identifier=ident,
            account=ctx.account,
            region=self.region,
            resource_id=new_resource_id("db-"),
            cluster_identifier=cluster.identifier,
            instance_class=instance_class,
            engine_version=cluster.engine_version,
            created=utcnow(),
            availability_zone=zone,
            is_writer=not any(m.is_writer for m in members),
            promotion_tier=tier,
            # Aurora instances default to private (AWS-BEHAVIOUR.md).
            publicly_accessible=params.get("PubliclyAccessible") is True,
            copy_tags_to_snapshot=params.get("CopyTagsToSnapshot") is True,
            tags=tags,
        )
        self._ensure_service_linked_role(ctx)
        self._ensure_interface(cluster, instance)
        self._save_instance(instance)
        ctx.record_resource("AWS::RDS::DBInstance", instance.arn())
        task = self._spawn_open(cluster, instance)
        answer = {"DBInstance": self.view_instance(instance, cluster)}  # "creating", as AWS answers
        await self._settle(task)  # ready when the answer arrives, if that takes a few seconds (base.py)
        return answer

    def _spawn_open(self, cluster: Cluster, instance: Instance) -> asyncio.Task[None]:
        """Open the endpoint once the cluster's server runs (after a pending create, in order)."""
        rid, account, dbi = cluster.resource_id, instance.account, instance.resource_id

        async def work() -> None:
            current = self._instance_by_rid(account, dbi)
            owner = self._cluster_by_rid(rid)
            if current is None or owner is None or current.status != "creating":
                return
            if owner.status in ("stopped", INCOMPATIBLE):
                current.transition(owner.status, owner.status_reason if owner.status == INCOMPATIBLE else None)
                self._save_instance(current)
                return
            if owner.status != "available":
                current.transition("failed", f"DB cluster {owner.identifier} is {owner.status}")
                self._save_instance(current)
                return
            await self._open_endpoint(owner, current)

        return self._spawn(rid, "open-endpoint", work)

    def DescribeDBInstances(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("DBInstanceIdentifier"):
            ident = self.ident(ctx, params["DBInstanceIdentifier"], "db", arn_ok=True)
            instances = [self._instance(ctx.account, ident)]
        else:
            instances = self._instances(ctx.account)
        for name, values in filter_values(params, _INSTANCE_FILTERS).items():
            ids = {name_from_arn_or_id(v) for v in values}
            get = _INSTANCE_ATTRIBUTES.get(name)
            wanted = ids if name in ("db-cluster-id", "db-instance-id") else values
            instances = [i for i in instances if get is not None and get(i) in wanted]
        items, marker = paginate(instances, lambda i: i.identifier, params)
        out: dict[str, Any] = {"DBInstances": [self.view_instance(i) for i in items]}
        if marker:
            out["Marker"] = marker
        return out

    async def ModifyDBInstance(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        instance = self._instance(ctx.account, str(params.get("DBInstanceIdentifier") or ""))
        if instance.status != "available":
            raise not_available(instance)
        if params.get("MasterUserPassword"):
            # Unconfirmed wording.
            raise invalid_parameter_combination(
                "The specified DB instance is a member of a DB cluster. Modify the master password for the DB cluster."
            )
        if params.get("DBInstanceClass") and params["DBInstanceClass"] not in INSTANCE_CLASSES:
            raise unsupported_class(str(params["DBInstanceClass"]), instance.engine_version)
        new_ident: str | None = None
        if params.get("NewDBInstanceIdentifier"):
            new_ident = validate.identifier("NewDBInstanceIdentifier", params["NewDBInstanceIdentifier"])
            if new_ident != instance.identifier and self._get_instance(ctx.account, new_ident) is not None:
                raise rds_error("DBInstanceAlreadyExistsFault", "DB instance already exists")
        if "PromotionTier" in params:
            tier = int(params["PromotionTier"])
            if not 0 <= tier <= 15:
                raise invalid_parameter_value(f"Invalid value {tier} for PromotionTier. Must be between 0 and 15.")
            instance.promotion_tier = tier
        # Every change applies at once (no maintenance windows); the class is recorded only.
        if params.get("DBInstanceClass"):
            instance.instance_class = str(params["DBInstanceClass"])
        if params.get("PubliclyAccessible") is True and not instance.publicly_accessible:
            owner = self._get_cluster(ctx.account, instance.cluster_identifier)
            if owner is not None:
                self._check_public(owner, modify=True)
        if "PubliclyAccessible" in params:
            # Applies to the next connection: the endpoint reads it per connection.
            instance.publicly_accessible = params["PubliclyAccessible"] is True
        if "CopyTagsToSnapshot" in params:
            instance.copy_tags_to_snapshot = params["CopyTagsToSnapshot"] is True
        renamed = bool(new_ident) and new_ident != instance.identifier
        with self.store.transaction():
            if renamed and new_ident:
                # AWS: the old name is deleted at once, the instance reboots and is known by the new one
                self._drop_instance(instance)
                old, instance.identifier = instance.identifier, new_ident
                self._rename_member(instance, old)
                instance.transition("renaming")
            self._save_instance(instance)
        ctx.record_resource("AWS::RDS::DBInstance", instance.arn())
        answer = {"DBInstance": self.view_instance(instance)}
        if renamed:
            # answered once the instance serves under its new name (as creates are, rds/base.py _settle)
            await self._settle(self._spawn_rename(instance))
        return answer

    def _spawn_rename(self, instance: Instance) -> asyncio.Task[None]:
        """The runtime learns the new name (what Aurora's functions report, the TLS names) and closes the
        instance's sessions: AWS reboots a renamed instance ("When you change the DB instance identifier,
        an instance reboot occurs immediately" with ApplyImmediately; auroral applies every change at
        once). The instance is available again once its new name resolves."""
        account, dbi = instance.account, instance.resource_id
        owner = self._get_cluster(account, instance.cluster_identifier)
        rid = owner.resource_id if owner is not None else dbi

        async def work() -> None:
            current = self._instance_by_rid(account, dbi)
            cluster = self._cluster_by_rid(rid)
            if current is None or current.status != "renaming":
                return
            if cluster is not None:
                try:
                    await self.runtime.rename_instance(cluster, current)
                except RuntimeFailure as exc:
                    log.warning("instance %s: the rename did not reach its server: %s", current.identifier,
                                exc.reason)
            await self._names_resolve()
            current = self._instance_by_rid(account, dbi)
            if current is not None and current.status == "renaming":
                current.transition("available")
                self._save_instance(current)

        return self._spawn(rid, "rename", work)

    def DeleteDBInstance(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        instance = self._instance(ctx.account, str(params.get("DBInstanceIdentifier") or ""))
        if instance.status == "deleting":
            # Unconfirmed wording.
            raise rds_error("InvalidDBInstanceStateFault", f"Instance {instance.identifier} is already being deleted.")
        if instance.status not in ("creating", "available", "failed", "stopped", "inaccessible-encryption-credentials",
                                   INCOMPATIBLE):
            raise not_available(instance)
        cluster = self._get_cluster(ctx.account, instance.cluster_identifier)
        instance.transition("deleting")
        self._save_instance(instance)
        ctx.record_resource("AWS::RDS::DBInstance", instance.arn())
        self._spawn_instance_delete(cluster, instance)
        return {"DBInstance": self.view_instance(instance, cluster)}

    def _spawn_instance_delete(self, cluster: Cluster | None, instance: Instance) -> None:
        account, dbi = instance.account, instance.resource_id
        rid = cluster.resource_id if cluster else dbi

        async def work() -> None:
            current = self._instance_by_rid(account, dbi)
            if current is None or current.status != "deleting":
                return
            owner = self._cluster_by_rid(rid)
            promoted = owner is not None and current.is_writer and await self._hand_writer_over(owner, current)
            if owner is not None and current.address:
                try:
                    await self.runtime.close_endpoint(owner, current)
                except RuntimeFailure as exc:
                    log.warning("instance %s: closing endpoint failed: %s", current.identifier, exc.reason)
            if owner is not None:
                try:
                    await self.runtime.delete_instance(owner, current)
                except RuntimeFailure as exc:
                    log.warning("instance %s: removing its server failed: %s", current.identifier, exc.reason)
            self._drop_instance(current)
            self._release_interface(current)
            self._forget_member(current)
            events.instance_event(self.store, current, events.INSTANCE_DELETED)
            if owner is not None and current.is_writer and not promoted:
                owner = self._cluster_by_rid(rid) or owner
                await self._promote_reader(owner)

        self._spawn(rid, "delete-instance", work)

    async def _hand_writer_over(self, cluster: Cluster, writer: Instance) -> bool:
        """The writer instance is being deleted: a real failover to a reader (``failover.py``); False if
        none happened (then the flags move as metadata only)."""
        return False

    async def _promote_reader(self, cluster: Cluster) -> None:
        readers = [m for m in self._members(cluster) if m.status != "deleting"]
        if not readers or any(m.is_writer for m in readers):
            return
        chosen = min(readers, key=lambda m: (m.promotion_tier, m.identifier))
        chosen.is_writer = True
        self._save_instance(chosen)
        if chosen.status == "available" and cluster.status == "available":
            # Re-open so the runtime registers it as the writer (cluster) endpoint.
            try:
                await self.runtime.close_endpoint(cluster, chosen)
            except RuntimeFailure as exc:
                log.warning("instance %s: closing endpoint failed: %s", chosen.identifier, exc.reason)
            await self._open_endpoint(cluster, chosen)

    def RebootDBInstance(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        instance = self._instance(ctx.account, str(params.get("DBInstanceIdentifier") or ""))
        # AWS: an instance in incompatible-parameters can be rebooted (to take up fixed parameters)
        if instance.status not in ("available", INCOMPATIBLE):
            raise not_available(instance)
        cluster = self._cluster(ctx.account, instance.cluster_identifier)
        if cluster.status not in ("available", INCOMPATIBLE):
            raise not_available(instance)
        instance.transition("rebooting")
        self._save_instance(instance)
        ctx.record_resource("AWS::RDS::DBInstance", instance.arn())
        self._spawn_reboot(cluster, instance)
        return {"DBInstance": self.view_instance(instance, cluster)}

    def _spawn_reboot(self, cluster: Cluster, instance: Instance) -> None:
        """Rebooting the writer restarts the cluster's servers (the writer's first), which take up
        pending-reboot parameters; a reader's reboot restarts its own server only. In
        incompatible-parameters any instance's reboot starts the server with the group's current values
        and, if PostgreSQL runs with them, brings the cluster and every instance back."""
        rid, account, dbi = cluster.resource_id, instance.account, instance.resource_id

        async def work() -> None:
            current = self._instance_by_rid(account, dbi)
            owner = self._cluster_by_rid(rid)
            if current is None or owner is None or current.status != "rebooting":
                return
            recovering = owner.status == INCOMPATIBLE
            if current.is_writer or recovering:
                self._refresh_parameters(owner)
                self._save_cluster(owner)
                try:
                    await self.runtime.reboot_cluster(owner)
                except IncompatibleParameters as exc:
                    await self._incompatible(rid, f"reboot failed: {exc.reason}", rebooted=dbi)
                    return
                except RuntimeFailure as exc:
                    self._fail_cluster(rid, f"reboot failed: {exc.reason}")
                    current = self._instance_by_rid(account, dbi) or current
                    current.transition("failed", exc.reason)
                    self._save_instance(current)
                    return
            else:
                try:
                    await self.runtime.reboot_instance(owner, current)
                except RuntimeFailure as exc:
                    current = self._instance_by_rid(account, dbi) or current
                    current.transition("failed", exc.reason)
                    self._save_instance(current)
                    return
            if recovering:
                owner = self._cluster_by_rid(rid)
                if owner is None or owner.status != INCOMPATIBLE:
                    return
                owner.transition("available")
                self._save_cluster(owner)
                for member in self._members(owner):
                    if member.status in (INCOMPATIBLE, "rebooting"):
                        await self._open_endpoint(owner, member)
                current = self._instance_by_rid(account, dbi)
                if current is not None and current.status == "available":
                    events.instance_event(self.store, current, events.INSTANCE_RESTARTED)
                return
            current = self._instance_by_rid(account, dbi)
            if current is not None and current.status == "rebooting":
                current.transition("available")
                self._save_instance(current)
                events.instance_event(self.store, current, events.INSTANCE_RESTARTED)

        self._spawn(rid, "reboot", work)

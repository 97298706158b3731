"""DB clusters: CreateDBCluster, DescribeDBClusters, ModifyDBCluster, DeleteDBCluster,
StartDBCluster, StopDBCluster, and the service-linked role their first create needs.

Each mutating call validates, writes the new state to the store, and returns it; the real work
(the runtime) runs in a background task that moves the state on when it has really happened:
``creating → available | failed``, ``resetting-master-credentials → available``,
``stopping → stopped``, ``starting → available``, ``deleting → (gone)``. A server that PostgreSQL will
not run with the cluster's parameters moves the cluster and its instances to ``incompatible-parameters``
(not ``failed``): fix the parameter group (reset it, or ModifyDBCluster to another group) and reboot
an instance (RebootDBInstance) to bring it back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AccessDenied, AwsError, invalid_parameter_combination, invalid_parameter_value
from auroral.rds import events, validate
from auroral.rds.base import filter_values, name_from_arn_or_id, paginate, rds_error
from auroral.rds.certificates import CertificateOperations
from auroral.rds.cluster_endpoints import ClusterEndpointOperations
from auroral.rds.encryption import INACCESSIBLE, EncryptionOperations
from auroral.rds.endpoints import cluster_endpoint_name, reader_endpoint_name
from auroral.rds.engine_versions import UpgradePlan, default_group_name
from auroral.rds.managed_secrets import KMS_NEEDS_MANAGED, ManagedSecretOperations
from auroral.rds.model import (
    ENGINE,
    INCOMPATIBLE,
    INSTANCE_TRANSITIONS,
    Cluster,
    Instance,
    new_resource_id,
    utcnow,
)
from auroral.rds.parameter_groups import ParameterGroupOperations, check_value, family_major
from auroral.rds.runtime import IncompatibleParameters, RuntimeFailure
from auroral.rds.subnet_groups import SubnetGroupOperations
from auroral.rds.views import cluster_view

log = logging.getLogger("auroral.rds")

SLR_SERVICE = "rds.amazonaws.com"
SLR_MESSAGE = (
    "Unable to create the resource. Verify that you have permission to create service linked role. "
    "Otherwise wait and try again later."
)
_CLUSTER_FILTERS = ("db-cluster-id", "db-cluster-resource-id", "engine", "engine-mode", "clone-group-id", "domain")
# Filters auroral can answer; the others (clone-group-id, domain) match nothing here.
_CLUSTER_ATTRIBUTES: dict[str, Callable[[Cluster], str]] = {
    "db-cluster-id": lambda c: c.identifier,
    "db-cluster-resource-id": lambda c: c.resource_id,
    "engine": lambda c: c.engine,
    "engine-mode": lambda c: "provisioned",
}
_DELETABLE = ("creating", "available", "stopped", "failed", "inaccessible-encryption-credentials", INCOMPATIBLE)
# what needs the server running, refused while it cannot start
_NEEDS_SERVER = ("MasterUserPassword", "ManageMasterUserPassword", "RotateMasterUserPassword")


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def wrong_cluster_state(cluster: Cluster, expected: str) -> AwsError:
    # Unconfirmed wording, modelled on RDS's "... is in <state> state but expected it to be one of ...".
    return rds_error(
        "InvalidDBClusterStateFault",
        f"DbCluster {cluster.identifier} is in {cluster.status} state but expected it to be one of {expected}.",
    )


def _opt_str(value: Any) -> str | None:
    return str(value) if value else None


class ClusterOperations(EncryptionOperations, ManagedSecretOperations, ParameterGroupOperations, SubnetGroupOperations,
                        CertificateOperations, ClusterEndpointOperations):
    # --- shared helpers --------------------------------------------------------------------

    def _ensure_service_linked_role(self, ctx: RequestContext) -> None:
        """The account's first create makes ``AWSServiceRoleForRDS``, if the caller may."""
        if self.directory.service_linked_role_exists(SLR_SERVICE):
            return
        arn = f"arn:aws:iam::{ctx.account}:role/aws-service-role/{SLR_SERVICE}/AWSServiceRoleForRDS"
        try:
            ctx.authorize("iam:CreateServiceLinkedRole", [arn], {"iam:AWSServiceName": SLR_SERVICE})
        except AccessDenied:
            raise invalid_parameter_value(SLR_MESSAGE) from None
        try:
            self.directory.create_service_linked_role(SLR_SERVICE)
        except AwsError:
            if not self.directory.service_linked_role_exists(SLR_SERVICE):  # not just a concurrent create
                raise

    def view_cluster(self, cluster: Cluster) -> dict[str, Any]:
        ident = self.dns_id(cluster.account)
        names = (cluster_endpoint_name(cluster.identifier, ident, cluster.region),
                 reader_endpoint_name(cluster.identifier, ident, cluster.region))
        view = cluster_view(cluster, self._members(cluster), self.runtime.cluster_endpoint(cluster), names,
                            certificate=self.certificate_details(),
                            custom_endpoints=self.custom_endpoint_dns_names(cluster))
        view["AssociatedRoles"] = self.associated_role_views(cluster)
        pending = self.pending_engine_version(cluster)
        if pending is not None:
            view["PendingModifiedValues"] = {**view.get("PendingModifiedValues", {}), "EngineVersion": pending}
        return view

    def pending_engine_version(self, cluster: Cluster) -> str | None:
        """The version of an engine upgrade waiting for the maintenance window (``rds/upgrades.py``)."""
        return None

    def _forget_upgrade(self, cluster: Cluster) -> None:
        """The cluster is gone: so is a recorded engine upgrade (``rds/upgrades.py``)."""

    def _group_for(self, account: str, name: Any, major: int) -> str:
        if not name:
            return default_group_name(major)
        group, family, values = self._group_values(account, str(name), "DBClusterParameterGroupNotFoundFault")
        if family_major(family) != major:
            # Unconfirmed wording.
            raise invalid_parameter_combination(
                f"The parameter group {group} with DBParameterGroupFamily {family} can't be used for this "
                f"cluster. Use a parameter group with DBParameterGroupFamily {ENGINE}{major}."
            )
        # values stored before they were checked: a cluster does not take up a group PostgreSQL may refuse
        for p, value in self.invalid_values(values, major):
            check_value(p, value, self.allowed_values(p, major))
        return group

    def _fail_cluster(self, resource_id: str, reason: str) -> None:
        cluster = self._cluster_by_rid(resource_id)
        if cluster is None or cluster.status == "deleting":
            return
        log.warning("cluster %s failed: %s", cluster.identifier, reason)
        cluster.transition("failed", reason)
        self._save_cluster(cluster)

    async def _incompatible(self, resource_id: str, reason: str, rebooted: str | None = None) -> None:
        """PostgreSQL will not run with the cluster's parameters: the cluster and its instances show
        ``incompatible-parameters`` (endpoints closed) until fixed parameters and a reboot bring it back.
        Instances with a reboot still to run keep ``rebooting`` (that reboot tries again), except
        ``rebooted``, whose reboot this was."""
        cluster = self._cluster_by_rid(resource_id)
        if cluster is None or cluster.status == "deleting":
            return
        log.warning("cluster %s: incompatible parameters: %s", cluster.identifier, reason)
        for member in self._members(cluster):
            try:
                await self.runtime.close_endpoint(cluster, member)
            except RuntimeFailure as exc:
                log.warning("instance %s: closing endpoint failed: %s", member.identifier, exc.reason)
            current = self._instance_by_rid(member.account, member.resource_id)
            if current is None or (current.status == "rebooting" and current.resource_id != rebooted):
                continue
            if INCOMPATIBLE in INSTANCE_TRANSITIONS[current.status]:
                current.transition(INCOMPATIBLE, reason)
                self._save_instance(current)
        cluster = self._cluster_by_rid(resource_id)
        if cluster is not None and cluster.status != "deleting":
            cluster.transition(INCOMPATIBLE, reason)
            self._save_cluster(cluster)

    def _set_members(self, cluster: Cluster, status: str, *, only: tuple[str, ...] = ()) -> None:
        for member in self._members(cluster):
            if member.status == "deleting" or (only and member.status not in only):
                continue
            member.transition(status)
            self._save_instance(member)

    async def _reconcile_writer(self, cluster: Cluster) -> None:
        """After a start, make the writer flags agree with the runtime (``failover.py``)."""

    async def _open_endpoint(self, cluster: Cluster, instance: Instance) -> None:
        """Open an instance's endpoint and mark it available (or failed, with the reason)."""
        try:
            address, port = await self.runtime.open_endpoint(cluster, instance)
        except RuntimeFailure as exc:
            current = self._instance_by_rid(instance.account, instance.resource_id)
            if current is not None and current.status != "deleting":
                current.transition("failed", exc.reason)
                self._save_instance(current)
            log.warning("instance %s: endpoint failed: %s", instance.identifier, exc.reason)
            return
        current = self._instance_by_rid(instance.account, instance.resource_id)
        if current is None or current.status == "deleting":
            return
        if (current.address, current.endpoint_port) != (address, port):
            current.address, current.endpoint_port = address, port
            self._save_instance(current)  # its name resolves to the new address (rds/dns_records.py)
            await self._names_resolve()
            current = self._instance_by_rid(instance.account, instance.resource_id)
            if current is None or current.status == "deleting":
                return
        created = current.status == "creating"
        current.transition("available")
        self._save_instance(current)
        if created:  # also when its endpoint first opens at the cluster's start
            events.instance_event(self.store, current, events.INSTANCE_CREATED)

    # --- operations ------------------------------------------------------------------------

    async def CreateDBCluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ident = validate.identifier("DBClusterIdentifier", params.get("DBClusterIdentifier"))
        if params.get("Engine") != ENGINE:
            raise invalid_parameter_value("Invalid DB engine")
        if params.get("EngineMode") not in (None, "", "provisioned"):
            # Unconfirmed wording.
            raise invalid_parameter_value(f"The engine mode {params['EngineMode']} is not supported for {ENGINE}.")
        version = self.resolve_version(params.get("EngineVersion"))
        managed = _bool(params.get("ManageMasterUserPassword"))
        username = validate.master_username(params.get("MasterUsername"))
        password: str | None = None
        if managed:
            if params.get("MasterUserPassword"):
                # Observed code; unconfirmed wording.
                raise invalid_parameter_value(
                    "You can't specify MasterUserPassword when ManageMasterUserPassword is turned on."
                )
            if self.secrets is None:
                raise invalid_parameter_value(
                    "ManageMasterUserPassword is not supported by this auroral installation yet."
                )
        else:
            if params.get("MasterUserSecretKmsKeyId"):
                raise invalid_parameter_combination(KMS_NEEDS_MANAGED)
            password = validate.master_password(params.get("MasterUserPassword"))
        database = validate.database_name(params.get("DatabaseName"))
        port = validate.port(params.get("Port"))
        group = self._group_for(ctx.account, params.get("DBClusterParameterGroupName"), version.major)
        tags = validate.tags(params.get("Tags"))
        retention = validate.backup_retention(params.get("BackupRetentionPeriod"))
        window = validate.backup_window(params.get("PreferredBackupWindow"))
        if self._get_cluster(ctx.account, ident) is not None:
            raise rds_error("DBClusterAlreadyExistsFault", "DB Cluster already exists")
        encrypted, key_arn = self._storage_key(ctx, params)
        # The subnet group's VPC, validated security groups (default: the VPC's default group), its zones.
        placement = self._place(ctx.account, params.get("DBSubnetGroupName"), params.get("VpcSecurityGroupIds"))
        zones = placement.zones or [f"{self.region}{z}" for z in "abc"]
        requested_zones = [str(z) for z in params.get("AvailabilityZones") or []]
        cluster = Cluster(
            identifier=ident,
            account=ctx.account,
            region=self.region,
            resource_id=new_resource_id("cluster-"),
            engine_version=version.version,
            major=version.major,
            master_username=username,
            created=utcnow(),
            parameter_group=group,
            port=port,
            database_name=database,
            vpc_security_group_ids=placement.security_group_ids,
            subnet_group=placement.subnet_group,
            vpc_id=placement.vpc_id,
            availability_zones=requested_zones or zones,
            storage_encrypted=encrypted,
            kms_key_id=key_arn,
            backup_retention_period=retention if retention is not None else 1,
            preferred_backup_window=window or "07:00-07:30",
            iam_auth=_bool(params.get("EnableIAMDatabaseAuthentication")),
            deletion_protection=_bool(params.get("DeletionProtection")),
            copy_tags_to_snapshot=_bool(params.get("CopyTagsToSnapshot")),
            manage_master_password=managed,
            tags=tags,
        )
        self._ensure_service_linked_role(ctx)  # last check before anything is created
        self._grant_storage_key(cluster)  # RDS's grant on the key, for the cluster's lifetime
        self._refresh_parameters(cluster)
        if managed:
            assert self.secrets is not None
            # Authorized as the caller (secretsmanager:CreateSecret, kms:...): on AccessDenied
            # nothing exists yet, neither the secret nor the cluster.
            secret, password = self.secrets.create_master_secret(
                ctx, cluster.arn(), username, _opt_str(params.get("MasterUserSecretKmsKeyId"))
            )
            cluster.master_user_secret = dict(secret)
            try:
                self._save_cluster(cluster)
            except BaseException:
                self.secrets.delete_master_secret(ctx.account, secret["SecretArn"])
                raise
        else:
            self._save_cluster(cluster)
        assert password is not None
        ctx.record_resource("AWS::RDS::DBCluster", cluster.arn())
        task = self._spawn_create(cluster, password)
        answer = {"DBCluster": self.view_cluster(cluster)}  # "creating", as AWS answers
        await self._settle(task)  # available when the answer arrives, if that takes a few seconds (base.py)
        return answer

    def _spawn_create(self, cluster: Cluster, password: str) -> asyncio.Task[None]:
        rid = cluster.resource_id

        async def work() -> None:
            current = self._cluster_by_rid(rid)
            if current is None or current.status != "creating":
                return
            try:
                await self.runtime.create_cluster(current, password)
            except IncompatibleParameters as exc:
                # the cluster exists (with the master password) but does not run with the group's values
                await self._incompatible(rid, exc.reason)
                current = self._cluster_by_rid(rid)
                if current is not None:
                    self._secret_password_applied(current)
                    events.cluster_event(self.store, current, events.CLUSTER_CREATED)  # it exists, does not run
                return
            except RuntimeFailure as exc:
                self._fail_cluster(rid, exc.reason)
                return
            current = self._cluster_by_rid(rid)
            if current is not None and current.status == "creating":
                current.transition("available")
                self._save_cluster(current)
                self._secret_password_applied(current)
                events.cluster_event(self.store, current, events.CLUSTER_CREATED)
                self._first_backup(current)

        return self._spawn(rid, "create", work)

    def DescribeDBClusters(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("DBClusterIdentifier"):
            ident = self.ident(ctx, params["DBClusterIdentifier"], "cluster", arn_ok=True)
            clusters = [self._cluster(ctx.account, ident)]
        else:
            clusters = self._clusters(ctx.account)
        filters = filter_values(params, _CLUSTER_FILTERS)
        for name, values in filters.items():
            wanted = {name_from_arn_or_id(v) for v in values} if name == "db-cluster-id" else values
            attribute = _CLUSTER_ATTRIBUTES.get(name)
            clusters = [c for c in clusters if attribute is not None and attribute(c) in wanted]
        items, marker = paginate(clusters, lambda c: c.identifier, params)
        out: dict[str, Any] = {"DBClusters": [self.view_cluster(c) for c in items]}
        if marker:
            out["Marker"] = marker
        return out

    async def ModifyDBCluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(ctx.account, str(params.get("DBClusterIdentifier") or ""))
        # incompatible-parameters: the parameter group may be replaced (then RebootDBInstance), nothing
        # that needs the server running
        if cluster.status not in ("available", INCOMPATIBLE) or (
            cluster.status == INCOMPATIBLE and any(params.get(name) is not None for name in _NEEDS_SERVER)
        ):
            # Unconfirmed wording.
            raise rds_error(
                "InvalidDBClusterStateFault",
                f"DB cluster {cluster.identifier} is not available for modification with status {cluster.status}",
            )
        password: str | None = None
        plan = self._plan_master_secret(cluster, params)
        if params.get("MasterUserPassword"):
            password = validate.master_password(params["MasterUserPassword"])
        upgrade: UpgradePlan | None = None
        if params.get("EngineVersion") and params["EngineVersion"] != cluster.engine_version:
            upgrade = self._plan_upgrade(cluster, params)
            if password is not None or plan.rotate:
                # Unconfirmed: auroral runs one of them at a time (AWS's wording unknown)
                raise invalid_parameter_combination(
                    "The engine version cannot be changed together with the master user password.")
        new_ident: str | None = None
        if params.get("NewDBClusterIdentifier"):
            new_ident = validate.identifier("NewDBClusterIdentifier", params["NewDBClusterIdentifier"])
            if new_ident != cluster.identifier and self._get_cluster(ctx.account, new_ident) is not None:
                raise rds_error("DBClusterAlreadyExistsFault", "DB Cluster already exists")
        new_group: str | None = None
        if params.get("DBClusterParameterGroupName") and (upgrade is None or not upgrade.is_major):
            # (a major upgrade takes the group of the new family with it: _plan_upgrade checked it)
            new_group = self._group_for(ctx.account, params["DBClusterParameterGroupName"], cluster.major)
        new_port = validate.port(params["Port"]) if params.get("Port") is not None else None
        new_retention = validate.backup_retention(params.get("BackupRetentionPeriod"))
        new_window = validate.backup_window(params.get("PreferredBackupWindow"))
        new_groups: list[str] | None = None
        if params.get("VpcSecurityGroupIds") is not None:
            new_groups = self._checked_security_groups(cluster, params["VpcSecurityGroupIds"])
        # Last, the calls that may be refused on the caller's behalf (AccessDenied: nothing applied).
        new_secret, managed_password, new_key = self._prepare_master_secret(ctx, cluster, plan, params)

        # Everything is valid: apply. auroral has no maintenance windows, so every change applies
        # immediately whatever ApplyImmediately says (static parameters still wait for a reboot).
        if new_ident and new_ident != cluster.identifier:
            members = self._members(cluster)
            old_ident = cluster.identifier
            with self.store.transaction():
                self._drop_cluster(cluster)
                cluster.identifier = new_ident
                for m in members:
                    m.cluster_identifier = new_ident
                    self._save_instance(m)
                self._save_cluster(cluster)
            events.cluster_event(self.store, cluster, events.CLUSTER_RENAMED, old=old_ident, new=new_ident)
        if "DeletionProtection" in params:
            cluster.deletion_protection = _bool(params["DeletionProtection"])
        if "EnableIAMDatabaseAuthentication" in params:
            cluster.iam_auth = _bool(params["EnableIAMDatabaseAuthentication"])
        if new_retention is not None:
            cluster.backup_retention_period = new_retention
        if new_window is not None:
            cluster.preferred_backup_window = new_window
        if "CopyTagsToSnapshot" in params:
            cluster.copy_tags_to_snapshot = _bool(params["CopyTagsToSnapshot"])
        if new_groups is not None:
            # Applies to every instance at once: each endpoint reads the cluster's groups per connection.
            cluster.vpc_security_group_ids = new_groups
        port_changed = new_port is not None and new_port != cluster.port
        if new_port is not None:
            cluster.port = new_port
        changed: dict[str, str] = {}
        if new_group and new_group != cluster.parameter_group:
            cluster.parameter_group = new_group
            changed = self._retarget_parameters(cluster)
        old_secret = self._apply_master_secret(cluster, plan, new_secret, new_key)
        password = managed_password or password
        if password is not None:
            cluster.transition("resetting-master-credentials")
        self._save_cluster(cluster)
        if new_groups is not None:
            self._sync_interface_groups(cluster)
        if port_changed:
            self._spawn_rebind(cluster)
        if old_secret is not None and self.secrets is not None:
            self.secrets.delete_master_secret(cluster.account, old_secret)
        if plan.rotate and self.secrets is not None and cluster.master_user_secret:
            arn = cluster.master_user_secret["SecretArn"]
            try:
                self.secrets.rotate_now(cluster.account, arn)
            except Exception:
                self.set_secret_status(cluster.account, arn, "active")
                raise
        if changed:
            self._spawn_apply(cluster, changed)
        if password is not None:
            self._spawn_reset(cluster, password)
        if upgrade is not None:
            self._engine_upgrade(cluster, upgrade, immediately=_bool(params.get("ApplyImmediately")))
        ctx.record_resource("AWS::RDS::DBCluster", cluster.arn())
        return {"DBCluster": self.view_cluster(cluster)}

    def _plan_upgrade(self, cluster: Cluster, params: dict[str, Any]) -> UpgradePlan:
        """Validate ``EngineVersion`` (with ``AllowMajorVersionUpgrade`` and the parameter group a major
        upgrade needs), as AWS does, before anything is applied."""
        target = self.check_upgrade(cluster.engine_version, str(params["EngineVersion"]),
                                    _bool(params.get("AllowMajorVersionUpgrade")))
        if cluster.status != "available":
            raise wrong_cluster_state(cluster, "available")
        group = cluster.parameter_group
        if target.major != cluster.major:
            if params.get("DBClusterParameterGroupName"):
                group = self._group_for(cluster.account, params["DBClusterParameterGroupName"], target.major)
            elif cluster.parameter_group == default_group_name(cluster.major):
                group = default_group_name(target.major)
            else:
                # AWS's message for a custom DB instance parameter group, said of the cluster's group
                # (Unconfirmed wording for the cluster parameter group; same code)
                raise invalid_parameter_combination(
                    f"The current DB cluster parameter group {cluster.parameter_group} is custom. You must "
                    "explicitly specify a new DB cluster parameter group, either default or custom, for the "
                    "engine version upgrade."
                )
        return UpgradePlan(target.version, target.major, group, target.major != cluster.major)

    def _engine_upgrade(self, cluster: Cluster, plan: UpgradePlan, *, immediately: bool) -> None:
        """Start the upgrade now or record it as a pending maintenance action (``rds/upgrades.py``)."""
        raise invalid_parameter_combination("Engine version upgrades are not supported by auroral yet.")

    def _spawn_rebind(self, cluster: Cluster) -> None:
        """A new port: as AWS reboots the instances, each endpoint closes and listens again on it."""
        rid = cluster.resource_id
        rebooting = []
        for member in self._members(cluster):
            if member.status == "available":
                member.transition("rebooting")
                self._save_instance(member)
                rebooting.append(member.resource_id)

        async def work() -> None:
            current = self._cluster_by_rid(rid)
            if current is None:
                return
            for member in self._members(current):
                if member.resource_id not in rebooting or member.status != "rebooting":
                    continue
                try:
                    await self.runtime.close_endpoint(current, member)
                except RuntimeFailure as exc:
                    log.warning("instance %s: closing endpoint failed: %s", member.identifier, exc.reason)
                await self._open_endpoint(current, member)

        self._spawn(rid, "rebind", work)

    def _spawn_reset(self, cluster: Cluster, password: str) -> None:
        rid = cluster.resource_id

        async def work() -> None:
            current = self._cluster_by_rid(rid)
            if current is None or current.status != "resetting-master-credentials":
                return
            reason: str | None = None
            try:
                await self.runtime.reset_master_password(current, password)
            except RuntimeFailure as exc:
                # The server still runs with the old credentials: available again, reason logged.
                reason = exc.reason
                log.warning("cluster %s: resetting master credentials failed: %s", current.identifier, reason)
            current = self._cluster_by_rid(rid)
            if current is not None and current.status == "resetting-master-credentials":
                current.transition("available", reason)
                self._save_cluster(current)
                if reason is None:
                    self._secret_password_applied(current)
                    events.cluster_event(self.store, current, events.MASTER_CREDENTIALS_RESET)
                elif current.master_user_secret and current.master_user_secret.get("SecretStatus") == "creating":
                    self.set_secret_status(current.account, current.master_user_secret["SecretArn"],
                                           "impaired", reason)

        self._spawn(rid, "reset-master-credentials", work)

    def DeleteDBCluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(ctx.account, str(params.get("DBClusterIdentifier") or ""))
        if cluster.deletion_protection:
            raise invalid_parameter_combination(
                "Cannot delete protected Cluster, please disable deletion protection and try again."
            )
        skip = _bool(params.get("SkipFinalSnapshot"))
        final = params.get("FinalDBSnapshotIdentifier")
        if not skip and not final:
            raise invalid_parameter_combination(
                "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified."
            )
        if skip and final:
            # Observed (crossplane-contrib/provider-aws#1423).
            raise invalid_parameter_combination(
                "You cannot specify both FinalDBSnapshotIdentifier and SkipFinalSnapshot"
            )
        if any(m.status != "deleting" for m in self._members(cluster)):
            raise rds_error(
                "InvalidDBClusterStateFault",
                "Cluster cannot be deleted, it still contains DB instances in non-deleting state.",
            )
        if cluster.status not in _DELETABLE:
            raise wrong_cluster_state(cluster, ", ".join(_DELETABLE))
        snapshot = self._plan_final_snapshot(ctx, cluster, params) if final else None
        if snapshot is not None:
            self._save_snapshot(snapshot)  # "creating": the delete takes it before the data goes
            cluster.final_snapshot = snapshot.identifier
            ctx.record_resource("AWS::RDS::DBClusterSnapshot", snapshot.arn())
        cluster.keep_automated_backups = str(params.get("DeleteAutomatedBackups")).lower() == "false"
        cluster.transition("deleting")
        self._save_cluster(cluster)
        ctx.record_resource("AWS::RDS::DBCluster", cluster.arn())
        self._spawn_delete(cluster)
        return {"DBCluster": self.view_cluster(cluster)}

    # DeleteDBCluster's final snapshot (snapshots.py)
    def _plan_final_snapshot(self, ctx: RequestContext, cluster: Cluster, params: dict[str, Any]) -> Any:
        raise invalid_parameter_combination("Final snapshots are not supported by this auroral installation.")

    def _save_snapshot(self, snapshot: Any) -> None:
        raise NotImplementedError

    async def _take_final(self, cluster: Cluster) -> bool:
        return True

    def _drop_automated(self, cluster: Cluster) -> None:
        """The cluster's automated snapshots go with it unless DeleteAutomatedBackups=false (snapshots.py)."""

    def _first_backup(self, cluster: Cluster) -> None:
        """A new cluster (created or restored) just became available: its first automated backup, from which
        it is restorable to any point in time (backups.py)."""

    def _spawn_delete(self, cluster: Cluster) -> None:
        rid = cluster.resource_id

        async def work() -> None:
            current = self._cluster_by_rid(rid)
            if current is None or current.status != "deleting":
                return
            for member in self._members(current):  # left over by an interrupted instance delete
                try:
                    await self.runtime.close_endpoint(current, member)
                except RuntimeFailure as exc:
                    log.warning("instance %s: closing endpoint failed: %s", member.identifier, exc.reason)
                self._drop_instance(member)
                self._release_interface(member)
                events.instance_event(self.store, member, events.INSTANCE_DELETED)
            if not await self._take_final(current):
                return  # the data stays: the final snapshot failed (the reason is on the cluster)
            if not current.keep_automated_backups:
                self._drop_automated(current)
            try:
                await self.runtime.delete_cluster(current)
            except RuntimeFailure as exc:
                self._fail_cluster(rid, f"deleting failed: {exc.reason}")
                return
            if current.master_user_secret and self.secrets is not None:
                self.secrets.delete_master_secret(current.account, current.master_user_secret["SecretArn"])
            self._retire_storage_grant(current)
            self._drop_cluster(current)
            self._drop_cluster_endpoints(current)
            self._forget_upgrade(current)
            events.cluster_event(self.store, current, events.CLUSTER_DELETED)

        self._spawn(rid, "delete", work)

    def StopDBCluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(ctx.account, str(params.get("DBClusterIdentifier") or ""))
        if cluster.status != "available":
            raise wrong_cluster_state(cluster, "available")
        busy = [m for m in self._members(cluster) if m.status not in ("available", "failed")]
        if busy:
            # Unconfirmed wording.
            raise rds_error("InvalidDBInstanceStateFault",
                            f"Instance {busy[0].identifier} is not in available state.")
        cluster.transition("stopping")
        self._set_members(cluster, "stopping", only=("available",))
        self._save_cluster(cluster)
        ctx.record_resource("AWS::RDS::DBCluster", cluster.arn())
        self._spawn_stop(cluster)
        return {"DBCluster": self.view_cluster(cluster)}

    def _spawn_stop(self, cluster: Cluster) -> None:
        rid = cluster.resource_id

        async def work() -> None:
            current = self._cluster_by_rid(rid)
            if current is None or current.status != "stopping":
                return
            try:
                for member in self._members(current):
                    await self.runtime.close_endpoint(current, member)
                await self.runtime.stop_cluster(current)
            except RuntimeFailure as exc:
                self._fail_cluster(rid, f"stopping failed: {exc.reason}")
                return
            current = self._cluster_by_rid(rid)
            if current is not None and current.status == "stopping":
                current.transition("stopped")
                self._set_members(current, "stopping", only=("available",))
                self._set_members(current, "stopped", only=("stopping", "failed", "creating"))
                self._save_cluster(current)
                events.cluster_event(self.store, current, events.CLUSTER_STOPPED)

        self._spawn(rid, "stop", work)

    def StartDBCluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(ctx.account, str(params.get("DBClusterIdentifier") or ""))
        if cluster.status != "stopped":
            raise wrong_cluster_state(cluster, "stopped")
        cluster.transition("starting")
        self._set_members(cluster, "starting", only=("stopped",))
        self._save_cluster(cluster)
        ctx.record_resource("AWS::RDS::DBCluster", cluster.arn())
        self._spawn_start(cluster.resource_id, "starting")
        return {"DBCluster": self.view_cluster(cluster)}

    def _spawn_start(self, rid: str, expected: str) -> None:
        """Start the server with its current parameters, then open every instance's endpoint."""

        async def work() -> None:
            current = self._cluster_by_rid(rid)
            if current is None or current.status != expected:
                return
            self._refresh_parameters(current)
            self._save_cluster(current)
            try:
                await self.runtime.start_cluster(current)
            except IncompatibleParameters as exc:
                await self._incompatible(rid, f"starting failed: {exc.reason}")
                return
            except RuntimeFailure as exc:
                self._fail_cluster(rid, f"starting failed: {exc.reason}")
                for member in self._members(current):
                    if member.status in ("starting", "creating", "available", INCOMPATIBLE):
                        member.transition("failed", exc.reason)
                        self._save_instance(member)
                return
            current = self._cluster_by_rid(rid)
            if current is None or current.status != expected:
                return
            current.transition("available")
            self._save_cluster(current)
            if expected == "starting":  # StartDBCluster (recovery after a restart of auroral is no start)
                events.cluster_event(self.store, current, events.CLUSTER_STARTED)
            await self._reconcile_writer(current)
            for member in self._members(current):
                if member.status in ("starting", "creating", "available", "rebooting", "modifying", "renaming",
                                     "failed", INCOMPATIBLE, INACCESSIBLE):
                    await self._open_endpoint(current, member)

        self._spawn(rid, f"start-from-{expected}", work)

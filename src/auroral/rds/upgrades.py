"""Engine version upgrades: ``ModifyDBCluster EngineVersion`` (validated in ``clusters.py``),
``DescribePendingMaintenanceActions`` and ``ApplyPendingMaintenanceAction``.

With ``ApplyImmediately=true`` the upgrade starts at once; otherwise it is recorded as a pending
maintenance action of the cluster (``Action`` ``db-upgrade``, ``ResourceIdentifier`` the cluster's ARN)
and shown in ``PendingModifiedValues.EngineVersion`` until ``ApplyPendingMaintenanceAction``
``OptInType=immediate`` runs it. ``next-maintenance`` records the opt-in and its date (the start of the
next ``PreferredMaintenanceWindow``); auroral runs no maintenance window timer yet, so such an upgrade
waits for an ``immediate`` opt-in (or a ModifyDBCluster with ApplyImmediately).

The record (store kind ``rds-engine-upgrade``, one per cluster) is written before anything acts on
it: ``state`` ``pending`` (an action waiting) or ``running`` (the cluster is ``upgrading``). A restart of
auroral during a running upgrade runs it again (``recover``): the runtime's upgrade picks up where it
stopped and keeps the old data until the new data directory is in place (``engine/upgrade.py``).
During the upgrade the cluster and its instances are ``upgrading`` and every endpoint is closed; after
it, Describe shows the new ``EngineVersion`` and parameter group. A failed upgrade leaves the cluster
on its old version, ``available`` again with the reason.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import invalid_parameter_value
from auroral.rds import events
from auroral.rds.base import filter_values, name_from_arn_or_id, paginate, rds_error
from auroral.rds.engine_versions import UpgradePlan, describe
from auroral.rds.instances import InstanceOperations
from auroral.rds.model import UPGRADING, Cluster, utcnow
from auroral.rds.runtime import RuntimeFailure
from auroral.rds.views import MAINTENANCE_WINDOW

log = logging.getLogger("auroral.rds")

KIND_UPGRADE = "rds-engine-upgrade"
ACTION = "db-upgrade"
OPT_IN_TYPES = ("immediate", "next-maintenance", "undo-opt-in")
_PENDING_FILTERS = ("db-cluster-id", "db-instance-id")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def next_window_start(now: datetime, window: str = MAINTENANCE_WINDOW) -> datetime:
    """The next start of a ``ddd:hh:mm-ddd:hh:mm`` window (UTC) after ``now``."""
    day, hour, minute = window.split("-", 1)[0].split(":")
    start = now.replace(hour=int(hour), minute=int(minute), second=0, microsecond=0)
    start += timedelta(days=(_DAYS.index(day) - now.weekday()) % 7)
    return start if start > now else start + timedelta(days=7)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


class UpgradeOperations(InstanceOperations):
    # --- the record ----------------------------------------------------------------------------

    def _upgrade_doc(self, cluster: Cluster) -> dict[str, Any] | None:
        return self.store.get(KIND_UPGRADE, cluster.account, cluster.resource_id)

    def pending_engine_version(self, cluster: Cluster) -> str | None:
        """``PendingModifiedValues.EngineVersion``: the version of a recorded upgrade not yet running."""
        doc = self._upgrade_doc(cluster)
        return str(doc["target"]) if doc is not None and doc.get("state") == "pending" else None

    def _engine_upgrade(self, cluster: Cluster, plan: UpgradePlan, *, immediately: bool) -> None:
        doc = {"target": plan.version, "major": plan.major, "parameter_group": plan.parameter_group,
               "state": "pending", "opt_in": None, "opt_in_date": None, "created": _iso(utcnow())}
        if not immediately:
            self.store.put(KIND_UPGRADE, cluster.account, cluster.resource_id, doc)
            log.info("cluster %s: upgrade to %s pending", cluster.identifier, plan.version)
            return
        self._start_upgrade(cluster, doc)

    def _start_upgrade(self, cluster: Cluster, doc: dict[str, Any]) -> None:
        """Written first (the record ``running``, the statuses), then acted on in the background."""
        doc = {**doc, "state": "running"}
        with self.store.transaction():
            self.store.put(KIND_UPGRADE, cluster.account, cluster.resource_id, doc)
            cluster.transition(UPGRADING)
            self._save_cluster(cluster)
            self._set_members(cluster, UPGRADING, only=("available",))
        events.cluster_event(self.store, cluster, events.UPGRADE_IN_PROGRESS)
        log.info("cluster %s: upgrading from %s to %s", cluster.identifier, cluster.engine_version, doc["target"])
        self._spawn_upgrade(cluster)

    def _spawn_upgrade(self, cluster: Cluster) -> None:
        rid = cluster.resource_id

        async def work() -> None:
            current = self._cluster_by_rid(rid)
            if current is None or current.status != UPGRADING:
                return
            doc = self._upgrade_doc(current)
            for member in self._members(current):
                try:
                    await self.runtime.close_endpoint(current, member)
                except RuntimeFailure as exc:
                    log.warning("instance %s: closing endpoint failed: %s", member.identifier, exc.reason)
            if doc is None:  # nothing recorded (an older record format): back to where it was
                await self._after_upgrade(rid, None, "no engine upgrade was recorded")
                return
            target = dataclasses.replace(current, engine_version=str(doc["target"]), major=int(doc["major"]),
                                         parameter_group=str(doc["parameter_group"]))
            self._refresh_parameters(target)
            try:
                await self.runtime.upgrade_cluster(target)
            except RuntimeFailure as exc:
                log.warning("cluster %s: upgrade to %s failed: %s", current.identifier, doc["target"], exc.reason)
                await self._after_upgrade(rid, None, f"the upgrade to {doc['target']} failed: {exc.reason}")
                return
            await self._after_upgrade(rid, target, None)

        self._spawn(rid, "upgrade", work)

    async def _after_upgrade(self, rid: str, target: Cluster | None, reason: str | None) -> None:
        """Record the outcome (the new version, or the old one with ``reason``), then serve again: a failed
        upgrade starts the cluster on its old version; every instance's endpoint opens (readers are cloned
        again from the upgraded writer)."""
        current = self._cluster_by_rid(rid)
        if current is None or current.status != UPGRADING:
            return
        old_major = current.major
        with self.store.transaction():
            if target is not None:
                current.engine_version, current.major = target.engine_version, target.major
                current.parameter_group, current.parameters = target.parameter_group, dict(target.parameters)
                current.pending_reboot = False
                for member in self._members(current):
                    member.engine_version = target.engine_version
                    self._save_instance(member)
            self.store.delete(KIND_UPGRADE, current.account, rid)
            current.transition("available", reason)
            self._save_cluster(current)
        if target is not None:
            events.cluster_event(self.store, current, events.UPGRADED_MAJOR if target.major != old_major
                                 else events.UPGRADED_MINOR)
        if target is None:
            self._refresh_parameters(current)
            try:
                await self.runtime.start_cluster(current)
            except RuntimeFailure as exc:
                self._fail_cluster(rid, f"{reason}; starting again failed: {exc.reason}")
                return
        await self._reconcile_writer(current)
        for member in self._members(current):
            if member.status in (UPGRADING, "available", "failed"):
                await self._open_endpoint(current, member)

    # --- pending maintenance actions ----------------------------------------------------------------

    def _action_view(self, doc: dict[str, Any]) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "Action": ACTION,
            # Unconfirmed wording
            "Description": f"Upgrade to {describe(str(doc['target']))}",
        }
        if doc.get("opt_in"):
            detail["OptInStatus"] = doc["opt_in"]
            detail["CurrentApplyDate"] = datetime.fromisoformat(str(doc["opt_in_date"]))
        return detail

    def DescribePendingMaintenanceActions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        clusters = self._clusters(ctx.account)
        wanted = params.get("ResourceIdentifier")
        if wanted:
            clusters = [c for c in clusters if c.arn() == wanted]
        filters = filter_values(params, _PENDING_FILTERS)
        if "db-cluster-id" in filters:
            names = {name_from_arn_or_id(v) for v in filters["db-cluster-id"]}
            clusters = [c for c in clusters if c.identifier in names]
        if "db-instance-id" in filters:
            clusters = []  # instances have no pending actions of their own here
        found = [(c, doc) for c in clusters
                 if (doc := self._upgrade_doc(c)) is not None and doc.get("state") == "pending"]
        items, marker = paginate(found, lambda pair: pair[0].arn(), params)
        out: dict[str, Any] = {"PendingMaintenanceActions": [
            {"ResourceIdentifier": c.arn(), "PendingMaintenanceActionDetails": [self._action_view(doc)]}
            for c, doc in items
        ]}
        if marker:
            out["Marker"] = marker
        return out

    def ApplyPendingMaintenanceAction(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = str(params.get("ResourceIdentifier") or "")
        action = str(params.get("ApplyAction") or "")
        opt_in = str(params.get("OptInType") or "")
        if opt_in not in OPT_IN_TYPES:
            # Unconfirmed wording
            raise invalid_parameter_value(
                f"Invalid value {opt_in} for OptInType. Valid values: {', '.join(OPT_IN_TYPES)}")
        cluster = next((c for c in self._clusters(ctx.account) if c.arn() == arn), None)
        doc = self._upgrade_doc(cluster) if cluster is not None else None
        if cluster is None or doc is None or doc.get("state") != "pending" or action != ACTION:
            # Unconfirmed wording
            raise rds_error("ResourceNotFoundFault",
                            f"No pending maintenance action {action} found for resource {arn}.")
        now = utcnow()
        if opt_in == "immediate":
            if cluster.status != "available":
                raise rds_error("InvalidDBClusterStateFault",
                                f"DbCluster {cluster.identifier} is in {cluster.status} state but expected it "
                                "to be one of available.")
            doc = {**doc, "opt_in": opt_in, "opt_in_date": _iso(now)}
            view = self._action_view(doc)
            self._start_upgrade(cluster, doc)
        else:
            when = next_window_start(now) if opt_in == "next-maintenance" else None
            doc = {**doc, "opt_in": None if when is None else opt_in,
                   "opt_in_date": None if when is None else _iso(when)}
            self.store.put(KIND_UPGRADE, cluster.account, cluster.resource_id, doc)
            view = self._action_view(doc)
        ctx.record_resource("AWS::RDS::DBCluster", cluster.arn())
        return {"ResourcePendingMaintenanceActions": {"ResourceIdentifier": arn,
                                                      "PendingMaintenanceActionDetails": [view]}}

    def _forget_upgrade(self, cluster: Cluster) -> None:
        self.store.delete(KIND_UPGRADE, cluster.account, cluster.resource_id)

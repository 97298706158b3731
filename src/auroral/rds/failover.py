"""FailoverDBCluster, and the failovers RDS does by itself: when the writer's PostgreSQL is lost (the
runtime's ``writer-lost`` event) and when the writer instance is deleted while readers remain.

The reader promoted is the one Aurora would choose: the lowest ``PromotionTier``; among equals the
largest instance class; among those an arbitrary one (here: the first identifier, so it is
predictable). Aurora's user guide ("Fault tolerance for an Aurora DB cluster"): "If two or more Aurora
Replicas share the same priority, then Amazon RDS promotes the replica that is largest in size. If two
or more Aurora Replicas share the same priority and size, then Amazon RDS promotes an arbitrary replica
in the same promotion tier."

The cluster shows ``failing-over`` while it happens. The runtime does the hand-over (``LocalRuntime.
failover``); only when it succeeded are the ``IsClusterWriter`` flags flipped (a restart of auroral in
between is reconciled from the runtime's ``writer_of``, see ``service.recover``).
"""

from __future__ import annotations

import logging
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import invalid_parameter_value
from auroral.rds import events
from auroral.rds.base import rds_error
from auroral.rds.instances import InstanceOperations
from auroral.rds.model import FAILING_OVER, Cluster, Instance
from auroral.rds.runtime import RuntimeFailure

log = logging.getLogger("auroral.rds")

# Instance sizes, smallest first (db.serverless: its capacity varies; ranked with the smallest).
_SIZE_ORDER = ("serverless", "medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge",
               "24xlarge")


def size_rank(instance_class: str) -> int:
    size = instance_class.rsplit(".", 1)[-1]
    return _SIZE_ORDER.index(size) if size in _SIZE_ORDER else 0


def choose_reader(readers: list[Instance]) -> Instance | None:
    """Aurora's choice: lowest promotion tier, then largest size, then (arbitrary) the first identifier."""
    if not readers:
        return None
    return min(readers, key=lambda m: (m.promotion_tier, -size_rank(m.instance_class), m.identifier))


class FailoverOperations(InstanceOperations):
    def _readers(self, cluster: Cluster) -> list[Instance]:
        return [m for m in self._members(cluster) if not m.is_writer and m.status == "available"]

    async def FailoverDBCluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(ctx.account, str(params.get("DBClusterIdentifier") or "").lower())
        if cluster.status != "available":
            # Unconfirmed wording.
            raise rds_error("InvalidDBClusterStateFault",
                            f"DB cluster {cluster.identifier} is not in available state (it is {cluster.status}).")
        named = params.get("TargetDBInstanceIdentifier")
        if named:
            target = self._get_instance(ctx.account, str(named))
            if target is None:
                raise rds_error("DBInstanceNotFoundFault", f"DBInstance {named} not found.")
            if target.cluster_identifier != cluster.identifier:
                # Unconfirmed wording and code.
                raise invalid_parameter_value(
                    f"The DB instance {target.identifier} is not a member of DB cluster {cluster.identifier}.")
            if target.is_writer:
                # Unconfirmed wording.
                raise rds_error("InvalidDBInstanceStateFault",
                                f"DB instance {target.identifier} is already the writer of DB cluster "
                                f"{cluster.identifier}.")
            if target.status != "available":
                raise rds_error("InvalidDBInstanceStateFault", f"Instance {target.identifier} is not in available state.")
        else:
            chosen = choose_reader(self._readers(cluster))
            if chosen is None:
                # Unconfirmed wording: a cluster without an available reader cannot fail over.
                raise rds_error("InvalidDBClusterStateFault",
                                f"DB cluster {cluster.identifier} has no available Aurora Replica to fail over to.")
            target = chosen
        cluster.transition(FAILING_OVER)
        self._save_cluster(cluster)
        ctx.record_resource("AWS::RDS::DBCluster", cluster.arn())
        task = self._spawn_failover(cluster, target.resource_id)
        answer = {"DBCluster": self.view_cluster(cluster)}  # "failing-over"
        await self._settle(task)
        return answer

    def _spawn_failover(self, cluster: Cluster, target_rid: str | None, reason: str | None = None) -> Any:
        """Fail over to ``target_rid`` (None: the best reader at the time), the cluster being
        ``failing-over`` already."""
        rid = cluster.resource_id

        async def work() -> None:
            current = self._cluster_by_rid(rid)
            if current is None or current.status != FAILING_OVER:
                return
            members = self._members(current)
            target = next((m for m in members if m.resource_id == target_rid), None) if target_rid else \
                choose_reader(self._readers(current))
            if target is None or target.status != "available":
                current.transition("available" if any(m.is_writer and m.status == "available" for m in members)
                                   else "failed", "failover: no available reader")
                self._save_cluster(current)
                events.cluster_event(self.store, current, events.FAILOVER_FAILED)
                return
            await self._do_failover(current, target, rejoin=True)

        return self._spawn(rid, "failover", work)

    async def _do_failover(self, cluster: Cluster, target: Instance, *, rejoin: bool) -> bool:
        """Run the runtime's hand-over to ``target`` and record it (flags, statuses); the cluster ends
        ``available`` (or ``failed`` when there is no writer to go back to)."""
        rid = cluster.resource_id
        writer = next((m for m in self._members(cluster) if m.is_writer), None)
        same_az = writer is None or writer.availability_zone == target.availability_zone
        events.cluster_event(self.store, cluster, events.FAILOVER_STARTED_SAME_AZ if same_az
                             else events.FAILOVER_STARTED_CROSS_AZ, name=target.identifier)
        try:
            rejoined = await self.runtime.failover(cluster, target, rejoin=rejoin)
        except RuntimeFailure as exc:
            log.warning("cluster %s: failover to %s failed: %s", cluster.identifier, target.identifier, exc.reason)
            current = self._cluster_by_rid(rid)
            if current is not None and current.status == FAILING_OVER:
                writer_ok = any(m.is_writer and m.status == "available" for m in self._members(current))
                current.transition("available" if writer_ok else "failed", f"failover failed: {exc.reason}")
                self._save_cluster(current)
            events.cluster_event(self.store, current or cluster, events.FAILOVER_FAILED)
            return False
        current = self._cluster_by_rid(rid)
        if current is None:
            return True
        for member in self._members(current):
            was_writer = member.is_writer
            member.is_writer = member.resource_id == target.resource_id
            if was_writer and not member.is_writer and rejoin:
                if rejoined and member.status == "failed":
                    member.transition("available", "rejoined the cluster as a reader after a failover")
                elif not rejoined and member.status == "available":
                    # cloned again at the cluster's next start (reboot or stop/start)
                    member.transition("failed", "the former writer could not rejoin as a reader")
            self._save_instance(member)
        if current.status == FAILING_OVER:
            current.transition("available")
            self._save_cluster(current)
        events.cluster_event(self.store, current, events.FAILOVER_COMPLETED, name=target.identifier)
        log.warning("cluster %s: %s is the writer now", current.identifier, target.identifier)
        return True

    async def _hand_writer_over(self, cluster: Cluster, writer: Instance) -> bool:
        if cluster.status != "available":
            return False
        target = choose_reader(self._readers(cluster))
        if target is None:
            return False
        cluster.transition(FAILING_OVER, f"the writer {writer.identifier} is being deleted")
        self._save_cluster(cluster)
        return await self._do_failover(cluster, target, rejoin=False)

    async def _reconcile_writer(self, cluster: Cluster) -> None:
        """After a start: the store's writer flags follow the runtime's primary."""
        writer = self.runtime.writer_of(cluster)
        if writer is None:
            return
        for member in self._members(cluster):
            if member.is_writer != (member.resource_id == writer):
                member.is_writer = member.resource_id == writer
                self._save_instance(member)

    def _writer_lost(self, resource_id: str, reason: str | None) -> None:
        """The runtime's ``writer-lost``: fail over to the best reader, if there is one."""
        cluster = self._cluster_by_rid(resource_id)
        if cluster is None or cluster.status not in ("available", "failed"):
            return
        if not self._readers(cluster):
            return
        log.warning("cluster %s: automatic failover (%s)", cluster.identifier, reason)
        cluster.transition(FAILING_OVER, reason)
        self._save_cluster(cluster)
        self._spawn_failover(cluster, None, reason)

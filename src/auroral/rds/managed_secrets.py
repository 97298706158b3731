"""The control-plane side of managed master passwords: what ModifyDBCluster does with
``ManageMasterUserPassword``, ``MasterUserSecretKmsKeyId`` and ``RotateMasterUserPassword``, and
the hooks (:class:`~auroral.rds.runtime.ManagedClusterHost`) through which the rotator of
``auroral.rds.managed_password`` reads clusters and records ``MasterUserSecret.SecretStatus``.

``SecretStatus`` moves only on real events: ``creating`` until the database runs with the
secret's password, ``active``; ``rotating`` from RotateMasterUserPassword (or a scheduled
rotation) until the rotation finished, ``impaired`` when a rotation or the initial password
failed (the reason is logged; the orchestrator retries the rotation).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import invalid_parameter_combination, invalid_parameter_value
from auroral.rds.base import RdsBase, rds_error
from auroral.rds.model import Cluster
from auroral.rds.runtime import RuntimeFailure

log = logging.getLogger("auroral.rds")

# Quoted from a real RDS error (hashicorp/terraform-provider-aws#41795).
KMS_NEEDS_MANAGED = "A ManageMasterUserPassword value is required when MasterUserSecretKmsKeyId is specified."
# Quoted from real RDS errors (AWS-BEHAVIOUR.md).
PASSWORD_NEEDED = "MasterUserPassword must be provided when ManageMasterUserPassword is set to false."
# Observed code (AWS-BEHAVIOUR.md); unconfirmed wording.
BOTH_GIVEN = "You can't specify MasterUserPassword when ManageMasterUserPassword is turned on."
# Unconfirmed wordings.
ALREADY_MANAGED = (
    "You can't specify MasterUserPassword for a DB cluster whose master user password is managed by "
    "AWS Secrets Manager. Set ManageMasterUserPassword to false to use your own password."
)
ROTATE_NEEDS_APPLY = "You must specify ApplyImmediately when RotateMasterUserPassword is turned on."
ROTATE_NEEDS_MANAGED = (
    "You can't specify RotateMasterUserPassword for a DB cluster whose master user password isn't "
    "managed by AWS Secrets Manager."
)
NOT_SUPPORTED = "ManageMasterUserPassword is not supported by this auroral installation."


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


@dataclass(frozen=True)
class SecretPlan:
    """What one ModifyDBCluster call does to the master user secret (validated, not yet applied)."""

    turn_on: bool = False
    turn_off: bool = False
    rotate: bool = False
    kms_key_id: str | None = None


class ManagedSecretOperations(RdsBase):
    # --- ModifyDBCluster ---------------------------------------------------------------------

    def _plan_master_secret(self, cluster: Cluster, params: dict[str, Any]) -> SecretPlan:
        given = params.get("ManageMasterUserPassword")
        manage = None if given is None else _bool(given)
        managed = cluster.manage_master_password
        if params.get("MasterUserPassword"):
            if manage is True:
                raise invalid_parameter_combination(BOTH_GIVEN)
            if managed and manage is None:
                raise invalid_parameter_combination(ALREADY_MANAGED)
        elif manage is False:
            raise invalid_parameter_combination(PASSWORD_NEEDED)
        turn_on = manage is True and not managed
        turn_off = manage is False and managed
        kms_key_id = str(params["MasterUserSecretKmsKeyId"]) if params.get("MasterUserSecretKmsKeyId") else None
        rotate = _bool(params.get("RotateMasterUserPassword"))
        if kms_key_id and not (turn_on or (managed and not turn_off)):
            raise invalid_parameter_combination(KMS_NEEDS_MANAGED)
        if rotate:
            if not _bool(params.get("ApplyImmediately")):
                raise invalid_parameter_combination(ROTATE_NEEDS_APPLY)
            if not managed or turn_off:
                raise invalid_parameter_combination(ROTATE_NEEDS_MANAGED)
        if (turn_on or turn_off or kms_key_id or rotate) and self.secrets is None:
            raise invalid_parameter_value(NOT_SUPPORTED)
        status = (cluster.master_user_secret or {}).get("SecretStatus")
        if status == "rotating" and (turn_off or kms_key_id or rotate):
            # Unconfirmed wording.
            raise rds_error(
                "InvalidDBClusterStateFault",
                f"The master user secret of DB cluster {cluster.identifier} is being rotated. Try again later.",
            )
        return SecretPlan(turn_on=turn_on, turn_off=turn_off, rotate=rotate, kms_key_id=kms_key_id)

    def _prepare_master_secret(
        self, ctx: RequestContext, cluster: Cluster, plan: SecretPlan, params: dict[str, Any]
    ) -> tuple[dict[str, str] | None, str | None, str | None]:
        """The calls made on the caller's behalf, before anything is applied: a new secret
        (its view and password) or the re-encryption of the current one (the new key ARN)."""
        if self.secrets is None:
            return None, None, None
        if plan.turn_on:
            view, password = self.secrets.create_master_secret(
                ctx, cluster.arn(), cluster.master_username, plan.kms_key_id)
            return view, password, None
        if plan.kms_key_id and cluster.master_user_secret:
            key = self.secrets.reencrypt(ctx, cluster.master_user_secret["SecretArn"], plan.kms_key_id)
            return None, None, key
        return None, None, None

    def _apply_master_secret(
        self, cluster: Cluster, plan: SecretPlan, new_secret: dict[str, str] | None, new_key: str | None
    ) -> str | None:
        """Apply the plan to the record; the ARN of a secret to delete once the record is saved."""
        if plan.turn_on and new_secret is not None:
            cluster.manage_master_password = True
            cluster.master_user_secret = dict(new_secret)
        if plan.turn_off and cluster.master_user_secret:
            old = cluster.master_user_secret["SecretArn"]
            cluster.manage_master_password = False
            cluster.master_user_secret = None
            return old
        if cluster.master_user_secret is not None:
            if new_key:
                cluster.master_user_secret["KmsKeyId"] = new_key
            if plan.rotate:
                cluster.master_user_secret["SecretStatus"] = "rotating"
        return None

    def _secret_password_applied(self, cluster: Cluster) -> None:
        """The database now runs with the password of a ``creating`` secret: active, rotating every 7 days."""
        secret = cluster.master_user_secret
        if self.secrets is None or not secret or secret.get("SecretStatus") != "creating":
            return
        self.set_secret_status(cluster.account, secret["SecretArn"], "active")
        try:
            self.secrets.password_applied(cluster.account, secret["SecretArn"])
        except Exception:  # the secret still works; rotation can be turned on again
            log.exception("cluster %s: turning on rotation of %s failed", cluster.identifier, secret["SecretArn"])

    def _recover_master_secret(self, resource_id: str) -> None:
        """At startup, after the cluster's server was started (same lock, so it runs after): a secret
        still ``creating`` means the process died before the database had its password — set it
        again from the secret; ``rotating`` without a recorded rotation means the process died
        before the rotation was recorded — nothing changed, ``active`` again. Recorded rotations
        are resumed by Secrets Manager's orchestrator."""

        async def work() -> None:
            cluster = self._cluster_by_rid(resource_id)
            if cluster is None or cluster.status != "available" or not cluster.master_user_secret:
                return
            arn, status = cluster.master_user_secret["SecretArn"], cluster.master_user_secret.get("SecretStatus")
            assert self.secrets is not None
            if status == "rotating" and not self.secrets.rotation_pending(cluster.account, arn):
                self.set_secret_status(cluster.account, arn, "active")
            elif status == "creating":
                password = self.secrets.current_password(cluster.account, arn)
                if password is None:
                    self.set_secret_status(cluster.account, arn, "impaired", "the secret has no AWSCURRENT value")
                    return
                try:
                    await self.runtime.reset_master_password(cluster, password)
                except RuntimeFailure as exc:
                    self.set_secret_status(cluster.account, arn, "impaired", exc.reason)
                    return
                self._secret_password_applied(cluster)

        cluster = self._cluster_by_rid(resource_id)
        if self.secrets is not None and cluster is not None and cluster.master_user_secret:
            self._spawn(resource_id, "recover-master-secret", work)

    # --- ManagedClusterHost ------------------------------------------------------------------

    def cluster_for_secret(self, account: str, secret_arn: str) -> Cluster | None:
        for cluster in self._clusters(account):
            if cluster.master_user_secret and cluster.master_user_secret.get("SecretArn") == secret_arn:
                return cluster
        return None

    def set_secret_status(self, account: str, secret_arn: str, status: str, reason: str | None = None) -> None:
        cluster = self.cluster_for_secret(account, secret_arn)
        if cluster is None or cluster.master_user_secret is None:
            return
        if reason:
            log.warning("cluster %s: master user secret %s: %s", cluster.identifier, status, reason)
        if cluster.master_user_secret.get("SecretStatus") != status:
            cluster.master_user_secret["SecretStatus"] = status
            self._save_cluster(cluster)

    def cluster_lock(self, resource_id: str) -> asyncio.Lock:
        return self._locks.setdefault(resource_id, asyncio.Lock())

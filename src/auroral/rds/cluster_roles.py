"""IAM roles on clusters: AddRoleToDBCluster, RemoveRoleFromDBCluster, and ``AssociatedRoles`` in
DescribeDBClusters.

AWS authorizes AddRoleToDBCluster twice: ``rds:AddRoleToDBCluster`` on the cluster (the pipeline, from
rds/actions.py), and ``iam:PassRole`` on the role with ``iam:PassedToService = rds.amazonaws.com`` (the
Service Authorization Reference lists iam:PassRole as its dependent action): the second check runs here,
through the same IAM evaluator, as the caller. A caller who may not pass the role gets AccessDenied for
iam:PassRole and nothing changes.

The role is recorded for the feature the engine version supports (``SupportedFeatureNames``). Its
``Status`` in DescribeDBClusters is what RDS could do with it now: ``ACTIVE`` while the role's trust policy
lets ``rds.amazonaws.com`` assume it (with ``aws:SourceAccount`` and ``aws:SourceArn`` of the cluster, as
RDS presents them), ``INVALID`` when it does not or the role was deleted since (botocore's DBClusterRole
documentation: "the DB cluster is unable to assume the IAM role"). auroral runs none of these features
(S3 import/export, Lambda, machine learning): the association is what Describe shows and what IAM
decided, nothing more.
"""

from __future__ import annotations

import re
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AwsError, invalid_parameter_value
from auroral.rds.base import RdsBase, rds_error
from auroral.rds.engine_versions import supported_features
from auroral.rds.model import ENGINE, Cluster

PASSED_TO = "rds.amazonaws.com"
# Amazon RDS quotas: "IAM roles per DB cluster: 5".
MAX_ROLES = 5
# arn:<partition>:iam::<account>:role/<path/><name>; no backtracking (every part is a plain class run).
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")


def _roles_unavailable(cluster: Cluster) -> AwsError:
    # AWS's wording (captured from AddRoleToDBCluster on a creating cluster).
    return rds_error("InvalidDBClusterStateFault",
                     f"DB Cluster {cluster.identifier} is not available for IAM role association, disassociation, "
                     f"or updates. Current DB cluster status: {cluster.status}")


def _assume_context(cluster: Cluster) -> dict[str, Any]:
    """The request context of RDS assuming a role for a cluster (the confused-deputy keys)."""
    return {"aws:SourceAccount": cluster.account, "aws:SourceArn": cluster.arn()}


class ClusterRoleOperations(RdsBase):
    def associated_role_views(self, cluster: Cluster) -> list[dict[str, str]]:
        context = _assume_context(cluster)
        return [{"RoleArn": r["RoleArn"], "FeatureName": r.get("FeatureName", ""),
                 "Status": "ACTIVE" if self.directory.service_may_assume(r["RoleArn"], PASSED_TO, context)
                 else "INVALID"} for r in cluster.associated_roles]

    def _role_request(self, ctx: RequestContext, params: dict[str, Any]) -> tuple[Cluster, str, str | None]:
        cluster = self._cluster(ctx.account, str(params.get("DBClusterIdentifier") or ""))
        role_arn = str(params.get("RoleArn") or "")
        if not role_arn:
            raise invalid_parameter_value("The parameter RoleArn must be provided and must not be blank.")
        feature = str(params["FeatureName"]) if params.get("FeatureName") else None
        return cluster, role_arn, feature

    def AddRoleToDBCluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        cluster, role_arn, feature = self._role_request(ctx, params)
        if feature is None:
            # AWS's wording (captured, InvalidParameterValue).
            raise invalid_parameter_value("The feature-name parameter must be provided with the current operation "
                                          "for the Aurora (PostgreSQL) engine.")
        supported = supported_features(cluster.engine_version)
        if feature not in supported:
            # Unconfirmed wording.
            raise invalid_parameter_value(
                f"The feature-name {feature} is not supported for the {ENGINE} engine version "
                f"{cluster.engine_version}. Supported feature names: {', '.join(supported)}.")
        if not _ROLE_ARN.fullmatch(role_arn):
            # Unconfirmed wording.
            raise invalid_parameter_value(f"The parameter RoleArn is not a valid IAM role ARN: {role_arn}")
        # The second authorization of this request, as the caller (AccessDenied for iam:PassRole on the role).
        ctx.authorize("iam:PassRole", [role_arn], {"iam:PassedToService": PASSED_TO})
        if self.directory.service_may_assume(role_arn, PASSED_TO, _assume_context(cluster)) is None:
            # RDS's wording for a role it cannot use (Unconfirmed for this operation: captured from
            # CreateDBInstance/RestoreDBClusterFromSnapshot).
            raise invalid_parameter_value(
                f"IAM role ARN value is invalid or does not include the required permissions for: {feature}")
        if cluster.status != "available":
            raise _roles_unavailable(cluster)
        for role in cluster.associated_roles:
            if role["RoleArn"] == role_arn:
                # AWS's wording (captured); also for one role under a second feature name (AWS allows a role
                # one feature of an Aurora PostgreSQL cluster).
                raise rds_error("DBClusterRoleAlreadyExistsFault",
                                f"Role ARN {role_arn} is already associated with DB Cluster: {cluster.identifier}. "
                                "Verify your role ARN and try again.")
            if role.get("FeatureName") == feature:
                # Unconfirmed wording: one role per feature.
                raise rds_error("DBClusterRoleAlreadyExistsFault",
                                f"A role is already associated with DB Cluster {cluster.identifier} for the "
                                f"feature {feature}. Remove it first.")
        if len(cluster.associated_roles) >= MAX_ROLES:
            # Unconfirmed wording.
            raise rds_error("DBClusterRoleQuotaExceededFault",
                            f"DB Cluster {cluster.identifier} has reached the maximum number of associated IAM "
                            f"roles ({MAX_ROLES}).")
        cluster.associated_roles.append({"RoleArn": role_arn, "FeatureName": feature})
        self._save_cluster(cluster)
        ctx.record_resource("AWS::RDS::DBCluster", cluster.arn())
        return {}

    def RemoveRoleFromDBCluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        cluster, role_arn, feature = self._role_request(ctx, params)
        kept = [r for r in cluster.associated_roles
                if not (r["RoleArn"] == role_arn and (feature is None or r.get("FeatureName") == feature))]
        if len(kept) == len(cluster.associated_roles):
            # Unconfirmed wording, modelled on DBClusterRoleAlreadyExists'.
            raise rds_error("DBClusterRoleNotFoundFault",
                            f"Role ARN {role_arn} cannot be found for DB Cluster: {cluster.identifier}. "
                            "Verify your role ARN and try again.")
        if cluster.status != "available":
            raise _roles_unavailable(cluster)
        cluster.associated_roles = kept
        self._save_cluster(cluster)
        ctx.record_resource("AWS::RDS::DBCluster", cluster.arn())
        return {}

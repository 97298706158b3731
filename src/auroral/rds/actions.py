"""Authorization table entries for RDS (Service Authorization Reference, "Amazon RDS").

Resources: ``cluster`` ``arn:aws:rds:<region>:<account>:cluster:<id>``, ``db`` ``...:db:<id>``,
``cluster-pg`` ``...:cluster-pg:<name>``, ``subgrp`` ``...:subgrp:<name>``, ``cluster-endpoint``
``...:cluster-endpoint:<name>`` (a custom endpoint: CreateDBClusterEndpoint is authorized on it and on
its cluster, DescribeDBClusterEndpoints on it and, when named, the cluster). Each is a ``Ref`` that
``RdsService.resolve_resource`` turns into the canonical ARN of what the handler acts on: the
identifier lower-cased as RDS stores it (``DEMO`` is ``cluster:demo``), an ARN accepted only where
the handler accepts one (Describe*, ``ResourceName``) and only of this partition, region and account.
Optional resource types (the parameter group and subnet group of CreateDBCluster) are authorized
when the request names them.

``resource_tags`` entries get ``aws:ResourceTag/<k>`` of each resource they name from the pipeline
(``RdsService.resource_tags``): the subnet groups, and the parameter group, subnet group and cluster a
create names next to the new resource, each with its own tags.

Keys that need a lookup or a default come from ``RdsService.authz_keys``: the tags of the
resource acted on (``rds:cluster-tag/<k>``, ``rds:db-tag/<k>``, ``rds:cluster-pg-tag/<k>``,
``aws:ResourceTag/<k>``), ``rds:req-tag/<k>`` and ``rds:ManageMasterUserPassword``.
"""

from auroral.api.actions import ActionSpec, Ref

_CLUSTER = Ref("DBClusterIdentifier", "cluster")
_CLUSTER_OR_ARN = Ref("DBClusterIdentifier", "cluster-or-arn")
_DB = Ref("DBInstanceIdentifier", "db")
_DB_OR_ARN = Ref("DBInstanceIdentifier", "db-or-arn")
_PG = Ref("DBClusterParameterGroupName", "cluster-pg")
_SUBGRP = Ref("DBSubnetGroupName", "subgrp")
_TAGGED = Ref("ResourceName", "arn")
_ENDPOINT = Ref("DBClusterEndpointIdentifier", "cluster-endpoint")
_SNAPSHOT = Ref("DBClusterSnapshotIdentifier", "cluster-snapshot")
# a snapshot the caller reads (Describe, copy or restore): maybe another account's, shared with the caller's and
# named by its ARN; authorized on that ARN (the owner's account in it), as the handler acts on that snapshot
_SHARED = "shared-snapshot"
# "If tags are specified in the create action, RDS performs additional authorization on the
# rds:AddTagsToResource action" (RDS user guide, "Grant permission to tag RDS resources during creation")
_TAG_ON_CREATE = ("rds:AddTagsToResource", "Tags")

ACTIONS: dict[str, ActionSpec] = {
    "CreateDBCluster": ActionSpec(
        "rds:CreateDBCluster",
        (_CLUSTER, Ref("DBClusterParameterGroupName", "cluster-pg", optional=True),
         Ref("DBSubnetGroupName", "subgrp", optional=True)),
        keys={
            "rds:DatabaseEngine": "Engine",
            "rds:DatabaseName": "DatabaseName",
            "rds:StorageEncrypted": "StorageEncrypted",
        },
        request_tags="Tags",
        resource_tags=True,
        tag_on_create=_TAG_ON_CREATE,
    ),
    "DescribeDBClusters": ActionSpec("rds:DescribeDBClusters", (_CLUSTER_OR_ARN,), read_only=True),
    "ModifyDBCluster": ActionSpec(
        "rds:ModifyDBCluster", (_CLUSTER, Ref("DBClusterParameterGroupName", "cluster-pg", optional=True)),
        resource_tags=True,
    ),
    # with a final snapshot, on the snapshot too (Service Authorization Reference: cluster*, cluster-snapshot*)
    "DeleteDBCluster": ActionSpec(
        "rds:DeleteDBCluster", (_CLUSTER, Ref("FinalDBSnapshotIdentifier", "cluster-snapshot", optional=True))),
    "StartDBCluster": ActionSpec("rds:StartDBCluster", (_CLUSTER,)),
    "StopDBCluster": ActionSpec("rds:StopDBCluster", (_CLUSTER,)),
    "FailoverDBCluster": ActionSpec("rds:FailoverDBCluster", (_CLUSTER,)),
    "CreateDBInstance": ActionSpec(
        "rds:CreateDBInstance",
        (_DB, _CLUSTER),
        keys={
            "rds:DatabaseEngine": "Engine",
            "rds:DatabaseClass": "DBInstanceClass",
            "rds:StorageEncrypted": "StorageEncrypted",
        },
        request_tags="Tags",
        resource_tags=True,
        tag_on_create=_TAG_ON_CREATE,
    ),
    "DescribeDBInstances": ActionSpec("rds:DescribeDBInstances", (_DB_OR_ARN,), read_only=True),
    "ModifyDBInstance": ActionSpec(
        "rds:ModifyDBInstance", (_DB,), keys={"rds:DatabaseClass": "DBInstanceClass"}
    ),
    "DeleteDBInstance": ActionSpec("rds:DeleteDBInstance", (_DB,)),
    "RebootDBInstance": ActionSpec("rds:RebootDBInstance", (_DB,)),
    # Service Authorization Reference: on db* (condition keys rds:db-tag/<k>, aws:ResourceTag/<k>)
    "DescribeDBLogFiles": ActionSpec("rds:DescribeDBLogFiles", (_DB,), read_only=True),
    "DownloadDBLogFilePortion": ActionSpec("rds:DownloadDBLogFilePortion", (_DB,), read_only=True),
    "CreateDBClusterParameterGroup": ActionSpec(
        "rds:CreateDBClusterParameterGroup", (_PG,), request_tags="Tags", tag_on_create=_TAG_ON_CREATE
    ),
    "DescribeDBClusterParameterGroups": ActionSpec(
        "rds:DescribeDBClusterParameterGroups", (_PG,), read_only=True
    ),
    "ModifyDBClusterParameterGroup": ActionSpec("rds:ModifyDBClusterParameterGroup", (_PG,)),
    "ResetDBClusterParameterGroup": ActionSpec("rds:ResetDBClusterParameterGroup", (_PG,)),
    "DeleteDBClusterParameterGroup": ActionSpec("rds:DeleteDBClusterParameterGroup", (_PG,)),
    "DescribeDBClusterParameters": ActionSpec("rds:DescribeDBClusterParameters", (_PG,), read_only=True),
    "DescribeEngineDefaultClusterParameters": ActionSpec(
        "rds:DescribeEngineDefaultClusterParameters", ("*",), read_only=True
    ),
    "DescribeDBEngineVersions": ActionSpec("rds:DescribeDBEngineVersions", ("*",), read_only=True),
    "DescribeOrderableDBInstanceOptions": ActionSpec(
        "rds:DescribeOrderableDBInstanceOptions", ("*",), read_only=True
    ),
    # Service Authorization Reference: on the db or cluster the action names (ResourceIdentifier, an ARN)
    "DescribePendingMaintenanceActions": ActionSpec("rds:DescribePendingMaintenanceActions", ("*",),
                                                    read_only=True),
    "ApplyPendingMaintenanceAction": ActionSpec(
        "rds:ApplyPendingMaintenanceAction", (Ref("ResourceIdentifier", "arn"),)
    ),
    "CreateDBSubnetGroup": ActionSpec(
        "rds:CreateDBSubnetGroup", (_SUBGRP,), request_tags="Tags", tag_on_create=_TAG_ON_CREATE
    ),
    "DescribeDBSubnetGroups": ActionSpec(
        "rds:DescribeDBSubnetGroups", (_SUBGRP,), read_only=True, resource_tags=True
    ),
    "ModifyDBSubnetGroup": ActionSpec("rds:ModifyDBSubnetGroup", (_SUBGRP,), resource_tags=True),
    "DeleteDBSubnetGroup": ActionSpec("rds:DeleteDBSubnetGroup", (_SUBGRP,), resource_tags=True),
    "DescribeCertificates": ActionSpec("rds:DescribeCertificates", ("*",), read_only=True),
    "CreateDBClusterEndpoint": ActionSpec(
        "rds:CreateDBClusterEndpoint", (_ENDPOINT, _CLUSTER), keys={"rds:EndpointType": "EndpointType"},
        request_tags="Tags", resource_tags=True, tag_on_create=_TAG_ON_CREATE,
    ),
    "DescribeDBClusterEndpoints": ActionSpec(
        "rds:DescribeDBClusterEndpoints", (_ENDPOINT, Ref("DBClusterIdentifier", "cluster", optional=True)),
        read_only=True,
    ),
    "ModifyDBClusterEndpoint": ActionSpec(
        "rds:ModifyDBClusterEndpoint", (_ENDPOINT,), resource_tags=True,
    ),
    "DeleteDBClusterEndpoint": ActionSpec("rds:DeleteDBClusterEndpoint", (_ENDPOINT,), resource_tags=True),
    # AddRoleToDBCluster's dependent action iam:PassRole on the role is authorized by the handler
    # (rds/cluster_roles.py), with iam:PassedToService = rds.amazonaws.com
    "AddRoleToDBCluster": ActionSpec("rds:AddRoleToDBCluster", (_CLUSTER,)),
    "RemoveRoleFromDBCluster": ActionSpec("rds:RemoveRoleFromDBCluster", (_CLUSTER,)),
    # no resource-level permissions (Service Authorization Reference): "*"
    "DescribeEvents": ActionSpec("rds:DescribeEvents", ("*",), read_only=True),
    "DescribeEventCategories": ActionSpec("rds:DescribeEventCategories", ("*",), read_only=True),
    # Snapshots (rds/snapshots.py): on the cluster-snapshot, and the cluster an action names
    "CreateDBClusterSnapshot": ActionSpec(
        "rds:CreateDBClusterSnapshot", (_CLUSTER, _SNAPSHOT), request_tags="Tags", tag_on_create=_TAG_ON_CREATE,
    ),
    "DescribeDBClusterSnapshots": ActionSpec(
        "rds:DescribeDBClusterSnapshots", (Ref("DBClusterSnapshotIdentifier", _SHARED, optional=True),),
        read_only=True,
    ),
    "CopyDBClusterSnapshot": ActionSpec(
        "rds:CopyDBClusterSnapshot",
        (Ref("SourceDBClusterSnapshotIdentifier", _SHARED),
         Ref("TargetDBClusterSnapshotIdentifier", "cluster-snapshot")),
        request_tags="Tags", tag_on_create=_TAG_ON_CREATE,
    ),
    "DeleteDBClusterSnapshot": ActionSpec("rds:DeleteDBClusterSnapshot", (_SNAPSHOT,)),
    "RestoreDBClusterFromSnapshot": ActionSpec(
        "rds:RestoreDBClusterFromSnapshot",
        (_CLUSTER, Ref("SnapshotIdentifier", _SHARED),
         Ref("DBClusterParameterGroupName", "cluster-pg", optional=True),
         Ref("DBSubnetGroupName", "subgrp", optional=True)),
        keys={"rds:DatabaseEngine": "Engine"},
        request_tags="Tags", tag_on_create=_TAG_ON_CREATE,
    ),
    # on the new cluster and the source (Service Authorization Reference: cluster*)
    "RestoreDBClusterToPointInTime": ActionSpec(
        "rds:RestoreDBClusterToPointInTime",
        (_CLUSTER, Ref("SourceDBClusterIdentifier", "cluster-or-arn", optional=True),
         Ref("DBClusterParameterGroupName", "cluster-pg", optional=True),
         Ref("DBSubnetGroupName", "subgrp", optional=True)),
        request_tags="Tags", tag_on_create=_TAG_ON_CREATE,
    ),
    "ModifyDBClusterSnapshotAttribute": ActionSpec("rds:ModifyDBClusterSnapshotAttribute", (_SNAPSHOT,)),
    "DescribeDBClusterSnapshotAttributes": ActionSpec(
        "rds:DescribeDBClusterSnapshotAttributes", (_SNAPSHOT,), read_only=True,
    ),
    "AddTagsToResource": ActionSpec(
        "rds:AddTagsToResource", (_TAGGED,), request_tags="Tags"
    ),
    "RemoveTagsFromResource": ActionSpec(
        "rds:RemoveTagsFromResource", (_TAGGED,), tag_keys="TagKeys"
    ),
    "ListTagsForResource": ActionSpec("rds:ListTagsForResource", (_TAGGED,), read_only=True),
}

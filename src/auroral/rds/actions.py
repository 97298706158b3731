"""Authorization table entries for RDS (Service Authorization Reference, "Amazon RDS").

Resources: ``cluster`` ``arn:aws:rds:<region>:<account>:cluster:<id>``, ``db`` ``...:db:<id>``,
``cluster-pg`` ``...:cluster-pg:<name>``,
``subgrp`` ``...:subgrp:<name>``. Only the required resource type of each action is
listed (optional ones, such as the parameter group of CreateDBCluster, apply only when given and
would render as ``*`` otherwise).

Keys that need a lookup or a default come from ``RdsService.authz_keys``: the tags of the
resource acted on (``rds:cluster-tag/<k>``, ``rds:db-tag/<k>``, ``rds:cluster-pg-tag/<k>``,
``aws:ResourceTag/<k>``), ``rds:req-tag/<k>`` and ``rds:ManageMasterUserPassword``.
"""

from auroral.api.actions import ActionSpec

_CLUSTER = "arn:{partition}:rds:{region}:{account}:cluster:{DBClusterIdentifier}"
_DB = "arn:{partition}:rds:{region}:{account}:db:{DBInstanceIdentifier}"
_PG = "arn:{partition}:rds:{region}:{account}:cluster-pg:{DBClusterParameterGroupName}"
_SUBGRP = "arn:{partition}:rds:{region}:{account}:subgrp:{DBSubnetGroupName}"

ACTIONS: dict[str, ActionSpec] = {
    "CreateDBCluster": ActionSpec(
        "rds:CreateDBCluster",
        (_CLUSTER,),
        keys={
            "rds:DatabaseEngine": "Engine",
            "rds:DatabaseName": "DatabaseName",
            "rds:StorageEncrypted": "StorageEncrypted",
        },
        request_tags="Tags",
    ),
    "DescribeDBClusters": ActionSpec("rds:DescribeDBClusters", (_CLUSTER,), read_only=True),
    "ModifyDBCluster": ActionSpec("rds:ModifyDBCluster", (_CLUSTER,)),
    "DeleteDBCluster": ActionSpec("rds:DeleteDBCluster", (_CLUSTER,)),
    "StartDBCluster": ActionSpec("rds:StartDBCluster", (_CLUSTER,)),
    "StopDBCluster": ActionSpec("rds:StopDBCluster", (_CLUSTER,)),
    "CreateDBInstance": ActionSpec(
        "rds:CreateDBInstance",
        (_DB, _CLUSTER),
        keys={
            "rds:DatabaseEngine": "Engine",
            "rds:DatabaseClass": "DBInstanceClass",
            "rds:StorageEncrypted": "StorageEncrypted",
        },
        request_tags="Tags",
    ),
    "DescribeDBInstances": ActionSpec("rds:DescribeDBInstances", (_DB,), read_only=True),
    "ModifyDBInstance": ActionSpec(
        "rds:ModifyDBInstance", (_DB,), keys={"rds:DatabaseClass": "DBInstanceClass"}
    ),
    "DeleteDBInstance": ActionSpec("rds:DeleteDBInstance", (_DB,)),
    "RebootDBInstance": ActionSpec("rds:RebootDBInstance", (_DB,)),
    "CreateDBClusterParameterGroup": ActionSpec(
        "rds:CreateDBClusterParameterGroup", (_PG,), request_tags="Tags"
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
    "CreateDBSubnetGroup": ActionSpec("rds:CreateDBSubnetGroup", (_SUBGRP,), request_tags="Tags"),
    "DescribeDBSubnetGroups": ActionSpec("rds:DescribeDBSubnetGroups", (_SUBGRP,), read_only=True),
    "ModifyDBSubnetGroup": ActionSpec("rds:ModifyDBSubnetGroup", (_SUBGRP,)),
    "DeleteDBSubnetGroup": ActionSpec("rds:DeleteDBSubnetGroup", (_SUBGRP,)),
    "DescribeCertificates": ActionSpec("rds:DescribeCertificates", ("*",), read_only=True),
    "AddTagsToResource": ActionSpec(
        "rds:AddTagsToResource", ("{ResourceName}",), request_tags="Tags"
    ),
    "RemoveTagsFromResource": ActionSpec(
        "rds:RemoveTagsFromResource", ("{ResourceName}",), tag_keys="TagKeys"
    ),
    "ListTagsForResource": ActionSpec("rds:ListTagsForResource", ("{ResourceName}",), read_only=True),
}

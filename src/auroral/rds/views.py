"""Response views: ``DBCluster`` and ``DBInstance`` dicts shaped like botocore's rds output shapes.

Endpoints are reported as AWS reports them: the cluster's ``Endpoint`` (``<cluster>.cluster-<id>...``)
and ``ReaderEndpoint`` (``<cluster>.cluster-ro-<id>...``) and its ``Port`` from creation on; an
instance's ``Endpoint`` (``<instance>.<id>.<region>.rds.amazonaws.com``, the port, the hosted zone) once
it has an address (not while ``creating``: unconfirmed, as AWS's create-db-instance answers show it).
The names resolve through auroral's DNS server and hosts block (``auroral.dns``, records from
``rds/dns_records.py``) to the address each instance listens on (``rds/addresses.py``).
"""

from __future__ import annotations

from typing import Any

from auroral.rds.model import HOSTED_ZONE_ID, Cluster, Instance

BACKUP_WINDOW = "07:00-07:30"
MAINTENANCE_WINDOW = "sun:05:00-sun:05:30"
CA_IDENTIFIER = "rds-ca-rsa2048-g1"


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def cluster_view(cluster: Cluster, members: list[Instance], endpoint: tuple[str, int] | None,
                 names: tuple[str, str], *, certificate: dict[str, Any] | None = None,
                 custom_endpoints: list[str] | None = None) -> dict[str, Any]:
    """``endpoint``: where the writer listens, if it does (its port is the cluster's, except with one
    shared endpoint address); ``names``: the cluster and reader endpoint names; ``custom_endpoints``:
    the DNS names of the cluster's custom endpoints."""
    view: dict[str, Any] = {
        "AllocatedStorage": 1,
        "AvailabilityZones": list(cluster.availability_zones),
        "BackupRetentionPeriod": cluster.backup_retention_period,
        "DBClusterIdentifier": cluster.identifier,
        "DBClusterParameterGroup": cluster.parameter_group,
        "DBSubnetGroup": cluster.subnet_group,
        "Status": cluster.status,
        "MultiAZ": False,
        "Engine": cluster.engine,
        "EngineVersion": cluster.engine_version,
        "Port": endpoint[1] if endpoint else cluster.port,
        "MasterUsername": cluster.master_username,
        "PreferredBackupWindow": cluster.preferred_backup_window,
        "PreferredMaintenanceWindow": MAINTENANCE_WINDOW,
        "ReadReplicaIdentifiers": [],
        "DBClusterOptionGroupMemberships": [],
        "DBClusterMembers": [
            {
                "DBInstanceIdentifier": m.identifier,
                "IsClusterWriter": m.is_writer,
                "DBClusterParameterGroupStatus": "pending-reboot" if cluster.pending_reboot else "in-sync",
                "PromotionTier": m.promotion_tier,
            }
            for m in sorted(members, key=lambda m: (not m.is_writer, m.identifier))
        ],
        "VpcSecurityGroups": [{"VpcSecurityGroupId": g, "Status": "active"} for g in cluster.vpc_security_group_ids],
        "HostedZoneId": HOSTED_ZONE_ID,
        "StorageEncrypted": cluster.storage_encrypted,
        "DbClusterResourceId": cluster.resource_id,
        "DBClusterArn": cluster.arn(),
        "AssociatedRoles": [dict(r) for r in cluster.associated_roles],
        "IAMDatabaseAuthenticationEnabled": cluster.iam_auth,
        "ClusterCreateTime": cluster.created,
        "EngineMode": "provisioned",
        "DeletionProtection": cluster.deletion_protection,
        "HttpEndpointEnabled": False,
        "CopyTagsToSnapshot": cluster.copy_tags_to_snapshot,
        "CrossAccountClone": False,
        "DomainMemberships": [],
        "TagList": tag_list(cluster.tags),
        # the DNS names of its custom endpoints (cluster_endpoints.py)
        "CustomEndpoints": list(custom_endpoints or []),
        "StorageType": "aurora",
        "AutoMinorVersionUpgrade": True,
        "NetworkType": "IPV4",
    }
    view["Endpoint"], view["ReaderEndpoint"] = names
    if cluster.database_name:
        view["DatabaseName"] = cluster.database_name
    if certificate:
        view["CertificateDetails"] = dict(certificate)
    if cluster.kms_key_id:
        view["KmsKeyId"] = cluster.kms_key_id
    if cluster.master_user_secret:
        view["MasterUserSecret"] = dict(cluster.master_user_secret)
    return view


def instance_view(instance: Instance, cluster: Cluster | None, name: str, *,
                  subnet_group: dict[str, Any] | None = None,
                  certificate: dict[str, Any] | None = None) -> dict[str, Any]:
    """``name``: the instance's endpoint DNS name."""
    major = cluster.major if cluster else 0
    view: dict[str, Any] = {
        "DBInstanceIdentifier": instance.identifier,
        "DBInstanceClass": instance.instance_class,
        "Engine": instance.engine,
        "DBInstanceStatus": instance.status,
        "AllocatedStorage": 1,
        "InstanceCreateTime": instance.created,
        "PreferredBackupWindow": BACKUP_WINDOW,
        "BackupRetentionPeriod": 1,
        "DBSecurityGroups": [],
        "VpcSecurityGroups": [
            {"VpcSecurityGroupId": g, "Status": "active"} for g in (cluster.vpc_security_group_ids if cluster else [])
        ],
        "DBParameterGroups": [
            {"DBParameterGroupName": f"default.aurora-postgresql{major}", "ParameterApplyStatus": "in-sync"}
        ],
        "AvailabilityZone": instance.availability_zone,
        "DBSubnetGroup": subnet_group or {
            "DBSubnetGroupName": cluster.subnet_group if cluster else "default",
            "DBSubnetGroupDescription": "default",
            "SubnetGroupStatus": "Complete",
            "Subnets": [],
        },
        "PreferredMaintenanceWindow": MAINTENANCE_WINDOW,
        "PendingModifiedValues": {},
        "MultiAZ": False,
        "EngineVersion": instance.engine_version,
        "AutoMinorVersionUpgrade": True,
        "ReadReplicaDBInstanceIdentifiers": [],
        "LicenseModel": "postgresql-license",
        "OptionGroupMemberships": [{"OptionGroupName": f"default:aurora-postgresql-{major}", "Status": "in-sync"}],
        "PubliclyAccessible": instance.publicly_accessible,
        "StorageType": "aurora",
        "DbInstancePort": 0,
        "DBClusterIdentifier": instance.cluster_identifier,
        "StorageEncrypted": cluster.storage_encrypted if cluster else False,
        "DbiResourceId": instance.resource_id,
        "CACertificateIdentifier": CA_IDENTIFIER,
        "DomainMemberships": [],
        "CopyTagsToSnapshot": instance.copy_tags_to_snapshot,
        "MonitoringInterval": 0,
        "PromotionTier": instance.promotion_tier,
        "DBInstanceArn": instance.arn(),
        "IAMDatabaseAuthenticationEnabled": cluster.iam_auth if cluster else False,
        "PerformanceInsightsEnabled": False,
        "DeletionProtection": False,
        "AssociatedRoles": [],
        "TagList": tag_list(instance.tags),
        "CustomerOwnedIpEnabled": False,
        "NetworkType": "IPV4",
        "BackupTarget": "region",
        "DedicatedLogVolume": False,
    }
    if cluster is not None:
        view["MasterUsername"] = cluster.master_username
        if cluster.database_name:
            view["DBName"] = cluster.database_name
        if cluster.kms_key_id:
            view["KmsKeyId"] = cluster.kms_key_id
    if certificate:
        view["CertificateDetails"] = dict(certificate)
    if instance.address and instance.endpoint_port:
        view["Endpoint"] = {"Address": name, "Port": instance.endpoint_port, "HostedZoneId": HOSTED_ZONE_ID}
    return view

"""boto3's default waiters poll at once, then every 30 s: a create answered while the resource is still
``creating`` turned a provisioning of a few seconds into 30 s. The answer now comes once it is ready
(still saying "creating", as AWS's does), so the waiter's first poll finds it available."""

from __future__ import annotations

import time
from typing import Any

from .e2e_helpers import ENGINE_VERSION, MASTER, PASSWORD, Db, delete_db, ident


def test_default_waiters_find_a_new_cluster_and_instance_available_at_their_first_poll(server: Any) -> None:
    rds = server.client("rds")
    cid, iid = ident("e2e-settle"), ident("e2e-settle-i")
    try:
        started = time.monotonic()
        cluster = rds.create_db_cluster(
            DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion=ENGINE_VERSION,
            MasterUsername=MASTER, MasterUserPassword=PASSWORD,
        )["DBCluster"]
        instance = rds.create_db_instance(DBInstanceIdentifier=iid, DBClusterIdentifier=cid,
                                          Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")["DBInstance"]
        provisioning = time.monotonic() - started
        assert cluster["Status"] == "creating" and instance["DBInstanceStatus"] == "creating"  # as AWS answers
        assert rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]["Status"] == "available", \
            f"not available after {provisioning:.1f} s"
        described = rds.describe_db_instances(DBInstanceIdentifier=iid)["DBInstances"][0]
        assert described["DBInstanceStatus"] == "available" and described["Endpoint"]["Port"] > 0
        # the default waiter configuration (30 s between polls): done at its first poll
        started = time.monotonic()
        rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=cid)
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=iid)
        assert time.monotonic() - started < 10
    finally:
        delete_db(rds, Db(cid, iid, "", 0, "", PASSWORD, ""))

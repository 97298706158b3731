"""A cluster's WAL spool belongs to its OS user, who (code escaped from the engine) can leave any file
there with any modification time: the time auroral records as when the file was archived. A time in the
far future must not break the cluster's DescribeDBClusters (a year past 9999 is no datetime) nor move its
LatestRestorableTime past now."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import Server

from .e2e_helpers import cluster_dir, create_db, delete_db, until


def test_a_wal_file_from_the_future(server: Server) -> None:
    rds: Any = server.client("rds")
    db = create_db(rds, prefix="walfuture")
    try:
        until(lambda: "EarliestRestorableTime" in rds.describe_db_clusters(
            DBClusterIdentifier=db.cluster_id)["DBClusters"][0], timeout=60, what="the first backup")
        spool = cluster_dir(server.data_dir, db.resource_id) / "walspool"
        name = "0000000100000000000000FE"
        path = spool / name
        path.write_bytes(b"\0" * 8192)
        os.utime(path, (4e11, 4e11))  # the year 14645
        until(lambda: not path.exists(), timeout=30, what="the file shipped")
        cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
        assert cluster["LatestRestorableTime"] <= datetime.now(UTC) + timedelta(seconds=5)
    finally:
        delete_db(rds, db)

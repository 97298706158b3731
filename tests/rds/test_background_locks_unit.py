"""The RDS service's background work runs in turn per key (``_spawn``): a cluster's resource id, its
first backup's ``backup:<rid>``, a copy's ``snapshot:<sid>``. Those keys' locks go with what they serve:
a caller that creates and deletes clusters, or copies and deletes snapshots, over and over, must not grow
the service's table of locks by one entry each time. Against the real store, keyring and sealed files
(the shared-snapshot tests' harness, one account)."""

from __future__ import annotations

from .conftest import PASSWORD
from .fakes import ACCOUNT
from .test_shared_snapshots_unit import Accounts, accounts  # noqa: F401  (the fixture)


async def test_locks_do_not_outlive_their_work(accounts: Accounts) -> None:  # noqa: F811
    env = accounts
    await env.call(ACCOUNT, "CreateDBCluster", DBClusterIdentifier="keep", Engine="aurora-postgresql",
                   EngineVersion="16.4", MasterUsername="master", MasterUserPassword=PASSWORD)
    await env.call(ACCOUNT, "CreateDBClusterSnapshot", DBClusterIdentifier="keep", DBClusterSnapshotIdentifier="src")
    baseline = len(env.service._locks)
    for i in range(5):
        await env.call(ACCOUNT, "CopyDBClusterSnapshot", SourceDBClusterSnapshotIdentifier="src",
                       TargetDBClusterSnapshotIdentifier=f"copy-{i}")
        await env.call(ACCOUNT, "DeleteDBClusterSnapshot", DBClusterSnapshotIdentifier=f"copy-{i}")
        await env.call(ACCOUNT, "CreateDBCluster", DBClusterIdentifier=f"gone-{i}", Engine="aurora-postgresql",
                       EngineVersion="16.4", MasterUsername="master", MasterUserPassword=PASSWORD)
        await env.call(ACCOUNT, "DeleteDBCluster", DBClusterIdentifier=f"gone-{i}", SkipFinalSnapshot=True)
    assert len(env.service._locks) <= baseline, sorted(env.service._locks)

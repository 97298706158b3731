"""What the e2e tests of tests/securityhub ask of GetFindings about one cluster."""

from __future__ import annotations

from typing import Any

from tests.conftest import Server
from tests.rds.e2e_helpers import Db


def cluster_arn(server: Server, db: Db) -> str:
    return f"arn:aws:rds:{server.region}:{server.account}:cluster:{db.cluster_id}"


def cluster_finding(server: Server, db: Db, control: str) -> dict[str, Any]:
    """The cluster's one finding of ``control`` as GetFindings answers it (it reads the database first)."""
    found = server.client("securityhub").get_findings(Filters={
        "ComplianceSecurityControlId": [{"Value": control, "Comparison": "EQUALS"}],
        "ResourceId": [{"Value": cluster_arn(server, db), "Comparison": "EQUALS"}]})["Findings"]
    assert len(found) == 1, found
    return dict(found[0])

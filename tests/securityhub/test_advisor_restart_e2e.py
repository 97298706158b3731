"""Across a restart: findings (with the user's workflow and note) are kept, and auroral's own controls
still see the logins of the previous run that are inside their window (read back from the flow log)."""

from __future__ import annotations

import shutil
from typing import Any

from tests.conftest import new_root_key, server_tmpdir, start_server, stop_server
from tests.rds.e2e_helpers import create_db, until

ACCOUNT = "310987654321"


def _master_finding(sh: Any, cluster_arn: str) -> dict[str, Any]:
    found = sh.get_findings(Filters={"ComplianceSecurityControlId": [{"Value": "AURORAL.1", "Comparison": "EQUALS"}],
                                     "ResourceId": [{"Value": cluster_arn, "Comparison": "EQUALS"}]})["Findings"]
    assert len(found) == 1, found
    return dict(found[0])


def test_findings_and_logins_survive_a_restart() -> None:
    key, secret = new_root_key()
    base = server_tmpdir()
    srv = start_server(base / "data", access_key=key, secret_key=secret, account=ACCOUNT)
    try:
        rds, sh = srv.client("rds"), srv.client("securityhub")
        db = create_db(rds, prefix="adv-restart")
        cluster_arn = f"arn:aws:rds:{srv.region}:{ACCOUNT}:cluster:{db.cluster_id}"
        with db.connect(application_name="nightly-report") as conn:
            conn.execute("SELECT 1")
        failed = until(lambda: (f := _master_finding(sh, cluster_arn))["Compliance"]["Status"] == "FAILED" and f,
                       what="AURORAL.1 FAILED")
        sh.batch_update_findings(FindingIdentifiers=[{"Id": failed["Id"], "ProductArn": failed["ProductArn"]}],
                                 Workflow={"Status": "NOTIFIED"}, Note={"Text": "move to app role", "UpdatedBy": "ops"})
        stop_server(srv)
        srv = start_server(base / "data", access_key=key, secret_key=secret, account=ACCOUNT)
        after = _master_finding(srv.client("securityhub"), cluster_arn)
        assert after["Id"] == failed["Id"] and after["CreatedAt"] == failed["CreatedAt"]
        assert after["Compliance"]["Status"] == "FAILED"  # the login of the previous run is still in the window
        assert "(nightly-report) x1" in after["ProductFields"]["auroral/Evidence/Sources"]
        assert after["Workflow"]["Status"] == "NOTIFIED" and after["Note"]["Text"] == "move to app role"
    finally:
        stop_server(srv)
        shutil.rmtree(base, ignore_errors=True)

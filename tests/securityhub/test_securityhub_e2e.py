"""The security advisor through a running server, with unmodified boto3 and the AWS CLI: an insecure
situation built with real API calls (a security group open to the internet on 5432, a cluster without
deletion protection or IAM database authentication, a publicly accessible
instance, the root user's access key) shows as FAILED findings; each fix turns its finding PASSED (a
resource that is gone, ARCHIVED) by the next GetFindings; BatchUpdateFindings, filters, sorting,
paging and authorization behave as Security Hub's.

The server is this module's own: the test deletes the root user's access key.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, fresh_server, unique
from tests.rds.e2e_helpers import FAST, MASTER, PASSWORD, create_db, delete_db, ident, until

ACCOUNT = "210987654321"


@pytest.fixture(scope="module")
def srv() -> Iterator[Server]:
    with fresh_server(ACCOUNT) as server:
        yield server


def auroral_findings(srv: Server, *args: str) -> str:
    """``auroral findings`` over the server's data directory (what the store holds, no API call)."""
    out = subprocess.run([sys.executable, "-m", "auroral.cli", "findings", "--data-dir", str(srv.data_dir), *args],
                         capture_output=True, text=True, timeout=60, env=srv.env, check=True)
    return out.stdout


def control_findings(sh: Any, control: str, resource: str | None = None, **extra: Any) -> list[dict[str, Any]]:
    filters: dict[str, Any] = {"ComplianceSecurityControlId": [{"Value": control, "Comparison": "EQUALS"}],
                               **extra}
    if resource is not None:
        filters["ResourceId"] = [{"Value": resource, "Comparison": "EQUALS"}]
    return list(sh.get_findings(Filters=filters)["Findings"])


def only(findings: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(findings) == 1, findings
    return findings[0]


def test_insecure_then_fixed(srv: Server) -> None:
    sh, ec2, rds = srv.client("securityhub"), srv.client("ec2"), srv.client("rds")
    arn = f"arn:aws:%s:{srv.region}:{ACCOUNT}:%s"

    # --- the insecure situation ---------------------------------------------------------------
    sg = ec2.create_security_group(GroupName=unique("db-open"), Description="open to the world")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    cid, iid = ident("adv"), ident("adv-i")
    rds.create_db_cluster(DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion="16.4",
                          MasterUsername="dbadmin", MasterUserPassword=PASSWORD, VpcSecurityGroupIds=[sg])
    rds.create_db_instance(DBInstanceIdentifier=iid, DBClusterIdentifier=cid, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large", PubliclyAccessible=True)
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=iid, WaiterConfig=FAST)
    sg_arn, cluster_arn, db_arn = arn % ("ec2", f"security-group/{sg}"), arn % ("rds", f"cluster:{cid}"), \
        arn % ("rds", f"db:{iid}")
    account_res = f"AWS::::Account:{ACCOUNT}"

    failed = {"Value": "FAILED", "Comparison": "EQUALS"}
    for control, resource in (("EC2.19", sg_arn), ("EC2.18", sg_arn), ("RDS.7", cluster_arn),
                              ("RDS.12", cluster_arn), ("RDS.27", cluster_arn),
                              ("RDS.2", db_arn), ("IAM.4", account_res)):
        f = only(control_findings(sh, control, resource, ComplianceStatus=[failed]))
        assert f["RecordState"] == "ACTIVE" and f["Workflow"]["Status"] == "NEW"
        assert f["SchemaVersion"] == "2018-10-08"
        assert f["ProductArn"] == f"arn:aws:securityhub:{srv.region}::product/aws/securityhub"
        assert f["GeneratorId"] == f"security-control/{control}"
        assert f["AwsAccountId"] == ACCOUNT and f["Resources"][0]["Id"] == resource
        assert f["Resources"][0]["Region"] == srv.region
        assert f["Remediation"]["Recommendation"]["Url"].startswith("https://docs.aws.amazon.com/securityhub/")
    ec2_19 = only(control_findings(sh, "EC2.19", sg_arn))
    assert ec2_19["Severity"]["Label"] == "CRITICAL"
    assert ec2_19["Resources"][0]["Type"] == "AwsEc2SecurityGroup"
    assert "0.0.0.0/0 to tcp 5432" in ec2_19["ProductFields"]["auroral/Why"]
    assert f"{cid}:5432" in ec2_19["ProductFields"]["auroral/Evidence/ExposedClusters"]
    assert only(control_findings(sh, "RDS.2", db_arn))["Severity"]["Label"] == "CRITICAL"
    assert only(control_findings(sh, "RDS.7", cluster_arn))["Severity"]["Label"] == "LOW"
    # RDS.24: the engine's default names (postgres, admin) are refused by CreateDBCluster, so it passes
    rds_24 = only(control_findings(sh, "RDS.24", cluster_arn))
    assert rds_24["Compliance"]["Status"] == "PASSED"
    assert rds_24["ProductFields"]["auroral/Evidence/MasterUsername"] == "dbadmin"
    # filters: SeverityLabel, ResourceType, PREFIX, NOT_EQUALS
    critical = sh.get_findings(Filters={"SeverityLabel": [{"Value": "CRITICAL", "Comparison": "EQUALS"}],
                                        "ResourceType": [{"Value": "AwsRds", "Comparison": "PREFIX"}]})["Findings"]
    assert {f["Compliance"]["SecurityControlId"] for f in critical} == {"RDS.2"}
    not_ec2 = sh.get_findings(Filters={
        "GeneratorId": [{"Value": "security-control/EC2.", "Comparison": "PREFIX_NOT_EQUALS"}],
        "ComplianceStatus": [failed]})["Findings"]
    assert not_ec2 and all(not f["GeneratorId"].startswith("security-control/EC2.") for f in not_ec2)
    assert not [f for f in sh.get_findings(Filters={"ComplianceStatus": [
        {"Value": "FAILED", "Comparison": "NOT_EQUALS"}, {"Value": "PASSED", "Comparison": "NOT_EQUALS"}]})[
        "Findings"]]

    # --- each fix, seen by the next GetFindings --------------------------------------------------
    ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    fixed = only(control_findings(sh, "EC2.19", sg_arn))
    assert fixed["Compliance"]["Status"] == "PASSED" and fixed["Workflow"]["Status"] == "RESOLVED"
    assert fixed["Severity"]["Label"] == "INFORMATIONAL" and fixed["Id"] == ec2_19["Id"]
    assert fixed["UpdatedAt"] > ec2_19["UpdatedAt"] and fixed["CreatedAt"] == ec2_19["CreatedAt"]

    rds.modify_db_cluster(DBClusterIdentifier=cid, DeletionProtection=True,
                          EnableIAMDatabaseAuthentication=True, ApplyImmediately=True)
    for control in ("RDS.7", "RDS.12"):
        assert only(control_findings(sh, control, cluster_arn))["Compliance"]["Status"] == "PASSED"
    assert only(control_findings(sh, "RDS.27", cluster_arn))["Compliance"]["Status"] == "FAILED"
    rds.modify_db_instance(DBInstanceIdentifier=iid, PubliclyAccessible=False, ApplyImmediately=True)
    assert only(control_findings(sh, "RDS.2", db_arn))["Compliance"]["Status"] == "PASSED"

    # a security group that is gone: its findings are ARCHIVED
    spare = ec2.create_security_group(GroupName=unique("spare"), Description="x")["GroupId"]
    spare_arn = arn % ("ec2", f"security-group/{spare}")
    assert only(control_findings(sh, "EC2.18", spare_arn))["RecordState"] == "ACTIVE"
    ec2.delete_security_group(GroupId=spare)
    gone = only(control_findings(sh, "EC2.18", spare_arn))
    assert gone["RecordState"] == "ARCHIVED"
    active = sh.get_findings(Filters={"RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
                                      "ResourceId": [{"Value": spare_arn, "Comparison": "EQUALS"}]})
    assert active["Findings"] == []

    # UpdatedAt date range: everything just updated is within the last day, nothing before 2000
    recent = sh.get_findings(Filters={"UpdatedAt": [{"DateRange": {"Value": 1, "Unit": "DAYS"}}],
                                      "ResourceId": [{"Value": sg_arn, "Comparison": "EQUALS"}]})
    assert len(recent["Findings"]) == 4
    old = sh.get_findings(Filters={"UpdatedAt": [{"Start": "1990-01-01T00:00:00Z", "End": "2000-01-01T00:00:00Z"}]})
    assert old["Findings"] == []
    forever = sh.get_findings(Filters={"UpdatedAt": [{"DateRange": {"Value": 10**12, "Unit": "DAYS"}}],
                                       "ResourceId": [{"Value": sg_arn, "Comparison": "EQUALS"}]})
    assert len(forever["Findings"]) == 4
    with pytest.raises(ClientError) as err:
        sh.get_findings(Filters={"UpdatedAt": [{"Start": "yesterday"}]})
    assert err.value.response["Error"]["Code"] == "InvalidInputException"

    rds.modify_db_cluster(DBClusterIdentifier=cid, DeletionProtection=False, ApplyImmediately=True)
    rds.delete_db_instance(DBInstanceIdentifier=iid, SkipFinalSnapshot=True)
    rds.delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)

    # the deletion finishes in the background: the findings follow without any API call (the store, as
    # `auroral findings` reads it, shows them ARCHIVED)
    def archived() -> bool:
        lines = [json.loads(line) for line in auroral_findings(srv, "--all", "--json").splitlines()]
        mine = [d for d in lines if d["Resources"][0]["Id"] in (cluster_arn, db_arn)]
        return bool(mine) and all(d["RecordState"] == "ARCHIVED" for d in mine)

    until(archived, timeout=60, what="the deleted cluster's findings ARCHIVED")


def test_sort_and_pages(srv: Server) -> None:
    sh = srv.client("securityhub")
    ec2 = srv.client("ec2")
    for _ in range(3):
        g = ec2.create_security_group(GroupName=unique("pg"), Description="x")["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    every = sh.get_findings(MaxResults=100)["Findings"]
    pages = list(sh.get_paginator("get_findings").paginate(PaginationConfig={"PageSize": 3}))
    paged = [f["Id"] for p in pages for f in p["Findings"]]
    assert len(pages) > 2 and len(paged) == len(set(paged)) == len(every)
    ranked = sh.get_findings(SortCriteria=[{"Field": "SeverityLabel", "SortOrder": "desc"}])["Findings"]
    order = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"]
    labels = [order.index(f["Severity"]["Label"]) for f in ranked]
    assert labels == sorted(labels) and labels[0] == 0
    ec2_54 = control_findings(sh, "EC2.54", None, ComplianceStatus=[{"Value": "FAILED", "Comparison": "EQUALS"}])
    assert len(ec2_54) == 3 and all("::/0 to tcp 22" in f["ProductFields"]["auroral/Why"] for f in ec2_54)
    with pytest.raises(ClientError) as err:
        sh.get_findings(NextToken="not-a-token")
    assert err.value.response["Error"]["Code"] == "InvalidInputException"
    token = sh.get_findings(MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as err:  # a token is good for its own query only
        sh.get_findings(MaxResults=1, NextToken=token,
                        Filters={"RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}]})
    assert err.value.response["Error"]["Code"] == "InvalidInputException"
    many = [{"Value": f"v{i}", "Comparison": "EQUALS"} for i in range(21)]
    with pytest.raises(ClientError) as err:  # up to 20 values per attribute
        sh.get_findings(Filters={"Title": many})
    assert err.value.response["Error"]["Code"] == "InvalidInputException"
    assert sh.get_findings(Filters={"Title": many[:20]})["Findings"] == []
    with pytest.raises(ClientError) as err:  # a filter auroral cannot apply is refused, not ignored
        sh.get_findings(Filters={"ResourceAwsEc2InstanceType": [{"Value": "t3.micro", "Comparison": "EQUALS"}]})
    assert err.value.response["Error"]["Code"] == "InvalidInputException"


def test_batch_update_findings(srv: Server) -> None:
    sh = srv.client("securityhub")
    ec2 = srv.client("ec2")
    g = ec2.create_security_group(GroupName=unique("bu"), Description="x")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    g_arn = f"arn:aws:ec2:{srv.region}:{ACCOUNT}:security-group/{g}"
    target = only(control_findings(sh, "EC2.18", g_arn))
    ident_ = {"Id": target["Id"], "ProductArn": target["ProductArn"]}
    missing = {"Id": target["Id"] + "x", "ProductArn": target["ProductArn"]}
    out = sh.batch_update_findings(FindingIdentifiers=[ident_, missing], Workflow={"Status": "NOTIFIED"},
                                   Note={"Text": "ticket SEC-1", "UpdatedBy": "alice"},
                                   Severity={"Label": "LOW"})
    assert out["ProcessedFindings"] == [ident_]
    assert out["UnprocessedFindings"][0]["FindingIdentifier"] == missing
    assert out["UnprocessedFindings"][0]["ErrorCode"] == "FindingNotFound"
    after = only(control_findings(sh, "EC2.18", g_arn))
    assert after["Workflow"]["Status"] == "NOTIFIED" and after["Note"]["Text"] == "ticket SEC-1"
    assert after["Note"]["UpdatedBy"] == "alice" and after["Severity"]["Label"] == "LOW"
    notified = sh.get_findings(Filters={"WorkflowStatus": [{"Value": "NOTIFIED", "Comparison": "EQUALS"}]})
    assert [f["Id"] for f in notified["Findings"]] == [target["Id"]]
    # a re-evaluation keeps the user's severity and note; the fix resolves a NOTIFIED finding
    ec2.revoke_security_group_ingress(GroupId=g, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    fixed = only(control_findings(sh, "EC2.18", g_arn))
    assert fixed["Compliance"]["Status"] == "PASSED" and fixed["Workflow"]["Status"] == "RESOLVED"
    assert fixed["Note"]["Text"] == "ticket SEC-1" and fixed["Severity"]["Label"] == "LOW"
    twice = sh.batch_update_findings(FindingIdentifiers=[ident_, ident_], Workflow={"Status": "NEW"})
    assert twice["ProcessedFindings"] == []
    assert {u["ErrorCode"] for u in twice["UnprocessedFindings"]} == {"DuplicatedFindingIdentifier"}
    with pytest.raises(ClientError) as err:
        sh.batch_update_findings(FindingIdentifiers=[ident_])
    assert err.value.response["Error"]["Code"] == "InvalidInputException"
    with pytest.raises(ClientError) as err:
        sh.batch_update_findings(FindingIdentifiers=[ident_], Severity={"Normalized": 1000})
    assert err.value.response["Error"]["Code"] == "InvalidInputException"
    normalized = sh.batch_update_findings(FindingIdentifiers=[ident_], Severity={"Normalized": 75})
    assert normalized["ProcessedFindings"] == [ident_]
    assert only(control_findings(sh, "EC2.18", g_arn))["Severity"] == {"Label": "HIGH", "Normalized": 75,
                                                                       "Original": "HIGH"}
    # audited
    events = srv.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "BatchUpdateFindings"}])["Events"]
    assert events and json.loads(events[0]["CloudTrailEvent"])["eventSource"] == "securityhub.amazonaws.com"


def test_authorization(srv: Server) -> None:
    iam = srv.client("iam")
    name = unique("viewer")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    sh = srv.client("securityhub", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    with pytest.raises(ClientError) as err:
        sh.get_findings()
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "securityhub:GetFindings" in err.value.response["Error"]["Message"]
    hub = f"arn:aws:securityhub:{srv.region}:{ACCOUNT}:hub/default"
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "securityhub:GetFindings", "Resource": hub}]}))
    assert sh.get_findings(MaxResults=1)["Findings"]
    with pytest.raises(ClientError) as err:
        sh.batch_update_findings(FindingIdentifiers=[{"Id": "x", "ProductArn": "y"}],
                                 Workflow={"Status": "SUPPRESSED"})
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"


def test_standards_and_controls(srv: Server) -> None:
    sh = srv.client("securityhub")
    standards = sh.describe_standards()["Standards"]
    fsbp = f"arn:aws:securityhub:{srv.region}::standards/aws-foundational-security-best-practices/v/1.0.0"
    own = f"arn:aws:securityhub:{srv.region}::standards/auroral-aurora-postgresql-practices/v/1.0.0"
    assert [s["StandardsArn"] for s in standards] == [fsbp, own]
    subs = sh.get_enabled_standards()["StandardsSubscriptions"]
    assert subs[0]["StandardsArn"] == fsbp and subs[0]["StandardsStatus"] == "READY"
    defs = {d["SecurityControlId"]: d for d in sh.list_security_control_definitions()["SecurityControlDefinitions"]}
    fsbp_controls = {"RDS.2", "RDS.7", "RDS.12", "RDS.24", "RDS.27", "EC2.18", "EC2.19", "EC2.53", "EC2.54",
                     "IAM.1", "IAM.4", "KMS.3", "SecretsManager.1", "SecretsManager.4"}
    own_controls = {f"AURORAL.{n}" for n in range(1, 10)}
    assert fsbp_controls | own_controls == set(defs)
    assert defs["EC2.19"]["SeverityRating"] == "CRITICAL" and defs["RDS.7"]["SeverityRating"] == "LOW"
    controls = sh.describe_standards_controls(StandardsSubscriptionArn=subs[0]["StandardsSubscriptionArn"])
    assert {c["ControlId"] for c in controls["Controls"]} == fsbp_controls
    assert {d["SecurityControlId"] for d in sh.list_security_control_definitions(StandardsArn=own)[
        "SecurityControlDefinitions"]} == own_controls
    assert all(c["ControlStatus"] == "ENABLED" for c in controls["Controls"])
    pages = list(sh.get_paginator("list_security_control_definitions").paginate(
        PaginationConfig={"PageSize": 5}))
    assert len(pages) == 5 and [d["SecurityControlId"] for p in pages for d in p["SecurityControlDefinitions"]] \
        == list(defs)
    one = sh.get_security_control_definition(SecurityControlId="RDS.12")["SecurityControlDefinition"]
    assert one["Title"] == "IAM authentication should be configured for RDS clusters"
    with pytest.raises(ClientError) as err:
        sh.get_security_control_definition(SecurityControlId="RDS.99")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as err:
        sh.describe_standards_controls(StandardsSubscriptionArn="arn:aws:securityhub:us-east-1:1:subscription/x")
    assert err.value.response["Error"]["Code"] == "InvalidInputException"


def test_kms_iam_secrets(srv: Server) -> None:
    sh, kms, iam, sm = (srv.client(s) for s in ("securityhub", "kms", "iam", "secretsmanager"))
    key = kms.create_key()["KeyMetadata"]
    assert only(control_findings(sh, "KMS.3", key["Arn"]))["Compliance"]["Status"] == "PASSED"
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    pending = only(control_findings(sh, "KMS.3", key["Arn"]))
    assert pending["Compliance"]["Status"] == "FAILED" and pending["Severity"]["Label"] == "CRITICAL"
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert only(control_findings(sh, "KMS.3", key["Arn"]))["Compliance"]["Status"] == "PASSED"

    policy = iam.create_policy(PolicyName=unique("godmode"), PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))["Policy"]
    assert only(control_findings(sh, "IAM.1", policy["Arn"]))["Compliance"]["Status"] == "FAILED"
    iam.create_policy_version(PolicyArn=policy["Arn"], SetAsDefault=True, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds:Describe*", "Resource": "*"}]}))
    assert only(control_findings(sh, "IAM.1", policy["Arn"]))["Compliance"]["Status"] == "PASSED"

    secret = sm.create_secret(Name=unique("app"), SecretString="x")["ARN"]
    assert only(control_findings(sh, "SecretsManager.1", secret))["Compliance"]["Status"] == "FAILED"
    assert only(control_findings(sh, "SecretsManager.4", secret))["Compliance"]["Status"] == "PASSED"


def test_aws_cli_get_findings(srv: Server) -> None:
    out = srv.cli_json("securityhub", "get-findings", "--filters",
                       '{"ComplianceSecurityControlId":[{"Value":"EC2.19","Comparison":"EQUALS"}]}',
                       "--max-items", "50")
    assert out["Findings"] and {f["Compliance"]["SecurityControlId"] for f in out["Findings"]} == {"EC2.19"}
    assert all(dt.datetime.fromisoformat(f["UpdatedAt"]) for f in out["Findings"])


def test_auroral_controls_from_flow_records(srv: Server) -> None:
    """AURORAL.1 (the master user used by an application) and AURORAL.2 (plaintext connections to a
    cluster with rds.force_ssl=0), decided from the gateway's flow records of real connections."""
    rds, sh = srv.client("rds"), srv.client("securityhub")
    group = ident("adv-pg")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group,
                                          DBParameterGroupFamily="aurora-postgresql16", Description="advisor")
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "0", "ApplyMethod": "immediate"}])
    db = create_db(rds, prefix="adv-flow", DBClusterParameterGroupName=group)
    cluster_arn = f"arn:aws:rds:{srv.region}:{ACCOUNT}:cluster:{db.cluster_id}"
    try:
        before = {c: only(control_findings(sh, c, cluster_arn)) for c in ("AURORAL.1", "AURORAL.2")}
        assert {f["Compliance"]["Status"] for f in before.values()} == {"PASSED"}
        with db.connect(sslmode="disable", application_name="billing-service") as conn:
            assert not conn.info.pgconn.ssl_in_use
            conn.execute("SELECT 1")
        # the close record of the connection is the evidence; GetFindings re-evaluates when it arrives
        master = until(lambda: [f for f in control_findings(sh, "AURORAL.1", cluster_arn)
                                if f["Compliance"]["Status"] == "FAILED"], what="AURORAL.1 FAILED")[0]
        fields = master["ProductFields"]
        assert fields["auroral/Evidence/MasterUsername"] == MASTER
        assert "(billing-service) x1" in fields["auroral/Evidence/Sources"]
        assert master["Severity"]["Label"] == "MEDIUM" and master["GeneratorId"] == "security-control/AURORAL.1"
        assert master["Compliance"]["AssociatedStandards"] == [
            {"StandardsId": "standards/auroral-aurora-postgresql-practices/v/1.0.0"}]
        plain = only(control_findings(sh, "AURORAL.2", cluster_arn))
        assert plain["Compliance"]["Status"] == "FAILED" and plain["Severity"]["Label"] == "HIGH"
        assert plain["ProductFields"]["auroral/Evidence/PlaintextConnections"] == "1"
        # a TLS login of another role counts for neither
        with db.connect() as conn:
            conn.execute("CREATE ROLE billing LOGIN PASSWORD 'Billing-pass-1'")
        with db.connect(user="billing", password="Billing-pass-1", application_name="billing-service") as conn:
            assert conn.info.pgconn.ssl_in_use
        until(lambda: only(control_findings(sh, "AURORAL.1", cluster_arn))["ProductFields"][
            "auroral/Evidence/MasterLogins"] == "2", what="the second master login (the CREATE ROLE session)")
        assert only(control_findings(sh, "AURORAL.2", cluster_arn))["ProductFields"][
            "auroral/Evidence/PlaintextConnections"] == "1"
        # the fix for AURORAL.2: rds.force_ssl=1
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"}])
        fixed = until(lambda: [f for f in control_findings(sh, "AURORAL.2", cluster_arn)
                               if f["Compliance"]["Status"] == "PASSED"], what="AURORAL.2 PASSED")[0]
        assert fixed["Workflow"]["Status"] == "RESOLVED"
    finally:
        delete_db(rds, db)


def test_regions(srv: Server) -> None:
    """Each region has its own findings (its resources, its ProductArn); the account-wide IAM controls
    are the home region's."""
    west_ec2 = srv.client("ec2", region_name="eu-west-1")
    west = srv.client("securityhub", region_name="eu-west-1")
    g = west_ec2.create_security_group(GroupName=unique("west"), Description="x")["GroupId"]
    west_ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    g_arn = f"arn:aws:ec2:eu-west-1:{ACCOUNT}:security-group/{g}"
    f = only(control_findings(west, "EC2.19", g_arn))
    assert f["Compliance"]["Status"] == "FAILED" and f["Region"] == "eu-west-1"
    assert f["ProductArn"] == "arn:aws:securityhub:eu-west-1::product/aws/securityhub"
    assert f["Id"].startswith(f"arn:aws:securityhub:eu-west-1:{ACCOUNT}:security-control/EC2.19/finding/")
    assert control_findings(srv.client("securityhub"), "EC2.19", g_arn) == []
    assert control_findings(west, "IAM.4") == []
    assert control_findings(srv.client("securityhub"), "IAM.4")


def test_cli_findings(srv: Server) -> None:
    """``auroral findings``: the table of FAILED findings (severity, control, resource, why) and --json."""
    ec2 = srv.client("ec2")
    g = ec2.create_security_group(GroupName=unique("cli"), Description="x")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    srv.client("securityhub").get_findings(MaxResults=1)  # the server has evaluated (it did before answering)

    def auroral(*args: str) -> str:
        return auroral_findings(srv, *args)

    table = auroral().splitlines()
    assert table[0].split()[:3] == ["severity", "control", "status"]
    mine = [line for line in table if f"security-group/{g}" in line]
    assert {line.split()[1] for line in mine} == {"EC2.18", "EC2.19"}
    assert all("0.0.0.0/0 to tcp 5432" in line and "FAILED" in line for line in mine)
    assert table[1].split()[0] == "CRITICAL"  # most severe first
    docs = [json.loads(line) for line in auroral("--json", "--control", "EC2.19").splitlines()]
    assert any(d["Resources"][0]["Id"].endswith(g) for d in docs)
    assert all(d["Compliance"]["SecurityControlId"] == "EC2.19" and "_auroral" not in d for d in docs)
    ec2.revoke_security_group_ingress(GroupId=g, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert not [line for line in auroral().splitlines() if f"security-group/{g}" in line]
    assert [line for line in auroral("--all").splitlines() if f"security-group/{g}" in line and "PASSED" in line]


def test_master_password_policies(srv: Server) -> None:
    """AURORAL.3 through IAM calls: a user allowed rds:CreateDBCluster (and ModifyDBCluster) fails; a Deny
    on CreateDBCluster without a managed master password leaves it failed with the loophole noted (the
    Modify path); denying ModifyDBCluster too passes it. Each change shows by the next GetFindings, and
    the user's own calls are decided as the finding says."""
    sh, iam = srv.client("securityhub"), srv.client("iam")
    name = unique("dbops")
    user_arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    rds_user = srv.client("rds", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    idle = only(control_findings(sh, "AURORAL.3", user_arn))
    assert idle["Compliance"]["Status"] == "PASSED"
    assert idle["ProductFields"]["auroral/Evidence/AllowedActions"] == "none"

    ops = iam.create_policy(PolicyName=unique("rds-ops"), PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "ClusterOps", "Effect": "Allow",
                                                "Action": ["rds:CreateDBCluster", "rds:ModifyDBCluster"],
                                                "Resource": "*"}]}))["Policy"]
    iam.attach_user_policy(UserName=name, PolicyArn=ops["Arn"])
    f = only(control_findings(sh, "AURORAL.3", user_arn))
    fields = f["ProductFields"]
    assert f["Compliance"]["Status"] == "FAILED" and f["Severity"]["Label"] == "MEDIUM"
    assert f["Resources"][0]["Type"] == "AwsIamUser" and f["Resources"][0]["Details"]["Other"] == {"UserName": name}
    assert f["Compliance"]["AssociatedStandards"] == [
        {"StandardsId": "standards/auroral-aurora-postgresql-practices/v/1.0.0"}]
    assert fields["auroral/Evidence/AllowedActions"] == "rds:CreateDBCluster, rds:ModifyDBCluster"
    assert fields["auroral/Evidence/CreateDBClusterAllowedBy"] == f"{ops['Arn']}, Sid 'ClusterOps'"
    assert "auroral/Evidence/Loophole" not in fields

    # the documented enforcement: deny creates without a managed master password
    iam.put_user_policy(UserName=name, PolicyName="enforce", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "rds:CreateDBCluster", "Resource": "*",
                                                "Condition": {"Bool": {"rds:ManageMasterUserPassword": "false"}}}]}))
    with pytest.raises(ClientError) as err:  # the API agrees
        rds_user.create_db_cluster(DBClusterIdentifier=ident("mp"), Engine="aurora-postgresql",
                                   MasterUsername="dbadmin", MasterUserPassword=PASSWORD)
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as err:  # authorized: only the cluster is missing
        rds_user.modify_db_cluster(DBClusterIdentifier=ident("none"), MasterUserPassword=PASSWORD)
    assert err.value.response["Error"]["Code"] == "DBClusterNotFoundFault"
    f = only(control_findings(sh, "AURORAL.3", user_arn))
    fields = f["ProductFields"]
    assert f["Compliance"]["Status"] == "FAILED"
    assert fields["auroral/Evidence/AllowedActions"] == "rds:ModifyDBCluster"
    assert fields["auroral/Evidence/CreateDBClusterDeniedBy"] == f"inline policy 'enforce' of user {name}, Statement[0]"
    assert fields["auroral/Evidence/ModifyDBClusterAllowedBy"] == f"{ops['Arn']}, Sid 'ClusterOps'"
    assert "rds:ModifyDBCluster stays allowed" in fields["auroral/Evidence/Loophole"]
    assert "leaves the Modify path open" in fields["auroral/Why"]

    iam.put_user_policy(UserName=name, PolicyName="enforce-modify", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "NoOwnPassword", "Effect": "Deny",
                                                "Action": "rds:ModifyDBCluster", "Resource": "*",
                                                "Condition": {"Bool": {"rds:ManageMasterUserPassword": "false"}}}]}))
    with pytest.raises(ClientError) as err:
        rds_user.modify_db_cluster(DBClusterIdentifier=ident("none"), MasterUserPassword=PASSWORD)
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    f = only(control_findings(sh, "AURORAL.3", user_arn))
    assert f["Compliance"]["Status"] == "PASSED" and f["Workflow"]["Status"] == "RESOLVED"
    assert f["ProductFields"]["auroral/Evidence/ModifyDBClusterDeniedBy"] == \
        f"inline policy 'enforce-modify' of user {name}, Sid 'NoOwnPassword'"
    assert "auroral/Evidence/Loophole" not in f["ProductFields"]

    # a role: its attached policy fails it; a permissions boundary without rds limits it; deleting it archives
    role = iam.create_role(RoleName=unique("dbrole"), AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]
    iam.attach_role_policy(RoleName=role["RoleName"], PolicyArn=ops["Arn"])
    f = only(control_findings(sh, "AURORAL.3", role["Arn"]))
    assert f["Compliance"]["Status"] == "FAILED" and f["Resources"][0]["Type"] == "AwsIamRole"
    bound = iam.create_policy(PolicyName=unique("bound"), PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds:Describe*", "Resource": "*"}]}))
    iam.put_role_permissions_boundary(RoleName=role["RoleName"], PermissionsBoundary=bound["Policy"]["Arn"])
    assert only(control_findings(sh, "AURORAL.3", role["Arn"]))["Compliance"]["Status"] == "PASSED"
    iam.delete_role_permissions_boundary(RoleName=role["RoleName"])
    assert only(control_findings(sh, "AURORAL.3", role["Arn"]))["Compliance"]["Status"] == "FAILED"
    iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=ops["Arn"])
    iam.delete_role(RoleName=role["RoleName"])
    assert only(control_findings(sh, "AURORAL.3", role["Arn"]))["RecordState"] == "ARCHIVED"


def test_root_access_key_last(srv: Server) -> None:
    """Last in the module: the root user's key is deleted (the server's own credentials)."""
    sh = srv.client("securityhub")
    account_res = f"AWS::::Account:{ACCOUNT}"
    assert only(control_findings(sh, "IAM.4", account_res))["Compliance"]["Status"] == "FAILED"
    # the root user's key: work as an administrator, delete the root key
    iam = srv.client("iam")
    admin = unique("admin")
    iam.create_user(UserName=admin)
    iam.attach_user_policy(UserName=admin, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName=admin)["AccessKey"]
    iam.delete_access_key(AccessKeyId=srv.access_key)  # the root deletes its own key
    sh_admin = srv.client("securityhub", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    root = only(control_findings(sh_admin, "IAM.4", account_res))
    assert root["Compliance"]["Status"] == "PASSED"

"""A real scanner agrees: Prowler (the open-source AWS security scanner, unmodified, from PyPI) runs
against a running auroral, and for every control both evaluate, its verdict per resource equals
auroral's Security Hub finding.

The account is built through the server with boto3: an insecure Aurora PostgreSQL cluster (a public
instance, no deletion protection, no IAM database authentication, unencrypted, its security group
open to 0.0.0.0/0 on 5432), a hardened one (the opposite, with a managed master password and a
customer key), a secret that is never rotated, a key pending deletion, and a wildcard-admin customer
policy attached to a user. Prowler runs once for the module, with its own pinned boto3 in a
virtualenv of its own (cached beside the engines the suite fetches), pointed at the server by
botocore's standard ``AWS_ENDPOINT_URL``.

Where Prowler's check and AWS's control (which auroral follows) decide different questions, the
comparison is limited to what both decide, and the difference is said where it is compared. What
Prowler calls that auroral does not serve is ``UNSERVED``: each gets a clean AWS error, which Prowler
logs and skips, and none of them decides a compared control (RDS.2's route tables aside, see there).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ENGINE_CACHE, Server, fresh_server, unique
from tests.rds.e2e_helpers import ENGINE_VERSION, FAST, PASSWORD, ident

ACCOUNT = "246813579024"
PROWLER_VERSION = "5.46.0"
REGION = "us-east-1"

ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# What Prowler's documentation asks of its role (AWS's SecurityAudit and ViewOnlyAccess, which auroral
# does not carry), narrowed to these services' reads: the scan runs as this user, not as the root.
AUDITOR_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "sts:GetCallerIdentity", "iam:Get*", "iam:List*", "iam:GenerateCredentialReport",
    "iam:GenerateServiceLastAccessedDetails", "ec2:Describe*", "ec2:Get*", "rds:Describe*", "rds:List*",
    "kms:Describe*", "kms:List*", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "secretsmanager:List*",
    "secretsmanager:Describe*", "secretsmanager:GetResourcePolicy", "organizations:Describe*",
    "organizations:List*"]}]}
NARROW_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "rds:DescribeDBClusters", "Resource": "*"}]}


@dataclass
class Account:
    """What the module built: identifiers and ARNs of both sides."""

    insecure_cluster: str
    insecure_instance: str
    hardened_cluster: str
    hardened_instance: str
    open_sg: str
    closed_sg: str
    admin_sg: str  # no cluster's: 22 open to ::/0, 3389 to 0.0.0.0/0
    plain_secret: str  # ARN
    managed_secret: str  # ARN (the hardened cluster's master secret, rotated by RDS)
    doomed_key: str  # ARN, pending deletion
    cluster_key: str  # ARN, enabled: encrypts the hardened cluster
    admin_policy: str  # ARN
    narrow_policy: str  # ARN
    auditor_key: tuple[str, str]  # the scanning user's access key and secret


def build_account(srv: Server) -> Account:
    ec2, rds, kms, sm, iam = (srv.client(s) for s in ("ec2", "rds", "kms", "secretsmanager", "iam"))
    open_sg = ec2.create_security_group(GroupName=unique("db-open"), Description="open to the world")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=open_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    closed_sg = ec2.create_security_group(GroupName=unique("db-closed"), Description="the VPC only")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=closed_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}])
    admin_sg = ec2.create_security_group(GroupName=unique("bastion"), Description="admin ports")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=admin_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])

    cluster_key = kms.create_key(Description="hardened cluster storage")["KeyMetadata"]["Arn"]
    doomed_key = kms.create_key(Description="scheduled for deletion")["KeyMetadata"]["Arn"]
    kms.schedule_key_deletion(KeyId=doomed_key, PendingWindowInDays=7)

    bad, good = ident("insecure"), ident("hardened")
    rds.create_db_cluster(DBClusterIdentifier=bad, Engine="aurora-postgresql", EngineVersion=ENGINE_VERSION,
                          MasterUsername="dbadmin", MasterUserPassword=PASSWORD, VpcSecurityGroupIds=[open_sg])
    rds.create_db_cluster(DBClusterIdentifier=good, Engine="aurora-postgresql", EngineVersion=ENGINE_VERSION,
                          MasterUsername="owner", ManageMasterUserPassword=True, VpcSecurityGroupIds=[closed_sg],
                          StorageEncrypted=True, KmsKeyId=cluster_key, DeletionProtection=True,
                          EnableIAMDatabaseAuthentication=True)
    bad_i, good_i = f"{bad}-1", f"{good}-1"
    rds.create_db_instance(DBInstanceIdentifier=bad_i, DBClusterIdentifier=bad, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large", PubliclyAccessible=True)
    rds.create_db_instance(DBInstanceIdentifier=good_i, DBClusterIdentifier=good, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large", PubliclyAccessible=False)

    plain = sm.create_secret(Name=unique("app/plain"), SecretString="not rotated")["ARN"]

    admin = iam.create_policy(PolicyName=unique("wildcard-admin"), PolicyDocument=json.dumps(ADMIN_POLICY))
    narrow = iam.create_policy(PolicyName=unique("narrow"), PolicyDocument=json.dumps(NARROW_POLICY))
    user = unique("ops")
    iam.create_user(UserName=user)
    for p in (admin, narrow):
        iam.attach_user_policy(UserName=user, PolicyArn=p["Policy"]["Arn"])

    auditor = unique("prowler-auditor")
    iam.create_user(UserName=auditor)
    iam.put_user_policy(UserName=auditor, PolicyName="audit", PolicyDocument=json.dumps(AUDITOR_POLICY))
    key = iam.create_access_key(UserName=auditor)["AccessKey"]

    for i in (bad_i, good_i):
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=i, WaiterConfig=FAST)
    managed = rds.describe_db_clusters(DBClusterIdentifier=good)["DBClusters"][0]["MasterUserSecret"]["SecretArn"]
    return Account(bad, bad_i, good, good_i, open_sg, closed_sg, admin_sg, plain, managed, doomed_key,
                   cluster_key, admin["Policy"]["Arn"], narrow["Policy"]["Arn"],
                   (key["AccessKeyId"], key["SecretAccessKey"]))


# --- Prowler, installed once per machine ---------------------------------------------------------

ALL_PORTS = "ec2_securitygroup_allow_ingress_from_internet_to_all_ports"
ANY_PORT = "ec2_securitygroup_allow_ingress_from_internet_to_any_port"
HIGH_RISK = "ec2_securitygroup_allow_ingress_from_internet_to_high_risk_tcp_ports"
POSTGRES = "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_postgres_5432"
SSH = "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22"
RDP = "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_3389"
POLICY_CHECKS = ("iam_customer_attached_policy_no_administrative_privileges",
                 "iam_customer_unattached_policy_no_administrative_privileges")
# Security Hub control -> the Prowler checks that decide the same question (see each test for how).
CHECKS = {
    "RDS.2": ("rds_instance_no_public_access",),
    "RDS.7": ("rds_cluster_deletion_protection",),
    "RDS.12": ("rds_cluster_iam_authentication_enabled",),
    "RDS.24": ("rds_cluster_default_admin",),
    "RDS.27": ("rds_cluster_storage_encrypted",),
    "EC2.18": (ANY_PORT,),
    "EC2.19": (ALL_PORTS, HIGH_RISK, POSTGRES),
    "EC2.53": (ALL_PORTS, SSH, RDP),
    "EC2.54": (ALL_PORTS, SSH, RDP),
    "IAM.1": POLICY_CHECKS,
    "IAM.4": ("iam_no_root_access_key",),
    "KMS.3": ("kms_cmk_not_deleted_unintentionally",),
    "SecretsManager.1": ("secretsmanager_automatic_rotation_enabled",),
}
INSTALL_TIMEOUT = 1800
# EC2.19's high-risk ports as the Security Hub user guide lists them, written here rather than taken from
# the advisor so that Prowler, configured with them, checks auroral's list too.
EC2_19_PORTS = (20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000, 5432, 5500,
                5601, 8080, 8088, 8888, 9200, 9300)
# What Prowler 5.46.0 asks for these services that auroral does not serve (InvalidAction): its services
# load whole inventories (EC2 instances and volumes, VPC routing, IAM MFA and password policy...).
UNSERVED = frozenset({
    "DescribeAccount",  # organizations: not served at all
    "DescribeInstances", "DescribeVolumes", "DescribeSnapshots", "DescribeImages", "DescribeAddresses",
    "DescribeLaunchTemplates", "DescribeNetworkAcls", "DescribeClientVpnEndpoints", "DescribeTransitGateways",
    "GetEbsEncryptionByDefault", "GetSnapshotBlockPublicAccessState", "GetImageBlockPublicAccessState",
    "GetInstanceMetadataDefaults", "DescribeRouteTables", "DescribeVpcPeeringConnections", "DescribeVpcEndpoints",
    "DescribeVpcEndpointServices", "DescribeFlowLogs",  # ec2
    "DescribeDBSnapshots", "DescribeDBParameters", "DescribeEventSubscriptions",  # rds
    "GetAccountSummary", "GetAccountPasswordPolicy", "GetLoginProfile", "ListMFADevices", "ListVirtualMFADevices",
    "ListSAMLProviders", "ListServerCertificates", "ListServiceSpecificCredentials",
    "GenerateServiceLastAccessedDetails", "ListOrganizationsFeatures",  # iam
    "GetKeyRotationStatus",  # kms
})
_CALLED = re.compile(r"\((\w+)\) when calling the (\w+) operation")


def prowler_home() -> Path:
    """Beside the PostgreSQL majors the suite fetches (tests/conftest.py): one venv per machine and version."""
    return Path(os.environ.get("AURORAL_ENGINE_CACHE") or ENGINE_CACHE) / f"prowler-{PROWLER_VERSION}"


@pytest.fixture(scope="session")
def prowler() -> Path:
    """The ``prowler`` executable of a virtualenv of its own (Prowler pins its own boto3 and botocore, which
    must not replace the project's), installed from the package registry on first use (about 2 minutes on
    the 2-core machine; the scan itself about 30 seconds), under a lock so parallel runs install once."""
    home = prowler_home()
    for path in (home.parent, home):
        # the tests may run as root: never run a program from a directory someone else could have planted
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
        st = path.lstat()
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022, \
            f"{path} is not a directory of ours that only we can write"
    venv, done = home / "venv", home / "installed"
    fd = os.open(home / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            install = subprocess.run(
                # --no-compile: byte-compiling every module of Prowler's cloud SDKs (most never imported
                # here) doubled the install's time
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--no-compile", f"prowler=={PROWLER_VERSION}"], capture_output=True, text=True,
                timeout=INSTALL_TIMEOUT)
            assert install.returncode == 0, f"pip install prowler=={PROWLER_VERSION} failed:\n{install.stderr[-4000:]}"
            done.write_text(PROWLER_VERSION + "\n")
    return venv / "bin" / "prowler"


@dataclass(frozen=True)
class Verdict:
    status: str  # PASS | FAIL (Prowler's words)
    detail: str


def run_prowler(prowler: Path, srv: Server, key: tuple[str, str], work: Path) -> dict[str, dict[str, Verdict]]:
    """One Prowler scan of us-east-1 with the mapped checks: check -> resource ARN -> verdict. Prowler
    reaches auroral only through botocore's standard endpoint variable and an IAM user's SigV4 key; its
    own configuration is left alone except EC2.19's high-risk ports (its ``ec2_high_risk_ports``)."""
    config = work / "prowler-config.yaml"  # JSON is YAML
    config.write_text(json.dumps({"aws": {"ec2_high_risk_ports": list(EC2_19_PORTS)}}))
    out = work / "out"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "AWS_ENDPOINT_URL": srv.url,
        "AWS_ACCESS_KEY_ID": key[0],
        "AWS_SECRET_ACCESS_KEY": key[1],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    checks = sorted({c for names in CHECKS.values() for c in names})
    proc = subprocess.run(
        [str(prowler), "aws", "--region", REGION, "--checks", *checks, "--scan-unused-services",
         "--config-file", str(config), "--output-formats", "json-ocsf", "--output-directory", str(out),
         "--output-filename", "scan", "--no-banner", "--no-color", "--ignore-exit-code-3", "--log-level", "ERROR",
         "--log-file", str(work / "prowler.log")],
        env=env, cwd=work, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"prowler exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    verdicts: dict[str, dict[str, Verdict]] = {}
    for finding in json.loads((out / "scan.ocsf.json").read_text()):
        check = finding["metadata"]["event_code"]
        for resource in finding["resources"]:
            verdicts.setdefault(check, {})[resource["uid"]] = Verdict(finding["status_code"],
                                                                      finding["status_detail"])
    return verdicts


# --- the module's account and both verdicts ------------------------------------------------------


@dataclass
class Scan:
    srv: Server
    account: Account
    prowler: dict[str, dict[str, Verdict]]
    auroral: dict[str, dict[str, str]]  # control -> resource -> PASSED | FAILED
    log: str  # Prowler's error log: what it called that auroral does not serve

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"

    def prowler_of(self, *checks: str) -> dict[str, dict[str, Verdict]]:
        return {c: self.prowler.get(c, {}) for c in checks}


def auroral_findings(srv: Server) -> dict[str, dict[str, str]]:
    sh = srv.client("securityhub")
    out: dict[str, dict[str, str]] = {}
    active = {"RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}]}
    for page in sh.get_paginator("get_findings").paginate(Filters=active):
        for f in page["Findings"]:
            out.setdefault(f["Compliance"]["SecurityControlId"], {})[f["Resources"][0]["Id"]] = \
                f["Compliance"]["Status"]
    return out


@pytest.fixture(scope="module")
def scan(prowler: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scan]:
    with fresh_server(ACCOUNT) as srv:
        account = build_account(srv)
        work = tmp_path_factory.mktemp("prowler")
        verdicts = run_prowler(prowler, srv, account.auditor_key, work)
        log = (work / "prowler.log").read_text() if (work / "prowler.log").is_file() else ""
        yield Scan(srv, account, verdicts, auroral_findings(srv), log)


PASS_OF = {"PASSED": "PASS", "FAILED": "FAIL"}


def same(scan: Scan, control: str, check: str, to_prowler: dict[str, str] | None = None) -> dict[str, str]:
    """Every resource auroral evaluates for ``control`` has Prowler's ``check`` verdict equal to it, and
    Prowler judged no other resource; returns control's verdicts (auroral's resource ID -> PASS/FAIL)."""
    ours = {rid: PASS_OF[status] for rid, status in scan.auroral.get(control, {}).items()}
    mapped = {(to_prowler or {}).get(rid, rid): v for rid, v in ours.items()}
    theirs = {rid: v.status for rid, v in scan.prowler.get(check, {}).items()}
    assert theirs == mapped, (control, check, theirs, mapped)
    return ours


# --- the comparisons -----------------------------------------------------------------------------


def test_rds_cluster_controls(scan: Scan) -> None:
    a = scan.account
    bad, good = scan.arn("rds", f"cluster:{a.insecure_cluster}"), scan.arn("rds", f"cluster:{a.hardened_cluster}")
    expected = {"RDS.7": "FAIL", "RDS.12": "FAIL", "RDS.27": "FAIL", "RDS.24": "PASS"}
    for control, insecure in expected.items():
        verdicts = same(scan, control, CHECKS[control][0])
        assert verdicts == {bad: insecure, good: "PASS"}, control
    # RDS.24: CreateDBCluster refuses the engines' default names (postgres, admin), as AWS does, so no
    # cluster here can fail it; both tools agree the custom names pass.


def test_rds_2_public_instance(scan: Scan) -> None:
    """RDS.2 decides on PubliclyAccessible alone (Security Hub's definition); Prowler's check FAILs only
    when the instance is also reachable: a security group open to the internet on its port *and* a subnet
    whose route table sends 0.0.0.0/0 to an internet gateway (DescribeRouteTables, which auroral does
    not serve: it has no route tables). So both must agree where RDS.2 passes, and where it fails Prowler
    must have seen the same PubliclyAccessible flag (its detail says so) and stopped at the subnet."""
    a = scan.account
    bad, good = scan.arn("rds", f"db:{a.insecure_instance}"), scan.arn("rds", f"db:{a.hardened_instance}")
    ours = scan.auroral["RDS.2"]
    theirs = scan.prowler["rds_instance_no_public_access"]
    assert set(theirs) == set(ours) == {bad, good}
    assert ours == {bad: "FAILED", good: "PASSED"}
    for rid, status in ours.items():
        if status == "PASSED" or theirs[rid].status == "FAIL":
            assert theirs[rid].status == PASS_OF[status], (rid, theirs[rid])
        else:  # the same flag and open group seen, and the subnet Prowler could not call public
            assert "is set as publicly accessible" in theirs[rid].detail, theirs[rid]
            assert "port 5432 open to the Internet" in theirs[rid].detail, theirs[rid]
            assert "not in a public subnet" in theirs[rid].detail, theirs[rid]


def test_ec2_19_high_risk_ports(scan: Scan) -> None:
    """EC2.19 fails a group open to 0.0.0.0/0 or ::/0 on any of its high-risk ports; Prowler splits that
    over an all-ports check and a port-list check (given EC2.19's list), TCP only (auroral's EC2.19
    also counts UDP rules: no group here has one)."""
    ours = scan.auroral["EC2.19"]
    all_ports, high = scan.prowler[ALL_PORTS], scan.prowler[HIGH_RISK]
    assert set(all_ports) == set(high) == set(ours)
    for rid, status in ours.items():
        failed = all_ports[rid].status == "FAIL" or high[rid].status == "FAIL"
        assert PASS_OF[status] == ("FAIL" if failed else "PASS"), rid
    a = scan.account
    open_sg, closed_sg = (scan.arn("ec2", f"security-group/{g}") for g in (a.open_sg, a.closed_sg))
    assert ours[open_sg] == "FAILED" and ours[closed_sg] == "PASSED"
    # 5432 is one of EC2.19's ports: Prowler's PostgreSQL check agrees on the database groups
    postgres = scan.prowler[POSTGRES]
    assert postgres[open_sg].status == "FAIL" and postgres[closed_sg].status == "PASS"
    assert all(ours[rid] == "FAILED" for rid, v in postgres.items() if v.status == "FAIL")


def test_ec2_18_unrestricted_ports(scan: Scan) -> None:
    """EC2.18 fails unrestricted ingress to any port but 80 and 443; Prowler's any-port check exempts
    no port but fails only a group attached to a network interface (not a load balancer's or a VPC
    endpoint's). Compared on every group that Prowler judged on its rules (it says when it let an
    unattached group pass), and no group here opens 80 or 443."""
    ours = scan.auroral["EC2.18"]
    theirs = scan.prowler[ANY_PORT]
    assert set(theirs) == set(ours)
    judged = {rid: v for rid, v in theirs.items() if "not attached to any network interface" not in v.detail}
    a = scan.account
    open_sg = scan.arn("ec2", f"security-group/{a.open_sg}")
    assert open_sg in judged and ours[open_sg] == "FAILED"
    for rid, v in judged.items():
        assert v.status == PASS_OF[ours[rid]], (rid, v)


def test_iam_1_admin_policies(scan: Scan) -> None:
    """IAM.1 judges every customer managed policy; Prowler splits them into attached and unattached."""
    ours = {rid: PASS_OF[s] for rid, s in scan.auroral["IAM.1"].items()}
    theirs: dict[str, str] = {}
    for check in POLICY_CHECKS:
        theirs.update({rid: v.status for rid, v in scan.prowler.get(check, {}).items()})
    assert theirs == ours
    assert ours == {scan.account.admin_policy: "FAIL", scan.account.narrow_policy: "PASS"}


def test_iam_4_root_access_key(scan: Scan) -> None:
    """The root has an access key (the one the test server is pinned to): both fail the account. Prowler reads it
    from the credential report (GenerateCredentialReport / GetCredentialReport), and names the account
    by the root's ARN where Security Hub names it ``AWS::::Account:<id>``."""
    verdicts = same(scan, "IAM.4", "iam_no_root_access_key",
                    {f"AWS::::Account:{ACCOUNT}": f"arn:aws:iam::{ACCOUNT}:root"})
    assert verdicts == {f"AWS::::Account:{ACCOUNT}": "FAIL"}


def test_kms_3_keys_pending_deletion(scan: Scan) -> None:
    # Prowler skips Disabled keys unless --scan-unused-services (given): then every customer key, as KMS.3
    verdicts = same(scan, "KMS.3", "kms_cmk_not_deleted_unintentionally")
    assert verdicts == {scan.account.doomed_key: "FAIL", scan.account.cluster_key: "PASS"}


def test_secretsmanager_1_rotation(scan: Scan) -> None:
    verdicts = same(scan, "SecretsManager.1", "secretsmanager_automatic_rotation_enabled")
    # the hardened cluster's managed master secret is rotated by RDS; the plain one is not
    assert verdicts == {scan.account.plain_secret: "FAIL", scan.account.managed_secret: "PASS"}


def test_prowler_errors_are_clean_aws_errors(scan: Scan) -> None:
    """What Prowler calls that auroral does not serve comes back as AWS errors its SDK parses (an
    operation or service not served: InvalidAction; an AWS managed policy auroral does not carry:
    NoSuchEntity), never a failure of the server or a body botocore cannot read."""
    errors = [line for line in scan.log.splitlines() if '"level": "ERROR"' in line or " ERROR: " in line]
    assert errors, "Prowler logged no error at all: the unserved calls are expected to show"
    unserved: set[str] = set()
    for line in errors:
        assert "(InvalidAction)" in line or "(NoSuchEntity)" in line, line
        for code, operation in _CALLED.findall(line):
            if code == "InvalidAction":
                unserved.add(operation)
    assert unserved and unserved <= UNSERVED, sorted(unserved - UNSERVED)
    assert "InternalFailure" not in scan.log and "(500)" not in scan.log and "(400)" not in scan.log


def test_ec2_53_54_admin_ports(scan: Scan) -> None:
    """EC2.53 (0.0.0.0/0) and EC2.54 (::/0) split by address family what Prowler's port-22 and
    port-3389 checks each decide for both families (and skip, as passed, when all ports are open): a
    group fails either control exactly when one of those checks, or the all-ports one, fails it."""
    v4, v6 = scan.auroral["EC2.53"], scan.auroral["EC2.54"]
    all_ports, ssh, rdp = scan.prowler[ALL_PORTS], scan.prowler[SSH], scan.prowler[RDP]
    assert set(v4) == set(v6) == set(ssh) == set(rdp) == set(all_ports)
    for rid in v4:
        ours = "FAIL" if "FAILED" in (v4[rid], v6[rid]) else "PASS"
        theirs = "FAIL" if "FAIL" in (all_ports[rid].status, ssh[rid].status, rdp[rid].status) else "PASS"
        assert ours == theirs, rid
    admin = scan.arn("ec2", f"security-group/{scan.account.admin_sg}")
    assert (v4[admin], v6[admin], ssh[admin].status, rdp[admin].status) == ("FAILED", "FAILED", "FAIL", "FAIL")
    # both ports are EC2.19's too; the group is attached to nothing, so Prowler's any-port check lets it
    # pass and the EC2.18 comparison leaves it out (see there)
    assert scan.auroral["EC2.19"][admin] == "FAILED" and scan.prowler[HIGH_RISK][admin].status == "FAIL"
    assert "not attached to any network interface" in scan.prowler[ANY_PORT][admin].detail

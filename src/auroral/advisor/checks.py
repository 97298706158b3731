"""The checks: pure functions from a ``Snapshot`` of one account and region to evaluations, one per
(control, resource), PASSED or FAILED, each with why (one line a person reads) and the evidence it
was decided on (what ``ProductFields`` carries).

Pure on purpose: the engine (``auroral.advisor.engine``) takes the snapshot from the services and
turns evaluations into findings; a check never reads the store itself, so what it decided on is
exactly what the finding shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from auroral.ec2.model import Rule, SecurityGroup
from auroral.rds.model import Cluster

from .controls import BY_ID, FLOW_WINDOW_HOURS
from .inside import INSIDE_CHECKS
from .master_password import CREATE, MODIFY, reach, statement_text
from .master_use import MAX_FLOW_IDS, auroral_1
from .snapshot import FAILED, PASSED, Evaluation, Snapshot, flow_ids, logins, open_session, sources, verdict

__all__ = ["FAILED", "PASSED", "Evaluation", "Snapshot", "evaluate"]

# EC2.19's high-risk ports (Security Hub user guide, EC2.19).
HIGH_RISK_PORTS = (20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000, 5432, 5500,
                   5601, 8080, 8088, 8888, 9200, 9300)
AUTHORIZED_PORTS = (80, 443)  # EC2.18's default authorizedTcpPorts
ADMIN_PORTS = (22, 3389)  # EC2.53 / EC2.54
DEFAULT_ADMIN_USERNAMES = frozenset({"postgres", "admin"})  # RDS.24: the engines' default master usernames
ROTATION_MAX_DAYS = 90  # SecretsManager.4's default maxDaysSinceRotation
ANY_V4, ANY_V6 = "0.0.0.0/0", "::/0"


def rds_2(s: Snapshot) -> Iterator[Evaluation]:
    for i in s.instances:
        why = ("PubliclyAccessible is true: the instance's endpoint admits addresses outside the VPC"
               if i.publicly_accessible else "PubliclyAccessible is false")
        yield Evaluation(BY_ID["RDS.2"], s.instance_arn(i), verdict(not i.publicly_accessible), why,
                         {"PubliclyAccessible": str(i.publicly_accessible).lower(),
                          "DBClusterIdentifier": i.cluster_identifier},
                         {"DbInstanceIdentifier": i.identifier, "PubliclyAccessible": i.publicly_accessible})


def rds_7(s: Snapshot) -> Iterator[Evaluation]:
    for c in s.clusters:
        why = "DeletionProtection is enabled" if c.deletion_protection else "DeletionProtection is disabled"
        yield Evaluation(BY_ID["RDS.7"], s.cluster_arn(c), verdict(c.deletion_protection), why,
                         {"DeletionProtection": str(c.deletion_protection).lower()},
                         {"DbClusterIdentifier": c.identifier, "DeletionProtection": c.deletion_protection})


def rds_12(s: Snapshot) -> Iterator[Evaluation]:
    for c in s.clusters:
        why = ("IAM database authentication is enabled" if c.iam_auth
               else "IAMDatabaseAuthenticationEnabled is false: only passwords log in")
        yield Evaluation(BY_ID["RDS.12"], s.cluster_arn(c), verdict(c.iam_auth), why,
                         {"IAMDatabaseAuthenticationEnabled": str(c.iam_auth).lower()},
                         {"DbClusterIdentifier": c.identifier, "IamDatabaseAuthenticationEnabled": c.iam_auth})


def rds_24(s: Snapshot) -> Iterator[Evaluation]:
    for c in s.clusters:
        default = c.master_username.lower() in DEFAULT_ADMIN_USERNAMES
        why = (f"the master username is the default {c.master_username!r}" if default
               else "the master username is not a default one")
        yield Evaluation(BY_ID["RDS.24"], s.cluster_arn(c), verdict(not default), why,
                         {"MasterUsername": c.master_username},
                         {"DbClusterIdentifier": c.identifier, "MasterUsername": c.master_username})


def rds_27(s: Snapshot) -> Iterator[Evaluation]:
    for c in s.clusters:
        why = "StorageEncrypted is true" if c.storage_encrypted else "StorageEncrypted is false"
        evidence = {"StorageEncrypted": str(c.storage_encrypted).lower()}
        if c.kms_key_id:
            evidence["KmsKeyId"] = c.kms_key_id
        yield Evaluation(BY_ID["RDS.27"], s.cluster_arn(c), verdict(c.storage_encrypted), why, evidence,
                         {"DbClusterIdentifier": c.identifier, "StorageEncrypted": c.storage_encrypted})


# --- security groups ----------------------------------------------------------------------------


def _covers(rule: Rule, port: int) -> bool:
    if rule.protocol == "-1":
        return True
    if rule.protocol not in ("tcp", "6", "udp", "17"):
        return False
    return rule.from_port <= port <= rule.to_port


def _open_rules(rules: list[Rule], cidrs: tuple[str, ...]) -> list[Rule]:
    return [r for r in rules if not r.egress and (r.cidr_ipv4 in cidrs or r.cidr_ipv6 in cidrs)]


def _rule_text(rule: Rule) -> str:
    ports = "all ports" if rule.protocol == "-1" else (
        f"{rule.protocol} {rule.from_port}" if rule.from_port == rule.to_port
        else f"{rule.protocol} {rule.from_port}-{rule.to_port}")
    return f"{rule.peer()} to {ports}"


def _users_of(s: Snapshot, group: SecurityGroup) -> list[Cluster]:
    return [c for c in s.clusters if group.id in c.vpc_security_group_ids]


def _group_eval(s: Snapshot, control: str, group: SecurityGroup, rules: list[Rule], cidrs: tuple[str, ...],
                offends: Callable[[Rule], list[int] | bool]) -> Evaluation:
    bad: list[str] = []
    ports: set[int] = set()
    for rule in _open_rules(rules, cidrs):
        hit = offends(rule)
        if hit:
            bad.append(_rule_text(rule))
            if isinstance(hit, list):
                ports.update(hit)
    users = _users_of(s, group)
    evidence = {"GroupName": group.name, "VpcId": group.vpc_id}
    if bad:
        evidence["OffendingRules"] = "; ".join(bad)
    exposed = [f"{c.identifier}:{c.port}" for c in users if any(
        _covers(r, c.port) for r in _open_rules(rules, cidrs) if offends(r))]
    if exposed:
        evidence["ExposedClusters"] = ", ".join(exposed)
    if bad:
        why = f"ingress from {bad[0]}" + (f" (+{len(bad) - 1} more)" if len(bad) > 1 else "")
        if exposed:
            why += f"; reaches cluster {exposed[0]}"
    else:
        why = "no unrestricted ingress to the ports this control checks"
    return Evaluation(BY_ID[control], s.group_arn(group), verdict(not bad), why, evidence,
                      {"GroupId": group.id, "GroupName": group.name, "VpcId": group.vpc_id})


def ec2_18(s: Snapshot) -> Iterator[Evaluation]:
    def offends(rule: Rule) -> bool:
        if rule.protocol == "-1":
            return True
        return not (rule.protocol in ("tcp", "6") and rule.from_port == rule.to_port
                    and rule.from_port in AUTHORIZED_PORTS)

    for group, rules in s.groups:
        yield _group_eval(s, "EC2.18", group, rules, (ANY_V4, ANY_V6), offends)


def _ports_hit(ports: tuple[int, ...]) -> Callable[[Rule], list[int] | bool]:
    def offends(rule: Rule) -> list[int] | bool:
        return [p for p in ports if _covers(rule, p)] or False
    return offends


def ec2_19(s: Snapshot) -> Iterator[Evaluation]:
    for group, rules in s.groups:
        yield _group_eval(s, "EC2.19", group, rules, (ANY_V4, ANY_V6), _ports_hit(HIGH_RISK_PORTS))


def ec2_53(s: Snapshot) -> Iterator[Evaluation]:
    for group, rules in s.groups:
        yield _group_eval(s, "EC2.53", group, rules, (ANY_V4,), _ports_hit(ADMIN_PORTS))


def ec2_54(s: Snapshot) -> Iterator[Evaluation]:
    for group, rules in s.groups:
        yield _group_eval(s, "EC2.54", group, rules, (ANY_V6,), _ports_hit(ADMIN_PORTS))


# --- account, IAM, KMS, Secrets Manager ---------------------------------------------------------


def iam_4(s: Snapshot) -> Iterator[Evaluation]:
    keys = sorted(k.key_id for k in s.root_keys)
    why = (f"the root user has {len(keys)} access key(s)" if keys else "the root user has no access key")
    evidence = {"RootAccessKeys": ", ".join(keys)} if keys else {}
    yield Evaluation(BY_ID["IAM.4"], f"AWS::::Account:{s.account}", verdict(not keys), why, evidence)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _full_admin(document: str) -> bool:
    try:
        doc = json.loads(document)
    except ValueError:
        return False
    statements = _as_list(doc.get("Statement", [])) if isinstance(doc, dict) else []
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        if "*" in _as_list(st.get("Action", [])) and "*" in _as_list(st.get("Resource", [])):
            return True
    return False


def iam_1(s: Snapshot) -> Iterator[Evaluation]:
    for policy in s.policies:
        admin = _full_admin(policy.document)
        why = ('the default version allows "Action": "*" on "Resource": "*"' if admin
               else "no statement allows full administrative privileges")
        yield Evaluation(BY_ID["IAM.1"], policy.arn, verdict(not admin), why,
                         {"PolicyName": policy.name, "DefaultVersionId": policy.default_version},
                         {"PolicyName": policy.name, "DefaultVersionId": policy.default_version})


def kms_3(s: Snapshot) -> Iterator[Evaluation]:
    for key in s.keys:
        if key.manager != "CUSTOMER":
            continue
        pending = key.state == "PendingDeletion"
        evidence: dict[str, str] = {"KeyState": str(key.state)}
        why = f"the key is {key.state}"
        if pending and key.deletion_date is not None:
            when = datetime.fromtimestamp(key.deletion_date, s.now.tzinfo).strftime("%Y-%m-%dT%H:%M:%SZ")
            evidence["DeletionDate"] = when
            why = f"the key is scheduled for deletion on {when}"
        yield Evaluation(BY_ID["KMS.3"], key.arn, verdict(not pending), why, evidence,
                         {"KeyId": key.key_id, "KeyState": key.state})


def secretsmanager_1(s: Snapshot) -> Iterator[Evaluation]:
    for secret in s.secrets:
        on = secret.rotation.enabled
        why = "automatic rotation is enabled" if on else "automatic rotation is not enabled"
        yield Evaluation(BY_ID["SecretsManager.1"], secret.arn, verdict(on), why,
                         {"RotationEnabled": str(on).lower(), "Name": secret.name}, {"Name": secret.name})


def secretsmanager_4(s: Snapshot) -> Iterator[Evaluation]:
    limit = s.now - timedelta(days=ROTATION_MAX_DAYS)
    for secret in s.secrets:
        # Unconfirmed: a secret never rotated counts from its creation.
        last = secret.rotation.last_rotated or secret.created
        when = datetime.fromtimestamp(last, s.now.tzinfo)
        ok = when >= limit
        why = (f"last rotated (or created) {when:%Y-%m-%d}, within {ROTATION_MAX_DAYS} days" if ok
               else f"not rotated since {when:%Y-%m-%d}, more than {ROTATION_MAX_DAYS} days ago")
        yield Evaluation(BY_ID["SecretsManager.4"], secret.arn, verdict(ok), why,
                         {"LastRotated": f"{when:%Y-%m-%dT%H:%M:%SZ}", "Name": secret.name}, {"Name": secret.name})


# --- auroral's own: the databases' traffic --------------------------------------------------------


def auroral_2(s: Snapshot) -> Iterator[Evaluation]:
    by_cluster = logins(s)
    for c in s.clusters:
        forced = c.parameters.get("rds.force_ssl", "0") == "1"
        plain = [] if forced else [r for r in by_cluster.get(c.identifier, []) if not r.tls]
        evidence = {"rds.force_ssl": "1" if forced else "0", "WindowHours": str(FLOW_WINDOW_HOURS),
                    "PlaintextConnections": str(len(plain))}
        if plain:
            evidence["Sources"] = sources(plain)
            evidence["FlowRecords"] = flow_ids(plain[-MAX_FLOW_IDS:])
            still_open = [r for r in plain if open_session(r)]
            if still_open:
                evidence["OpenSessions"] = flow_ids(still_open[-MAX_FLOW_IDS:])
            why = (f"rds.force_ssl is 0 and {len(plain)} connection(s) without TLS in {FLOW_WINDOW_HOURS} h "
                   f"(users: {', '.join(sorted({r.db_user or '' for r in plain}))})")
        elif forced:
            why = "rds.force_ssl is 1: plaintext connections are refused"
        else:
            why = f"rds.force_ssl is 0, but no plaintext connection in {FLOW_WINDOW_HOURS} h"
        yield Evaluation(BY_ID["AURORAL.2"], s.cluster_arn(c), verdict(not plain), why, evidence,
                         {"DbClusterIdentifier": c.identifier})


def auroral_3(s: Snapshot) -> Iterator[Evaluation]:
    now = s.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    names = [c.identifier for c in s.clusters]
    for p in s.principals:
        r = reach(p, region=s.region, account=s.account, partition=s.partition, cluster_names=names, now=now)
        allowed = [a for a, res in ((CREATE, r.create), (MODIFY, r.modify)) if res.allowed]
        evidence: dict[str, str] = {"AllowedActions": ", ".join(allowed) if allowed else "none"}
        for action, res in ((CREATE, r.create), (MODIFY, r.modify)):
            short = action.split(":", 1)[1]
            if res.allowed:
                evidence[f"{short}AllowedBy"] = "; ".join(statement_text(ref, r.refs[ref]) for ref in res.matched)
            elif res.matched:
                evidence[f"{short}DeniedBy"] = "; ".join(statement_text(ref, r.refs[ref]) for ref in res.matched)
        loophole = not r.create.allowed and bool(r.create.matched) and r.modify.allowed
        if loophole:
            evidence["Loophole"] = (f"an explicit Deny refuses {CREATE} without a managed master password "
                                    f"({evidence['CreateDBClusterDeniedBy']}), but {MODIFY} stays allowed: "
                                    "it can set a MasterUserPassword (or turn ManageMasterUserPassword off) "
                                    "after the cluster is created")
        if not allowed:
            why = f"neither {CREATE} nor {MODIFY} is allowed with ManageMasterUserPassword false"
        elif loophole:
            why = (f"{CREATE} is denied without a managed master password, but {MODIFY} is allowed "
                   f"({evidence['ModifyDBClusterAllowedBy']}): the Deny leaves the Modify path open")
        else:
            first = CREATE if r.create.allowed else MODIFY
            by = evidence[f"{first.split(':', 1)[1]}AllowedBy"]
            why = (f"can call {' and '.join(allowed)} with ManageMasterUserPassword false "
                   f"(a password of its own, not managed in Secrets Manager); {first} allowed by {by}")
        key = "UserName" if p.kind == "user" else "RoleName"
        yield Evaluation(BY_ID["AURORAL.3"], p.arn, verdict(not allowed), why, evidence, {key: p.name},
                         "AwsIamUser" if p.kind == "user" else "AwsIamRole")


CHECKS: dict[str, Callable[[Snapshot], Iterator[Evaluation]]] = {
    "RDS.2": rds_2, "RDS.7": rds_7, "RDS.12": rds_12, "RDS.24": rds_24, "RDS.27": rds_27,
    "EC2.18": ec2_18, "EC2.19": ec2_19, "EC2.53": ec2_53, "EC2.54": ec2_54,
    "IAM.1": iam_1, "IAM.4": iam_4, "KMS.3": kms_3,
    "SecretsManager.1": secretsmanager_1, "SecretsManager.4": secretsmanager_4,
    "AURORAL.1": auroral_1, "AURORAL.2": auroral_2, "AURORAL.3": auroral_3, **INSIDE_CHECKS,
}

# Account-wide (global) controls: decided once, in the home region only (as Security Hub's global
# resource recording does in its aggregation region).
GLOBAL_CONTROLS = frozenset({"IAM.1", "IAM.4", "AURORAL.3"})


def evaluate(s: Snapshot, *, with_global: bool) -> list[Evaluation]:
    out: list[Evaluation] = []
    for control, check in CHECKS.items():
        if control in GLOBAL_CONTROLS and not with_global:
            continue
        out.extend(check(s))
    return out

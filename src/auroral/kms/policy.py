"""Key policies: the documents KMS writes, and the KMS evaluation rule.

KMS differs from other services with resource policies (KMS developer guide, "Key policies"; IAM user
guide issue awsdocs/iam-user-guide#98): **access is allowed only if the key policy allows it.**

1. An explicit Deny in the key policy, an identity policy, a boundary or a session policy wins.
2. A key-policy Allow that applies to the caller *other than through its account* (the user or role
   named, or ``"*"``) allows by itself: no identity policy is needed.
3. A grant for the caller, the operation and the encryption context allows by itself too.
4. A key-policy Allow that names the account (``arn:aws:iam::<acct>:root`` or the bare id) *delegates*
   to IAM: then the identity policies (and boundary, session policy) must allow as well. The account's
   root user is such a caller; with a policy that does not name the account, even root is denied.
5. Otherwise: "because no resource-based policy allows the <action> action".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from auroral.api.protocol import error_from_shape
from auroral.errors import AwsError
from auroral.iam.policy import AuthzRequest, Decision, EvaluationResult, Policy, evaluate, parse_policy
from auroral.iam.policy.document import Statement
from auroral.iam.policy.evaluate import RESOURCE

MAX_POLICY_BYTES = 32768


def default_key_policy(account: str) -> str:
    """The policy CreateKey attaches when none is given: it delegates the key to the account's IAM."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        indent=2,
    )


# AWS managed keys, by the service whose default key they are. Policies as AWS writes them
# (Secrets Manager user guide, "Encryption and decryption in Secrets Manager"; captured RDS key
# policies "auto-rds-2" in public Terraform code): use only through the service, metadata to the account.
MANAGED_KEYS: dict[str, tuple[str, str]] = {
    "alias/aws/secretsmanager": (
        "secretsmanager",
        "Default key that protects my Secrets Manager data when no other key is defined",
    ),
    "alias/aws/rds": ("rds", "Default key that protects my RDS database volumes when no other key is defined"),
}

_METADATA_STATEMENT = {
    "Sid": "Allow direct access to key metadata to the account",
    "Effect": "Allow",
    "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
    "Resource": "*",
}


def managed_key_policy(service: str, account: str, region: str) -> str:
    metadata = {**_METADATA_STATEMENT, "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}
    via = f"{service}.{region}.amazonaws.com"
    if service == "secretsmanager":
        sid = ("Allow access through AWS Secrets Manager for all principals in the account that are "
               "authorized to use AWS Secrets Manager")
        statements: list[dict[str, Any]] = [
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:CreateGrant", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": account, "kms:ViaService": via}},
            },
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:CallerAccount": account},
                    "StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"},
                },
            },
            metadata,
        ]
        policy_id = "auto-secretsmanager-2"
    else:
        statements = [
            {
                "Sid": f"Allow access through {service.upper()} for all principals in the account that are "
                       f"authorized to use {service.upper()}",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                           "kms:CreateGrant", "kms:ListGrants", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": via, "kms:CallerAccount": account}},
            },
            metadata,
        ]
        policy_id = f"auto-{service}-2"
    return json.dumps({"Version": "2012-10-17", "Id": policy_id, "Statement": statements}, indent=2)


def compile_key_policy(text: str) -> Policy:
    """Parse a key policy. KMS accepts repeated Sids (its own managed policies repeat one), which the IAM
    parser refuses, so repeats are dropped from the compiled copy only; the stored text is unchanged.
    Raises ``MalformedPolicyDocumentException`` with the parser's reason."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise error_from_shape("kms", "MalformedPolicyDocumentException", "Policy exceeds the maximum size.")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise error_from_shape("kms", "MalformedPolicyDocumentException", "Syntax errors in policy.") from None
    if isinstance(doc, dict) and isinstance(doc.get("Statement"), list):
        seen: set[str] = set()
        statements = []
        for st in doc["Statement"]:
            if isinstance(st, dict) and isinstance(st.get("Sid"), str):
                if st["Sid"] in seen:
                    st = {k: v for k, v in st.items() if k != "Sid"}
                else:
                    seen.add(st["Sid"])
            statements.append(st)
        doc = {**doc, "Statement": statements}
    try:
        return parse_policy(doc if isinstance(doc, dict) else text, kind="resource", name="key policy")
    except AwsError as err:
        raise error_from_shape("kms", "MalformedPolicyDocumentException", err.message) from None


def _through_account_only(st: Statement, principal_arn: str, account: str) -> bool:
    """Does this (applicable) Allow reach the caller only because it names the caller's account?"""
    spec = st.principal
    if spec is None or st.not_principal or spec.everyone or spec.any_aws:
        return False
    if principal_arn in spec.arns or principal_arn in spec.others:
        return False
    parts = principal_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        names = parts[5].split("/")
        if len(names) >= 3 and (parts[4], names[1]) in spec.roles:
            return False  # a key policy naming a role grants to its sessions directly
    return account in spec.accounts


def evaluate_key_access(
    request: AuthzRequest,
    key_policy: Policy,
    identity: Sequence[Policy],
    *,
    boundary: Policy | None,
    session: Sequence[Policy] | None,
    is_root: bool,
    grant_allows: bool,
) -> EvaluationResult:
    action = request.action.lower()
    ctx = request.lower_context()
    principal_arn = request.principal_arn or ""
    account = request.principal_account or ""

    def applicable(allow: bool) -> list[Statement]:
        return [
            st for st in key_policy.candidates(action)[1 if allow else 0]
            if st.matches_principal(principal_arn, account)[0] and st.matches_request(request.resource, ctx)
        ]

    denied = applicable(allow=False)
    if denied:
        return EvaluationResult(Decision.EXPLICIT_DENY, tuple(st.ref for st in denied),
                                f"explicit deny in a {RESOURCE}", RESOURCE)
    # Identity-side: explicit denies anywhere, and whether IAM would allow on its own.
    iam = evaluate(request, identity, boundary=boundary, session=session, is_root=is_root)
    if iam.decision is Decision.EXPLICIT_DENY:
        return iam
    allows = applicable(allow=True)
    for st in allows:
        if not _through_account_only(st, principal_arn, account):
            return EvaluationResult(Decision.ALLOW, (st.ref,), f"allowed by a {RESOURCE}")
    if grant_allows:
        return EvaluationResult(Decision.ALLOW, (), "allowed by a grant")
    if allows:
        return iam  # the key policy delegates to IAM
    return EvaluationResult(Decision.IMPLICIT_DENY, (), f"no {RESOURCE} allows the {request.action} action",
                            RESOURCE)

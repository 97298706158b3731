"""Key policies: the documents KMS writes, and the KMS evaluation rule.

KMS differs from other services with resource policies (KMS developer guide, "Key policies"; IAM user
guide issue awsdocs/iam-user-guide#98): **access is allowed only if the key policy allows it** (or a
grant does). Within that, the IAM rules for resource-based policies in one account hold
(``iam.policy.principals.Reach``, IAM user guide "How AWS enforcement code logic evaluates requests"):

1. An explicit Deny in the key policy, an identity policy, a boundary or a session policy wins.
2. A key-policy Allow that names the caller itself — the IAM user, the role *session* ARN — or everyone
   (``"*"``) allows by itself: no identity policy is needed, and neither the boundary nor the session
   policy limits it.
3. A key-policy Allow that names the *role* of the calling session allows without an identity policy,
   but only if the role's permissions boundary (if any) and the session policy (if any) allow as well:
   "Resource-based policies that grant permissions to an IAM role ARN are limited by an implicit deny in
   a permissions boundary or session policy".
4. A grant for the caller, the operation and the encryption context allows the same way: a grant whose
   grantee is the caller's own ARN by itself, one whose grantee is the caller's role limited by the
   boundary and the session policy (unconfirmed: AWS does not document grants against boundaries and
   session policies; they are held to the rule AWS documents for a key policy naming the role).
5. A key-policy Allow that names the account (``arn:aws:iam::<acct>:root`` or the bare id) *delegates*
   to IAM: then the identity policies (and boundary, session policy) must allow as well. The account's
   root user is such a caller; with a policy that does not name the account, even root is denied.
6. Otherwise: "because no resource-based policy allows the <action> action".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from auroral.api.protocol import error_from_shape
from auroral.errors import AwsError
from auroral.iam.policy import AuthzRequest, Decision, EvaluationResult, Policy, evaluate, parse_policy
from auroral.iam.policy.document import Statement
from auroral.iam.policy.evaluate import RESOURCE, limits, resource_scan
from auroral.iam.policy.principals import Reach

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


def evaluate_key_access(
    request: AuthzRequest,
    key_policy: Policy,
    identity: Sequence[Policy],
    *,
    boundary: Policy | None,
    session: Sequence[Policy] | None,
    is_root: bool,
    grant: Reach | None,
) -> EvaluationResult:
    """``grant``: how the broadest grant that permits this request reaches the caller
    (``Reach.DIRECT`` for a grantee naming the caller's ARN, ``Reach.LIMITED`` for its role), if any."""
    action = request.action.lower()
    ctx = request.lower_context()

    denied = resource_scan(key_policy, request, action, ctx, allow=False, has_boundary=boundary is not None)
    if denied:
        return EvaluationResult(Decision.EXPLICIT_DENY, tuple(st.ref for st, _ in denied),
                                f"explicit deny in a {RESOURCE}", RESOURCE)
    # Identity-side: explicit denies anywhere, and whether IAM would allow on its own.
    iam = evaluate(request, identity, boundary=boundary, session=session, is_root=is_root)
    if iam.decision is Decision.EXPLICIT_DENY:
        return iam
    allows = resource_scan(key_policy, request, action, ctx, allow=True)
    for st, reach in allows:
        if reach is Reach.DIRECT:
            return EvaluationResult(Decision.ALLOW, (st.ref,), f"allowed by a {RESOURCE}")
    if grant is Reach.DIRECT:
        return EvaluationResult(Decision.ALLOW, (), "allowed by a grant")
    limited: list[Statement] = [st for st, reach in allows if reach is Reach.LIMITED]
    denial: EvaluationResult | None = None
    if limited or grant is Reach.LIMITED:
        # A grant to the role: the boundary and the session policy must allow too (the root has neither).
        denial, matched = (None, []) if is_root else limits(request, action, ctx, boundary, session)
        if denial is None:
            refs = (limited[0].ref, *matched) if limited else tuple(matched)
            reason = f"allowed by a {RESOURCE}" if limited else "allowed by a grant"
            return EvaluationResult(Decision.ALLOW, refs, reason)
    if denial is not None:
        return denial  # the boundary or the session policy does not allow what the role was granted
    if any(reach is Reach.DELEGATED for _, reach in allows):
        return iam  # the key policy delegates to IAM
    return EvaluationResult(Decision.IMPLICIT_DENY, (), f"no {RESOURCE} allows the {request.action} action",
                            RESOURCE)

"""parse_policy's MalformedPolicyDocument messages.

Most rows are the cases moto checks against real IAM (getmoto/moto ``tests/test_iam/test_iam_policies.py``,
which are CreatePolicy calls: ``managed=True`` below); the Sid-characters text is from a CloudTrail
record of a real CreatePolicy rejection.
"""

from __future__ import annotations

from typing import Any

import pytest
from policy_cases import doc

from auroral.errors import AwsError
from auroral.iam.policy import PolicyKind, parse_policy

B = "arn:aws:s3:::example_bucket"
OK = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": B}


def st(**fields: Any) -> dict[str, Any]:
    """A statement: OK with fields replaced (None removes one)."""
    out = {**OK, **fields}
    return {k: v for k, v in out.items() if v is not None}


SYNTAX = "Syntax errors in policy."
LEGACY = "The policy failed legacy parsing"
VERSION = "Policy document must be version 2012-10-17 or greater."
VENDOR = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."

# (document, kind, managed, message)
INVALID: list[tuple[Any, PolicyKind, bool, str]] = [
    ("This is not a json document", "identity", False, SYNTAX),
    ("[1, 2]", "identity", False, SYNTAX),
    ({"Statement": OK}, "identity", True, VERSION),
    ({"Version": "2008-10-17", "Statement": OK}, "identity", True, VERSION),
    ({"Version": "2013-10-17", "Statement": OK}, "identity", False, SYNTAX),
    ({"Version": "2012-10-17"}, "identity", False, SYNTAX),
    (doc(), "identity", False, SYNTAX),  # empty Statement list
    ({"Version": "2012-10-17", "Statement": ["afd"]}, "identity", False, SYNTAX),
    ({"Version": "2012-10-17", "Statement": OK, "Extra field": "value"}, "identity", False, SYNTAX),
    (doc(st(**{"Extra field": "value"})), "identity", False, SYNTAX),
    ({"Version": "2012-10-17", "Id": ["x"], "Statement": OK}, "identity", False, SYNTAX),
    (doc(st(Effect="invalid")), "identity", False, SYNTAX),
    (doc(st(Effect=None)), "identity", False, SYNTAX),
    (doc(st(Effect="denY")), "identity", False, LEGACY),  # case-insensitive syntax, case-sensitive legacy
    (doc(st(Action="invalid")), "identity", False, VENDOR),
    (doc(st(Action=None, NotAction="")), "identity", False, VENDOR),
    (doc(st(Action="a a:ListBucket")), "identity", False, "Vendor a a is not valid"),
    (doc(st(Action="s3:List:Bucket")), "identity", False, "Actions/Condition can contain only one colon."),
    (doc(st(Action=None)), "identity", False, "Policy statement must contain actions."),
    (doc(st(Action=[])), "identity", False, "Policy statement must contain actions."),
    (doc({"Effect": "Deny"}, OK), "identity", False, "Policy statement must contain actions."),
    (doc(st(NotAction="s3:ListBucket")), "identity", False, SYNTAX),  # Action and NotAction
    (doc(st(Action={})), "identity", False, SYNTAX),
    (doc(st(Action=[[]])), "identity", False, SYNTAX),
    (doc(st(Resource=None)), "identity", False, "Policy statement must contain resources."),
    (doc(st(Resource=[])), "identity", False, "Policy statement must contain resources."),
    (doc(st(Resource=None)), "boundary", False, "Policy statement must contain resources."),
    (doc(st(NotResource="*")), "identity", False, SYNTAX),  # Resource and NotResource
    (doc(st(Resource={"a": B})), "identity", False, SYNTAX),
    (
        doc(st(Resource="invalid resource")),
        "identity",
        False,
        'Resource invalid resource must be in ARN format or "*".',
    ),
    (doc(st(Resource=["adf"])), "identity", False, 'Resource adf must be in ARN format or "*".'),
    (doc(st(Resource="")), "identity", False, 'Resource  must be in ARN format or "*".'),
    (
        doc(st(Resource="a:bsdfdsafsad")),
        "identity",
        False,
        'Partition "bsdfdsafsad" is not valid for resource "arn:bsdfdsafsad:*:*:*:*".',
    ),
    (
        doc(st(Resource="a:b:c:d:e:f:g:h")),
        "identity",
        False,
        'Partition "b" is not valid for resource "arn:b:c:d:e:f:g:h".',
    ),
    (
        doc(st(Resource="aws:s3:::example_bucket")),
        "identity",
        False,
        'Partition "s3" is not valid for resource "arn:s3:::example_bucket:*".',
    ),
    (
        doc(st(Resource="arn:aws")),
        "identity",
        False,
        "Resource vendor must be fully qualified and cannot contain regexes.",
    ),
    (doc(st(Resource="arn:aws:s3::example_bucket")), "identity", False, LEGACY),
    (doc(st(Resource="arn:aws::::example_bucket")), "identity", False, LEGACY),
    (
        doc(st(Resource="arn:aws:iam:::example_bucket")),
        "identity",
        False,
        'IAM resource path must either be "*" or start with user/, federated-user/, role/, group/, instance-profile/, mfa/, server-certificate/, policy/, sms-mfa/, saml-provider/, oidc-provider/, report/, access-report/.',
    ),
    (
        doc(st(Resource="arn:aws:iam:us-east-1::example_bucket")),
        "identity",
        False,
        "IAM resource arn:aws:iam:us-east-1::example_bucket cannot contain region information.",
    ),
    (doc(st(Condition=[])), "identity", False, SYNTAX),
    (doc(st(Condition="a")), "identity", False, SYNTAX),
    (doc(st(Condition={"a": "b"})), "identity", False, SYNTAX),
    (doc(st(Condition={"DateGreaterThan": "b"})), "identity", False, SYNTAX),
    (doc(st(Condition={"DateGreaterThan": {"a": {}}})), "identity", False, SYNTAX),
    (doc(st(Condition={"x": {"a": "1"}})), "identity", False, SYNTAX),
    (doc(st(Condition={"ForAnyValue::StringEqualsIfExists": {"a": "asf"}})), "identity", False, SYNTAX),
    (doc(st(Condition={"DateGreaterThan": {"a": "sdfdsf"}})), "identity", False, LEGACY),
    (doc(st(Condition={"DateLessThanEquals": {"a": "234-13"}})), "identity", False, LEGACY),
    (doc(st(Condition={"DateLessThan": {"a": "9223372036854775808"}})), "identity", False, LEGACY),
    (doc(st(Sid={})), "identity", False, SYNTAX),
    (
        doc(st(Sid="sdf"), {"Sid": "sdf", "Effect": "Allow"}),
        "identity",
        False,
        "Statement IDs (SID) in a single policy must be unique.",
    ),
    (
        {"Statement": [st(Sid="sdf"), st(Sid="sdf")]},
        "identity",
        True,
        VERSION,
    ),  # the version is checked first
    (
        doc(st(Sid="Atomic_Red_Team")),
        "identity",
        False,
        "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
    ),
    # principals
    (doc(st(Principal="*")), "identity", False, "Policy document should not specify a principal."),
    (doc(st(NotPrincipal={"AWS": "*"})), "session", False, "Policy document should not specify a principal."),
    (
        doc({"Effect": "Allow", "Action": "sts:AssumeRole"}),
        "trust",
        False,
        "Missing required field Principal",
    ),
    (doc(st()), "resource", False, "Missing required field Principal"),
    (
        doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Resource": "*"}),
        "trust",
        False,
        "Has prohibited field Resource.",
    ),
    (
        doc({"Effect": "Allow", "Principal": {"AWS": "bob"}, "Action": "sts:AssumeRole"}),
        "trust",
        False,
        'Invalid principal in policy: "AWS":"bob"',
    ),
    (
        doc({"Effect": "Allow", "Principal": {"Nobody": "x"}, "Action": "sts:AssumeRole"}),
        "trust",
        False,
        SYNTAX,
    ),
    (doc({"Effect": "Allow", "Principal": "someone", "Action": "sts:AssumeRole"}), "trust", False, SYNTAX),
    (
        doc(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "NotPrincipal": {"AWS": "*"},
                "Action": "sts:AssumeRole",
            }
        ),
        "trust",
        False,
        SYNTAX,
    ),
]


@pytest.mark.parametrize(("document", "kind", "managed", "message"), INVALID)
def test_invalid(document: Any, kind: PolicyKind, managed: bool, message: str) -> None:
    with pytest.raises(AwsError) as err:
        parse_policy(document, kind=kind, require_current_version=managed)
    assert (err.value.code, err.value.status, err.value.message) == ("MalformedPolicyDocument", 400, message)


VALID: list[tuple[Any, PolicyKind]] = [
    (doc(st(Resource=[B])), "identity"),
    (doc(st(Action="iam: asdf safdsf af ")), "identity"),
    (doc(st(Resource=[B, "*"])), "identity"),
    (doc(st(Action="*")), "identity"),
    (doc(st(Action="service-prefix:action-name", Resource="*")), "identity"),
    (doc(st(Resource="arn:aws:iam:::user/example_bucket")), "identity"),
    (doc(st(Resource="arn:aws:s33:::example_bucket")), "identity"),
    (doc(st(Resource="arn:aws:fdsasf")), "identity"),
    (doc(st(Resource="arn:aws:ec2:us-east-1::example_bucket")), "identity"),
    (doc(st(Condition={})), "identity"),
    (doc(st(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": "Department"}})), "identity"),
    (doc(st(Condition={"DateGreaterThan": {}})), "identity"),
    (doc(st(Condition={"DateGreaterThan": {"a": []}})), "identity"),
    (doc(st(Condition={"a": {}})), "identity"),
    (
        doc(
            st(
                Condition={
                    "DateGreaterThan": {"aws:CurrentTime": "2017-07-01T00:00:00Z"},
                    "DateLessThan": {"aws:CurrentTime": "1514764799"},
                }
            )
        ),
        "identity",
    ),
    (
        doc(st(Condition={"NumericLessThan": {"s3:max-keys": 10}, "Bool": {"aws:SecureTransport": True}})),
        "identity",
    ),
    (doc(st(Sid="dsfsdfsdfsdfsdfsadfsd")), "identity"),
    (doc(st(Sid="")), "identity"),
    ({"Statement": OK}, "identity"),  # inline policies may omit the version
    ({"Version": "2008-10-17", "Statement": OK}, "identity"),
    (doc(st(Sid="Allow s3 for everyone", Principal="*")), "resource"),  # resource policies: free-form Sid
    (
        doc({"Effect": "Allow", "Principal": {"Service": "rds.amazonaws.com"}, "Action": "sts:AssumeRole"}),
        "trust",
    ),
    (
        doc(
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["123456789012", "arn:aws:iam::123456789012:role/r"]},
                "Action": "sts:AssumeRole",
            }
        ),
        "trust",
    ),
    (
        '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}',
        "identity",
    ),
]


@pytest.mark.parametrize(("document", "kind"), VALID)
def test_valid(document: Any, kind: PolicyKind) -> None:
    policy = parse_policy(document, kind=kind)
    assert policy.kind == kind
    assert policy.statements


def test_managed_policies_require_the_current_version() -> None:
    parse_policy(doc(OK), require_current_version=True)
    with pytest.raises(AwsError, match="version 2012-10-17"):
        parse_policy({"Statement": OK}, require_current_version=True)

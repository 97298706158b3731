"""The IAM policy language as a pure module: parse and validate documents as IAM does on write, and
evaluate requests as AWS does.

    document.py    parse_policy -> Policy (validation messages, compiled statements)
    matching.py    wildcard patterns for Action / Resource / StringLike / Arn*
    variables.py   ${aws:username}-style policy variables and escapes
    conditions.py  condition operators, IfExists, ForAnyValue / ForAllValues, Null
    principals.py  Principal / NotPrincipal of resource and trust policies
    evaluate.py    evaluate(), evaluate_trust(), access_denied_message()

No I/O: callers load the documents and build the request context.
"""

from auroral.iam.policy.document import Policy, PolicyKind, Statement, StatementRef, parse_policy
from auroral.iam.policy.evaluate import (
    AuthzRequest,
    Decision,
    EvaluationResult,
    access_denied_message,
    evaluate,
    evaluate_trust,
)

__all__ = [
    "AuthzRequest",
    "Decision",
    "EvaluationResult",
    "Policy",
    "PolicyKind",
    "Statement",
    "StatementRef",
    "access_denied_message",
    "evaluate",
    "evaluate_trust",
    "parse_policy",
]

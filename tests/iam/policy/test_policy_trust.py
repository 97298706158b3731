"""Role trust policies (sts:AssumeRole): Principal forms, NotPrincipal, Deny, conditions."""

from __future__ import annotations

from typing import Any

import pytest
from policy_cases import doc

from auroral.iam.policy import evaluate_trust, parse_policy

ACCT = "111122223333"
OTHER = "444455556666"
USER_X = f"arn:aws:iam::{ACCT}:user/x"
USER_Y = f"arn:aws:iam::{ACCT}:user/y"
ROLE_R = f"arn:aws:iam::{ACCT}:role/path/R"
SESSION_R = f"arn:aws:sts::{ACCT}:assumed-role/R/s1"
SESSION_Q = f"arn:aws:sts::{ACCT}:assumed-role/Q/s1"


def trust(principal: Any, *, key: str = "Principal", effect: str = "Allow", **extra: Any) -> dict[str, Any]:
    return doc({"Effect": effect, key: principal, "Action": "sts:AssumeRole", **extra})


# (trust policy, principal arn, principal account, expected)
CASES: list[tuple[dict[str, Any], str | None, str | None, bool]] = [
    (trust({"AWS": f"arn:aws:iam::{ACCT}:root"}), USER_X, ACCT, True),
    (trust({"AWS": f"arn:aws:iam::{ACCT}:root"}), USER_X, None, True),  # account taken from the ARN
    (trust({"AWS": f"arn:aws:iam::{ACCT}:root"}), f"arn:aws:iam::{OTHER}:user/x", OTHER, False),
    (trust({"AWS": ACCT}), SESSION_Q, ACCT, True),
    (trust({"AWS": ACCT}), f"arn:aws:iam::{OTHER}:user/x", OTHER, False),
    (trust({"AWS": USER_X}), USER_X, ACCT, True),
    (trust({"AWS": USER_X}), USER_Y, ACCT, False),
    (trust({"AWS": [USER_Y, USER_X]}), USER_X, ACCT, True),  # list OR'ed
    (trust({"AWS": "*"}), f"arn:aws:iam::{OTHER}:user/z", OTHER, True),
    (trust("*"), f"arn:aws:iam::{OTHER}:user/z", OTHER, True),
    (trust({"AWS": ROLE_R}), SESSION_R, ACCT, True),  # a role ARN matches its sessions
    (trust({"AWS": ROLE_R}), SESSION_Q, ACCT, False),
    (trust({"AWS": SESSION_R}), SESSION_R, ACCT, True),
    (trust({"Service": "rds.amazonaws.com"}), "rds.amazonaws.com", None, True),
    (trust({"Service": "rds.amazonaws.com"}), "ec2.amazonaws.com", None, False),
    (trust({"Service": "rds.amazonaws.com"}), USER_X, ACCT, False),
    (trust({"Service": ["ec2.amazonaws.com", "rds.amazonaws.com"]}), "rds.amazonaws.com", None, True),
    (trust({"AWS": USER_X, "Service": "rds.amazonaws.com"}), "rds.amazonaws.com", None, True),
    (trust({"AWS": "*"}), "rds.amazonaws.com", None, False),  # AWS:* is not a service principal
    (trust({"AWS": USER_X}), None, None, False),
    (trust({"AWS": USER_X}, key="NotPrincipal"), USER_Y, ACCT, True),
    (trust({"AWS": USER_X}, key="NotPrincipal"), USER_X, ACCT, False),
    # Deny beats Allow
    (
        doc(trust({"AWS": ACCT})["Statement"][0], trust({"AWS": USER_Y}, effect="Deny")["Statement"][0]),
        USER_Y,
        ACCT,
        False,
    ),
    (
        doc(trust({"AWS": ACCT})["Statement"][0], trust({"AWS": USER_Y}, effect="Deny")["Statement"][0]),
        USER_X,
        ACCT,
        True,
    ),
    # Conditions
    (trust({"AWS": ACCT}, Condition={"StringEquals": {"sts:ExternalId": "secret"}}), USER_X, ACCT, False),
    # Only the listed action
    (doc({"Effect": "Allow", "Principal": {"AWS": ACCT}, "Action": "sts:TagSession"}), USER_X, ACCT, False),
]


@pytest.mark.parametrize(("policy", "arn", "account", "expected"), CASES)
def test_trust(policy: dict[str, Any], arn: str | None, account: str | None, expected: bool) -> None:
    assert evaluate_trust(parse_policy(policy, kind="trust"), arn, account, {}) is expected


def test_trust_conditions_and_actions() -> None:
    policy = parse_policy(
        trust({"AWS": ACCT}, Condition={"StringEquals": {"sts:ExternalId": "secret"}}), kind="trust"
    )
    assert evaluate_trust(policy, USER_X, ACCT, {"sts:externalid": "secret"})
    assert not evaluate_trust(policy, USER_X, ACCT, {"sts:ExternalId": "guess"})
    tagging = parse_policy(
        doc({"Effect": "Allow", "Principal": {"AWS": ACCT}, "Action": ["sts:AssumeRole", "sts:TagSession"]}),
        kind="trust",
    )
    assert evaluate_trust(tagging, USER_X, ACCT, {}, action="sts:TagSession")
    assert not evaluate_trust(tagging, USER_X, ACCT, {}, action="sts:SetSourceIdentity")

"""Policy text cannot stall the evaluator: parsing and evaluating documents shaped to make a
backtracking regex explode (many stars, ``${`` without ``}``) takes milliseconds at AWS's size limits."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from policy_cases import allow, decide, doc

from auroral.errors import AwsError
from auroral.iam.policy import Decision, parse_policy

BOUND = 0.5  # seconds for a whole 128 KiB document: generous; typical is a few milliseconds


T = TypeVar("T")


def _timed(fn: Callable[..., T], *args: Any, **kw: Any) -> tuple[float, T]:
    start = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - start, out


def test_unclosed_variable_references_parse_in_linear_time() -> None:
    text = json.dumps(doc(allow("s3:GetObject", "arn:aws:s3:::" + "${" * 60_000)))
    assert len(text) > 120_000  # within the 131,072 characters SimulateCustomPolicy accepts
    took, _ = _timed(parse_policy, text)
    assert took < BOUND, took


def test_every_wildcard_element_evaluates_quickly() -> None:
    stars = "*a" * 200 + "X"
    statements = [
        allow("s3:" + stars, "arn:aws:s3:::" + stars),
        {"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::" + "a" * 2000},
        allow("s3:*", "*", Condition={
            "StringLike": {"aws:PrincipalTag/t": stars},
            "ArnLike": {"aws:SourceArn": "arn:aws:s3:::" + stars},
            "StringNotLike": {"aws:userid": "?" * 1000 + stars}}),
    ]
    context = {"aws:PrincipalTag/t": "a" * 4000, "aws:SourceArn": "arn:aws:s3:::" + "a" * 2000,
               "aws:userid": "a" * 4000}
    took, decision = _timed(decide, statements, action="s3:" + "a" * 120, resource="arn:aws:s3:::" + "a" * 2000,
                            context=context)
    assert decision is Decision.IMPLICIT_DENY
    assert took < BOUND, took


def test_deeply_nested_documents_are_malformed_not_internal_errors() -> None:
    for text in ("[" * 100_000, '{"Statement": ' + "[" * 50_000):
        with pytest.raises(AwsError) as err:
            parse_policy(text)
        assert (err.value.code, err.value.message) == ("MalformedPolicyDocument", "Syntax errors in policy.")

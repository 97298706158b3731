"""The models' ``pattern`` constraints run on the caller's text before anything else: none may
backtrack for long. Every pattern of the served services is timed against failing values built to
trip ambiguous repetitions (runs of one character class, then a character that breaks the match)."""

from __future__ import annotations

import time

import botocore.session
import pytest

from auroral.api.protocol.models import _java_to_python_regex

SERVICES = ("iam", "sts", "rds", "ec2", "kms", "secretsmanager", "cloudtrail", "securityhub")
RUNS = ("a", "A", "0", "-", "a-", "/a", "a/", ".", ":", "a:", " ", "_", "=", "aa--")
TAILS = ("!", "\x00", "-", "--")


def _patterns() -> list[str]:
    session = botocore.session.get_session()
    found: set[str] = set()
    for service in SERVICES:
        model = session.get_service_model(service)
        for name in model.shape_names:
            pattern = model.shape_for(name).metadata.get("pattern")
            if pattern:
                found.add(pattern)
    return sorted(found)


@pytest.mark.parametrize("pattern", _patterns())
def test_patterns_fail_fast_on_adversarial_values(pattern: str) -> None:
    regex = _java_to_python_regex(pattern)
    if regex is None:
        return
    for run in RUNS:
        for count in (24, 40, 1000):
            for tail in TAILS:
                value = run * count + tail
                start = time.perf_counter()
                regex.fullmatch(value)
                took = time.perf_counter() - start
                assert took < 0.05, (pattern, run, count, tail, took)


def test_rewritten_names_keep_their_language() -> None:
    regex = _java_to_python_regex("[a-zA-Z](?:-?[a-zA-Z0-9]+)*")
    assert regex is not None
    for good in ("a", "proxy-1", "a1-b2-c3", "Ab9"):
        assert regex.fullmatch(good), good
    for bad in ("1a", "a--b", "a-", "-a", "a_b", "a" * 40 + "!"):
        assert not regex.fullmatch(bad), bad

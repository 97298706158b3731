"""The linear-time wildcard matcher: it agrees with a regex reference on small inputs, and adversarial
patterns (the ``*a*a*a...X`` family that makes a backtracking regex take exponential time, long ``?``
runs, dense near-matches) take microseconds, never seconds."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from auroral.iam.policy.matching import PatternSet, compile_pattern
from auroral.iam.policy.variables import Verbatim
from auroral.wildcard import compile_glob, glob_match

LIMIT = 0.005  # seconds per match: generous, against a loaded CI machine; typical is microseconds


def reference(pattern: str, value: str) -> bool:
    """fnmatch-like translation, run only on short inputs (it backtracks)."""
    source = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(source, value, re.DOTALL) is not None


def arn_reference(pattern: str, value: str) -> bool:
    """The former regex translation of the Arn* operators: wildcards of the first five parts stop at ':'."""
    out, colons = [], 0
    for ch in pattern:
        bounded = colons < 5
        if ch == "*":
            out.append("[^:]*" if bounded else ".*")
        elif ch == "?":
            out.append("[^:]" if bounded else ".")
        else:
            colons += ch == ":"
            out.append(re.escape(ch))
    return colons >= 5 and re.fullmatch("".join(out), value, re.DOTALL) is not None


patterns = st.text(alphabet="ab*?", max_size=10)
values = st.text(alphabet="abc", max_size=12)


@settings(max_examples=1000, deadline=None)
@given(patterns, values)
def test_agrees_with_reference(pattern: str, value: str) -> None:
    assert glob_match(pattern, value) is reference(pattern, value)


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet="a:*?", max_size=12), st.text(alphabet="a:b", max_size=12))
def test_arn_mode_agrees_with_reference(pattern: str, value: str) -> None:
    assert compile_pattern([pattern], arn_mode=True).match(value) is arn_reference(pattern, value)


def test_literal_pieces_are_not_wildcards() -> None:
    glob = compile_pattern(["arn:aws:s3:::home/", Verbatim("a*?"), "/*"])
    assert glob.match("arn:aws:s3:::home/a*?/x")
    assert not glob.match("arn:aws:s3:::home/abc/x")


def _per_call(match: Callable[[str], bool], value: str, repeat: int = 5) -> tuple[float, bool]:
    """(fastest of ``repeat`` timings, the answer)."""
    best, answer = float("inf"), False
    for _ in range(repeat):
        start = time.perf_counter()
        answer = match(value)
        best = min(best, time.perf_counter() - start)
    return best, answer


# (pattern, value): each makes Python's re (the former implementation) run for seconds or longer
ADVERSARIAL = [
    ("arn:aws:s3:::" + "*a" * 6 + "X", "arn:aws:s3:::" + "a" * 85),  # the reported attack
    ("*a" * 200 + "X", "a" * 2048),
    ("*" + "?" * 1000 + "X*", "a" * 2048),
    ("*" + "a?" * 500 + "b*", "a" * 2048),  # every position starts a near-match
    ("*?a?*" * 300 + "b", "ab" * 1023 + "aa"),
    ("?" * 2047 + "X", "a" * 2048),
    ("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*" + "?" * 30 + "X", "a" * 2048),
]


def test_adversarial_patterns_are_fast() -> None:
    timings = []
    for pattern, value in ADVERSARIAL:
        glob = compile_glob(pattern)
        took, answer = _per_call(glob.match, value)
        assert answer is False
        assert took < LIMIT, (pattern[:40], took)
        timings.append(took)
    # typical: microseconds (the ``a?a?...`` scans are the slow end, a fraction of a millisecond)
    assert statistics.median(timings) < 0.0005, timings


@settings(max_examples=200, deadline=None)
@given(
    stars=st.integers(1, 300),
    letter=st.sampled_from("a?"),
    tail=st.sampled_from(["X", "?X", "X*", "*X?"]),
    length=st.integers(1, 2048),
)
def test_many_stars_against_long_runs(stars: int, letter: str, tail: str, length: int) -> None:
    pattern = f"*{letter}" * stars + tail
    took, answer = _per_call(compile_glob(pattern).match, "a" * length, repeat=3)
    assert answer is False  # no X in the value
    assert took < LIMIT, (stars, letter, tail, length, took)


def test_pattern_sets_use_the_linear_matcher() -> None:
    """Resource, action (case-insensitive) and Arn* (part-by-part) sets with the attack pattern."""
    value = "arn:aws:s3:::" + "a" * 2000
    for patterns, arn_mode, ignore_case in (
        (["arn:aws:s3:::" + "*a" * 100 + "X"], False, False),
        (["arn:aws:s3:::" + "*a" * 100 + "X"], True, False),
        (["s3:" + "*A" * 100 + "X"], False, True),
    ):
        pattern_set = PatternSet(patterns, arn_mode=arn_mode, ignore_case=ignore_case)
        subject = "s3:" + "a" * 2000 if ignore_case else value
        took, answer = _per_call(lambda v, s=pattern_set: s.matches(v, {}), subject)  # type: ignore[misc]
        assert answer is False
        assert took < LIMIT, took
    assert PatternSet(["S3:Get*Object"], ignore_case=True).matches("s3:getbucketobject", {})
    assert not PatternSet(["arn:aws:s3:::b/*"]).matches("arn:aws:s3:::B/x", {})  # resources: case-sensitive

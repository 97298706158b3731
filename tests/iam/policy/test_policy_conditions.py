"""Condition operators: one table per family, each row (block, context, expected).

Every row goes through parse_policy + evaluate as the Condition of an Allow statement, so a row
fails when either the compiler or the evaluator breaks the rule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from policy_cases import condition_holds

from auroral.errors import AwsError
from auroral.iam.policy import parse_policy
from auroral.iam.policy.conditions import OPERATORS

Row = tuple[dict[str, Any], dict[str, Any], bool]
K = "svc:key"
MISSING: dict[str, Any] = {}


def rows(op: str, values: Any, table: list[tuple[Any, bool]]) -> list[Row]:
    """Rows for one operator: ``table`` lists (context value or MISSING, expected)."""
    out: list[Row] = []
    for value, expected in table:
        context = {} if value is MISSING else {K: value}
        out.append(({op: {K: values}}, context, expected))
    return out


STRING: list[Row] = [
    *rows("StringEquals", "abc", [("abc", True), ("ABC", False), ("abcd", False), (MISSING, False)]),
    *rows("StringEquals", ["a", "b"], [("b", True), ("c", False)]),  # values OR'ed
    *rows("StringNotEquals", "abc", [("abc", False), ("xyz", True), ("ABC", True), (MISSING, True)]),
    # negated: true only when NO value matches (an OR of negations would give True for "b").
    *rows("StringNotEquals", ["a", "b"], [("b", False), ("c", True)]),
    *rows("StringEqualsIgnoreCase", "AbC", [("abc", True), ("ABC", True), ("abd", False), (MISSING, False)]),
    *rows("StringNotEqualsIgnoreCase", "AbC", [("aBc", False), ("abd", True), (MISSING, True)]),
    *rows("StringNotEqualsIgnoreCase", ["a", "B"], [("b", False), ("c", True)]),
    *rows("StringLike", "a*", [("abc", True), ("a", True), ("Abc", False), ("ba", False), (MISSING, False)]),
    *rows("StringLike", "a?c", [("abc", True), ("abbc", False), ("ac", False)]),
    *rows("StringLike", "arn:*:db/*", [("arn:aws:rds:x:db/a/b", True)]),  # * crosses ':' and '/'
    *rows("StringLike", "a.c", [("a.c", True), ("abc", False)]),  # regex metacharacters are literal
    *rows("StringLike", ["x*", "*z"], [("xa", True), ("az", True), ("aza", False)]),
    *rows("StringNotLike", "a*", [("abc", False), ("xbc", True), (MISSING, True)]),
    *rows("StringNotLike", ["a*", "b*"], [("bcd", False), ("cde", True)]),
    *rows("StringEquals", "true", [(True, True), (False, False)]),  # a bool context value as text
    *rows("StringEquals", "5", [(5, True)]),
]

NUMERIC: list[Row] = [
    *rows(
        "NumericEquals",
        "10",
        [(10, True), ("10", True), ("10.0", True), (11, False), ("ten", False), (MISSING, False)],
    ),
    *rows("NumericEquals", 10, [(10, True)]),  # a JSON number in the policy
    *rows("NumericEquals", ["1", "2"], [(2, True), (3, False)]),
    *rows("NumericNotEquals", "10", [(10, False), (11, True), (MISSING, True)]),
    *rows("NumericNotEquals", ["1", "2"], [(2, False), (3, True)]),
    *rows("NumericLessThan", "10", [(9, True), (10, False), (11, False), (MISSING, False)]),
    *rows("NumericLessThanEquals", "10", [(10, True), (11, False)]),
    *rows("NumericGreaterThan", "10", [(11, True), (10, False)]),
    *rows("NumericGreaterThanEquals", "10", [(10, True), (9, False), ("9.5", False)]),
]

JAN1 = datetime(2020, 1, 1, tzinfo=UTC)
EPOCH = int(JAN1.timestamp())
DATE: list[Row] = [
    *rows(
        "DateEquals",
        "2020-01-01T00:00:00Z",
        [
            (JAN1, True),
            (EPOCH, True),
            (str(EPOCH), True),
            ("2020-01-01T00:00:00Z", True),
            ("2020-01-01T01:00:00+01:00", True),  # same instant, other offset
            (JAN1.replace(tzinfo=None), True),  # naive = UTC
            (JAN1.astimezone(timezone(timedelta(hours=-5))), True),
            (JAN1 + timedelta(seconds=1), False),
            ("not a date", False),
            (MISSING, False),
        ],
    ),
    *rows("DateEquals", str(EPOCH), [("2020-01-01T00:00:00Z", True)]),  # epoch in the policy
    *rows("DateEquals", "2020-01-01", [(JAN1, True)]),  # date only
    *rows("DateNotEquals", "2020-01-01T00:00:00Z", [(JAN1, False), (EPOCH + 1, True), (MISSING, True)]),
    *rows("DateLessThan", "2020-01-01T00:00:00Z", [(EPOCH - 1, True), (EPOCH, False), (MISSING, False)]),
    *rows("DateLessThanEquals", "2020-01-01T00:00:00Z", [(EPOCH, True), (EPOCH + 1, False)]),
    *rows("DateGreaterThan", "2020-01-01T00:00:00Z", [("2021-06-01T00:00:00Z", True), (EPOCH, False)]),
    *rows("DateGreaterThanEquals", "2020-01-01T00:00:00Z", [(EPOCH, True), (EPOCH - 1, False)]),
]

BOOL_BINARY: list[Row] = [
    *rows(
        "Bool",
        "true",
        [(True, True), ("true", True), ("TRUE", True), (False, False), ("false", False), (MISSING, False)],
    ),
    *rows("Bool", "false", [(False, True), ("false", True), (True, False), (MISSING, False)]),
    *rows("Bool", True, [(True, True), (False, False)]),  # a JSON boolean in the policy
    *rows(
        "BinaryEquals",
        "QmluYXJ5VmFsdWU=",
        [(b"BinaryValue", True), ("QmluYXJ5VmFsdWU=", True), (b"Other", False), (MISSING, False)],
    ),
]

IP: list[Row] = [
    *rows(
        "IpAddress",
        "203.0.113.0/24",
        [
            ("203.0.113.5", True),
            ("203.0.114.5", False),
            ("2001:db8::1", False),
            ("garbage", False),
            (MISSING, False),
        ],
    ),
    *rows("IpAddress", "203.0.113.5", [("203.0.113.5", True), ("203.0.113.6", False)]),  # bare = /32
    *rows(
        "IpAddress", "2001:db8::/32", [("2001:db8::1", True), ("2001:db9::1", False), ("203.0.113.5", False)]
    ),
    *rows("IpAddress", "2001:db8::1", [("2001:db8::1", True), ("2001:db8::2", False)]),  # bare = /128
    *rows("IpAddress", ["10.0.0.0/8", "192.168.0.0/16"], [("192.168.1.1", True), ("172.16.0.1", False)]),
    *rows(
        "NotIpAddress", "203.0.113.0/24", [("203.0.113.5", False), ("198.51.100.1", True), (MISSING, True)]
    ),
    *rows("NotIpAddress", ["10.0.0.0/8", "192.168.0.0/16"], [("192.168.1.1", False), ("172.16.0.1", True)]),
]

ROLE = "arn:aws:iam::123456789012:role/app/web"
ARN: list[Row] = [
    *rows("ArnEquals", ROLE, [(ROLE, True), (ROLE.upper(), False), (ROLE + "x", False), (MISSING, False)]),
    *rows("ArnLike", "arn:aws:iam::*:role/*", [(ROLE, True), ("arn:aws:iam::123456789012:user/web", False)]),
    *rows(
        "ArnLike",
        "arn:aws:rds:*:123456789012:cluster:*",
        [("arn:aws:rds:us-east-1:123456789012:cluster:c1", True)],
    ),
    # Part by part: a * in one of the first five parts does not run over ':' (StringLike would match).
    *rows(
        "ArnLike",
        "arn:aws:s*:us-east-1:123:x",
        [("arn:aws:s3:extra:us-east-1:123:x", False), ("arn:aws:s3:us-east-1:123:x", True)],
    ),
    # Fewer than six parts matches nothing.
    *rows("ArnLike", "arn:aws:iam::*", [(ROLE, False)]),
    # The resource part may itself hold ':' and the * there runs over it.
    *rows(
        "ArnLike",
        "arn:aws:logs:*:*:log-group:*",
        [("arn:aws:logs:us-east-1:1:log-group:g:log-stream:s", True)],
    ),
    *rows("ArnEquals", "arn:aws:iam::123456789012:role/*", [(ROLE, True)]),  # ArnEquals takes wildcards too
    *rows(
        "ArnNotEquals", ROLE, [(ROLE, False), ("arn:aws:iam::123456789012:role/other", True), (MISSING, True)]
    ),
    *rows(
        "ArnNotLike",
        "arn:aws:iam::*:role/*",
        [(ROLE, False), ("arn:aws:iam::1:user/u", True), (MISSING, True)],
    ),
]

NULL: list[Row] = [
    *rows("Null", "true", [(MISSING, True), ("x", False), ([], True)]),
    *rows("Null", "false", [(MISSING, False), ("x", True), (False, True)]),
    *rows("Null", True, [(MISSING, True)]),
]

IF_EXISTS: list[Row] = [
    *rows("StringEqualsIfExists", "a", [(MISSING, True), ("a", True), ("b", False)]),
    *rows("StringNotEqualsIfExists", "a", [(MISSING, True), ("a", False), ("b", True)]),
    *rows("StringLikeIfExists", "a*", [(MISSING, True), ("b", False)]),
    *rows("StringEqualsIgnoreCaseIfExists", "A", [(MISSING, True), ("a", True)]),
    *rows("NumericLessThanIfExists", "10", [(MISSING, True), (5, True), (50, False)]),
    *rows("DateGreaterThanIfExists", "2020-01-01T00:00:00Z", [(MISSING, True), (EPOCH - 10, False)]),
    *rows("BoolIfExists", "true", [(MISSING, True), (False, False), (True, True)]),
    *rows("BinaryEqualsIfExists", "QmluYXJ5VmFsdWU=", [(MISSING, True), (b"x", False)]),
    *rows("IpAddressIfExists", "10.0.0.0/8", [(MISSING, True), ("11.0.0.1", False)]),
    *rows("NotIpAddressIfExists", "10.0.0.0/8", [(MISSING, True), ("10.0.0.1", False)]),
    *rows("ArnLikeIfExists", "arn:aws:iam::*:role/*", [(MISSING, True), ("arn:aws:iam::1:user/u", False)]),
    *rows("ArnNotLikeIfExists", "arn:aws:iam::*:role/*", [(MISSING, True), (ROLE, False)]),
]

TAGS = "aws:TagKeys"
MULTI: list[Row] = [
    # No set prefix and a list-valued key: matches when any value matches; negated when none does.
    *rows("StringEquals", "a", [(["x", "a"], True), (["x", "y"], False)]),
    *rows("StringNotEquals", "a", [(["x", "a"], False), (["x", "y"], True)]),
    *rows(
        "ForAnyValue:StringEquals",
        ["a", "b"],
        [(["b", "c"], True), (["c"], False), ([], False), (MISSING, False), ("a", True)],
    ),
    *rows(
        "ForAllValues:StringEquals",
        ["a", "b"],
        [(["a"], True), (["a", "b"], True), (["a", "c"], False), ([], True), (MISSING, True)],
    ),
    *rows("ForAnyValue:StringNotEquals", ["a"], [(["a", "b"], True), (["a"], False), ([], False)]),
    *rows(
        "ForAllValues:StringNotEquals",
        ["a"],
        [(["b", "c"], True), (["a", "b"], False), ([], True), (MISSING, True)],
    ),
    *rows("ForAllValues:StringLike", ["env-*"], [(["env-a", "env-b"], True), (["env-a", "x"], False)]),
    *rows("ForAnyValue:StringLike", ["env-*"], [(["x", "env-b"], True), (["x"], False)]),
    *rows("ForAnyValue:StringEqualsIfExists", "a", [(MISSING, True), (["b"], False)]),
    *rows("ForAllValues:StringEqualsIgnoreCase", ["A"], [(["a", "A"], True)]),
    *rows("ForAnyValue:NumericGreaterThan", "5", [([1, 7], True), ([1, 2], False)]),
    *rows("ForAllValues:NumericGreaterThan", "5", [([6, 7], True), ([1, 7], False)]),
    *rows("ForAnyValue:IpAddress", "10.0.0.0/8", [(["1.1.1.1", "10.1.1.1"], True)]),
    *rows(
        "ForAllValues:ArnLike",
        "arn:aws:iam::*:role/*",
        [([ROLE, ROLE], True), ([ROLE, "arn:aws:iam::1:user/u"], False)],
    ),
    *rows("ForAllValues:StringEquals", ["a"], [(("a", "a"), True)]),  # tuples count as lists
]

COMBINED: list[Row] = [
    # Operators are AND'ed.
    ({"StringEquals": {"k1": "1"}, "Bool": {"k2": "true"}}, {"k1": "1", "k2": False}, False),
    ({"StringEquals": {"k1": "1"}, "Bool": {"k2": "true"}}, {"k1": "1", "k2": True}, True),
    # Keys under one operator are AND'ed.
    ({"StringEquals": {"k1": "1", "k2": "2"}}, {"k1": "1"}, False),
    ({"StringEquals": {"k1": "1", "k2": "2"}}, {"k1": "1", "k2": "2"}, True),
    # Values of one key are OR'ed.
    ({"StringEquals": {"k1": ["1", "2"]}}, {"k1": "2"}, True),
    # Key names are case-insensitive on both sides; values are not.
    ({"StringEquals": {"AWS:RequestedRegion": "us-east-1"}}, {"aws:requestedREGION": "us-east-1"}, True),
    ({"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, {"aws:RequestedRegion": "US-EAST-1"}, False),
    # An unknown operator with an empty block is accepted and constrains nothing.
    ({"NoSuchOperator": {}}, {}, True),
    # An empty value list matches nothing.
    ({"StringEquals": {"k1": []}}, {"k1": "x"}, False),
]


def _if_exists_for_every_operator() -> list[Row]:
    """``<op>IfExists`` for every operator but Null: true when the key is missing, and the same
    result as ``<op>`` (first row of its table) when present."""
    out: list[Row] = []
    base_rows = [r for r in (*STRING, *NUMERIC, *DATE, *BOOL_BINARY, *IP, *ARN) if r[1]]
    for op in OPERATORS:
        if op == "Null":
            continue
        block, context, expected = next(r for r in base_rows if next(iter(r[0])) == op)
        values = block[op][K]
        out.append(({f"{op}IfExists": {K: values}}, {}, True))
        out.append(({f"{op}IfExists": {K: values}}, context, expected))
    return out


IF_EXISTS_ALL = _if_exists_for_every_operator()

TABLES = {
    "string": STRING,
    "numeric": NUMERIC,
    "date": DATE,
    "bool-binary": BOOL_BINARY,
    "ip": IP,
    "arn": ARN,
    "null": NULL,
    "if-exists": IF_EXISTS,
    "if-exists-all": IF_EXISTS_ALL,
    "multi-valued": MULTI,
    "combined": COMBINED,
}
CASES = [
    pytest.param(block, ctx, expected, id=f"{name}-{i}-{next(iter(block), '')}")
    for name, table in TABLES.items()
    for i, (block, ctx, expected) in enumerate(table)
]


@pytest.mark.parametrize(("block", "context", "expected"), CASES)
def test_condition(block: dict[str, Any], context: dict[str, Any], expected: bool) -> None:
    assert condition_holds(block, context) is expected


def test_every_operator_is_covered() -> None:
    plain = {
        op
        for name, table in TABLES.items()
        if "if-exists" not in name
        for block, _, _ in table
        for op in block
    }
    assert set(OPERATORS) <= plain
    assert len(IF_EXISTS_ALL) == 2 * (len(OPERATORS) - 1)


@pytest.mark.parametrize(
    "block",
    [
        {"NullIfExists": {"k": "true"}},
        {"StringEquals": "k"},
        {"StringEquals": {"k": {"nested": 1}}},
        {"ForAnyValue::StringEquals": {"k": "v"}},
        {"StringEqualz": {"k": "v"}},
    ],
)
def test_malformed_condition_blocks(block: dict[str, Any]) -> None:
    with pytest.raises(AwsError) as err:
        parse_policy(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s:a", "Resource": "*", "Condition": block}],
            }
        )
    assert (err.value.code, err.value.message) == ("MalformedPolicyDocument", "Syntax errors in policy.")

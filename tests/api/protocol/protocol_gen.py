"""Generates representative values for botocore shapes (the oracle tests' inputs and outputs).

Strings honour enum, length and (where Python can read it) the pattern: friendly candidates first,
then a value built from the parsed regex. Lists get 2 members, maps 2 entries, structures nest to
``MAX_DEPTH`` (deeper, or on recursion, only required members).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import botocore.model

MAX_DEPTH = 3

_CANDIDATES = [
    "abc",
    "test-name",
    "a",
    "abcdefgh",
    "/",
    "/path/",
    "arn:aws:iam::123456789012:role/test",
    "123456789012",
    "1",
    "AKIAIOSFODNN7EXAMPLE",
]


def _from_regex(pattern: str, repeat: int) -> str | None:
    try:
        parsed = sre_parse.parse(pattern)
    except Exception:
        return None

    def emit(items: Any) -> str:
        out = []
        for op, av in items:
            if op is sre_c.LITERAL:
                out.append(chr(av))
            elif op is sre_c.NOT_LITERAL:
                out.append("a" if chr(av) != "a" else "b")
            elif op is sre_c.ANY:
                out.append("a")
            elif op is sre_c.IN:
                out.append(_pick_in(av))
            elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
                lo, hi, sub = av
                hi = lo + 1000 if hi is sre_c.MAXREPEAT else hi
                n = min(max(lo, repeat), hi)
                out.append("".join(emit(sub) for _ in range(n)))
            elif op is sre_c.SUBPATTERN:
                out.append(emit(av[-1]))
            elif op is sre_c.BRANCH:
                out.append(emit(av[1][0]))
            elif op is sre_c.CATEGORY:
                out.append(_category(av))
            elif op in (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT):
                pass
            else:
                raise ValueError(op)
        return "".join(out)

    try:
        return emit(parsed)
    except (ValueError, TypeError):
        return None


def _category(cat: Any) -> str:
    name = str(cat)
    if "DIGIT" in name and "NOT" not in name:
        return "1"
    if "SPACE" in name and "NOT" not in name:
        return " "
    return "a"


def _pick_in(items: Any) -> str:
    negate = any(op is sre_c.NEGATE for op, _ in items)
    if negate:
        excluded = "".join(chr(av) for op, av in items if op is sre_c.LITERAL)
        for c in "azAZ09":
            if c not in excluded:
                return c
        return "q"
    for op, av in items:
        if op is sre_c.LITERAL:
            return chr(av)
        if op is sre_c.RANGE:
            lo, hi = av
            for c in "aA0":
                if lo <= ord(c) <= hi:
                    return c
            return chr(lo)
        if op is sre_c.CATEGORY:
            return _category(av)
    return "a"


def _ok(value: str, regex: re.Pattern[str] | None, lo: int, hi: int | None) -> bool:
    return (
        len(value) >= lo
        and (hi is None or len(value) <= hi)
        and (regex is None or regex.fullmatch(value) is not None)
    )


def string_value(shape: botocore.model.Shape, salt: int = 0) -> str:
    meta = shape.metadata
    if "enum" in meta:
        enum = meta["enum"]
        return str(enum[salt % len(enum)])
    lo, hi = int(meta.get("min", 0)), meta.get("max")
    hi = int(hi) if hi is not None else None
    pattern = meta.get("pattern")
    translated = pattern and pattern.replace(r"\p{L}", r"\w").replace(r"\p{N}", r"\d").replace(
        r"\p{Z}", r"\s"
    )
    try:
        regex = re.compile(translated, re.DOTALL) if translated else None
    except re.error:
        regex = None
    suffix = str(salt) if salt else ""
    tries = [c + suffix for c in _CANDIDATES]
    if regex is not None:
        for n in (1, 3, 8, max(lo, 1)):
            generated = _from_regex(translated, n)
            if generated:
                tries.append(generated)
    for base in tries:
        value = base if len(base) >= lo else (base * (lo // max(len(base), 1) + 1))[:lo]
        if hi is not None and len(value) > hi:
            value = value[:hi]
        if _ok(value, regex, lo, hi):
            return value
    # Unsatisfiable patterns exist (EC2's PlacementGroupArn has an inner '^'); AWS cannot check them either.
    return ("x" * max(lo, 3))[: hi if hi is not None else None]


def _number(shape: botocore.model.Shape, default: float) -> float:
    meta = shape.metadata
    lo, hi = meta.get("min"), meta.get("max")
    value = default
    if lo is not None and value < lo:
        value = lo
    if hi is not None and value > hi:
        value = hi
    return value


def generate(shape: botocore.model.Shape, depth: int = 0, stack: tuple[str, ...] = (), salt: int = 0) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        required = set(shape.required_members)
        for name, member in shape.members.items():
            if name not in required and (depth >= MAX_DEPTH or member.name in stack):
                continue
            value = generate(member, depth + 1, (*stack, shape.name), salt)
            if value != {} and not (isinstance(value, list) and all(v == {} for v in value)):
                out[name] = value  # empty structures have no wire form
        if getattr(shape, "is_tagged_union", False) and len(out) > 1:
            # A tagged union (newer models) carries exactly one member: keep the first scalar one.
            first = next((n for n in out if shape.members[n].type_name not in ("structure", "list", "map")),
                         next(iter(out)))
            out = {first: out[first]}
        if not out:
            # An empty structure has no wire form in the query protocols: keep one scalar member.
            for name, member in shape.members.items():
                if member.type_name not in ("structure", "list", "map"):
                    out[name] = generate(member, depth + 1, stack, salt)
                    break
        return out
    if kind == "list":
        meta = shape.metadata
        n = 2 if meta.get("max", 2) >= 2 else 1
        return [generate(shape.member, depth + 1, stack, salt + i) for i in range(n)]
    if kind == "map":
        n = 2 if shape.metadata.get("max", 2) >= 2 else 1
        keys = []
        for i in range(10):
            key = generate(shape.key, depth + 1, stack, i)
            if key not in keys:
                keys.append(key)
            if len(keys) == n:
                break
        return {k: generate(shape.value, depth + 1, stack, salt + i) for i, k in enumerate(keys)}
    if kind == "string":
        return string_value(shape, salt)
    if kind in ("integer", "long"):
        return int(_number(shape, 5 + salt))
    if kind in ("float", "double"):
        return float(_number(shape, 1.5))
    if kind == "boolean":
        return salt % 2 == 0
    if kind == "timestamp":
        return datetime(2024, 1, 2, 3, 4, 5 + salt, tzinfo=UTC)
    if kind == "blob":
        length = max(int(shape.metadata.get("min", 0)), 9)
        maximum = shape.metadata.get("max")
        if maximum is not None:
            length = min(length, int(maximum))
        return (b"blob-data" * (length // 9 + 1))[:length]
    raise AssertionError(kind)

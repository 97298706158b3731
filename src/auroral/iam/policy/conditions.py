"""The Condition element: operators compiled once, evaluated against a lower-cased request context.

Semantics (IAM user guide, ``reference_policies_elements_condition_operators`` and
``reference_policies_multi-value-conditions``):

* operators in a block are AND'ed, keys under one operator are AND'ed, values of one key are OR'ed;
* a negated operator (``StringNotEquals``, ``NotIpAddress``, ``ArnNotLike``...) is true when *no*
  policy value matches;
* a missing key makes a positive operator false and a negated one true; ``...IfExists`` is true;
  ``Null: {"k": "true"}`` is true iff the key is absent;
* ``ForAnyValue:`` is true when some context value satisfies the operator (false on an empty or
  missing set), ``ForAllValues:`` when every context value does (true on an empty or missing set).
  With a negated operator the negation applies to each context value. Without a prefix a list-valued
  key matches when any of its values matches (negated: when none does).

Each operator family is a small class whose ``match(value, ctx)`` says whether one context value
matches any of the policy's values; ``Condition.test`` applies the missing/negation/set rules above.
"""

from __future__ import annotations

import abc
import base64
import binascii
import ipaddress
import operator
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from auroral.iam.policy.matching import PatternSet
from auroral.iam.policy.variables import Template, context_text, parse_template, resolve, resolved_text

Ctx = Mapping[str, Any]
_MULTI = (list, tuple, set, frozenset)
_MAX_EPOCH = 9223372036854775807


class ConditionSyntaxError(Exception):
    """The block is not well-formed (rendered as ``Syntax errors in policy.``)."""


class ConditionLegacyError(Exception):
    """A value IAM's legacy parser rejects, e.g. an unparseable date (``The policy failed legacy parsing``)."""


# ---------------------------------------------------------------- value conversion


def parse_date(text: str) -> float | None:
    """Epoch seconds of an ISO 8601 date/time or of an epoch-seconds string."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        n = int(text)
        return float(n) if abs(n) <= _MAX_EPOCH else None
    try:
        dt = datetime.fromisoformat(text.upper())
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _ctx_date(value: Any) -> float | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return parse_date(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _bool_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.lower()
    return None


def _binary(value: Any) -> bytes | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


# ---------------------------------------------------------------- operator families


class _Family(abc.ABC):
    __slots__ = ()

    @abc.abstractmethod
    def match(self, value: Any, ctx: Ctx) -> bool:
        """Whether the context value satisfies this operator's values."""


class _StringEquals(_Family):
    __slots__ = ("fold", "templates", "values")

    def __init__(self, raw: list[str], allow_vars: bool, fold: bool) -> None:
        self.fold = fold
        values: set[str] = set()
        templates: list[Template] = []
        for text in raw:
            template = parse_template(text) if allow_vars else None
            if template is None:
                values.add(text.lower() if fold else text)
            else:
                templates.append(template)
        self.values = frozenset(values)
        self.templates = tuple(templates)

    def match(self, value: Any, ctx: Ctx) -> bool:
        text = context_text(value)
        if text is None:
            return False
        if self.fold:
            text = text.lower()
        if text in self.values:
            return True
        for template in self.templates:
            pieces = resolve(template, ctx)
            if pieces is not None:
                expected = resolved_text(pieces)
                if (expected.lower() if self.fold else expected) == text:
                    return True
        return False


class _Like(_Family):
    """StringLike (whole-string wildcards) and the Arn operators (part-by-part wildcards)."""

    __slots__ = ("patterns",)

    def __init__(self, raw: list[str], allow_vars: bool, arn_mode: bool) -> None:
        patterns: list[str | Template] = []
        for text in raw:
            template = parse_template(text) if allow_vars else None
            patterns.append(text if template is None else template)
        self.patterns = PatternSet(patterns, arn_mode=arn_mode)

    def match(self, value: Any, ctx: Ctx) -> bool:
        text = context_text(value)
        return text is not None and self.patterns.matches(text, ctx)


class _Compare(_Family):
    """Numeric* and Date*: policy values converted once, the context value per request."""

    __slots__ = ("cmp", "convert", "values")

    def __init__(
        self,
        values: list[float],
        cmp: Callable[[float, float], bool],
        convert: Callable[[Any], float | None],
    ) -> None:
        self.values = tuple(values)
        self.cmp = cmp
        self.convert = convert

    def match(self, value: Any, ctx: Ctx) -> bool:
        number = self.convert(value)
        if number is None:
            return False
        cmp = self.cmp
        return any(cmp(number, expected) for expected in self.values)


class _Bool(_Family):
    __slots__ = ("values",)

    def __init__(self, raw: list[str]) -> None:
        self.values = frozenset(v.lower() for v in raw)

    def match(self, value: Any, ctx: Ctx) -> bool:
        return _bool_text(value) in self.values


class _Binary(_Family):
    __slots__ = ("values",)

    def __init__(self, raw: list[str]) -> None:
        self.values = frozenset(b for b in map(_binary, raw) if b is not None)

    def match(self, value: Any, ctx: Ctx) -> bool:
        return _binary(value) in self.values


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Ip(_Family):
    """IpAddress: CIDR membership; a bare address is a /32 (IPv4) or /128 (IPv6)."""

    __slots__ = ("v4", "v6")

    def __init__(self, raw: list[str]) -> None:
        v4: list[tuple[int, int]] = []
        v6: list[tuple[int, int]] = []
        for text in raw:
            try:
                net: _Network = ipaddress.ip_network(text.strip(), strict=False)
            except ValueError:
                continue  # IAM stores it; it simply never matches
            target = v4 if net.version == 4 else v6
            target.append((int(net.network_address), int(net.netmask)))
        self.v4 = tuple(v4)
        self.v6 = tuple(v6)

    def match(self, value: Any, ctx: Ctx) -> bool:
        if not isinstance(value, str):
            return False
        parsed = _ip(value)
        if parsed is None:
            return False
        version, number = parsed
        return any(number & mask == network for network, mask in (self.v4 if version == 4 else self.v6))


_ip_cache: dict[str, tuple[int, int] | None] = {}


def _ip(text: str) -> tuple[int, int] | None:
    try:
        return _ip_cache[text]
    except KeyError:
        pass
    try:
        address = ipaddress.ip_address(text.strip())
        result: tuple[int, int] | None = (address.version, int(address))
    except ValueError:
        result = None
    if len(_ip_cache) > 4096:
        _ip_cache.clear()
    _ip_cache[text] = result
    return result


# ---------------------------------------------------------------- operator table

_CMP: dict[str, Callable[[float, float], bool]] = {
    "Equals": operator.eq,
    "NotEquals": operator.eq,  # negated below
    "LessThan": operator.lt,
    "LessThanEquals": operator.le,
    "GreaterThan": operator.gt,
    "GreaterThanEquals": operator.ge,
}

# base operator -> negated?
OPERATORS: dict[str, bool] = {
    "StringEquals": False,
    "StringNotEquals": True,
    "StringEqualsIgnoreCase": False,
    "StringNotEqualsIgnoreCase": True,
    "StringLike": False,
    "StringNotLike": True,
    **{f"Numeric{name}": name == "NotEquals" for name in _CMP},
    **{f"Date{name}": name == "NotEquals" for name in _CMP},
    "Bool": False,
    "BinaryEquals": False,
    "IpAddress": False,
    "NotIpAddress": True,
    "ArnEquals": False,
    "ArnLike": False,
    "ArnNotEquals": True,
    "ArnNotLike": True,
    "Null": False,
}

ANY, ALL = "any", "all"


def split_operator(name: str) -> tuple[str | None, str, bool] | None:
    """``ForAnyValue:StringLikeIfExists`` -> ("any", "StringLike", True); None if unknown."""
    mode: str | None = None
    if name.startswith("ForAnyValue:"):
        mode, name = ANY, name[len("ForAnyValue:") :]
    elif name.startswith("ForAllValues:"):
        mode, name = ALL, name[len("ForAllValues:") :]
    if_exists = name.endswith("IfExists")
    if if_exists:
        name = name[: -len("IfExists")]
    if name not in OPERATORS or (if_exists and name == "Null"):
        return None
    return mode, name, if_exists


def _family(base: str, raw: list[str], allow_vars: bool) -> _Family:
    if base in ("StringEquals", "StringNotEquals"):
        return _StringEquals(raw, allow_vars, fold=False)
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return _StringEquals(raw, allow_vars, fold=True)
    if base in ("StringLike", "StringNotLike"):
        return _Like(raw, allow_vars, arn_mode=False)
    if base.startswith("Arn"):
        return _Like(raw, allow_vars, arn_mode=True)
    if base.startswith("Numeric"):
        numbers = [n for n in map(_number, raw) if n is not None]
        return _Compare(numbers, _CMP[base[len("Numeric") :]], _number)
    if base.startswith("Date"):
        dates: list[float] = []
        for text in raw:
            when = parse_date(text)
            if when is None:
                raise ConditionLegacyError(text)
            dates.append(when)
        return _Compare(dates, _CMP[base[len("Date") :]], _ctx_date)
    if base == "Bool":
        return _Bool(raw)
    if base == "BinaryEquals":
        return _Binary(raw)
    if base in ("IpAddress", "NotIpAddress"):
        return _Ip(raw)
    raise AssertionError(base)  # pragma: no cover - OPERATORS and this function agree


class Condition:
    """One (operator, key) pair of a Condition block."""

    __slots__ = ("family", "if_exists", "key", "mode", "negated", "operator")

    def __init__(self, op: str, key: str, family: _Family, negated: bool, if_exists: bool, mode: str | None):
        self.operator = op
        self.key = key.lower()
        self.family = family
        self.negated = negated
        self.if_exists = if_exists
        self.mode = mode

    def test(self, ctx: Ctx) -> bool:
        value = ctx.get(self.key)
        multi = isinstance(value, _MULTI)
        if value is None or (multi and not value):
            if self.if_exists or self.mode == ALL:
                return True
            if self.mode == ANY:
                return False
            return self.negated
        match = self.family.match
        negated = self.negated
        if not multi:
            # One value: a set prefix changes nothing (a one-element set).
            return match(value, ctx) != negated
        if self.mode == ALL:
            return all(match(v, ctx) != negated for v in value)
        if self.mode == ANY:
            return any(match(v, ctx) != negated for v in value)
        return any(match(v, ctx) for v in value) != negated


class NullCondition(Condition):
    """``Null: {"key": "true"}`` — true iff the key is absent (``"false"``: iff present)."""

    __slots__ = ("expect_absent",)

    def __init__(self, op: str, key: str, raw: list[str]) -> None:
        super().__init__(op, key, _Bool(raw), False, False, None)
        self.expect_absent = frozenset(v.lower() == "true" for v in raw if v.lower() in ("true", "false"))

    def test(self, ctx: Ctx) -> bool:
        value = ctx.get(self.key)
        absent = value is None or (isinstance(value, _MULTI) and not value)
        return absent in self.expect_absent


def _values(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str):
            out.append(item)
        elif isinstance(item, int | float):
            out.append(str(item))
        else:
            raise ConditionSyntaxError(repr(item))
    return out


def compile_conditions(block: Any, *, allow_vars: bool) -> tuple[Condition, ...]:
    """Validate and compile a statement's Condition element."""
    if not isinstance(block, dict):
        raise ConditionSyntaxError("Condition must be an object")
    out: list[Condition] = []
    for op, keys in block.items():
        if not isinstance(keys, dict):
            raise ConditionSyntaxError(op)
        parsed = split_operator(op)
        if parsed is None:
            if keys:
                raise ConditionSyntaxError(op)
            continue  # IAM accepts an unknown operator with an empty block; it constrains nothing
        mode, base, if_exists = parsed
        for key, raw in keys.items():
            values = _values(raw)
            if base == "Null":
                out.append(NullCondition(op, key, values))
            else:
                family = _family(base, values, allow_vars)
                out.append(Condition(op, key, family, OPERATORS[base], if_exists, mode))
    return tuple(out)

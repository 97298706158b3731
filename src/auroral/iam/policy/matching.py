"""Wildcard matching for Action, Resource and the string/ARN condition operators.

IAM wildcards are ``*`` (any run of characters, possibly empty) and ``?`` (exactly one character).
Everything is compiled once per policy into a ``PatternSet``:

* ``match_all`` for ``"*"``,
* a ``frozenset`` of exact values (no wildcard) — one hash lookup,
* a tuple of prefixes for the common ``"rds:Describe*"`` shape — one ``str.startswith`` call,
* one anchored regex (an alternation) for everything else,
* templates with policy variables, resolved and compiled per request (the regex compile is cached).

Actions are case-insensitive: patterns are lower-cased here and the caller lower-cases the action once.
Resources are case-sensitive. For the ``Arn*`` condition operators the six colon-separated ARN parts are
matched separately: a ``*`` in the first five parts does not run past a ``:`` (``arn_mode``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from auroral.iam.policy.variables import Template, Var, Verbatim, context_text

_ARN_PARTS = 6


def _translate(pieces: Iterable[str | Verbatim], arn_mode: bool) -> str:
    out: list[str] = []
    colons = 0
    for piece in pieces:
        verbatim = isinstance(piece, Verbatim)
        text = piece.text if isinstance(piece, Verbatim) else piece
        for ch in text:
            bounded = arn_mode and colons < _ARN_PARTS - 1
            if ch == "*" and not verbatim:
                out.append("[^:]*" if bounded else ".*")
            elif ch == "?" and not verbatim:
                out.append("[^:]" if bounded else ".")
            else:
                if ch == ":":
                    colons += 1
                out.append(re.escape(ch))
    if arn_mode and colons < _ARN_PARTS - 1:
        # Fewer than six parts: AWS matches ARN operators part by part, so this value matches nothing.
        return "(?!)"
    return "".join(out)


def wildcard_regex(pieces: Iterable[str | Verbatim], *, arn_mode: bool = False) -> str:
    """The regex source (unanchored) of a wildcard pattern."""
    return _translate(pieces, arn_mode)


@lru_cache(maxsize=4096)
def _compile(source: str, flags: int) -> re.Pattern[str]:
    return re.compile(f"(?:{source})\\Z", flags)


def compile_alternation(sources: Sequence[str], *, ignore_case: bool = False) -> re.Pattern[str]:
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return _compile("|".join(f"(?:{s})" for s in sources), flags)


def _is_wild(text: str) -> bool:
    return "*" in text or "?" in text


class PatternSet:
    """A compiled list of wildcard patterns; ``matches(value, ctx)`` is true when any pattern matches."""

    __slots__ = ("arn_mode", "dynamic", "exact", "ignore_case", "match_all", "prefixes", "regex")

    def __init__(
        self,
        patterns: Iterable[str | Template],
        *,
        ignore_case: bool = False,
        arn_mode: bool = False,
    ) -> None:
        self.ignore_case = ignore_case
        self.arn_mode = arn_mode
        self.match_all = False
        exact: set[str] = set()
        prefixes: list[str] = []
        sources: list[str] = []
        dynamic: list[_Dynamic] = []
        for pattern in patterns:
            if not isinstance(pattern, str):
                dynamic.append(_Dynamic(pattern, ignore_case, arn_mode))
                continue
            if ignore_case:
                pattern = pattern.lower()
            if pattern == "*":
                self.match_all = True
            elif not _is_wild(pattern):
                if arn_mode:
                    sources.append(wildcard_regex([pattern], arn_mode=True))
                else:
                    exact.add(pattern)
            elif not arn_mode and pattern.endswith("*") and not _is_wild(pattern[:-1]):
                prefixes.append(pattern[:-1])
            else:
                sources.append(wildcard_regex([pattern], arn_mode=arn_mode))
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)
        self.regex = compile_alternation(sources) if sources else None
        self.dynamic = tuple(dynamic)

    def matches(self, value: str, ctx: Mapping[str, Any]) -> bool:
        """``value`` must already be lower-cased for an ``ignore_case`` set."""
        if self.match_all or value in self.exact:
            return True
        if self.prefixes and value.startswith(self.prefixes):
            return True
        if self.regex is not None and self.regex.match(value) is not None:
            return True
        if self.dynamic:
            return self.matches_dynamic(value, ctx)
        return False

    def matches_dynamic(self, value: str, ctx: Mapping[str, Any]) -> bool:
        for dynamic in self.dynamic:
            regex = dynamic.regex(ctx)
            if regex is not None and regex.match(value) is not None:
                return True
        return False

    @property
    def is_static(self) -> bool:
        return not self.dynamic


class _Dynamic:
    """A pattern holding policy variables. The regex for each combination of variable values is
    compiled once and kept (a few user names / tags per deployment); values are escaped, not wildcards."""

    __slots__ = ("arn_mode", "cache", "ignore_case", "template", "variables")

    def __init__(self, template: Template, ignore_case: bool, arn_mode: bool) -> None:
        self.template = template
        self.variables = tuple(p for p in template if isinstance(p, Var))
        self.ignore_case = ignore_case
        self.arn_mode = arn_mode
        self.cache: dict[tuple[str, ...], re.Pattern[str]] = {}

    def regex(self, ctx: Mapping[str, Any]) -> re.Pattern[str] | None:
        """None when a variable is missing and has no default: the pattern then matches nothing."""
        values: list[str] = []
        for var in self.variables:
            text = context_text(ctx.get(var.key))
            if text is None:
                if var.default is None:
                    return None
                text = var.default
            values.append(text)
        key = tuple(values)
        regex = self.cache.get(key)
        if regex is None:
            supply = iter(key)
            pieces: list[str | Verbatim] = []
            for piece in self.template:
                if isinstance(piece, Var):
                    pieces.append(Verbatim(next(supply)))
                else:
                    pieces.append(piece)
            if self.ignore_case:
                pieces = [Verbatim(p.text.lower()) if isinstance(p, Verbatim) else p.lower() for p in pieces]
            regex = compile_alternation([wildcard_regex(pieces, arn_mode=self.arn_mode)])
            if len(self.cache) >= 1024:
                self.cache.clear()
            self.cache[key] = regex
        return regex

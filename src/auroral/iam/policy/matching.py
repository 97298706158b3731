"""Wildcard matching for Action, Resource and the string/ARN condition operators.

IAM wildcards are ``*`` (any run of characters, possibly empty) and ``?`` (exactly one character).
Everything is compiled once per policy into a ``PatternSet``:

* ``match_all`` for ``"*"``,
* a ``frozenset`` of exact values (no wildcard) — one hash lookup,
* a tuple of prefixes for the common ``"rds:Describe*"`` shape — one ``str.startswith`` call,
* ``auroral.wildcard.Glob`` objects for everything else: linear-time matchers, never a regex (a
  backtracking regex such as ``.*a.*a.*a...X`` lets a policy author stall the server),
* templates with policy variables, resolved and compiled per request (bounded cache).

Actions are case-insensitive: patterns are lower-cased here and the caller lower-cases the action once.
Resources are case-sensitive. For the ``Arn*`` condition operators the six colon-separated ARN parts are
matched separately: a ``*`` in the first five parts does not run past a ``:`` (``arn_mode``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from auroral.iam.policy.variables import Template, Var, Verbatim, context_text
from auroral.wildcard import Glob, Token, literal_tokens, tokens

_ARN_PARTS = 6
_DYNAMIC_CACHE = 1024


class _Never:
    """An ARN pattern with fewer than six parts: AWS matches ARN operators part by part, so it
    matches nothing."""

    __slots__ = ()

    def match(self, value: str) -> bool:
        return False


class _ArnGlob:
    """Part-by-part ARN matching: the value's first five colons line up with the pattern's, the
    wildcards of the first five parts do not cross a colon, the sixth part is matched whole."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[Glob]) -> None:
        self.parts = tuple(parts)

    def match(self, value: str) -> bool:
        fields = value.split(":", _ARN_PARTS - 1)
        if len(fields) != _ARN_PARTS:
            return False
        return all(part.match(field) for part, field in zip(self.parts, fields, strict=True))


Matcher = Glob | _ArnGlob | _Never


def _pieces_tokens(pieces: Iterable[str | Verbatim]) -> list[Token]:
    out: list[Token] = []
    for piece in pieces:
        out.extend(literal_tokens(piece.text) if isinstance(piece, Verbatim) else tokens(piece))
    return out


def compile_pattern(pieces: Iterable[str | Verbatim], *, arn_mode: bool = False) -> Matcher:
    """A linear-time matcher for a wildcard pattern (``Verbatim`` pieces are literal text)."""
    items = _pieces_tokens(pieces)
    if not arn_mode:
        return Glob(items)
    parts: list[list[Token]] = [[]]
    for item in items:
        if item == ":" and len(parts) < _ARN_PARTS:
            parts.append([])
        else:
            parts[-1].append(item)
    if len(parts) < _ARN_PARTS:
        return _Never()
    return _ArnGlob([Glob(p) for p in parts])


def _is_wild(text: str) -> bool:
    return "*" in text or "?" in text


class PatternSet:
    """A compiled list of wildcard patterns; ``matches(value, ctx)`` is true when any pattern matches."""

    __slots__ = ("arn_mode", "dynamic", "exact", "globs", "ignore_case", "match_all", "prefixes")

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
        globs: list[Matcher] = []
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
                    globs.append(compile_pattern([pattern], arn_mode=True))
                else:
                    exact.add(pattern)
            elif not arn_mode and pattern.endswith("*") and not _is_wild(pattern[:-1]):
                prefixes.append(pattern[:-1])
            else:
                globs.append(compile_pattern([pattern], arn_mode=arn_mode))
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)
        self.globs = tuple(globs)
        self.dynamic = tuple(dynamic)

    def matches(self, value: str, ctx: Mapping[str, Any]) -> bool:
        """``value`` must already be lower-cased for an ``ignore_case`` set."""
        if self.match_all or value in self.exact:
            return True
        if self.prefixes and value.startswith(self.prefixes):
            return True
        for glob in self.globs:
            if glob.match(value):
                return True
        if self.dynamic:
            return self.matches_dynamic(value, ctx)
        return False

    def matches_dynamic(self, value: str, ctx: Mapping[str, Any]) -> bool:
        for dynamic in self.dynamic:
            matcher = dynamic.matcher(ctx)
            if matcher is not None and matcher.match(value):
                return True
        return False

    @property
    def is_static(self) -> bool:
        return not self.dynamic


class _Dynamic:
    """A pattern holding policy variables. The matcher for each combination of variable values is
    compiled once and kept (a few user names / tags per deployment; the cache is bounded); values are
    literal text, not wildcards."""

    __slots__ = ("arn_mode", "cache", "ignore_case", "template", "variables")

    def __init__(self, template: Template, ignore_case: bool, arn_mode: bool) -> None:
        self.template = template
        self.variables = tuple(p for p in template if isinstance(p, Var))
        self.ignore_case = ignore_case
        self.arn_mode = arn_mode
        self.cache: dict[tuple[str, ...], Matcher] = {}

    def matcher(self, ctx: Mapping[str, Any]) -> Matcher | None:
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
        matcher = self.cache.get(key)
        if matcher is None:
            supply = iter(key)
            pieces: list[str | Verbatim] = []
            for piece in self.template:
                if isinstance(piece, Var):
                    pieces.append(Verbatim(next(supply)))
                else:
                    pieces.append(piece)
            if self.ignore_case:
                pieces = [Verbatim(p.text.lower()) if isinstance(p, Verbatim) else p.lower() for p in pieces]
            matcher = compile_pattern(pieces, arn_mode=self.arn_mode)
            if len(self.cache) >= _DYNAMIC_CACHE:
                self.cache.clear()
            self.cache[key] = matcher
        return matcher

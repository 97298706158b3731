"""Policy variables: ``${aws:username}``, defaults ``${aws:PrincipalTag/team, 'none'}``, escapes ``${*}``.

A policy string that holds variables is parsed once, at policy compile time, into a ``Template``: a
tuple of pieces. A ``str`` piece is policy text (its ``*`` and ``?`` are wildcards where the element
allows them); a ``Verbatim`` piece is text that must be matched literally — an escape (``${*}``,
``${?}``, ``${$}``) or, after ``resolve``, the value of a variable, so a user named ``a*`` does not
gain a wildcard. A ``Var`` piece is looked up in the request context at evaluation time.

Variables are only recognised in documents with ``"Version": "2012-10-17"``; the parser of an older
document never calls ``parse_template``, so ``${...}`` stays plain text there, as in AWS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# ``key`` or ``key, 'default'`` (AWS's syntax for defaults; the default is in single quotes).
_VAR_BODY = re.compile(r"\s*([^\s,'}]+)\s*(?:,\s*'([^']*)'\s*)?")
_ESCAPES = frozenset({"*", "?", "$"})


@dataclass(frozen=True, slots=True)
class Verbatim:
    """Text that matches itself only: wildcard characters in it are not wildcards."""

    text: str


@dataclass(frozen=True, slots=True)
class Var:
    key: str  # lower-cased: context lookups are case-insensitive
    default: str | None


Piece = str | Verbatim | Var
Template = tuple[Piece, ...]
Resolved = tuple[str | Verbatim, ...]


def _references(text: str) -> list[tuple[int, int]]:
    """Spans of ``${...}``: each ``${`` up to the first ``}`` after it. Found with ``str.find`` (the
    regex ``\\$\\{([^}]*)\\}`` rescans the rest of the string from every ``${`` that has no ``}``:
    quadratic in a long policy string)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while True:
        start = text.find("${", pos)
        if start < 0:
            return spans
        close = text.find("}", start + 2)
        if close < 0:
            return spans  # no later ``${`` can close either
        spans.append((start, close + 1))
        pos = close + 1


def parse_template(text: str) -> Template | None:
    """Split ``text`` into pieces, or return None when it holds no variable or escape (the fast path:
    callers then use the plain string)."""
    if "${" not in text:
        return None
    pieces: list[Piece] = []
    pos = 0
    for start, end in _references(text):
        body = text[start + 2 : end - 1]
        piece: Piece | None = None
        if body.strip() in _ESCAPES:
            piece = Verbatim(body.strip())
        else:
            vm = _VAR_BODY.fullmatch(body)
            if vm is not None:
                piece = Var(vm.group(1).lower(), vm.group(2))
        if piece is None:
            continue  # not a variable: left in the surrounding text, literally
        if start > pos:
            pieces.append(text[pos:start])
        pieces.append(piece)
        pos = end
    if not pieces:
        return None
    if pos < len(text):
        pieces.append(text[pos:])
    return tuple(pieces)


def context_text(value: object) -> str | None:
    """A single-valued context value as the string IAM compares (None for multi-valued / unsupported)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def resolve(template: Template, ctx: Mapping[str, Any]) -> Resolved | None:
    """Substitute the variables from ``ctx`` (lower-cased keys). None when a variable is missing and has
    no default: AWS then treats the value holding it as not matching."""
    out: list[str | Verbatim] = []
    for piece in template:
        if isinstance(piece, Var):
            text = context_text(ctx.get(piece.key))
            if text is None:
                if piece.default is None:
                    return None
                text = piece.default
            out.append(Verbatim(text))
        else:
            out.append(piece)
    return tuple(out)


def resolved_text(pieces: Resolved) -> str:
    """The plain string of resolved pieces (for operators without wildcards)."""
    return "".join(p.text if isinstance(p, Verbatim) else p for p in pieces)

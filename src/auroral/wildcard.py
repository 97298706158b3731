"""Wildcard matching without backtracking: ``*`` (any run of characters) and ``?`` (one character).

IAM policies (Action, Resource, StringLike, the Arn operators) and EC2 filters use these wildcards on
text that callers control, so a regex translation (``.*a.*a.*a...X``) is a denial-of-service lever:
a backtracking engine takes time exponential in the number of stars. Here a pattern is cut at its
stars into fixed-length segments and matched greedily:

* the first segment must sit at the start and the last at the end of the value;
* each middle segment is taken at its leftmost occurrence after the previous one. That is enough —
  a later occurrence only leaves less room for what follows — so nothing is ever retried.

A segment without ``?`` is found with ``str.find`` (C speed). A segment with ``?`` is found by
anchoring its longest literal run with ``str.find`` and then, if that first candidate fails, scanning
with the bit-parallel Shift-And algorithm (one pass, the state a Python int with a bit per position
of the segment). Successive segments search disjoint stretches of the value, so a match walks each
character of the value in Python at most once (only inside ``?`` segments, and only where partial
matches are alive) and never retries a split: linear in the value, times the segment's bit-width for
the Shift-And steps. Literal ``?`` and ``*`` (from ``${?}``-style escapes or policy variable values)
are text, not wildcards: callers build patterns from ``Token`` sequences.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

STAR: Final = 0  # token: any run of characters
ANY: Final = 1  # token: exactly one character
Token = str | int  # a one-character literal, STAR or ANY


def tokens(text: str) -> list[Token]:
    """``text`` with ``*`` and ``?`` as wildcards."""
    return [STAR if ch == "*" else ANY if ch == "?" else ch for ch in text]


def literal_tokens(text: str) -> list[Token]:
    """``text`` matched literally (its ``*`` and ``?`` included)."""
    return list(text)


class _Segment:
    """A fixed-length run of literal characters and ``?``: ``chunks`` are (offset, literal text)."""

    __slots__ = ("_masks", "anchor", "chunks", "length", "literal")

    def __init__(self, items: Sequence[Token]) -> None:
        self.length = len(items)
        chunks: list[tuple[int, str]] = []
        run: list[str] = []
        for i, item in enumerate(items):
            if isinstance(item, str):
                run.append(item)
                continue
            if run:
                chunks.append((i - len(run), "".join(run)))
                run = []
        if run:
            chunks.append((self.length - len(run), "".join(run)))
        self.chunks = tuple(chunks)
        # The whole segment when it has no ``?``: str.find / startswith do all the work.
        self.literal = chunks[0][1] if len(chunks) == 1 and len(chunks[0][1]) == self.length else None
        self.anchor = max(chunks, key=lambda c: len(c[1])) if chunks else None
        self._masks: tuple[dict[str, int], int] | None = None

    def at(self, value: str, pos: int) -> bool:
        """Does the segment match ``value`` at ``pos`` (the caller checked the length fits)?"""
        return all(value.startswith(text, pos + offset) for offset, text in self.chunks)

    def find(self, value: str, pos: int, end: int) -> int:
        """The leftmost ``p >= pos`` where the segment matches inside ``value[:end]``, or -1."""
        last = end - self.length  # the last start that fits
        if last < pos:
            return -1
        if self.literal is not None:
            return value.find(self.literal, pos, end)
        anchor = self.anchor
        if anchor is None:  # only ``?``
            return pos
        offset, text = anchor
        hit = value.find(text, pos + offset, last + offset + len(text))
        if hit < 0:
            return -1
        start = hit - offset
        if self.at(value, start):
            return start
        return self._scan(value, start + 1, end)

    def _scan(self, value: str, pos: int, end: int) -> int:
        """Shift-And from ``pos``: bit ``j`` of ``state`` says the segment's first ``j + 1`` positions
        match the text ending at ``i``. While no partial match is alive, jump to the next occurrence of
        the anchor (str.find), so only stretches dense with near-matches are walked in Python."""
        masks, wild = self._tables()
        length = self.length
        accept = 1 << (length - 1)
        assert self.anchor is not None
        offset, text = self.anchor
        limit = end - length + offset + len(text)  # an anchor ending past this cannot lead to a match
        get = masks.get
        state = 0
        i = pos
        while i < end:
            if not state:
                hit = value.find(text, i + offset, limit)
                if hit < 0:
                    return -1
                i = max(i, hit - offset)
            state = ((state << 1) | 1) & get(value[i], wild)
            if state & accept:
                return i - length + 1
            i += 1
        return -1

    def _tables(self) -> tuple[dict[str, int], int]:
        """Per character, the positions it can fill (its literal positions and every ``?``)."""
        if self._masks is None:
            wild = (1 << self.length) - 1
            for offset, text in self.chunks:
                wild &= ~(((1 << len(text)) - 1) << offset)
            masks: dict[str, int] = {}
            for offset, text in self.chunks:
                for k, ch in enumerate(text):
                    masks[ch] = masks.get(ch, wild) | (1 << (offset + k))
            self._masks = (masks, wild)
        return self._masks


class Glob:
    """One wildcard pattern, matched in a single left-to-right pass."""

    __slots__ = ("first", "head", "last", "literal_middle", "middle", "minimum", "starred", "tail")

    def __init__(self, pattern: Iterable[Token]) -> None:
        parts: list[list[Token]] = [[]]
        for token in pattern:
            if token == STAR:
                if parts[-1] or len(parts) == 1:
                    parts.append([])
                continue
            parts[-1].append(token)
        segments = [_Segment(p) for p in parts]
        self.starred = len(segments) > 1
        self.first = segments[0]
        self.last = segments[-1]
        self.middle = tuple(s for s in segments[1:-1] if s.length)
        self.minimum = sum(s.length for s in segments)
        # Fast paths for the usual shapes (no ``?``): str.startswith / endswith / find only.
        self.head = self.first.literal if self.first.length else ""
        self.tail = self.last.literal if self.last.length else ""
        literal = tuple(s.literal for s in self.middle if s.literal is not None)
        self.literal_middle = literal if len(literal) == len(self.middle) else None

    def match(self, value: str) -> bool:
        n = len(value)
        if n < self.minimum:
            return False
        first = self.first
        if not self.starred:
            return n == first.length and first.at(value, 0)
        head, tail, last = self.head, self.tail, self.last
        end = n - last.length
        if head is not None:
            if not value.startswith(head):
                return False
        elif not first.at(value, 0):
            return False
        if tail is not None:
            if not value.endswith(tail):
                return False
        elif not last.at(value, end):
            return False
        pos = first.length
        literal = self.literal_middle
        if literal is not None:
            for text in literal:
                pos = value.find(text, pos, end)
                if pos < 0:
                    return False
                pos += len(text)
            return True
        for segment in self.middle:
            found = segment.find(value, pos, end)
            if found < 0:
                return False
            pos = found + segment.length
        return True


def compile_glob(text: str) -> Glob:
    return Glob(tokens(text))


def glob_match(pattern: str, value: str) -> bool:
    """``value`` matches ``pattern`` (``*`` and ``?`` wildcards, case-sensitive)."""
    return compile_glob(pattern).match(value)

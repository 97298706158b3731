"""The protocol layer's view of HTTP: one immutable request, one response.

The server adapts its framework's request into :class:`HttpRequest`; header lookup is
case-insensitive whatever mapping the server hands in (a lower-cased copy is built once, lazily).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes = b""

    @cached_property
    def _lower_headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup; ``name`` may be in any case."""
        return self._lower_headers.get(name.lower())


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup in any mapping (fast path for exact and lower-case keys)."""
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    value = headers.get(lower)
    if value is not None:
        return value
    for key, val in headers.items():
        if key.lower() == lower:
            return val
    return None

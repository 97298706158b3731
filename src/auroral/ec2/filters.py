"""EC2 ``Filters``: every filter must match (AND); within a filter any value may match (OR);
values may use ``*`` and ``?`` wildcards (matched in linear time by ``auroral.wildcard``, never by a
backtracking regex: the values are the caller's text). Each Describe operation names its filters as
functions from a resource to the strings it offers; ``tag:<key>`` and ``tag-key`` work everywhere."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from auroral.ec2 import errors
from auroral.ec2.model import Resource
from auroral.wildcard import Glob, compile_glob

R = TypeVar("R", bound=Resource)
Getter = Callable[[R], Iterable[str]]


@lru_cache(maxsize=1024)
def _pattern(value: str) -> Glob:
    return compile_glob(value)


def matches(offered: Iterable[str], wanted: Sequence[str]) -> bool:
    return any(_pattern(w).match(o) for o in offered for w in wanted)


def _tag_value(key: str) -> Callable[[Resource], list[str]]:
    return lambda item: [item.tags[key]] if key in item.tags else []


def text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def apply(items: Iterable[R], filters: Sequence[Mapping[str, Any]] | None, getters: Mapping[str, Getter[R]]) -> list[R]:
    checks: list[tuple[Callable[[R], Iterable[str]], list[str]]] = []
    for f in filters or []:
        name = str(f.get("Name") or "")
        values = [str(v) for v in f.get("Values") or []]
        if name.startswith("tag:"):
            checks.append((_tag_value(name[4:]), values))
        elif name == "tag-key":
            checks.append((lambda item: list(item.tags), values))
        elif name in getters:
            checks.append((getters[name], values))
        else:
            raise errors.invalid(f"The filter '{name}' is invalid")
    return [item for item in items if all(matches(get(item), wanted) for get, wanted in checks)]


def by_ids(items: Iterable[R], ids: Sequence[str] | None, kind: str) -> list[R]:
    """Restrict to the given IDs (in store order); an unknown ID is EC2's NotFound error."""
    listed = list(items)
    if not ids:
        return listed
    known = {item.id for item in listed}
    for resource_id in ids:
        if resource_id not in known:
            raise errors.not_found(kind, resource_id)
    wanted = set(ids)
    return [item for item in listed if item.id in wanted]

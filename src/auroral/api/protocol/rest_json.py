"""The ``rest-json`` protocol (Security Hub): the operation is the HTTP method and the path, members
travel in the URI, the query string, headers or a JSON body, as each member's ``location`` says.

Routing is a table built once per service from the model's ``requestUri`` templates: literal segments
must match exactly, ``{Label}`` takes one segment and ``{Label+}`` (greedy) the rest of the path, so a
request costs one comparison per route segment (no regular expression over user text). Located
members are top-level only (the model never locates nested ones). Body members are decoded by the
``json`` protocol's decoder, so type errors read alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, unquote

import botocore.model

from .models import service_model
from .scalars import InputTypeError, parse_bool, parse_float, parse_int, parse_timestamp


@dataclass(frozen=True)
class Route:
    method: str
    segments: tuple[str, ...]  # literal text, "{Name}" or "{Name+}"
    query: tuple[tuple[str, str], ...]  # literal query pairs of the requestUri (e.g. ?tagging)
    operation: str


def _split(uri: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    path, _, query = uri.partition("?")
    segments = tuple(s for s in path.split("/") if s)
    pairs = tuple((k, v) for k, v in parse_qsl(query, keep_blank_values=True))
    return segments, pairs


@cache
def routes(service: str) -> tuple[Route, ...]:
    """Every operation's route; literal-rich routes first, so ``/standards/get`` wins over a label."""
    model = service_model(service)
    out = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        segments, query = _split(str(http.get("requestUri", "/")))
        out.append(Route(str(http.get("method", "POST")).upper(), segments, query, name))

    def rank(r: Route) -> tuple[int, int, int]:
        literals = sum(1 for s in r.segments if not s.startswith("{"))
        greedy = any(s.endswith("+}") for s in r.segments)
        return (-literals, int(greedy), -len(r.segments))

    return tuple(sorted(out, key=rank))


def match(service: str, method: str, path: str, query: str) -> tuple[str, dict[str, str]] | None:
    """The operation a request names and its URI labels (percent-decoded), or None."""
    parts = [p for p in path.split("/") if p]
    pairs = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    for route in routes(service):
        if route.method != method.upper():
            continue
        labels = _match_segments(route.segments, parts)
        if labels is None:
            continue
        if any(pairs.get(k) != v for k, v in route.query):
            continue
        return route.operation, labels
    return None


def _match_segments(segments: tuple[str, ...], parts: list[str]) -> dict[str, str] | None:
    labels: dict[str, str] = {}
    for i, seg in enumerate(segments):
        if seg.startswith("{") and seg.endswith("+}"):
            rest = parts[i:]
            if not rest:
                return None
            labels[seg[1:-2]] = unquote("/".join(rest))
            return labels if i == len(segments) - 1 else None
        if i >= len(parts):
            return None
        if seg.startswith("{") and seg.endswith("}"):
            labels[seg[1:-1]] = unquote(parts[i])
        elif seg != parts[i]:
            return None
    return labels if len(parts) == len(segments) else None


def located_members(shape: botocore.model.StructureShape) -> dict[str, tuple[str, str]]:
    """Top-level members carried outside the body: member name -> (location, wire name)."""
    out = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        if location:
            out[name] = (str(location), str(member.serialization.get("name", name)))
    return out


def scalar(member: botocore.model.Shape, raw: str, path: str) -> Any:
    """A URI, query-string or header value as its modelled type."""
    kind = member.type_name
    if kind in ("integer", "long"):
        return parse_int(raw, path)
    if kind == "boolean":
        return parse_bool(raw, path)
    if kind in ("float", "double"):
        return parse_float(raw, path)
    if kind == "timestamp":
        return parse_timestamp(raw, path)
    if kind == "string":
        return raw
    raise InputTypeError(path, raw, kind)


def decode_located(shape: botocore.model.StructureShape, labels: dict[str, str], query: str,
                   header: Any) -> dict[str, Any]:
    """The located members' values (URI labels, query string, headers)."""
    pairs = parse_qsl(query, keep_blank_values=True) if query else []
    out: dict[str, Any] = {}
    for name, (location, wire) in located_members(shape).items():
        member = shape.members[name]
        if location == "uri":
            if wire in labels:
                out[name] = scalar(member, labels[wire], name)
        elif location == "querystring":
            values = [v for k, v in pairs if k == wire]
            if not values:
                continue
            if member.type_name == "list":
                assert isinstance(member, botocore.model.ListShape)
                out[name] = [scalar(member.member, v, name) for v in values]
            else:
                out[name] = scalar(member, values[0], name)
        elif location == "header":
            value = header(wire)
            if value is not None:
                out[name] = scalar(member, value, name)
    return out

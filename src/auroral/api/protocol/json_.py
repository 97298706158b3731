"""The ``json`` protocol (awsJson1_1): JSON bodies in, JSON bodies out.

Decoding checks every value's JSON type against the shape (AWS answers ``SerializationException`` when
it does not fit) and converts timestamps and blobs; encoding turns handler values into JSON-ready
objects, timestamps as epoch seconds unless the shape says otherwise, blobs as base64.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .models import ShapeInfo
from .scalars import InputTypeError, b64, format_timestamp, parse_blob, parse_timestamp


def decode(shape: ShapeInfo, value: Any, path: str) -> Any:
    kind = shape.type
    if kind == "structure":
        if not isinstance(value, dict):
            raise InputTypeError(path, value, "a structure")
        out: dict[str, Any] = {}
        names = shape.json_in
        for key, item in value.items():
            member = names.get(key)
            if member is not None and item is not None:
                out[member.name] = decode(member.shape, item, f"{path}.{key}" if path else key)
        return out
    if kind == "list":
        if not isinstance(value, list):
            raise InputTypeError(path, value, "a list")
        assert shape.member is not None
        element = shape.member
        return [decode(element, item, f"{path}.{i}") for i, item in enumerate(value, 1) if item is not None]
    if kind == "map":
        if not isinstance(value, dict):
            raise InputTypeError(path, value, "a map")
        assert shape.value is not None
        vshape = shape.value
        return {k: decode(vshape, v, f"{path}.{k}") for k, v in value.items() if v is not None}
    if kind == "string":
        if not isinstance(value, str):
            raise InputTypeError(path, value, "a string")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputTypeError(path, value, "an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise InputTypeError(path, value, "an integer")
            return int(value)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InputTypeError(path, value, "a boolean")
        return value
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InputTypeError(path, value, "a number")
        if isinstance(value, str) and value not in ("NaN", "Infinity", "-Infinity"):
            raise InputTypeError(path, value, "a number")
        return float(value)
    if kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InputTypeError(path, value, "a timestamp")
        return parse_timestamp(value, path)
    if kind == "blob":
        if not isinstance(value, str):
            raise InputTypeError(path, value, "base64-encoded binary data")
        return parse_blob(value, path)
    return value


def encode(shape: ShapeInfo, value: Any, strict: bool) -> Any:
    kind = shape.type
    if kind == "structure":
        if strict:
            unknown = set(value) - shape.members.keys()
            if unknown:
                raise ValueError(f"{shape.name} has no members {sorted(unknown)}")
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            item = value.get(name)
            if item is not None:
                out[member.location_name or name] = encode(member.shape, item, strict)
        return out
    if kind == "list":
        assert shape.member is not None
        mshape = shape.member
        return [encode(mshape, item, strict) for item in value if item is not None]
    if kind == "map":
        assert shape.value is not None
        vshape = shape.value
        return {str(k): encode(vshape, v, strict) for k, v in value.items() if v is not None}
    if kind == "string":
        return value if isinstance(value, str) else str(value)
    if kind == "timestamp":
        return format_timestamp(value, shape.timestamp_format, "unixtimestamp")
    if kind == "blob":
        return b64(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind == "boolean":
        return bool(value)
    if kind in ("float", "double"):
        f = float(value)
        if f != f:
            return "NaN"
        if f in (float("inf"), float("-inf")):
            return "Infinity" if f > 0 else "-Infinity"
        return f
    return value


def dumps(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

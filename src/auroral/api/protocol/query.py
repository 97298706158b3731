"""The ``query`` and ``ec2`` protocols: form-encoded requests, XML responses.

Requests: the flat ``A.B.member.1.C=v`` pairs are first folded into a tree keyed by dotted segments,
then the input shape is walked over that tree, so every key is looked at once and lists are rebuilt
in index order. The two protocols differ only in names: query uses ``locationName`` and ``member``/
``entry`` wrappers; ec2 uses ``queryName`` or the capitalised ``locationName`` and bare indexes.

Responses: the output shape is walked and XML text is appended to one list (no DOM), following the
names botocore's parsers expect (``locationName``, list member names, flattened lists and maps).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .models import ShapeInfo
from .scalars import (
    InputTypeError,
    b64,
    float_text,
    format_timestamp,
    parse_blob,
    parse_bool,
    parse_float,
    parse_int,
    parse_timestamp,
    xml_escape,
)

_VALUE = "\x00"  # key of a tree node's own value; cannot appear in a dotted segment we care about

Tree = dict[str, Any]


def build_tree(pairs: Iterable[tuple[str, str]]) -> Tree:
    root: Tree = {}
    for key, value in pairs:
        node = root
        for part in key.split("."):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            node = child
        node[_VALUE] = value
    return root


def _indexed(node: Tree) -> list[Any]:
    items = [(int(k), v) for k, v in node.items() if k.isdigit()]
    items.sort(key=lambda kv: kv[0])
    return [v for _, v in items]


def decode(shape: ShapeInfo, node: Tree, path: str, ec2: bool) -> Any:
    kind = shape.type
    if kind == "structure":
        names = shape.ec2_in if ec2 else shape.query_in
        out: dict[str, Any] = {}
        for wire, child in node.items():
            member = names.get(wire)
            if member is not None:
                out[member.name] = decode(member.shape, child, f"{path}.{wire}" if path else wire, ec2)
        return out
    if kind == "list":
        assert shape.member is not None
        items = node if ec2 or shape.flattened else node.get(shape.member_name or "member", {})
        element = shape.member
        return [decode(element, item, f"{path}.{i}", ec2) for i, item in enumerate(_indexed(items), 1)]
    if kind == "map":
        assert shape.key is not None and shape.value is not None
        entries = node if shape.flattened else node.get("entry", {})
        key_name, value_name = shape.key_name or "key", shape.value_name or "value"
        result: dict[Any, Any] = {}
        for i, entry in enumerate(_indexed(entries), 1):
            if key_name not in entry:
                raise InputTypeError(f"{path}.{i}.{key_name}", None, "a map key")
            k = decode(shape.key, entry[key_name], f"{path}.{i}.{key_name}", ec2)
            v = entry.get(value_name)
            result[k] = None if v is None else decode(shape.value, v, f"{path}.{i}.{value_name}", ec2)
        return result
    raw = node.get(_VALUE)
    if raw is None:
        raise InputTypeError(path, None, f"a value of type {kind}")
    return decode_scalar(kind, raw, path)


def decode_scalar(kind: str, raw: str, path: str) -> Any:
    if kind == "string":
        return raw
    if kind in ("integer", "long"):
        return parse_int(raw, path)
    if kind == "boolean":
        return parse_bool(raw, path)
    if kind in ("float", "double"):
        return parse_float(raw, path)
    if kind == "timestamp":
        return parse_timestamp(raw, path)
    if kind == "blob":
        return parse_blob(raw, path)
    return raw


# --- responses -------------------------------------------------------------------------------


def query_response(
    op_name: str,
    namespace: str,
    wrapper: str | None,
    shape: ShapeInfo | None,
    output: Mapping[str, Any],
    request_id: str,
    strict: bool,
) -> bytes:
    parts = [f'<{op_name}Response xmlns="{xml_escape(namespace)}">']
    if shape is not None:
        if wrapper:
            parts.append(f"<{wrapper}>")
        _structure(parts, shape, output, False, strict)
        if wrapper:
            parts.append(f"</{wrapper}>")
    parts.append(f"<ResponseMetadata><RequestId>{xml_escape(request_id)}</RequestId></ResponseMetadata>")
    parts.append(f"</{op_name}Response>")
    return "".join(parts).encode()


def ec2_response(
    op_name: str,
    namespace: str,
    shape: ShapeInfo | None,
    output: Mapping[str, Any],
    request_id: str,
    strict: bool,
) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<{op_name}Response xmlns="{xml_escape(namespace)}">',
        f"<requestId>{xml_escape(request_id)}</requestId>",
    ]
    if shape is not None:
        _structure(parts, shape, output, True, strict)
    parts.append(f"</{op_name}Response>")
    return "".join(parts).encode()


def _structure(parts: list[str], shape: ShapeInfo, value: Mapping[str, Any], ec2: bool, strict: bool) -> None:
    if strict:
        unknown = set(value) - shape.members.keys()
        if unknown:
            raise ValueError(f"{shape.name} has no members {sorted(unknown)}")
    for member, tag in shape.xml_out:
        v = value.get(member.name)
        if v is None:
            continue
        mshape = member.shape
        if mshape.flattened and mshape.type == "list":
            assert mshape.member is not None
            for item in v:
                if item is not None:
                    parts.append(f"<{tag}>")
                    _value(parts, mshape.member, item, ec2, strict)
                    parts.append(f"</{tag}>")
        elif mshape.flattened and mshape.type == "map":
            for k, item in v.items():
                parts.append(f"<{tag}>")
                _map_entry(parts, mshape, k, item, ec2, strict)
                parts.append(f"</{tag}>")
        else:
            parts.append(f"<{tag}>")
            _value(parts, mshape, v, ec2, strict)
            parts.append(f"</{tag}>")


def _map_entry(parts: list[str], shape: ShapeInfo, key: Any, item: Any, ec2: bool, strict: bool) -> None:
    assert shape.key is not None and shape.value is not None
    kn, vn = shape.key_name or "key", shape.value_name or "value"
    parts.append(f"<{kn}>")
    _value(parts, shape.key, key, ec2, strict)
    parts.append(f"</{kn}>")
    if item is not None:
        parts.append(f"<{vn}>")
        _value(parts, shape.value, item, ec2, strict)
        parts.append(f"</{vn}>")


def _value(parts: list[str], shape: ShapeInfo, value: Any, ec2: bool, strict: bool) -> None:
    kind = shape.type
    if kind == "string":
        parts.append(xml_escape(value if isinstance(value, str) else str(value)))
    elif kind == "structure":
        _structure(parts, shape, value, ec2, strict)
    elif kind == "list":
        assert shape.member is not None
        tag = shape.member_name or ("item" if ec2 else "member")
        for item in value:
            if item is not None:
                parts.append(f"<{tag}>")
                _value(parts, shape.member, item, ec2, strict)
                parts.append(f"</{tag}>")
    elif kind == "map":
        for k, item in value.items():
            parts.append("<entry>")
            _map_entry(parts, shape, k, item, ec2, strict)
            parts.append("</entry>")
    else:
        parts.append(xml_scalar(kind, shape, value))


def xml_scalar(kind: str, shape: ShapeInfo, value: Any) -> str:
    if kind == "boolean":
        return "true" if value else "false"
    if kind in ("integer", "long"):
        return str(int(value))
    if kind in ("float", "double"):
        return float_text(value)
    if kind == "timestamp":
        return str(format_timestamp(value, shape.timestamp_format, "iso8601"))
    if kind == "blob":
        return b64(value)
    return xml_escape(str(value))

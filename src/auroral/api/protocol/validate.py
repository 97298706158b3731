"""Input validation against the model's constraints, rendered the way each AWS service does.

``coral`` (IAM, STS, Secrets Manager, KMS, CloudTrail): every violated constraint is listed in one
message, ``N validation error(s) detected: Value '<v>' at '<path>' failed to satisfy constraint: ...``,
paths in Coral's form (``tags.1.member.key``: member names with a lower-case first letter). Values of
sensitive shapes and blobs are never echoed (``Value at '<path>'``).

``missing`` (RDS, EC2): only required members are checked here; the first absent one becomes
``MissingParameter: The request must contain the parameter <WireName>``. These services' other checks
are semantic and belong to their handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auroral.errors import AwsError

from .models import MemberInfo, ShapeInfo


def validate(style: str, error_code: str, shape: ShapeInfo, value: Mapping[str, Any], ec2: bool) -> None:
    """Raise the service's validation error if ``value`` violates ``shape``'s constraints."""
    if style == "coral":
        errors: list[str] = []
        _structure(shape, value, "", errors)
        if errors:
            n = len(errors)
            plural = "s" if n > 1 else ""
            raise AwsError(error_code, f"{n} validation error{plural} detected: " + "; ".join(errors), 400)
    else:
        missing = _first_missing(shape, value, "", ec2)
        if missing is not None:
            raise AwsError("MissingParameter", f"The request must contain the parameter {missing}", 400)


# --- coral ------------------------------------------------------------------------------------


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _structure(shape: ShapeInfo, value: Mapping[str, Any], path: str, errors: list[str]) -> None:
    prefix = f"{path}." if path else ""
    for name in shape.required:
        if value.get(name) is None:
            errors.append(
                f"Value null at '{prefix}{_lower_first(name)}' failed to satisfy constraint: "
                "Member must not be null"
            )
    members = shape.members
    for name, item in value.items():
        member = members.get(name)
        if member is not None and item is not None:
            _check(member.shape, item, prefix + _lower_first(name), errors)


def _number(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)


def _render(shape: ShapeInfo, value: Any) -> str | None:
    if shape.sensitive or shape.type == "blob":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(str(_render(shape.member, v) if shape.member else v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={v}" for k, v in value.items()) + "}"
    return str(value)


def _fail(shape: ShapeInfo, value: Any, path: str, constraint: str, errors: list[str]) -> None:
    rendered = _render(shape, value)
    where = f"Value at '{path}'" if rendered is None else f"Value '{rendered}' at '{path}'"
    errors.append(f"{where} failed to satisfy constraint: {constraint}")


def _check(shape: ShapeInfo, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type
    if kind == "structure":
        _structure(shape, value, path, errors)
        return
    if kind in ("string", "blob", "list", "map"):
        size = len(value)
        if shape.min is not None and size < shape.min:
            _fail(
                shape,
                value,
                path,
                f"Member must have length greater than or equal to {_number(shape.min)}",
                errors,
            )
        if shape.max is not None and size > shape.max:
            _fail(
                shape,
                value,
                path,
                f"Member must have length less than or equal to {_number(shape.max)}",
                errors,
            )
        if kind == "string":
            if shape.enum is not None and value not in shape.enum_set:
                _fail(
                    shape,
                    value,
                    path,
                    f"Member must satisfy enum value set: [{', '.join(shape.enum)}]",
                    errors,
                )
            if shape.regex is not None and shape.regex.fullmatch(value) is None:
                _fail(
                    shape,
                    value,
                    path,
                    f"Member must satisfy regular expression pattern: {shape.pattern}",
                    errors,
                )
        elif kind == "list":
            assert shape.member is not None
            for i, item in enumerate(value, 1):
                if item is not None:
                    _check(shape.member, item, f"{path}.{i}.member", errors)
        elif kind == "map":
            assert shape.key is not None and shape.value is not None
            for k, item in value.items():
                _check(shape.key, k, f"{path}.{k}.key", errors)
                if item is not None:
                    _check(shape.value, item, f"{path}.{k}.value", errors)
    elif kind in ("integer", "long", "float", "double"):
        if shape.min is not None and value < shape.min:
            _fail(
                shape,
                value,
                path,
                f"Member must have value greater than or equal to {_number(shape.min)}",
                errors,
            )
        if shape.max is not None and value > shape.max:
            _fail(
                shape,
                value,
                path,
                f"Member must have value less than or equal to {_number(shape.max)}",
                errors,
            )


# --- missing ----------------------------------------------------------------------------------


def _wire_name(member: MemberInfo, ec2: bool) -> str:
    if not ec2:
        return member.location_name or member.name
    if member.query_name:
        return member.query_name
    if member.location_name:
        return member.location_name[0].upper() + member.location_name[1:]
    return member.name


def _first_missing(shape: ShapeInfo, value: Mapping[str, Any], path: str, ec2: bool) -> str | None:
    prefix = f"{path}." if path else ""
    for name in shape.required:
        if value.get(name) is None:
            return prefix + _wire_name(shape.members[name], ec2)
    for name, item in value.items():
        member = shape.members.get(name)
        if member is None or item is None:
            continue
        found = _missing_in(member.shape, item, prefix + _wire_name(member, ec2), ec2)
        if found is not None:
            return found
    return None


def _missing_in(shape: ShapeInfo, value: Any, path: str, ec2: bool) -> str | None:
    if shape.type == "structure":
        return _first_missing(shape, value, path, ec2)
    if shape.type == "list" and shape.member is not None and shape.member.type == "structure":
        inner = path if ec2 or shape.flattened else f"{path}.{shape.member_name or 'member'}"
        for i, item in enumerate(value, 1):
            if item is not None:
                found = _first_missing(shape.member, item, f"{inner}.{i}", ec2)
                if found is not None:
                    return found
    return None

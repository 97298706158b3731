"""botocore's service models, compiled once into small plain objects for the hot path.

botocore's ``Shape`` objects are convenient but build dictionaries on access; the codecs walk
:class:`ShapeInfo` trees instead, which carry exactly what parsing, validation and serialization
need (type, members with their wire names, constraints). One tree per (service, shape, traits),
built lazily on first use and kept for the life of the process.

Member-level traits (``locationName``, ``queryName``) live on :class:`MemberInfo` because the same
shape can be referenced under different names; shape-level traits that botocore lets a member
reference override (``flattened``, ``timestampFormat``) are part of the memo key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import botocore.model
import botocore.session

from auroral.errors import AwsError

PROTOCOLS = ("query", "ec2", "json", "rest-json")

# How each service rejects invalid input. Coral services (IAM, STS and the json services) check every
# modelled constraint and answer with one ValidationError/ValidationException listing them; RDS and EC2
# check only for missing parameters at this layer (their handlers own the semantic checks).
_VALIDATION_STYLE_OVERRIDES = {"rds": "missing"}
# The error code of a failed validation (Coral's default is ValidationException/ValidationError);
# Security Hub answers InvalidInputException.
_VALIDATION_ERROR_OVERRIDES = {"securityhub": "InvalidInputException"}


@dataclass(eq=False, slots=True)
class MemberInfo:
    name: str
    shape: ShapeInfo
    location_name: str | None
    query_name: str | None


@dataclass(eq=False, slots=True)
class ShapeInfo:
    name: str
    type: str
    members: dict[str, MemberInfo] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    member: ShapeInfo | None = None  # list element
    member_name: str | None = None  # list element's locationName
    key: ShapeInfo | None = None
    key_name: str | None = None
    value: ShapeInfo | None = None
    value_name: str | None = None
    flattened: bool = False
    timestamp_format: str | None = None
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    regex: re.Pattern[str] | None = None
    enum: tuple[str, ...] | None = None
    enum_set: frozenset[str] = frozenset()
    sensitive: bool = False
    # Lookup tables by wire name, filled by ``_finish``.
    query_in: dict[str, MemberInfo] = field(default_factory=dict)
    ec2_in: dict[str, MemberInfo] = field(default_factory=dict)
    json_in: dict[str, MemberInfo] = field(default_factory=dict)
    xml_out: tuple[tuple[MemberInfo, str], ...] = ()


# ``(?:-?[a-zA-Z0-9]+)*`` (RDS proxy, shard group, integration, blue/green names) is ambiguous: a run of
# letters splits into groups in exponentially many ways, so a failing value such as ``"a" * 40 + "!"``
# backtracks for hours. ``(?:-?[a-zA-Z0-9])*`` is the same language (a dash is not in the class) with
# one way to split, so Python's backtracking engine matches it in linear time.
_AMBIGUOUS_RUNS = re.compile(r"\(\?:-\?(\[(?:\w-\w|\w)+\])\+\)\*")  # a class of ranges and word characters
# Java's \p{L}, \p{N}, \p{Z} (Unicode letters, digits, separators), as ranges for a character class:
# slightly more lenient (every non-ASCII character), never stricter.
_UNICODE_CLASSES = {"L": "a-zA-Z\\u0080-\\U0010ffff", "N": "0-9\\u0080-\\U0010ffff", "Z": " \\u0080-\\U0010ffff"}


def _java_to_python_regex(pattern: str) -> re.Pattern[str] | None:
    """Compile a model (Java) pattern; unsupported constructs are approximated or the pattern skipped.

    Java's ``\\w``, ``\\d`` and ``\\s`` are ASCII (as AWS validates: ``[\\w+=,.@-]+`` admits no Unicode
    look-alike of a name), hence ``re.ASCII``; ``\\p{L}``/``\\p{N}``/``\\p{Z}`` stay Unicode (slightly more
    lenient, never stricter). Patterns Python cannot compile (e.g. surrogate-pair ranges) are not enforced.
    Ambiguous nested repetitions are rewritten to an equivalent unambiguous form (``_AMBIGUOUS_RUNS``).
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        if pattern.startswith("\\p{", i):
            end = pattern.find("}", i)
            ranges = _UNICODE_CLASSES.get(pattern[i + 3:end]) if end > 0 else None
            if ranges is None:
                return None
            out.append(ranges if in_class else f"[{ranges}]")
            i = end + 1
            continue
        if pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if pattern[i] == "[" and not in_class:
            in_class = True
        elif pattern[i] == "]" and in_class:
            in_class = False
        out.append(pattern[i])
        i += 1
    translated = _AMBIGUOUS_RUNS.sub(r"(?:-?\1)*", "".join(out))
    try:
        return re.compile(translated, re.DOTALL | re.ASCII)
    except re.error:
        return None


class Compiler:
    """Turns botocore shapes of one service into memoized :class:`ShapeInfo` trees."""

    def __init__(self) -> None:
        self._memo: dict[tuple[str, bool, str | None], ShapeInfo] = {}

    def compile(self, shape: botocore.model.Shape) -> ShapeInfo:
        ser = shape.serialization
        key = (shape.name, bool(ser.get("flattened")), ser.get("timestampFormat"))
        info = self._memo.get(key)
        if info is not None:
            return info
        meta = shape.metadata
        info = ShapeInfo(
            name=shape.name,
            type=shape.type_name,
            flattened=bool(ser.get("flattened")),
            timestamp_format=ser.get("timestampFormat"),
            min=meta.get("min"),
            max=meta.get("max"),
            pattern=meta.get("pattern"),
            sensitive=bool(meta.get("sensitive")),
        )
        self._memo[key] = info  # before children: recursive shapes refer back to this object
        if info.pattern:
            info.regex = _java_to_python_regex(info.pattern)
        if "enum" in meta:
            info.enum = tuple(meta["enum"])
            info.enum_set = frozenset(info.enum)
        if shape.type_name == "structure":
            for name, member in shape.members.items():
                mser = member.serialization
                info.members[name] = MemberInfo(
                    name, self.compile(member), mser.get("name"), mser.get("queryName")
                )
            info.required = tuple(meta.get("required", ()))
            _finish_structure(info)
        elif shape.type_name == "list":
            info.member = self.compile(shape.member)
            info.member_name = shape.member.serialization.get("name")
        elif shape.type_name == "map":
            info.key = self.compile(shape.key)
            info.key_name = shape.key.serialization.get("name")
            info.value = self.compile(shape.value)
            info.value_name = shape.value.serialization.get("name")
        return info


def _finish_structure(info: ShapeInfo) -> None:
    xml_out = []
    for name, m in info.members.items():
        shp = m.shape
        # query input: locationName or member name; a flattened list with a named member uses that name.
        query_name = m.location_name or name
        if shp.type == "list" and shp.flattened and shp.member_name:
            query_name = shp.member_name
        info.query_in[query_name] = m
        # ec2 input: queryName, else capitalised locationName, else member name (botocore's EC2Serializer).
        if m.query_name:
            ec2_name = m.query_name
        elif m.location_name:
            ec2_name = m.location_name[0].upper() + m.location_name[1:]
        else:
            ec2_name = name
        info.ec2_in[ec2_name] = m
        info.json_in[m.location_name or name] = m
        xml_out.append((m, query_name))
    info.xml_out = tuple(xml_out)


@cache
def service_model(name: str) -> botocore.model.ServiceModel:
    """botocore's model of ``name`` (e.g. ``"rds"``), loaded once."""
    return _session().get_service_model(name)


@cache
def _session() -> Any:
    return botocore.session.get_session()


def botocore_session() -> Any:
    """The one botocore session whose models every codec uses."""
    return _session()


@dataclass(eq=False, slots=True)
class OperationInfo:
    model: botocore.model.OperationModel
    input: ShapeInfo | None
    output: ShapeInfo | None
    result_wrapper: str | None


class ServiceInfo:
    """Everything the codecs need about one service, computed once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.model = service_model(name)
        self.protocol: str = self.model.protocol
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"service {name!r} uses unsupported protocol {self.protocol!r}")
        self.api_version: str = self.model.api_version
        self.xml_namespace: str = self.model.metadata.get("xmlNamespace", "")
        self.target_prefix: str | None = self.model.metadata.get("targetPrefix")
        self.json_version: str = self.model.metadata.get("jsonVersion", "1.1")
        self.query_compatible = "awsQueryCompatible" in self.model.metadata
        self.validation_style = _VALIDATION_STYLE_OVERRIDES.get(
            name, {"query": "coral", "json": "coral", "rest-json": "coral", "ec2": "missing"}[self.protocol]
        )
        self.validation_error = _VALIDATION_ERROR_OVERRIDES.get(name, "ValidationException")
        self.compiler = Compiler()
        self._operations: dict[str, OperationInfo] = {}
        self.operation_names = frozenset(self.model.operation_names)
        self._errors_by_code: dict[str, ShapeInfo] | None = None

    def operation(self, name: str) -> OperationInfo | None:
        info = self._operations.get(name)
        if info is None:
            if name not in self.operation_names:
                return None
            op = self.model.operation_model(name)
            in_shape, out_shape = op.input_shape, op.output_shape
            info = OperationInfo(
                op,
                self.compiler.compile(in_shape) if in_shape is not None else None,
                self.compiler.compile(out_shape) if out_shape is not None else None,
                out_shape.serialization.get("resultWrapper") if out_shape is not None else None,
            )
            self._operations[name] = info
        return info

    def error_shape_for_code(self, code: str) -> ShapeInfo | None:
        """The modelled error shape whose wire code is ``code`` (for rendering extra fields)."""
        if self._errors_by_code is None:
            table = {}
            for shape in self.model.error_shapes:
                table[_wire_code(self, shape)] = self.compiler.compile(shape)
            self._errors_by_code = table
        return self._errors_by_code.get(code)


@cache
def service_info(name: str) -> ServiceInfo:
    return ServiceInfo(name)


def _wire_code(svc: ServiceInfo, shape: botocore.model.Shape) -> str:
    error = shape.metadata.get("error") or {}
    if svc.protocol in ("json", "rest-json") and not svc.query_compatible:
        return str(shape.name)
    return str(error.get("code", shape.name))


def error_from_shape(service: str, shape_name: str, message: str) -> AwsError:
    """An :class:`AwsError` for the modelled error ``shape_name``, with the wire code and status AWS sends.

    Raises ``KeyError`` if the service has no such error shape.
    """
    svc = service_info(service)
    try:
        shape = svc.model.shape_for(shape_name)
    except botocore.model.NoShapeFoundError:
        raise KeyError(shape_name) from None
    if not shape.metadata.get("exception"):
        raise KeyError(shape_name)
    error = shape.metadata.get("error") or {}
    fault = bool(getattr(shape, "_shape_model", {}).get("fault"))
    status = int(error.get("httpStatusCode", 500 if fault else 400))
    sender_fault = bool(error.get("senderFault", status < 500 and not fault))
    return AwsError(_wire_code(svc, shape), message, status, sender_fault=sender_fault)

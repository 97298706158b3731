"""GetFindings' filters and sort, over ASFF finding documents.

String filters (Security Hub API reference, StringFilter): for one attribute, the positive comparisons
(EQUALS, PREFIX, CONTAINS) are ORed, the negative ones (NOT_EQUALS, PREFIX_NOT_EQUALS, NOT_CONTAINS)
ANDed, and a finding must satisfy both groups; different attributes are ANDed. A multi-valued attribute
(Resources[].Id) matches a positive comparison when any of its values does and a negative one when
none of its values violates it. Date filters take Start/End (ISO 8601) or DateRange (Value, Unit DAYS).
All comparisons are plain string operations: no pattern from the request is ever compiled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from auroral.errors import AwsError


def _path(*keys: str) -> Callable[[Mapping[str, Any]], list[str]]:
    def get(doc: Mapping[str, Any]) -> list[str]:
        value: Any = doc
        for key in keys:
            if not isinstance(value, Mapping):
                return []
            value = value.get(key)
        return [] if value is None else [str(value)]
    return get


def _resources(key: str) -> Callable[[Mapping[str, Any]], list[str]]:
    def get(doc: Mapping[str, Any]) -> list[str]:
        return [str(r[key]) for r in doc.get("Resources", []) if isinstance(r, Mapping) and key in r]
    return get


def _types(doc: Mapping[str, Any]) -> list[str]:
    return [str(t) for t in doc.get("Types", [])]


def _standards(doc: Mapping[str, Any]) -> list[str]:
    return [str(s.get("StandardsId")) for s in doc.get("Compliance", {}).get("AssociatedStandards", [])]


STRING_FIELDS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "Id": _path("Id"),
    "ProductArn": _path("ProductArn"),
    "ProductName": _path("ProductName"),
    "CompanyName": _path("CompanyName"),
    "Region": _path("Region"),
    "AwsAccountId": _path("AwsAccountId"),
    "GeneratorId": _path("GeneratorId"),
    "Type": _types,
    "Title": _path("Title"),
    "Description": _path("Description"),
    "SeverityLabel": _path("Severity", "Label"),
    "ResourceType": _resources("Type"),
    "ResourceId": _resources("Id"),
    "ResourceRegion": _resources("Region"),
    "ResourcePartition": _resources("Partition"),
    "ComplianceStatus": _path("Compliance", "Status"),
    "ComplianceSecurityControlId": _path("Compliance", "SecurityControlId"),
    "ComplianceAssociatedStandardsId": _standards,
    "WorkflowStatus": _path("Workflow", "Status"),
    "WorkflowState": _path("WorkflowState"),
    "RecordState": _path("RecordState"),
    "VerificationState": _path("VerificationState"),
    "NoteText": _path("Note", "Text"),
    "NoteUpdatedBy": _path("Note", "UpdatedBy"),
}

DATE_FIELDS = ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt", "NoteUpdatedAt")

Comparison = Callable[[str, str], bool]
POSITIVE: dict[str, Comparison] = {"EQUALS": lambda v, f: v == f, "PREFIX": lambda v, f: v.startswith(f),
                                   "CONTAINS": lambda v, f: f in v}
NEGATIVE: dict[str, Comparison] = {"NOT_EQUALS": lambda v, f: v != f,
                                   "PREFIX_NOT_EQUALS": lambda v, f: not v.startswith(f),
                                   "NOT_CONTAINS": lambda v, f: f not in v}


def invalid(message: str) -> AwsError:
    return AwsError("InvalidInputException", message, 400)


def _parse_date(text: str, name: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise invalid(f"Invalid date format for {name}: {text}") from None  # Unconfirmed: AWS's wording
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _date_of(doc: Mapping[str, Any], name: str) -> dt.datetime | None:
    raw = doc.get("Note", {}).get("UpdatedAt") if name == "NoteUpdatedAt" else doc.get(name)
    if not raw:
        return None
    try:
        return _parse_date(str(raw), name)
    except AwsError:
        return None


def _string_match(values: list[str], filters: list[Mapping[str, Any]], name: str) -> bool:
    positives: list[bool] = []
    for f in filters:
        comparison = str(f.get("Comparison") or "")
        wanted = f.get("Value")
        if wanted is None or not comparison:
            raise invalid(f"{name} filter requires both Value and Comparison")  # Unconfirmed wording
        if comparison in POSITIVE:
            test = POSITIVE[comparison]
            positives.append(any(test(v, str(wanted)) for v in values))
        elif comparison in NEGATIVE:
            test = NEGATIVE[comparison]
            if not all(test(v, str(wanted)) for v in values):
                return False
        else:
            raise invalid(f"Invalid Comparison {comparison} for {name}")
    return any(positives) if positives else True


def _date_match(value: dt.datetime | None, filters: list[Mapping[str, Any]], name: str,
                now: dt.datetime) -> bool:
    for f in filters:
        if value is None:
            return False
        date_range = f.get("DateRange")
        start = f.get("Start")
        end = f.get("End")
        if date_range:
            if date_range.get("Unit") != "DAYS" or date_range.get("Value") is None:
                raise invalid(f"{name} DateRange requires a Value and the Unit DAYS")
            try:
                oldest = now - dt.timedelta(days=int(date_range["Value"]))
            except OverflowError:  # further back than datetime goes: no lower bound
                oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
            if value < oldest:
                return False
        if start and value < _parse_date(str(start), name):
            return False
        if end and value > _parse_date(str(end), name):
            return False
        if not (date_range or start or end):
            raise invalid(f"{name} filter requires Start and End, or DateRange")
    return True


MAX_ATTRIBUTES = 10  # "You can filter by up to 10 finding attributes" (GetFindings API reference)
MAX_VALUES = 20  # "For each attribute, you can provide up to 20 filter values"


def check_limits(filters: Mapping[str, Any]) -> None:
    """Refuse what AWS documents as too many filters (also bounds the work one request can ask for)."""
    used = {name: conditions for name, conditions in filters.items() if conditions}
    if len(used) > MAX_ATTRIBUTES:
        # Unconfirmed: AWS's wording
        raise invalid(f"You can filter by up to {MAX_ATTRIBUTES} finding attributes.")
    for name, conditions in used.items():
        if len(conditions) > MAX_VALUES:
            raise invalid(f"You can provide up to {MAX_VALUES} filter values for {name}.")


def matches(doc: Mapping[str, Any], filters: Mapping[str, Any], now: dt.datetime) -> bool:
    for name, conditions in filters.items():
        if not conditions:
            continue
        if name in STRING_FIELDS:
            if not _string_match(STRING_FIELDS[name](doc), conditions, name):
                return False
        elif name in DATE_FIELDS:
            if not _date_match(_date_of(doc, name), conditions, name, now):
                return False
        elif name == "SeverityNormalized":
            normalized = doc.get("Severity", {}).get("Normalized")
            for f in conditions:
                if normalized is None:
                    return False
                if f.get("Eq") is not None and normalized != f["Eq"]:
                    return False
                if f.get("Gte") is not None and normalized < f["Gte"]:
                    return False
                if f.get("Lte") is not None and normalized > f["Lte"]:
                    return False
                if f.get("Gt") is not None and normalized <= f["Gt"]:
                    return False
                if f.get("Lt") is not None and normalized >= f["Lt"]:
                    return False
        else:
            # Unconfirmed: AWS accepts every modelled filter; auroral refuses the ones it cannot apply
            # rather than silently ignore them (an ignored filter would widen the answer).
            raise invalid(f"Filter {name} is not supported by auroral")
    return True


_SEVERITY_RANK = {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
_SORT_ALIASES = {"SeverityLabel": "Severity.Label", "SeverityNormalized": "Severity.Normalized",
                 "ComplianceStatus": "Compliance.Status", "WorkflowStatus": "Workflow.Status",
                 "ComplianceSecurityControlId": "Compliance.SecurityControlId", "ResourceId": "Resources.Id",
                 "ResourceType": "Resources.Type"}


def sort_key(field: str) -> Callable[[Mapping[str, Any]], Any]:
    path = _SORT_ALIASES.get(field, field).split(".")

    def key(doc: Mapping[str, Any]) -> Any:
        value: Any = doc
        for part in path:
            if isinstance(value, list):
                value = value[0] if value else None
            if not isinstance(value, Mapping):
                return (0, "")
            value = value.get(part)
        if value is None:
            return (0, "")
        if path == ["Severity", "Label"]:
            return (1, _SEVERITY_RANK.get(str(value), -1))
        if isinstance(value, int | float):
            return (1, float(value))
        return (1, str(value))
    return key

"""RDS events: what really happened to clusters, instances, parameter groups and snapshots, kept for
14 days as AWS keeps them, and the DescribeEvents / DescribeEventCategories operations that read them.

An event is recorded where the state changes, never on a timer or in a getter: a cluster's creation
finished, a deletion, a reboot, a failover begun and ended, the master password reset, parameter
changes applied, an engine upgrade. Each carries AWS's event ID and message from "Amazon RDS event
categories and event messages for Aurora" (``EventSpec`` constants below). DescribeEvents has no
field for the ID (botocore's ``Event`` shape: SourceIdentifier, SourceType, Message, EventCategories,
Date, SourceArn); it is stored with the event, for what reads the store (``list_events``) and for the
notifications AWS sends with it. AWS's table writes the messages with a final period; captured events
(EventBridge's ``detail.Message``) carry none, so none is stored here.

Storage: documents of kind ``rds.event`` in the regional view of the store (events are per account and
region), keyed so that the store's key order is the order they happened in.

The stable interface for other operation families (snapshots, restores) is :func:`record_event`
(or :func:`emit` with one of the ``EventSpec`` constants)::

    from auroral.rds import events
    events.emit(self.store, "db-cluster-snapshot", snapshot_id, snapshot_arn, events.CLUSTER_SNAPSHOT_CREATED)
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import invalid_parameter_combination, invalid_parameter_value
from auroral.rds.base import RdsBase, paginate
from auroral.rds.model import Cluster, Instance
from auroral.store import Store

KIND_EVENT = "rds.event"
# DescribeEvents "Returns events ... for the past 14 days" (RDS API reference); older ones go.
RETENTION = timedelta(days=14)
DEFAULT_DURATION_MINUTES = 60
_RETENTION_MINUTES = int(RETENTION.total_seconds() // 60) + 1
# Purging the expired events of an account means reading them all: at most once a minute per account.
_PURGE_EVERY = 60.0

# botocore's SourceType enum (the values DescribeEvents and DescribeEventCategories accept).
SOURCE_TYPES = ("db-instance", "db-parameter-group", "db-security-group", "db-snapshot", "db-cluster",
                "db-cluster-snapshot", "custom-engine-version", "db-proxy", "blue-green-deployment",
                "db-shard-group", "zero-etl")

# Event categories per source type, as the Aurora event tables list them (AWS's DescribeEventCategories
# answer for Aurora is not captured anywhere public: Unconfirmed, derived from the tables). Cluster
# parameter groups have no source type of their own in the API: their events are "db-parameter-group".
CATEGORIES: dict[str, tuple[str, ...]] = {
    "db-cluster": ("configuration change", "creation", "deletion", "failover", "failure", "global failover",
                   "maintenance", "notification", "read replica"),
    "db-cluster-snapshot": ("backup", "failure", "notification"),
    "db-instance": ("availability", "backtrack", "configuration change", "creation", "deletion", "failure",
                    "low storage", "maintenance", "notification", "read replica", "recovery", "restoration",
                    "security patching", "serverless"),
    "db-parameter-group": ("configuration change",),
    "db-security-group": ("configuration change", "failure"),
    "db-proxy": ("configuration change", "creation", "deletion", "failure"),
    "blue-green-deployment": ("creation", "deletion", "failure", "notification"),
}


@dataclass(frozen=True)
class EventSpec:
    """One row of AWS's event table: the ID, its categories and the message (``str.format`` fields)."""

    event_id: str
    categories: tuple[str, ...]
    message: str


# DB cluster events
CLUSTER_CREATED = EventSpec("RDS-EVENT-0170", ("creation",), "DB cluster created")
CLUSTER_DELETED = EventSpec("RDS-EVENT-0171", ("deletion",), "DB cluster deleted")
CLUSTER_STOPPED = EventSpec("RDS-EVENT-0150", ("notification",), "DB cluster stopped")
CLUSTER_STARTED = EventSpec("RDS-EVENT-0151", ("notification",), "DB cluster started")
CLUSTER_RENAMED = EventSpec("RDS-EVENT-0172", ("notification",), "Renamed cluster from {old} to {new}")
MASTER_CREDENTIALS_RESET = EventSpec("RDS-EVENT-0016", ("configuration change",), "Reset master credentials")
FAILOVER_FAILED = EventSpec("RDS-EVENT-0069", ("failover",),
                            "Cluster failover failed, check the health of your cluster instances and try again")
FAILOVER_COMPLETED = EventSpec("RDS-EVENT-0071", ("failover",), "Completed failover to DB instance: {name}")
FAILOVER_STARTED_SAME_AZ = EventSpec("RDS-EVENT-0072", ("failover",), "Started same AZ failover to DB instance: {name}")
FAILOVER_STARTED_CROSS_AZ = EventSpec("RDS-EVENT-0073", ("failover",),
                                      "Started cross AZ failover to DB instance: {name}")
UPGRADE_IN_PROGRESS = EventSpec("RDS-EVENT-0177", ("maintenance",), "Database cluster upgrade is in progress")
UPGRADED_MINOR = EventSpec("RDS-EVENT-0173", ("maintenance",), "Database cluster engine version has been upgraded")
UPGRADED_MAJOR = EventSpec("RDS-EVENT-0176", ("maintenance",),
                           "Database cluster engine major version has been upgraded")
# DB instance events
INSTANCE_CREATED = EventSpec("RDS-EVENT-0005", ("creation",), "DB instance created")
INSTANCE_DELETED = EventSpec("RDS-EVENT-0003", ("deletion",), "DB instance deleted")
INSTANCE_RESTARTED = EventSpec("RDS-EVENT-0006", ("availability",), "DB instance restarted")
PARAMETERS_APPLIED = EventSpec("RDS-EVENT-0092", ("configuration change",), "Finished updating DB parameter group")
# DB parameter group events (cluster parameter groups too, see CATEGORIES)
PARAMETER_UPDATED = EventSpec("RDS-EVENT-0037", ("configuration change",),
                              "Updated parameter {name} to {value} with apply method {method}")
# DB cluster snapshot events (for the snapshot operations)
CLUSTER_SNAPSHOT_CREATING = EventSpec("RDS-EVENT-0074", ("backup",), "Creating manual cluster snapshot")
CLUSTER_SNAPSHOT_CREATED = EventSpec("RDS-EVENT-0075", ("backup",), "Manual cluster snapshot created")
AUTOMATED_SNAPSHOT_CREATING = EventSpec("RDS-EVENT-0168", ("backup",), "Creating automated cluster snapshot")
AUTOMATED_SNAPSHOT_CREATED = EventSpec("RDS-EVENT-0169", ("backup",), "Automated cluster snapshot created")


@dataclass(frozen=True)
class RdsEvent:
    source_type: str
    source_id: str
    source_arn: str
    categories: tuple[str, ...]
    message: str
    event_id: str
    date: datetime

    def to_doc(self) -> dict[str, Any]:
        return {"source_type": self.source_type, "source_id": self.source_id, "source_arn": self.source_arn,
                "categories": list(self.categories), "message": self.message, "event_id": self.event_id,
                "date": self.date.isoformat()}

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> RdsEvent:
        date = datetime.fromisoformat(str(d["date"]))
        return cls(str(d["source_type"]), str(d["source_id"]), str(d["source_arn"]),
                   tuple(str(c) for c in d.get("categories") or ()), str(d["message"]), str(d["event_id"]),
                   date if date.tzinfo else date.replace(tzinfo=UTC))

    def view(self) -> dict[str, Any]:
        return {"SourceIdentifier": self.source_id, "SourceType": self.source_type, "Message": self.message,
                "EventCategories": list(self.categories), "Date": self.date, "SourceArn": self.source_arn}


_counter = itertools.count()
_purge_lock = threading.Lock()
_last_purge: dict[tuple[str, str], float] = {}


def _key(date: datetime) -> str:
    """Store keys sort as the events happened: epoch microseconds, then this process's sequence (two
    events of one microsecond), then a random part (two processes on one store)."""
    micros = int(date.timestamp() * 1_000_000)
    return f"{micros:017d}-{next(_counter):010d}-{secrets.token_hex(3)}"


def _account_of(arn: str) -> str:
    parts = arn.split(":")
    if len(parts) < 6 or not parts[4]:
        raise ValueError(f"not a resource ARN: {arn!r}")
    return parts[4]


def record_event(store: Store, source_type: str, source_id: str, source_arn: str, categories: Sequence[str],
                 message: str, event_id: str, *, date: datetime | None = None) -> RdsEvent:
    """Record that something happened to an RDS resource (stable interface; see the module docstring).

    ``store`` is the RDS service's (regional) store; the account is the one of ``source_arn``.
    ``source_type`` is one of ``SOURCE_TYPES``; ``source_id`` the resource's identifier as Describe*
    shows it; ``categories`` and ``event_id``/``message`` from AWS's event table (an ``EventSpec``).
    Call it after the state change is written, where it really happened. Returns the stored event."""
    if source_type not in SOURCE_TYPES:
        raise ValueError(f"unknown RDS event source type {source_type!r}")
    event = RdsEvent(source_type, source_id, source_arn, tuple(categories), message, event_id,
                     (date or datetime.now(UTC)).astimezone(UTC))
    account = _account_of(source_arn)
    store.put(KIND_EVENT, account, _key(event.date), event.to_doc())
    _purge_if_due(store, account)
    return event


def emit(store: Store, source_type: str, source_id: str, source_arn: str, spec: EventSpec,
         **fields: str) -> RdsEvent:
    """:func:`record_event` for one of the ``EventSpec`` rows, its message filled with ``fields``."""
    return record_event(store, source_type, source_id, source_arn, spec.categories,
                        spec.message.format(**fields), spec.event_id)


def cluster_event(store: Store, cluster: Cluster, spec: EventSpec, **fields: str) -> RdsEvent:
    return emit(store, "db-cluster", cluster.identifier, cluster.arn(), spec, **fields)


def instance_event(store: Store, instance: Instance, spec: EventSpec, **fields: str) -> RdsEvent:
    return emit(store, "db-instance", instance.identifier, instance.arn(), spec, **fields)


def list_events(store: Store, account: str) -> list[tuple[str, RdsEvent]]:
    """The account's events in this store's region as ``(key, event)``, oldest first (expired ones too,
    until they are purged)."""
    return [(key, RdsEvent.from_doc(doc)) for _, key, doc in store.list(KIND_EVENT, account)]


def purge_expired(store: Store, account: str, now: datetime | None = None) -> int:
    """Delete the account's events older than 14 days; how many went."""
    cutoff = (now or datetime.now(UTC)) - RETENTION
    gone = 0
    for key, event in list_events(store, account):
        if event.date >= cutoff:
            break  # oldest first: the rest are younger
        store.delete(KIND_EVENT, account, key)
        gone += 1
    return gone


def _purge_if_due(store: Store, account: str) -> None:
    slot = (str(store.path), account)
    now = time.monotonic()
    with _purge_lock:
        last = _last_purge.get(slot)
        if last is not None and now - last < _PURGE_EVERY:
            return
        _last_purge[slot] = now
    purge_expired(store, account)


# --- the operations ---------------------------------------------------------------------------------


def _source_type(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    if text not in SOURCE_TYPES:
        # Unconfirmed wording (the code is the one RDS gives for a value outside an enum).
        raise invalid_parameter_value(f"Invalid value {text} for SourceType. Valid values: "
                                      + ", ".join(SOURCE_TYPES))
    return text


class EventOperations(RdsBase):
    def DescribeEvents(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        source_type = _source_type(params.get("SourceType"))
        source_id = str(params.get("SourceIdentifier") or "")
        if source_id and source_type is None:
            # The API reference: "If SourceIdentifier is supplied, SourceType must also be provided."
            # Unconfirmed wording and code.
            raise invalid_parameter_combination("SourceType must be provided when SourceIdentifier is specified.")
        if source_id.endswith("-") or "--" in source_id:
            # The API reference: "Can't end with a hyphen or contain two consecutive hyphens." (Unconfirmed wording)
            raise invalid_parameter_value(f"The parameter SourceIdentifier is not a valid identifier: {source_id}")
        wanted = self._wanted_categories(source_type, params.get("EventCategories"))
        start, end = self._window(ctx, params)
        events = [(key, e) for key, e in list_events(self.store, ctx.account)
                  if start <= e.date <= end
                  and (source_type is None or e.source_type == source_type)
                  and (not source_id or e.source_id == source_id.lower())
                  and (wanted is None or wanted.intersection(e.categories))]
        page, marker = paginate(events, lambda item: item[0], params)
        out: dict[str, Any] = {"Events": [e.view() for _, e in page]}
        if marker:
            out["Marker"] = marker
        return out

    @staticmethod
    def _wanted_categories(source_type: str | None, given: Any) -> set[str] | None:
        if not given:
            return None
        known = set(CATEGORIES.get(source_type, ())) if source_type else {c for cs in CATEGORIES.values() for c in cs}
        wanted = {str(c).lower() for c in given}
        unknown = sorted(wanted - known)
        if unknown:
            # Unconfirmed: AWS's answer to a category the source type does not have (code and wording).
            raise invalid_parameter_value(f"Invalid event category for source type {source_type or 'any'}: "
                                          f"{unknown[0]}")
        return wanted

    @staticmethod
    def _window(ctx: RequestContext, params: dict[str, Any]) -> tuple[datetime, datetime]:
        """StartTime/EndTime, else the last ``Duration`` minutes (default 60) before EndTime or now; never
        before the 14 days events are kept."""
        now = ctx.time if ctx.time.tzinfo else ctx.time.replace(tzinfo=UTC)
        duration = params.get("Duration")
        if duration is not None and int(duration) < 0:
            # Unconfirmed wording.
            raise invalid_parameter_value(f"Invalid value {duration} for Duration. Must be a positive number.")
        end = _aware(params.get("EndTime")) or now
        start = _aware(params.get("StartTime"))
        if start is None:
            # nothing is older than the 14 days kept: a longer Duration (or an EndTime at year 1) asks for no more
            minutes = DEFAULT_DURATION_MINUTES if duration is None else min(int(duration), _RETENTION_MINUTES)
            try:
                start = end - timedelta(minutes=minutes)
            except OverflowError:
                start = datetime.min.replace(tzinfo=UTC)
        if start > end:
            # Unconfirmed wording.
            raise invalid_parameter_combination("StartTime must be earlier than EndTime.")
        return max(start, now - RETENTION), end

    def DescribeEventCategories(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        source_type = _source_type(params.get("SourceType"))
        types = [source_type] if source_type else sorted(CATEGORIES)
        return {"EventCategoriesMapList": [
            {"SourceType": t, "EventCategories": list(CATEGORIES.get(t, ()))} for t in types
            if t in CATEGORIES or source_type is not None
        ]}


def _aware(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, datetime):
        raise invalid_parameter_value(f"Invalid timestamp: {value}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)

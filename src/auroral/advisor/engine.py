"""The findings engine: evaluates the controls over one region's resources and keeps its Security Hub
findings current.

``refresh()`` is cheap when nothing changed: it compares the store's generation (bumped by every
resource write: RDS, EC2, IAM, KMS, Secrets Manager, whoever wrote it) with the one it last evaluated,
so it runs after every mutating API call (the pipeline's change hook), from a poller twice a second
(changes made outside a call: a cluster finishing its deletion, a key's deletion date passing) and
before GetFindings answers. What the store does not see is in ``version()``: the flow records' count,
the minute, and the inside of the databases as last read (``auroral.advisor.database``: read again
when a session at a cluster's endpoint ends, every 10 s, and before GetFindings). Findings are keyed
by (control, resource), with an ID derived from both (stable across restarts); a finding whose
verdict, reason or evidence changed is rewritten with a new ``UpdatedAt``; one whose resource is gone
becomes ``RecordState: ARCHIVED``.

Workflow follows AWS's automatic transitions for control findings: a FAILED finding that turns
PASSED while NEW or NOTIFIED becomes RESOLVED; a RESOLVED finding that fails again, or an ARCHIVED one
that comes back, becomes NEW. SUPPRESSED stays as the user set it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from auroral.store import Store

from .checks import PASSED, Evaluation, Snapshot, evaluate
from .controls import FSBP_ID

log = logging.getLogger(__name__)

KIND_FINDING = "securityhub.finding"
SCHEMA_VERSION = "2018-10-08"
_ID_NAMESPACE = uuid.UUID("5b0c3c3e-2f0e-4d8e-9a59-6a2d3c1f7a10")
TYPES = ["Software and Configuration Checks/Industry and Regulatory Standards/AWS-Foundational-Security-Best-Practices"]
AURORAL_TYPES = ["Software and Configuration Checks/auroral/Aurora PostgreSQL practices"]
NORMALIZED = {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 40, "HIGH": 70, "CRITICAL": 90}


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def product_arn(partition: str, region: str) -> str:
    return f"arn:{partition}:securityhub:{region}::product/aws/securityhub"


def finding_id(partition: str, region: str, account: str, control: str, resource: str) -> str:
    token = uuid.uuid5(_ID_NAMESPACE, f"{account}|{region}|{control}|{resource}")
    return f"arn:{partition}:securityhub:{region}:{account}:security-control/{control}/finding/{token}"


class Advisor:
    """One region's findings, recomputed when the resources change."""

    def __init__(self, store: Store, *, region: str, account: str, partition: str,
                 snapshot: Callable[[], Snapshot], with_global: bool,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 version: Callable[[], object] = lambda: None) -> None:
        self.store = store
        self.region = region
        self.account = account
        self.partition = partition
        self._snapshot = snapshot
        self.with_global = with_global
        self._clock = clock
        # Held across every read-modify-write of findings (evaluation, BatchUpdateFindings), so that
        # neither writes over the other's change.
        self.lock = threading.RLock()
        # What was evaluated: the store's generation and ``version()`` (what else the checks read: the
        # flow records' count, the minute, so that a window's end is noticed).
        self._version = version
        self._seen: tuple[int, object] | None = None
        # The findings as stored, by ID: this class is their only writer, so the store is read once.
        self._cache: dict[str, dict[str, Any]] | None = None
        # The evaluation each finding was last written from (in memory): an unchanged one is skipped
        # without building the finding again; and each (control, resource)'s finding ID.
        self._written: dict[str, tuple[Any, ...]] = {}
        self._ids: dict[tuple[str, str], str] = {}

    def refresh(self, *, force: bool = False) -> int:
        """Re-evaluate if anything was written since the last evaluation; how many findings changed."""
        with self.lock:
            generation = (self.store.generation, self._version())
            if not force and generation == self._seen:
                return 0
            try:
                changed = self._reconcile(evaluate(self._snapshot(), with_global=self.with_global))
            except Exception:
                log.exception("advisor: evaluating %s failed", self.region)
                return 0
            # After writing, evaluate once more next time: our writes bumped the generation, and another
            # thread's write during the evaluation may hide behind them (that evaluation writes nothing).
            self._seen = None if changed else generation
            return changed

    # --- findings --------------------------------------------------------------------------

    def findings(self) -> list[dict[str, Any]]:
        """Every stored finding document (the ASFF finding plus auroral's private ``_auroral`` part).
        The documents are shared: replace them (``save_all``), never change them in place."""
        with self.lock:
            if self._cache is None:
                self._cache = {doc["Id"]: doc for _a, _k, doc in self.store.list(KIND_FINDING, self.account)}
            return list(self._cache.values())

    def save_all(self, docs: list[dict[str, Any]]) -> None:
        """Write findings (one transaction), then make them what ``findings`` answers."""
        with self.lock:
            with self.store.transaction():
                for doc in docs:
                    self.store.put(KIND_FINDING, self.account, doc["Id"], doc)
            if self._cache is not None:
                for doc in docs:
                    self._cache[doc["Id"]] = doc

    def _reconcile(self, evaluations: list[Evaluation]) -> int:
        now = iso(self._clock())
        existing = {doc["Id"]: doc for doc in self.findings()}
        seen: set[str] = set()
        writes: list[dict[str, Any]] = []
        evaluated_controls = {e.control.id for e in evaluations}
        fingerprints: dict[str, tuple[Any, ...]] = {}
        for ev in evaluations:
            fid = self._ids.get((ev.control.id, ev.resource_id))
            if fid is None:
                if len(self._ids) > 100_000:  # resources come and go: a memo, not a registry
                    self._ids.clear()
                fid = finding_id(self.partition, self.region, self.account, ev.control.id, ev.resource_id)
                self._ids[(ev.control.id, ev.resource_id)] = fid
            seen.add(fid)
            old = existing.get(fid)
            fingerprint = _fingerprint(ev)
            if old is not None and old.get("RecordState") == "ACTIVE" and self._written.get(fid) == fingerprint:
                continue
            fingerprints[fid] = fingerprint
            new = self._finding(fid, ev, old, now)
            if old is None or _material(old) != _material(new):
                writes.append(new)
        for fid, old in existing.items():
            control = old.get("Compliance", {}).get("SecurityControlId", "")
            if fid in seen or old.get("RecordState") == "ARCHIVED":
                continue
            if control not in evaluated_controls and control in _GLOBAL_OWNED and not self.with_global:
                continue
            archived = dict(old, RecordState="ARCHIVED", UpdatedAt=now)
            writes.append(archived)
        if writes:
            self.save_all(writes)
        self._written.update(fingerprints)
        return len(writes)

    def _finding(self, fid: str, ev: Evaluation, old: dict[str, Any] | None, now: str) -> dict[str, Any]:
        control = ev.control
        types = TYPES if control.standard == FSBP_ID else AURORAL_TYPES
        failed = ev.status != PASSED
        private: dict[str, Any] = dict(old.get("_auroral", {})) if old else {}
        workflow = (old or {}).get("Workflow", {}).get("Status")
        old_status = (old or {}).get("Compliance", {}).get("Status")
        archived = (old or {}).get("RecordState") == "ARCHIVED"
        if workflow is None:
            workflow = "NEW" if failed else "RESOLVED"
        elif not failed and old_status != PASSED and workflow in ("NEW", "NOTIFIED"):
            workflow = "RESOLVED"
        elif failed and (old_status == PASSED or archived) and workflow == "RESOLVED":
            workflow = "NEW"
        # PASSED control findings carry INFORMATIONAL; a label the user set (BatchUpdateFindings) stays.
        label = control.severity if failed else "INFORMATIONAL"
        severity = {"Label": label, "Normalized": NORMALIZED[label], "Original": control.severity}
        if private.get("severity_set") and old is not None:
            severity = dict(old["Severity"])
        resource: dict[str, Any] = {"Type": ev.resource_type or control.resource_type, "Id": ev.resource_id,
                                    "Partition": self.partition, "Region": self.region}
        if ev.details:
            resource["Details"] = {"Other": {k: _text(v) for k, v in ev.details.items()}}
        fields = {
            "aws/securityhub/ProductName": "Security Hub",
            "aws/securityhub/CompanyName": "AWS",
            "aws/securityhub/FindingId": fid,
            "auroral/Why": ev.why,
            **{f"auroral/Evidence/{k}": _capped(v) for k, v in ev.evidence.items()},
        }
        doc: dict[str, Any] = {
            "SchemaVersion": SCHEMA_VERSION,
            "Id": fid,
            "ProductArn": product_arn(self.partition, self.region),
            "ProductName": "Security Hub",
            "CompanyName": "AWS",
            "Region": self.region,
            "GeneratorId": f"security-control/{control.id}",
            "AwsAccountId": self.account,
            "Types": list(types),
            "FirstObservedAt": (old or {}).get("FirstObservedAt", now),
            "LastObservedAt": now,
            "CreatedAt": (old or {}).get("CreatedAt", now),
            "UpdatedAt": now,
            "Severity": severity,
            "Title": control.title,
            "Description": control.description,
            "Remediation": {"Recommendation": {"Text": f"To fix: {control.remediation}. For more information, "
                                                       "see the control's documentation.",
                                               "Url": control.remediation_url}},
            "ProductFields": fields,
            "Resources": [resource],
            "Compliance": {
                "Status": ev.status,
                "SecurityControlId": control.id,
                "AssociatedStandards": [{"StandardsId": f"standards/{control.standard}"}],
            },
            "WorkflowState": "NEW",
            "Workflow": {"Status": workflow},
            "RecordState": "ACTIVE",
            "FindingProviderFields": {"Severity": {"Label": label, "Original": control.severity},
                                      "Types": list(types)},
            "_auroral": private,
        }
        for kept in ("Note", "VerificationState", "Confidence", "Criticality", "UserDefinedFields"):
            if old is not None and kept in old:
                doc[kept] = old[kept]
        return doc


_GLOBAL_OWNED = frozenset({"IAM.1", "IAM.4", "AURORAL.3"})
_VOLATILE = frozenset({"UpdatedAt", "LastObservedAt"})


def _fingerprint(ev: Evaluation) -> tuple[Any, ...]:
    return (ev.control.id, ev.control.severity, ev.status, ev.why, tuple(sorted(ev.evidence.items())),
            tuple(sorted((k, str(v)) for k, v in ev.details.items())))


def _material(doc: dict[str, Any]) -> dict[str, Any]:
    """What makes two versions of a finding different (not the timestamps of looking)."""
    return {k: v for k, v in doc.items() if k not in _VOLATILE}


# ASFF's limit on a ProductFields value (AwsSecurityFinding.ProductFields: up to 50 pairs, keys up to 128
# characters, values up to 2048); a longer piece of evidence is cut, and says so.
PRODUCT_FIELD_MAX = 2048


def _capped(value: str) -> str:
    return value if len(value) <= PRODUCT_FIELD_MAX else value[:PRODUCT_FIELD_MAX - 15] + " ... (cut here)"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)

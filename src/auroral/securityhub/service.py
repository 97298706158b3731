"""Security Hub (rest-json): the findings of auroral's advisor, and the standard and controls behind them.

Security Hub is on in every account and region auroral serves, with AWS Foundational Security Best
Practices enabled (on AWS one calls EnableSecurityHub first; auroral's findings exist from the start).
Only the controls auroral evaluates are listed (``auroral.advisor.controls``).

GetFindings re-evaluates first if anything changed (``Advisor.refresh``), so an answer is never older
than the last write; it reads the inside of the region's databases again first (``before_read``), so
a fix made with SQL is seen too. BatchUpdateFindings changes what AWS lets a customer change (Workflow.Status,
Note, Severity, VerificationState, Confidence, Criticality, UserDefinedFields); the call is on the audit
trail like every other.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from auroral.advisor import controls as catalogue
from auroral.advisor.engine import NORMALIZED, Advisor, iso
from auroral.api.context import RequestContext
from auroral.errors import AwsError
from auroral.regions import partition_of

from . import filters as flt

MAX_RESULTS = 100
T = TypeVar("T")
_WORKFLOW = ("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED")
_VERIFICATION = ("UNKNOWN", "TRUE_POSITIVE", "FALSE_POSITIVE", "BENIGN_POSITIVE")
_LABEL_FOR = [(90, "CRITICAL"), (70, "HIGH"), (40, "MEDIUM"), (1, "LOW"), (0, "INFORMATIONAL")]


def invalid(message: str) -> AwsError:
    return AwsError("InvalidInputException", message, 400)


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """The ASFF finding without auroral's private bookkeeping."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _token(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "f": fingerprint}).encode()).decode()


def _untoken(token: str, fingerprint: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["o"])
        same = data["f"] == fingerprint
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error):
        raise invalid("The NextToken provided is invalid.") from None  # Unconfirmed wording
    if not same or offset < 0:
        raise invalid("The NextToken provided is invalid.")
    return offset


def _page(items: list[T], params: dict[str, Any], query: str) -> tuple[list[T], str | None]:
    """One page of a catalogue listing (MaxResults, NextToken); the next page's token, if any."""
    fingerprint = hashlib.sha256(query.encode()).hexdigest()[:16]
    offset = _untoken(str(params["NextToken"]), fingerprint) if params.get("NextToken") else 0
    size = int(params.get("MaxResults") or MAX_RESULTS)
    token = _token(offset + size, fingerprint) if offset + size < len(items) else None
    return items[offset:offset + size], token


class SecurityHubService:
    service = "securityhub"

    def __init__(self, advisor: Advisor, region: str,
                 before_read: Callable[[], Awaitable[None]] | None = None) -> None:
        self.advisor = advisor
        self.region = region
        self.partition = partition_of(region)
        # what the store's generation does not see, brought up to date before an answer: the inside of
        # the region's databases (auroral.advisor.database), read again by GetFindings
        self._before_read = before_read

    # --- findings ------------------------------------------------------------------------

    async def GetFindings(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        max_results = int(params.get("MaxResults") or MAX_RESULTS)
        if not 1 <= max_results <= MAX_RESULTS:
            raise invalid("MaxResults must be between 1 and 100.")  # Unconfirmed wording
        criteria = params.get("Filters") or {}
        flt.check_limits(criteria)
        sort = params.get("SortCriteria") or [{"Field": "UpdatedAt", "SortOrder": "desc"}]
        # a token is good for the query it came from only
        fingerprint = hashlib.sha256(json.dumps([criteria, sort], sort_keys=True, default=str).encode()).hexdigest()[:16]
        offset = _untoken(str(params["NextToken"]), fingerprint) if params.get("NextToken") else 0
        if self._before_read is not None:
            await self._before_read()
        await asyncio.to_thread(self.advisor.refresh)  # off the event loop: the endpoints keep being served
        now = ctx.time
        found = [d for d in self.advisor.findings() if flt.matches(d, criteria, now)]
        found.sort(key=lambda d: d["Id"])
        for criterion in reversed(sort):
            field = str(criterion.get("Field") or "UpdatedAt")
            order = str(criterion.get("SortOrder") or "asc")
            found.sort(key=flt.sort_key(field), reverse=order == "desc")
        page = found[offset:offset + max_results]
        out: dict[str, Any] = {"Findings": [public(d) for d in page]}
        if offset + max_results < len(found):
            out["NextToken"] = _token(offset + max_results, fingerprint)
        return out

    def BatchUpdateFindings(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        identifiers = params.get("FindingIdentifiers") or []
        if not 1 <= len(identifiers) <= 100:
            raise invalid("FindingIdentifiers must contain between 1 and 100 items.")  # Unconfirmed
        updates = {k: params[k] for k in ("Note", "Severity", "Workflow", "VerificationState", "Confidence",
                                          "Criticality", "UserDefinedFields", "Types", "RelatedFindings")
                   if params.get(k) is not None}
        if not updates:
            raise invalid("At least one field must be specified to update.")  # Unconfirmed wording
        workflow = (updates.get("Workflow") or {}).get("Status")
        if workflow is not None and workflow not in _WORKFLOW:
            raise invalid(f"Invalid Workflow.Status: {workflow}")
        severity = updates.get("Severity")
        if severity is not None and not {"Label", "Normalized", "Product"} & set(severity):
            raise invalid("Severity must specify Label or Normalized.")
        if severity is not None and severity.get("Normalized") is not None \
                and not 0 <= int(severity["Normalized"]) <= 100:
            raise invalid("Severity.Normalized must be between 0 and 100.")  # Unconfirmed wording
        with self.advisor.lock:
            self.advisor.refresh()
            by_id = {d["Id"]: d for d in self.advisor.findings()}
            processed: list[dict[str, str]] = []
            unprocessed: list[dict[str, Any]] = []
            now = iso(ctx.time)
            writes: list[dict[str, Any]] = []
            # The error codes and messages of BatchUpdateFindingsUnprocessedFinding (API reference).
            counts: dict[tuple[str, str], int] = {}
            for ident in identifiers:
                key = (str(ident.get("Id", "")), str(ident.get("ProductArn", "")))
                counts[key] = counts.get(key, 0) + 1
            for ident in identifiers:
                fid, product = str(ident.get("Id", "")), str(ident.get("ProductArn", ""))
                doc = by_id.get(fid)
                failure = None
                if counts[(fid, product)] > 1:
                    failure = ("DuplicatedFindingIdentifier", "Finding Identifier is duplicated")
                elif doc is None or doc.get("ProductArn") != product:
                    failure = ("FindingNotFound", "Finding Not Found")
                if failure is not None or doc is None:
                    failure = failure or ("FindingNotFound", "Finding Not Found")
                    unprocessed.append({"FindingIdentifier": {"Id": fid, "ProductArn": product},
                                        "ErrorCode": failure[0], "ErrorMessage": failure[1]})
                    continue
                writes.append(self._apply(doc, updates, now))
                processed.append({"Id": fid, "ProductArn": product})
            if writes:
                self.advisor.save_all(writes)
        return {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}

    @staticmethod
    def _apply(doc: dict[str, Any], updates: dict[str, Any], now: str) -> dict[str, Any]:
        doc = dict(doc)
        private = dict(doc.get("_auroral", {}))
        if "Note" in updates:
            note = updates["Note"]
            doc["Note"] = {"Text": note.get("Text", ""), "UpdatedBy": note.get("UpdatedBy", ""), "UpdatedAt": now}
        if "Workflow" in updates and updates["Workflow"].get("Status"):
            doc["Workflow"] = {"Status": updates["Workflow"]["Status"]}
        if "Severity" in updates:
            sev = updates["Severity"]
            label = sev.get("Label")
            normalized = sev.get("Normalized")
            if label is None and normalized is not None:
                label = next(name for floor, name in _LABEL_FOR if int(normalized) >= floor)
            if label is not None and normalized is None:
                normalized = NORMALIZED.get(str(label), 0)
            new = dict(doc.get("Severity", {}))
            if label is not None:
                new["Label"] = label
                new["Normalized"] = int(normalized or 0)
            if sev.get("Product") is not None:
                new["Product"] = sev["Product"]
            doc["Severity"] = new
            private["severity_set"] = True
        for simple in ("VerificationState", "Confidence", "Criticality", "UserDefinedFields", "Types",
                       "RelatedFindings"):
            if simple in updates:
                doc[simple] = updates[simple]
        doc["_auroral"] = private
        return doc

    # --- standards and controls ------------------------------------------------------------

    def _standards_arn(self, standard: str) -> str:
        return f"arn:{self.partition}:securityhub:{self.region}::standards/{standard}"

    def _subscription_arn(self, account: str, standard: str) -> str:
        return f"arn:{self.partition}:securityhub:{self.region}:{account}:subscription/{standard}"

    def DescribeStandards(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Standards": [
            {"StandardsArn": self._standards_arn(sid), "Name": name, "Description": description,
             "EnabledByDefault": True, "StandardsManagedBy": {"Company": "AWS", "Product": "Security Hub"}}
            for sid, (name, description) in catalogue.STANDARDS.items()]}

    def GetEnabledStandards(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        wanted = set(params.get("StandardsSubscriptionArns") or [])
        subs = []
        for sid in catalogue.STANDARDS:
            arn = self._subscription_arn(ctx.account, sid)
            if wanted and arn not in wanted:
                continue
            subs.append({"StandardsSubscriptionArn": arn, "StandardsArn": self._standards_arn(sid),
                         "StandardsInput": {}, "StandardsStatus": "READY",
                         "StandardsControlsUpdatable": "READY_FOR_UPDATES"})
        return {"StandardsSubscriptions": subs}

    def _definition(self, c: catalogue.Control) -> dict[str, Any]:
        return {"SecurityControlId": c.id, "Title": c.title, "Description": c.description,
                "RemediationUrl": c.remediation_url, "SeverityRating": c.severity,
                "CurrentRegionAvailability": "AVAILABLE"}

    def ListSecurityControlDefinitions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        standard = params.get("StandardsArn")
        chosen = list(catalogue.ALL_CONTROLS)
        if standard:
            sid = str(standard).partition("::standards/")[2]
            if sid not in catalogue.STANDARDS:
                raise AwsError("ResourceNotFoundException", f"Standard {standard} not found.", 404)
            chosen = catalogue.controls_of(sid)
        items, token = _page(chosen, params, f"defs:{standard or ''}")
        out: dict[str, Any] = {"SecurityControlDefinitions": [self._definition(c) for c in items]}
        if token:
            out["NextToken"] = token
        return out

    def GetSecurityControlDefinition(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        control = catalogue.BY_ID.get(str(params.get("SecurityControlId")))
        if control is None:
            raise AwsError("ResourceNotFoundException",
                           f"Security control {params.get('SecurityControlId')} not found.", 404)
        return {"SecurityControlDefinition": self._definition(control)}

    def DescribeStandardsControls(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = str(params.get("StandardsSubscriptionArn") or "")
        sid = arn.partition(":subscription/")[2]
        if sid not in catalogue.STANDARDS or arn != self._subscription_arn(ctx.account, sid):
            raise AwsError("InvalidInputException", f"Invalid StandardsSubscriptionArn: {arn}", 400)
        since = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        items, token = _page(catalogue.controls_of(sid), params, f"controls:{arn}")
        out: dict[str, Any] = {"Controls": [
            {"StandardsControlArn": f"arn:{self.partition}:securityhub:{self.region}:{ctx.account}:control/"
                                    f"{sid.rpartition('/v/')[0]}/v/{sid.rpartition('/v/')[2]}/{c.id}",
             "ControlStatus": "ENABLED", "ControlStatusUpdatedAt": since, "ControlId": c.id, "Title": c.title,
             "Description": c.description, "RemediationUrl": c.remediation_url, "SeverityRating": c.severity,
             "RelatedRequirements": []}
            for c in items]}
        if token:
            out["NextToken"] = token
        return out

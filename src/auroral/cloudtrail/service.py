"""CloudTrail ``LookupEvents``: newest first, one lookup attribute, a time range, NextToken paging."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from auroral.api.context import RequestContext
from auroral.audit.trail import decode_token, encode_token
from auroral.errors import AwsError
from auroral.store import Store

_ATTRIBUTES = {"EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource",
               "AccessKeyId"}


class CloudTrailService:
    service = "cloudtrail"

    def __init__(self, store: Store, flush: Callable[[], None] = lambda: None) -> None:
        self._store = store
        self._flush = flush  # the audit trail buffers events: write them before reading

    def LookupEvents(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        attrs = params.get("LookupAttributes") or []
        if len(attrs) > 1:
            raise AwsError("InvalidLookupAttributesException",
                           "You cannot specify more than one lookup attribute.", 400)
        attribute: tuple[str, str] | None = None
        if attrs:
            key, value = attrs[0].get("AttributeKey"), attrs[0].get("AttributeValue")
            if key not in _ATTRIBUTES:
                raise AwsError("InvalidLookupAttributesException",
                               f"{key} is not a valid lookup attribute key.", 400)
            attribute = (str(key), str(value))
        start: dt.datetime | None = params.get("StartTime")
        end: dt.datetime | None = params.get("EndTime")
        if start and end and start > end:
            raise AwsError("InvalidTimeRangeException",
                           "Start time must be less than or equal to the end time.", 400)
        max_results = int(params.get("MaxResults") or 50)
        if not 1 <= max_results <= 50:
            raise AwsError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.", 400)
        before: int | None = None
        if params.get("NextToken"):
            before = decode_token(str(params["NextToken"]))
            if before is None:
                raise AwsError("InvalidNextTokenException", "Invalid NextToken.", 400)
        self._flush()
        rows = self._store.query_audit(
            start=start.timestamp() if start else None,
            end=end.timestamp() if end else None,
            attribute=attribute,
            before_seq=before,
            limit=max_results + 1,
        )
        events: list[dict[str, Any]] = []
        for _seq, row in rows[:max_results]:
            if str(row.doc.get("recipientAccountId") or ctx.account) != ctx.account:
                continue
            event: dict[str, Any] = {
                "EventId": row.event_id,
                "EventName": row.event_name,
                "ReadOnly": "true" if row.read_only else "false",
                "EventTime": dt.datetime.fromtimestamp(row.event_time, dt.UTC),
                "EventSource": row.event_source,
                "Resources": [dict(r) for r in row.resources],
                "CloudTrailEvent": json.dumps(row.doc),
            }
            if row.access_key:
                event["AccessKeyId"] = row.access_key
            if row.username:
                event["Username"] = row.username
            events.append(event)
        out: dict[str, Any] = {"Events": events}
        if len(rows) > max_results:
            out["NextToken"] = encode_token(rows[max_results - 1][0])
        return out

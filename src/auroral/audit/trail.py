"""Recording management events in CloudTrail's record format (eventVersion 1.08).

Events are buffered and written in batches (every ``FLUSH_SECONDS`` by the app's flusher, at
``FLUSH_EVENTS`` pending, before every lookup and at shutdown): one transaction per batch instead
of one per API call keeps the audit trail off the request's critical path.

Request parameters are copied with every secret replaced by ``HIDDEN_DUE_TO_SECURITY_REASONS``
(CloudTrail's own placeholder) before anything is written: passwords, secret strings, key
material and session tokens never reach the store.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from collections.abc import Mapping
from typing import Any

from auroral.api.context import Principal
from auroral.store import AuditRow, Store

HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
FLUSH_SECONDS = 0.2
FLUSH_EVENTS = 256
_SECRET_KEY = re.compile(
    r"password|secret(string|binary|accesskey)?$|sessiontoken|token$|plaintext|privatekey|ciphertextblob",
    re.IGNORECASE,
)


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    if lowered in {"secretid", "secretarn", "secretname", "secretstatus", "masterusersecret", "managemasteruserpassword",
                   "rotatemasteruserpassword", "masterusersecretkmskeyid", "excludepunctuation", "passwordlength"}:
        return False
    return bool(_SECRET_KEY.search(lowered))


def redact(value: Any) -> Any:
    """A JSON-safe copy of ``value`` with secrets hidden, bytes summarised and datetimes ISO-formatted."""
    if isinstance(value, Mapping):
        return {str(k): (HIDDEN if _is_secret(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, bytes):
        return HIDDEN
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def hide_sensitive(shape: Any, value: Any) -> Any:
    """``value`` (a request parsed with botocore ``shape``) with every member the model marks
    ``sensitive`` hidden, whatever its name (a VPN tunnel's ``PreSharedKey``...); ``redact`` then hides
    what the name-based rule catches."""
    if shape is None:
        return value
    if shape.metadata.get("sensitive"):
        return HIDDEN
    kind = shape.type_name
    if kind == "structure" and isinstance(value, Mapping):
        return {k: hide_sensitive(shape.members.get(k), v) for k, v in value.items()}
    if kind == "map" and isinstance(value, Mapping):
        return {k: hide_sensitive(shape.value, v) for k, v in value.items()}
    if kind == "list" and isinstance(value, list | tuple):
        return [hide_sensitive(shape.member, v) for v in value]
    return value


def _identity(principal: Principal | None, access_key: str | None) -> dict[str, Any]:
    if principal is None:
        return {"type": "Unknown", "accessKeyId": access_key} if access_key else {"type": "Unknown"}
    kind = {"root": "Root", "user": "IAMUser", "assumed-role": "AssumedRole", "service": "AWSService"}[principal.kind]
    ident: dict[str, Any] = {
        "type": kind,
        "principalId": principal.user_id,
        "arn": principal.arn,
        "accountId": principal.account,
        "accessKeyId": principal.access_key_id,
    }
    if principal.kind == "user":
        ident["userName"] = principal.name
    if principal.kind == "assumed-role":
        ident["sessionContext"] = {
            "sessionIssuer": {"type": "Role", "userName": principal.name},
            "attributes": {"mfaAuthenticated": str(principal.mfa).lower()},
        }
    return ident


def _username(principal: Principal | None) -> str | None:
    if principal is None:
        return None
    if principal.kind == "assumed-role":
        return principal.session_name
    return principal.name


class AuditTrail:
    def __init__(self, store: Store, region: str) -> None:
        self._store = store
        self._region = region
        self._pending: list[AuditRow] = []

    def flush(self) -> None:
        """Write every buffered event."""
        pending, self._pending = self._pending, []
        self._store.append_audit(pending)

    def record(
        self,
        *,
        request_id: str,
        service: str,
        operation: str,
        principal: Principal | None,
        access_key: str | None,
        source_ip: str,
        user_agent: str,
        params: Mapping[str, Any] | None,
        read_only: bool,
        resources: list[dict[str, str]],
        error_code: str | None = None,
        error_message: str | None = None,
        response_elements: Mapping[str, Any] | None = None,
        when: dt.datetime | None = None,
        event_type: str = "AwsApiCall",
        region: str | None = None,
    ) -> str:
        when = when or dt.datetime.now(dt.UTC)
        event_id = str(uuid.uuid4())
        account = principal.account if principal else None
        doc: dict[str, Any] = {
            "eventVersion": "1.08",
            "userIdentity": _identity(principal, access_key),
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": f"{service}.amazonaws.com",
            "eventName": operation,
            "awsRegion": region or self._region,
            "sourceIPAddress": source_ip,
            "userAgent": user_agent,
            "requestParameters": redact(params) if params else None,
            "responseElements": redact(response_elements) if response_elements else None,
            "requestID": request_id,
            "eventID": event_id,
            "readOnly": read_only,
            "resources": [{"ARN": r["ResourceName"], "type": r.get("ResourceType")} for r in resources],
            "eventType": event_type,
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
        }
        if error_code:
            doc["errorCode"] = error_code
            doc["errorMessage"] = error_message or ""
        self._pending.append(
            AuditRow(
                event_id=event_id,
                event_time=when.timestamp(),
                event_name=operation,
                event_source=doc["eventSource"],
                username=_username(principal),
                access_key=access_key,
                read_only=read_only,
                error_code=error_code,
                resources=resources,
                doc=doc,
            )
        )
        if len(self._pending) >= FLUSH_EVENTS:
            self.flush()
        return event_id


def encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode()


def decode_token(token: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        prefix, seq = text.split(":", 1)
        return int(seq) if prefix == "v1" else None
    except (ValueError, UnicodeDecodeError):
        return None

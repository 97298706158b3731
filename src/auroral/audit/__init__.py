"""The audit trail: every management call, allowed or denied, as a CloudTrail event."""

from auroral.audit.trail import AuditTrail, redact

__all__ = ["AuditTrail", "redact"]

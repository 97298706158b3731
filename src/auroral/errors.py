"""AWS errors as exception classes.

Handlers raise; the protocol layer renders. Every error carries the *wire* code
(which may differ from the botocore shape name), the HTTP status and the message.

    AwsError
     ├── ClientError-style subclasses are not needed: construct ``AwsError(code, message, status)``
     └── AccessDenied            rendered as ``AccessDenied`` (query/ec2) or ``AccessDeniedException`` (json)

Where the service model declares the error shape (``"error": {"code": ..., "httpStatusCode": ...}``)
``AwsError.from_model`` fills in code and status from it, so handlers only name the shape.
"""

from __future__ import annotations

from typing import Any


class AwsError(Exception):
    """An error that reaches the client as an AWS error document."""

    def __init__(
        self,
        code: str,
        message: str = "",
        status: int = 400,
        *,
        sender_fault: bool = True,
        fields: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.sender_fault = sender_fault
        # Extra members of the error shape (e.g. Secrets Manager's ``Message``) for the json protocol.
        self.fields = fields or {}

    def __repr__(self) -> str:
        return f"AwsError({self.code!r}, {self.message!r}, {self.status})"


class AccessDenied(AwsError):
    """An authorization failure. The protocol layer picks the wire code per protocol:
    ``AccessDenied`` (403) for query/ec2 services, ``AccessDeniedException`` (400) for json services."""

    def __init__(self, message: str) -> None:
        super().__init__("AccessDenied", message, 403)


def validation_error(message: str) -> AwsError:
    """The query protocol's generic input error (IAM, STS, RDS use ``ValidationError``)."""
    return AwsError("ValidationError", message, 400)


def invalid_parameter_value(message: str) -> AwsError:
    return AwsError("InvalidParameterValue", message, 400)


def invalid_parameter_combination(message: str) -> AwsError:
    return AwsError("InvalidParameterCombination", message, 400)

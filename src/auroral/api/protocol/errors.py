"""AWS error documents, one form per protocol.

    query  <ErrorResponse xmlns=…><Error><Type>Sender|Receiver</Type><Code/><Message/></Error><RequestId/></ErrorResponse>
    ec2    <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>
    json   {"__type": code, "message": msg, …fields}   + x-amzn-ErrorType

Authorization failures (``AccessDenied``) take each protocol's own name: ``AccessDeniedException`` (400)
for json services, ``UnauthorizedOperation`` (403) for EC2, ``AccessDenied`` (403) for query services.
"""

from __future__ import annotations

from typing import Any

from auroral.errors import AwsError

from . import json_
from .detect import Wire
from .http import HttpResponse
from .models import ServiceInfo, service_info
from .scalars import InputTypeError, xml_escape


def wire_code_and_status(protocol: str, error: AwsError) -> tuple[str, int]:
    if error.code == "AccessDenied":
        if protocol == "json":
            return "AccessDeniedException", 400
        if protocol == "rest-json":
            return "AccessDeniedException", 403
        if protocol == "ec2":
            return "UnauthorizedOperation", 403
    return error.code, error.status


def serialize_error(service: str, error: AwsError, request_id: str, *, wire: Wire | None = None) -> HttpResponse:
    """``error`` in ``service``'s protocol; ``wire``: of a service auroral does not serve, rendered from
    those few strings only (its model is neither loaded into nor kept in the codecs' caches)."""
    svc: ServiceInfo | Wire = wire if wire is not None else service_info(service)
    code, status = wire_code_and_status(svc.protocol, error)
    if svc.protocol in ("json", "rest-json"):
        if wire is not None:
            return _plain_json_error(wire, code, status, error, request_id)
        return _json_error(service, code, status, error, request_id)
    if svc.protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{xml_escape(code)}</Code>"
            f"<Message>{xml_escape(error.message)}</Message></Error></Errors>"
            f"<RequestID>{xml_escape(request_id)}</RequestID></Response>"
        )
    else:
        kind = "Sender" if error.sender_fault else "Receiver"
        body = (
            f'<ErrorResponse xmlns="{xml_escape(svc.xml_namespace)}"><Error><Type>{kind}</Type>'
            f"<Code>{xml_escape(code)}</Code><Message>{xml_escape(error.message)}</Message></Error>"
            f"<RequestId>{xml_escape(request_id)}</RequestId></ErrorResponse>"
        )
    return HttpResponse(status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body.encode())


def _plain_json_error(wire: Wire, code: str, status: int, error: AwsError, request_id: str) -> HttpResponse:
    """A json error document without the service's model (no error shape: ``message``, plain fields)."""
    doc: dict[str, Any] = {"__type": code, "message": error.message}
    doc.update({k: v for k, v in error.fields.items() if isinstance(v, str | int | float | bool)})
    content_type = "application/json" if wire.protocol == "rest-json" else f"application/x-amz-json-{wire.json_version}"
    return HttpResponse(status, {"Content-Type": content_type, "x-amzn-RequestId": request_id,
                                 "x-amzn-ErrorType": code}, json_.dumps(doc))


def _json_error(service: str, code: str, status: int, error: AwsError, request_id: str) -> HttpResponse:
    svc = service_info(service)
    shape = svc.error_shape_for_code(code)
    # Services differ in the case of the message key (Secrets Manager "Message", KMS "message"):
    # follow the error shape when the model has one.
    message_key = "Message" if shape is not None and "Message" in shape.members else "message"
    doc: dict[str, Any] = {"__type": code, message_key: error.message}
    if svc.protocol == "rest-json" and shape is not None and "Code" in shape.members:
        doc["Code"] = code  # Security Hub's error documents carry the code too
    if error.fields:
        if shape is not None:
            fields = {k: v for k, v in error.fields.items() if k in shape.members}
            doc.update(json_.encode(shape, fields, False))
        else:
            doc.update({k: v for k, v in error.fields.items() if isinstance(v, str | int | float | bool)})
    content_type = "application/json" if svc.protocol == "rest-json" else f"application/x-amz-json-{svc.json_version}"
    headers = {
        "Content-Type": content_type,
        "x-amzn-RequestId": request_id,
        "x-amzn-ErrorType": code,
    }
    return HttpResponse(status, headers, json_.dumps(doc))


def _coral_path(path: str) -> str:
    return ".".join(p[:1].lower() + p[1:] for p in path.split("."))


def input_type_error(service: str, exc: InputTypeError) -> AwsError:
    """Render a value that does not fit its modelled type the way the service would."""
    svc = service_info(service)
    shown = "null" if exc.value is None else f"'{str(exc.value)[:64]}'"
    if svc.protocol in ("json", "rest-json"):
        return AwsError("SerializationException", f"Value {shown} at '{exc.path}' is not {exc.expected}", 400)
    if svc.validation_style == "coral":
        return AwsError(
            "ValidationError",
            f"1 validation error detected: Value {shown} at '{_coral_path(exc.path)}' failed to satisfy "
            f"constraint: Member must be {exc.expected}",
            400,
        )
    return AwsError(
        "InvalidParameterValue",
        f"Invalid value {shown} for parameter {exc.path}: must be {exc.expected}",
        400,
    )

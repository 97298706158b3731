"""parse_request / serialize_response: the protocol-independent entry points.

Each picks the service's protocol module; all model work is cached per service and operation
(:func:`auroral.api.protocol.models.service_info`), so a request costs one walk of its own data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import botocore.model

from auroral.errors import AwsError

from . import json_, query, rest_json
from .errors import input_type_error
from .http import HttpRequest, HttpResponse
from .models import ServiceInfo, service_info
from .scalars import InputTypeError
from .validate import validate

# Refuse absurd forms before building anything from them (EC2 filters can be large, not this large).
MAX_FORM_FIELDS = 10_000

# Raise on output members the model does not define (handlers' bugs) instead of dropping them.
STRICT_OUTPUT = os.environ.get("AURORAL_STRICT_OUTPUT", "") not in ("", "0")


def parse_request(service: str, req: HttpRequest) -> tuple[botocore.model.OperationModel, dict[str, Any]]:
    """The operation and the input dict a boto3 user would have passed; raises only :class:`AwsError`."""
    svc = service_info(service)
    if svc.protocol == "json":
        return _parse_json(svc, req)
    if svc.protocol == "rest-json":
        return _parse_rest_json(svc, req)
    return _parse_form(svc, req)


def _form_pairs(req: HttpRequest) -> list[tuple[str, str]]:
    try:
        pairs = (
            parse_qsl(req.query, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS) if req.query else []
        )
        if req.body and req.method.upper() != "GET":
            text = req.body.decode("utf-8", "replace")
            pairs += parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError as exc:
        raise AwsError("MalformedQueryString", str(exc), 400) from None
    return pairs


def _parse_form(svc: ServiceInfo, req: HttpRequest) -> tuple[botocore.model.OperationModel, dict[str, Any]]:
    pairs = _form_pairs(req)
    action = version = None
    for key, value in pairs:
        if key == "Action":
            action = value
        elif key == "Version":
            version = value
    shown_version = version or svc.api_version
    op = svc.operation(action) if action else None
    # EC2 still answers older API versions with today's model; query services are strict about it.
    if op is None or (svc.protocol == "query" and version is not None and version != svc.api_version):
        raise AwsError("InvalidAction", f"Could not find operation {action} for version {shown_version}", 400)
    params: dict[str, Any] = {}
    if op.input is not None:
        ec2 = svc.protocol == "ec2"
        try:
            params = query.decode(op.input, query.build_tree(pairs), "", ec2)
        except InputTypeError as exc:
            raise input_type_error(svc.name, exc) from None
        except RecursionError:
            raise AwsError("MalformedQueryString", "The request is nested too deeply", 400) from None
        validate(svc.validation_style, "ValidationError", op.input, params, ec2)
    return op.model, params


def _parse_json(svc: ServiceInfo, req: HttpRequest) -> tuple[botocore.model.OperationModel, dict[str, Any]]:
    target = req.header("x-amz-target") or ""
    prefix, _, name = target.rpartition(".")
    op = svc.operation(name) if prefix == svc.target_prefix else None
    if op is None:
        raise AwsError("UnknownOperationException", "", 400)
    try:
        body = json.loads(req.body) if req.body.strip() else {}
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise AwsError("SerializationException", "The request body is not valid JSON", 400) from None
    if not isinstance(body, dict):
        raise AwsError("SerializationException", "The request body must be a JSON object", 400)
    params: dict[str, Any] = {}
    if op.input is not None:
        try:
            params = json_.decode(op.input, body, "")
        except InputTypeError as exc:
            raise input_type_error(svc.name, exc) from None
        except RecursionError:
            raise AwsError("SerializationException", "The request is nested too deeply", 400) from None
        validate(svc.validation_style, "ValidationException", op.input, params, False)
    return op.model, params


def _parse_rest_json(svc: ServiceInfo, req: HttpRequest) -> tuple[botocore.model.OperationModel, dict[str, Any]]:
    found = rest_json.match(svc.name, req.method, req.path, req.query)
    op = svc.operation(found[0]) if found is not None else None
    if found is None or op is None:
        # Unconfirmed: what API Gateway-fronted rest-json services answer for an unknown route.
        raise AwsError("UnknownOperationException", "", 404)
    try:
        body = json.loads(req.body) if req.body.strip() else {}
    except (ValueError, RecursionError):
        raise AwsError("SerializationException", "The request body is not valid JSON", 400) from None
    if not isinstance(body, dict):
        raise AwsError("SerializationException", "The request body must be a JSON object", 400)
    params: dict[str, Any] = {}
    if op.input is not None:
        shape = op.model.input_shape
        assert isinstance(shape, botocore.model.StructureShape)
        located = rest_json.located_members(shape)
        try:
            params = {k: v for k, v in json_.decode(op.input, body, "").items() if k not in located}
            params.update(rest_json.decode_located(shape, found[1], req.query, req.header))
        except InputTypeError as exc:
            raise input_type_error(svc.name, exc) from None
        except RecursionError:
            raise AwsError("SerializationException", "The request is nested too deeply", 400) from None
        validate(svc.validation_style, svc.validation_error, op.input, params, False)
    return op.model, params


def serialize_response(
    service: str,
    operation: botocore.model.OperationModel | str,
    output: Mapping[str, Any] | None,
    request_id: str,
    *,
    strict: bool | None = None,
) -> HttpResponse:
    """The HTTP response for a successful call; output keys the model does not define are dropped
    (or raise ``ValueError`` when ``strict``/``AURORAL_STRICT_OUTPUT`` is set)."""
    svc = service_info(service)
    name = operation if isinstance(operation, str) else operation.name
    op = svc.operation(name)
    if op is None:
        raise KeyError(name)
    strict = STRICT_OUTPUT if strict is None else strict
    output = output or {}
    if svc.protocol == "json":
        doc = json_.encode(op.output, output, strict) if op.output is not None else {}
        headers = {
            "Content-Type": f"application/x-amz-json-{svc.json_version}",
            "x-amzn-RequestId": request_id,
        }
        return HttpResponse(200, headers, json_.dumps(doc))
    if svc.protocol == "rest-json":
        doc = json_.encode(op.output, output, strict) if op.output is not None else {}
        status = int(op.model.http.get("responseCode", 200))
        return HttpResponse(status, {"Content-Type": "application/json", "x-amzn-RequestId": request_id},
                            json_.dumps(doc))
    if svc.protocol == "ec2":
        namespace = svc.xml_namespace if svc.xml_namespace.endswith("/") else svc.xml_namespace + "/"
        body = query.ec2_response(name, namespace, op.output, output, request_id, strict)
    else:
        body = query.query_response(
            name, svc.xml_namespace, op.result_wrapper, op.output, output, request_id, strict
        )
    return HttpResponse(200, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body)

"""botocore as the oracle: for every operation of every served service, a request serialized by
botocore parses back to the same input, and a response we serialize parses (with botocore) back to
the same output."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import botocore.parsers
import botocore.serialize
import pytest
from botocore.awsrequest import create_request_object, prepare_request_dict
from protocol_gen import generate

from auroral.api.protocol import HttpRequest, parse_request, serialize_response, service_model

SERVICES = ["iam", "sts", "rds", "ec2", "secretsmanager", "kms", "cloudtrail", "securityhub"]

OPERATIONS = [
    pytest.param(service, op, id=f"{service}.{op}")
    for service in SERVICES
    for op in service_model(service).operation_names
]


def botocore_request(service: str, op_name: str, params: dict[str, Any]) -> HttpRequest:
    """The HTTP request botocore sends for ``params`` (its validator also checks our generator)."""
    model = service_model(service)
    operation = model.operation_model(op_name)
    serializer = botocore.serialize.create_serializer(model.protocol, include_validation=True)
    request_dict = serializer.serialize_to_request(params, operation)
    prepare_request_dict(request_dict, endpoint_url=f"https://{service}.us-east-1.amazonaws.com")
    prepared = create_request_object(request_dict).prepare()
    url = urlsplit(prepared.url)
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    return HttpRequest(prepared.method, url.path, url.query, dict(prepared.headers.items()), body)


@pytest.mark.parametrize(("service", "op_name"), OPERATIONS)
def test_request_round_trip(service: str, op_name: str) -> None:
    operation = service_model(service).operation_model(op_name)
    params = generate(operation.input_shape) if operation.input_shape is not None else {}
    parsed_op, parsed = parse_request(service, botocore_request(service, op_name, params))
    assert parsed_op.name == op_name
    assert parsed == params


@pytest.mark.parametrize(("service", "op_name"), OPERATIONS)
def test_response_round_trip(service: str, op_name: str) -> None:
    model = service_model(service)
    operation = model.operation_model(op_name)
    output = generate(operation.output_shape) if operation.output_shape is not None else {}
    response = serialize_response(service, operation, output, "req-123", strict=True)
    assert response.status == 200
    assert response.headers["x-amzn-RequestId"] == "req-123"
    parser = botocore.parsers.create_parser(model.protocol)
    parsed = parser.parse(
        {
            "status_code": response.status,
            "headers": {k.lower(): v for k, v in response.headers.items()},
            "body": response.body,
        },
        operation.output_shape,
    )
    metadata = parsed.pop("ResponseMetadata")
    assert metadata["RequestId"] == "req-123"
    assert parsed == output

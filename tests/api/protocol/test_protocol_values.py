"""Edge values: escaping, timestamps, strictness, hostile input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import botocore.parsers
import pytest

from auroral.api.protocol import HttpRequest, parse_request, serialize_response, service_model
from auroral.errors import AwsError


def botocore_parse(service: str, op: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    model = service_model(service)
    parser = botocore.parsers.create_parser(model.protocol)
    lowered = {k.lower(): v for k, v in headers.items()}
    parsed: dict[str, Any] = parser.parse(
        {"status_code": 200, "headers": lowered, "body": body}, model.operation_model(op).output_shape
    )
    parsed.pop("ResponseMetadata")
    return parsed


def test_xml_escaping_round_trips_through_botocore() -> None:
    text = "a&b<c>d\"e'f\tg\nh\ri"
    response = serialize_response(
        "iam",
        service_model("iam").operation_model("GetUser"),
        {
            "User": {
                "Path": "/",
                "UserName": text,
                "UserId": "AIDA",
                "Arn": "arn",
                "CreateDate": datetime(2024, 1, 1),
            }
        },
        "r",
    )
    parsed = botocore_parse("iam", "GetUser", response.body, response.headers)
    assert parsed["User"]["UserName"] == text
    assert parsed["User"]["CreateDate"] == datetime(2024, 1, 1, tzinfo=UTC)


def test_control_characters_cannot_break_the_document() -> None:
    response = serialize_response(
        "ec2", "DescribeKeyPairs", {"KeyPairs": [{"KeyName": "a\x00b\x1bc\ud800"}]}, "r"
    )
    parsed = botocore_parse("ec2", "DescribeKeyPairs", response.body, response.headers)
    assert parsed["KeyPairs"][0]["KeyName"] == "a\ufffdb\ufffdc\ufffd"


def test_timestamp_forms() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    response = serialize_response("secretsmanager", "DescribeSecret", {"Name": "n", "CreatedDate": when}, "r")
    assert json.loads(response.body)["CreatedDate"] == pytest.approx(when.timestamp())
    response = serialize_response(
        "rds", "DescribeDBClusters", {"DBClusters": [{"ClusterCreateTime": when}]}, "r"
    )
    assert b"<ClusterCreateTime>2024-05-06T07:08:09.123Z</ClusterCreateTime>" in response.body
    # epoch numbers and naive datetimes (taken as UTC) are accepted from handlers
    response = serialize_response(
        "rds", "DescribeDBClusters", {"DBClusters": [{"ClusterCreateTime": 0}]}, "r"
    )
    assert b"<ClusterCreateTime>1970-01-01T00:00:00Z</ClusterCreateTime>" in response.body


@pytest.mark.parametrize(
    "raw", ["2024-05-06T07:08:09Z", "2024-05-06T07:08:09.000Z", "2024-05-06T09:08:09+02:00", "1714979289"]
)
def test_timestamp_inputs(raw: str) -> None:
    target = {"X-Amz-Target": "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"}
    req = HttpRequest("POST", "/", "", target, json.dumps({"StartTime": raw}).encode())
    _, params = parse_request("cloudtrail", req)
    assert params["StartTime"] == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    body = urlencode({"Action": "DescribeEvents", "Version": "2014-10-31", "StartTime": raw}).encode()
    _, params = parse_request("rds", HttpRequest("POST", "/", "", {}, body))
    assert params["StartTime"] == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_unknown_output_members_dropped_or_rejected() -> None:
    op = service_model("kms").operation_model("CreateKey")
    response = serialize_response("kms", op, {"KeyMetadata": {"KeyId": "k", "Secret": "x"}, "Junk": 1}, "r")
    assert json.loads(response.body) == {"KeyMetadata": {"KeyId": "k"}}
    with pytest.raises(ValueError):
        serialize_response("kms", op, {"Junk": 1}, "r", strict=True)


def test_hostile_nesting_is_an_aws_error() -> None:
    req = HttpRequest("POST", "/", "", {"X-Amz-Target": "TrentService.ListKeys"}, b"[" * 100_000)
    with pytest.raises(AwsError):
        parse_request("kms", req)
    body = ("Action=ListUsers&Version=2010-05-08&" + "A." * 50_000 + "B=1").encode()
    _, params = parse_request("iam", HttpRequest("POST", "/", "", {}, body))
    assert params == {}


def test_unknown_parameters_are_ignored() -> None:
    body = b"Action=ListUsers&Version=2010-05-08&PathPrefix=%2F&Bogus=1&X-Amz-Date=20240101T000000Z"
    _, params = parse_request("iam", HttpRequest("POST", "/", "", {}, body))
    assert params == {"PathPrefix": "/"}

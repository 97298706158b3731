"""Error documents, input validation and service detection, checked against botocore/boto3."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import boto3
import botocore.parsers
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from auroral.api.protocol import (
    HttpRequest,
    HttpResponse,
    detect_service,
    error_from_shape,
    parse_request,
    serialize_error,
    serialize_response,
    service_model,
)
from auroral.errors import AccessDenied, AwsError


def parse_error(service: str, response: HttpResponse) -> dict[str, Any]:
    model = service_model(service)
    parser = botocore.parsers.create_parser(model.protocol)
    headers = {k.lower(): v for k, v in response.headers.items()}
    result: dict[str, Any] = parser.parse(
        {"status_code": response.status, "headers": headers, "body": response.body}, None
    )
    return result


@pytest.mark.parametrize(
    ("service", "error", "code", "status"),
    [
        (
            "iam",
            AwsError("NoSuchEntity", "The user with name bob cannot be found.", 404),
            "NoSuchEntity",
            404,
        ),
        (
            "rds",
            error_from_shape("rds", "DBClusterNotFoundFault", "DBCluster c not found."),
            "DBClusterNotFoundFault",
            404,
        ),
        ("sts", AccessDenied("not authorized to perform sts:AssumeRole"), "AccessDenied", 403),
        (
            "ec2",
            AwsError("InvalidGroup.NotFound", "The security group 'sg-1' does not exist", 400),
            "InvalidGroup.NotFound",
            400,
        ),
        (
            "ec2",
            AccessDenied("You are not authorized to perform this operation."),
            "UnauthorizedOperation",
            403,
        ),
        (
            "secretsmanager",
            AwsError("ResourceNotFoundException", "Secrets Manager can't find it.", 400),
            "ResourceNotFoundException",
            400,
        ),
        ("kms", AccessDenied("User is not authorized to perform: kms:Decrypt"), "AccessDeniedException", 400),
        # rest-json: Security Hub's AccessDeniedException is a 403
        ("securityhub", AccessDenied("User is not authorized to perform: securityhub:GetFindings"),
         "AccessDeniedException", 403),
        ("securityhub", AwsError("InvalidInputException", "bad filter", 400), "InvalidInputException", 400),
        (
            "cloudtrail",
            AwsError("InternalFailure", "boom <&> 'x'", 500, sender_fault=False),
            "InternalFailure",
            500,
        ),
    ],
)
def test_error_documents_parse_with_botocore(service: str, error: AwsError, code: str, status: int) -> None:
    response = serialize_error(service, error, "rid-1")
    assert response.status == status
    parsed = parse_error(service, response)
    assert parsed["Error"]["Code"] == code
    assert parsed["Error"]["Message"] == error.message
    assert parsed["ResponseMetadata"]["RequestId"] == "rid-1"


def test_error_from_shape_uses_wire_code_and_status() -> None:
    error = error_from_shape("rds", "DBInstanceNotFoundFault", "gone")
    assert (error.code, error.status, error.message, error.sender_fault) == (
        "DBInstanceNotFound",
        404,
        "gone",
        True,
    )
    assert error_from_shape("iam", "NoSuchEntityException", "x").code == "NoSuchEntity"
    assert error_from_shape("kms", "NotFoundException", "x").code == "NotFoundException"
    with pytest.raises(KeyError):
        error_from_shape("rds", "NoSuchFault", "x")
    with pytest.raises(KeyError):
        error_from_shape("rds", "DBCluster", "x")  # a shape, but not an error


def test_query_error_type_reflects_fault() -> None:
    body = serialize_error("iam", AwsError("ServiceFailure", "x", 500, sender_fault=False), "r").body
    assert b"<Type>Receiver</Type>" in body
    assert b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">' in body


def test_json_error_fields_and_message_key() -> None:
    response = serialize_error("secretsmanager", AwsError("ResourceNotFoundException", "nope"), "r")
    assert json.loads(response.body) == {"__type": "ResourceNotFoundException", "Message": "nope"}
    assert response.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    response = serialize_error("kms", AwsError("NotFoundException", "nope", fields={"Unmodelled": 1}), "r")
    assert json.loads(response.body) == {"__type": "NotFoundException", "message": "nope"}


# --- validation -------------------------------------------------------------------------------


def form(service: str, **params: str) -> HttpRequest:
    version = service_model(service).api_version
    body = urlencode({"Version": version, **params}).encode()
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    return HttpRequest("POST", "/", "", headers, body)


def target(service: str, op: str, body: Any) -> HttpRequest:
    prefix = service_model(service).metadata["targetPrefix"]
    headers = {"X-Amz-Target": f"{prefix}.{op}", "Content-Type": "application/x-amz-json-1.1"}
    return HttpRequest("POST", "/", "", headers, json.dumps(body).encode())


def rejects(service: str, req: HttpRequest) -> AwsError:
    with pytest.raises(AwsError) as info:
        parse_request(service, req)
    return info.value


def test_missing_required_query() -> None:
    error = rejects("iam", form("iam", Action="CreateUser"))
    assert (error.code, error.status) == ("ValidationError", 400)
    assert error.message == (
        "1 validation error detected: Value null at 'userName' failed to satisfy constraint: Member must not be null"
    )


def test_too_long_and_pattern() -> None:
    error = rejects("iam", form("iam", Action="CreateUser", UserName="u" * 65))
    assert error.message == (
        "1 validation error detected: Value '" + "u" * 65 + "' at 'userName' failed to satisfy constraint: "
        "Member must have length less than or equal to 64"
    )
    error = rejects("iam", form("iam", Action="CreateUser", UserName="bad name!"))
    assert "Member must satisfy regular expression pattern: [\\w+=,.@-]+" in error.message


def test_bad_enum_and_multiple_errors() -> None:
    error = rejects("iam", form("iam", Action="UpdateAccessKey", Status="On"))
    assert error.message.startswith("2 validation errors detected: ")
    assert (
        "Value null at 'accessKeyId' failed to satisfy constraint: Member must not be null" in error.message
    )
    assert (
        "Value 'On' at 'status' failed to satisfy constraint: Member must satisfy enum value set: "
        "[Active, Inactive, Expired]" in error.message
    )


def test_nested_paths_use_coral_form() -> None:
    req = form("iam", Action="CreateUser", UserName="bob", **{"Tags.member.1.Key": "k"})
    error = rejects("iam", req)
    assert "Value null at 'tags.1.member.value' failed to satisfy constraint" in error.message


def test_wrong_integer_string() -> None:
    error = rejects("iam", form("iam", Action="ListUsers", MaxItems="abc"))
    assert error.code == "ValidationError"
    assert "'abc' at 'maxItems'" in error.message
    error = rejects("ec2", form("ec2", Action="DescribeInstances", MaxResults="abc"))
    assert error.code == "InvalidParameterValue"
    assert "MaxResults" in error.message
    error = rejects("kms", target("kms", "ListKeys", {"Limit": "ten"}))
    assert error.code == "SerializationException"


def test_unknown_action() -> None:
    error = rejects("iam", form("iam", Action="LaunchRocket"))
    assert (error.code, error.message, error.status) == (
        "InvalidAction",
        "Could not find operation LaunchRocket for version 2010-05-08",
        400,
    )
    error = rejects("rds", HttpRequest("POST", "/", "", {}, b"Version=2014-10-31"))
    assert error.code == "InvalidAction"
    error = rejects("iam", form("iam", Action="ListUsers", Version="2001-01-01"))
    assert error.message == "Could not find operation ListUsers for version 2001-01-01"
    error = rejects("kms", target("kms", "LaunchRocket", {}))
    assert (error.code, error.status) == ("UnknownOperationException", 400)
    error = rejects("kms", target("secretsmanager", "ListSecrets", {}))
    assert error.code == "UnknownOperationException"


def test_missing_parameter_rds_and_ec2() -> None:
    error = rejects("rds", form("rds", Action="DeleteDBCluster"))
    assert (error.code, error.message) == (
        "MissingParameter",
        "The request must contain the parameter DBClusterIdentifier",
    )
    error = rejects("ec2", form("ec2", Action="RunInstances", MinCount="1"))
    assert (error.code, error.message) == (
        "MissingParameter",
        "The request must contain the parameter MaxCount",
    )


def test_json_validation_and_sensitive_values() -> None:
    error = rejects("secretsmanager", target("secretsmanager", "GetSecretValue", {}))
    assert (error.code, error.status) == ("ValidationException", 400)
    assert error.message == (
        "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null"
    )
    error = rejects(
        "secretsmanager", target("secretsmanager", "CreateSecret", {"Name": "n", "SecretString": ""})
    )
    assert error.message == (
        "1 validation error detected: Value at 'secretString' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )
    error = rejects("kms", target("kms", "CreateKey", {"KeySpec": "RSA_1"}))
    assert (
        "Value 'RSA_1' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: ["
        in error.message
    )


@pytest.mark.parametrize(
    "req",
    [
        HttpRequest("POST", "/", "", {"X-Amz-Target": "TrentService.ListKeys"}, b"[1]"),
        HttpRequest("POST", "/", "", {"X-Amz-Target": "TrentService.ListKeys"}, b"{not json"),
        HttpRequest("POST", "/", "", {"X-Amz-Target": "TrentService.ListKeys"}, b"\xff\xfe"),
        HttpRequest(
            "POST", "/", "", {"X-Amz-Target": "TrentService.Encrypt"}, b'{"KeyId":"k","Plaintext":"!!"}'
        ),
        HttpRequest(
            "POST", "/", "", {"X-Amz-Target": "TrentService.Encrypt"}, b'{"KeyId":{"a":1},"Plaintext":"AA=="}'
        ),
    ],
)
def test_malformed_json_is_an_aws_error(req: HttpRequest) -> None:
    assert rejects("kms", req).code == "SerializationException"


@pytest.mark.parametrize(
    "body",
    [
        b"Action=ListUsers&Version=2010-05-08&MaxItems=",
        b"Action=ListUsers&Version=2010-05-08&MaxItems.member.1=3",
        b"Action=CreateUser&Version=2010-05-08&UserName=bob&Tags.member.1=x",
        b"Action=CreateUser&Version=2010-05-08&UserName=bob&Tags.member.x.Key=k",
        b"Action=UploadSSHPublicKey&Version=2010-05-08&UserName=b&SSHPublicKeyBody=%00",
        b"Action=ListUsers&Version=2010-05-08&%ff%fe=%ff",
    ],
)
def test_odd_forms_never_raise_anything_but_aws_errors(body: bytes) -> None:
    with contextlib.suppress(AwsError):
        parse_request("iam", HttpRequest("POST", "/", "", {}, body))


def test_get_with_query_string() -> None:
    op, params = parse_request(
        "sts", HttpRequest("GET", "/", "Action=GetCallerIdentity&Version=2011-06-15", {}, b"")
    )
    assert (op.name, params) == ("GetCallerIdentity", {})


# --- detect_service ---------------------------------------------------------------------------


def auth(service: str) -> dict[str, str]:
    return {
        "Authorization": f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    }


@pytest.mark.parametrize("service", ["iam", "sts", "rds", "ec2", "secretsmanager", "kms", "cloudtrail",
                                     "securityhub"])
def test_detect_from_authorization(service: str) -> None:
    assert detect_service(HttpRequest("POST", "/", "", auth(service), b"")) == service
    lower = {k.lower(): v for k, v in auth(service).items()}
    assert detect_service(HttpRequest("POST", "/", "", lower, b"")) == service


def test_detect_from_presigned_query_and_target() -> None:
    query = (
        "Action=ListUsers&X-Amz-Credential=AKID%2F20240101%2Fus-east-1%2Fiam%2Faws4_request&X-Amz-Signature=x"
    )
    assert detect_service(HttpRequest("GET", "/", query, {}, b"")) == "iam"
    for prefix, name in [
        ("secretsmanager", "secretsmanager"),
        ("TrentService", "kms"),
        ("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101", "cloudtrail"),
    ]:
        req = HttpRequest("POST", "/", "", {"x-amz-target": f"{prefix}.SomeOp"}, b"{}")
        assert detect_service(req) == name


def test_detect_unknown() -> None:
    assert detect_service(HttpRequest("POST", "/", "", auth("rds-db"), b"")) is None
    assert detect_service(HttpRequest("POST", "/", "", auth("s3"), b"")) is None
    assert detect_service(HttpRequest("POST", "/", "", {}, b"Action=ListUsers")) is None
    assert (
        detect_service(HttpRequest("POST", "/", "", {"X-Amz-Target": "DynamoDB_20120810.ListTables"}, b""))
        is None
    )


# --- boto3 end to end, through a before-send hook ---------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


def client(service: str, handler: Handler) -> Any:
    c = boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )

    def send(request: Any, **_: Any) -> AWSResponse:
        url = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        req = HttpRequest(request.method, url.path, url.query, headers, body)
        name = detect_service(req)
        assert name == service
        try:
            op, params = parse_request(name, req)
            response = serialize_response(name, op, handler(op.name, params), "rid")
        except AwsError as error:
            response = serialize_error(name, error, "rid")
        return AWSResponse(request.url, response.status, response.headers, _Raw(response.body))

    c.meta.events.register("before-send", send)
    return c


def test_boto3_end_to_end() -> None:
    def secrets(op: str, params: dict[str, Any]) -> dict[str, Any]:
        if params["SecretId"] == "missing":
            raise error_from_shape("secretsmanager", "ResourceNotFoundException", "not here")
        return {"Name": params["SecretId"], "SecretString": "s3cr3t", "VersionStages": ["AWSCURRENT"]}

    sm = client("secretsmanager", secrets)
    assert sm.get_secret_value(SecretId="db")["SecretString"] == "s3cr3t"
    with pytest.raises(sm.exceptions.ResourceNotFoundException) as info:
        sm.get_secret_value(SecretId="missing")
    assert info.value.response["Error"]["Message"] == "not here"

    def rds(op: str, params: dict[str, Any]) -> dict[str, Any]:
        raise error_from_shape(
            "rds", "DBClusterNotFoundFault", f"DBCluster {params['DBClusterIdentifier']} not found."
        )

    with pytest.raises(ClientError) as cinfo:
        client("rds", rds).describe_db_clusters(DBClusterIdentifier="c1")
    assert cinfo.value.response["Error"]["Code"] == "DBClusterNotFoundFault"
    assert cinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    def ec2(op: str, params: dict[str, Any]) -> dict[str, Any]:
        assert params == {"GroupIds": ["sg-1", "sg-2"]}
        return {
            "SecurityGroups": [
                {"GroupId": g, "GroupName": "n", "IpPermissions": []} for g in params["GroupIds"]
            ]
        }

    groups = client("ec2", ec2).describe_security_groups(GroupIds=["sg-1", "sg-2"])["SecurityGroups"]
    assert [g["GroupId"] for g in groups] == ["sg-1", "sg-2"]

    def denied(op: str, params: dict[str, Any]) -> dict[str, Any]:
        raise AccessDenied("no")

    with pytest.raises(ClientError) as cinfo:
        client("kms", denied).list_keys()
    assert cinfo.value.response["Error"]["Code"] == "AccessDeniedException"


def test_rest_json_routes_and_rejects() -> None:
    """rest-json: the method and path name the operation; a greedy label takes the rest of the path;
    an unknown route, a body that is not JSON and a mistyped member get their errors (never a 500)."""
    arn = "arn:aws:securityhub:us-east-1:123456789012:subscription/aws-foundational-security-best-practices/v/1.0.0"
    op, params = parse_request("securityhub", HttpRequest("GET", "/standards/controls/" + quote(arn, safe="/"),
                                                          "MaxResults=5", auth("securityhub"), b""))
    assert op.name == "DescribeStandardsControls"
    assert params == {"StandardsSubscriptionArn": arn, "MaxResults": 5}
    op, params = parse_request("securityhub", HttpRequest("POST", "/standards/get", "", auth("securityhub"), b""))
    assert op.name == "GetEnabledStandards" and params == {}
    assert rejects("securityhub", HttpRequest("POST", "/nowhere", "", auth("securityhub"), b"")).code == \
        "UnknownOperationException"
    assert rejects("securityhub", HttpRequest("POST", "/findings", "", auth("securityhub"), b"{")).code == \
        "SerializationException"
    error = rejects("securityhub", HttpRequest("POST", "/findings", "", auth("securityhub"), b'{"MaxResults": "x"}'))
    assert error.code == "SerializationException"
    error = rejects("securityhub", HttpRequest("GET", "/standards/controls/x", "MaxResults=ten", auth("securityhub"),
                                               b""))
    assert error.code == "SerializationException"
    error = rejects("securityhub", HttpRequest("POST", "/findings", "", auth("securityhub"), b'{"MaxResults": 0}'))
    assert error.code == "InvalidInputException"


@pytest.mark.parametrize("service", ["organizations", "sns", "account"])  # json, query, rest-json
def test_unserved_service_error_keeps_no_model(service: str) -> None:
    """A request signed for a service auroral does not serve gets its error in that service's protocol
    without the service's model being loaded into (and kept by) the codecs' caches: a caller naming
    every service botocore knows must not grow the server by their models (hundreds of MB)."""
    from auroral.api.protocol import models, unserved_service

    credential = f"AKIDEXAMPLE/20260101/us-east-1/{service}/aws4_request"
    req = HttpRequest("POST", "/", "", {"Authorization": f"AWS4-HMAC-SHA256 Credential={credential}, "
                                                         "SignedHeaders=host, Signature=00"})
    kept = (models.service_info.cache_info().currsize, models.service_model.cache_info().currsize)
    wire = unserved_service(req)
    assert wire is not None and wire.name == service
    response = serialize_error(service, AwsError("InvalidAction", f"auroral does not serve the {service} API.",
                                                 400), "req-1", wire=wire)
    assert (models.service_info.cache_info().currsize, models.service_model.cache_info().currsize) == kept
    error = parse_error(service, response)["Error"]  # botocore's parser of the service's own protocol
    assert error["Code"] == "InvalidAction" and error["Message"] == f"auroral does not serve the {service} API."
    assert response.status == 400

"""The request pipeline, end to end, against a running ``auroral up`` with unmodified boto3."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from typing import Any

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server, UserKeys, unique


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response["Error"]
    return err["Code"], err.get("Message", ""), exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _send(server: Server, body: bytes | str, headers: dict[str, str], method: str = "POST",
          query: str = "") -> tuple[int, str]:
    req = urllib.request.Request(server.url + "/" + (f"?{query}" if query else ""),
                                 data=body.encode() if isinstance(body, str) else body,
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _signed(server: Server, body: str, *, service: str = "iam", when: dt.datetime | None = None,
            key: str | None = None, secret: str | None = None) -> dict[str, str]:
    creds = botocore.credentials.Credentials(key or server.access_key, secret or server.secret_key)
    req = botocore.awsrequest.AWSRequest(method="POST", url=server.url + "/", data=body,
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    signer = botocore.auth.SigV4Auth(creds, service, "us-east-1")
    if when is not None:
        # botocore reads the time from datetime.datetime.utcnow via its own module; sign by hand instead.
        req.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
        signer._modify_request_before_signing = lambda r: None  # type: ignore[method-assign]
        req.headers["X-Amz-Date"] = when.strftime("%Y%m%dT%H%M%SZ")
        req.headers["host"] = server.url.split("//", 1)[1]
    signer.add_auth(req)
    return dict(req.headers.items())


def test_health_reports_ready_and_services(server: Server) -> None:
    with urllib.request.urlopen(server.url + "/_auroral/health") as resp:
        body = json.loads(resp.read())
    assert resp.status == 200
    assert body["status"] == "ready"
    assert {"iam", "sts", "rds", "cloudtrail"} <= set(body["services"])


def test_root_identity(server: Server) -> None:
    ident = server.client("sts").get_caller_identity()
    assert ident["Account"] == server.account
    assert ident["Arn"] == f"arn:aws:iam::{server.account}:root"


def test_unsigned_request_is_refused(server: Server) -> None:
    status, body = _send(server, "Action=ListUsers&Version=2010-05-08",
                         {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403
    assert "<Code>MissingAuthenticationToken</Code>" in body


def test_unknown_key_and_wrong_secret(server: Server) -> None:
    with pytest.raises(ClientError) as exc:
        server.client("iam", access_key="AKIAUNKNOWNKEY000000", secret_key="x" * 40).list_users()
    assert _error(exc) == ("InvalidClientTokenId", "The security token included in the request is invalid.", 403)
    with pytest.raises(ClientError) as exc:
        server.client("iam", secret_key="wrong" * 8).list_users()
    code, message, status = _error(exc)
    assert (code, status) == ("SignatureDoesNotMatch", 403)
    assert "signature we calculated does not match" in message


def test_clock_skew_is_refused(server: Server) -> None:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    body = "Action=ListUsers&Version=2010-05-08"
    status, text = _send(server, body, _signed(server, body, when=when))
    assert status == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in text
    assert "Signature expired" in text


def test_inactive_key_is_refused(server: Server, make_user: Any) -> None:
    user: UserKeys = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]})
    sts = server.client("sts", access_key=user.access_key, secret_key=user.secret_key)
    assert sts.get_caller_identity()["Arn"] == user.arn
    server.client("iam").update_access_key(UserName=user.name, AccessKeyId=user.access_key, Status="Inactive")
    with pytest.raises(ClientError) as exc:
        sts.get_caller_identity()
    assert _error(exc)[0] == "InvalidClientTokenId"


def test_presigned_query_form(server: Server) -> None:
    sts = server.client("sts")
    url = sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    with urllib.request.urlopen(url) as resp:
        text = resp.read().decode()
    assert f"arn:aws:iam::{server.account}:root" in text


def test_validation_errors_are_aws_errors(server: Server) -> None:
    iam = server.client("iam")
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName="x" * 65)
    code, message, status = _error(exc)
    assert (code, status) == ("ValidationError", 400)
    assert "Member must have length less than or equal to 64" in message


def test_unknown_action_and_garbage_never_500(server: Server) -> None:
    body = "Action=NoSuchThing&Version=2010-05-08"
    status, text = _send(server, body, _signed(server, body))
    assert status == 400
    assert "<Code>InvalidAction</Code>" in text
    for garbage in ["\x00\xff%%%", "Action=CreateUser&UserName=%ZZ&Version=2010-05-08", "&&&==", "a" * 5000]:
        status, text = _send(server, garbage, _signed(server, garbage))
        assert 400 <= status < 500, (garbage[:20], status, text)
        assert "Traceback" not in text


def test_denied_then_allowed_with_aws_messages(server: Server, make_user: Any) -> None:
    user: UserKeys = make_user()
    iam = server.client("iam", access_key=user.access_key, secret_key=user.secret_key)
    with pytest.raises(ClientError) as exc:
        iam.list_users()
    code, message, status = _error(exc)
    assert (code, status) == ("AccessDenied", 403)
    assert message == (f"User: {user.arn} is not authorized to perform: iam:ListUsers on resource: "
                       f"arn:aws:iam::{server.account}:user/* because no identity-based policy allows the "
                       "iam:ListUsers action")
    root_iam = server.client("iam")
    root_iam.attach_user_policy(UserName=user.name, PolicyArn="arn:aws:iam::aws:policy/IAMReadOnlyAccess")
    assert any(u["UserName"] == user.name for u in iam.list_users()["Users"])
    root_iam.put_user_policy(UserName=user.name, PolicyName="deny", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iam:List*", "Resource": "*"}]}))
    with pytest.raises(ClientError) as exc:
        iam.list_users()
    assert _error(exc)[1].endswith("with an explicit deny in an identity-based policy")


def test_json_service_denial_is_access_denied_exception(server: Server, make_user: Any) -> None:
    user: UserKeys = make_user()
    trail = server.client("cloudtrail", access_key=user.access_key, secret_key=user.secret_key)
    with pytest.raises(ClientError) as exc:
        trail.lookup_events(MaxResults=1)
    code, message, status = _error(exc)
    assert (code, status) == ("AccessDeniedException", 400)
    assert "cloudtrail:LookupEvents" in message


def test_condition_on_source_ip_and_region(server: Server, make_user: Any) -> None:
    user: UserKeys = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:GetUser", "cloudtrail:LookupEvents"], "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"},
                       "StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
        {"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]})
    iam = server.client("iam", access_key=user.access_key, secret_key=user.secret_key)
    assert iam.get_user(UserName=user.name)["User"]["Arn"] == user.arn
    with pytest.raises(ClientError) as exc:
        iam.list_users()
    assert _error(exc)[0] == "AccessDenied"
    server.client("cloudtrail", access_key=user.access_key, secret_key=user.secret_key).lookup_events(MaxResults=1)
    elsewhere = server.client("cloudtrail", access_key=user.access_key, secret_key=user.secret_key,
                              region_name="eu-west-1")
    with pytest.raises(ClientError) as exc:
        elsewhere.lookup_events(MaxResults=1)
    assert _error(exc)[0] == "AccessDeniedException"


def test_assume_role_session_is_authorized_by_role_and_session_policy(server: Server, make_user: Any) -> None:
    iam = server.client("iam")
    role = unique("role")
    user: UserKeys = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": user.arn},
                                                "Action": "sts:AssumeRole"}]}))
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/IAMReadOnlyAccess")
    sts = server.client("sts", access_key=user.access_key, secret_key=user.secret_key)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{server.account}:role/{role}", RoleSessionName="s1",
                            Policy=json.dumps({"Version": "2012-10-17", "Statement": [
                                {"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}]}))["Credentials"]
    session = {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
               "session_token": creds["SessionToken"]}
    ident = server.client("sts", **session).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:sts::{server.account}:assumed-role/{role}/s1"
    role_iam = server.client("iam", **session)
    assert role_iam.get_role(RoleName=role)["Role"]["RoleName"] == role
    with pytest.raises(ClientError) as exc:  # the role allows it; the session policy does not
        role_iam.list_users()
    assert "no session policy allows the iam:ListUsers action" in _error(exc)[1]
    # A session credential without its token is not a valid credential.
    with pytest.raises(ClientError) as exc:
        server.client("sts", access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"]).get_caller_identity()
    assert _error(exc)[0] == "InvalidClientTokenId"


def test_audit_trail_records_allowed_and_denied_calls(server: Server, make_user: Any) -> None:
    user: UserKeys = make_user()
    iam = server.client("iam", access_key=user.access_key, secret_key=user.secret_key)
    with pytest.raises(ClientError):
        iam.list_roles()
    trail = server.client("cloudtrail")
    events = trail.lookup_events(LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": user.name}])
    names = [(e["EventName"], json.loads(e["CloudTrailEvent"]).get("errorCode")) for e in events["Events"]]
    assert ("ListRoles", "AccessDenied") in names
    record = json.loads(next(e["CloudTrailEvent"] for e in events["Events"] if e["EventName"] == "ListRoles"))
    assert record["userIdentity"]["arn"] == user.arn
    assert record["userIdentity"]["accessKeyId"] == user.access_key
    assert record["sourceIPAddress"] == "127.0.0.1"
    assert record["eventSource"] == "iam.amazonaws.com"
    assert "Boto3" in record["userAgent"] or "botocore" in record["userAgent"]
    # The root's CreateUser for this user is findable by resource name and by event name.
    by_name = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateUser"}])
    assert by_name["Events"] and all(e["EventName"] == "CreateUser" for e in by_name["Events"])


def test_audit_pagination_and_time_range(server: Server) -> None:
    sts = server.client("sts")
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    for _ in range(5):
        sts.get_caller_identity()
    trail = server.client("cloudtrail")
    seen: list[str] = []
    kwargs: dict[str, Any] = {"LookupAttributes": [{"AttributeKey": "EventName",
                                                     "AttributeValue": "GetCallerIdentity"}],
                              "StartTime": start, "MaxResults": 2}
    while True:
        page = trail.lookup_events(**kwargs)
        assert len(page["Events"]) <= 2
        seen.extend(e["EventId"] for e in page["Events"])
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert len(seen) == len(set(seen)) >= 5
    future = trail.lookup_events(StartTime=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert future["Events"] == []


def test_awscli_walkthrough(server: Server) -> None:
    name = unique("cli")
    server.cli_json("iam", "create-user", "--user-name", name)
    key = server.cli_json("iam", "create-access-key", "--user-name", name)["AccessKey"]
    denied = server.cli("iam", "list-users", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"],
                        check=False)
    assert denied.returncode != 0 and "AccessDenied" in denied.stderr
    server.cli("iam", "attach-user-policy", "--user-name", name, "--policy-arn",
               "arn:aws:iam::aws:policy/IAMReadOnlyAccess")
    users = server.cli_json("iam", "list-users", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    assert name in [u["UserName"] for u in users["Users"]]
    sim = server.cli_json(
        "iam", "simulate-custom-policy", "--policy-input-list", json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "rds:CreateDBCluster",
                                                    "Resource": "*", "Condition": {"Bool": {
                                                        "rds:ManageMasterUserPassword": "false"}}}]}),
        "--action-names", "rds:CreateDBCluster", "--context-entries",
        "ContextKeyName=rds:ManageMasterUserPassword,ContextKeyValues=false,ContextKeyType=boolean")
    assert sim["EvaluationResults"][0]["EvalDecision"] == "explicitDeny"
    events = server.cli_json("cloudtrail", "lookup-events", "--lookup-attributes",
                             f"AttributeKey=Username,AttributeValue={name}")
    assert any(e["EventName"] == "ListUsers" for e in events["Events"])

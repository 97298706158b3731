"""SigV4 verification, tested against AWS's own test suite and with botocore as the oracle.

* ``data/sigv4-testsuite`` (botocore's copy of AWS's suite, vendored with its Apache-2.0 notice): every signed request verifies,
  our canonical request and string to sign equal the suite's, and changing any signed byte fails.
* botocore's ``SigV4Auth`` / ``SigV4QueryAuth`` and real botocore clients sign; ``verify`` must accept
  what they send and reject it with AWS's error when the secret, key, token or time is wrong.
* ``generate_db_auth_token`` from a real RDS client verifies with ``verify_presigned_url``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import normalize_url_path, percent_encode_sequence
from multidict import CIMultiDict

from auroral.api import sigv4
from auroral.api.sigv4 import SigningKeyInfo, VerifiedRequest
from auroral.errors import AwsError

SUITE = Path(__file__).resolve().parent / "data" / "sigv4-testsuite"

# Credentials, scope and time every suite case uses (see the suite's README).
SUITE_KEY = "AKIDEXAMPLE"
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_NOW = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TEMP_AKID = "ASIAIOSFODNN7EXAMPLE"
TEMP_SECRET = "temporary/secret+key"
TOKEN = "FwoGZXIvYXdzEXAMPLE//////////token+/="

MISMATCH = sigv4.MSG_MISMATCH


def keys(mapping: Mapping[str, SigningKeyInfo]) -> Callable[[str], SigningKeyInfo | None]:
    return mapping.get


LOOKUP = keys({AKID: SigningKeyInfo(SECRET, None), TEMP_AKID: SigningKeyInfo(TEMP_SECRET, TOKEN)})


# --- the AWS test suite ----------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def verify(
        self, lookup: Callable[[str], SigningKeyInfo | None], now: datetime, **kw: Any
    ) -> VerifiedRequest:
        return sigv4.verify(self.method, self.path, self.query, self.headers, self.body, lookup, now, **kw)


def parse_raw_request(text: str) -> Request:
    """A ``.req``/``.sreq`` file: request line, headers (repeats joined by ",", folded lines kept),
    blank line, body. The request line's target may contain spaces, so split on the protocol."""
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    method, _, rest = lines[0].partition(" ")
    target = rest.rsplit(" HTTP/", 1)[0]
    path, _, query = target.partition("?")
    headers: dict[str, str] = {}
    names: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):  # obs-fold: continuation of the previous header
            headers[names[-1]] += "\n" + line
            continue
        name, _, value = line.partition(":")
        match = next((n for n in headers if n.lower() == name.lower()), None)
        if match is None:
            headers[name] = value
            names.append(name)
        else:
            headers[match] += "," + value
            names.append(match)
    return Request(method, path, query, headers, body.encode())


def suite_cases() -> list[Path]:
    return sorted(p.parent for p in SUITE.rglob("*.sreq"))


CASES = suite_cases()
assert CASES, f"SigV4 test suite not found at {SUITE}"


def case_file(case: Path, ext: str) -> str:
    return (case / f"{case.name}{ext}").read_text(encoding="utf-8")


def suite_signature(case: Path) -> str:
    """The signature the case's own string to sign gives, computed here independently of ``sigv4``."""
    key = ("AWS4" + SUITE_SECRET).encode()
    for part in ("20150830", "us-east-1", "service", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, case_file(case, ".sts").encode(), hashlib.sha256).hexdigest()


def published_request(case: Path) -> Request:
    return parse_raw_request(case_file(case, ".sreq"))


def case_request(case: Path) -> Request:
    """The case's signed request, with the signature its own ``.sts`` gives. One published vector,
    ``get-vanilla-with-session-token``, carries get-vanilla's signature in its ``.sreq`` although its
    ``.creq``, ``.sts`` and ``.authz`` include the token (signers test it through those only)."""
    req = published_request(case)
    auth = req.headers["Authorization"]
    fixed = auth[: auth.index("Signature=") + len("Signature=")] + suite_signature(case)
    return replace(req, headers={**req.headers, "Authorization": fixed})


def inconsistent_cases() -> set[str]:
    return {
        case_id(case)
        for case in CASES
        if published_request(case).headers["Authorization"].rsplit("Signature=", 1)[1]
        != suite_signature(case)
    }


def case_lookup(req: Request) -> Callable[[str], SigningKeyInfo | None]:
    # Cases that carry a session token were signed with temporary credentials.
    token = next((v for k, v in req.headers.items() if k.lower() == "x-amz-security-token"), None)
    return keys({SUITE_KEY: SigningKeyInfo(SUITE_SECRET, token)})


def case_id(case: Path) -> str:
    return str(case.relative_to(SUITE))


def test_only_the_known_suite_vector_is_inconsistent() -> None:
    assert inconsistent_cases() == {"get-vanilla-with-session-token"}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_suite_request_verifies(case: Path) -> None:
    req = case_request(case)
    if case_id(case) in inconsistent_cases():
        # The published signature is wrong for the published request: it must be refused.
        published = published_request(case)
        assert (
            error_of(lambda: published.verify(case_lookup(published), SUITE_NOW))[0]
            == "SignatureDoesNotMatch"
        )
    verified = req.verify(case_lookup(req), SUITE_NOW)
    assert verified == VerifiedRequest(
        access_key_id=SUITE_KEY,
        region="us-east-1",
        service="service",
        date="20150830",
        session_token=verified.session_token,
        signed_at=SUITE_NOW,
        presigned=False,
    )


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_suite_canonical_request_and_string_to_sign(case: Path) -> None:
    req = case_request(case)
    creq, sts = sigv4.canonical_strings(req.method, req.path, req.query, req.headers, req.body)
    assert creq == case_file(case, ".creq")
    assert sts == case_file(case, ".sts")
    assert req.headers["Authorization"].strip() == case_file(case, ".authz").strip()


def _replace_char(text: str, i: int) -> str:
    # A letter that differs from the original even case-insensitively (the method is upper-cased),
    # and is never "/" or "." (which path normalisation could absorb).
    new = "y" if text[i] in "xX" else "x"
    return text[:i] + new + text[i + 1 :]


def tampered(req: Request) -> Iterator[tuple[str, Request]]:
    """Every single-character change of the signed parts: method, path, query, each signed header
    value, each body byte, and the signature."""
    for i in range(len(req.method)):
        yield f"method[{i}]", replace(req, method=_replace_char(req.method, i))
    for i in range(len(req.path)):
        yield f"path[{i}]", replace(req, path=_replace_char(req.path, i))
    for i in range(len(req.query)):
        yield f"query[{i}]", replace(req, query=_replace_char(req.query, i))
    auth = req.headers["Authorization"]
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    for name in req.headers:
        if name.lower() not in signed:
            continue
        value = req.headers[name]
        for i in range(len(value)):
            yield f"{name}[{i}]", replace(req, headers={**req.headers, name: _replace_char(value, i)})
    for i in range(len(req.body)):
        body = bytearray(req.body)
        body[i] ^= 0x01
        yield f"body[{i}]", replace(req, body=bytes(body))
    start = auth.index("Signature=") + len("Signature=")
    for i in range(start, len(auth)):
        yield (
            f"signature[{i - start}]",
            replace(req, headers={**req.headers, "Authorization": _replace_char(auth, i)}),
        )


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_suite_any_changed_signed_byte_fails(case: Path) -> None:
    req = case_request(case)
    lookup = case_lookup(req)
    accepted = []
    count = 0
    for what, bad in tampered(req):
        count += 1
        if bad.path != req.path and normalize_url_path(bad.path) == normalize_url_path(req.path):
            # Inside a segment a later ".." removes (/example/.. is /exbmple/..): not signed, and
            # botocore's normaliser agrees, so the request must still verify.
            bad.verify(lookup, SUITE_NOW)
            continue
        try:
            bad.verify(lookup, SUITE_NOW)
        except AwsError:
            continue
        accepted.append(what)
    assert count > 64  # at least the signature's 64 characters were tried
    assert accepted == []


def test_suite_request_with_a_multidict_of_headers() -> None:
    # A server's multidict repeats a name in items() instead of joining values.
    req = case_request(SUITE / "get-header-key-duplicate")
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in req.headers.items():
        for part in value.split(","):
            headers.add(name, part)
    sigv4.verify(req.method, req.path, req.query, headers, req.body, case_lookup(req), SUITE_NOW)


# --- botocore as the oracle ------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    req: Request
    signed_at: datetime


def _to_request(aws: AWSRequest) -> Request:
    prepared = aws.prepare()
    parts = urlsplit(prepared.url)
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    return Request(prepared.method, parts.path, parts.query, _with_host(prepared.headers, parts.netloc), body)


def _with_host(headers: Any, netloc: str) -> dict[str, str]:
    # botocore signs the URL's host; the HTTP client adds the Host header afterwards.
    out = {k: v.decode() if isinstance(v, bytes) else v for k, v in headers.items()}
    if not any(k.lower() == "host" for k in out):
        out["Host"] = netloc
    return out


def _signed_at(req: Request) -> datetime:
    if "X-Amz-Date" in req.headers:
        amz = req.headers["X-Amz-Date"]
    else:
        amz = next(p.split("=", 1)[1] for p in req.query.split("&") if p.startswith("X-Amz-Date="))
    return datetime.strptime(amz, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def sign(
    method: str = "GET",
    url: str = "https://iam.amazonaws.com/",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    access_key: str = AKID,
    secret: str = SECRET,
    token: str | None = None,
    service: str = "iam",
    region: str = "us-east-1",
    presign_expires: int | None = None,
) -> Signed:
    aws = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    creds = Credentials(access_key, secret, token)
    if presign_expires is None:
        SigV4Auth(creds, service, region).add_auth(aws)
    else:
        SigV4QueryAuth(creds, service, region, expires=presign_expires).add_auth(aws)
    req = _to_request(aws)
    if "Date" in req.headers:  # botocore writes "-0000", which email.utils reads as a naive time
        return Signed(req, parsedate_to_datetime(req.headers["Date"]).replace(tzinfo=UTC))
    return Signed(req, _signed_at(req))


QUERIES: dict[str, list[tuple[str, str]]] = {
    "none": [],
    "action": [("Action", "ListUsers"), ("Version", "2010-05-08")],
    "special": [("Path", "/a b+c/d?e=f&g#h%i"), ("x", "!*'();:@$,[]")],
    "unicode": [("ключ", "значение ☃"), ("emoji", "🙂")],
    "empty-values": [("empty", ""), ("also", "")],
    "repeated-keys": [("k", "b"), ("k", "a"), ("k", "B"), ("K", "a")],
    "unreserved": [("-._~", "-._~AZaz09")],
}
PATHS = ["/", "/a/b", "/with%20space/x", "/%E1%88%B4/", "/a//b/./c/../d/", "/%24delete", "/trailing/"]


@pytest.mark.parametrize("query", QUERIES.values(), ids=QUERIES.keys())
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("presigned", [False, True], ids=["header", "presigned"])
@pytest.mark.parametrize("token", [None, TOKEN], ids=["long-term", "temporary"])
def test_botocore_signed_requests_verify(
    path: str, query: list[tuple[str, str]], presigned: bool, token: str | None
) -> None:
    qs = percent_encode_sequence(query) if query else ""
    url = f"https://iam.amazonaws.com{path}" + (f"?{qs}" if qs else "")
    akid = TEMP_AKID if token else AKID
    signed = sign(
        url=url,
        access_key=akid,
        secret=TEMP_SECRET if token else SECRET,
        token=token,
        presign_expires=300 if presigned else None,
    )
    verified = signed.req.verify(LOOKUP, signed.signed_at + timedelta(seconds=30))
    assert verified == VerifiedRequest(
        access_key_id=akid,
        region="us-east-1",
        service="iam",
        date=signed.signed_at.strftime("%Y%m%d"),
        session_token=token,
        signed_at=signed.signed_at,
        presigned=presigned,
    )


BODIES = {
    "form": (
        "application/x-www-form-urlencoded; charset=utf-8",
        b"Action=ListUsers&Version=2010-05-08&P=%C3%A9",
    ),
    "json": ("application/x-amz-json-1.1", json.dumps({"SecretId": "db/päss", "n": 1}).encode()),
    "binary": ("application/octet-stream", bytes(range(256))),
    "empty": ("application/x-www-form-urlencoded", b""),
}


@pytest.mark.parametrize("content_type,body", BODIES.values(), ids=BODIES.keys())
def test_botocore_signed_post_bodies_verify_and_are_covered(content_type: str, body: bytes) -> None:
    signed = sign(
        "POST",
        "https://secretsmanager.eu-west-1.amazonaws.com/",
        body,
        {"Content-Type": content_type, "X-Amz-Target": "secretsmanager.GetSecretValue"},
        service="secretsmanager",
        region="eu-west-1",
    )
    now = signed.signed_at
    verified = signed.req.verify(LOOKUP, now, service="secretsmanager", region="eu-west-1")
    assert (verified.service, verified.region) == ("secretsmanager", "eu-west-1")
    with pytest.raises(AwsError) as err:
        replace(signed.req, body=body + b" ").verify(LOOKUP, now)
    assert (err.value.code, err.value.message, err.value.status) == ("SignatureDoesNotMatch", MISMATCH, 403)


def test_date_header_instead_of_x_amz_date() -> None:
    # botocore signs with the Date header when the request already has one.
    date = format_datetime(datetime.now(UTC), usegmt=True)
    signed = sign(headers={"Date": date})
    assert "X-Amz-Date" not in signed.req.headers
    assert signed.req.verify(LOOKUP, signed.signed_at).signed_at == signed.signed_at


def _capture(client: Any, call: Callable[[Any], object]) -> Request:
    """The request a real botocore client sends, stopped just before it leaves."""
    seen: list[Any] = []

    class Sent(Exception):
        pass

    def before_send(request: Any, **_: Any) -> None:
        seen.append(request)
        raise Sent

    client.meta.events.register("before-send", before_send)
    with pytest.raises(Sent):
        call(client)
    prepared = seen[0]
    parts = urlsplit(prepared.url)
    body = prepared.body or b""
    return Request(
        prepared.method,
        parts.path,
        parts.query,
        _with_host(prepared.headers, parts.netloc),
        body.encode() if isinstance(body, str) else body,
    )


def _client(service: str, token: str | None = None) -> Any:
    session = botocore.session.Session()
    session.set_credentials(TEMP_AKID if token else AKID, TEMP_SECRET if token else SECRET, token)
    return session.create_client(service, region_name="us-east-1")


CLIENT_CALLS: dict[str, tuple[str, Callable[[Any], object]]] = {
    "iam-query": ("iam", lambda c: c.list_users(PathPrefix="/dév team/ü~+&=/")),
    "sts-query": ("sts", lambda c: c.get_caller_identity()),
    "rds-query": ("rds", lambda c: c.describe_db_clusters(DBClusterIdentifier="my-cluster")),
    "secretsmanager-json": ("secretsmanager", lambda c: c.get_secret_value(SecretId="app/db ☃")),
    "kms-json": ("kms", lambda c: c.encrypt(KeyId="alias/x", Plaintext=b"\x00\xff")),
}


@pytest.mark.parametrize("service,call", CLIENT_CALLS.values(), ids=CLIENT_CALLS.keys())
@pytest.mark.parametrize("token", [None, TOKEN], ids=["long-term", "temporary"])
def test_real_botocore_clients_verify(service: str, call: Callable[[Any], object], token: str | None) -> None:
    req = _capture(_client(service, token), call)
    verified = req.verify(LOOKUP, _signed_at(req))
    assert verified.session_token == token
    assert verified.region == "us-east-1"
    assert sigv4.credential_scope(req.method, req.path, req.query, req.headers) == (
        verified.access_key_id,
        "us-east-1",
        verified.service,
    )


def test_real_botocore_presigned_url_verifies() -> None:
    client = _client("sts", TOKEN)
    # Without HttpMethod botocore signs the operation's method (POST) although a URL is meant for GET.
    url = client.generate_presigned_url("get_caller_identity", ExpiresIn=120, HttpMethod="GET")
    parts = urlsplit(url)
    verified = sigv4.verify(
        "GET", parts.path, parts.query, {"Host": parts.netloc}, b"", LOOKUP, datetime.now(UTC)
    )
    assert verified.presigned and verified.service == "sts" and verified.session_token == TOKEN
    assert sigv4.credential_scope("GET", parts.path, parts.query, {}) == (TEMP_AKID, "us-east-1", "sts")


# --- failures, with AWS's codes and messages -------------------------------------------------


def error_of(fn: Callable[[], object]) -> tuple[str, str, int]:
    with pytest.raises(AwsError) as err:
        fn()
    return err.value.code, err.value.message, err.value.status


def test_wrong_secret_is_signature_mismatch() -> None:
    signed = sign(secret="not-the-secret")
    assert error_of(lambda: signed.req.verify(LOOKUP, signed.signed_at)) == (
        "SignatureDoesNotMatch",
        MISMATCH,
        403,
    )
    presigned = sign(secret="not-the-secret", presign_expires=60)
    assert error_of(lambda: presigned.req.verify(LOOKUP, presigned.signed_at))[0] == "SignatureDoesNotMatch"


def test_unknown_or_inactive_key_is_invalid_client_token_id() -> None:
    signed = sign(access_key="AKIAUNKNOWN000000000")
    assert error_of(lambda: signed.req.verify(LOOKUP, signed.signed_at)) == (
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
        403,
    )


def test_temporary_credentials_need_their_token() -> None:
    invalid = ("InvalidClientTokenId", "The security token included in the request is invalid.", 403)
    without = sign(access_key=TEMP_AKID, secret=TEMP_SECRET)
    assert error_of(lambda: without.req.verify(LOOKUP, without.signed_at)) == invalid
    wrong = sign(access_key=TEMP_AKID, secret=TEMP_SECRET, token=TOKEN + "x")
    assert error_of(lambda: wrong.req.verify(LOOKUP, wrong.signed_at)) == invalid
    presigned = sign(access_key=TEMP_AKID, secret=TEMP_SECRET, presign_expires=60)
    assert error_of(lambda: presigned.req.verify(LOOKUP, presigned.signed_at)) == invalid
    # A long-term key sent with a session token (a stale AWS_SESSION_TOKEN) is refused the same way.
    stale = sign(token=TOKEN)
    assert error_of(lambda: stale.req.verify(LOOKUP, stale.signed_at)) == invalid


def test_clock_skew_messages() -> None:
    signed = sign()
    amz = signed.req.headers["X-Amz-Date"]
    now = signed.signed_at + timedelta(minutes=6, seconds=1)
    assert error_of(lambda: signed.req.verify(LOOKUP, now)) == (
        "SignatureDoesNotMatch",
        f"Signature expired: {amz} is now earlier than {(now - timedelta(minutes=5)):%Y%m%dT%H%M%SZ} "
        f"({now:%Y%m%dT%H%M%SZ} - 5 min.)",
        403,
    )
    now = signed.signed_at - timedelta(minutes=7)
    assert error_of(lambda: signed.req.verify(LOOKUP, now)) == (
        "SignatureDoesNotMatch",
        f"Signature not yet current: {amz} is still later than {(now + timedelta(minutes=5)):%Y%m%dT%H%M%SZ} "
        f"({now:%Y%m%dT%H%M%SZ} + 5 min.)",
        403,
    )
    # Within the window either way is fine; the window is configurable.
    signed.req.verify(LOOKUP, signed.signed_at + timedelta(minutes=5))
    signed.req.verify(LOOKUP, signed.signed_at - timedelta(minutes=5))
    message = error_of(
        lambda: signed.req.verify(
            LOOKUP, signed.signed_at + timedelta(seconds=91), max_skew=timedelta(seconds=90)
        )
    )[1]
    assert message.endswith(" - 90 sec.)")


def test_presigned_expiry_and_future_date() -> None:
    signed = sign(presign_expires=60)
    signed.req.verify(LOOKUP, signed.signed_at + timedelta(seconds=60))
    assert error_of(lambda: signed.req.verify(LOOKUP, signed.signed_at + timedelta(seconds=61))) == (
        "RequestExpired",
        "Request has expired.",
        400,
    )
    # A presigned URL is good for its whole lifetime, past the 5-minute header skew.
    long = sign(presign_expires=3600)
    long.req.verify(LOOKUP, long.signed_at + timedelta(minutes=59))
    code, message, _ = error_of(lambda: long.req.verify(LOOKUP, long.signed_at - timedelta(minutes=6)))
    assert code == "SignatureDoesNotMatch" and message.startswith("Signature not yet current: ")


@pytest.mark.parametrize(
    "expires,message",
    [
        (
            "604801",
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires "
            "must be less than 604800 seconds",
        ),
        ("-1", "X-Amz-Expires must be non-negative"),
        ("soon", "X-Amz-Expires should be a number"),
    ],
)
def test_presigned_expires_out_of_range(expires: str, message: str) -> None:
    signed = sign(presign_expires=60)
    query = signed.req.query.replace("X-Amz-Expires=60", f"X-Amz-Expires={expires}")
    assert error_of(lambda: replace(signed.req, query=query).verify(LOOKUP, signed.signed_at)) == (
        "IncompleteSignature",
        message,
        403,
    )


def test_missing_authentication() -> None:
    assert error_of(
        lambda: sigv4.verify("GET", "/", "Action=ListUsers", {"Host": "x"}, b"", LOOKUP, datetime.now(UTC))
    ) == ("MissingAuthenticationToken", "Request is missing Authentication Token", 403)
    assert sigv4.credential_scope("GET", "/", "Action=ListUsers", {"Host": "x"}) is None


@pytest.mark.parametrize(
    "authorization,message",
    [
        (
            "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=abc",
            "Authorization header requires 'Credential' parameter.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20150830/us-east-1/iam/aws4_request",
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            "AWS4-HMAC-SHA512 Credential=AKIAIOSFODNN7EXAMPLE/20150830/us-east-1/iam/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=abc",
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.",
        ),
        ("Basic dXNlcjpwYXNz", "Unsupported AWS 'algorithm': 'Basic'."),
        (
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20150830/us-east-1/iam, SignedHeaders=host;x-amz-date, "
            "Signature=abc",
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term,"
            " got 'AKIAIOSFODNN7EXAMPLE/20150830/us-east-1/iam'",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20150830/us-east-1/iam/aws4_request, "
            "SignedHeaders=x-amz-date, Signature=abc",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential",
            "Invalid key=value pair (missing equal-sign) in Authorization header.",
        ),
    ],
)
def test_malformed_authorization_header(authorization: str, message: str) -> None:
    headers = {"Host": "iam.amazonaws.com", "X-Amz-Date": "20150830T123600Z", "Authorization": authorization}
    assert error_of(lambda: sigv4.verify("GET", "/", "", headers, b"", LOOKUP, SUITE_NOW)) == (
        "IncompleteSignature",
        message,
        403,
    )


def test_missing_date_and_bad_date() -> None:
    auth = (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=host, Signature=abc"
    )
    assert error_of(
        lambda: sigv4.verify("GET", "/", "", {"Host": "h", "Authorization": auth}, b"", LOOKUP, SUITE_NOW)
    ) == (
        "IncompleteSignature",
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        403,
    )
    headers = {"Host": "h", "Authorization": auth, "X-Amz-Date": "2015-08-30T12:36:00Z"}
    assert error_of(lambda: sigv4.verify("GET", "/", "", headers, b"", LOOKUP, SUITE_NOW)) == (
        "IncompleteSignature",
        "Date must be in ISO-8601 'basic format'. Got '2015-08-30T12:36:00Z'. See http://en.wikipedia.org/wiki/ISO_8601",
        403,
    )


def test_presigned_missing_parameters() -> None:
    query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20150830T123600Z"
    assert error_of(lambda: sigv4.verify("GET", "/", query, {"Host": "h"}, b"", LOOKUP, SUITE_NOW)) == (
        "IncompleteSignature",
        "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include "
        "'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
        "Re-examine the query-string parameters.",
        403,
    )


def test_scope_date_must_match_x_amz_date() -> None:
    # Re-sign by hand with a scope date of the day before: the signature is right, the scope is not.
    signed = sign()
    amz = signed.req.headers["X-Amz-Date"]
    day = amz[:8]
    before = (signed.signed_at - timedelta(days=1)).strftime("%Y%m%d")
    auth = signed.req.headers["Authorization"].replace(f"/{day}/", f"/{before}/")
    bad = replace(signed.req, headers={**signed.req.headers, "Authorization": auth})
    assert error_of(lambda: bad.verify(LOOKUP, signed.signed_at)) == (
        "SignatureDoesNotMatch",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        f"'{before}' != '{day}', from '{amz}'.",
        403,
    )


def test_expected_service_and_region() -> None:
    signed = sign(service="iam", region="us-east-1")
    assert error_of(
        lambda: signed.req.verify(LOOKUP, signed.signed_at, service="sts", region="eu-west-1")
    ) == (
        "SignatureDoesNotMatch",
        "Credential should be scoped to a valid region, not 'us-east-1'. "
        "Credential should be scoped to correct service: 'sts'.",
        403,
    )


def test_content_sha256_header() -> None:
    body = b"Action=ListUsers"
    unsigned = sign("POST", body=body, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    unsigned.req.verify(LOOKUP, unsigned.signed_at)
    hashed = sign("POST", body=body, headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    hashed.req.verify(LOOKUP, hashed.signed_at)
    # A signed hash that is not the body's hash must not let a different body through.
    swapped = replace(hashed.req, body=b"Action=DeleteUser")
    assert error_of(lambda: swapped.verify(LOOKUP, hashed.signed_at))[0] == "SignatureDoesNotMatch"


def test_signing_keys_are_cached() -> None:
    sigv4._signing_key.cache_clear()
    for _ in range(3):
        signed = sign()
        signed.req.verify(LOOKUP, signed.signed_at)
    info = sigv4._signing_key.cache_info()
    assert info.misses == 1 and info.hits == 2


# --- IAM database authentication tokens ------------------------------------------------------


def _db_token(
    host: str = "db.cluster-abc.us-east-1.rds.amazonaws.com",
    port: int = 5432,
    user: str = "alice",
    token: str | None = None,
) -> tuple[str, datetime]:
    client = _client("rds", token)
    before = datetime.now(UTC).replace(microsecond=0)
    url = client.generate_db_auth_token(host, port, user, Region="us-east-1")
    assert not url.startswith("https://")
    return url, before


@pytest.mark.parametrize("token", [None, TOKEN], ids=["long-term", "temporary"])
def test_db_auth_token_verifies(token: str | None) -> None:
    host = "db.cluster-abc.us-east-1.rds.amazonaws.com"
    url, _ = _db_token(host, 5432, "iam_user", token)
    verified, params = sigv4.verify_presigned_url(url, "GET", f"{host}:5432", LOOKUP, datetime.now(UTC))
    assert params == {"Action": "connect", "DBUser": "iam_user"}
    assert (verified.service, verified.region, verified.presigned) == ("rds-db", "us-east-1", True)
    assert verified.session_token == token
    assert verified.access_key_id == (TEMP_AKID if token else AKID)


def test_db_auth_token_for_another_endpoint_fails() -> None:
    host = "db.cluster-abc.us-east-1.rds.amazonaws.com"
    url, _ = _db_token(host, 5432)
    now = datetime.now(UTC)
    for other in (f"{host}:5433", f"other.{host}:5432", host):
        call = functools.partial(sigv4.verify_presigned_url, url, "GET", other, LOOKUP, now)
        assert error_of(call) == ("SignatureDoesNotMatch", MISMATCH, 403)


def test_tampered_db_user_fails() -> None:
    host = "db.cluster-abc.us-east-1.rds.amazonaws.com"
    url, _ = _db_token(host, 5432, "alice")
    bad = url.replace("DBUser=alice", "DBUser=postgres")
    assert error_of(
        lambda: sigv4.verify_presigned_url(bad, "GET", f"{host}:5432", LOOKUP, datetime.now(UTC))
    ) == ("SignatureDoesNotMatch", MISMATCH, 403)


def test_expired_db_token_fails() -> None:
    host = "db.cluster-abc.us-east-1.rds.amazonaws.com"
    url, before = _db_token(host, 5432)
    later = before + timedelta(minutes=16)
    assert error_of(lambda: sigv4.verify_presigned_url(url, "GET", f"{host}:5432", LOOKUP, later)) == (
        "RequestExpired",
        "Request has expired.",
        400,
    )
    sigv4.verify_presigned_url(url, "GET", f"{host}:5432", LOOKUP, before + timedelta(minutes=14))


def test_db_token_for_another_service_or_without_signature() -> None:
    signed = sign(url="https://db.example:5432/?Action=connect&DBUser=alice", presign_expires=900)
    url = "db.example:5432/?" + signed.req.query
    code, message, _ = error_of(
        lambda: sigv4.verify_presigned_url(url, "GET", "db.example:5432", LOOKUP, signed.signed_at)
    )
    assert (code, message) == (
        "SignatureDoesNotMatch",
        "Credential should be scoped to correct service: 'rds-db'.",
    )
    assert error_of(
        lambda: sigv4.verify_presigned_url(
            "db.example:5432/?Action=connect&DBUser=alice", "GET", "db.example:5432", LOOKUP, signed.signed_at
        )
    )[0] == ("MissingAuthenticationToken")


# --- PresignedVerifier: a token verified once, checked again on every use ---------------------------

HOST = "db.cluster-abc.us-east-1.rds.amazonaws.com"


def _counting_signatures(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a signature is computed (the canonical request is built once per computation)."""
    calls = [0]
    real = sigv4._canonical_request

    def counted(*args: Any, **kwargs: Any) -> str:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(sigv4, "_canonical_request", counted)
    return calls


@pytest.mark.parametrize("token", [None, TOKEN], ids=["long-term", "temporary"])
def test_verifier_computes_a_repeated_token_once(monkeypatch: pytest.MonkeyPatch, token: str | None) -> None:
    calls = _counting_signatures(monkeypatch)
    verifier = sigv4.PresignedVerifier()
    url, _ = _db_token(HOST, 5432, "iam_user", token)
    now = datetime.now(UTC)
    first = verifier.verify(url, "GET", f"{HOST}:5432", LOOKUP, now)
    again = verifier.verify(url, "GET", f"{HOST}:5432", LOOKUP, now + timedelta(minutes=1))
    assert first == again == sigv4.verify_presigned_url(url, "GET", f"{HOST}:5432", LOOKUP, now)
    assert first[1] == {"Action": "connect", "DBUser": "iam_user"}
    assert calls[0] == 2  # the verifier's first call and verify_presigned_url's; not the repeat


def test_verifier_checks_the_key_and_the_time_again() -> None:
    verifier = sigv4.PresignedVerifier()
    url, before = _db_token(HOST, 5432)
    good = {AKID: SigningKeyInfo(SECRET, None)}
    lookup = keys(good)
    verifier.verify(url, "GET", f"{HOST}:5432", lookup, before)
    # expired: refused on a repeat as on a first use, and forgotten
    later = before + timedelta(minutes=16)
    assert error_of(lambda: verifier.verify(url, "GET", f"{HOST}:5432", lookup, later)) == (
        "RequestExpired", "Request has expired.", 400)
    assert len(verifier) == 0
    verifier.verify(url, "GET", f"{HOST}:5432", lookup, before)
    # the key deleted or deactivated: the lookup finds nothing
    good.clear()
    assert error_of(lambda: verifier.verify(url, "GET", f"{HOST}:5432", lookup, before))[0] == "InvalidClientTokenId"
    # the same key id with another secret: the signature is computed again, and fails
    good[AKID] = SigningKeyInfo("another-secret", None)
    assert error_of(lambda: verifier.verify(url, "GET", f"{HOST}:5432", lookup, before)) == (
        "SignatureDoesNotMatch", MISMATCH, 403)
    assert len(verifier) == 0


def test_verifier_keys_on_the_host_and_forgets_failures() -> None:
    verifier = sigv4.PresignedVerifier()
    url, now = _db_token(HOST, 5432)
    verifier.verify(url, "GET", f"{HOST}:5432", LOOKUP, now)
    assert error_of(lambda: verifier.verify(url, "GET", f"{HOST}:5433", LOOKUP, now)) == (
        "SignatureDoesNotMatch", MISMATCH, 403)
    bad = url.replace("DBUser=alice", "DBUser=postgres")
    assert error_of(lambda: verifier.verify(bad, "GET", f"{HOST}:5432", LOOKUP, now))[0] == "SignatureDoesNotMatch"
    assert len(verifier) == 1


def test_verifier_is_bounded() -> None:
    verifier = sigv4.PresignedVerifier(capacity=3)
    now = datetime.now(UTC)
    urls = [_db_token(HOST, 5432, f"user{i}")[0] for i in range(5)]
    for url in urls:
        verifier.verify(url, "GET", f"{HOST}:5432", LOOKUP, now)
    assert len(verifier) == 3


def test_verifier_passes_on_expired_temporary_credentials() -> None:
    """The directory raises ExpiredToken for temporary credentials past their expiry: a repeat too."""
    verifier = sigv4.PresignedVerifier()
    url, now = _db_token(HOST, 5432, token=TOKEN)
    expired = [False]

    def lookup(akid: str) -> SigningKeyInfo | None:
        if expired[0]:
            raise AwsError("ExpiredToken", "The security token included in the request is expired", 403)
        return LOOKUP(akid)

    verifier.verify(url, "GET", f"{HOST}:5432", lookup, now)
    expired[0] = True
    assert error_of(lambda: verifier.verify(url, "GET", f"{HOST}:5432", lookup, now))[0] == "ExpiredToken"

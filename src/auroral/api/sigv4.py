"""AWS Signature Version 4 verification: the ``Authorization`` header form and the presigned-query form.

A request is checked in the order AWS checks it, so that each failure gets the error AWS gives:

    parse the claim (header or query)       → MissingAuthenticationToken / IncompleteSignature
    time (skew, or presign expiry)           → SignatureDoesNotMatch "Signature expired..." / RequestExpired
    credential scope (date, region, service) → SignatureDoesNotMatch "Credential should be scoped..."
    access key (caller's ``lookup``)         → InvalidClientTokenId
    session token                            → InvalidClientTokenId
    canonical request → string to sign → HMAC → SignatureDoesNotMatch

The canonical request follows botocore's signer (``botocore.auth.SigV4Auth``) byte for byte: the raw,
still-encoded path is normalised (dot segments removed, slashes collapsed) and percent-encoded once
more; query keys and values are decoded and re-encoded with only ``-_.~`` left bare, then sorted.
Derived signing keys are cached per (secret, date, region, service) because the server verifies
thousands of requests a second and most of them share a key.

``verify_presigned_url`` wraps ``verify`` for IAM database authentication tokens
(``botocore``'s ``generate_db_auth_token``: a presigned ``GET`` with scheme removed).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote, unquote_to_bytes

from auroral.errors import AwsError

__all__ = [
    "ALGORITHM",
    "SigningKeyInfo",
    "VerifiedRequest",
    "canonical_strings",
    "credential_scope",
    "verify",
    "verify_presigned_url",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_PRESIGN_EXPIRES = 604800  # seven days, the SigV4 limit
# A presigned request without X-Amz-Expires: non-S3 services use a fixed window of about
# 15 minutes (aws-sdk-go PR #2224, "All other AWS services will use a fixed request signature
# expiration of about 15 minutes").
DEFAULT_PRESIGN_EXPIRES = 900

_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_AMZ_FORMAT = "%Y%m%dT%H%M%SZ"

# Messages as AWS words them: the IAM user guide's "Troubleshoot signed requests" page, the services'
# CommonErrors pages (RequestExpired 400), and responses quoted in public issues and in verifiers that
# copy AWS (e.g. scratchstack-aws-signature). Unconfirmed wording is marked where it is used.
MSG_MISSING_TOKEN = "Request is missing Authentication Token"
MSG_INVALID_TOKEN = "The security token included in the request is invalid."
MSG_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
MSG_HOST_NOT_SIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
MSG_REQUEST_EXPIRED = "Request has expired."


@dataclass(frozen=True)
class SigningKeyInfo:
    """What the caller's credential lookup returns for an active access key."""

    secret_access_key: str
    session_token: str | None  # the token a temporary credential must present; None for long-term keys


@dataclass(frozen=True)
class VerifiedRequest:
    access_key_id: str
    region: str
    service: str  # signing name from the credential scope
    date: str  # YYYYMMDD scope date
    session_token: str | None
    signed_at: datetime  # X-Amz-Date (tz-aware UTC)
    presigned: bool


Lookup = Callable[[str], SigningKeyInfo | None]


@dataclass(frozen=True)
class _Claim:
    """What a request claims about its signature, before anything is checked."""

    presigned: bool
    credential: str  # keyid/date/region/service/terminator as sent
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str  # ISO 8601 basic, as it goes into the string to sign
    signed_at: datetime
    expires: int | None
    session_token: str | None

    @property
    def parts(self) -> list[str]:
        return self.credential.split("/")

    @property
    def scope(self) -> str:
        return self.credential.partition("/")[2]


# --- errors --------------------------------------------------------------------------------


def _incomplete(message: str) -> AwsError:
    return AwsError("IncompleteSignature", message, 403)


def _mismatch(message: str = MSG_MISMATCH) -> AwsError:
    return AwsError("SignatureDoesNotMatch", message, 403)


def _invalid_token() -> AwsError:
    return AwsError("InvalidClientTokenId", MSG_INVALID_TOKEN, 403)


# --- parsing the claim -----------------------------------------------------------------------


def _lower_headers(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Lower-cased names; a name seen more than once (a multidict) keeps every value in order."""
    out: dict[str, list[str]] = {}
    for name, value in headers.items():
        out.setdefault(name.lower(), []).append(value)
    return out


def _split_query(query: str) -> list[tuple[str, str]]:
    """Raw (still percent-encoded) key/value pairs; a bare ``key`` is ``key=``."""
    pairs: list[tuple[str, str]] = []
    if query:
        for item in query.split("&"):
            if item:
                key, _, value = item.partition("=")
                pairs.append((key, value))
    return pairs


def _query_param(pairs: list[tuple[str, str]], name: str) -> str | None:
    found = [unquote(v) for k, v in pairs if unquote(k) == name]
    if len(found) > 1:
        # Two signatures or two credentials make the request ambiguous; refuse rather than pick one.
        # Unconfirmed wording: no public capture of AWS's answer to a repeated auth parameter.
        raise _incomplete(f"AWS query-string parameters must include '{name}' only once.")
    return found[0] if found else None


def _parse_amz_date(value: str) -> datetime | None:
    if not _AMZ_DATE.fullmatch(value):
        return None
    try:
        # Sliced by hand: strptime costs more than the rest of the date handling together.
        return datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]), int(value[11:13]),
                        int(value[13:15]), tzinfo=UTC)
    except ValueError:
        return None


def _bad_date(value: str) -> AwsError:
    return _incomplete(
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _header_date(hdrs: dict[str, list[str]]) -> tuple[str, datetime] | None:
    """X-Amz-Date, else Date (ISO 8601 basic or RFC 1123); None when neither is present."""
    if "x-amz-date" in hdrs:
        raw = hdrs["x-amz-date"][-1].strip()
        parsed = _parse_amz_date(raw)
        if parsed is None:
            raise _bad_date(raw)
        return raw, parsed
    if "date" in hdrs:
        raw = hdrs["date"][-1].strip()
        parsed = _parse_amz_date(raw)
        if parsed is None:
            try:
                parsed = parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                raise _bad_date(raw) from None
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        return parsed.strftime(_AMZ_FORMAT), parsed
    return None


def _check_algorithm(algorithm: str) -> None:
    if algorithm != ALGORITHM:
        raise _incomplete(f"Unsupported AWS 'algorithm': '{algorithm}'.")


def _claim_from_header(authorization: str, hdrs: dict[str, list[str]]) -> _Claim:
    algorithm, _, rest = authorization.strip().partition(" ")
    _check_algorithm(algorithm)
    fields: dict[str, str] = {}
    for item in rest.split(","):
        item = item.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq:
            raise _incomplete("Invalid key=value pair (missing equal-sign) in Authorization header.")
        fields[key.strip()] = value.strip()
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(name)
    ]
    dated = _header_date(hdrs)
    if dated is None:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        raise _incomplete(" ".join(problems))
    assert dated is not None
    token = hdrs.get("x-amz-security-token")
    return _Claim(
        presigned=False,
        credential=fields["Credential"],
        signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=fields["Signature"],
        amz_date=dated[0],
        signed_at=dated[1],
        expires=None,
        session_token=token[-1].strip() if token else None,
    )


def _claim_from_query(pairs: list[tuple[str, str]], hdrs: dict[str, list[str]]) -> _Claim:
    algorithm = _query_param(pairs, "X-Amz-Algorithm") or ""
    _check_algorithm(algorithm)
    values = {
        name: _query_param(pairs, name)
        for name in ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date")
    }
    missing = [f"AWS query-string parameters must include '{n}'." for n, v in values.items() if not v]
    if missing:
        raise _incomplete(" ".join([*missing, "Re-examine the query-string parameters."]))
    amz_date = values["X-Amz-Date"] or ""
    signed_at = _parse_amz_date(amz_date)
    if signed_at is None:
        raise _bad_date(amz_date)
    raw_expires = _query_param(pairs, "X-Amz-Expires")
    if raw_expires is None:
        expires = DEFAULT_PRESIGN_EXPIRES
    elif not re.fullmatch(r"-?[0-9]{1,12}", raw_expires):
        raise _incomplete("X-Amz-Expires should be a number")
    else:
        expires = int(raw_expires)
        if expires < 0:
            raise _incomplete("X-Amz-Expires must be non-negative")
        if expires > MAX_PRESIGN_EXPIRES:
            raise _incomplete(
                "X-Amz-Expires must be less than a week (in seconds); that is, "
                f"the given X-Amz-Expires must be less than {MAX_PRESIGN_EXPIRES} seconds"
            )
    token = _query_param(pairs, "X-Amz-Security-Token")
    if token is None and "x-amz-security-token" in hdrs:
        token = hdrs["x-amz-security-token"][-1].strip()
    return _Claim(
        presigned=True,
        credential=values["X-Amz-Credential"] or "",
        signed_headers=tuple((values["X-Amz-SignedHeaders"] or "").split(";")),
        signature=values["X-Amz-Signature"] or "",
        amz_date=amz_date,
        signed_at=signed_at,
        expires=expires,
        session_token=token,
    )


def _claim(hdrs: dict[str, list[str]], pairs: list[tuple[str, str]]) -> _Claim:
    authorization = hdrs.get("authorization")
    presigned = any(unquote(k) == "X-Amz-Algorithm" for k, _ in pairs)
    if authorization and presigned:
        raise _incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter "
            "or the Authorization header should be specified"
        )
    if authorization:
        claim = _claim_from_header(",".join(authorization), hdrs)
    elif presigned:
        claim = _claim_from_query(pairs, hdrs)
    else:
        raise AwsError("MissingAuthenticationToken", MSG_MISSING_TOKEN, 403)
    if len(claim.parts) != 5:
        raise _incomplete(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{claim.credential}'"
        )
    if "host" not in claim.signed_headers and ":authority" not in claim.signed_headers:
        raise _incomplete(MSG_HOST_NOT_SIGNED)
    return claim


# --- checks ----------------------------------------------------------------------------------


def _duration(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} sec"


def _check_time(claim: _Claim, now: datetime, max_skew: timedelta) -> None:
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    now = now.replace(microsecond=0)

    def fmt(t: datetime) -> str:
        return t.strftime(_AMZ_FORMAT)

    if claim.signed_at > now + max_skew:
        raise _mismatch(
            f"Signature not yet current: {claim.amz_date} is still later than {fmt(now + max_skew)} "
            f"({fmt(now)} + {_duration(max_skew)}.)"
        )
    if claim.presigned:
        assert claim.expires is not None
        if now > claim.signed_at + timedelta(seconds=claim.expires):
            raise AwsError("RequestExpired", MSG_REQUEST_EXPIRED, 400)
    elif claim.signed_at < now - max_skew:
        raise _mismatch(
            f"Signature expired: {claim.amz_date} is now earlier than {fmt(now - max_skew)} "
            f"({fmt(now)} - {_duration(max_skew)}.)"
        )


def _check_scope(claim: _Claim, service: str | None, region: str | None) -> None:
    _, date, scope_region, scope_service, terminator = claim.parts
    problems: list[str] = []
    if region is not None and scope_region != region:
        problems.append(f"Credential should be scoped to a valid region, not '{scope_region}'.")
    if service is not None and scope_service != service:
        problems.append(f"Credential should be scoped to correct service: '{service}'.")
    if terminator != TERMINATOR:
        problems.append(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
        )
    if date != claim.amz_date[:8]:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{date}' != '{claim.amz_date[:8]}', from '{claim.amz_date}'."
        )
    if problems:
        raise _mismatch(" ".join(problems))


def _check_token(info: SigningKeyInfo, presented: str | None) -> None:
    presented = presented or None
    if info.session_token is None:
        # A long-term key sent with a session token (typically a stale AWS_SESSION_TOKEN):
        # AWS answers InvalidClientTokenId.
        if presented is not None:
            raise _invalid_token()
    elif presented is None or not hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), info.session_token.encode("utf-8", "surrogatepass")
    ):
        raise _invalid_token()


# --- canonical request -----------------------------------------------------------------------


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, plus the collapsing of repeated slashes AWS requires (as botocore does)."""
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return first + "/".join(out) + last


def _canonical_uri(path: str) -> str:
    if path == "/" or not path:
        return "/"
    # The path arrives percent-encoded; encoding it again is SigV4's "encode twice" for non-S3 services.
    return quote(_remove_dot_segments(path), safe="/~")


def _encode(raw: str) -> str:
    return quote(unquote_to_bytes(raw), safe="-_.~")


def _canonical_query(pairs: list[tuple[str, str]], presigned: bool) -> str:
    encoded = sorted(
        (_encode(k), _encode(v)) for k, v in pairs if not (presigned and unquote(k) == "X-Amz-Signature")
    )
    return "&".join(f"{k}={v}" for k, v in encoded)


def _canonical_headers(hdrs: dict[str, list[str]], signed: tuple[str, ...]) -> str:
    lines = []
    for name in signed:
        values = hdrs.get(name.lower(), [])
        lines.append(name + ":" + ",".join(" ".join(v.split()) for v in values) + "\n")
    return "".join(lines)


def _payload_hash(hdrs: dict[str, list[str]], body: bytes) -> str:
    actual = hashlib.sha256(body).hexdigest()
    claimed = hdrs.get("x-amz-content-sha256")
    if not claimed:
        return actual
    value = claimed[-1].strip()
    # A claimed hash must be the body's hash, or the signature would cover a body that was never sent.
    if value != UNSIGNED_PAYLOAD and not hmac.compare_digest(
        value.encode("utf-8", "surrogatepass"), actual.encode()
    ):
        raise _mismatch()
    return value


def _canonical_request(
    method: str,
    path: str,
    pairs: list[tuple[str, str]],
    hdrs: dict[str, list[str]],
    body: bytes,
    claim: _Claim,
) -> str:
    return "\n".join(
        (
            method.upper(),
            _canonical_uri(path),
            _canonical_query(pairs, claim.presigned),
            _canonical_headers(hdrs, claim.signed_headers),
            ";".join(claim.signed_headers),
            _payload_hash(hdrs, body),
        )
    )


def _string_to_sign(claim: _Claim, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{ALGORITHM}\n{claim.amz_date}\n{claim.scope}\n{digest}"


@functools.lru_cache(maxsize=4096)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return key


# --- public API ------------------------------------------------------------------------------


def credential_scope(
    method: str, path: str, query: str, headers: Mapping[str, str]
) -> tuple[str, str, str] | None:
    """``(access_key_id, region, service)`` the request claims, without verifying anything;
    None when it is unsigned or its credential cannot be read (``verify`` then says why)."""
    credential: str | None = None
    for name, value in headers.items():
        if name.lower() == "authorization":
            for item in value.partition(" ")[2].split(","):
                key, _, val = item.strip().partition("=")
                if key == "Credential":
                    credential = val.strip()
            break
    else:
        for key, val in _split_query(query):
            if unquote(key) == "X-Amz-Credential":
                credential = unquote(val)
                break
    if credential is None:
        return None
    parts = credential.split("/")
    if len(parts) != 5:
        return None
    return parts[0], parts[2], parts[3]


def canonical_strings(
    method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
) -> tuple[str, str]:
    """The canonical request and string to sign a signed request's signature covers (for tests and
    debugging; AWS once returned both in SignatureDoesNotMatch messages)."""
    hdrs = _lower_headers(headers)
    pairs = _split_query(query)
    claim = _claim(hdrs, pairs)
    creq = _canonical_request(method, path, pairs, hdrs, body, claim)
    return creq, _string_to_sign(claim, creq)


def verify(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup: Lookup,
    now: datetime,
    *,
    max_skew: timedelta = timedelta(minutes=5),
    service: str | None = None,
    region: str | None = None,
) -> VerifiedRequest:
    """Verify a SigV4-signed request or raise the ``AwsError`` AWS would send.

    ``path`` and ``query`` are raw (still percent-encoded). ``headers`` may be any mapping,
    including a multidict whose ``items()`` repeats a name. ``lookup`` returns the key's secret
    (and, for temporary credentials, the session token they must present), or None for an unknown
    or inactive key. ``service``/``region``, when given, must match the credential scope.
    """
    return _verify(method, path, query, headers, body, lookup, now, max_skew=max_skew, service=service,
                   region=region)[0]


def _verify(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup: Lookup,
    now: datetime,
    *,
    max_skew: timedelta,
    service: str | None,
    region: str | None,
) -> tuple[VerifiedRequest, _Claim, SigningKeyInfo]:
    """:func:`verify`, also returning the claim and the key it was verified with."""
    hdrs = _lower_headers(headers)
    pairs = _split_query(query)
    claim = _claim(hdrs, pairs)
    _check_time(claim, now, max_skew)
    _check_scope(claim, service, region)
    access_key_id, date, scope_region, scope_service, _ = claim.parts
    info = lookup(access_key_id)
    if info is None:
        raise _invalid_token()
    _check_token(info, claim.session_token)
    creq = _canonical_request(method, path, pairs, hdrs, body, claim)
    expected = hmac.new(
        _signing_key(info.secret_access_key, date, scope_region, scope_service),
        _string_to_sign(claim, creq).encode("utf-8", "surrogatepass"),
        hashlib.sha256,
    ).hexdigest()
    if not hmac.compare_digest(expected.encode(), claim.signature.encode("utf-8", "surrogatepass")):
        raise _mismatch()
    return VerifiedRequest(
        access_key_id=access_key_id,
        region=scope_region,
        service=scope_service,
        date=date,
        session_token=claim.session_token or None,
        signed_at=claim.signed_at,
        presigned=claim.presigned,
    ), claim, info


def verify_presigned_url(
    url_without_scheme: str,
    method: str,
    host_header_value: str,
    lookup: Lookup,
    now: datetime,
    *,
    expected_service: str = "rds-db",
    max_skew: timedelta = timedelta(minutes=5),
) -> tuple[VerifiedRequest, dict[str, str]]:
    """Verify a presigned URL such as an IAM database authentication token
    (``host:port/?Action=connect&DBUser=...&X-Amz-Algorithm=...``).

    ``host_header_value`` is the ``host`` the token must have been signed for (``host:port`` of the
    endpoint the client reached); a token signed for another endpoint fails its signature. Returns
    the verified request and the URL's own parameters (everything but ``X-Amz-*``), decoded.
    """
    verified, params, _, _ = _verify_presigned(url_without_scheme, method, host_header_value, lookup, now,
                                               expected_service=expected_service, max_skew=max_skew)
    return verified, params


def _verify_presigned(
    url_without_scheme: str,
    method: str,
    host_header_value: str,
    lookup: Lookup,
    now: datetime,
    *,
    expected_service: str,
    max_skew: timedelta,
) -> tuple[VerifiedRequest, dict[str, str], _Claim, SigningKeyInfo]:
    _, sep, rest = url_without_scheme.partition("://")
    url = rest if sep else url_without_scheme
    _, slash, path_query = url.partition("/")
    path, _, query = ("/" + path_query if slash else "/").partition("?")
    pairs = _split_query(query)
    if not any(unquote(k) == "X-Amz-Algorithm" for k, _ in pairs):
        raise AwsError("MissingAuthenticationToken", MSG_MISSING_TOKEN, 403)
    verified, claim, info = _verify(
        method,
        path,
        query,
        {"host": host_header_value},
        b"",
        lookup,
        now,
        max_skew=max_skew,
        service=expected_service,
        region=None,
    )
    params = {unquote(k): unquote(v) for k, v in pairs if not unquote(k).startswith("X-Amz-")}
    return verified, params, claim, info


@dataclass(frozen=True)
class _Verified:
    request: VerifiedRequest
    params: Mapping[str, str]
    claim: _Claim
    key: SigningKeyInfo


class PresignedVerifier:
    """:func:`verify_presigned_url` that remembers the URLs it verified (at most ``capacity``, the
    least recently used go first). An IAM database token is used for many logins in its 15 minutes
    (AWS's drivers cache them), and its signature is a function of the URL, the method, the host and
    the signing key alone. A repeat is checked again for everything else: the key is looked up again
    and must be the same secret (and session token) it was verified with, and the time window is
    checked against ``now``; only the canonical request and the signature are not computed again.
    A URL that failed is not remembered."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, str, str, str], _Verified] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def verify(
        self,
        url_without_scheme: str,
        method: str,
        host_header_value: str,
        lookup: Lookup,
        now: datetime,
        *,
        expected_service: str = "rds-db",
        max_skew: timedelta = timedelta(minutes=5),
    ) -> tuple[VerifiedRequest, dict[str, str]]:
        key = (url_without_scheme, method, host_header_value, expected_service)
        seen = self._seen.get(key)
        if seen is not None:  # in verify's order: the time window, then the key
            try:
                _check_time(seen.claim, now, max_skew)
            except AwsError:
                del self._seen[key]
                raise
            if lookup(seen.request.access_key_id) == seen.key:
                self._seen.move_to_end(key)
                return seen.request, dict(seen.params)
            del self._seen[key]  # the key changed or is gone: verify from the start (and fail as AWS fails)
        verified, params, claim, used = _verify_presigned(
            url_without_scheme, method, host_header_value, lookup, now, expected_service=expected_service,
            max_skew=max_skew)
        self._seen[key] = _Verified(verified, dict(params), claim, used)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return verified, params

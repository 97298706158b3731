"""Which service a request is for: the SigV4 credential scope, else the json ``X-Amz-Target`` prefix.

A request signed for a service auroral does not serve (Prowler asks Organizations, Account, Support...)
is answered in that service's own protocol when botocore models it in one auroral speaks
(``unserved_service``), so the caller's SDK reads a clean ``InvalidAction`` rather than a body it
cannot parse."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from urllib.parse import parse_qsl

import botocore.model
from botocore.loaders import Loader

from .http import HttpRequest
from .models import PROTOCOLS, botocore_session, service_model

# SigV4 signing name -> botocore model name, for the services auroral serves.
SIGNING_NAMES: dict[str, str] = {
    "iam": "iam",
    "sts": "sts",
    "rds": "rds",
    "ec2": "ec2",
    "secretsmanager": "secretsmanager",
    "kms": "kms",
    "cloudtrail": "cloudtrail",
    "securityhub": "securityhub",
}


@cache
def _target_prefixes() -> dict[str, str]:
    table = {}
    for name in SIGNING_NAMES.values():
        prefix = service_model(name).metadata.get("targetPrefix")
        if prefix:
            table[prefix] = name
    return table


def _scope_service(credential: str) -> str | None:
    # AKID/date/region/service/aws4_request
    parts = credential.strip().split("/")
    if len(parts) >= 5 and parts[-1] == "aws4_request":
        return parts[-2]
    return None


def _signed_service(req: HttpRequest) -> str | None:
    """The service name of the request's SigV4 scope (header or presigned query), served or not."""
    auth = req.header("authorization")
    if auth:
        start = auth.find("Credential=")
        if start >= 0:
            rest = auth[start + len("Credential=") :]
            end = min((i for i in (rest.find(","), rest.find(" ")) if i >= 0), default=len(rest))
            return _scope_service(rest[:end])
    elif "X-Amz-Credential" in req.query:
        for key, value in parse_qsl(req.query, keep_blank_values=True):
            if key == "X-Amz-Credential":
                return _scope_service(value)
    return None


def detect_service(req: HttpRequest) -> str | None:
    scope_service = _signed_service(req)
    if scope_service is not None:
        return SIGNING_NAMES.get(scope_service)
    target = req.header("x-amz-target")
    if target:
        return _target_prefixes().get(target.rpartition(".")[0])
    return None


@cache
def _botocore_services() -> frozenset[str]:
    return frozenset(botocore_session().get_available_services())


@dataclass(frozen=True, slots=True)
class Wire:
    """What an error document of an unserved service needs of its model (a few strings, kept instead of
    the model: ``errors.serialize_error``'s ``wire``)."""

    name: str
    protocol: str
    xml_namespace: str
    json_version: str


@cache
def _wire_of(name: str) -> Wire:
    """The protocol (and error-document metadata) of botocore's model ``name``, read from a loader of its
    own so the model itself is not kept (a caller naming every service botocore knows costs one load
    each, and a few bytes kept)."""
    model = botocore.model.ServiceModel(Loader().load_service_model(name, "service-2"), name)
    meta = model.metadata
    return Wire(name, str(model.protocol), str(meta.get("xmlNamespace", "")), str(meta.get("jsonVersion", "1.1")))


def unserved_service(req: HttpRequest) -> Wire | None:
    """The botocore service a request is signed for when auroral does not serve it and botocore models
    it in a protocol auroral renders (its errors then go out in that protocol, from the returned
    ``Wire`` alone: never from the service's model, which is not kept); else None. The name is the
    caller's text: it only ever selects among botocore's own model names, never builds a path.
    Called once the request is authenticated."""
    name = _signed_service(req)
    if name is None or name in SIGNING_NAMES or name not in _botocore_services():
        return None
    wire = _wire_of(name)
    return wire if wire.protocol in PROTOCOLS else None

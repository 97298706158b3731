"""Which service a request is for: the SigV4 credential scope, else the json ``X-Amz-Target`` prefix."""

from __future__ import annotations

from functools import cache
from urllib.parse import parse_qsl

from .http import HttpRequest
from .models import service_model

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


def detect_service(req: HttpRequest) -> str | None:
    scope_service: str | None = None
    auth = req.header("authorization")
    if auth:
        start = auth.find("Credential=")
        if start >= 0:
            rest = auth[start + len("Credential=") :]
            end = min((i for i in (rest.find(","), rest.find(" ")) if i >= 0), default=len(rest))
            scope_service = _scope_service(rest[:end])
    elif "X-Amz-Credential" in req.query:
        for key, value in parse_qsl(req.query, keep_blank_values=True):
            if key == "X-Amz-Credential":
                scope_service = _scope_service(value)
                break
    if scope_service is not None:
        return SIGNING_NAMES.get(scope_service)
    target = req.header("x-amz-target")
    if target:
        return _target_prefixes().get(target.rpartition(".")[0])
    return None

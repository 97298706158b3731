"""A test harness for the IAM and STS providers: a real Store in a temporary directory, the real
Directory and IamAuthorizer, and ``call`` which authorizes an operation through the ACTIONS table
the way the request pipeline does before invoking the provider method."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auroral.api.actions import ActionSpec, request_tag_keys
from auroral.api.context import Principal, RequestContext
from auroral.crypto import Sealer
from auroral.iam.actions import ACTIONS as IAM_ACTIONS
from auroral.iam.authorizer import IamAuthorizer
from auroral.iam.directory import Directory
from auroral.iam.service import IamService
from auroral.store import Store
from auroral.sts.actions import ACTIONS as STS_ACTIONS
from auroral.sts.service import StsService

ACCOUNT = "123456789012"


async def _awaited(result: Awaitable[Any]) -> Any:
    return await result


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2024, 5, 1, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Env:
    path: Path
    key: bytes
    clock: Clock
    store: Store
    directory: Directory
    authorizer: IamAuthorizer
    iam: IamService
    sts: StsService

    @classmethod
    def open(cls, path: Path, key: bytes, clock: Clock) -> Env:
        store = Store(path)
        directory = Directory(store, Sealer(key), ACCOUNT, clock)
        authorizer = IamAuthorizer(directory)
        return cls(path, key, clock, store, directory, authorizer, IamService(directory), StsService(directory, authorizer))

    def reopen(self) -> Env:
        self.store.close()
        return Env.open(self.path, self.key, self.clock)

    @property
    def root(self) -> Principal:
        return self.directory.root_principal("AKIAROOT")

    def ctx(self, principal: Principal | None = None, operation: str = "", params: dict[str, Any] | None = None,
            *, source_ip: str = "10.0.0.1", region: str = "us-east-1", service: str = "iam") -> RequestContext:
        return RequestContext(
            request_id="req", service=service, operation=operation, region=region,
            principal=principal or self.root, source_ip=source_ip, user_agent="pytest",
            secure_transport=True, time=self.clock(), params=params or {}, authorizer=self.authorizer,
        )

    def call(self, op: str, params: dict[str, Any] | None = None, principal: Principal | None = None,
             *, service: str | None = None, source_ip: str = "10.0.0.1") -> dict[str, Any]:
        service = service or ("sts" if op in STS_ACTIONS and op not in IAM_ACTIONS else "iam")
        provider: Any = self.sts if service == "sts" else self.iam
        spec: ActionSpec = (STS_ACTIONS if service == "sts" else IAM_ACTIONS)[op]
        params = dict(params or {})
        ctx = self.ctx(principal, op, params, source_ip=source_ip, service=service)
        if not spec.unauthorized:
            hook = getattr(provider, "resource_arns", None)
            resources = (hook(ctx, op, params) if hook else None) or spec.render(params, ctx.account, ctx.region)
            keys: dict[str, Any] = {k: params[p] for k, p in spec.keys.items() if params.get(p) is not None}
            keys.update(request_tag_keys(spec, params))
            if spec.resource_tags and hasattr(provider, "resource_tags") and len(resources) == 1:
                for k, v in provider.resource_tags(ctx.account, resources[0]).items():
                    keys[f"aws:ResourceTag/{k}"] = v
            if hasattr(provider, "authz_keys"):
                keys.update(provider.authz_keys(ctx, op, params))
            ctx.authorize(spec.action, resources, keys)
        result: Any = getattr(provider, op)(ctx, params)
        if inspect.isawaitable(result):  # the simulator runs off the event loop, as the server awaits it
            result = asyncio.run(_awaited(result))
        assert isinstance(result, dict)
        return result

    # --- conveniences -----------------------------------------------------------------------

    def make_user(self, name: str, *policies: dict[str, Any], path: str = "/") -> Principal:
        """A user with inline policies and an access key; returns its authenticated principal."""
        self.call("CreateUser", {"UserName": name, "Path": path})
        for i, doc in enumerate(policies):
            self.call("PutUserPolicy", {"UserName": name, "PolicyName": f"p{i}", "PolicyDocument": json.dumps(doc)})
        key = self.call("CreateAccessKey", {"UserName": name})["AccessKey"]
        found = self.directory.lookup_credentials(key["AccessKeyId"])
        assert found is not None
        return found[1]

    def principal_for(self, access_key_id: str) -> Principal:
        found = self.directory.lookup_credentials(access_key_id)
        assert found is not None
        return found[1]


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource, **extra}]}


def deny(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": action, "Resource": resource, **extra}]}


def trust(principal: Any, **extra: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}]})


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env.open(tmp_path / "auroral.sqlite3", os.urandom(32), Clock())
    yield e
    e.store.close()

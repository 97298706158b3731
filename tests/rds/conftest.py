"""Unit-level fixtures for the RDS provider: a real Store in a temporary directory, the fakes of
``fakes.py``, and ``Env.call`` which runs an operation and passes its output through botocore
(our strict serializer, then botocore's own parser) — so every output dict is checked against the
rds model, and tests see exactly what boto3 users would."""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.parsers
import pytest

from auroral.api.protocol import serialize_response, service_model
from auroral.errors import AwsError
from auroral.rds.service import RdsService
from auroral.store import Store
from tests.conftest import server_tmpdir

from .e2e_helpers import postgres_processes
from .fakes import REGION, FakeAuthorizer, FakeDirectory, FakeRuntime, make_ctx

PASSWORD = "Secret-pass1"


def through_botocore(operation: str, output: dict[str, Any]) -> dict[str, Any]:
    model = service_model("rds")
    op = model.operation_model(operation)
    response = serialize_response("rds", op, output, "req-1", strict=True)
    parsed: dict[str, Any] = botocore.parsers.create_parser(model.protocol).parse(
        {"status_code": response.status, "headers": dict(response.headers), "body": response.body},
        op.output_shape,
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


@dataclass
class Env:
    store: Store
    runtime: FakeRuntime
    directory: FakeDirectory
    authorizer: FakeAuthorizer
    service: RdsService

    def __post_init__(self) -> None:
        # Creates answer at once here, so that tests see the states of the background work
        # (the bounded wait for it has its own tests: test_settle.py).
        self.service.settle_seconds = 0.0

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        ctx = make_ctx(self.authorizer, operation, params)
        result = getattr(self.service, operation)(ctx, params)
        if inspect.isawaitable(result):
            result = await result
        return through_botocore(operation, result or {})

    async def fails(self, operation: str, **params: Any) -> AwsError:
        with pytest.raises(AwsError) as info:
            await self.call(operation, **params)
        return info.value

    async def cluster(self, ident: str = "c1", *, drain: bool = True, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "DBClusterIdentifier": ident, "Engine": "aurora-postgresql", "EngineVersion": "16.4",
            "MasterUsername": "master", "MasterUserPassword": PASSWORD, **extra,
        }
        out = await self.call("CreateDBCluster", **params)
        if drain:
            await self.service.drain()
        return dict(out["DBCluster"])

    async def instance(self, ident: str = "i1", cluster: str = "c1", *, drain: bool = True,
                       **extra: Any) -> dict[str, Any]:
        out = await self.call("CreateDBInstance", DBInstanceIdentifier=ident, DBClusterIdentifier=cluster,
                              Engine="aurora-postgresql", DBInstanceClass="db.r6g.large", **extra)
        if drain:
            await self.service.drain()
        return dict(out["DBInstance"])

    async def describe_cluster(self, ident: str = "c1") -> dict[str, Any]:
        return dict((await self.call("DescribeDBClusters", DBClusterIdentifier=ident))["DBClusters"][0])

    async def describe_instance(self, ident: str = "i1") -> dict[str, Any]:
        return dict((await self.call("DescribeDBInstances", DBInstanceIdentifier=ident))["DBInstances"][0])

    def reopen(self, runtime: FakeRuntime | None = None) -> Env:
        """A new service (as after a restart of auroral) on the same store."""
        runtime = runtime or self.runtime
        service = RdsService(self.store, runtime, self.directory, REGION)
        return Env(self.store, runtime, self.directory, self.authorizer, service)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    store = Store(tmp_path / "store.db")
    runtime, directory, authorizer = FakeRuntime(), FakeDirectory(), FakeAuthorizer()
    yield Env(store, runtime, directory, authorizer, RdsService(store, runtime, directory, REGION))
    store.close()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests of this package in a fresh event loop (no plugin needed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = pyfuncitem._fixtureinfo.argnames
        asyncio.run(pyfuncitem.obj(**{n: pyfuncitem.funcargs[n] for n in names}))
        return True
    return None


@pytest.fixture
def base() -> Iterator[Path]:
    """A private directory for an end-to-end test's own server; its PostgreSQL processes are killed
    and the directory removed afterwards, whatever the test left behind."""
    path = server_tmpdir()
    yield path
    for pid in postgres_processes(str(path)):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)

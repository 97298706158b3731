"""Every operation a provider implements is in the authorization table, and every table entry
names an operation of the botocore model and a well-formed action."""

from __future__ import annotations

import inspect
import re

import pytest

from auroral.api import protocol
from auroral.api.actions import table
from auroral.app import App


def _operations(provider: object) -> set[str]:
    return {name for name, _ in inspect.getmembers(type(provider), callable)
            if re.fullmatch(r"[A-Z][A-Za-z0-9]+", name)}


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from auroral.config import Settings

    app = App(Settings(data_dir=tmp_path_factory.mktemp("table") / "d"))
    try:
        return {**app.global_providers, **app.regions.get(app.regions.home).providers}
    finally:
        app.store.close()
        import os

        os.close(app._lock_fd)


def test_every_implemented_operation_has_an_entry(providers: dict[str, object]) -> None:
    missing = [(service, op) for service, p in providers.items() for op in _operations(p)
               if (service, op) not in table()]
    assert missing == []


def test_every_entry_is_a_model_operation_with_a_valid_action() -> None:
    for (service, op), spec in table().items():
        model = protocol.service_model(service)
        assert op in model.operation_names, (service, op)
        assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", spec.action), spec.action


# Services whose handlers canonicalize what a parameter names (case, name or ARN, alias → key): a
# parameter spliced raw into an ARN would let another spelling slip past a Deny on the canonical ARN.
CANONICAL = ("rds", "ec2", "secretsmanager", "kms")


def test_canonicalizing_services_name_every_resource_through_a_resolver(providers: dict[str, object]) -> None:
    from auroral.api.actions import Ref, fields

    for (service, op), spec in table().items():
        if service not in CANONICAL:
            continue
        for resource in spec.resources:
            if isinstance(resource, str):
                assert fields(resource) == [], (service, op, resource)
            else:
                assert isinstance(resource, Ref)
                assert callable(getattr(providers[service], "resolve_resource", None)), service
                assert not callable(getattr(providers[service], "resource_arns", None)), service

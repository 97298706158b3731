"""Unit-level fixtures for the EC2 provider: a real Store in a temporary directory and ``Env.call``,
which runs an operation and passes its output through botocore (our strict serializer, then
botocore's own parser), so every output is checked against the ec2 model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.parsers
import pytest

from auroral.api.context import Principal, RequestContext
from auroral.api.protocol import serialize_response, service_model
from auroral.ec2 import Ec2Service
from auroral.errors import AwsError
from auroral.store import Store

ACCOUNT = "111122223333"
REGION = "us-east-1"


class AllowAll:
    def authorize(self, ctx: RequestContext, action: str, resources: Sequence[str],
                  keys: Mapping[str, Any] | None = None) -> None:
        return None

    def authorize_unless_denied(self, ctx: RequestContext, action: str, resources: Sequence[str],
                                keys: Mapping[str, Any] | None = None) -> None:
        return None


def make_ctx(operation: str, params: dict[str, Any], account: str = ACCOUNT) -> RequestContext:
    principal = Principal(account=account, arn=f"arn:aws:iam::{account}:root", kind="root", user_id=account,
                          name="root")
    return RequestContext(request_id="req-1", service="ec2", operation=operation, region=REGION,
                          principal=principal, source_ip="127.0.0.1", user_agent="test", secure_transport=False,
                          time=dt.datetime.now(dt.UTC), params=params, authorizer=AllowAll())


def through_botocore(operation: str, output: dict[str, Any]) -> dict[str, Any]:
    model = service_model("ec2")
    op = model.operation_model(operation)
    response = serialize_response("ec2", op, output, "req-1", strict=True)
    if op.output_shape is None:
        return {}
    parsed: dict[str, Any] = botocore.parsers.create_parser(model.protocol).parse(
        {"status_code": response.status, "headers": dict(response.headers), "body": response.body},
        op.output_shape,
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


@dataclass
class Env:
    store: Store
    service: Ec2Service
    account: str = ACCOUNT

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        result = getattr(self.service, operation)(make_ctx(operation, params, self.account), params)
        return through_botocore(operation, result or {})

    def fails(self, operation: str, **params: Any) -> AwsError:
        with pytest.raises(AwsError) as info:
            self.call(operation, **params)
        return info.value


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    store = Store(tmp_path / "store.sqlite3")
    yield Env(store, Ec2Service(store, REGION, translation="127.10.0.0/16=10.0.0.0/16"))
    store.close()


# --- end-to-end helpers (the session ``server`` fixture of tests/conftest.py) -------------------


@pytest.fixture
def ec2(server: Any) -> Any:
    return server.client("ec2")


def client_error(call: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    """Run a boto3 call that must fail with HTTP 400; return (code, message)."""
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400, response
    return response["Error"]["Code"], response["Error"]["Message"]


@pytest.fixture
def vpc(ec2: Any) -> Iterator[dict[str, Any]]:
    """A fresh 10.0.0.0/16 VPC (removed afterwards with everything in it)."""
    made = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]
    yield made
    vpc_id = made["VpcId"]
    for eni in ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NetworkInterfaces"]:
        ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    for group in groups:  # drop cross-references first
        if group["IpPermissions"]:
            ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
    for group in groups:
        if group["GroupName"] != "default":
            ec2.delete_security_group(GroupId=group["GroupId"])
    for igw in ec2.describe_internet_gateways(
            Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]:
        ec2.detach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=vpc_id)
        ec2.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
    ec2.delete_vpc(VpcId=vpc_id)

"""DescribeRegions through unmodified boto3 against ``auroral up``: the regions of the caller's
partition, each enabled (auroral serves them all), narrowed by RegionNames and Filters; an unknown
region name or filter is InvalidParameterValue; authorized as ec2:DescribeRegions."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from auroral.regions import all_regions, partition_of
from tests.conftest import Server, UserKeys


def test_lists_the_partition(ec2: Any) -> None:
    regions = ec2.describe_regions()["Regions"]
    names = [r["RegionName"] for r in regions]
    assert names == sorted(r for r in all_regions() if partition_of(r) == "aws")
    assert "us-east-1" in names and "cn-north-1" not in names
    east = next(r for r in regions if r["RegionName"] == "us-east-1")
    assert east == {"RegionName": "us-east-1", "Endpoint": "ec2.us-east-1.amazonaws.com",
                    "OptInStatus": "opt-in-not-required"}
    assert ec2.describe_regions(AllRegions=True)["Regions"] == regions


def test_names_and_filters(ec2: Any) -> None:
    picked = ec2.describe_regions(RegionNames=["eu-west-1", "us-east-1"])["Regions"]
    assert [r["RegionName"] for r in picked] == ["eu-west-1", "us-east-1"]
    west = ec2.describe_regions(Filters=[{"Name": "region-name", "Values": ["us-west-*"]}])["Regions"]
    assert {r["RegionName"] for r in west} == {"us-west-1", "us-west-2"}
    none = ec2.describe_regions(Filters=[{"Name": "opt-in-status", "Values": ["not-opted-in"]}])["Regions"]
    assert none == []
    for bad in ({"RegionNames": ["us-east-9"]}, {"Filters": [{"Name": "colour", "Values": ["x"]}]}):
        with pytest.raises(ClientError) as err:
            ec2.describe_regions(**bad)
        assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_authorized(server: Server, make_user: Any) -> None:
    user: UserKeys = make_user()
    ec2 = server.client("ec2", access_key=user.access_key, secret_key=user.secret_key)
    with pytest.raises(ClientError) as err:
        ec2.describe_regions()
    assert err.value.response["Error"]["Code"] == "UnauthorizedOperation"
    allowed: UserKeys = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:DescribeRegions", "Resource": "*"}]})
    ec2 = server.client("ec2", access_key=allowed.access_key, secret_key=allowed.secret_key)
    assert ec2.describe_regions(RegionNames=["us-east-1"])["Regions"][0]["RegionName"] == "us-east-1"

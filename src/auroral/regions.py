"""AWS regions and partitions, as botocore's ``endpoints.json`` lists them.

A SigV4 scope names a region; auroral serves every region AWS has (each with its own regional
resources) and refuses the rest as AWS does: ``SignatureDoesNotMatch`` (403) "Credential should
be scoped to a valid region, not '<region>'. ". IAM and STS are global services: their calls are
served whatever real region they are signed for, and their ARNs carry no region.

A region's partition decides the ``arn:<partition>:`` prefix of the ARNs made in it
(``cn-north-1`` → ``aws-cn``, ``us-gov-west-1`` → ``aws-us-gov``).
"""

from __future__ import annotations

from functools import cache

from botocore.loaders import Loader

from auroral.errors import AwsError

# The services each region has its own of (IAM, STS and CloudTrail are one for the installation).
REGIONAL_SERVICES = frozenset({"rds", "ec2", "kms", "secretsmanager", "securityhub"})


@cache
def _regions() -> dict[str, str]:
    """Every region botocore knows, mapped to its partition."""
    data = Loader().load_data("endpoints")
    out: dict[str, str] = {}
    for partition in data["partitions"]:
        for region in partition.get("regions", {}):
            out[region] = str(partition["partition"])
    return out


def is_region(name: str) -> bool:
    return name in _regions()


def all_regions() -> list[str]:
    return sorted(_regions())


def partition_of(region: str) -> str:
    """The partition of a real region; ``aws`` for anything else (never reached for requests:
    their regions are checked first)."""
    return _regions().get(region, "aws")



_IAM_REGIONS = {"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}


def iam_region(region: str) -> str:
    """The region of IAM's global endpoint in ``region``'s partition (what AWS reports as
    ``aws:RequestedRegion`` and ``awsRegion`` for IAM calls)."""
    return _IAM_REGIONS.get(partition_of(region), region)


def check_region(region: str) -> None:
    """Refuse a SigV4 scope that names no AWS region, with AWS's error."""
    if not is_region(region):
        raise AwsError(
            "SignatureDoesNotMatch",
            f"Credential should be scoped to a valid region, not '{region}'. ",
            403,
        )

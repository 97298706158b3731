"""DescribeRegions: the regions of the caller's partition, which scanners and SDK tools (Prowler,
the AWS CLI's region loops) ask before they visit each one.

auroral serves every region botocore knows (``auroral.regions``), each with its own regional
resources, so every region of the partition the call is signed in is enabled for the account:
``OptInStatus`` is ``opt-in-not-required`` for all of them, and ``AllRegions`` lists the same set
(Unconfirmed simplification: AWS marks regions launched after March 2019 ``opted-in`` or
``not-opted-in``). ``Endpoint`` is EC2's public host name in that region, as AWS answers; a client of
auroral reaches it through its own endpoint URL whatever the answer says.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from botocore.loaders import Loader

from auroral.api.context import RequestContext
from auroral.ec2 import errors, filters
from auroral.regions import partition_of

OPT_IN_NOT_REQUIRED = "opt-in-not-required"


@cache
def _partition_regions() -> dict[str, tuple[str, tuple[str, ...]]]:
    """partition -> (DNS suffix, its regions), from botocore's endpoints data."""
    data = Loader().load_data("endpoints")
    return {str(p["partition"]): (str(p["dnsSuffix"]), tuple(sorted(p.get("regions", {}))))
            for p in data["partitions"]}


class RegionOperations:
    def DescribeRegions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        suffix, regions = _partition_regions().get(partition_of(ctx.region), ("amazonaws.com", ()))
        names = [str(n) for n in params.get("RegionNames") or []]
        unknown = [n for n in names if n not in regions]
        if unknown:
            # Unconfirmed wording; the code is EC2's for a bad parameter value.
            raise errors.invalid(f"Invalid region names: {', '.join(unknown)}")
        rows = [{"RegionName": r, "Endpoint": f"ec2.{r}.{suffix}", "OptInStatus": OPT_IN_NOT_REQUIRED}
                for r in regions if not names or r in names]
        getters = {"region-name": "RegionName", "endpoint": "Endpoint", "opt-in-status": "OptInStatus"}
        for f in params.get("Filters") or []:
            name = str(f.get("Name") or "")
            if name not in getters:
                raise errors.invalid(f"The filter '{name}' is invalid")
            wanted = [str(v) for v in f.get("Values") or []]
            rows = [row for row in rows if filters.matches([row[getters[name]]], wanted)]
        return {"Regions": rows}

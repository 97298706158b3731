"""Tags on clusters, instances, cluster parameter groups and DB subnet groups, addressed by ARN:
AddTagsToResource, RemoveTagsFromResource, ListTagsForResource; plus the tag lookups the
authorization step needs (``aws:ResourceTag/*``, ``rds:cluster-tag/*``, ``rds:db-tag/*``)."""

from __future__ import annotations

import re
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import invalid_parameter_value
from auroral.rds import validate
from auroral.rds.base import rds_error
from auroral.rds.instances import InstanceOperations
from auroral.rds.model import Cluster, ClusterParameterGroup, Instance
from auroral.rds.subnet_groups import DEFAULT_GROUP, KIND_SUBNET_GROUP, SubnetGroup
from auroral.rds.views import tag_list

_ARN = re.compile(r"arn:aws(?:-[a-z-]+)?:rds:([a-z0-9-]+):(\d{12}):(cluster|db|cluster-pg|subgrp):([A-Za-z0-9._ -]+)")
_MAX_TAGS = 50

Taggable = Cluster | Instance | ClusterParameterGroup | SubnetGroup


class TagOperations(InstanceOperations):
    def _find_taggable(self, account: str, arn: str) -> Taggable | None:
        m = _ARN.fullmatch(arn)
        if m is None or m.group(1) != self.region or m.group(2) != account:
            return None
        kind, name = m.group(3), m.group(4)
        if kind == "cluster":
            return self._get_cluster(account, name)
        if kind == "db":
            return self._get_instance(account, name)
        if kind == "subgrp":  # the implicit default group is not stored: it has no tags
            return None if name.lower() == DEFAULT_GROUP else self._get_subnet_group(account, name)
        return self._get_group(account, name)

    def _taggable(self, account: str, arn: str) -> Taggable:
        m = _ARN.fullmatch(arn)
        if m is None or m.group(1) != self.region:
            # Unconfirmed wording.
            raise invalid_parameter_value(f"The specified resource name does not match an RDS resource in this region: {arn}")
        found = self._find_taggable(account, arn)
        if found is not None:
            return found
        kind, name = m.group(3), m.group(4)
        if kind == "cluster":
            raise rds_error("DBClusterNotFoundFault", f"DBCluster {name} not found.")
        if kind == "db":
            raise rds_error("DBInstanceNotFoundFault", f"DBInstance {name} not found.")
        if kind == "subgrp":
            raise rds_error("DBSubnetGroupNotFoundFault", f"DB subnet group '{name}' does not exist.")
        raise rds_error("DBParameterGroupNotFoundFault", f"DBClusterParameterGroup not found: {name}")

    def _save_taggable(self, item: Taggable) -> None:
        if isinstance(item, Cluster):
            self._save_cluster(item)
        elif isinstance(item, Instance):
            self._save_instance(item)
        elif isinstance(item, SubnetGroup):
            self.store.put(KIND_SUBNET_GROUP, item.account, item.name, item.to_doc())
        else:
            self._save_group(item)

    def resource_tags(self, account: str, arn: str) -> dict[str, str]:
        item = self._find_taggable(account, arn)
        return dict(item.tags) if item is not None else {}

    def AddTagsToResource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        item = self._taggable(ctx.account, str(params.get("ResourceName") or ""))
        new = validate.tags(params.get("Tags"))
        merged = {**item.tags, **new}
        if len(merged) > _MAX_TAGS:
            # Unconfirmed wording; the documented limit is 50 tags per resource.
            raise invalid_parameter_value(f"A resource can have at most {_MAX_TAGS} tags.")
        item.tags = merged
        self._save_taggable(item)
        return {}

    def RemoveTagsFromResource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        item = self._taggable(ctx.account, str(params.get("ResourceName") or ""))
        for key in params.get("TagKeys") or []:
            item.tags.pop(str(key), None)
        self._save_taggable(item)
        return {}

    def ListTagsForResource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        item = self._taggable(ctx.account, str(params.get("ResourceName") or ""))
        return {"TagList": tag_list(item.tags)}

"""Tags on clusters, instances, cluster parameter groups, DB subnet groups and custom cluster endpoints,
addressed by ARN:
AddTagsToResource, RemoveTagsFromResource, ListTagsForResource; plus the tag lookups the
authorization step needs (``aws:ResourceTag/*``, ``rds:cluster-tag/*``, ``rds:db-tag/*``)."""

from __future__ import annotations

import re
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import invalid_parameter_value
from auroral.rds import validate
from auroral.rds.base import RESOURCE_ARN, not_found
from auroral.rds.cluster_endpoints import ClusterEndpoint
from auroral.rds.instances import InstanceOperations
from auroral.rds.model import Cluster, ClusterParameterGroup, Instance
from auroral.rds.snapshot_model import KIND_SNAPSHOT, ClusterSnapshot
from auroral.rds.subnet_groups import DEFAULT_GROUP, KIND_SUBNET_GROUP, SubnetGroup
from auroral.rds.views import tag_list
from auroral.regions import partition_of

_MAX_TAGS = 50
_TAGGABLE = ("cluster", "db", "cluster-pg", "subgrp", "cluster-endpoint", "cluster-snapshot")
_NAME = re.compile(r"[A-Za-z0-9._ -]+")

Taggable = Cluster | Instance | ClusterParameterGroup | SubnetGroup | ClusterEndpoint | ClusterSnapshot


class TagOperations(InstanceOperations):
    def tagged_resource(self, ctx: RequestContext, arn: str) -> tuple[str, str]:
        """(type, stored name) of the resource a ``ResourceName`` ARN names, for the handler and its
        authorization alike: an ARN of another partition or region, or of no taggable type, is
        refused; one of another account names nothing here (not found)."""
        m = RESOURCE_ARN.fullmatch(arn)
        if (m is None or m.group(1) != partition_of(ctx.region) or m.group(2) != ctx.region
                or m.group(4) not in _TAGGABLE or not _NAME.fullmatch(m.group(5))):
            # Unconfirmed wording.
            raise invalid_parameter_value(f"The specified resource name does not match an RDS resource in this region: {arn}")
        kind, name = m.group(4), m.group(5)
        if m.group(3) != ctx.account:
            raise not_found(kind, name)
        return kind, name.lower()

    def _lookup(self, account: str, kind: str, name: str) -> Taggable | None:
        if kind == "cluster":
            return self._get_cluster(account, name)
        if kind == "db":
            return self._get_instance(account, name)
        if kind == "cluster-endpoint":
            return self._get_endpoint(account, name)
        if kind == "cluster-snapshot":
            doc = self.store.get(KIND_SNAPSHOT, account, name.lower())
            return None if doc is None else ClusterSnapshot.from_doc(doc)
        if kind == "subgrp":  # the implicit default group is not stored: it has no tags
            return None if name.lower() == DEFAULT_GROUP else self._get_subnet_group(account, name)
        return self._get_group(account, name)

    def _find_taggable(self, account: str, arn: str) -> Taggable | None:
        """The resource a canonical ARN (as authorized) names, if it exists."""
        m = RESOURCE_ARN.fullmatch(arn)
        if m is None or m.group(2) != self.region or m.group(3) != account or m.group(4) not in _TAGGABLE:
            return None
        return self._lookup(account, m.group(4), m.group(5))

    def _taggable(self, ctx: RequestContext, arn: str) -> Taggable:
        kind, name = self.tagged_resource(ctx, arn)
        found = self._lookup(ctx.account, kind, name)
        if found is None:
            raise not_found(kind, arn.rsplit(":", 1)[-1])
        return found

    def _save_taggable(self, item: Taggable) -> None:
        if isinstance(item, Cluster):
            self._save_cluster(item)
        elif isinstance(item, Instance):
            self._save_instance(item)
        elif isinstance(item, ClusterEndpoint):
            self._save_endpoint(item)
        elif isinstance(item, ClusterSnapshot):
            self.store.put(KIND_SNAPSHOT, item.account, item.identifier, item.to_doc())
        elif isinstance(item, SubnetGroup):
            self.store.put(KIND_SUBNET_GROUP, item.account, item.name, item.to_doc())
        else:
            self._save_group(item)

    def resource_tags(self, account: str, arn: str) -> dict[str, str]:
        item = self._find_taggable(account, arn)
        return dict(item.tags) if item is not None else {}

    def AddTagsToResource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        item = self._taggable(ctx, str(params.get("ResourceName") or ""))
        new = validate.tags(params.get("Tags"))
        merged = {**item.tags, **new}
        if len(merged) > _MAX_TAGS:
            # Unconfirmed wording; the documented limit is 50 tags per resource.
            raise invalid_parameter_value(f"A resource can have at most {_MAX_TAGS} tags.")
        item.tags = merged
        self._save_taggable(item)
        return {}

    def RemoveTagsFromResource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        item = self._taggable(ctx, str(params.get("ResourceName") or ""))
        for key in params.get("TagKeys") or []:
            item.tags.pop(str(key), None)
        self._save_taggable(item)
        return {}

    def ListTagsForResource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        item = self._taggable(ctx, str(params.get("ResourceName") or ""))
        return {"TagList": tag_list(item.tags)}

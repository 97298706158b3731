"""DB cluster parameter groups: create, describe, modify, reset, delete, their parameters and
the engine defaults, with AWS's apply semantics.

* ``default.aurora-postgresql<major>`` exist implicitly (the engine defaults; never stored,
  cannot be modified or deleted).
* A change with ``ApplyMethod=immediate`` (dynamic parameters only) reaches every running cluster
  that uses the group at once (``ClusterRuntime.apply_parameters``); ``pending-reboot`` changes
  mark the clusters' members ``pending-reboot`` until the writer reboots (or the cluster stops
  and starts), when the runtime gets the new effective values.
* Every value is checked against what ``DescribeDBClusterParameters`` reports for the parameter:
  its ``DataType`` and ``AllowedValues`` (a range "0-2147483647", a list "0,1", the names of an enum;
  ``timezone``: the zones of the tz database the runtime's PostgreSQL reads). Values stored before
  these checks existed are checked again when a cluster takes up the group.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AwsError, invalid_parameter_combination, invalid_parameter_value
from auroral.rds import events, validate
from auroral.rds.base import paginate, rds_error
from auroral.rds.default_parameters import BY_NAME, DEFAULTS, ParameterDefault
from auroral.rds.engine_versions import EngineVersionOperations
from auroral.rds.model import ENGINE, Cluster, ClusterParameterGroup
from auroral.rds.runtime import RuntimeFailure
from auroral.regions import partition_of

log = logging.getLogger("auroral.rds")

_FAMILY = re.compile(rf"{ENGINE}(\d+)")
_RANGE = re.compile(r"(-?[0-9]+)-(-?[0-9]+)")
_INTEGER = re.compile(r"-?[0-9]{1,19}")  # plain decimal: no "+", blanks, "_" or non-ASCII digits
_METHODS = ("immediate", "pending-reboot")
_MAX_PARAMETERS_PER_CALL = 20


def family_major(family: str) -> int | None:
    m = _FAMILY.fullmatch(family)
    return int(m.group(1)) if m else None


def _runnable(value: str | None) -> bool:
    """Formulas ("{DBInstanceClassMemory/...}") are AWS's to evaluate; runtimes never see them."""
    return value is not None and "{" not in value


def value_ok(p: ParameterDefault, value: str, allowed: str | None) -> bool:
    """Whether ``value`` fits the parameter's DataType and AllowedValues. No AllowedValues: refused
    (every modifiable parameter here has them; fail closed rather than write unchecked text into
    PostgreSQL's configuration)."""
    if not allowed:
        return False
    if p.data_type == "integer":
        rng = _RANGE.fullmatch(allowed)
        if _INTEGER.fullmatch(value) is None:
            return False
        if rng is not None:
            return int(rng.group(1)) <= int(value) <= int(rng.group(2))
        return value in allowed.split(",")
    if p.data_type == "list":
        choices = set(allowed.split(","))
        return all(v.strip() in choices for v in value.split(",") if v.strip())
    return value in allowed.split(",")


def check_value(p: ParameterDefault, value: str, allowed: str | None) -> None:
    if not value_ok(p, value, allowed):
        # AWS's wording for the parameters with short lists and ranges; for timezone (whose list has
        # hundreds of names) unconfirmed that AWS prints the whole list too.
        raise invalid_parameter_value(
            f"Invalid parameter value: {value} for: {p.name} allowed values are: {allowed or ''}"
        )


def parameter_view(p: ParameterDefault, major: int, user: tuple[str, str] | None,
                   allowed: str | None) -> dict[str, Any]:
    value = user[0] if user else p.default_for(major)
    view: dict[str, Any] = {
        "ParameterName": p.name,
        "Description": p.description,
        "Source": "user" if user else p.source,
        "ApplyType": p.apply_type,
        "DataType": p.data_type,
        "IsModifiable": p.modifiable,
        "ApplyMethod": user[1] if user else "pending-reboot",
        "SupportedEngineModes": ["provisioned"],
    }
    if value is not None:
        view["ParameterValue"] = value
    if allowed:
        view["AllowedValues"] = allowed
    return view


class ParameterGroupOperations(EngineVersionOperations):
    # --- lookups and effective values ------------------------------------------------------

    def allowed_values(self, p: ParameterDefault, major: int) -> str | None:
        """``AllowedValues`` as DescribeDBClusterParameters reports them (and values are checked against)."""
        return self.runtime.allowed_values(p.name, major) or p.allowed

    def invalid_values(self, values: Mapping[str, tuple[str, str]], major: int) -> list[tuple[ParameterDefault, str]]:
        """Stored values of a group that the checks refuse (stored before they existed)."""
        out: list[tuple[ParameterDefault, str]] = []
        for name, (value, _) in sorted(values.items()):
            p = BY_NAME.get(name)
            if p is not None and p.modifiable and not value_ok(p, value, self.allowed_values(p, major)):
                out.append((p, value))
        return out

    def _group_values(self, account: str, name: str, missing_shape: str) -> tuple[str, str, dict[str, tuple[str, str]]]:
        """(name, family, user values) of a default or custom group; raises ``missing_shape``."""
        lowered = name.lower()
        if lowered.startswith("default."):
            family = lowered[len("default."):]
            if family in self.families():
                return lowered, family, {}
        else:
            group = self._get_group(account, lowered)
            if group is not None:
                return group.name, group.family, group.values
        raise rds_error(missing_shape, f"DBClusterParameterGroup not found: {name}")

    def effective_parameters(self, account: str, group_name: str, major: int) -> dict[str, str]:
        """Engine defaults of ``major`` merged with the group's values (what the server runs with)."""
        try:
            _, _, values = self._group_values(account, group_name, "DBParameterGroupNotFoundFault")
        except AwsError:  # no such group (any more): run with the engine defaults
            values = {}
        out: dict[str, str] = {}
        for p in DEFAULTS:
            value = values[p.name][0] if p.name in values else p.default_for(major)
            if _runnable(value):
                out[p.name] = str(value)
        return out

    def _refresh_parameters(self, cluster: Cluster) -> None:
        """Before (re)starting a server: it runs with the group's current values."""
        cluster.parameters = self.effective_parameters(cluster.account, cluster.parameter_group, cluster.major)
        cluster.pending_reboot = False

    def _retarget_parameters(self, cluster: Cluster) -> dict[str, str]:
        """After the cluster's group or the group's values changed: adopt dynamic differences now
        (returned, for ``apply_parameters``; "" means back to PostgreSQL's built-in default) and
        mark static differences pending-reboot."""
        new = self.effective_parameters(cluster.account, cluster.parameter_group, cluster.major)
        now: dict[str, str] = {}
        for name in sorted(set(new) | set(cluster.parameters)):
            if new.get(name) == cluster.parameters.get(name):
                continue
            p = BY_NAME.get(name)
            if p is not None and p.apply_type == "static":
                cluster.pending_reboot = True
                continue
            now[name] = new.get(name, "")
            if name in new:
                cluster.parameters[name] = new[name]
            else:
                cluster.parameters.pop(name, None)
        return now

    def _propagate(self, account: str, group_name: str) -> None:
        for cluster in self._clusters(account):
            if cluster.parameter_group != group_name:
                continue
            changed = self._retarget_parameters(cluster)
            self._save_cluster(cluster)
            if changed and cluster.status == "available":
                self._spawn_apply(cluster, changed)

    def _spawn_apply(self, cluster: Cluster, values: Mapping[str, str]) -> None:
        rid = cluster.resource_id
        frozen = dict(values)

        async def work() -> None:
            current = self._cluster_by_rid(rid)
            if current is None or current.status != "available":
                return  # applied with everything else when it starts again
            try:
                await self.runtime.apply_parameters(current, frozen)
            except RuntimeFailure as exc:
                log.warning("cluster %s: applying parameters %s failed: %s", current.identifier,
                            sorted(frozen), exc.reason)
                return
            for member in self._members(current):  # the writer's server is the one that took them up
                if member.is_writer:
                    events.instance_event(self.store, member, events.PARAMETERS_APPLIED)

        self._spawn(rid, "apply-parameters", work)

    # --- operations ------------------------------------------------------------------------

    def _pg_view(self, account: str, name: str, family: str, description: str) -> dict[str, Any]:
        return {
            "DBClusterParameterGroupName": name,
            "DBParameterGroupFamily": family,
            "Description": description,
            "DBClusterParameterGroupArn": f"arn:{partition_of(self.region)}:rds:{self.region}:{account}:cluster-pg:{name}",
        }

    def CreateDBClusterParameterGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = validate.identifier("DBClusterParameterGroupName", params.get("DBClusterParameterGroupName"), 255)
        family = str(params.get("DBParameterGroupFamily") or "")
        if family not in self.families():
            # Unconfirmed wording.
            raise invalid_parameter_value(f"The parameter DBParameterGroupFamily is not valid: {family}")
        if self._get_group(ctx.account, name) is not None:
            raise rds_error("DBParameterGroupAlreadyExistsFault", f"Parameter group {name} already exists")
        group = ClusterParameterGroup(
            name=name, account=ctx.account, region=self.region, family=family,
            description=str(params.get("Description") or ""), tags=validate.tags(params.get("Tags")),
        )
        self._save_group(group)
        ctx.record_resource("AWS::RDS::DBClusterParameterGroup", group.arn())
        return {"DBClusterParameterGroup": self._pg_view(ctx.account, name, family, group.description)}

    def DescribeDBClusterParameterGroups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        views: list[dict[str, Any]] = []
        if params.get("DBClusterParameterGroupName"):
            name, family, _ = self._group_values(
                ctx.account, str(params["DBClusterParameterGroupName"]), "DBParameterGroupNotFoundFault"
            )
            group = self._get_group(ctx.account, name)
            views.append(self._pg_view(ctx.account, name, family, group.description if group else _default_desc(family)))
        else:
            for family in self.families():
                views.append(self._pg_view(ctx.account, f"default.{family}", family, _default_desc(family)))
            for _, _, d in self.store.list("rds.cluster-pg", ctx.account):
                g = ClusterParameterGroup.from_doc(d)
                views.append(self._pg_view(ctx.account, g.name, g.family, g.description))
        items, marker = paginate(views, lambda v: str(v["DBClusterParameterGroupName"]), params)
        out: dict[str, Any] = {"DBClusterParameterGroups": items}
        if marker:
            out["Marker"] = marker
        return out

    def _custom_group(self, account: str, name: str) -> ClusterParameterGroup:
        lowered = name.lower()
        if lowered.startswith("default."):
            self._group_values(account, lowered, "DBParameterGroupNotFoundFault")
            # AWS's wording (observed: InvalidParameterValue "Cannot modify a default parameter group.").
            raise invalid_parameter_value("Cannot modify a default parameter group.")
        group = self._get_group(account, lowered)
        if group is None:
            raise rds_error("DBParameterGroupNotFoundFault", f"DBClusterParameterGroup not found: {name}")
        return group

    def _changes(self, group: ClusterParameterGroup, items: Any, *, reset: bool) -> list[tuple[ParameterDefault, str | None, str]]:
        if not items:
            raise invalid_parameter_value("The parameter Parameters must be provided and must not be blank.")
        if len(items) > _MAX_PARAMETERS_PER_CALL:
            # Unconfirmed wording; the documented limit is 20 parameters per call.
            raise invalid_parameter_value("You can modify up to 20 parameters in a single request.")
        out: list[tuple[ParameterDefault, str | None, str]] = []
        for item in items:
            name = str(item.get("ParameterName") or "")
            p = BY_NAME.get(name)
            if p is None:
                raise invalid_parameter_value(f"Could not find parameter with name: {name}")
            if not p.modifiable:
                # Unconfirmed wording (the code is AWS's: InvalidParameterValue).
                raise invalid_parameter_value(f"The parameter {name} cannot be modified.")
            method = str(item.get("ApplyMethod") or ("pending-reboot" if p.apply_type == "static" else "immediate"))
            if method not in _METHODS:
                raise invalid_parameter_value(f"Invalid apply method: {method}")
            if method == "immediate" and p.apply_type == "static":
                raise invalid_parameter_combination("cannot use immediate apply method for static parameter")
            value: str | None = None
            if not reset:
                if item.get("ParameterValue") is None:
                    raise invalid_parameter_value(f"The parameter value for {name} must be provided.")
                value = str(item["ParameterValue"])
                check_value(p, value, self.allowed_values(p, family_major(group.family) or 0))
                refusal = self.runtime.parameter_refusal(p.name, value, family_major(group.family) or 0)
                if refusal is not None:
                    raise invalid_parameter_value(refusal)
            out.append((p, value, method))
        return out

    def ModifyDBClusterParameterGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = self._custom_group(ctx.account, str(params.get("DBClusterParameterGroupName") or ""))
        changes = self._changes(group, params.get("Parameters"), reset=False)
        for p, value, method in changes:
            assert value is not None
            group.values[p.name] = (value, method)
        self._save_group(group)
        for p, value, method in changes:
            # Cluster parameter groups have no event source type of their own (events.CATEGORIES).
            events.emit(self.store, "db-parameter-group", group.name, group.arn(), events.PARAMETER_UPDATED,
                        name=p.name, value=str(value), method=method)
        self._propagate(ctx.account, group.name)
        ctx.record_resource("AWS::RDS::DBClusterParameterGroup", group.arn())
        return {"DBClusterParameterGroupName": group.name}

    def ResetDBClusterParameterGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = self._custom_group(ctx.account, str(params.get("DBClusterParameterGroupName") or ""))
        if params.get("ResetAllParameters"):
            if params.get("Parameters"):
                # Unconfirmed wording.
                raise invalid_parameter_combination("Cannot specify Parameters when ResetAllParameters is true.")
            group.values.clear()
        else:
            for p, _, _ in self._changes(group, params.get("Parameters"), reset=True):
                group.values.pop(p.name, None)
        self._save_group(group)
        self._propagate(ctx.account, group.name)
        ctx.record_resource("AWS::RDS::DBClusterParameterGroup", group.arn())
        return {"DBClusterParameterGroupName": group.name}

    def DeleteDBClusterParameterGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params.get("DBClusterParameterGroupName") or "")
        lowered = name.lower()
        if lowered.startswith("default."):
            raise rds_error("InvalidDBParameterGroupStateFault",
                            f"Default DBClusterParameterGroup cannot be deleted: {lowered}")
        group = self._get_group(ctx.account, lowered)
        if group is None:
            raise rds_error("DBParameterGroupNotFoundFault", f"DBClusterParameterGroup not found: {name}")
        users = [c.identifier for c in self._clusters(ctx.account) if c.parameter_group == group.name]
        if users:
            # Unconfirmed wording.
            raise rds_error("InvalidDBParameterGroupStateFault",
                            f"One or more DB clusters are using parameter group {group.name}: {', '.join(users)}")
        self.store.delete("rds.cluster-pg", ctx.account, group.name)
        ctx.record_resource("AWS::RDS::DBClusterParameterGroup", group.arn())
        return {}

    def DescribeDBClusterParameters(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        _, family, values = self._group_values(
            ctx.account, str(params.get("DBClusterParameterGroupName") or ""), "DBParameterGroupNotFoundFault"
        )
        major = family_major(family) or 0
        views = [parameter_view(p, major, values.get(p.name), self.allowed_values(p, major)) for p in DEFAULTS]
        source = params.get("Source")
        if source:
            if source not in ("user", "engine-default", "system"):
                # Unconfirmed wording.
                raise invalid_parameter_value(f"Invalid source: {source}. Valid sources are user, system, engine-default.")
            views = [v for v in views if v["Source"] == source]
        items, marker = paginate(views, lambda v: str(v["ParameterName"]), params)
        out: dict[str, Any] = {"Parameters": items}
        if marker:
            out["Marker"] = marker
        return out

    def DescribeEngineDefaultClusterParameters(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        family = str(params.get("DBParameterGroupFamily") or "")
        major = family_major(family)
        views = ([parameter_view(p, major, None, self.allowed_values(p, major)) for p in DEFAULTS]
                 if major is not None else [])
        items, marker = paginate(views, lambda v: str(v["ParameterName"]), params)
        defaults: dict[str, Any] = {"DBParameterGroupFamily": family, "Parameters": items}
        if marker:
            defaults["Marker"] = marker
        return {"EngineDefaults": defaults}


def _default_desc(family: str) -> str:
    return f"Default cluster parameter group for {family}"

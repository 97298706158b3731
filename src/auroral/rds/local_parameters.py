"""Cluster parameters in :class:`~auroral.rds.local_runtime.LocalRuntime`: which of them are PostgreSQL
settings, the values auroral offers (``allowed_values``) or refuses (``parameter_refusal``), and writing
them to a server and (re)starting it with them, where PostgreSQL judges the values: a refusal, or a server
that exits at start because of them, is ``IncompatibleParameters`` (the server stays stopped, its data
intact).

Separate because it is the one place that turns a parameter group into server settings (the gateway's
parameters, ``rds.force_ssl`` and ``max_connections``, are read by the endpoints).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from auroral.engine import EngineError, ParameterError, PgServer, ServerStartError
from auroral.engine.cluster import RESTRICT_PASSWORD_COMMANDS
from auroral.engine.conf import DEFAULT_MAX_CONNECTIONS
from auroral.engine.extensions import ALLOWED_SETTING, offered
from auroral.engine.postmaster import config_rejection
from auroral.engine.timezones import timezone_names
from auroral.rds.local_replicas import ReplicaSet, first_line
from auroral.rds.model import Cluster
from auroral.rds.runtime import IncompatibleParameters, RuntimeFailure

log = logging.getLogger(__name__)

# Cluster parameters that are PostgreSQL settings (AWS's name == PostgreSQL's). Others (rds.*,
# ssl*) belong to the gateway or are shown only.
PG_SETTINGS = frozenset({
    "client_encoding", "idle_in_transaction_session_timeout", "log_connections", "log_disconnections",
    "log_destination", "log_line_prefix", "log_min_duration_statement", "log_min_messages", "log_rotation_age",
    "log_rotation_size", "log_statement", "max_connections", "password_encryption",
    "statement_timeout", "timezone",
    # defined by auroral's server module auroral_rds (engine/extension.py); 0/1 are valid booleans
    "rds.restrict_password_commands",
    # the extensions users may create (auroral_rds; engine/extensions.py) and the libraries preloaded
    # (with auroral_rds, which SHOW does not show)
    "rds.allowed_extensions", "shared_preload_libraries",
})

_WORD = re.compile(r"[^a-z0-9_.]+")


def pg_settings(values: Mapping[str, str]) -> dict[str, str | None]:
    return {k: (v if v != "" else None) for k, v in values.items() if k in PG_SETTINGS}


def max_connections_of(values: Mapping[str, str]) -> int:
    """An instance's ``max_connections``, which its endpoint enforces as the server does: the number
    the cluster's parameters give the server, else the server's default. AWS's default group has the
    formula ``LEAST({DBInstanceClassMemory/9531392},5000)``, which auroral does not evaluate (the
    server runs with the engine's default, and ``SHOW max_connections`` says so)."""
    value = values.get("max_connections", "")
    return int(value) if value.isascii() and value.isdigit() else DEFAULT_MAX_CONNECTIONS


def all_pg_settings(values: Mapping[str, str]) -> dict[str, str | None]:
    """Every PostgreSQL setting among the cluster parameters; None for those ``values`` leaves out."""
    return {name: (values.get(name) or None) for name in sorted(PG_SETTINGS)}


class ClusterParameters(ReplicaSet):
    """Parameter values for ``LocalRuntime`` (a mixin: ``LocalRuntime.__init__`` sets these)."""

    _parameters: dict[str, dict[str, str]]
    _allowed: dict[tuple[str, int], str | None]

    def allowed_values(self, name: str, major: int) -> str | None:
        if name == ALLOWED_SETTING:
            return ",".join(["*", *offered(major)])
        if name != "timezone":
            return None
        key = (name, major)
        if key not in self._allowed:
            pool = self._engine.pool()
            # the major's own zone list; one not fetched yet reads another major's (the zone names
            # come from the tz database, not from the major; unconfirmed: builds of other dates may differ)
            inst = next((i for i in pool if i.major == major), pool[0] if pool else None)
            if inst is None:
                return None
            try:
                names = timezone_names(inst)
            except (EngineError, ValueError):
                names = frozenset()
            self._allowed[key] = ",".join(sorted(names)) or None
        return self._allowed[key]

    def parameter_refusal(self, name: str, value: str, major: int) -> str | None:
        if name != RESTRICT_PASSWORD_COMMANDS or value != "1":
            return None
        try:
            inst = self._engine.installation(str(major))
        except (EngineError, OSError):
            return None  # no server for this major can be created anyway (reported there)
        if inst.preload:
            return None
        return (f"{name} cannot be set to 1 on this auroral host: the auroral_rds PostgreSQL module that "
                f"enforces it could not be built for PostgreSQL {inst.major} (it needs gcc and the "
                "PostgreSQL server headers; see the auroral log)")

    async def apply_parameters(self, cluster: Cluster, values: Mapping[str, str]) -> None:
        self._parameters.setdefault(cluster.resource_id, {}).update(values)
        changes = pg_settings(values)
        if not changes:
            return
        try:
            for server in self._servers(cluster):
                await server.set_parameters(changes)
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc

    async def _run_with_parameters(self, server: PgServer, cluster: Cluster, *, restart: bool,
                                   fresh: bool = False) -> None:
        """Write every PostgreSQL setting of ``cluster.parameters`` and (re)start the server with them
        (``fresh``: a new server, with nothing to reset; resetting a static setting would restart it).
        A refusal that names one of them is ``IncompatibleParameters``; one that names something else
        (a setting of the data directory's own files) is not the parameter group's to fix."""
        await self._tell_topology(cluster, server)
        settings = all_pg_settings(cluster.parameters)
        if fresh:
            settings = {name: value for name, value in settings.items() if value is not None}
        ours = {name.lower() for name, value in settings.items() if value is not None}

        def names_ours(text: str) -> bool:
            return bool(ours & {word.strip(".") for word in _WORD.split(text.lower())})

        try:
            change = await server.set_parameters(settings)
            running = server.status() == "running"
            if running and (restart or change.pending_reboot):
                await server.restart()
            elif not running:
                await server.start()
        except ParameterError as exc:
            if not names_ours(str(exc)):
                raise RuntimeFailure(str(exc)) from exc
            # PostgreSQL's own check refused a value before anything changed: the server would not
            # come back with it, so it does not keep running on the old values either
            try:
                await server.stop()
            except EngineError as stop_exc:
                log.warning("cluster %s: stopping failed: %s", cluster.identifier, stop_exc)
            raise IncompatibleParameters(first_line(exc)) from exc
        except ServerStartError as exc:
            reason = config_rejection(exc.log_tail)
            if reason is None or not names_ours(reason):
                raise RuntimeFailure(str(exc)) from exc
            raise IncompatibleParameters(reason) from exc
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc

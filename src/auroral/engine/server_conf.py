"""What a server is configured with: the parameter-group values (``auroral.params.json`` and the parameter
file, checked by PostgreSQL itself before they are kept) and ``auroral.local.conf`` (the engine's own
settings: the Aurora topology, replication, logging, WAL archiving, preloaded libraries), rewritten before
every start and whenever one of them changes.

Separate from the lifecycle because it is the one place that decides what goes into the configuration files
(no user text but checked parameter values); starting, replication, backups and upgrades only ask for it to
be written (``_write_local_conf``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auroral.engine import aurora, conf, extensions, logfiles, postmaster
from auroral.engine.errors import ParameterError
from auroral.engine.osuser import check_traversable
from auroral.engine.server_base import ServerBase

log = logging.getLogger(__name__)
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
# set only by the engine: a parameter group may not move the socket or open a TCP listener
_RESERVED_PARAMS = frozenset(
    {"listen_addresses", "port", "unix_socket_directories", "unix_socket_permissions", "unix_socket_group",
     "cluster_name", "hba_file", "ident_file", "data_directory", "config_file", "external_pid_file",
     "ssl", "archive_command", "restore_command", "log_directory",
     # the log files are auroral's to name, keep and read (logfiles.py)
     "logging_collector", "log_filename", "log_file_mode", "log_truncate_on_rotation",
     "syslog_facility", "syslog_ident", "event_source"}
)
PARAMS_JSON = "auroral.params.json"
# "0": no continuous WAL archiving (no point-in-time restore); for measuring what archiving costs
ENV_WAL_ARCHIVING = "AURORAL_WAL_ARCHIVING"
ARCHIVE_TIMEOUT = "60"  # seconds: an idle-ish cluster's WAL is archived at least this often
# defined by the auroral_rds module (extension.py); turning it on without the module would do nothing
RESTRICT_PASSWORD_COMMANDS = "rds.restrict_password_commands"
_BOOL_ON = frozenset({"1", "on", "true", "yes", "t", "y"})
_BOOL_OFF = frozenset({"0", "off", "false", "no", "f", "n"})


@dataclass(frozen=True)
class ParameterChange:
    """Outcome of :meth:`PgServer.set_parameters`: names applied now, names waiting for a reboot."""

    applied: list[str] = field(default_factory=list)
    pending_reboot: list[str] = field(default_factory=list)


class ServerConfig(ServerBase):
    """Parameters, the topology and ``auroral.local.conf`` of a :class:`~auroral.engine.cluster.PgServer`."""

    # ---- parameters ----------------------------------------------------------------------------

    def parameters(self) -> dict[str, str]:
        """The parameter-group values currently written for this server."""
        try:
            data = json.loads(conf.read(self.pgdata / PARAMS_JSON))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # the server's OS user can replace the file; the control plane rewrites every value
            log.warning("cluster %s: ignoring %s (%s)", self.cluster_id, PARAMS_JSON, exc)
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): str(v) for k, v in data.items()}

    async def set_parameters(self, changes: Mapping[str, str | None]) -> ParameterChange:
        """Merge ``changes`` (``None`` resets a parameter to the engine default) into the server's
        parameter file. PostgreSQL itself validates names and values first (``postgres -C``; on error
        nothing changes and :class:`ParameterError` carries its messages). A running server reloads;
        parameters whose ``pg_settings.context`` is ``postmaster`` are reported as pending a reboot."""
        for name, value in changes.items():
            if not _PARAM_NAME.match(name) or name.lower() in _RESERVED_PARAMS:
                raise ParameterError(f"parameter {name!r} cannot be modified")
            if name.lower() == RESTRICT_PASSWORD_COMMANDS and value is not None:
                self._check_restrict_password(value)
            if name.lower() == extensions.PRELOAD_SETTING:
                try:
                    extensions.preload_libraries(value, self.installation.libdir)
                except ValueError as exc:
                    raise ParameterError(str(exc)) from None
            if name.lower() == extensions.ALLOWED_SETTING and value is not None \
                    and not extensions.allowed_extensions_ok(value):
                raise ParameterError(f'invalid value for parameter "{extensions.ALLOWED_SETTING}": "{value}"')
        async with self._lock:
            old = self.parameters()
            new = dict(old)
            for name, value in changes.items():
                if value is None:
                    new.pop(name, None)
                else:
                    new[name] = value
            self._write_parameters(new)
            try:
                self._write_local_conf()  # ours, read by the check: replaced if the server's user swapped it
                check_traversable(self.cluster_dir, self.runas)
                error = await postmaster.check_config(self.installation, self.pgdata, self.runas)
            except BaseException:
                self._write_parameters(old)
                raise
            if error is not None:
                self._write_parameters(old)
                raise ParameterError(error)
            if self._status != "running":
                return ParameterChange(pending_reboot=sorted(changes))
            await self.run_admin_sql("SELECT pg_reload_conf()")
            rows = await self.run_admin_sql(
                "SELECT name, context, setting, vartype FROM pg_settings WHERE name = ANY(%s)",
                ([n.lower() for n in changes],),
            )
        # a static parameter waits for a restart unless the server already runs with that value
        running = {name: (setting, vartype) for name, context, setting, vartype in rows if context == "postmaster"}
        pending = sorted(n for n in changes if n.lower() in running
                         and not _same_setting(changes[n], *running[n.lower()]))
        return ParameterChange(applied=sorted(n for n in changes if n not in pending), pending_reboot=pending)

    def _check_restrict_password(self, value: str) -> None:
        if value.strip().lower() not in _BOOL_ON | _BOOL_OFF:
            raise ParameterError(f'parameter "{RESTRICT_PASSWORD_COMMANDS}" requires a Boolean value')
        if value.strip().lower() in _BOOL_ON and not self.installation.preload:
            raise ParameterError(
                f"{RESTRICT_PASSWORD_COMMANDS} cannot be turned on: the auroral_rds server module could not "
                f"be built for PostgreSQL {self.major} (it needs gcc and the server headers)")

    def _write_local_conf(self) -> None:
        shipped = aurora.extension_names(self.installation.sharedir)
        extra = aurora.settings(self._topology, extensions.supported(self.major, shipped))
        extra.update(self._replication_settings())
        extra.update(self._logging_settings())
        extra.update(self._archive_settings())
        # the parameter group's libraries (checked when set; one that went missing is left out) after
        # the engine's own module, which SHOW does not show (auroral_rds: auroral.preload_libraries)
        try:
            libraries = extensions.preload_libraries(self.parameters().get(extensions.PRELOAD_SETTING),
                                                     self.installation.libdir)
        except ValueError as exc:
            log.warning("cluster %s: %s", self.cluster_id, exc)
            libraries = extensions.preload_libraries(None, self.installation.libdir)
        if self.installation.preload:
            extra[extensions.USER_PRELOAD_SETTING] = ",".join(libraries)
        preload = [*self.installation.preload, *(Path(name) for name in libraries)]
        local = conf.local_conf(self.socket_dir, self.server_id, preload, extra)
        conf.write(self.pgdata / conf.LOCAL_FILE, local, self.runas)

    def _logging_settings(self) -> dict[str, str]:
        """PostgreSQL's log files as Aurora keeps them (``logfiles.py``): the collector on (static: from the
        next start), in the server's own log directory, named as Aurora names them, readable by their
        owner only. Rotation (``log_rotation_age``/``size``), the format (``log_destination``: stderr, csvlog)
        and what is logged come from the parameters."""
        return {
            "logging_collector": "on",
            "log_directory": str(self.log_dir),
            "log_filename": logfiles.FILENAME_PATTERN,
            "log_file_mode": "0600",
            "log_truncate_on_rotation": "off",
        }

    def _archive_settings(self) -> dict[str, str]:
        """Every server archives its finished WAL segments (a primary does; a standby from its promotion on)
        into its spool directory; auroral's paths only, no user text."""
        if os.environ.get(ENV_WAL_ARCHIVING) == "0":  # benchmarks: the cost of archiving, measured
            return {"archive_mode": "off"}
        spool = str(self.wal_spool)
        settings = {
            "archive_mode": "on",
            "archive_command": f'cp "%p" "{spool}/%f.part" && mv "{spool}/%f.part" "{spool}/%f"',
            "archive_timeout": ARCHIVE_TIMEOUT,
        }
        if self.recovery is not None:
            settings["restore_command"] = f'cp "{self.recovery.restore_dir}/%f" "%p"'
            if self.recovery.target_time is not None:
                settings["recovery_target_time"] = self.recovery.target_time
                settings["recovery_target_action"] = "promote"
        return settings

    def _replication_settings(self) -> dict[str, str]:
        """Every server may become a primary or a standby: the same settings on both, only the
        standby's source differs (``primary_conninfo`` and ``primary_slot_name`` take a reload)."""
        settings = {
            "wal_level": "replica",
            "hot_standby": "on",
            # queries on a reader are not cancelled because the writer vacuumed rows they still see
            "hot_standby_feedback": "on",
            # pg_rewind of a former primary needs hint-bit changes in the WAL (static: from the next start)
            "wal_log_hints": "on",
            "recovery_target_timeline": "latest",
        }
        if self.standby is None:
            settings.update(primary_conninfo="", primary_slot_name="")
        else:
            settings.update(
                primary_conninfo=(f"host={self.standby.primary_socket_dir} port={conf.PORT} "
                                  f"user={conf.REPLICATION_ROLE} application_name={self.server_id}"),
                primary_slot_name=self.standby.slot,
            )
        return settings
    # ---- Aurora's view of the instance (aurora_db_instance_identifier(), aurora_replica_status()) ----

    @property
    def topology(self) -> aurora.Topology:
        return self._topology

    async def set_topology(self, topology: aurora.Topology) -> None:
        """What the server says it is (``aurora.py``); a running server takes it with a reload, and
        this returns once new sessions see it."""
        async with self._lock:
            if topology == self._topology:
                return
            self._topology = topology
            if self._status == "not-initialized":
                return
            self._write_local_conf()
            if self._status != "running" or self.pid is None:
                return  # the next start reads it
            expected = aurora.settings(topology, ())[aurora.REPLICAS_SETTING]
            identifier = topology.instance_identifier
            await self.run_admin_sql("SELECT pg_catalog.pg_reload_conf()")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                rows = await self.run_admin_sql(
                    "SELECT pg_catalog.current_setting(%s, true), pg_catalog.current_setting(%s, true)",
                    (aurora.REPLICAS_SETTING, aurora.IDENTIFIER_SETTING))
                if rows and rows[0] == (expected, identifier):
                    return
                await asyncio.sleep(0.02)
            log.warning("cluster %s: the server did not take its new topology within 10 s", self.cluster_id)

    def _write_parameters(self, values: Mapping[str, str]) -> None:
        conf.write(self.pgdata / PARAMS_JSON, json.dumps(dict(values), sort_keys=True), self.runas)
        # shared_preload_libraries goes to auroral.local.conf with the engine's own module (_write_local_conf)
        settings = {name: value for name, value in values.items() if name.lower() != extensions.PRELOAD_SETTING}
        conf.write(self.pgdata / conf.PARAMS_FILE, conf.render(settings, "parameter group values"), self.runas)


def _same_setting(value: str | None, setting: Any, vartype: Any) -> bool:
    """Whether ``value`` (from a parameter group) is what ``pg_settings.setting`` shows; when unsure, no."""
    if value is None or setting is None:
        return False
    if vartype == "bool":
        lowered = value.strip().lower()
        return (lowered in _BOOL_ON and setting == "on") or (lowered in _BOOL_OFF and setting == "off")
    return value.strip() == str(setting)

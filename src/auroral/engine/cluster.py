"""One PostgreSQL server (an Aurora cluster's writer, or a hot standby streaming from it: a reader) with a
clear status vocabulary.

    not-initialized ──create()──▶ starting ──▶ running ──stop()──▶ stopping ──▶ stopped
                                     ▲            │                                │
                                     │     postmaster exits unexpectedly           │
                                     │            ▼                                │
                                     └──────── failed ◀── restart attempts fail    │
                                     └──────────────────────start()────────────────┘

Transitions happen only on real events (the postmaster became ready, exited, a stop was requested)
and are reported through ``on_status_change(server_id, status, reason)``, a plain callable that must
not block. ``status()`` only reads.

Layout under ``<cluster_dir>``: ``pgdata/`` (the data directory), ``log/postmaster.log`` (server stderr
until the logging collector runs), ``pglog/`` (PostgreSQL's rotated log files, the server's user's,
``0700``: :mod:`logfiles`), ``run/`` (the private socket directory, unless its path is too long for a Unix socket; see
:func:`postmaster.socket_dir_for`). ``pgdata`` and ``run`` belong to the cluster's OS user, mode 0700; as
root the cluster directory itself and ``log/`` are root's (``0711``, ``0700``), so the names root uses
cannot be swapped by that user, and every file root writes or reads inside ``pgdata`` goes through
:mod:`fsafe`. The gateway runs as root (or as that same user) and reaches
``<socket_dir>/.s.PGSQL.5432``.

Standbys (``PgServer.standby`` set): a server made by :meth:`PgServer.create_replica` with
``pg_basebackup`` from the cluster's primary, or a former primary told to follow a new one. It runs with
``standby.signal`` and streams from the primary's private socket as ``rdsrepladmin`` by peer (the
cluster's servers share one OS user), through a physical replication slot on the primary named after
it; :meth:`PgServer.promote` makes it the primary. A server is one of the cluster's servers, named by
``server_id`` (the first one, the "cluster volume", has the cluster's id); status events name it.

Supervision: while the server should run, a task awaits the postmaster. If it exits without a stop
having been requested, the status becomes ``failed`` with the exit code and the log tail, and the
server is restarted with exponential backoff, a bounded number of times. ``stop()`` never triggers a
restart. ``create()`` leaves the server running.

The class is assembled from layers, each a module of its own that sees only what is below it:
``server_base`` (identity, status, SQL as ``rdsadmin``, IAM users) ← ``server_conf`` (parameters,
topology, ``auroral.local.conf``) ← ``lifecycle`` (create, start, stop, supervision) ← ``replication``
(standbys, slots, promotion, ``pg_rewind``) and ``backup`` (base backups, restores, point-in-time
recovery); ``upgrade`` (``pg_upgrade``, and its settling after a crash) builds on ``server_conf``. This
module puts them together and is where the rest of auroral imports them from.
"""

from __future__ import annotations

from auroral.engine.backup import WAL_RESTORE, Backups
from auroral.engine.lifecycle import RECOVERY_SIGNAL
from auroral.engine.replication import Replication, WalPosition, lsn_value
from auroral.engine.server_base import (
    CLONING_MARKER,
    WAL_SPOOL,
    Query,
    Recovery,
    RestartPolicy,
    Standby,
    Status,
    StatusCallback,
)
from auroral.engine.server_conf import (
    ARCHIVE_TIMEOUT,
    ENV_WAL_ARCHIVING,
    PARAMS_JSON,
    RESTRICT_PASSWORD_COMMANDS,
    ParameterChange,
)
from auroral.engine.upgrade import (
    OLD_DIR,
    UPGRADE_DIR,
    UPGRADE_MARKER,
    MajorUpgrade,
    settle_upgrade,
    stop_upgrade_leftovers,
)

__all__ = [
    "ARCHIVE_TIMEOUT",
    "CLONING_MARKER",
    "ENV_WAL_ARCHIVING",
    "OLD_DIR",
    "PARAMS_JSON",
    "RECOVERY_SIGNAL",
    "RESTRICT_PASSWORD_COMMANDS",
    "UPGRADE_DIR",
    "UPGRADE_MARKER",
    "WAL_RESTORE",
    "WAL_SPOOL",
    "ParameterChange",
    "PgServer",
    "Query",
    "Recovery",
    "RestartPolicy",
    "Standby",
    "Status",
    "StatusCallback",
    "WalPosition",
    "lsn_value",
    "settle_upgrade",
    "stop_upgrade_leftovers",
]


class PgServer(Replication, Backups, MajorUpgrade):
    """One PostgreSQL server: every layer above, one object (see the module docstring)."""

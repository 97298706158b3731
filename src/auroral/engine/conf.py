"""Configuration files inside a data directory, all written by the engine.

``postgresql.conf`` (initdb's, unchanged) ends with three includes, in this order:

- ``auroral.base.conf`` — our defaults for a small, fast, durable server (written into the template);
- ``auroral.params.conf`` — the cluster's parameter group values (:meth:`PgServer.set_parameters`);
- ``auroral.local.conf`` — what must never be overridden by parameters: the private socket, no TCP
  listener, the cluster name shown in ``ps``, ``shared_preload_libraries`` (the engine's own modules,
  by absolute path: ``auroral_rds``, see ``extension``). Rewritten before every start.

``pg_hba.conf`` is rewritten before every start too, so what is on disk is always ours: only Unix-socket
connections exist, every one authenticated with SCRAM-SHA-256 (clients reach the socket through the
gateway, which relays their own startup packets and passwords), except the users listed in
``auroral.iam_users`` (IAM database authentication): those the gateway has already authenticated with an
IAM token, so PostgreSQL trusts the gateway's OS user for them (``peer`` with the ``auroral_gateway``
map in ``pg_ident.conf``). The list holds exact names (not a ``+role``: role membership is recursive,
and the creator of a role is a member of it) and the gateway refuses any upstream ``AuthenticationOk``
it did not verify itself, so a listed user can never log in without a token. (A ``+rds_iam`` line would
let PostgreSQL decide membership without the file, but pg_hba's ``+`` counts every membership, whatever
its INHERIT: every ``rds_superuser`` member holds ``rds_iam`` WITH ADMIN OPTION, INHERIT FALSE, and in
PostgreSQL 16+ the creator of an IAM role is a member of it, so the master user would be trusted by peer
and the gateway's guard would then refuse its password logins.)

A role name is user text, so it reaches the file only as one quoted token (:func:`hba_token`:
no keyword, ``+group``, ``@file``, comma or comment meaning; ``""`` is a literal ``"``), and only when
it can be one (:func:`hba_name_ok`): pg_hba reads its files line by line, so no newline or carriage
return; PostgreSQL 16+ takes a token starting with ``/`` for a regular expression *even when quoted*
(``regcomp_auth_token`` does not look at the quotes; an invalid one makes the file fail to load), so no
leading ``/``; and at most 63 bytes (PostgreSQL's names). In ``bootstrap`` mode,
used only while the socket directory is private to the engine during provisioning, ``rdsadmin`` is
trusted and everyone else rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from auroral.engine import fsafe
from auroral.engine.osuser import RunAs

PORT = 5432  # each server has its own socket directory, so the port number only names the socket file
SOCKET_FILE = f".s.PGSQL.{PORT}"
BASE_FILE = "auroral.base.conf"
PARAMS_FILE = "auroral.params.conf"
LOCAL_FILE = "auroral.local.conf"
IAM_USERS_FILE = "auroral.iam_users"
IDENT_MAP = "auroral_gateway"
# Physical replication between the servers of one cluster: the standby's walreceiver (and pg_basebackup)
# run as the cluster's OS user and log in as this role by peer over the primary's private socket. The
# role has no password (so nothing to keep on disk) and only the replication pseudo-database admits it.
REPLICATION_ROLE = "rdsrepladmin"
REPLICATION_MAP = "auroral_replication"
STANDBY_SIGNAL = "standby.signal"
ADMIN_PLACEHOLDER = "rdsadmin"
INCLUDES = (
    "\n# --- auroral: do not edit below; the engine owns these files ---\n"
    f"include '{BASE_FILE}'\n"
    f"include_if_exists '{PARAMS_FILE}'\n"
    f"include '{LOCAL_FILE}'\n"
)

DEFAULT_MAX_CONNECTIONS = 100  # unless the cluster's parameter group sets a number

# Small and fast to start, durable: fsync and full_page_writes stay on.
_BASE: dict[str, str] = {
    "max_connections": str(DEFAULT_MAX_CONNECTIONS),
    "superuser_reserved_connections": "3",
    "shared_buffers": "16MB",
    "dynamic_shared_memory_type": "posix",
    "huge_pages": "off",
    "max_worker_processes": "4",
    "max_parallel_workers": "2",
    "max_parallel_workers_per_gather": "1",
    "max_wal_size": "256MB",
    "min_wal_size": "32MB",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "password_encryption": "scram-sha-256",
    "logging_collector": "off",
    "log_destination": "stderr",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "log_timezone": "UTC",
    "timezone": "UTC",
    "jit": "off",
    "shared_preload_libraries": "",
}
_BASE_18: dict[str, str] = {
    "io_method": "sync",  # PostgreSQL 18 defaults to 3 I/O worker processes
}


def base_conf(major: int) -> str:
    settings = dict(_BASE)
    if major >= 18:
        settings.update(_BASE_18)
    return render(settings, "auroral defaults (written once into the template)")


def local_conf(socket_dir: Path, cluster_name: str, preload: Iterable[Path] = (),
               extra: Mapping[str, str] | None = None) -> str:
    """``preload``: server modules loaded at start: the engine's by absolute path (``auroral_rds``), then
    those of the cluster's parameters by name (``pg_stat_statements``); ``extra``:
    settings only the engine gives (Aurora's ``rds.extensions``, the instance's identity: ``aurora``)."""
    return render(
        {
            **(extra or {}),
            "listen_addresses": "",
            "port": str(PORT),
            "unix_socket_directories": str(socket_dir),
            "unix_socket_permissions": "0700",
            "cluster_name": cluster_name,
            "shared_preload_libraries": ",".join('"' + str(path) + '"' for path in preload),
        },
        "mandatory local settings (rewritten before every start)",
    )


def hba_conf(mode: str) -> str:
    header = "# auroral: rewritten before every start; only the private Unix socket exists\n"
    if mode == "bootstrap":
        return header + "local all rdsadmin trust\nlocal all all reject\n"
    # only the cluster's own OS user reaches the replication pseudo-database ("all" does not cover it),
    # as the password-less replication role
    return header + (
        f"local replication {REPLICATION_ROLE} peer map={REPLICATION_MAP}\n"
        # pg_rewind of a former primary reads the new one's files through functions, in "postgres"
        f"local postgres {REPLICATION_ROLE} peer map={REPLICATION_MAP}\n"
        "local all rdsadmin scram-sha-256\n"
        f"local all @{IAM_USERS_FILE} peer map={IDENT_MAP}\n"
        "local all all scram-sha-256\n"
    )


def ident_conf(gateway_os_user: str, server_os_user: str | None = None) -> str:
    """The gateway's OS user may log in as any *listed* user (PostgreSQL 16+: ``all``); the cluster's
    OS user (``server_os_user``: every server of a cluster runs as it) as the replication role."""
    text = f"# auroral: rewritten before every start\n{IDENT_MAP} {hba_token(gateway_os_user)} all\n"
    if server_os_user is not None:
        text += f"{REPLICATION_MAP} {hba_token(server_os_user)} {REPLICATION_ROLE}\n"
    return text


def iam_users_conf(names: Iterable[str]) -> str:
    """The file of users trusted by peer; ValueError for a name that cannot be one literal token."""
    # An empty @file would leave the hba line without a user field (PostgreSQL then reads the method as
    # the user). "rdsadmin" is a placeholder that never matches there: the line before takes rdsadmin.
    names = set(names)
    if not all(hba_name_ok(n) for n in names):
        raise ValueError("a role name that cannot be a pg_hba.conf token cannot be trusted by peer")
    lines = [hba_token(n) for n in sorted(names | {ADMIN_PLACEHOLDER})]
    return "# auroral: users the gateway logs in after IAM authentication (exact names)\n" + "".join(
        line + "\n" for line in lines)


def parse_iam_users(text: str) -> set[str]:
    """The names of :func:`iam_users_conf`'s file; a line it would not have written is no name."""
    names = set()
    for line in text.split("\n"):
        if line.startswith('"') and line.endswith('"') and len(line) >= 2:
            name = line[1:-1].replace('""', '"')
            if hba_name_ok(name) and hba_token(name) == line:
                names.add(name)
    return names - {ADMIN_PLACEHOLDER}


MAX_NAME_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1
_LINE_BREAKS = frozenset("\n\r\0")


def hba_name_ok(name: str) -> bool:
    """Whether ``hba_token(name)`` is one literal token on one line that names exactly this role: not
    empty, no line break (pg_hba reads line by line; NUL ends a C string), no leading ``/`` (a regular
    expression in PostgreSQL 16+, quoted or not), at most 63 bytes (the server compares the name it
    truncated)."""
    return (0 < len(name.encode()) <= MAX_NAME_BYTES and _LINE_BREAKS.isdisjoint(name)
            and not name.startswith("/"))


def hba_token(name: str) -> str:
    """A quoted (hence literal: no keyword, ``+group`` or regex meaning) pg_hba/pg_ident token."""
    return '"' + name.replace('"', '""') + '"'


def render(settings: Mapping[str, str], title: str) -> str:
    lines = [f"# {title}"]
    lines += [f"{name} = {quote(value)}" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def write(path: Path, content: str, runas: RunAs, mode: int = 0o600) -> None:
    """Atomically replace ``path`` (readable by the server's user only). The directory belongs to that
    user, so the write goes through :mod:`fsafe` (no symlink or planted file is ever followed)."""
    uid, gid = runas.ownership()
    fsafe.write_file(path, content.encode("utf-8"), mode=mode, uid=uid, gid=gid)


def read(path: Path) -> str:
    """A file the server's user may have replaced: a regular file only (no symlink, FIFO, hard link)."""
    return fsafe.read_text(path)

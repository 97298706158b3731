"""Configuration files inside a data directory, all written by the engine.

``postgresql.conf`` (initdb's, unchanged) ends with three includes, in this order:

- ``auroral.base.conf`` — our defaults for a small, fast, durable server (written into the template);
- ``auroral.params.conf`` — the cluster's parameter group values (:meth:`PgServer.set_parameters`);
- ``auroral.local.conf`` — what must never be overridden by parameters: the private socket, no TCP
  listener, the cluster name shown in ``ps``. Rewritten before every start.

``pg_hba.conf`` is rewritten before every start too, so what is on disk is always ours: only Unix-socket
connections exist, every one authenticated with SCRAM-SHA-256 (clients reach the socket through the
gateway, which relays their own startup packets and passwords). In ``bootstrap`` mode, used only while
the socket directory is private to the engine during provisioning, ``rdsadmin`` is trusted and everyone
else rejected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from auroral.engine.osuser import RunAs

PORT = 5432  # each server has its own socket directory, so the port number only names the socket file
SOCKET_FILE = f".s.PGSQL.{PORT}"
BASE_FILE = "auroral.base.conf"
PARAMS_FILE = "auroral.params.conf"
LOCAL_FILE = "auroral.local.conf"
INCLUDES = (
    "\n# --- auroral: do not edit below; the engine owns these files ---\n"
    f"include '{BASE_FILE}'\n"
    f"include_if_exists '{PARAMS_FILE}'\n"
    f"include '{LOCAL_FILE}'\n"
)

# Small and fast to start, durable: fsync and full_page_writes stay on.
_BASE: dict[str, str] = {
    "max_connections": "100",
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


def local_conf(socket_dir: Path, cluster_name: str) -> str:
    return render(
        {
            "listen_addresses": "",
            "port": str(PORT),
            "unix_socket_directories": str(socket_dir),
            "unix_socket_permissions": "0700",
            "cluster_name": cluster_name,
        },
        "mandatory local settings (rewritten before every start)",
    )


def hba_conf(mode: str) -> str:
    header = "# auroral: rewritten before every start; only the private Unix socket exists\n"
    if mode == "bootstrap":
        return header + "local all rdsadmin trust\nlocal all all reject\n"
    # replication connections match no line ("all" does not cover the replication pseudo-database)
    return header + "local all rdsadmin scram-sha-256\nlocal all all scram-sha-256\n"


def render(settings: Mapping[str, str], title: str) -> str:
    lines = [f"# {title}"]
    lines += [f"{name} = {quote(value)}" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def write(path: Path, content: str, runas: RunAs, mode: int = 0o600) -> None:
    """Atomically replace ``path`` (readable by the server's user only)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    runas.chown(tmp)
    os.replace(tmp, path)

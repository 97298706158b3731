"""Running PostgreSQL programs as asyncio subprocesses: initdb, the postmaster, admin connections.

The postmaster is started directly (``postgres -D <pgdata>``, no ``pg_ctl``) as our child in a new
session: signals sent to auroral's process group (Ctrl-C) do not reach it, so shutdown is always ours
to order, and ``proc.wait()`` tells the supervisor the moment it exits. Its stderr goes to a log file
opened by us, outside the data directory. Readiness is the ``ready`` status PostgreSQL writes into
``postmaster.pid``, confirmed by a real connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from auroral.engine import conf, fsafe, proc
from auroral.engine.binaries import Installation
from auroral.engine.errors import ServerStartError
from auroral.engine.osuser import RunAs

START_TIMEOUT = 120.0  # crash recovery after a kill -9 may replay WAL before "ready"
STOP_TIMEOUT = 60.0
_SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1
_FSYNC_THREADS = 8


def _env(inst: Installation | None = None) -> dict[str, str]:
    # a clean environment: PGDATA, PGHOST, PGOPTIONS... of the caller must not leak into the server.
    # The server's modules (dblink, postgres_fdw: libpq) find the installation's own libraries first: a
    # relocated build's RUNPATH names its build prefix, and the system's older libpq lacks symbols.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    if inst is not None and (inst.libdir / "libpq.so.5").is_file():
        env["LD_LIBRARY_PATH"] = str(inst.libdir)
    return env


def tool_env(inst: Installation | None = None) -> dict[str, str]:
    """The clean environment PostgreSQL's programs run in (see ``_env``)."""
    return _env(inst)


async def run_tool(
    inst: Installation, tool: str, args: list[str], runas: RunAs, *, stdin: bytes | None = None,
    cwd: Path | None = None,
) -> str:
    """Run a PostgreSQL program as ``runas`` (in ``cwd``, default ``/``); return its output or raise with
    it. ``pg_upgrade`` needs a working directory it may write (its logs, before PostgreSQL 15)."""
    process = await asyncio.create_subprocess_exec(
        str(inst.tool(tool)), *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=str(cwd or "/"), env=_env(), **runas.subprocess_kwargs(),
    )
    out, _ = await process.communicate(stdin)
    text = out.decode("utf-8", errors="replace")
    if process.returncode != 0:
        raise ServerStartError(f"{tool} failed with exit code {process.returncode}", text[-4000:])
    return text


async def initdb(inst: Installation, pgdata: Path, runas: RunAs, extra: tuple[str, ...] = ()) -> None:
    """A new data directory whose bootstrap superuser is ``rdsadmin``."""
    base = ["-D", str(pgdata), "-U", "rdsadmin", "--auth=reject", "--encoding=UTF8", "--no-sync", *extra]
    try:
        await run_tool(inst, "initdb", [*base, "--locale=C.UTF-8"], runas)
    except ServerStartError:
        # a libc without the C.UTF-8 locale: fall back to plain C collation
        for child in pgdata.iterdir() if pgdata.exists() else []:
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
        await run_tool(inst, "initdb", [*base, "--no-locale"], runas)


async def sync(inst: Installation, pgdata: Path, runas: RunAs) -> None:
    """fsync every file of a data directory (after copying a template: copies are not durable yet)."""
    await run_tool(inst, "initdb", ["--sync-only", "-D", str(pgdata)], runas)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (blocking: run it in a thread).

    Unlike ``initdb --sync-only`` it may run while a postmaster uses the directory: files that
    vanish meanwhile (temporary files, recycled WAL) are skipped; what PostgreSQL writes itself it
    fsyncs itself. Directories last, so that new entries are durable too. Several threads: the
    filesystem's journal commits concurrent fsyncs together (twice as fast as one by one for the
    ~1000 small files of a fresh data directory)."""
    directories: list[str] = []
    files: list[str] = []
    for dirpath, _dirnames, filenames in os.walk(root):
        directories.append(dirpath)
        files += [os.path.join(dirpath, name) for name in filenames]
    with ThreadPoolExecutor(_FSYNC_THREADS, thread_name_prefix="fsync") as pool:
        list(pool.map(lambda path: _fsync_path(path, os.O_RDONLY), files))
        list(pool.map(lambda path: _fsync_path(path, os.O_RDONLY | os.O_DIRECTORY), directories))


def _fsync_path(path: str, flags: int) -> None:
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink (pg_wal moved elsewhere): not ours to sync
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def check_config(inst: Installation, pgdata: Path, runas: RunAs) -> str | None:
    """Parse every configuration file of ``pgdata`` the way the server would (``postgres -C``, safe
    while it runs); the error messages if a name or value is rejected, else None."""
    process = await asyncio.create_subprocess_exec(
        str(inst.tool("postgres")), "-D", str(pgdata), "-C", "port",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        cwd="/", env=_env(), **runas.subprocess_kwargs(),
    )
    _, err = await process.communicate()
    if process.returncode == 0:
        return None
    messages = [
        line.split(":  ", 1)[-1]
        for line in err.decode("utf-8", errors="replace").splitlines()
        if ("LOG:  " in line or "FATAL:  " in line) and "contains errors" not in line
    ]
    return "; ".join(messages) or f"postgres -C exited with code {process.returncode}"


def socket_dir_for(cluster_dir: Path) -> Path:
    """``<cluster_dir>/run`` when the socket path fits ``sun_path``; else a short private runtime path."""
    preferred = cluster_dir / "run"
    if len(os.fsencode(str(preferred / conf.SOCKET_FILE))) <= _SUN_PATH_MAX:
        return preferred
    digest = hashlib.sha256(os.fsencode(str(cluster_dir.resolve()))).hexdigest()[:20]
    return runtime_root() / digest


def runtime_root() -> Path:
    if os.geteuid() == 0:
        root = Path("/run/auroral")
        root.mkdir(mode=0o711, parents=True, exist_ok=True)
    else:
        root = Path(tempfile.gettempdir()) / f"auroral-{os.geteuid()}"
        root.mkdir(mode=0o700, exist_ok=True)
    st = root.lstat()
    if root.is_symlink() or st.st_uid != os.geteuid():
        raise PermissionError(f"{root} is not a directory owned by us")
    return root


async def launch(inst: Installation, pgdata: Path, runas: RunAs, log_path: Path) -> asyncio.subprocess.Process:
    # the directory may belong to the server's user (a template's boot directory): no symlinks followed
    log_fd = fsafe.open_file(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return await asyncio.create_subprocess_exec(
            str(inst.tool("postgres")), "-D", str(pgdata),
            stdin=asyncio.subprocess.DEVNULL, stdout=log_fd, stderr=log_fd,
            cwd="/", env=_env(inst), start_new_session=True, **runas.subprocess_kwargs(),
        )
    finally:
        os.close(log_fd)


async def wait_ready(
    process: asyncio.subprocess.Process,
    pgdata: Path,
    socket_dir: Path,
    log_path: Path,
    check: Callable[[], Awaitable[None]],
    timeout: float = START_TIMEOUT,
) -> None:
    """Until ``postmaster.pid`` says ready and ``check()`` (a real connection) succeeds."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    last_error = ""
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise ServerStartError(f"postmaster exited with code {process.returncode}", log_tail(log_path))
        info = proc.read_pid_file(pgdata)
        if info is not None and info.pid == process.pid and info.status == "ready" and (
            socket_dir / conf.SOCKET_FILE
        ).exists():
            try:
                await check()
                return
            except psycopg.OperationalError as exc:
                last_error = str(exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
    raise ServerStartError(f"postmaster not ready after {timeout:.0f}s: {last_error}", log_tail(log_path))


async def shutdown(process: asyncio.subprocess.Process, timeout: float = STOP_TIMEOUT) -> int:
    """Fast shutdown (SIGINT: roll back sessions, checkpoint); escalate if it hangs."""
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
        if process.returncode is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), wait)
    return await process.wait()


async def clear_leftovers(pgdata: Path) -> None:
    """Stop a postmaster that outlived its auroral process, and wait for orphaned backends of a
    postmaster that died (they notice and exit; PostgreSQL refuses to start while they hold shared
    memory). Backends still there after 10 s are killed: their postmaster is gone and crash recovery
    will replay the WAL."""
    pid = proc.postmaster_of(pgdata)
    if pid is not None:
        await proc.stop_foreign(pid)
    deadline = time.monotonic() + 10.0
    while (left := proc.processes_in(pgdata)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# The control plane's own sessions (rdsadmin, a superuser) log none of their statements, whatever the
# cluster's parameters say: some carry password verifiers (bootstrap.py sends verifiers only, never a
# password), none is the user's activity. Errors are still logged, without the statement.
ADMIN_OPTIONS = "-c log_statement=none -c log_min_duration_statement=-1 -c log_min_error_statement=panic"


async def connect(
    socket_dir: Path, password: str | None, dbname: str = "postgres", user: str = "rdsadmin"
) -> psycopg.AsyncConnection[tuple[object, ...]]:
    options = ADMIN_OPTIONS if user == conf.ADMIN_PLACEHOLDER else ""
    return await psycopg.AsyncConnection.connect(
        host=str(socket_dir), port=conf.PORT, user=user, password=password, dbname=dbname,
        autocommit=True, connect_timeout=10, application_name="auroral-engine", options=options,
    )


def log_tail(log_path: Path, lines: int = 20) -> str:
    try:
        with open(log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# What PostgreSQL says when it exits at start because of its configuration (parameter values), as
# opposed to a damaged data directory or a full disk: the last FATAL of a failed start names it.
_CONFIG_FATALS = (
    "invalid value for parameter",
    "is outside the valid range for parameter",
    "unrecognized configuration parameter",
    "contains errors",
    "too many server processes configured",
    "must be less than max_connections",
    "could not map anonymous shared memory",
    "could not create shared memory segment",
    "could not create semaphores",
)


def config_rejection(tail: str) -> str | None:
    """The FATAL message of a start that failed because of the configuration, else None."""
    lines = tail.splitlines()
    last = max((i for i, line in enumerate(lines) if "FATAL:  " in line), default=None)
    if last is None:
        return None
    message = lines[last].split("FATAL:  ", 1)[1]
    if not any(marker in message for marker in _CONFIG_FATALS):
        return None
    for line in lines[last + 1:last + 3]:  # its DETAIL and HINT name the parameters
        for label in ("DETAIL:  ", "HINT:  "):
            if label in line:
                message += " " + line.split(label, 1)[1]
    return message

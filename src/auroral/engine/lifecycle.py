"""A server's lifecycle: create (from the template), start, stop, restart, delete, and the supervisor that
restarts a postmaster which exited on its own (see ``cluster.py`` for the status vocabulary).

Separate from replication, backups and upgrades, which make a server in other ways (a clone, a restore, a
``pg_upgrade``) but all run it through ``_launch`` and hand it to ``_supervise`` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import time
from collections.abc import Mapping

import psycopg

from auroral.engine import aurora, bootstrap, conf, logfiles, postmaster
from auroral.engine.errors import ServerStartError, ServerStateError
from auroral.engine.osuser import check_traversable, current, make_private_dir
from auroral.engine.server_base import Query, as_query
from auroral.engine.server_conf import ServerConfig

log = logging.getLogger(__name__)
RECOVERY_SIGNAL = "recovery.signal"


class ServerLifecycle(ServerConfig):
    """Starting, stopping and supervising the postmaster of a :class:`~auroral.engine.cluster.PgServer`."""

    # ---- lifecycle -----------------------------------------------------------------------------

    async def create(
        self,
        master_username: str,
        master_password: str,
        database_name: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> None:
        """Clone the template, add the master user (and database), apply ``params``; leaves it running."""
        async with self._lock:
            if self._status != "not-initialized":
                raise ServerStateError(f"cluster {self.cluster_id} is already initialized ({self._status})")
            self._set_status("starting", "creating")
            try:
                await self._provision(master_username, master_password, database_name)
            except BaseException as exc:
                await self._halt()
                self._set_status("failed", f"create failed: {exc}")
                raise
        if params:
            change = await self.set_parameters(params)
            if change.pending_reboot:
                await self.restart()

    async def _provision(self, master: str, password: str, database: str | None) -> None:
        self._make_cluster_dir()
        shutil.rmtree(self.pgdata, ignore_errors=True)  # a create interrupted earlier
        await self._templates.clone(self.installation, self.pgdata, self.runas)
        # the copy becomes durable while the server starts and bootstraps (each takes about as long);
        # the cluster is not reported running before both are done
        durable = asyncio.create_task(self._templates.make_durable(self.pgdata), name=f"fsync-{self.cluster_id}")
        try:
            await self._launch("bootstrap")
            statements: list[Query] = [bootstrap.set_admin_password(self._admin_password)]
            statements += bootstrap.create_master(master, password, self.major)
            if database:
                statements.append(bootstrap.create_database(database, master))
            async with await postmaster.connect(self.socket_dir, None) as connection:
                for statement in statements:
                    await connection.execute(as_query(statement))
            conf.write(self.pgdata / "pg_hba.conf", conf.hba_conf("final"), self.runas)
            await self.run_admin_sql("SELECT pg_reload_conf()")
            # the reload is asynchronous: wait until password authentication is what we get
            await self._wait_for_hba()
        finally:
            # awaited on failure too, so that the caller's cleanup does not race our fsyncs (which
            # would survive anyway: fsync_tree skips files that vanish)
            await durable
        self._want_running = True
        self._supervisor = asyncio.create_task(self._supervise(), name=f"supervise-{self.server_id}")
        self._set_status("running")

    def _make_cluster_dir(self) -> None:
        """Ours (root's, ``0711``) when the server runs as another user: it can then change nothing
        but ``pgdata`` and ``run`` (an older engine gave the whole directory to the server's user)."""
        if self.runas.is_current:
            make_private_dir(self.cluster_dir, self.runas)
        else:
            make_private_dir(self.cluster_dir, current(), 0o711)

    async def _wait_for_hba(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                async with await postmaster.connect(self.socket_dir, None):
                    pass
            except psycopg.OperationalError:
                return  # trust no longer applies: scram-sha-256 asked for a password
            await asyncio.sleep(0.02)
        raise ServerStartError("pg_hba.conf reload did not take effect", postmaster.log_tail(self.log_path))

    async def start(self) -> None:
        """Start a stopped (or failed) server; returns once it accepts connections."""
        async with self._lock:
            if self._status == "not-initialized":
                raise ServerStateError(f"cluster {self.cluster_id} has no data directory")
            if self._status == "running" and self.pid is not None:
                return
            self._want_running = False
            await self._halt()
            self._set_status("starting")
            try:
                await self._launch("final")
            except BaseException as exc:
                self._set_status("failed", str(exc))
                raise
            self._want_running = True
            self._supervisor = asyncio.create_task(self._supervise(), name=f"supervise-{self.server_id}")
            self._set_status("running")

    async def stop(self) -> None:
        """Fast shutdown; waits for the postmaster to exit. No restart follows."""
        async with self._lock:
            self._want_running = False
            self._wake.set()
            if self._process is not None and self._process.returncode is None:
                self._set_status("stopping")
            await self._halt()
            if self._status != "not-initialized":
                self._set_status("stopped")

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def delete(self) -> None:
        """Stop and remove every file of the server; no process survives."""
        await self.stop()
        async with self._lock:
            await postmaster.clear_leftovers(self.pgdata)
            shutil.rmtree(self.cluster_dir, ignore_errors=True)
            if self.socket_dir.parent != self.cluster_dir:
                shutil.rmtree(self.socket_dir, ignore_errors=True)
            self._set_status("not-initialized", "deleted")

    async def _halt(self) -> None:
        """Stop our postmaster (if any) and the supervisor; caller holds the lock."""
        process = self._process
        if process is not None and process.returncode is None:
            await postmaster.shutdown(process)
        task = self._supervisor
        if task is not None and task is not asyncio.current_task():
            # the supervisor only runs outside our lock (waiting on the process, in backoff or for the
            # lock itself), so cancelling it cannot interrupt a launch
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._supervisor = None
        self._wake.clear()

    async def _launch(self, hba_mode: str) -> None:
        """Write our config, start the postmaster and wait until it accepts connections."""
        await postmaster.clear_leftovers(self.pgdata)
        # checked every time: a chmod of an ancestor would otherwise surface as an obscure "could not
        # access directory"
        self._make_cluster_dir()
        check_traversable(self.cluster_dir, self.runas)
        make_private_dir(self.socket_dir, self.runas)
        make_private_dir(self.wal_spool, self.runas)
        self._write_local_conf()
        conf.write(self.pgdata / "pg_ident.conf", conf.ident_conf(_gateway_os_user(), self.runas.name), self.runas)
        # the owner says this server is the primary, yet it is a standby (told to lead while it was stopped):
        # it starts as one and is promoted, so that it leads on a timeline of its own
        promote = self.standby is None and (self.pgdata / conf.STANDBY_SIGNAL).exists()
        if self.standby is not None:
            conf.write(self.pgdata / conf.STANDBY_SIGNAL, "", self.runas)
        if self.recovery is not None:
            conf.write(self.pgdata / RECOVERY_SIGNAL, "", self.runas)
        # kept across restarts (the IAM module's list), rewritten with only the well-formed names (a
        # file of an older auroral may hold lines a role name with a line break put there), and so that
        # a symlink there is replaced
        conf.write(self.pgdata / conf.IAM_USERS_FILE, conf.iam_users_conf(self.iam_users()), self.runas)
        conf.write(self.pgdata / "pg_hba.conf", conf.hba_conf(hba_mode), self.runas)
        make_private_dir(self.log_path.parent, current())
        make_private_dir(self.log_dir, self.runas)
        process = await postmaster.launch(self.installation, self.pgdata, self.runas, self.log_path)
        self._process = process
        password = None if hba_mode == "bootstrap" else self._admin_password

        async def check() -> None:
            async with await postmaster.connect(self.socket_dir, password):
                pass

        try:
            await postmaster.wait_ready(process, self.pgdata, self.socket_dir, self.log_path, check)
        except BaseException:
            await postmaster.shutdown(process)
            raise
        self._started_at = time.monotonic()
        if promote:
            async with await postmaster.connect(self.socket_dir, password) as connection:
                await connection.execute("SELECT pg_catalog.pg_promote(true, 60)")
        # every start: databases of a data directory older than the functions get them too (a standby
        # has its primary's, and could not write them)
        if self.standby is None and self.recovery is None:
            await aurora.install(lambda dbname: postmaster.connect(self.socket_dir, password, dbname))
            # from the first start on, so that nobody else can create a role of that name
            async with await postmaster.connect(self.socket_dir, password) as connection:
                for statement in bootstrap.ENSURE_REPLICATION_ROLE:
                    await connection.execute(statement.encode())

    async def _supervise(self) -> None:
        attempts = 0
        while self._want_running:
            process = self._process
            if process is None:
                return
            code = await process.wait()
            if not self._want_running:
                return
            if time.monotonic() - self._started_at > self._policy.stable_after:
                attempts = 0
            reason = (f"postmaster exited unexpectedly with code {code}\n{postmaster.log_tail(self.log_path)}\n"
                      f"{self._collector_failure()}").rstrip()
            self._set_status("failed", reason)
            while True:
                if attempts >= self._policy.max_attempts:
                    self._set_status("failed", f"gave up after {attempts} restart attempts\n{reason}")
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._policy.delay(attempts))
                attempts += 1
                if not self._want_running:
                    return
                async with self._lock:
                    if not self._want_running:
                        return
                    self._set_status("starting", f"restart attempt {attempts}")
                    try:
                        await self._launch("final")
                    except (ServerStartError, OSError, psycopg.Error) as exc:
                        reason = str(exc)
                        self._set_status("failed", reason)
                        continue
                    self._set_status("running", f"restarted after attempt {attempts}")
                    break

    async def discard(self) -> None:
        """Stop and remove this server's own files (data directory, log, socket directory) but keep its
        directory: the cluster's first server, whose directory holds the cluster's other servers too."""
        await self.stop()
        async with self._lock:
            await postmaster.clear_leftovers(self.pgdata)
            for path in (self.pgdata, self.log_path.parent, self.log_dir, self.socket_dir):
                shutil.rmtree(path, ignore_errors=True)
            self._set_status("not-initialized", "discarded")

    def _collector_failure(self) -> str:
        try:
            return logfiles.failure_lines(self.log_dir)
        except OSError as exc:
            return f"(log files not read: {exc})"


def _gateway_os_user() -> str:
    """The OS user of this process: the gateway connects to the private socket as it."""
    return pwd.getpwuid(os.geteuid()).pw_name


"""Composes one auroral process: store, identity directory, services, the API server (and, as
later parts land, the engine supervisor and the endpoint gateway).

``App.start()`` returns once every part is ready; ``App.stop()`` shuts them down in reverse order.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from auroral import __version__
from auroral.api.pipeline import Pipeline, Provider
from auroral.api.server import make_app
from auroral.audit import AuditTrail
from auroral.audit.trail import FLUSH_SECONDS
from auroral.cloudtrail.service import CloudTrailService
from auroral.config import Settings
from auroral.crypto import Sealer, load_or_create_key
from auroral.ec2 import Ec2Service
from auroral.gateway import FlowLog, Gateway, TlsMaterial
from auroral.gateway import native as native_relay
from auroral.iam.authorizer import IamAuthorizer
from auroral.iam.directory import Directory
from auroral.iam.service import IamService
from auroral.kms.service import KmsService
from auroral.rds.iam_db_auth import IamDbAuth
from auroral.rds.local_runtime import LocalRuntime
from auroral.rds.managed_password import ManagedPasswords
from auroral.rds.network_policy import Ec2Directory, NetworkPolicy, drop_mode, translation_spec
from auroral.rds.service import RdsService
from auroral.secrets.rotation import RotationScheduler
from auroral.secrets.service import SECRET_ARN_PREFIX, SecretsManagerService
from auroral.secrets.vault import Vault
from auroral.store import Store
from auroral.sts.service import StsService

log = logging.getLogger(__name__)

SERVER_FILE = "server.json"


class AlreadyRunning(RuntimeError):
    pass


def account_id(store: Store) -> str:
    """The installation's account ID: ``AURORAL_ACCOUNT_ID``, else generated once and kept."""
    pinned = os.environ.get("AURORAL_ACCOUNT_ID")
    stored = store.get_meta("account_id")
    if pinned:
        if not (len(pinned) == 12 and pinned.isdigit()):
            raise ValueError("AURORAL_ACCOUNT_ID must be 12 digits")
        if stored != pinned:
            store.set_meta("account_id", pinned)
        return pinned
    if stored:
        return stored
    generated = str(secrets.randbelow(9 * 10**11) + 10**11)
    store.set_meta("account_id", generated)
    return generated


class App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(settings.data_dir, 0o700)
        self._lock_fd = self._take_lock(settings.data_dir)
        self.store = Store(settings.store_path)
        self.sealer = Sealer(load_or_create_key(settings.master_key_path))
        self.account = account_id(self.store)
        self.directory = Directory(self.store, self.sealer, self.account)
        self.root_key = self.directory.ensure_root(
            os.environ.get("AURORAL_ROOT_ACCESS_KEY_ID"), os.environ.get("AURORAL_ROOT_SECRET_ACCESS_KEY")
        )
        self.authorizer = IamAuthorizer(self.directory)
        self.audit = AuditTrail(self.store, settings.region)
        self.tls = TlsMaterial.load_or_create(settings.data_dir / "tls", self.sealer.derive("auroral-tls-keys"))
        self.flows = FlowLog(settings.data_dir / "flows.jsonl", account_id=self.account)
        self.gateway = Gateway(self.tls, self.flows, relay=native_relay.load(settings.data_dir / "gateway"))
        self.runtime = LocalRuntime(settings.data_dir, self.store, self.sealer, self.gateway,
                                    endpoint_host=settings.endpoint_host)
        # Loopback addresses are hosts of the default VPC unless AURORAL_NET_TRANSLATE says otherwise first.
        self.ec2 = Ec2Service(self.store, settings.region, translation=translation_spec(os.environ))
        self.kms = KmsService(self.store, self.sealer, settings.region, self.authorizer)
        self.secrets = SecretsManagerService(self.store, self.kms.keyring, settings.region)
        self.authorizer.register_resource_policy_source(SECRET_ARN_PREFIX, self.secrets.resource_policy_source)
        # Secrets Manager owns the vault (used by RDS) and the rotation scheduler: one of each per
        # process, so API handlers, RDS and the scheduler share one lock over the secrets' documents.
        self.vault: Vault = self.secrets.vault
        self.rotation: RotationScheduler = self.secrets.rotation
        # RDS's managed master passwords: creates the rds!cluster-* secrets, rotates them.
        self.managed_passwords = ManagedPasswords(self.vault, self.store, self.runtime)
        self.vault.register_rotator("rds", self.managed_passwords)
        self.rotation.on_rotation_failed(self.managed_passwords.rotation_failed)
        self.rds = RdsService(self.store, self.runtime, self.directory, settings.region,
                              secrets=self.managed_passwords)
        self.directory.register_slr_deletion_check("rds.amazonaws.com", self.rds.slr_deletion_check(self.account))
        # Network security at the endpoints: subnet groups and security groups from EC2, the CA for
        # DescribeCertificates, and the accept-time decision of every endpoint listener.
        self.rds.attach_network(Ec2Directory(self.ec2))
        self.rds.attach_ca(self.tls.ca_cert)
        self.network_policy = NetworkPolicy(self.ec2, self.rds, self.store, drop=drop_mode(os.environ))
        self.runtime.decide_for = self.network_policy.decide_for
        # IAM database authentication at the endpoints (read by every new connection)
        self.iam_db_auth = IamDbAuth(self.runtime, self.store, self.directory, self.authorizer, self.audit)
        self.runtime.authenticate_for = self.iam_db_auth.hook_for
        self.runtime.unearned_trust_for = self.iam_db_auth.unearned_trust_for
        self.providers: dict[str, Provider] = {
            "iam": IamService(self.directory, self.authorizer),
            "sts": StsService(self.directory, self.authorizer),
            "rds": self.rds,
            "ec2": self.ec2,
            "cloudtrail": CloudTrailService(self.store, self.audit.flush),
            "kms": self.kms,
            "secretsmanager": self.secrets,
        }
        self.pipeline = Pipeline(
            region=settings.region,
            providers=self.providers,
            lookup=self.directory.lookup_credentials,
            authorizer=self.kms.authorizer,  # KMS key ARNs by key policy + IAM, the rest by IAM
            audit=self.audit,
            note_key_used=self.directory.note_key_used,
        )
        self._runner: web.AppRunner | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.ready = False

    @staticmethod
    def _take_lock(data_dir: Path) -> int:
        fd = os.open(data_dir / "auroral.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(f"another auroral is running with data directory {data_dir}") from None
        return fd

    def health(self) -> Mapping[str, Any]:
        return {
            "status": "ready" if self.ready else "starting",
            "version": __version__,
            "account": self.account,
            "region": self.settings.region,
            "services": {name: "running" for name in sorted(self.providers)},
        }

    async def start(self) -> None:
        self.network_policy.ensure_host_interface(self.account)
        await self.runtime.warm_up()
        await self.rds.recover()
        await self.rotation.start()  # after recover: resumed rotations need the clusters running
        web_app = make_app(self.pipeline, self.health)
        self._runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port, reuse_address=True)
        await site.start()
        self._flusher = asyncio.create_task(self._flush_audit())
        self.ready = True
        self._write_server_file()
        log.info("auroral %s ready at %s (account %s)", __version__, self.settings.endpoint_url, self.account)

    async def _flush_audit(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                self.audit.flush()
            except Exception:
                log.exception("could not write audit events")

    def _write_server_file(self) -> None:
        info = {
            "pid": os.getpid(),
            "endpoint_url": self.settings.endpoint_url,
            "host": self.settings.host,
            "port": self.settings.port,
            "region": self.settings.region,
            "account": self.account,
        }
        path = self.settings.data_dir / SERVER_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(path)

    async def stop(self) -> None:
        self.ready = False
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._flusher is not None:
            self._flusher.cancel()
        self.audit.flush()
        await self.rotation.stop()
        await self.rds.drain()
        await self.iam_db_auth.close()
        await self.runtime.close()
        (self.settings.data_dir / SERVER_FILE).unlink(missing_ok=True)
        self.store.close()
        os.close(self._lock_fd)

    async def serve_forever(self, stop_event: asyncio.Event) -> None:
        await self.start()
        try:
            await stop_event.wait()
        finally:
            await self.stop()

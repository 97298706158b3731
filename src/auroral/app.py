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
from auroral.config import DEFAULT_DNS_PORT, Settings, dns_address, hosts_file
from auroral.crypto import Sealer, load_or_create_key
from auroral.dns import Zone
from auroral.dns.hosts import HostsBlock, block_id, glibc_returns_all_lines
from auroral.dns.publish import SNAPSHOT_FILE, ZonePublisher
from auroral.dns.server import DnsServer
from auroral.gateway import FlowLog, Gateway, TlsMaterial
from auroral.gateway import native as native_relay
from auroral.iam.authorizer import IamAuthorizer
from auroral.iam.directory import Directory
from auroral.iam.service import IamService
from auroral.rds.local_runtime import LocalRuntime
from auroral.regional import Regions
from auroral.regions import REGIONAL_SERVICES
from auroral.store import Store
from auroral.sts.service import StsService

log = logging.getLogger(__name__)

SERVER_FILE = "server.json"
NETWORK_SERVICES = frozenset({"ec2", "rds"})  # whose changes the endpoints' network filters follow


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
        # The endpoint names (auroral.dns): RDS registers its records here with
        # ``zone.replace("rds:<account>:<region>", ...)``; the DNS server and the hosts block follow.
        self.zone = Zone()
        self._dns_address = dns_address(settings.dns)
        self._hosts_path = hosts_file(settings.hosts_file)
        self.dns_server: DnsServer | None = None
        self.publisher: ZonePublisher | None = None
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
        # RDS, EC2, KMS and Secrets Manager of each region (the home region's at once, the others
        # on their first request); IAM, STS and CloudTrail are global.
        self.regions = Regions(store=self.store, sealer=self.sealer, home=settings.region, account=self.account,
                               directory=self.directory, iam=self.authorizer, audit=self.audit,
                               runtime=self.runtime, ca_cert=self.tls.ca_cert, zone=self.zone,
                               names_published=self.names_published, flows=self.flows)
        self.global_providers: dict[str, Provider] = {
            "iam": IamService(self.directory, self.authorizer),
            "sts": StsService(self.directory, self.authorizer),
            "cloudtrail": CloudTrailService(self.store, self.audit.flush),
        }
        self.pipeline = Pipeline(
            global_providers=self.global_providers,
            regional_providers=self._regional_provider,
            lookup=self.directory.lookup_credentials,
            authorizer=self.regions.authorizer,  # KMS key ARNs by key policy + IAM, the rest by IAM
            audit=self.audit,
            note_key_used=self.directory.note_key_used,
            after_change=self._after_change,
        )
        # Names this run of the server: in server.json and the health answer, so that `auroral status`
        # recognizes the server of its data directory (not another one on the same address).
        self.server_id = secrets.token_hex(8)
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

    async def _regional_provider(self, service: str, region: str) -> Provider:
        services = await self.regions.serving(region)
        provider: Provider = services.providers[service]
        return provider

    async def _after_change(self, service: str, operation: str) -> None:
        """EC2 and RDS calls may change who may connect (security groups, routes, network interfaces,
        a cluster's groups, public access): the listeners' kernel filters follow before the response."""
        if service in NETWORK_SERVICES:
            await self.runtime.network_changed()
        # The security advisor's findings follow the change before the response is returned (evaluated
        # off the event loop: the endpoints keep being served meanwhile).
        for services in self.regions.all():
            if services.started:
                await asyncio.to_thread(services.advisor.refresh)

    def health(self) -> Mapping[str, Any]:
        return {
            "status": "ready" if self.ready else "starting",
            "version": __version__,
            "server_id": self.server_id,
            "account": self.account,
            "region": self.settings.region,
            "services": {name: "running" for name in sorted([*self.global_providers, *REGIONAL_SERVICES])},
            "regions": sorted(r.region for r in self.regions.all()),
            "dns": self.dns_server.address if self.dns_server else None,
            "hosts_file": str(self._hosts_path) if self._hosts_path else None,
        }

    async def _start_names(self) -> None:
        """The DNS server and the publisher of the zone (hosts block, ``dns.json``)."""
        if self._dns_address is not None:
            host, port = self._dns_address
            server = DnsServer(self.zone, host, DEFAULT_DNS_PORT if port < 0 else port)
            try:
                await server.start()
            except OSError:
                if port >= 0:
                    raise
                # "auto": another auroral (the test suite runs several) holds the default port
                server = DnsServer(self.zone, host, 0)
                await server.start()
            self.dns_server = server
        hosts = HostsBlock(self._hosts_path, block_id(self.settings.data_dir)) if self._hosts_path else None
        if hosts is not None and not glibc_returns_all_lines():
            log.warning("/etc/host.conf lacks 'multi on': a name with several addresses (a reader endpoint) "
                        "resolves from %s to its first address only", hosts.path)
        self.publisher = ZonePublisher(self.zone, hosts=hosts, snapshot=self.settings.data_dir / SNAPSHOT_FILE,
                                       meta={"dns": self.dns_server.address if self.dns_server else None,
                                             "hosts_file": str(self._hosts_path) if self._hosts_path else None,
                                             "block": hosts.ident if hosts else None})
        await asyncio.to_thread(self.publisher.start)

    async def names_published(self, timeout: float = 2.0) -> bool:
        """Wait until the zone as it is now is in the hosts file (for a caller about to report a name
        usable, e.g. an instance ``available``); False on timeout. The DNS server needs no wait."""
        return True if self.publisher is None else await self.publisher.published(timeout)

    async def _stop_names(self) -> None:
        if self.publisher is not None:
            await asyncio.to_thread(self.publisher.stop)
            self.publisher = None
        if self.dns_server is not None:
            await self.dns_server.stop()
            self.dns_server = None

    async def start(self) -> None:
        await self._start_names()
        await self.runtime.warm_up()
        for services in self.regions.all():
            await services.start(self.account)
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
            "server_id": self.server_id,
            "endpoint_url": self.settings.endpoint_url,
            "host": self.settings.host,
            "port": self.settings.port,
            "region": self.settings.region,
            "account": self.account,
            "dns": self.dns_server.address if self.dns_server else None,
            "hosts_file": str(self._hosts_path) if self._hosts_path else None,
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
        for services in self.regions.all():
            await services.stop()
        await self.runtime.close()
        await self._stop_names()
        (self.settings.data_dir / SERVER_FILE).unlink(missing_ok=True)
        self.store.close()
        os.close(self._lock_fd)

    async def serve_forever(self, stop_event: asyncio.Event) -> None:
        await self.start()
        try:
            await stop_event.wait()
        finally:
            await self.stop()

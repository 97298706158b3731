"""Regions as AWS has them: each region's RDS, EC2, KMS and Secrets Manager are their own.

``Regions`` makes one ``RegionServices`` per region on first use (a request signed for it, or
resources found in the store at start) and keeps it: the region's providers over the store's view
of that region (``Store.in_region``), so clusters, security groups, the default VPC, keys and
secrets of one region are invisible from another, as in AWS. IAM, STS and CloudTrail are global
and shared. The engine runtime and the gateway are shared too: clusters' resource ids are unique
across regions, and each cluster's hooks are dispatched to its own region's services.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cryptography import x509

from auroral.advisor.checks import Snapshot
from auroral.advisor.controls import FLOW_WINDOW_HOURS
from auroral.advisor.engine import Advisor
from auroral.advisor.master_password import iam_principals
from auroral.advisor.snapshot import sequence_of, with_live
from auroral.advisor.watch import DatabaseWatch
from auroral.api.context import Authorizer
from auroral.audit import AuditTrail
from auroral.crypto import Sealer
from auroral.ec2 import Ec2Service
from auroral.ec2.model import Rule, SecurityGroup
from auroral.gateway.decision import Authenticate, Decide, SourceSpace, UnearnedTrust
from auroral.gateway.flows import FlowLog
from auroral.iam.authorizer import IamAuthorizer
from auroral.iam.directory import Directory
from auroral.kms.authz import KeyPolicyAuthorizer
from auroral.kms.keyring import Keyring
from auroral.kms.service import KmsService
from auroral.rds.addresses import EndpointAddresses, Placement
from auroral.rds.dns_records import RecordSink
from auroral.rds.iam_db_auth import IamDbAuth
from auroral.rds.local_runtime import LocalRuntime
from auroral.rds.managed_password import ManagedPasswords
from auroral.rds.model import KIND_CLUSTER, KIND_INSTANCE, Cluster, Instance
from auroral.rds.network_policy import Ec2Directory, NetworkPolicy, drop_mode, translation_spec
from auroral.rds.service import RdsService
from auroral.rds.storage_keys import StorageKeys
from auroral.regions import partition_of
from auroral.secrets.service import SecretsManagerService
from auroral.securityhub.service import SecurityHubService
from auroral.store import Store

log = logging.getLogger(__name__)

_HOME_REGION_META = "home_region"
ADVISOR_POLL_SECONDS = 0.5


class RegionServices:
    """One region's providers and what serves its clusters' endpoints."""

    def __init__(self, region: str, regions: Regions) -> None:
        self.region = region
        store = regions.store.in_region(region, regions.home)
        # Loopback addresses are hosts of the default VPC unless AURORAL_NET_TRANSLATE says otherwise first.
        self.ec2 = Ec2Service(store, region, translation=translation_spec(os.environ))
        # The endpoints' kernel filters follow EC2 changes made outside an API call too (the pipeline
        # refreshes them synchronously after every EC2 or RDS call).
        self.ec2.state.on_change(regions.runtime.network_changed_later)
        self.kms = KmsService(store, regions.sealer, region, regions.iam)
        self.secrets = SecretsManagerService(store, self.kms.keyring, region)
        regions.iam.register_resource_policy_source(
            f"arn:{partition_of(region)}:secretsmanager:{region}:", self.secrets.resource_policy_source)
        # RDS's managed master passwords: the rds!cluster-* secrets of this region, and their rotation.
        self.managed_passwords = ManagedPasswords(self.secrets.vault, store, regions.runtime)
        self.secrets.vault.register_rotator("rds", self.managed_passwords)
        self.secrets.rotation.on_rotation_failed(self.managed_passwords.rotation_failed)
        self.rds = RdsService(store, regions.runtime, regions.directory, region, secrets=self.managed_passwords)
        self.rds.attach_network(Ec2Directory(self.ec2))
        self.rds.on_network_view_change(regions.runtime.network_changed_later)
        self.rds.attach_ca(regions.ca_cert)
        # encryption at rest: StorageEncrypted clusters' KMS keys, the sealed snapshots
        self.rds.attach_snapshots(StorageKeys(self.kms.keyring, regions.sealer), regions.runtime.snapshot_dir)
        self.network_policy = NetworkPolicy(self.ec2, self.rds, store, drop=drop_mode(os.environ))
        # The DB instances' network interfaces and the addresses their endpoints listen on.
        self.addresses = EndpointAddresses(self.ec2, self.rds, store, region)
        self.rds.attach_interfaces(self.addresses)
        if regions.zone is not None:  # the endpoints' DNS names, served by auroral.dns
            self.rds.attach_zone(regions.zone, regions.names_published)
        self.iam_db_auth = IamDbAuth(regions.runtime, store, regions.directory, regions.iam, regions.audit)
        # The security advisor: Security Hub controls over this region's resources (the account-wide
        # IAM controls in the home region only), kept current as they change.
        self._store = store
        self._directory = regions.directory
        self._flows = regions.flows
        self._earlier = regions.earlier_logins
        # the inside of the clusters' databases (roles, schema owners), read as rdsadmin when a session
        # ends, periodically and before GetFindings (auroral.advisor.watch)
        self.databases = DatabaseWatch(store, regions.account, regions.runtime, regions.flows,
                                       regions.earlier_logins)
        self.advisor = Advisor(store, region=region, account=regions.account, partition=partition_of(region),
                               snapshot=self.snapshot, with_global=region == regions.home,
                               version=self._advisor_version)
        self.securityhub = SecurityHubService(self.advisor, region, before_read=self.databases.fresh)
        self.providers: dict[str, Any] = {
            "rds": self.rds, "ec2": self.ec2, "kms": self.kms, "secretsmanager": self.secrets,
            "securityhub": self.securityhub,
        }
        self.started = False
        self._advisor_task: asyncio.Task[None] | None = None

    async def start(self, account: str) -> None:
        """Bring the region's clusters back and start its rotation scheduler (once)."""
        if self.started:
            return
        self.started = True
        self.network_policy.ensure_host_interface(account)
        await self.rds.recover()
        await self.secrets.rotation.start()  # after recover: resumed rotations need the clusters running
        self.advisor.refresh(force=True)
        self._advisor_task = asyncio.create_task(self._follow_changes())

    async def _follow_changes(self) -> None:
        """Changes made outside an API call (a deletion finishing, a key's deletion date passing)
        reach the findings within half a second; after a call, the pipeline's hook is sooner. Changes
        made with SQL: the databases are read again (``DatabaseWatch.poll``), and a read that found a
        change is evaluated by the next poll."""
        while True:
            await asyncio.sleep(ADVISOR_POLL_SECONDS)
            try:
                self.databases.poll()
                await asyncio.to_thread(self.advisor.refresh)
            except Exception:
                log.exception("advisor refresh failed in %s", self.region)

    def _advisor_version(self) -> tuple[int, int, int, int]:
        """Besides the store: the flow records seen and the logins announced (a login counts when it
        reaches the relay, its end with its close record), the minute (a window's end is a change), and
        the inside of the databases as read."""
        flows = self._flows
        return (flows.count if flows is not None else 0, flows.logins if flows is not None else 0,
                int(time.time() // 60), self.databases.version)

    def snapshot(self) -> Snapshot:
        """What the advisor's checks decide on: this region's resources of the account, and its IAM."""
        account = self.advisor.account
        acct = self.ec2.state.account(account)
        groups: list[tuple[SecurityGroup, list[Rule]]] = [(g, acct.rules_of(g.id)) for g in acct.all(SecurityGroup)]
        # this run's records and the logins of the connections open now, at one moment (a connection
        # is a login in exactly one of them)
        ring, live = self._flows.view() if self._flows is not None else ([], [])
        now = dt.datetime.now(dt.UTC)
        directory = self._directory
        with directory.lock:
            root_keys = list(directory.root_keys.values())
            policies = list(directory.policies.values())
            principals = iam_principals(directory) if self.advisor.with_global else []
        return Snapshot(
            account=account, region=self.region, partition=partition_of(self.region), now=now,
            clusters=[Cluster.from_doc(d) for _a, _k, d in self._store.list(KIND_CLUSTER, account)],
            instances=[Instance.from_doc(d) for _a, _k, d in self._store.list(KIND_INSTANCE, account)],
            groups=groups, root_keys=root_keys, policies=policies, principals=principals,
            keys=self.kms.keyring.records.keys(account),
            secrets=[s for s in self.secrets.records.all(account) if s.deleted is None],
            databases=self.databases.states(), sequence=sequence_of(ring, live),
            flows=with_live(self._earlier + [r for r in ring if r.phase == "close" and r.db_user], live, now),
        )

    async def stop(self) -> None:
        await self.rds.stop_key_watch()
        await self.rds.stop_backup_schedule()
        if self._advisor_task is not None:
            self._advisor_task.cancel()
            self._advisor_task = None
        await self.secrets.rotation.stop()
        await self.rds.drain()
        await self.iam_db_auth.close()
        await self.databases.close()


class Regions:
    """Every region's services, made on first use; the home region's at once."""

    def __init__(self, *, store: Store, sealer: Sealer, home: str, account: str, directory: Directory,
                 iam: IamAuthorizer, audit: AuditTrail, runtime: LocalRuntime, ca_cert: x509.Certificate,
                 zone: RecordSink | None = None,
                 names_published: Callable[[], Awaitable[bool]] | None = None,
                 flows: FlowLog | None = None) -> None:
        stored = store.get_meta(_HOME_REGION_META)
        if stored is None:
            store.set_meta(_HOME_REGION_META, home)
            stored = home
        # The region whose resources the store keeps under plain kinds (the first one ever served).
        self.home = stored
        self.store = store
        self.sealer = sealer
        self.account = account
        self.directory = directory
        self.iam = iam
        self.audit = audit
        self.runtime = runtime
        self.ca_cert = ca_cert
        self.zone = zone
        self.names_published = names_published
        self.flows = flows  # the gateway's flow records, for the advisor's own controls
        # ... and the logins of earlier runs still inside the advisor's window (read once, now)
        since = time.time() - FLOW_WINDOW_HOURS * 3600
        self.earlier_logins = flows.logins_before(since) if flows is not None else []
        self._by_region: dict[str, RegionServices] = {}
        # KMS key ARNs by their region's key policies, everything else by IAM.
        self.authorizer: Authorizer = KeyPolicyAuthorizer(iam, self.keyring)
        directory.register_slr_deletion_check("rds.amazonaws.com", self._slr_still_needed)
        runtime.decide_for = self._decide_for
        runtime.authenticate_for = self._authenticate_for
        runtime.unearned_trust_for = self._unearned_trust_for
        runtime.placement_for = self._placement_for

        runtime.source_space_for = self._source_space_for
        for region in sorted({self.home, *store.regions_in_use()}):
            self.get(region)

    def get(self, region: str) -> RegionServices:
        services = self._by_region.get(region)
        if services is None:
            services = RegionServices(region, self)
            self._by_region[region] = services
            log.info("serving region %s", region)
        return services

    def all(self) -> Sequence[RegionServices]:
        return list(self._by_region.values())

    async def serving(self, region: str) -> RegionServices:
        """The region's services, started: what a request for it is handled by."""
        services = self.get(region)
        await services.start(self.account)
        return services

    def keyring(self, region: str) -> Keyring | None:
        services = self._by_region.get(region)
        return None if services is None else services.kms.keyring

    # --- the shared runtime's per-cluster hooks, dispatched to the cluster's region ----------------

    def _decide_for(self, cluster: Cluster, instance: Instance) -> Decide:
        return self.get(cluster.region).network_policy.decide_for(cluster, instance)

    def _source_space_for(self, cluster: Cluster, instance: Instance) -> Callable[[], SourceSpace | None]:
        return self.get(cluster.region).network_policy.source_space_for(cluster, instance)

    def _authenticate_for(self, cluster: Cluster, instance: Instance) -> Authenticate | None:
        return self.get(cluster.region).iam_db_auth.hook_for(cluster, instance)

    def _unearned_trust_for(self, cluster: Cluster, instance: Instance) -> UnearnedTrust | None:
        return self.get(cluster.region).iam_db_auth.unearned_trust_for(cluster, instance)

    def _placement_for(self, cluster: Cluster, instance: Instance) -> Placement:
        return self.get(cluster.region).addresses.placement(cluster, instance)

    def _slr_still_needed(self, service_name: str) -> str | None:
        for services in self.all():
            reason = services.rds.slr_deletion_check(self.account)(service_name)
            if reason is not None:
                return reason
        return None


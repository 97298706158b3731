"""The seams between the RDS control plane and everything that is not metadata.

``RdsService`` never touches PostgreSQL, sockets or secrets itself. It decides *what* should
happen (the API, validation, the state machine, persistence) and asks these interfaces to make
it happen:

* :class:`ClusterRuntime` runs the PostgreSQL server of a cluster and the endpoint listeners of
  its instances (implemented with ``auroral.engine`` and ``auroral.gateway``; tests use a fake).
* :class:`ServiceLinkedRoles` is the part of the IAM directory RDS needs for
  ``AWSServiceRoleForRDS``.
* :class:`MasterSecretManager` is Secrets Manager's side of a managed master password
  (``ManageMasterUserPassword``): the ``rds!cluster-<uuid>`` secret and its rotation
  (``auroral.rds.managed_password``). It reaches back into the control plane through
  :class:`ManagedClusterHost`.

Contract of ``ClusterRuntime`` (every coroutine raises :class:`RuntimeFailure` with a reason a
person can act on; anything else is a bug):

* ``Cluster.parameters`` holds the effective cluster parameter values (engine defaults merged
  with the cluster parameter group) the server must run with. Names are AWS's
  (``rds.force_ssl``, ``password_encryption``...); a runtime applies the ones it understands and
  ignores the others. ``create_cluster``, ``start_cluster`` and ``reboot_cluster`` are always
  called with the current values; ``apply_parameters`` passes changed dynamic values only.
  ``create_cluster``, ``start_cluster`` and ``reboot_cluster`` raise :class:`IncompatibleParameters`
  when PostgreSQL will not run with those values (after ``create_cluster`` the data exists all the
  same: a later ``reboot_cluster`` or ``start_cluster`` with fixed values brings the server up).
* Servers and endpoints are identified by ``Cluster.resource_id`` / ``Instance.resource_id``,
  which never change (identifiers can be renamed).
* ``open_endpoint`` is called for every instance once its cluster's server runs (at create, after
  ``start_cluster`` and at recovery); ``close_endpoint`` before ``stop_cluster`` and when an
  instance is deleted. ``Instance.is_writer`` tells the writer from readers; the runtime reports
  the writer's endpoint as ``cluster_endpoint``. Readers are further endpoints of the same server.
  ``close_endpoint`` and ``stop_cluster`` must be idempotent: after a restart of auroral an
  interrupted stop is finished by calling them for endpoints/servers that are not running.
* Readers are servers of their own (streaming replicas of the writer's): ``open_endpoint`` of a
  reader makes its server the first time, ``delete_instance`` (after ``close_endpoint``, when the
  instance is deleted) removes it. ``failover`` makes a reader's server the primary (the control plane
  then flips ``Instance.is_writer``); ``writer_of`` says which instance runs on the primary (after a
  restart the control plane makes ``is_writer`` agree with it). The status event ``writer-lost`` means
  the writer's server did not come back by itself: the control plane fails over.
* ``rename_instance`` after ``Instance.identifier`` changed: endpoints and servers stay (they are keyed
  by resource id), what they report of the instance takes the new name.
* In ``apply_parameters`` a value ``""`` means "back to PostgreSQL's built-in default" (the
  parameter was reset and AWS's engine default has no value).
* ``create_cluster`` is the only call that sees the master password in plaintext
  (``reset_master_password`` too); the control plane never stores it.
* ``set_status_listener`` registers a callback (one per region: every one is called) for real events the runtime observes on its own
  (a crashed server, a restart by its supervisor): ``fn(cluster_resource_id, status, reason)``
  with status ``available``, ``failed``, ``inaccessible-encryption-credentials``...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from auroral.api.context import RequestContext
    from auroral.rds.model import Cluster, Instance

StatusListener = Callable[[str, str, "str | None"], None]
# A status event: the writer's server did not come back by itself; the control plane fails over.
WRITER_LOST = "writer-lost"


class RuntimeFailure(Exception):
    """The runtime could not do what was asked; ``reason`` is shown to people (logs, audit)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IncompatibleParameters(RuntimeFailure):
    """PostgreSQL refused to run with the cluster's parameters (a value PostgreSQL's own check
    rejects, or a server that exits at start because of them). The server is left stopped with its
    data intact; it starts again once the parameters are fixed (RDS: ``incompatible-parameters``)."""


class ClusterRuntime(Protocol):
    def available_majors(self) -> list[int]:
        """PostgreSQL major versions this runtime can run (``DescribeDBEngineVersions`` lists only these)."""
        ...

    async def create_cluster(self, cluster: Cluster, master_password: str) -> None:
        """Create and start the server and bootstrap the master user and ``DatabaseName``;
        return when PostgreSQL accepts connections."""
        ...

    async def start_cluster(self, cluster: Cluster) -> None: ...

    async def stop_cluster(self, cluster: Cluster) -> None: ...

    async def delete_cluster(self, cluster: Cluster) -> None:
        """Stop the server (if running) and remove its data. Must succeed for a server that
        never got created (a cluster whose creation failed or was interrupted)."""
        ...

    async def reboot_cluster(self, cluster: Cluster) -> None: ...

    async def upgrade_cluster(self, cluster: Cluster) -> None:
        """Run the cluster on ``cluster.engine_version`` / ``cluster.major`` (the target of an engine version
        upgrade, with the target's parameters; every endpoint closed). A minor upgrade restarts every
        server on that major's installation; a major upgrade runs ``pg_upgrade`` (data, roles and passwords
        kept) and leaves the primary running, the readers to be made again when their endpoints open.
        Called again after an interrupted run, it finishes it. RuntimeFailure: the cluster's data is as it
        was before (the old major), its servers stopped."""
        ...

    async def reboot_instance(self, cluster: Cluster, instance: Instance) -> None:
        """Restart a reader's own server (with the cluster's current parameters)."""
        ...

    async def rename_instance(self, cluster: Cluster, instance: Instance) -> None:
        """``instance.identifier`` is new (ModifyDBInstance NewDBInstanceIdentifier): what every server reports
        of it (Aurora's functions) follows, and its established sessions are closed (AWS reboots a renamed
        instance). Nothing to do for an instance whose endpoint is not open."""
        ...

    async def reset_master_password(self, cluster: Cluster, password: str) -> None:
        """Set the master user's password and restore its attributes and ``rds_superuser`` membership."""
        ...

    async def set_master_password(self, cluster: Cluster, password: str) -> None:
        """Change only the master user's password (rotation): nothing else about the role changes,
        established sessions stay open."""
        ...

    async def check_master_login(self, cluster: Cluster, password: str) -> None:
        """Open (and close) a real login of the master user with ``password``; RuntimeFailure if refused."""
        ...

    async def apply_parameters(self, cluster: Cluster, values: Mapping[str, str]) -> None:
        """Apply changed dynamic parameters to the running server (a reload, no restart)."""
        ...

    def allowed_values(self, name: str, major: int) -> str | None:
        """``AllowedValues`` of ``name`` that only the runtime knows (``timezone``: the zone names the
        PostgreSQL serving ``major`` accepts); None: the engine-default table's."""
        ...

    def parameter_refusal(self, name: str, value: str, major: int) -> str | None:
        """Why this runtime cannot honour ``name = value`` in clusters of ``major`` (checked when a
        parameter group is modified: ``InvalidParameterValue`` with this reason); None if it can."""
        ...

    async def open_endpoint(self, cluster: Cluster, instance: Instance) -> tuple[str, int]:
        """Start the endpoint listener of ``instance``; return the ``(address, port)`` clients use."""
        ...

    async def close_endpoint(self, cluster: Cluster, instance: Instance) -> None: ...

    async def delete_instance(self, cluster: Cluster, instance: Instance) -> None:
        """The instance is deleted (its endpoint already closed): remove what runs for it alone."""
        ...

    async def failover(self, cluster: Cluster, target: Instance, *, rejoin: bool = True) -> bool:
        """Make ``target`` (a reader) the writer; the old writer becomes a reader of it (``rejoin``) or
        is left stopped (its instance is being deleted). Returns whether the old writer serves again."""
        ...

    def writer_of(self, cluster: Cluster) -> str | None:
        """The ``DbiResourceId`` of the instance running on the cluster's primary (None: unknown/none)."""
        ...

    def cluster_endpoint(self, cluster: Cluster) -> tuple[str, int] | None:
        """The writer (cluster) endpoint once open, else None."""
        ...

    def set_status_listener(self, fn: StatusListener) -> None: ...

    def log_directory(self, cluster: Cluster, instance: Instance) -> Path | None:
        """Where the PostgreSQL server ``instance`` runs on writes its log files (``engine/logfiles.py``:
        owned by the server's OS user, read only through descriptors); None: it has none (yet)."""
        ...

    async def snapshot_cluster(self, cluster: Cluster, sink: Callable[[bytes], Any], *,
                               running_only: bool = False) -> None:
        """Hand a consistent copy of the running cluster's data (a tar stream) to ``sink`` chunk by chunk
        (``sink`` may return an awaitable); the cluster keeps serving. A stopped cluster's server is started for
        the copy (a final snapshot), unless ``running_only`` (RuntimeFailure then)."""
        ...

    async def restore_cluster(self, cluster: Cluster, chunks: AsyncIterator[bytes], admin_password: str,
                              wal: AsyncIterator[tuple[str, bytes]] | None = None,
                              target_time: str | None = None) -> None:
        """Create the new ``cluster``'s primary from a snapshot's tar stream and start it with the cluster's
        parameters (rdsadmin's password in that data is ``admin_password``); with ``wal`` (archived WAL files
        by name), replay them up to ``target_time`` first (a point-in-time restore)."""
        ...

    def add_wal_listener(self, fn: Callable[[str, str, bytes, float], Awaitable[bool]]) -> None:
        """Told of every finished WAL file of every cluster (continuous archiving): ``await fn(cluster_rid,
        name, data, archived_at)`` says whether it stored it."""
        ...

    async def flush_wal(self, cluster: Cluster) -> bool:
        """Archive the primary's WAL up to now (with a commit record of now) and hand it to the listeners;
        False if the primary does not run or it did not happen in time."""
        ...

    def admin_password_of(self, cluster: Cluster) -> str:
        """rdsadmin's password in the cluster's data (a snapshot keeps it for its restores)."""
        ...



class ServiceLinkedRoles(Protocol):
    """What RDS needs from the IAM directory (``auroral.iam.directory.Directory`` satisfies it)."""

    def service_linked_role_exists(self, service_name: str) -> bool: ...

    def create_service_linked_role(self, service_name: str) -> Any: ...

    def service_may_assume(self, arn: str, service: str, context: dict[str, Any]) -> bool | None:
        """Whether the IAM role ``arn`` trusts ``service`` to assume it (None: no such role), for
        AddRoleToDBCluster and the AssociatedRoles status."""
        ...


class ManagedClusterHost(Protocol):
    """What the managed-password side needs from the RDS control plane (``RdsService``)."""

    def cluster_for_secret(self, account: str, secret_arn: str) -> Cluster | None: ...

    def set_secret_status(self, account: str, secret_arn: str, status: str, reason: str | None = None) -> None:
        """Record ``MasterUserSecret.SecretStatus`` of the cluster owning ``secret_arn``."""
        ...

    def cluster_lock(self, resource_id: str) -> asyncio.Lock:
        """The lock that serializes background work on one cluster."""
        ...


class MasterSecretManager(Protocol):
    """Secrets Manager's side of ``ManageMasterUserPassword=true``.

    The ``MasterUserSecret`` views returned here have exactly ``SecretArn``, ``SecretStatus``
    and ``KmsKeyId``. The password returned by :meth:`create_master_secret` goes to the runtime
    and is forgotten."""

    def bind(self, host: ManagedClusterHost) -> None: ...

    def create_master_secret(
        self, ctx: RequestContext, cluster_arn: str, username: str, kms_key_id: str | None
    ) -> tuple[dict[str, str], str]:
        """Create the ``rds!cluster-<uuid>`` secret with a generated password, authorized as the
        caller (AccessDenied: nothing was created). The view's status is ``creating``."""
        ...

    def password_applied(self, account: str, secret_arn: str) -> None:
        """The database runs with the secret's password: turn on rotation (every 7 days)."""
        ...

    def delete_master_secret(self, account: str, secret_arn: str) -> None: ...

    def reencrypt(self, ctx: RequestContext, secret_arn: str, kms_key_id: str) -> str:
        """Re-encrypt the secret under another KMS key (authorized as the caller); its key ARN."""
        ...

    def rotate_now(self, account: str, secret_arn: str) -> None:
        """Start a rotation now (``RotateMasterUserPassword``); it runs in the background."""
        ...

    def rotation_pending(self, account: str, secret_arn: str) -> bool:
        """Whether Secrets Manager has a rotation of the secret recorded (running, to resume or to retry)."""
        ...

    def current_password(self, account: str, secret_arn: str) -> str | None:
        """AWSCURRENT's password (recovery sets it again when the process died before the database had it)."""
        ...

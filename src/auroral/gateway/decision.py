"""What the gateway asks its owner: the accept-time verdict, the IAM auth plan, the endpoint config.

The gateway knows nothing about security groups, public access or IAM: the owner (the RDS/EC2 layer)
passes plain callables. ``decide`` runs once per connection, at accept time, before a single byte is read
(security groups are stateful: a later rule change does not touch an established connection).
``source_space`` lets the gateway compile ``decide`` into the listener's socket filter, so that a refused
client's SYN is dropped by the kernel (see :mod:`auroral.gateway.synfilter`).
``authenticate`` runs after the startup packet and may hand the gateway an :class:`AuthPlan` saying
"this user logs in with an IAM token; verify it with this, then log in upstream with that password".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from auroral.gateway.startup import StartupInfo


@dataclass(frozen=True)
class ConnectionInfo:
    """The addresses of an accepted TCP connection (real addresses; any translation is the hook's job)."""

    endpoint_id: str
    peer_ip: str
    peer_port: int
    local_ip: str
    local_port: int


@dataclass(frozen=True)
class Verdict:
    """The decision for one connection.

    ``drop_mode`` for a denied connection: ``"timeout"`` holds the socket silently (the client sees a
    timeout, as with a VPC security group); ``"close"`` closes it at once (a closed connection).
    """

    allow: bool
    reason: str
    interface_id: str | None = None
    drop_mode: Literal["timeout", "close"] = "timeout"


@dataclass(frozen=True)
class SourceSpace:
    """Where ``decide``'s verdict may change, for the listener's kernel filter.

    ``boundaries``: IPv4 addresses (as integers) such that ``decide`` gives the same verdict (``allow``
    and ``drop_mode``) for every source address between two consecutive ones, whatever the source port:
    the gateway asks ``decide`` once per interval. ``key`` names the inputs of that answer: while it stays
    equal, the verdicts do too and nothing is recompiled; endpoints whose keys are equal get the same
    verdicts, so one compilation serves them all (None: always compile).
    """

    boundaries: frozenset[int]
    key: Hashable = None


def allow_all(info: ConnectionInfo) -> Verdict:
    return Verdict(True, "allow-all")


@dataclass(frozen=True)
class AuthPlan:
    """How the gateway authenticates a client itself (IAM database authentication).

    ``verify`` checks the token the client sent as its password. The gateway then logs in upstream on
    the client's behalf: with ``db_password`` (SCRAM-SHA-256, or whatever the server asks for), or, when
    it is None, expecting the server to trust the gateway for this user (an immediate AuthenticationOk;
    a request for a password then fails the login). ``audit_event``, asked after a successful
    ``verify``: the ID of the audit event the verification left, which the connection's flow records
    carry (the evidence of who logged in, for the security advisor).
    """

    kind: Literal["iam", "unavailable"]  # unavailable: the instance cannot answer now (57P03)
    verify: Callable[[str], Awaitable[bool]]
    db_password: str | None = None
    audit_event: Callable[[], str | None] | None = None


Decide = Callable[[ConnectionInfo], "Verdict | Awaitable[Verdict]"]
Authenticate = Callable[[StartupInfo, bool, str], "AuthPlan | Awaitable[AuthPlan | None] | None"]
# Told when the gateway refused an upstream AuthenticationOk it had not earned (see ``session``).
UnearnedTrust = Callable[[StartupInfo, str], "Awaitable[None] | None"]


def _never() -> bool:
    return False


def _no_limit() -> int | None:
    return None


@dataclass
class EndpointConfig:
    """One listener. Everything but ``host``/``port`` may change with :meth:`Gateway.update`;
    a change applies to new connections only."""

    endpoint_id: str
    host: str
    port: int
    target_socket: Path
    virtual_port: int = 5432
    server_names: tuple[str, ...] = ()
    force_ssl: Callable[[], bool] = _never
    decide: Decide = allow_all
    authenticate: Authenticate | None = None
    unearned_trust: UnearnedTrust | None = None
    # Users never logged in through this endpoint (the engine's own roles): refused at once, before any
    # hook, as a pg_hba.conf "reject" line would refuse them.
    reserved_users: frozenset[str] = frozenset()
    # Overrides the gateway-wide startup timeout for this endpoint.
    startup_timeout: float | None = None
    # The instance's max_connections, read at every accept (None: only the gateway-wide limits). Every
    # allowed connection counts, from its accept (as a PostgreSQL backend counts from its fork); one over
    # the limit goes through its startup phase and gets FATAL 53300 "sorry, too many clients already".
    max_connections: Callable[[], int | None] = _no_limit
    # Where ``decide`` changes its mind (None: no kernel filter, every SYN is answered and ``decide``
    # runs at accept). Read whenever the gateway refreshes its filters (``Gateway.refresh_filters``).
    source_space: Callable[[], SourceSpace | None] | None = None

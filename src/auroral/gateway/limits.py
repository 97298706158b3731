"""How many connections the gateway takes on, derived from the process's descriptor limit.

All endpoints live in one process and share its descriptors (``RLIMIT_NOFILE``) with the API server,
the store, the PostgreSQL servers' pipes and the control plane's own connections. So:

* at start, :func:`raise_descriptor_limit` lifts the soft limit to the hard one;
* :meth:`GatewayLimits.for_descriptors` keeps a reserve (an eighth of the limit, at least 256) that the
  gateway never uses, and shares the rest between connections in their startup phase ("handshakes":
  accepted, TLS or the startup packet not finished; up to five descriptors each with the native relay's
  socketpair and the upstream socket), silently held denied connections (one each) and relayed ones
  (two each: the client and the Unix socket);
* handshakes are bounded in total and per source address (an IPv6 source by its /64, which one host
  usually has whole), so one source stalling handshakes can neither exhaust descriptors nor take every
  handshake slot. Aurora's own per-source limits are not documented; these are plausible values.

Each instance's own limit (its ``max_connections``, as PostgreSQL enforces it) is the endpoint's
(:attr:`auroral.gateway.decision.EndpointConfig.max_connections`), not a shared one.
"""

from __future__ import annotations

import ipaddress
import logging
import resource
from dataclasses import dataclass

log = logging.getLogger(__name__)

RESERVE_MIN = 256  # descriptors never used by the gateway (API, store, PostgreSQL pipes...), at least
RESERVE_SHARE = 8  # ... and at least 1/8 of the limit
HANDSHAKE_FDS = 5  # client, socketpair (native TLS), upstream, a dup() while handing off
RELAY_FDS = 2  # client and upstream
MAX_HELD = 1024
MAX_HANDSHAKES = 4096
MAX_HANDSHAKES_PER_SOURCE = 128


@dataclass(frozen=True)
class GatewayLimits:
    """``max_connections``: every allowed connection (handshakes included) over all endpoints;
    ``max_handshakes`` (and ``..._per_source``): connections accepted whose startup phase has not ended;
    ``max_held``: denied connections held silently."""

    max_connections: int
    max_handshakes: int
    max_handshakes_per_source: int
    max_held: int

    @classmethod
    def for_descriptors(cls, nofile: int | None = None) -> GatewayLimits:
        """Limits that fit in ``nofile`` descriptors (default: the current soft limit) with headroom."""
        if nofile is None:
            nofile = descriptor_limit()
        budget = max(0, nofile - max(RESERVE_MIN, nofile // RESERVE_SHARE))
        held = max(1, min(MAX_HELD, budget // 8))
        handshakes = max(2, min(MAX_HANDSHAKES, budget // 4 // HANDSHAKE_FDS))
        per_source = max(1, min(MAX_HANDSHAKES_PER_SOURCE, handshakes // 8))
        # what handshakes use beyond a relayed connection's share comes off the connections' budget
        connections = max(handshakes, (budget - held - handshakes * (HANDSHAKE_FDS - RELAY_FDS)) // RELAY_FDS)
        return cls(max_connections=connections, max_handshakes=handshakes,
                   max_handshakes_per_source=per_source, max_held=held)


def descriptor_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def raise_descriptor_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit (an unlimited hard limit: as far as the kernel
    lets a process go, ``fs.nr_open``); returns the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                target = int(f.read().strip())
        except (OSError, ValueError):
            target = 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return descriptor_limit()
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError) as exc:
        log.warning("cannot raise the descriptor limit from %d to %d: %s", soft, target, exc)
    return descriptor_limit()


def source_key(ip: str) -> str:
    """What the per-source handshake limit counts by: an IPv4 address (an IPv4-mapped IPv6 one as
    IPv4), an IPv6 address's /64."""
    if ":" not in ip:
        return ip
    try:
        addr = ipaddress.IPv6Address(ip.partition("%")[0])
    except ValueError:
        return ip
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(addr) >> 64 << 64, 64)))

"""The endpoint gateway: one TCP listener per endpoint, relaying to a private PostgreSQL Unix socket.

PostgreSQL servers listen only on Unix sockets; every network path to them goes through here, so this
is where the network-level rules of Aurora are enforced: the accept-time verdict (security groups,
public access), ``rds.force_ssl``, TLS with the installation's CA, and IAM database authentication.
See :mod:`auroral.gateway.session` for the life of one connection, and :mod:`auroral.gateway.synfilter` for
the kernel filter that drops a refused client's SYN before any of that (its handshake never completes).

All methods must be called from the event loop that runs the gateway (``stats`` reads plain counters).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import socket
from typing import Any

from auroral.gateway.decision import EndpointConfig
from auroral.gateway.flows import FlowLog
from auroral.gateway.limits import GatewayLimits
from auroral.gateway.native import NativeRelay
from auroral.gateway.session import Endpoint, Hub, Session
from auroral.gateway.synfilter import SynGuard
from auroral.gateway.tls import TlsMaterial, host_ips

log = logging.getLogger(__name__)

_FIXED = frozenset({"endpoint_id", "host", "port"})
ACCEPT_BATCH = 64  # accepts a wakeup, as asyncio's backlog-sized loop, bounded so others get their turn
ACCEPT_RETRY_DELAY = 1.0  # out of descriptors or memory: stop accepting this long (as asyncio does)
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


async def _listen(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Listening sockets for ``host`` (every address it resolves to) and ``port``, as
    ``loop.create_server`` makes them: SO_REUSEADDR, IPv6 sockets IPv6-only, non-blocking."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Gateway:
    """``limits``: the gateway-wide bounds; by default derived from the descriptor limit in force now
    (raise it first: :func:`auroral.gateway.limits.raise_descriptor_limit`). Each endpoint's own limit
    is its config's ``max_connections``. ``syn_filter``: drop refused clients' SYNs in the kernel (None:
    when the SYN observer, which needs CAP_NET_RAW, can be opened; see :mod:`auroral.gateway.synfilter`)."""

    def __init__(self, tls: TlsMaterial, flows: FlowLog, *, startup_timeout: float = 10.0,
                 limits: GatewayLimits | None = None, hold_timeout: float = 30.0,
                 backlog: int = 4096, relay: NativeRelay | None = None, syn_filter: bool | None = None) -> None:
        limits = limits or GatewayLimits.for_descriptors()
        self.hub = Hub(tls=tls, flows=flows, startup_timeout=startup_timeout, limits=limits,
                       hold_timeout=hold_timeout, relay=relay)
        self.backlog = backlog
        self._endpoints: dict[str, Endpoint] = {}
        self.syn_guard = SynGuard(self.hub, enabled=syn_filter)
        self.syn_guard.bind(self._endpoints.values)

    @property
    def limits(self) -> GatewayLimits:
        return self.hub.limits

    @property
    def tls(self) -> TlsMaterial:
        return self.hub.tls

    @property
    def flows(self) -> FlowLog:
        return self.hub.flows

    async def open(self, cfg: EndpointConfig) -> int:
        """Start listening for ``cfg``; returns the bound port (useful with ``port=0``)."""
        if cfg.endpoint_id in self._endpoints:
            raise ValueError(f"endpoint {cfg.endpoint_id!r} is already open")
        ep = Endpoint(cfg)
        # Issue the certificate now, not in the first client's handshake.
        self._prepare_tls(cfg)
        # Our own accept, not loop.create_server's: a session starts from the bare socket (no byte may be
        # read before the verdict), and a transport made only to be taken apart again costs a login time.
        ep.listeners = await _listen(cfg.host, cfg.port, self.backlog)
        ep.port = int(ep.listeners[0].getsockname()[1])
        self._endpoints[cfg.endpoint_id] = ep
        try:
            await self.syn_guard.opened(ep)  # the filter, before the first accept
        except BaseException:
            del self._endpoints[cfg.endpoint_id]
            self.syn_guard.closed(ep)
            for sock in ep.listeners:
                sock.close()
            raise
        for sock in ep.listeners:
            self._watch(ep, sock)
        log.info("gateway: %s listening on %s:%d → %s", cfg.endpoint_id, cfg.host, ep.port, cfg.target_socket)
        return ep.port

    def _watch(self, ep: Endpoint, sock: socket.socket) -> None:
        asyncio.get_running_loop().add_reader(sock.fileno(), self._accept, ep, sock)

    def _accept(self, ep: Endpoint, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, peer = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRORS:  # the listener stays readable: pause, or spin
                    log.error("gateway %s: cannot accept (%s); pausing for %.0f s", ep.cfg.endpoint_id, exc,
                              ACCEPT_RETRY_DELAY)
                    loop = asyncio.get_running_loop()
                    loop.remove_reader(sock.fileno())
                    ep.paused[sock] = loop.call_later(ACCEPT_RETRY_DELAY, self._resume, ep, sock)
                else:  # ECONNABORTED and the like: that client is gone, the next one may not be
                    log.debug("gateway %s: accept failed: %s", ep.cfg.endpoint_id, exc)
                return
            self.syn_guard.accepted(ep, conn)
            try:
                Session(self.hub, ep).start(conn, peer)
            except Exception:
                log.exception("gateway %s: accept failed", ep.cfg.endpoint_id)
                conn.close()

    def _resume(self, ep: Endpoint, sock: socket.socket) -> None:
        del ep.paused[sock]
        if sock in ep.listeners:  # not closed meanwhile
            self._watch(ep, sock)

    async def update(self, endpoint_id: str, **changes: Any) -> None:
        """Change an endpoint's config (target socket, hooks, names...). New connections use the new
        config; established ones keep theirs (stateful, like security groups)."""
        ep = self._endpoint(endpoint_id)
        fixed = _FIXED & changes.keys()
        if fixed:
            raise ValueError(f"cannot change {sorted(fixed)} of an open endpoint; close and reopen it")
        new = dataclasses.replace(ep.cfg, **changes)
        if "server_names" in changes:
            self._prepare_tls(new)
        ep.cfg = new
        if changes.keys() & {"decide", "source_space"}:
            await self.syn_guard.refresh([ep], force=True)

    async def refresh_filters(self) -> None:
        """Recompile the listeners' source filters whose inputs changed. The owner awaits it after every
        change that may change a decision, before telling anyone the change is done: the next SYN then
        meets the new rules."""
        await self.syn_guard.refresh()

    def schedule_refresh(self) -> None:
        """:meth:`refresh_filters` soon; callable from any thread (changes made outside an API call)."""
        self.syn_guard.schedule()

    def _prepare_tls(self, cfg: EndpointConfig) -> None:
        if self.hub.relay is not None:
            self.hub.relay.context(self.hub.tls, tuple(cfg.server_names), host_ips(cfg.host))
        else:
            self.hub.tls.server_context(cfg.server_names, host_ips(cfg.host))

    @property
    def relay(self) -> str:
        """Which relay moves the bytes: ``native`` (the C library) or ``python``."""
        return "python" if self.hub.relay is None else "native"

    def port(self, endpoint_id: str) -> int:
        return self._endpoint(endpoint_id).port

    def config(self, endpoint_id: str) -> EndpointConfig:
        return self._endpoint(endpoint_id).cfg

    async def close(self, endpoint_id: str, *, drop_connections: bool = True) -> None:
        ep = self._endpoints.pop(endpoint_id, None)
        if ep is None:
            return
        loop = asyncio.get_running_loop()
        for timer in ep.paused.values():
            timer.cancel()
        for sock in ep.listeners:
            loop.remove_reader(sock.fileno())  # False for a paused one: nothing registered
            sock.close()
        ep.listeners, ep.paused = [], {}
        self.syn_guard.closed(ep)
        if drop_connections:
            for session in list(ep.sessions):
                session.drop()
        await asyncio.sleep(0)  # let the aborted transports report connection_lost

    async def drop_sessions(self, endpoint_id: str) -> int:
        """Close every connection of an open endpoint (the listener stays): after a failover, clients of
        the former writer's endpoint must reconnect, as on Aurora. Returns how many were closed."""
        ep = self._endpoints.get(endpoint_id)
        if ep is None:
            return 0
        sessions = list(ep.sessions)
        for session in sessions:
            session.drop()
        await asyncio.sleep(0)
        return len(sessions)

    async def close_all(self) -> None:
        for endpoint_id in list(self._endpoints):
            await self.close(endpoint_id)
        await self.syn_guard.close()

    def stats(self) -> dict[str, Any]:
        """Counters: per endpoint and in total. ``connections`` counts every accepted socket still open
        (held ones included), ``admitted`` the ones counted against the endpoint's max_connections,
        ``too_many`` those refused for it, ``shed`` those closed at accept for the handshake limits,
        ``handshakes`` the sessions in their startup phase, ``buffered_bytes`` the bytes queued in the gateway's write buffers (the
        native relay's buffers count in the total only: they are the process's)."""
        endpoints: dict[str, Any] = {}
        total_buffered = 0
        for eid, ep in self._endpoints.items():
            states: dict[str, int] = {}
            buffered = 0
            for s in ep.sessions:
                states[s.state] = states.get(s.state, 0) + 1
                buffered += s.client.write_buffer_size() + (s.upstream.write_buffer_size() if s.upstream else 0)
            total_buffered += buffered
            endpoints[eid] = {
                "port": ep.port, "connections": len(ep.sessions), "held": ep.held,
                "relaying": states.get("relaying", 0), "startup": states.get("startup", 0),
                "accepted": ep.accepted, "rejected": ep.rejected, "buffered_bytes": buffered,
                "admitted": ep.admitted, "too_many": ep.too_many, "shed": ep.shed,
            }
        if self.hub.relay is not None:
            total_buffered += self.hub.relay.buffered()
        return {
            "relay": self.relay,
            "endpoints": endpoints,
            "active": self.hub.active,
            "held": self.hub.held,
            "upstream": self.hub.upstreams,
            "handshakes": self.hub.handshakes,
            "shed": self.hub.shed,
            "buffered_bytes": total_buffered,
            "syn_filter": self.syn_guard.stats(),
        }

    def _endpoint(self, endpoint_id: str) -> Endpoint:
        try:
            return self._endpoints[endpoint_id]
        except KeyError:
            raise KeyError(f"no open endpoint {endpoint_id!r}") from None


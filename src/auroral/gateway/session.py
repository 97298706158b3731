"""One accepted connection, from the accept-time verdict to the relay.

    (before any of this, a source the listener's kernel filter refuses never completes its handshake:
    :mod:`auroral.gateway.synfilter`; what gets here is decided again)
    accept ── over the handshake limits (in total, per source address: ``limits``)? close at once
       │
    decide()──► denied: hold silently (bounded count, hold timeout) or close; REJECT flow
             │
             ▼ allowed (ACCEPT flow); counted against the instance's max_connections (over it:
             │   FATAL 53300 "sorry, too many clients already" after the startup packet, as PostgreSQL)
    startup phase (bounded by the startup timeout; a "handshake" for the limits until it ends):
      SSLRequest → 'S' + TLS handshake · GSSENCRequest → 'N' · CancelRequest → forwarded, close
      direct TLS (libpq 17+ ``sslnegotiation=direct``: a TLS record first, ALPN "postgresql" required)
      → TLS handshake at once, then a StartupMessage inside TLS
      StartupMessage → names PostgreSQL would truncate and reserved users refused → force_ssl check
      → authenticate hook (IAM: the gateway runs the password exchange itself, then logs in
      upstream: the server trusts it for that user, or SCRAM) → open the target Unix socket. Without an IAM verification, an upstream AuthenticationOk is refused
      ("upstream trust only after gateway verification").
             │
             ▼
    relay (the login announced to the flow log, ``FlowLog.login``: live until the close record):
    with the native relay (:mod:`auroral.gateway.native`), the library moves the bytes on its
    own thread and reports the close; else two :class:`~auroral.gateway.pipe.Side` protocols splice
    bytes with backpressure. With the native relay a TLS client is terminated in the library from the
    handshake on, and the startup phase reads the decrypted stream from a socketpair.

The target socket and every hook are taken from the endpoint's config *at accept time*; later
updates apply to new connections only. Every failure ends in :meth:`Session.terminate`, never in an
exception escaping to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from auroral.gateway import scram
from auroral.gateway import startup as pg
from auroral.gateway.decision import AuthPlan, ConnectionInfo, EndpointConfig, Verdict
from auroral.gateway.flows import FlowLog, FlowRecord, startup_name
from auroral.gateway.limits import GatewayLimits, source_key
from auroral.gateway.native import Closed, NativeRelay
from auroral.gateway.pipe import HIGH_WATER, LOW_WATER, ConnectionClosed, Side
from auroral.gateway.tls import TlsMaterial, host_ips

log = logging.getLogger(__name__)
T = TypeVar("T")

CANCEL_WAIT = 5.0
TLS_RECORD_HANDSHAKE = 0x16  # the first byte of a TLS ClientHello; a startup packet starts with 0x00
ALPN_POSTGRESQL = "postgresql"
TLS_SHUTDOWN_TIMEOUT = 5.0
TOO_MANY = ("53300", "sorry, too many clients already")  # PostgreSQL's FATAL from ProcessStartupPacket
State = Literal["deciding", "held", "startup", "relaying", "closed"]


@dataclass
class Hub:
    """What all sessions of one gateway share."""

    tls: TlsMaterial
    flows: FlowLog
    startup_timeout: float
    limits: GatewayLimits
    hold_timeout: float
    relay: NativeRelay | None = None  # None: relay in Python
    active: int = 0  # allowed sessions not yet finished
    held: int = 0
    upstreams: int = 0  # open upstream (Unix socket) connections
    handshakes: int = 0  # sessions accepted whose startup phase has not ended
    sources: dict[str, int] = field(default_factory=dict)  # handshakes per source (limits.source_key)
    shed: int = 0  # connections closed at accept: over a handshake limit


@dataclass(eq=False)
class Endpoint:
    """A listener's live state."""

    cfg: EndpointConfig
    listeners: list[socket.socket] = field(default_factory=list)
    # listeners whose accepts are paused (out of descriptors), with the timer that resumes them
    paused: dict[socket.socket, asyncio.TimerHandle] = field(default_factory=dict)
    port: int = 0
    sessions: set[Session] = field(default_factory=set)
    held: int = 0
    accepted: int = 0
    rejected: int = 0
    admitted: int = 0  # allowed sessions counted against the instance's max_connections
    too_many: int = 0  # allowed sessions over it (refused with 53300)
    shed: int = 0


async def _maybe_await(value: T | Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _describe_tls(transport: asyncio.BaseTransport) -> str:
    """``"<version> <cipher> <bits>"`` of a TLS transport, as the native relay describes its own."""
    ssl_object = transport.get_extra_info("ssl_object")
    cipher = ssl_object.cipher() if ssl_object is not None else None
    if not cipher:
        return ""
    return f"{ssl_object.version()} {cipher[0]} {cipher[2]}"


async def _flushed(side: Side) -> None:
    """Wait until ``side``'s transport has written everything it queued (normally it already has)."""
    while side.write_buffer_size() > 0 and not side.closed:
        await asyncio.sleep(0.001)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Session:
    _ids = itertools.count(1)

    def __init__(self, hub: Hub, endpoint: Endpoint) -> None:
        self.id = next(self._ids)
        self.hub, self.endpoint, self.cfg = hub, endpoint, endpoint.cfg
        self.client = Side(self)
        self.upstream: Side | None = None
        self.state: State = "deciding"
        self.tls = False
        self.info: ConnectionInfo | None = None
        self.startup: pg.StartupInfo | None = None  # the client's startup packet, once read
        self.relayed = False  # the login reached the relay
        self.audit_event_id: str | None = None  # an IAM login's: the audit event of its verification
        self.verdict: Verdict | None = None
        self.started = time.time()
        self._task: asyncio.Task[None] | None = None
        self._hold_timer: asyncio.TimerHandle | None = None
        self._counted = False
        self._admitted = False  # counted in endpoint.admitted
        self._too_many = False  # over the instance's max_connections: refused after the startup packet
        self._source: str | None = None  # the handshake slot this session holds (its source key)
        self._finished = False
        # The accepted socket, detached from its first transport until the startup phase knows whether
        # the client speaks TLS at once (then it gets a TLS transport) or not (a plain one).
        self._raw: socket.socket | None = None
        self._raw_watched = False  # a reader is registered on it (the peek)
        self.tls_desc = ""  # "<version> <cipher> <bits>" of the client's TLS, for the server (auroral.client)
        self._native_tls = False  # the native relay terminates this client's TLS (since the handshake)
        self._native_relay = False  # the native relay moves this connection's bytes (after the handoff)

    def start(self, sock: socket.socket, peer: Any) -> None:
        """Take a socket the listener accepted. Not a byte is read before the verdict, nor before the
        first byte was peeked at (direct TLS needs the ClientHello left in the socket for its TLS
        transport): the socket stays bare until the startup phase gives it a transport, or the
        native relay."""
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio's TCP transports do
            local = sock.getsockname()
        except OSError:  # reset already
            sock.close()
            return
        self.info = ConnectionInfo(self.cfg.endpoint_id, str(peer[0]), int(peer[1]), str(local[0]), int(local[1]))
        if not self._take_handshake_slot():
            self.hub.shed += 1
            self.endpoint.shed += 1
            log.debug("gateway %s: too many handshakes (from %s): closed", self.cfg.endpoint_id, self.info.peer_ip)
            with contextlib.suppress(OSError):  # a reset: no TIME_WAIT kept for a connection never served
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            return
        self._raw = sock
        self.endpoint.sessions.add(self)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _take_handshake_slot(self) -> bool:
        """A connection in its startup phase holds descriptors (up to five with the native relay)
        until it logs in or the startup timeout ends it: bounded in total and per source."""
        assert self.info is not None
        hub, key = self.hub, source_key(self.info.peer_ip)
        mine = hub.sources.get(key, 0)
        if hub.handshakes >= hub.limits.max_handshakes or mine >= hub.limits.max_handshakes_per_source:
            return False
        hub.handshakes += 1
        hub.sources[key] = mine + 1
        self._source = key
        return True

    def _end_handshake(self) -> None:
        key, self._source = self._source, None
        if key is None:
            return
        self.hub.handshakes -= 1
        left = self.hub.sources[key] - 1
        if left:
            self.hub.sources[key] = left
        else:
            del self.hub.sources[key]

    # -- Side owner callbacks ----------------------------------------------------------------------
    def side_made(self, side: Side) -> None:
        if side is not self.client:
            self.hub.upstreams += 1
        # the client's: the transport made by _attach, of a session already running

    def side_lost(self, side: Side, exc: Exception | None) -> None:
        if side is self.client:
            if self.upstream is not None:
                self.upstream.close()
            self._finish()
        else:
            self.hub.upstreams -= 1
            self.client.close()  # flushes what the server sent last (e.g. an ErrorResponse)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            verdict = await self._decide()
            self.verdict = verdict
            self._flow("open")
            if not verdict.allow:
                self.endpoint.rejected += 1
                await self._deny(verdict)
                return
            self.endpoint.accepted += 1
            self.hub.active += 1
            self._counted = True
            if self.hub.active > self.hub.limits.max_connections:  # the process's descriptors
                await self._attach(None)
                self.client.write(pg.error_response(*TOO_MANY, routine="ProcessStartupPacket"))
                self.client.close()
                return
            limit = self.cfg.max_connections()
            if limit is not None and self.endpoint.admitted >= limit:
                self._too_many = True
                self.endpoint.too_many += 1
            else:
                self._admitted = True
                self.endpoint.admitted += 1
            self.state = "startup"
            timeout = self.cfg.startup_timeout or self.hub.startup_timeout
            async with asyncio.timeout(timeout):
                await self._startup()
        except (ConnectionClosed, TimeoutError, ConnectionError, ssl.SSLError, pg.ProtocolViolation) as e:
            log.debug("gateway %s #%d: closing during startup: %r", self.cfg.endpoint_id, self.id, e)
            self.terminate()
        except asyncio.CancelledError:
            self.terminate()
        except Exception:
            log.exception("gateway %s #%d: startup failed", self.cfg.endpoint_id, self.id)
            self.terminate()

    async def _decide(self) -> Verdict:
        assert self.info is not None
        try:
            verdict = await _maybe_await(self.cfg.decide(self.info))
            if not isinstance(verdict, Verdict):
                raise TypeError(f"decide returned {verdict!r}")
            return verdict
        except Exception as e:  # a broken hook fails closed
            log.exception("gateway %s: decide hook failed", self.cfg.endpoint_id)
            return Verdict(False, f"decision error: {e}", drop_mode="close")

    async def _deny(self, verdict: Verdict) -> None:
        self._end_handshake()  # held ones have their own bound (max_held)
        if verdict.drop_mode == "close" or self.hub.held >= self.hub.limits.max_held:
            self._close_raw()
            self._finish()
            return
        await self._attach(None)
        self.state = "held"
        self.hub.held += 1
        self.endpoint.held += 1
        self.client.discard = True
        self.client.pause(False)  # read and drop, so a client that gives up frees its slot at once
        self._hold_timer = asyncio.get_running_loop().call_later(self.hub.hold_timeout, self.client.abort)

    def terminate(self) -> None:
        """Abort both sides now. Also finishes the session: a transport that dies inside a TLS handshake
        never reports ``connection_lost`` to our protocol."""
        if self.upstream is not None:
            self.upstream.abort()
        self.client.abort()
        self._close_raw()
        if self._native_relay and self.hub.relay is not None and not self._finished:
            self.hub.relay.close(self.id)  # its close report finds no watcher: _finish runs now
        self._finish()

    def drop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.terminate()

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self.state = "closed"
        self.client.closed = True
        self._close_raw()
        self._end_handshake()
        if self._admitted:
            self.endpoint.admitted -= 1
        if self._native_relay and self.hub.relay is not None:
            self.hub.relay.unwatch(self.id)
            self.hub.upstreams -= 1
        if self._task is not None and not self._task.done() and self._task is not asyncio.current_task():
            self._task.cancel()
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self.hub.held -= 1
            self.endpoint.held -= 1
        if self._counted:
            self.hub.active -= 1
        self.endpoint.sessions.discard(self)
        if self.verdict is not None:
            self._flow("close")

    def _flow(self, phase: Literal["open", "close"]) -> None:
        record = self._flow_record(phase, with_login=phase == "close")
        if record is not None:
            self.hub.flows.record(record)

    def _flow_record(self, phase: Literal["open", "close"], *, with_login: bool) -> FlowRecord | None:
        """The connection's record of ``phase``; ``with_login``: with what the startup packet said (the
        close record's, and the live login's: an open record never written with it)."""
        v, info = self.verdict, self.info
        if v is None or info is None:
            return None
        up = self.upstream
        closing = phase == "close"
        startup = self.startup if with_login else None
        return FlowRecord(
            account_id=self.hub.flows.account_id, interface_id=v.interface_id or "-",
            srcaddr=info.peer_ip, dstaddr=info.local_ip, srcport=info.peer_port, dstport=self.cfg.virtual_port,
            start=int(self.started), end=int(time.time()), action="ACCEPT" if v.allow else "REJECT",
            reason=v.reason, endpoint_id=self.cfg.endpoint_id, connection_id=self.id, phase=phase,
            packets=self.client.reads if closing else 0,
            bytes=self.client.bytes_in if closing else 0,
            packets_out=(up.reads if up else 0) if closing else 0,
            bytes_out=((up.bytes_in if up else 0) + self.client.bytes_written) if closing else 0,
            db_user=startup_name(startup.user) if startup is not None else None,
            application_name=startup_name(startup.params.get("application_name")) if startup is not None else None,
            tls=self.tls if startup is not None else None, relayed=self.relayed,
            audit_event_id=self.audit_event_id if startup is not None else None,
        )

    def _announce_login(self) -> None:
        """The login reached the relay: the flow log holds it as live until the close record (the
        security advisor counts a login when it happens: an application's pool holds its sessions
        open for hours). Not for a session that finished meanwhile: its close record is written."""
        if self._finished:
            return
        record = self._flow_record("open", with_login=True)
        if record is not None:
            self.hub.flows.login(record)

    # -- the startup phase -------------------------------------------------------------------------
    async def _startup(self) -> None:
        client = self.client
        if await self._peek_first_byte() == TLS_RECORD_HANDSHAKE:
            if self.hub.relay is not None:
                await self._native_handshake(direct=True)
            elif not await self._start_direct_tls():
                return
        elif self.hub.relay is not None and self._take_ssl_request():
            await self._native_handshake(direct=False)
        else:
            await self._attach(None)
        client.pause(False)
        while True:
            body = await client.read_startup_packet()
            code = pg.packet_code(body)
            if code == pg.SSL_REQUEST and len(body) == 4 and not self.tls:
                if self.hub.relay is not None:
                    if client.buf:  # bytes sent before the handshake would be read as if encrypted
                        raise pg.ProtocolViolation("received unencrypted data after SSL request")
                    await self._native_handshake(direct=False)
                    continue
                client.write(b"S")
                if client.buf:
                    raise pg.ProtocolViolation("received unencrypted data after SSL request")
                await self._start_tls()
            elif code == pg.GSSENC_REQUEST and len(body) == 4 and not self.tls:
                client.write(b"N")
            elif code == pg.CANCEL_REQUEST:
                await self._forward_cancel(body)
                return
            elif code >> 16 == 3:
                await self._login(pg.parse_startup(body))
                return
            else:
                if code >> 16 not in (1, 2, 3) or code in (pg.SSL_REQUEST, pg.GSSENC_REQUEST):
                    raise pg.ProtocolViolation(f"unexpected startup packet code {code}")
                client.write(pg.error_response(
                    "0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: "
                             "server supports 3.0 to 3.0"))
                client.close()
                return

    async def _start_tls(self) -> None:
        ctx = self.hub.tls.server_context(self.cfg.server_names, host_ips(self.cfg.host))
        transport = self.client.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        new = await loop.start_tls(transport, self.client, ctx, server_side=True,
                                   ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT)
        if new is None:
            raise ConnectionClosed()
        new.set_write_buffer_limits(HIGH_WATER, LOW_WATER)
        self.client.transport = new
        self.tls = True
        self.tls_desc = _describe_tls(new)

    def _close_raw(self) -> None:
        raw, self._raw = self._raw, None
        if raw is None:
            return
        if self._raw_watched:  # unregister before the descriptor (number) can be closed and reused
            self._raw_watched = False
            asyncio.get_running_loop().remove_reader(raw.fileno())
        raw.close()

    async def _attach(self, ctx: ssl.SSLContext | None) -> asyncio.Transport:
        """Give the detached client socket a transport (TLS server side with ``ctx``) for ``self.client``."""
        sock, self._raw = self._raw, None
        if sock is None or self._finished:
            raise ConnectionClosed()
        loop = asyncio.get_running_loop()
        # once handed over, the loop owns the socket, and closes it if the handshake fails
        if ctx is None:
            transport, _ = await loop.connect_accepted_socket(lambda: self.client, sock)
        else:
            transport, _ = await loop.connect_accepted_socket(lambda: self.client, sock, ssl=ctx,
                                                              ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT)
        if self._finished:  # dropped meanwhile
            transport.abort()
            raise ConnectionClosed()
        return transport

    async def _peek_first_byte(self) -> int | None:
        """The client's first byte, left unread: a startup packet starts with a length word (0x00 first),
        direct TLS with a TLS record (0x16). ``loop.start_tls`` cannot take bytes a transport already
        read, so the ClientHello must stay in the socket for the TLS transport. None at EOF."""
        sock = self._raw
        if sock is None:
            raise ConnectionClosed()
        fd = sock.fileno()
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = sock.recv(1, socket.MSG_PEEK)
                return data[0] if data else None
            except (BlockingIOError, InterruptedError):
                pass
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _set_once, ready)
            self._raw_watched = True
            try:
                await ready
            finally:
                if self._raw_watched:  # else _close_raw already removed it
                    self._raw_watched = False
                    loop.remove_reader(fd)

    def _take_ssl_request(self) -> bool:
        """The common start of a TLS client (libpq's default ``sslnegotiation=postgres``): an SSLRequest
        and nothing after it. Taken from the bare socket, the library answers it and runs the
        handshake, and the socket never needs a transport of its own. Anything else (a StartupMessage,
        a GSSENCRequest, bytes after the request, a partial packet) stays in the socket for the general
        path, which also refuses unencrypted bytes sent after an SSLRequest."""
        sock = self._raw
        if sock is None:
            return False
        try:
            if sock.recv(len(pg.SSL_REQUEST_PACKET) + 1, socket.MSG_PEEK) != pg.SSL_REQUEST_PACKET:
                return False
            sock.recv(len(pg.SSL_REQUEST_PACKET))
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            raise ConnectionClosed() from exc
        return True

    async def _start_direct_tls(self) -> bool:
        """Direct TLS (libpq 17+ ``sslnegotiation=direct``): the handshake at once, ALPN "postgresql"
        required as PostgreSQL 17 does; then a StartupMessage inside TLS (no SSLRequest)."""
        ctx = self.hub.tls.server_context(self.cfg.server_names, host_ips(self.cfg.host))
        transport = await self._attach(ctx)
        self.tls = True
        self.tls_desc = _describe_tls(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn != ALPN_POSTGRESQL:
            log.debug("gateway %s #%d: direct TLS without ALPN (%r)", self.cfg.endpoint_id, self.id, alpn)
            self._refuse(pg.error_response(
                "08P01", "received direct SSL connection request without ALPN protocol negotiation extension"))
            return False
        return True

    # -- the native relay --------------------------------------------------------------------------
    async def _native_handshake(self, *, direct: bool) -> None:
        """Hand the client socket to the native relay for the TLS handshake (after an SSLRequest,
        which the library answers 'S', or at once for direct TLS, where it requires ALPN "postgresql");
        the startup phase goes on over a socketpair carrying the decrypted stream."""
        relay = self.hub.relay
        assert relay is not None
        ctx = relay.context(self.hub.tls, tuple(self.cfg.server_names), host_ips(self.cfg.host))
        if self.client.transport is None:  # still the bare socket (direct TLS, or _take_ssl_request)
            sock, self._raw = self._raw, None
            if sock is None or self._finished:
                raise ConnectionClosed()
        else:
            sock = self._detach(self.client)
        # after an SSLRequest (direct=False) the library sends the 'S' first
        mine, theirs = socket.socketpair()
        mine.setblocking(False)
        relay.tls(self.id, sock.detach(), theirs.detach(), ctx, direct=direct)
        self._native_tls = self.tls = True
        transport, _ = await asyncio.get_running_loop().connect_accepted_socket(lambda: self.client, mine)
        if self._finished:
            transport.abort()
            raise ConnectionClosed()
        (length,) = await self.client.read_exactly(1)  # the library's word on the TLS session
        self.tls_desc = (await self.client.read_exactly(length)).decode("ascii", "replace")

    async def _native_handoff(self, relay: NativeRelay, upstream: Side, first: bytes) -> None:
        """From here the library moves this connection's bytes. What we read but did not pass on goes
        with the handoff, in order (``first``, then the server's bytes, to the client); for a TLS client
        our end of the socketpair goes too, and the library reads both ends out in one step."""
        await _flushed(self.client)
        await _flushed(upstream)
        client = self._detach(self.client)
        try:
            up = self._detach(upstream)
        except ConnectionClosed:  # the server went away: its transport reports it as usual
            client.close()
            raise
        self._native_relay = True  # from here _finish accounts for the upstream socket
        to_client, to_upstream = first + bytes(upstream.buf), bytes(self.client.buf)
        upstream.buf.clear()
        self.client.buf.clear()
        relay.watch(self.id, self._native_closed)
        if self._native_tls:
            relay.handoff(self.id, up.detach(), client.detach(), to_client, to_upstream)
        else:
            relay.plain(self.id, client.detach(), up.detach(), to_client, to_upstream)

    def _native_closed(self, closed: Closed) -> None:
        self.client.bytes_in += closed.client_bytes
        self.client.reads += closed.client_reads
        if self.upstream is not None:
            self.upstream.bytes_in += closed.upstream_bytes
            self.upstream.reads += closed.upstream_reads
        self._finish()

    def _detach(self, side: Side) -> socket.socket:
        """Take ``side``'s socket from its transport (which reads no more and closes only its own
        descriptor) without a byte of its stream lost: what the transport read stays in ``side.buf``."""
        transport = side.transport
        if transport is None or side.closed or transport.is_closing():
            raise ConnectionClosed()
        sock = transport.get_extra_info("socket")
        dup = socket.socket(fileno=os.dup(sock.fileno()))
        transport.set_protocol(asyncio.Protocol())
        transport.abort()
        side.transport = None
        return dup

    async def _forward_cancel(self, body: bytes) -> None:
        packet = (len(body) + 4).to_bytes(4, "big") + body
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.cfg.target_socket))
        except OSError:
            self.client.close()
            return
        try:
            writer.write(packet)
            await writer.drain()
            # like libpq, wait for the server to close: the cancel has been handled by then
            async with asyncio.timeout(CANCEL_WAIT):
                await reader.read()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()
            self.client.close()

    async def _login(self, info: pg.StartupInfo) -> None:
        assert self.info is not None
        self.startup = info
        if self._too_many:  # PostgreSQL says so once it has read the startup packet (cancels still work)
            self._refuse(pg.error_response(*TOO_MANY, routine="ProcessStartupPacket"))
            return
        # before any authorization, for every way of logging in: names PostgreSQL would truncate (an
        # IAM token authorizes the name as given), then the users nobody logs in as
        too_long = pg.name_too_long_error(info)
        if too_long is not None:
            self._refuse(too_long)
            return
        if info.user in self.cfg.reserved_users:
            self._refuse(pg.hba_reject_error(self.info.peer_ip, info.user, info.database, self.tls))
            return
        if not self.tls and self.cfg.force_ssl():
            self._refuse(pg.no_encryption_error(self.info.peer_ip, info.user, info.database))
            return
        plan: AuthPlan | None = None
        auth_ok = b""  # ours to send, after an IAM login
        if self.cfg.authenticate is not None:
            plan = await _maybe_await(self.cfg.authenticate(info, self.tls, self.info.peer_ip))
        if plan is not None and plan.kind == "unavailable":
            self._refuse(pg.not_accepting_connections())
            return
        if plan is not None and plan.kind == "iam" and not await self._client_password_ok(info, plan):
            return
        upstream = await self._connect_upstream()
        if upstream is None:
            return
        client = f"{self.info.peer_ip} {self.info.peer_port}" + (f" {self.tls_desc}" if self.tls_desc else "")
        upstream.write(pg.upstream_startup(info, client, f"{self.info.local_ip} {self.info.local_port}"))
        if plan is not None:
            try:
                await scram.login(upstream, info.user, plan.db_password, forward=self.client.write)
            except scram.UpstreamRefused as e:
                log.warning("gateway %s: upstream login for %r refused: %s", self.cfg.endpoint_id, info.user, e)
                self._refuse(e.raw)
                return
            except scram.PasswordRequired as e:
                log.warning("gateway %s: upstream login for %r: %s", self.cfg.endpoint_id, info.user, e)
                upstream.abort()
                self._refuse(pg.pam_failure(info.user))
                return
            auth_ok = pg.auth_request(pg.AUTH_OK)
        elif not await self._first_auth_message_earned(info, upstream):
            return
        self.state = "relaying"
        self.relayed = True
        self._announce_login()
        self._end_handshake()
        if self.hub.relay is not None:  # AuthenticationOk goes with the handoff: one wakeup less
            await self._native_handoff(self.hub.relay, upstream, auth_ok)
            return
        if auth_ok:
            self.client.write(auth_ok)
        upstream.start_relay(self.client)
        self.client.start_relay(upstream)

    async def _first_auth_message_earned(self, info: pg.StartupInfo, upstream: Side) -> bool:
        """The gateway's invariant: upstream trust only after gateway verification. Without an IAM
        verification on this connection, the server's first authentication message must be a request
        for the client's credentials, never an AuthenticationOk (which PostgreSQL sends to users it
        trusts the gateway for: a stale IAM listing, or a race with a concurrent IAM login). What comes
        before it (NegotiateProtocolVersion) and the message itself are passed on; then the relay."""
        while True:
            kind, body = await upstream.read_message(pg.MAX_AUTH_MESSAGE)
            if kind == b"R" and len(body) >= 4 and int.from_bytes(body[:4], "big") == pg.AUTH_OK:
                log.warning("gateway %s #%d: refused an unverified upstream AuthenticationOk for %r",
                            self.cfg.endpoint_id, self.id, info.user)
                upstream.abort()
                hook = self.cfg.unearned_trust
                if hook is not None:  # before the client hears: a retry then finds the stale trust gone
                    try:
                        await _maybe_await(hook(info, self.info.peer_ip if self.info else ""))
                    except Exception:
                        log.exception("gateway %s: unearned-trust hook failed", self.cfg.endpoint_id)
                self._refuse(pg.pam_failure(info.user))
                return False
            self.client.write(pg.message(kind, body))
            if kind not in (b"v", b"N"):
                return True

    async def _client_password_ok(self, info: pg.StartupInfo, plan: AuthPlan) -> bool:
        """IAM authentication: the token arrives as a cleartext password (hence TLS only)."""
        if not self.tls:
            self._refuse(pg.pam_failure(info.user))
            return False
        self.client.write(pg.auth_request(pg.AUTH_CLEARTEXT))
        kind, body = await self.client.read_message(pg.MAX_AUTH_MESSAGE)
        if kind != b"p":
            raise pg.ProtocolViolation(f"expected password response, got message type {kind!r}")
        token = body.rstrip(b"\0").decode(errors="replace")
        try:
            ok = bool(await plan.verify(token))
        except Exception:
            log.exception("gateway %s: token verification failed", self.cfg.endpoint_id)
            ok = False
        if not ok:
            self._refuse(pg.pam_failure(info.user))
        elif plan.audit_event is not None:
            self.audit_event_id = plan.audit_event()
        return ok

    async def _connect_upstream(self) -> Side | None:
        loop = asyncio.get_running_loop()
        side = Side(self)
        try:
            await loop.create_unix_connection(lambda: side, str(self.cfg.target_socket))
        except OSError as e:
            log.warning("gateway %s: cannot reach %s: %s", self.cfg.endpoint_id, self.cfg.target_socket, e)
            self._refuse(pg.error_response("57P03", "the database system is not accepting connections"))
            return None
        self.upstream = side
        if self.client.closed:
            side.close()
            return None
        return side

    def _refuse(self, error: bytes) -> None:
        self.client.write(error)
        self.client.close()

"""One side of a relayed connection: an asyncio Protocol that reads messages, then splices.

A :class:`Side` has two modes. During the startup phase it buffers what arrives (bounded: above
``BUFFER_LIMIT`` it pauses reading) and coroutines read whole packets from it with
:meth:`read_exactly` / :meth:`read_message`. After :meth:`start_relay` every ``data_received`` is
written straight to the peer's transport, with no copy and no task switch: that is the hot path.

Backpressure is the aiohttp/asyncpg pattern: when a side's transport calls ``pause_writing`` (its write
buffer passed ``HIGH_WATER``), reading on the *peer* pauses; ``resume_writing`` resumes it. So the
memory held per connection is at most ``HIGH_WATER`` plus one read (256 KiB for a socket transport) in
each direction, whatever the client does. Errors inside callbacks never escape: they abort the
connection, and ``connection_lost`` tells the owner, which closes the peer.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Protocol, cast

from auroral.gateway import startup as pg

log = logging.getLogger(__name__)

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
BUFFER_LIMIT = 64 * 1024


class ConnectionClosed(Exception):
    """The peer closed (or sent EOF) while we waited for bytes."""


class Owner(Protocol):
    def side_made(self, side: Side) -> None: ...

    def side_lost(self, side: Side, exc: Exception | None) -> None: ...


class Side(asyncio.Protocol):
    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.peer: Side | None = None
        self.buf = bytearray()
        self.closed = False
        self.eof = False
        self.discard = False  # a held (denied) socket: read and drop, so we notice the client leaving
        self.bytes_in = 0
        self.reads = 0
        self.bytes_written = 0  # gateway-originated messages (errors, auth), not relayed bytes
        self._relay: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._own_pause = False
        self._peer_pause = False

    # -- asyncio callbacks -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)
        try:
            self.owner.side_made(self)
        except Exception:
            log.exception("gateway: accept failed")
            self.abort()

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        self.reads += 1
        relay = self._relay
        if relay is not None:
            try:
                relay.write(data)
            except Exception:
                log.exception("gateway: relay write failed")
                self.abort()
            return
        if self.discard:
            return
        self.buf += data
        if len(self.buf) > BUFFER_LIMIT:
            self.pause(True)
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close our side; connection_lost then closes the peer

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._relay = None
        self._wake()
        try:
            self.owner.side_lost(self, exc)
        except Exception:
            log.exception("gateway: cleanup failed")

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer._peer_pause = True
            self.peer._sync_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer._peer_pause = False
            self.peer._sync_reading()

    # -- control -----------------------------------------------------------------------------------
    def pause(self, paused: bool) -> None:
        """Pause/resume reading for our own reasons (decision pending, startup buffer full)."""
        self._own_pause = paused
        self._sync_reading()

    def _sync_reading(self) -> None:
        t = self.transport
        if t is None or self.closed or t.is_closing():
            return
        if self._own_pause or self._peer_pause:
            t.pause_reading()
        else:
            t.resume_reading()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def write(self, data: bytes) -> None:
        t = self.transport
        if t is not None and not self.closed and not t.is_closing():
            self.bytes_written += len(data)
            t.write(data)

    def write_buffer_size(self) -> int:
        t = self.transport
        if t is None or self.closed:
            return 0
        try:
            return t.get_write_buffer_size()
        except AttributeError:  # an SSL transport whose connection is already gone (asyncio 3.11)
            return 0

    def close(self) -> None:
        """Close after flushing what is already queued."""
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def start_relay(self, peer: Side) -> None:
        """From now on everything read from this side goes to ``peer`` (what is buffered first)."""
        self.peer, peer.peer = peer, self
        if peer.transport is None or peer.closed:
            self.close()
            return
        if self.buf:
            peer.transport.write(bytes(self.buf))
            self.buf.clear()
        self._relay = peer.transport
        self.pause(False)

    # -- reading during the startup phase ----------------------------------------------------------
    async def read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if self.closed or self.eof:
                raise ConnectionClosed()
            if self._own_pause:  # the caller wants more than we buffered: let it in
                self.pause(False)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self.buf[:n])
        del self.buf[:n]
        if self._own_pause and len(self.buf) <= BUFFER_LIMIT:
            self.pause(False)
        return data

    async def read_startup_packet(self) -> bytes:
        """An untyped startup packet's body (without the length word), length checked as PostgreSQL does."""
        (length,) = struct.unpack("!I", await self.read_exactly(4))
        if length < pg.MIN_STARTUP_PACKET or length > pg.MAX_STARTUP_PACKET:
            raise pg.ProtocolViolation("invalid length of startup packet")
        return await self.read_exactly(length - 4)

    async def read_message(self, max_length: int) -> tuple[bytes, bytes]:
        """A typed message: (kind byte, payload)."""
        header = await self.read_exactly(5)
        (length,) = struct.unpack_from("!I", header, 1)
        if length < 4 or length > max_length:
            raise pg.ProtocolViolation(f"invalid message length {length}")
        return header[:1], await self.read_exactly(length - 4)

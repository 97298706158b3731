"""An authoritative DNS server for the zone, over UDP and TCP, in auroral's asyncio loop.

It answers the way Route 53 answers for Aurora's names: a query for a cluster, reader or custom
endpoint gets the CNAME to an instance name and that name's A records in one answer; every record
has a TTL of 5 seconds ("Aurora DNS zones use a short Time-To-Live (TTL) of five seconds", Aurora
MySQL DBA handbook, "DNS caching"). A name with several CNAMEs (the reader endpoint) answers with
one of them per query, in turn; several A records come in a rotated order. Unknown names under
``rds.amazonaws.com`` (and ``.com.cn``) are NXDOMAIN; anything else is REFUSED: this server does
not recurse, so pointing a resolver at it for more than those suffixes breaks nothing silently.

:func:`answer` is the whole protocol, wire bytes in, wire bytes out (or ``None``: drop). Packets
that do not parse, and responses (QR set), are dropped without a reply; nothing a client sends can
raise out of a callback. TCP connections are few, small and short-lived (idle timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from typing import cast

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from auroral.dns.records import CNAME, MAX_CHAIN, A, Zone

log = logging.getLogger(__name__)

__all__ = ["SERVED_SUFFIXES", "TTL", "DnsServer", "Rotation", "answer", "served_suffix"]

TTL = 5
SERVED_SUFFIXES = ("rds.amazonaws.com", "rds.amazonaws.com.cn")
UDP_PLAIN_LIMIT = 512  # without EDNS (RFC 1035 4.2.1)
UDP_EDNS_LIMIT = 1232  # the DNS flag day 2020 default: no IP fragmentation
TCP_IDLE_SECONDS = 10.0
TCP_MAX_CONNECTIONS = 64
_SOA_SERIAL = 1


def served_suffix(name: str) -> str | None:
    """The served suffix ``name`` (lowercase, no final dot) is under, or ``None``."""
    for suffix in sorted(SERVED_SUFFIXES, key=len, reverse=True):
        if name == suffix or name.endswith("." + suffix):
            return suffix
    return None


class Rotation:
    """Per-name turn counters (thread-safe): which CNAME answers next, how far A records rotate."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turns: dict[str, int] = {}

    def next(self, name: str) -> int:
        with self._lock:
            if len(self._turns) >= self.LIMIT and name not in self._turns:
                self._turns.clear()  # bounded: only names with several records are counted
            turn = self._turns.get(name, 0)
            self._turns[name] = turn + 1
            return turn


def _soa(suffix: str) -> dns.rrset.RRset:
    """The SOA of a negative answer (its minimum is the negative-caching TTL, RFC 2308)."""
    apex = suffix + "."
    return dns.rrset.from_text(apex, TTL, "IN", "SOA",
                               f"ns.{apex} hostmaster.{apex} {_SOA_SERIAL} 7200 900 1209600 {TTL}")


def _respond(query: dns.message.Message, zone: Zone, rotation: Rotation) -> dns.message.Message:
    response = dns.message.make_response(query, our_payload=UDP_EDNS_LIMIT)
    response.flags &= ~dns.flags.RA  # no recursion, ever
    if query.opcode() != dns.opcode.QUERY:
        response.set_rcode(dns.rcode.NOTIMP)
        return response
    if len(query.question) != 1:
        response.set_rcode(dns.rcode.FORMERR)
        return response
    question = query.question[0]
    qname = question.name.to_text(omit_final_dot=True).lower()
    suffix = served_suffix(qname)
    if suffix is None or question.rdclass != dns.rdataclass.IN:
        response.set_rcode(dns.rcode.REFUSED)
        return response
    response.flags |= dns.flags.AA
    qtype = question.rdtype
    owner = question.name  # the first owner keeps the query's spelling (0x20 case randomization)
    current = qname
    for _ in range(MAX_CHAIN + 1):
        records = zone.lookup(current)
        aliases = [r for r in records if isinstance(r, CNAME)]
        if aliases:
            alias = aliases[rotation.next(current) % len(aliases)] if len(aliases) > 1 else aliases[0]
            response.answer.append(dns.rrset.from_text(owner, TTL, "IN", "CNAME", alias.target + "."))
            if qtype in (dns.rdatatype.CNAME, dns.rdatatype.ANY) and current == qname:
                return response
            if served_suffix(alias.target) is None:
                return response  # not ours to follow; the client's resolver goes on
            current, owner = alias.target, dns.name.from_text(alias.target + ".")
            continue
        addresses = [r.address for r in records if isinstance(r, A)]
        if addresses:
            if qtype in (dns.rdatatype.A, dns.rdatatype.ANY):
                turn = rotation.next(current) % len(addresses) if len(addresses) > 1 else 0
                ordered = addresses[turn:] + addresses[:turn]
                response.answer.append(dns.rrset.from_text_list(owner, TTL, "IN", "A", ordered))
            else:
                response.authority.append(_soa(suffix))  # NODATA (e.g. AAAA): the name exists
            return response
        if not zone.exists(current):
            response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(_soa(suffix))
        return response
    return response  # a CNAME loop: the chain so far, as a server that stops following does


def answer(data: bytes, zone: Zone, rotation: Rotation, *, tcp: bool = False) -> bytes | None:
    """The wire reply to the DNS message ``data``, or ``None`` to drop it (malformed, or a response)."""
    try:
        query = dns.message.from_wire(data)
    except Exception:  # dnspython raises many types for hostile input; all mean "not a query"
        return None
    if query.flags & dns.flags.QR:
        return None
    try:
        response = _respond(query, zone, rotation)
        if tcp:
            limit = 65535
        elif query.edns >= 0:
            limit = max(UDP_PLAIN_LIMIT, min(query.payload, UDP_EDNS_LIMIT))
        else:
            limit = UDP_PLAIN_LIMIT
        # want_shuffle off: dnspython shuffles records by default; the rotation above orders them
        return response.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)
    except Exception:
        log.exception("DNS: could not answer a query")
        return None


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone, rotation: Rotation) -> None:
        self.zone, self.rotation = zone, rotation
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # the selector's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int] | str | bytes) -> None:
        reply = answer(data, self.zone, self.rotation)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable from a gone client
        log.debug("DNS/UDP: %s", exc)


class DnsServer:
    """The DNS server on ``host:port`` (UDP and TCP on the same port; port 0 picks a free one)."""

    def __init__(self, zone: Zone, host: str, port: int) -> None:
        self.zone = zone
        self.host, self.port = host, port
        self.rotation = Rotation()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _attempt in range(20 if self.port == 0 else 1):
            udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp_sock.bind((self.host, self.port))
                port = int(udp_sock.getsockname()[1])
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port, reuse_address=True)
            except OSError:
                udp_sock.close()
                if self.port != 0:
                    raise
                continue  # the free UDP port was taken on TCP: try another
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self.zone, self.rotation), sock=udp_sock)
            self._udp = transport
            self.port = port
            log.info("DNS server for the endpoint names at %s (UDP and TCP)", self.address)
            return
        raise OSError("no free port for the DNS server on both UDP and TCP")

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self._connections) >= TCP_MAX_CONNECTIONS:
            writer.close()
            return
        self._connections.add(task)
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_SECONDS)
                (size,) = struct.unpack("!H", head)
                data = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE_SECONDS)
                reply = answer(data, self.zone, self.rotation, tcp=True)
                if reply is None:
                    break  # a malformed message: the stream cannot be trusted to be in step
                writer.write(struct.pack("!H", len(reply)) + reply)
                await asyncio.wait_for(writer.drain(), TCP_IDLE_SECONDS)
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, OSError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._tcp.wait_closed()
            self._tcp = None

"""Refused clients never complete the TCP handshake: each listener's accept-time verdict, compiled into a
kernel socket filter that drops their SYNs, and the REJECT flow records of the SYNs it dropped.

On AWS a security group drops a refused client's SYN: the client sees a connect timeout. Here:

* **The filter.** An endpoint whose config has a ``source_space`` (:class:`~auroral.gateway.decision.SourceSpace`:
  the IPv4 addresses at which its ``decide`` may change its mind) gets a classic BPF filter on its IPv4
  listening sockets (:func:`auroral.gateway.bpf.source_filter`). The gateway asks the endpoint's own
  ``decide`` once per interval between consecutive boundaries — no policy is written twice — merges equal
  neighbours, and drops in the kernel the intervals refused with ``drop_mode`` "timeout". Refusals with
  "close" (``AURORAL_NET_DROP=close``) stay with the accept-time path: the handshake completes and the
  gateway closes at once, as before. The filter's verdict depends on the source address only: the
  hook's contract says ``decide`` may not depend on the source port.
* **Stateful.** A socket accepted from the listener starts with the listener's filter as it was when its
  handshake completed; the gateway detaches it right after accept, so an established connection is
  never filtered again, whatever the rules become (security groups are stateful).
* **Recompiled when the inputs change.** :meth:`SynGuard.refresh` recompiles every endpoint whose
  ``SourceSpace.key`` changed; the owner calls it synchronously after every API call that may have
  changed a decision (before the response goes out: a rule change applies to the very next connection),
  at endpoint open, and :meth:`SynGuard.schedule` after changes made outside the API.
* **REJECT flow records.** The kernel drops silently, so the SYNs are observed separately: an
  ``AF_PACKET`` socket (on every interface: ``lo`` and, with ``AURORAL_ENDPOINT_HOST``, the endpoint
  host's own) with its own filter (:func:`auroral.gateway.bpf.syn_filter`: the listeners' addresses and
  their plans' ranges, so an admitted client's SYN never wakes it) reports each incoming SYN that a
  listener's filter drops; the gateway writes its REJECT record (phase "open", the SYN as its one
  packet) with the reason ``decide`` gives now. Retransmissions of a
  SYN (same 4-tuple and sequence number) count once; at most :data:`MAX_SYN_RECORDS_PER_SECOND` records
  a second (the others are counted as ``skipped``).

Limits:

* the observer needs ``CAP_NET_RAW`` (auroral running as root has it). Without it no filter is attached at
  all: refused connections are accepted and held silently, as before (the client sees a timeout after
  connecting, psql "server closed the connection unexpectedly" when the hold ends), so that every
  refusal still has its REJECT record;
* IPv4 only: an IPv6 listening socket gets no filter (its refusals are held at accept);
* at most :data:`MAX_RANGES` ranges per listener (about two instructions each, under the kernel's 4096):
  beyond that the narrowest refused ranges are passed to the accept-time decision (held there) —
  coarser, never wrong; likewise if the kernel refuses the program's size (``net.core.optmem_max``);
* the accept-time ``decide`` still runs for every accepted connection and stays the authority: a SYN the
  filter let through (compiled before a change, or arrived between the listener's ``listen`` and the
  filter's attachment at endpoint open) is held (or closed) there;
* a rule change that lands between a client's SYN and its final ACK drops the ACK (the listener's filter
  sees it too): that client's connection never completes either, where AWS, tracking the connection from
  its SYN, presumably lets it finish (unconfirmed);
* a compilation asks ``decide`` once per interval, and the network policy's ``decide`` reads every rule
  of the groups: O(rules²) per endpoint whose inputs changed, after every EC2 or RDS change (AWS's quotas,
  60 rules a group and 5 groups an interface, keep that in milliseconds); endpoints with equal keys (a
  cluster's instances) share one compilation;
* the REJECT record is written when the observer reads the SYN, which may be after a later rule change:
  then its reason says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
import time
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from auroral.gateway import bpf
from auroral.gateway.decision import ConnectionInfo, SourceSpace, Verdict
from auroral.gateway.flows import FlowRecord
from auroral.gateway.session import Endpoint, Hub, Session, _maybe_await

log = logging.getLogger(__name__)

MAX_RANGES = 2000  # per listener: 2 * 2000 + a few instructions < bpf.MAX_INSNS
SPACE = 1 << 32
SEEN_SECONDS = 180.0  # a SYN's retransmissions (tcp_syn_retries=6: about 127 s) count once
SEEN_MAX = 65536
MAX_SYN_RECORDS_PER_SECOND = 1000
READ_BATCH = 256
ETH_P_IP = 0x0800


# --- the plan: decide() as a function of the source address ------------------------------------


@dataclass(frozen=True)
class SourcePlan:
    """Which IPv4 sources a listener's filter keeps: range ``i`` is ``[starts[i], starts[i+1])``.
    ``exact`` is False when refused ranges were passed on to fit :data:`MAX_RANGES`."""

    starts: tuple[int, ...]
    keep: tuple[bool, ...]
    key: Hashable = None
    exact: bool = True

    def keeps(self, address: int) -> bool:
        return self.keep[bisect_right(self.starts, address) - 1]

    @property
    def keeps_all(self) -> bool:
        return all(self.keep)

    def program(self) -> list[bpf.Insn]:
        return bpf.source_filter(self.starts, self.keep)


def merge(starts: Sequence[int], keep: Sequence[bool]) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """Equal neighbours as one range."""
    out_s: list[int] = []
    out_k: list[bool] = []
    for start, kept in zip(starts, keep, strict=True):
        if out_k and out_k[-1] == kept:
            continue
        out_s.append(start)
        out_k.append(kept)
    return tuple(out_s), tuple(out_k)


def coarsen(starts: Sequence[int], keep: Sequence[bool], limit: int) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """At most ``limit`` ranges: the narrowest dropped ranges become kept ones (the accept-time decision
    refuses them instead). ``starts``/``keep`` alternate (merged)."""
    if len(starts) <= limit:
        return tuple(starts), tuple(keep)
    ends = [*starts[1:], SPACE]
    dropped = sorted((ends[i] - starts[i], i) for i in range(len(starts)) if not keep[i])
    flags = list(keep)
    count = len(starts)
    for _, i in dropped:
        if count <= limit:
            break
        flags[i] = True
        count -= (i > 0) + (i < len(starts) - 1)  # it merges with each kept neighbour it has
    return merge(starts, flags)


Decider = Callable[[str], Any]  # source address -> Verdict (or an awaitable of one)


async def compile_plan(space: SourceSpace, verdict_for: Decider, *, limit: int = MAX_RANGES) -> SourcePlan:
    """Ask ``verdict_for`` once per interval of ``space`` and keep what it does not refuse with a timeout."""
    bounds = sorted({0, *(b for b in space.boundaries if 0 < b < SPACE)})
    keep: list[bool] = []
    for start in bounds:
        verdict = await _maybe_await(verdict_for(str(ipaddress.IPv4Address(start))))
        if not isinstance(verdict, Verdict):
            raise TypeError(f"decide returned {verdict!r}")
        keep.append(verdict.allow or verdict.drop_mode != "timeout")
    starts, kept = merge(bounds, keep)
    fitted = coarsen(starts, kept, limit)
    return SourcePlan(fitted[0], fitted[1], space.key, exact=fitted == (starts, kept))


# --- the SYN observer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Syn:
    src: str
    sport: int
    dst: str
    dport: int
    seq: int
    length: int  # the IP packet's length


def parse_syn(packet: bytes) -> Syn | None:
    """An IPv4 packet (from its IP header) holding a TCP header, else None."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if ihl < 20 or len(packet) < ihl + 8:
        return None
    length = struct.unpack_from("!H", packet, 2)[0]
    sport, dport, seq = struct.unpack_from("!HHI", packet, ihl)
    return Syn(socket.inet_ntoa(packet[12:16]), sport, socket.inet_ntoa(packet[16:20]), dport, seq, length)


class SynWatch:
    """An ``AF_PACKET`` socket that reads the incoming TCP SYNs to a set of listeners (``CAP_NET_RAW``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._program: bytes | None = None

    @classmethod
    def open(cls) -> SynWatch | None:
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        except (PermissionError, OSError, AttributeError) as exc:  # AttributeError: no AF_PACKET here
            log.info("gateway: no SYN observer (%s): refused connections are accepted and held", exc)
            return None
        try:
            bpf.attach(sock, bpf.syn_filter([]))  # nothing yet
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        except OSError as exc:
            sock.close()
            log.warning("gateway: cannot set up the SYN observer (%s): refused connections are held", exc)
            return None
        watch = cls(sock)
        watch.drain()  # what arrived before the filter
        return watch

    def watch(self, groups: Sequence[tuple[Sequence[bpf.Listener], Sequence[int], Sequence[bool]]]) -> None:
        """Report the SYNs to each group's listeners from the sources its ranges do not keep."""
        program = bpf.syn_filter(groups)
        code = bpf.encode(program)
        if code != self._program:
            bpf.attach(self.sock, program)
            self._program = code

    def read(self) -> list[Syn]:
        out: list[Syn] = []
        for _ in range(READ_BATCH):
            try:
                packet = self.sock.recv(256)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an interface going away under a packet: the next read goes on
                log.debug("gateway: SYN observer: %s", exc)
                break
            syn = parse_syn(packet)
            if syn is not None:
                out.append(syn)
        return out

    def drain(self) -> None:
        while self.read():
            pass

    def close(self) -> None:
        self.sock.close()


# --- the gateway's side ---------------------------------------------------------------------------


def _ipv4_listeners(ep: Endpoint) -> list[socket.socket]:
    return [s for s in ep.listeners if s.family == socket.AF_INET]


def _addr(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


class SynGuard:
    """The listeners' filters and the SYN observer of one gateway. ``enabled``: None attaches filters
    when the observer can be opened; False never does; True requires the observer (tests)."""

    def __init__(self, hub: Hub, *, enabled: bool | None = None) -> None:
        self.hub = hub
        self.enabled = enabled
        self._watch: SynWatch | None = None
        self._tried = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._plans: dict[Endpoint, SourcePlan] = {}
        self._filtered: set[Endpoint] = set()  # endpoints whose listeners carry a filter now
        self._attached_once = False  # accepted sockets may carry a filter
        self._by_addr: dict[tuple[str, int], Endpoint] = {}  # IPv4 listener address -> endpoint
        self._endpoints: Callable[[], Iterable[Endpoint]] = tuple
        self._lock = asyncio.Lock()
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: OrderedDict[tuple[str, int, str, int, int], float] = OrderedDict()
        self._second = 0
        self._this_second = 0
        self.rejected_syns = 0
        self.skipped = 0
        self.compiles = 0
        self.compile_seconds = 0.0

    @property
    def active(self) -> bool:
        return self._watch is not None

    def bind(self, endpoints: Callable[[], Iterable[Endpoint]]) -> None:
        self._endpoints = endpoints

    def _start(self) -> None:
        if self._tried:
            return
        self._tried = True
        self._loop = asyncio.get_running_loop()
        if self.enabled is False:
            return
        self._watch = SynWatch.open()
        if self._watch is None:
            if self.enabled:
                raise RuntimeError("the SYN observer cannot be opened (it needs CAP_NET_RAW)")
            return
        self._loop.add_reader(self._watch.sock.fileno(), self._read)

    # -- endpoints -------------------------------------------------------------------------------

    async def opened(self, ep: Endpoint) -> None:
        self._start()
        await self.refresh([ep], force=True)

    def closed(self, ep: Endpoint) -> None:
        self._plans.pop(ep, None)
        self._filtered.discard(ep)
        self._watch_listeners()

    def accepted(self, ep: Endpoint, conn: socket.socket) -> None:
        """A socket accepted from ``ep``'s listener: no filter from now on (stateful). It carries the
        listener's filter as it was at the end of its handshake, maybe one detached from the listener since."""
        if self._attached_once:
            with contextlib.suppress(OSError):
                bpf.detach(conn)

    def _watch_listeners(self) -> None:
        """Point the observer at the SYNs the listeners' filters drop now: listeners grouped by plan, each
        group with its plan's ranges (an admitted client's SYN does not even reach the observer)."""
        if self._watch is None:
            return
        by_addr: dict[tuple[str, int], Endpoint] = {}
        groups: dict[tuple[tuple[int, ...], tuple[bool, ...]], list[bpf.Listener]] = {}
        for ep in self._endpoints():
            plan = self.plan(ep)
            for sock in _ipv4_listeners(ep):
                host, port = sock.getsockname()[:2]
                by_addr[(str(host), int(port))] = ep
                if plan is not None:
                    listener = (None if host == "0.0.0.0" else _addr(host), int(port))
                    groups.setdefault((plan.starts, plan.keep), []).append(listener)
        self._by_addr = by_addr
        try:
            self._watch.watch([(listeners, starts, keep) for (starts, keep), listeners in groups.items()])
        except OSError as exc:
            log.warning("gateway: cannot update the SYN observer's filter: %s", exc)

    def _endpoint_for(self, dst: str, port: int) -> Endpoint | None:
        return self._by_addr.get((dst, port)) or self._by_addr.get(("0.0.0.0", port))

    # -- compiling -------------------------------------------------------------------------------

    def schedule(self) -> None:
        """Refresh soon (from any thread): for changes made outside an API call."""
        loop = self._loop
        if loop is None or self._scheduled or loop.is_closed():
            return
        self._scheduled = True

        def run() -> None:
            self._scheduled = False
            self._spawn(loop.create_task(self.refresh()))

        loop.call_soon_threadsafe(run)

    async def refresh(self, endpoints: Iterable[Endpoint] | None = None, *, force: bool = False) -> None:
        """Recompile the filters whose inputs changed (all of ``endpoints``' with ``force``)."""
        if self._watch is None:
            return
        async with self._lock:
            compiled: dict[Hashable, SourcePlan] = {}  # by key: equal keys, equal verdicts
            for ep in list(self._endpoints() if endpoints is None else endpoints):
                if ep.listeners:  # not closed meanwhile
                    await self._refresh_one(ep, force, compiled)
            self._watch_listeners()

    async def _refresh_one(self, ep: Endpoint, force: bool, compiled: dict[Hashable, SourcePlan]) -> None:
        cfg = ep.cfg
        plan: SourcePlan | None = None
        if cfg.source_space is not None:
            try:
                space = cfg.source_space()
                old = self._plans.get(ep)
                if space is not None and not force and old is not None and space.key is not None \
                        and old.key == space.key:
                    return
                if space is not None and space.key is not None and space.key in compiled:
                    plan = compiled[space.key]  # another endpoint's, with the same inputs
                elif space is not None:
                    host, port = ep.listeners[0].getsockname()[:2]

                    def verdict_for(source: str) -> Any:
                        return cfg.decide(ConnectionInfo(cfg.endpoint_id, source, 0, str(host), int(port)))

                    started = time.perf_counter()
                    plan = await compile_plan(space, verdict_for)
                    self.compiles += 1
                    self.compile_seconds += time.perf_counter() - started
                    log.debug("gateway %s: source filter of %d ranges from %d boundaries", cfg.endpoint_id,
                              len(plan.starts), len(space.boundaries))
                    if space.key is not None:
                        compiled[space.key] = plan
            except Exception:  # the accept-time decision still runs (and fails closed)
                log.exception("gateway %s: cannot compile the source filter; SYNs are not filtered",
                              cfg.endpoint_id)
                plan = None
        self._install(ep, plan)

    def _install(self, ep: Endpoint, plan: SourcePlan | None) -> None:
        if plan is not None and not plan.keeps_all:
            plan = self._attach(ep, plan)
            if plan is not None:
                self._plans[ep] = plan
                self._filtered.add(ep)
                return
        if plan is None:
            self._plans.pop(ep, None)
        else:
            self._plans[ep] = plan  # keeps everything: no filter needed
        if ep in self._filtered:
            for sock in _ipv4_listeners(ep):
                with contextlib.suppress(OSError):
                    bpf.detach(sock)
            self._filtered.discard(ep)

    def _attach(self, ep: Endpoint, plan: SourcePlan) -> SourcePlan | None:
        """Attach ``plan`` to ``ep``'s IPv4 listeners, coarser if the kernel refuses its size; the plan
        attached, or None."""
        while True:
            try:
                program = plan.program()
                for sock in _ipv4_listeners(ep):
                    bpf.attach(sock, program)
                    self._attached_once = True
            except OSError as exc:  # ENOMEM: the program is over net.core.optmem_max
                if len(plan.starts) <= 2:
                    log.warning("gateway %s: cannot attach a source filter (%s)", ep.cfg.endpoint_id, exc)
                    return None
                starts, keep = coarsen(plan.starts, plan.keep, len(plan.starts) // 2)
                plan = SourcePlan(starts, keep, plan.key, exact=False)
                continue
            if not plan.exact:
                log.info("gateway %s: source filter coarsened to %d ranges; the other refusals are held at "
                         "accept", ep.cfg.endpoint_id, len(plan.starts))
            return plan

    def plan(self, ep: Endpoint) -> SourcePlan | None:
        return self._plans.get(ep) if ep in self._filtered else None

    # -- the SYNs --------------------------------------------------------------------------------

    def _read(self) -> None:
        if self._watch is None:
            return
        for syn in self._watch.read():
            self._syn(syn)

    def _syn(self, syn: Syn) -> None:
        ep = self._endpoint_for(syn.dst, syn.dport)
        if ep is None:
            return
        plan = self.plan(ep)
        if plan is None or plan.keeps(_addr(syn.src)):
            return  # answered by the kernel: the accept-time decision records it
        now = time.monotonic()
        key = (syn.src, syn.sport, syn.dst, syn.dport, syn.seq)
        if key in self._seen:
            return  # a retransmission
        self._seen[key] = now
        while self._seen and (len(self._seen) > SEEN_MAX or next(iter(self._seen.values())) < now - SEEN_SECONDS):
            self._seen.popitem(last=False)
        second = int(now)
        if second != self._second:
            self._second, self._this_second = second, 0
        if self._this_second >= MAX_SYN_RECORDS_PER_SECOND:
            self.skipped += 1
            return
        self._this_second += 1
        self._spawn(asyncio.get_running_loop().create_task(self._reject(ep, syn)))

    def _spawn(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self._tasks.discard)

    async def _reject(self, ep: Endpoint, syn: Syn) -> None:
        cfg = ep.cfg
        info = ConnectionInfo(cfg.endpoint_id, syn.src, syn.sport, syn.dst, syn.dport)
        try:
            verdict = await _maybe_await(cfg.decide(info))
            if not isinstance(verdict, Verdict):
                raise TypeError(f"decide returned {verdict!r}")
        except Exception as e:
            verdict = Verdict(False, f"decision error: {e}")
        reason = verdict.reason
        if verdict.allow:  # the rules changed after the SYN arrived
            reason = f"dropped by the filter in force when the SYN arrived (since changed: {verdict.reason})"
        now = int(time.time())
        ep.rejected += 1
        self.rejected_syns += 1
        self.hub.flows.record(FlowRecord(
            account_id=self.hub.flows.account_id, interface_id=verdict.interface_id or "-", srcaddr=syn.src,
            dstaddr=syn.dst, srcport=syn.sport, dstport=cfg.virtual_port, start=now, end=now, action="REJECT",
            reason=reason, endpoint_id=cfg.endpoint_id, connection_id=next(Session._ids), phase="open",
            packets=1, bytes=syn.length,
        ))

    def stats(self) -> dict[str, Any]:
        return {"active": self.active, "filtered_endpoints": len(self._filtered),
                "rejected_syns": self.rejected_syns, "skipped": self.skipped, "compiles": self.compiles,
                "compile_seconds": round(self.compile_seconds, 6)}

    async def close(self) -> None:
        if self._watch is not None and self._loop is not None:
            self._loop.remove_reader(self._watch.sock.fileno())
            self._watch.close()
            self._watch = None
        self._tried = False

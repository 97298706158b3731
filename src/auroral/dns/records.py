"""The zone of endpoint names: records registered by owners, resolved by the DNS server and hosts file.

Route 53 serves Aurora's names as a CNAME from each cluster/reader/custom endpoint to an instance
name, and an A record per instance name. Here the RDS side computes those records from its state and
hands them to a :class:`Zone` per owner (``"rds:<account>:<region>"``): ``replace`` swaps the whole
set that owner registered, so an owner never needs to diff, and two owners never clobber each other.
A name registered by two owners keeps the records of both (in the order the owners registered).

Names derive from user identifiers (cluster, instance and endpoint names), so they are validated
here as lowercase hostnames before they reach the DNS wire format or ``/etc/hosts``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["CNAME", "A", "InvalidRecord", "Record", "Zone", "normalize_name"]

log = logging.getLogger(__name__)

# One label: letters, digits and inner hyphens, 1..63 characters (RFC 1123). No backtracking.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_MAX_NAME = 253
# A CNAME chain longer than this is treated as a loop (resolvers give up at a similar depth).
MAX_CHAIN = 16


class InvalidRecord(ValueError):
    """A name or address that cannot be served (bad hostname syntax, not an IPv4 address)."""


def normalize_name(name: str) -> str:
    """``name`` lowercased without a trailing dot; raises :class:`InvalidRecord` unless a hostname."""
    if not isinstance(name, str):
        raise InvalidRecord("a DNS name must be a string")
    text = name[:-1] if name.endswith(".") else name
    text = text.lower()
    if not text or len(text) > _MAX_NAME or not text.isascii():
        raise InvalidRecord(f"not a valid DNS name: {name[:80]!r}")
    for label in text.split("."):
        if not _LABEL.match(label):
            raise InvalidRecord(f"not a valid DNS name: {name[:80]!r}")
    return text


@dataclass(frozen=True)
class A:
    """An IPv4 address record."""

    address: str

    def __post_init__(self) -> None:
        try:
            ipaddress.IPv4Address(self.address)
        except (ValueError, TypeError) as exc:
            raise InvalidRecord(f"not an IPv4 address: {str(self.address)[:80]!r}") from exc


@dataclass(frozen=True)
class CNAME:
    """An alias to another name (normalized to lowercase, no trailing dot)."""

    target: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", normalize_name(self.target))


Record = A | CNAME
Listener = Callable[["Zone"], None]


class Zone:
    """A thread-safe registry of names to records, per owner, with change listeners.

    Listeners are called (outside the lock, in the thread that made the change) after every
    ``replace``/``remove`` that changed what the zone serves; they must be quick and must not raise
    (an exception is swallowed so one broken listener cannot stop the RDS side's update).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[str, dict[str, tuple[Record, ...]]] = {}
        self._merged: dict[str, tuple[Record, ...]] = {}
        self._ancestors: frozenset[str] = frozenset()
        self._listeners: list[Listener] = []
        self._version = 0

    # -- changes ---------------------------------------------------------------------------------

    def replace(self, owner: str, records: Mapping[str, Sequence[Record]]) -> None:
        """Make ``records`` everything ``owner`` registered (validated first: all or nothing)."""
        clean: dict[str, tuple[Record, ...]] = {}
        for name, recs in records.items():
            key = normalize_name(name)
            items = tuple(recs)
            for rec in items:
                if not isinstance(rec, (A, CNAME)):
                    raise InvalidRecord(f"not a record: {type(rec).__name__}")
            if any(isinstance(r, CNAME) for r in items) and any(isinstance(r, A) for r in items):
                # DNS forbids a CNAME next to other data at the same name (RFC 1034 3.6.2). Several
                # CNAMEs form a rotation set (a reader endpoint): the server answers one per query.
                raise InvalidRecord(f"{key} cannot have both CNAME and A records")
            if items:
                clean[key] = clean.get(key, ()) + items
        with self._lock:
            if self._owners.get(owner, {}) == clean:
                return
            if clean:
                self._owners[owner] = clean
            else:
                self._owners.pop(owner, None)
            self._rebuild()
        self._notify()

    def remove(self, owner: str) -> None:
        """Forget everything ``owner`` registered."""
        self.replace(owner, {})

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _rebuild(self) -> None:
        merged: dict[str, tuple[Record, ...]] = {}
        for owner in sorted(self._owners):
            for name, recs in self._owners[owner].items():
                prior = merged.get(name, ())
                if any(isinstance(r, CNAME) for r in prior + recs):
                    # Two owners disagreeing about an alias: the first (by owner) wins.
                    merged.setdefault(name, recs)
                else:
                    merged[name] = prior + tuple(r for r in recs if r not in prior)
        self._merged = merged
        self._ancestors = frozenset(
            ".".join(labels[i:]) for labels in (n.split(".") for n in merged) for i in range(1, len(labels)))
        self._version += 1

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(self)
            except Exception:  # a listener's bug must not undo or block the change
                log.exception("zone listener %r failed", listener)

    # -- queries ---------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """A counter that grows with every change (for writers that debounce)."""
        with self._lock:
            return self._version

    def lookup(self, name: str) -> list[Record]:
        """The records registered for exactly ``name`` (no CNAME following); [] if none or invalid."""
        try:
            key = normalize_name(name)
        except InvalidRecord:
            return []
        with self._lock:
            return list(self._merged.get(key, ()))

    def resolve(self, name: str) -> list[str]:
        """The IPv4 addresses ``name`` resolves to within the zone; [] if none.

        CNAMEs are followed; a rotation set of several CNAMEs contributes the addresses of every
        target (in order, without repeats). Each name is expanded once (loop-safe), to a depth of :data:`MAX_CHAIN`.
        """
        try:
            start = normalize_name(name)
        except InvalidRecord:
            return []
        with self._lock:
            merged = self._merged
        found: list[str] = []
        seen = {start}

        def walk(current: str, depth: int) -> None:
            for rec in merged.get(current, ()):
                if isinstance(rec, A):
                    if rec.address not in found:
                        found.append(rec.address)
                elif rec.target not in seen and depth < MAX_CHAIN:
                    seen.add(rec.target)  # each name is expanded once: loop-safe and linear
                    walk(rec.target, depth + 1)

        walk(start, 0)
        return found

    def exists(self, name: str) -> bool:
        """Whether ``name`` has records or names below it (an "empty non-terminal": NODATA, not
        NXDOMAIN, RFC 8020, so that a resolver does not conclude that nothing below it exists)."""
        try:
            key = normalize_name(name)
        except InvalidRecord:
            return False
        with self._lock:
            return key in self._merged or key in self._ancestors

    def names(self) -> list[str]:
        """Every name in the zone, sorted."""
        with self._lock:
            return sorted(self._merged)

    def snapshot(self) -> dict[str, list[Record]]:
        """A copy of the merged zone (name → records)."""
        with self._lock:
            return {name: list(recs) for name, recs in self._merged.items()}

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.lookup(name))

"""Mirrors the zone into files after each change: the hosts block, and a snapshot in the data directory.

The zone's listeners run in whatever thread changed it (often the event loop), so they only wake
a thread of this module, which waits a moment for more changes (a cluster's creation changes the
zone several times in a row), then writes once. :meth:`ZonePublisher.wait` lets a caller that must
not get ahead of the files (an instance reported ``available`` and resolved by name right away)
wait until what it registered is written.

The snapshot (``dns.json``, private to the data directory) is what ``auroral dns`` prints: the
records, the DNS server's address and the hosts file in use.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auroral.dns.hosts import HostsBlock
from auroral.dns.records import CNAME, A, Record, Zone

log = logging.getLogger(__name__)

__all__ = ["DEBOUNCE_SECONDS", "SNAPSHOT_FILE", "ZonePublisher", "records_from_json", "records_to_json"]

DEBOUNCE_SECONDS = 0.02
SNAPSHOT_FILE = "dns.json"


def records_to_json(snapshot: Mapping[str, list[Record]]) -> dict[str, list[dict[str, str]]]:
    return {
        name: [{"type": "A", "value": r.address} if isinstance(r, A) else {"type": "CNAME", "value": r.target}
               for r in records]
        for name, records in sorted(snapshot.items())
    }


def records_from_json(data: Mapping[str, Any]) -> dict[str, list[Record]]:
    """The records of a snapshot (validated again: the file is only as trustworthy as its directory)."""
    out: dict[str, list[Record]] = {}
    for name, items in data.items():
        out[name] = [A(str(i["value"])) if i.get("type") == "A" else CNAME(str(i["value"])) for i in items]
    return out


class ZonePublisher:
    """Writes ``zone`` to a hosts block (if any) and a snapshot file, debounced, from its own thread."""

    def __init__(self, zone: Zone, *, hosts: HostsBlock | None, snapshot: Path | None,
                 meta: Mapping[str, Any] | None = None, debounce: float = DEBOUNCE_SECONDS) -> None:
        self.zone, self.hosts, self.snapshot = zone, hosts, snapshot
        self.meta = dict(meta or {})
        self.debounce = debounce
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._written = -1
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None

    def start(self) -> None:
        """Write once now (replacing a block a crashed run of this data directory left), then follow."""
        self.zone.add_listener(self._changed)  # first: a change while writing is not missed
        self._publish(self.zone.version)
        self._thread = threading.Thread(target=self._run, name="auroral-dns-publish", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following the zone and remove the hosts block and the snapshot."""
        self.zone.remove_listener(self._changed)
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.hosts is not None:
            try:
                self.hosts.remove()
            except OSError as exc:
                log.warning("could not remove the auroral block from %s: %s", self.hosts.path, exc)
        if self.snapshot is not None:
            self.snapshot.unlink(missing_ok=True)

    def _changed(self, zone: Zone) -> None:
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stopping:
                return
            time.sleep(self.debounce)  # let a burst of changes settle
            self._wake.clear()
            self._publish(self.zone.version)

    def _publish(self, version: int) -> None:
        try:
            if self.hosts is not None:
                self.hosts.write(self.zone)
            if self.snapshot is not None:
                self._write_snapshot(version)
            self._last_error = None
        except OSError as exc:  # logged once per distinct problem, not on every change
            if str(exc) != self._last_error:
                log.warning("could not publish the endpoint names: %s", exc)
                self._last_error = str(exc)
        except Exception:
            log.exception("could not publish the endpoint names")
        with self._done:
            self._written = max(self._written, version)
            self._done.notify_all()

    def _write_snapshot(self, version: int) -> None:
        assert self.snapshot is not None
        doc = {**self.meta, "version": version, "records": records_to_json(self.zone.snapshot())}
        tmp = self.snapshot.with_name(self.snapshot.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(doc, handle, indent=1)
        tmp.replace(self.snapshot)

    def wait(self, version: int | None = None, timeout: float = 2.0) -> bool:
        """Block until the zone as of ``version`` (default: now) is written (or failed); False on timeout."""
        target = self.zone.version if version is None else version
        with self._done:
            return self._done.wait_for(lambda: self._written >= target, timeout)

    async def published(self, timeout: float = 2.0) -> bool:
        """:meth:`wait` for the event loop (the waiting happens in a worker thread)."""
        return await asyncio.to_thread(self.wait, self.zone.version, timeout)

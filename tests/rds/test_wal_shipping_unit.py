"""Shipping the archivers' spools (LocalRuntime.ship_wal): the reads and removals run in worker threads and
the listeners are coroutines, so the event loop keeps serving while a segment is read, compressed and sealed;
two shippers of one cluster (the one-second loop and a restore's flush) never hand the same file over twice;
a file leaves the spool only once a listener stored it, and the ones after a refused one wait, in order. Real
files in a real spool directory; the engine is a stand-in that names it."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auroral.rds.local_runtime import LocalRuntime
from auroral.rds.model import Cluster

NAMES = [f"00000001000000000000000{i}" for i in range(1, 5)]


@dataclass
class _Server:
    wal_spool: Path


class _Engine:
    def __init__(self, spool: Path) -> None:
        self.spool = spool

    def servers_of(self, rid: str) -> list[_Server]:
        return [_Server(self.spool)]


def _runtime(spool: Path) -> Any:
    """A LocalRuntime with only what ship_wal uses (no PostgreSQL, no gateway)."""
    runtime: Any = object.__new__(LocalRuntime)
    runtime._engine = _Engine(spool)
    runtime._wal_listeners = []
    runtime._ship_locks = {}
    return runtime


def _cluster() -> Cluster:
    from datetime import UTC, datetime
    return Cluster(identifier="c", account="123456789012", region="us-east-1", resource_id="cluster-X",
                   engine_version="16.4", major=16, master_username="m", created=datetime.now(UTC),
                   parameter_group="g")


def _spool(tmp_path: Path) -> Path:
    spool = tmp_path / "walspool"
    spool.mkdir(mode=0o700)
    for i, name in enumerate(NAMES):
        (spool / name).write_bytes(name.encode() * 1000)
        os.utime(spool / name, (1000.0 + i, 1000.0 + i))
    (spool / "not-a-wal-file").write_bytes(b"ignored")
    return spool


def test_two_shippers_hand_each_file_over_once_off_the_event_loop(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    runtime = _runtime(spool)
    stored: list[tuple[str, float]] = []
    loop_thread: list[int] = []

    async def listener(rid: str, name: str, data: bytes, archived_at: float) -> bool:
        loop_thread.append(threading.get_ident())
        assert data == name.encode() * 1000
        await asyncio.sleep(0.01)  # sealing in a worker thread: the loop runs meanwhile
        stored.append((name, archived_at))
        return True

    runtime._wal_listeners.append(listener)

    async def main() -> tuple[list[int], int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        counts = await asyncio.gather(runtime.ship_wal(_cluster()), runtime.ship_wal(_cluster()))
        stop.set()
        await task
        return list(counts), ticks

    counts, ticks = asyncio.run(main())
    assert stored == [(n, 1000.0 + i) for i, n in enumerate(NAMES)]  # each once, oldest first
    assert sorted(counts) == [0, len(NAMES)]
    assert sorted(os.listdir(spool)) == ["not-a-wal-file"]
    assert ticks > len(NAMES)  # the loop kept running while files were read and handed over
    assert len(set(loop_thread)) == 1


def test_a_refused_file_stays_and_the_later_ones_wait(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    runtime = _runtime(spool)
    offered: list[str] = []

    async def listener(rid: str, name: str, data: bytes, archived_at: float) -> bool:
        offered.append(name)
        return name != NAMES[1]  # its key is not usable now, say

    runtime._wal_listeners.append(listener)
    assert asyncio.run(runtime.ship_wal(_cluster())) == 1
    assert offered == NAMES[:2]
    assert sorted(os.listdir(spool)) == sorted([*NAMES[1:], "not-a-wal-file"])

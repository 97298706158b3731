"""Postmaster processes seen through ``postmaster.pid`` and ``/proc`` (Linux).

A postmaster that outlived its auroral process (auroral was killed with SIGKILL; PostgreSQL runs in its
own session so it survives) is found through the ``postmaster.pid`` of its data directory and
identified by its working directory, which PostgreSQL sets to the data directory — a recycled pid
cannot be mistaken for it. Such a postmaster is not adopted (we could not wait for it or capture its
output): it is asked to shut down (SIGINT, fast shutdown) and the caller then starts a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from auroral.engine import fsafe

PID_FILE = "postmaster.pid"


@dataclass(frozen=True)
class PidFile:
    pid: int
    data_dir: str
    status: str  # "starting" | "ready" | "stopping" | "standby" | "" (PostgreSQL < 10 writes none)


def read_pid_file(data_dir: Path) -> PidFile | None:
    try:  # written by the server's user: a regular file only (never a symlink to a file of root's)
        lines = fsafe.read_text(data_dir / PID_FILE, 4096).splitlines()
    except OSError:
        return None
    if not lines or not lines[0].strip().lstrip("-").isdigit():
        return None
    pid = abs(int(lines[0]))  # negative pid: single-user backend
    status = lines[7].strip() if len(lines) > 7 else ""
    return PidFile(pid, lines[1] if len(lines) > 1 else "", status)


def alive(pid: int) -> bool:
    """True for a running (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def postmaster_of(data_dir: Path) -> int | None:
    """The pid of a live postmaster serving ``data_dir``, if any."""
    info = read_pid_file(data_dir)
    if info is None or not alive(info.pid):
        return None
    try:
        cwd = os.readlink(f"/proc/{info.pid}/cwd")
    except OSError:
        return None
    if Path(cwd) != data_dir.resolve():
        return None
    return info.pid


async def stop_foreign(pid: int, timeout: float = 30.0) -> None:
    """Shut down a postmaster that is not our child: SIGINT (fast), then SIGQUIT, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            await asyncio.sleep(0.05)


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def processes_in(data_dir: Path) -> list[int]:
    """Every live process whose working directory is ``data_dir`` (postmaster and backends)."""
    target = str(data_dir.resolve())
    found: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry.name}/cwd") == target and alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB for one process, from ``smaps_rollup``; PSS counts shared pages fairly."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss

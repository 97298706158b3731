"""auroral's threads run ahead of the PostgreSQL servers they front (``AURORAL_NICE``, default -10),
and every PostgreSQL process starts back at the niceness auroral was started with."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from auroral import priority
from auroral.engine.osuser import RunAs
from tests.conftest import Server, free_port
from tests.rds.e2e_helpers import create_db, delete_db, postgres_processes

ROOT = os.geteuid() == 0
START_NICE = os.getpriority(os.PRIO_PROCESS, 0)


def _nice(path: Path) -> int:
    """The niceness in a /proc/<pid>[/task/<tid>]/stat file (field 19)."""
    return int(path.read_text().rsplit(")", 1)[1].split()[16])


def _threads(pid: int) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.setdefault((task / "comm").read_text().strip(), []).append(_nice(task / "stat"))
    return found


@pytest.mark.parametrize(("value", "expected"), [("", -10), ("0", 0), ("-20", -20), (" -5 ", -5)])
def test_configured(value: str, expected: int) -> None:
    assert priority.configured({priority.ENV: value} if value else {}) == expected


@pytest.mark.parametrize("value", ["5", "-21", "high", "1.5"])
def test_configured_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="AURORAL_NICE must be an integer from -20 to 0"):
        priority.configured({priority.ENV: value})


def test_a_bad_value_stops_auroral_up(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "auroral.cli", "up", "--data-dir", str(tmp_path / "d"),
                          "--port", str(free_port())], env={**os.environ, priority.ENV: "fast"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "AURORAL_NICE must be an integer from -20 to 0, not 'fast'" in out.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.skipif(not ROOT, reason="lowering a niceness needs root")
def test_children_start_back_at_the_niceness_auroral_was_started_with(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a thread at -7 (a niceness is per thread and inherited), a child spawned with RunAs's
    arguments runs at the niceness auroral was started with; without the reset it would run at -7."""
    monkeypatch.setattr(priority, "_started_at", START_NICE)
    seen: dict[str, Any] = {}

    def spawn() -> None:
        os.setpriority(os.PRIO_PROCESS, 0, -7)
        current = RunAs("root", 0, 0)
        assert current.is_current
        for name, kwargs in (("reset", current.subprocess_kwargs()), ("plain", {})):
            seen[name] = int(subprocess.run(["sh", "-c", "cut -d')' -f2 /proc/self/stat"], capture_output=True,
                                            text=True, check=True, **kwargs).stdout.split()[16])

    thread = threading.Thread(target=spawn)
    thread.start()
    thread.join()
    assert seen == {"reset": START_NICE, "plain": -7}
    assert os.getpriority(os.PRIO_PROCESS, 0) == START_NICE  # the test's own thread is untouched


def test_not_raised_means_no_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(priority, "_started_at", None)
    assert RunAs("me", os.geteuid(), os.getegid()).subprocess_kwargs() == {}


def test_the_running_server(server: Server) -> None:
    """The session's `auroral up`: its threads (the event loop and the relay) at -10 where the OS allows
    it, and its PostgreSQL server and backends at the niceness it was started with."""
    assert server.proc is not None
    rds = server.client("rds")
    db = create_db(rds, prefix="nice")
    try:
        threads = _threads(server.proc.pid)
        want = min(START_NICE, priority.DEFAULT) if ROOT else START_NICE
        assert _nice(Path(f"/proc/{server.proc.pid}/stat")) == want
        if "auroral-relay" in threads:  # the native relay (it builds wherever gcc and OpenSSL are)
            assert threads["auroral-relay"] == [want]
        with db.connect() as conn:
            backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
            processes = postgres_processes(db.resource_id)
            assert backend in processes and len(processes) > 1
            assert {_nice(Path(f"/proc/{pid}/stat")) for pid in processes} == {START_NICE}
    finally:
        delete_db(rds, db)

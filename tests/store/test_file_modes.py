"""The store's files (database, -wal, -shm) are readable by their owner only, whatever the umask:
as root, PostgreSQL's OS users must not read sealed secrets, audit events or IAM data from them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from auroral.store import Store


def _modes(path: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in sorted(path.parent.glob(path.name + "*"))}


def test_new_store_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "auroral.sqlite3"
    previous = os.umask(0o022)
    try:
        store = Store(path)
        store.put("thing", "acct", "a", {"secret": "x"})
        modes = _modes(path)
        store.close()
    finally:
        os.umask(previous)
    assert modes == {"auroral.sqlite3": 0o600, "auroral.sqlite3-shm": 0o600, "auroral.sqlite3-wal": 0o600}


def test_files_of_an_older_version_become_private(tmp_path: Path) -> None:
    path = tmp_path / "auroral.sqlite3"
    store = Store(path)
    store.put("thing", "acct", "a", {"v": 1})
    for name in _modes(path):
        os.chmod(tmp_path / name, 0o644)  # what an older auroral left (the -wal/-shm were 0644)
    again = Store(path)
    try:
        assert set(_modes(path).values()) == {0o600}
    finally:
        again.close()
        store.close()

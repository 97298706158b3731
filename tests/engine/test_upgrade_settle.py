"""A major upgrade interrupted at any point (auroral killed) is settled at recovery without losing data:
an unfinished pg_upgrade is discarded (the old data directory stays), a half-done swap is finished, and
the old directory goes only once the new one is ``pgdata`` (``engine/cluster.py`` ``settle_upgrade``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auroral.engine.cluster import OLD_DIR, UPGRADE_DIR, UPGRADE_MARKER, settle_upgrade


def _dir(path: Path, version: str) -> None:
    path.mkdir()
    (path / "PG_VERSION").write_text(f"{version}\n")


@pytest.mark.parametrize(("present", "expected"), [
    # crash during pg_upgrade: the partial new directory goes, the old one is pgdata
    ({"pgdata": "15", UPGRADE_DIR: "16"}, "15"),
    # crash after the first rename: the complete new directory is put in place
    ({OLD_DIR: "15", UPGRADE_DIR: "16"}, "16"),
    # crash after the swap: the old directory is removed
    ({"pgdata": "16", OLD_DIR: "15"}, "16"),
    # crash before pg_upgrade made anything
    ({"pgdata": "15"}, "15"),
])
def test_settle(tmp_path: Path, present: dict[str, str], expected: str) -> None:
    for name, version in present.items():
        _dir(tmp_path / name, version)
    (tmp_path / UPGRADE_MARKER).write_text("16\n")
    assert settle_upgrade(tmp_path) is not None
    assert (tmp_path / "pgdata" / "PG_VERSION").read_text().strip() == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pgdata"]
    assert settle_upgrade(tmp_path) is None  # nothing left to settle


def test_nothing_to_settle_without_the_marker(tmp_path: Path) -> None:
    _dir(tmp_path / "pgdata", "15")
    _dir(tmp_path / UPGRADE_DIR, "16")  # not ours to remove without the marker
    assert settle_upgrade(tmp_path) is None
    assert (tmp_path / UPGRADE_DIR).exists()

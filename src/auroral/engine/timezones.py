"""The time zone names a PostgreSQL installation accepts: what its ``pg_timezone_names`` lists.

PostgreSQL reads zones from its own copy of the tz database (``<sharedir>/timezone``) unless it was
built ``--with-system-tzdata=DIR`` (Debian's packages: ``/usr/share/zoneinfo``). ``pg_timezone_names``
lists every file below that directory that loads as a TZif zone, except leap-second zones
(``pg_tzenumerate_next`` and ``pg_tz_acceptable`` in ``src/timezone/pgtz.c``). The same walk is done
here, without a server: the header of each file tells a zone (magic ``TZif``) and its leap seconds.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from auroral.engine.binaries import Installation

SYSTEM_TZDATA = Path("/usr/share/zoneinfo")
_OPTION = "--with-system-tzdata="
_MAX_DEPTH = 10  # MAX_TZDIR_DEPTH of pgtz.c
_HEADER = 44  # magic(4) version(1) reserved(15) six 4-byte counts


def tzdata_dir(inst: Installation) -> Path:
    """The directory this installation loads time zones from."""
    own = inst.sharedir / "timezone"
    if own.is_dir():
        return own
    pg_config = inst.tool("pg_config")
    if pg_config.is_file():
        try:
            out = subprocess.run([str(pg_config), "--configure"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for word in out.split():
            word = word.strip("'\"")
            if word.startswith(_OPTION):
                return Path(word[len(_OPTION):])
    return SYSTEM_TZDATA


def _zone_without_leap_seconds(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            header = handle.read(_HEADER)
    except OSError:
        return False
    if len(header) < _HEADER or header[:4] != b"TZif":
        return False
    leapcnt = int.from_bytes(header[28:32], "big")
    return leapcnt == 0


@functools.cache
def names_in(root: Path) -> frozenset[str]:
    """Zone names below ``root`` as PostgreSQL enumerates them (symbolic links followed, hidden
    entries skipped, at most ten directories deep)."""
    found: set[str] = set()

    def walk(directory: Path, prefix: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            name = f"{prefix}{entry.name}"
            try:
                is_dir = entry.is_dir()  # follows symbolic links, as PostgreSQL's stat() does
            except OSError:
                continue
            if is_dir:
                walk(Path(entry.path), f"{name}/", depth + 1)
            elif _zone_without_leap_seconds(Path(entry.path)):
                found.add(name)

    walk(root, "", 1)
    return frozenset(found)


def timezone_names(inst: Installation) -> frozenset[str]:
    """Every name ``SET timezone`` accepts by name on this installation (``pg_timezone_names``)."""
    return names_in(tzdata_dir(inst))

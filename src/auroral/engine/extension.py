"""``auroral_rds``: the server module behind ``rds.restrict_password_commands``, compiled at run time.

Stock PostgreSQL cannot intercept ``ALTER ROLE ... PASSWORD`` without C (event triggers do not fire
for roles), so ``ext/auroral_rds.c`` (see its header for what it covers) is compiled once per
installation with the installation's own server headers (``pg_config --includedir-server``,
``--cflags_sl``) and ``gcc``, into ``<cache_dir>/pg<major>-<hash of the source>/auroral_rds.so``
(world-readable: the servers run as the unprivileged service user). Every server of that major loads
it through ``shared_preload_libraries`` (see ``conf.local_conf``).

Without a compiler or without server headers (Debian's ``postgresql-<major>`` package has none;
``postgresql-server-dev-<major>`` adds them) :func:`ensure_built` returns None and logs a warning once;
the servers then run without the module, and turning ``rds.restrict_password_commands`` on is refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from auroral.engine.binaries import Installation

MODULE = "auroral_rds"
SOURCE = f"{MODULE}.c"
log = logging.getLogger(__name__)
_warned: set[str] = set()
_ENV_CC = "AURORAL_CC"  # the compiler to use instead of gcc (tests set it to a missing one)


def source() -> bytes:
    return (resources.files("auroral.engine") / "ext" / SOURCE).read_bytes()


def cache_key(inst: Installation) -> str:
    return f"pg{inst.major}-{hashlib.sha256(source()).hexdigest()[:16]}"


def ensure_built(installation: Installation, cache_dir: Path) -> Path | None:
    """The module for ``installation``'s major as an absolute path without ``.so`` (the form
    ``shared_preload_libraries`` takes), compiled now if not cached; None if it cannot be built."""
    key = cache_key(installation)
    target_dir = cache_dir / key
    library = target_dir / f"{MODULE}.so"
    if library.is_file():
        return target_dir / MODULE
    reason = _build(installation, target_dir, library)
    if reason is None:
        return target_dir / MODULE
    if key not in _warned:
        _warned.add(key)
        log.warning("PostgreSQL %s: the %s module could not be built (%s); rds.restrict_password_commands "
                    "cannot be turned on for this major", installation.version, MODULE, reason)
    return None


def _build(inst: Installation, target_dir: Path, library: Path) -> str | None:
    """Compile into ``library``; the reason on failure."""
    compiler_name = os.environ.get(_ENV_CC, "gcc")
    compiler = shutil.which(compiler_name)
    if compiler is None:
        return f"no C compiler ({compiler_name}) on PATH"
    pg_config = inst.tool("pg_config")
    if not pg_config.is_file():
        return f"no pg_config in {inst.bindir}"
    try:
        out = subprocess.run([str(pg_config), "--includedir-server", "--cflags_sl"], capture_output=True,
                             text=True, timeout=30, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"pg_config failed: {exc}"
    if not out:
        return "pg_config printed nothing"
    include = Path(out[0].strip())
    cflags_sl = out[1].split() if len(out) > 1 else []
    if not (include / "postgres.h").is_file():
        return f"no server headers in {include} (install the server development package)"
    cache_dir = target_dir.parent
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cache_dir, 0o755)
    tmp_dir = cache_dir / f".{target_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir()
    try:
        src = tmp_dir / SOURCE
        src.write_bytes(source())
        command = [compiler, "-O2", "-Wall", *cflags_sl, "-fPIC", "-shared", "-I", str(include),
                   "-o", str(tmp_dir / library.name), str(src)]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{compiler_name} failed: {exc}"
        if result.returncode != 0:
            tail = (result.stderr.strip().splitlines() or ["?"])[-1]
            return f"{compiler_name} exited with code {result.returncode}: {tail}"
        if result.stderr.strip():
            log.info("%s compiler output: %s", MODULE, result.stderr.strip())
        os.chmod(tmp_dir / library.name, 0o644)
        os.chmod(tmp_dir, 0o755)
        try:
            tmp_dir.rename(target_dir)
        except OSError:
            if not library.is_file():  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return None

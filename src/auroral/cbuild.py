"""Compiling the project's small C sources at run time: the PostgreSQL server module
(``engine/extension.py``) and the gateway's relay (``gateway/native.py``).

:func:`compile_shared` builds one shared library into its own folder, named by the caller (a hash of
the source, so a changed source is a new folder). It compiles in a temporary sibling folder and renames
it into place, so a concurrent build, or a crash halfway, never leaves a partial library where a
reader looks. ``AURORAL_CC`` names the compiler to use instead of ``gcc`` (tests set it to a missing one).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

ENV_CC = "AURORAL_CC"
log = logging.getLogger(__name__)


def missing_compiler() -> str | None:
    """Why nothing can be compiled here, or None."""
    name = os.environ.get(ENV_CC, "gcc")
    return None if shutil.which(name) else f"no C compiler ({name}) on PATH"


def compile_shared(source: bytes, source_name: str, library: Path, *, cflags: Sequence[str] = (),
                   libs: Sequence[str] = (), world_readable: bool = False) -> str | None:
    """Compile ``source`` into ``library`` (``<cache>/<key>/<name>.so``); None on success, else why not.
    ``world_readable``: the folders and the library are made readable by other users (servers that
    run as an unprivileged user load it)."""
    compiler_name = os.environ.get(ENV_CC, "gcc")
    compiler = shutil.which(compiler_name)
    if compiler is None:
        return missing_compiler()
    target_dir = library.parent
    cache_dir = target_dir.parent
    cache_dir.mkdir(parents=True, exist_ok=True)
    if world_readable:
        os.chmod(cache_dir, 0o755)
    tmp_dir = cache_dir / f".{target_dir.name}.tmp-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir()
    try:
        src = tmp_dir / source_name
        src.write_bytes(source)
        command = [compiler, "-O2", "-Wall", *cflags, "-fPIC", "-shared", "-o", str(tmp_dir / library.name),
                   str(src), *libs]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{compiler_name} failed: {exc}"
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or ["?"]
            first_error = next((line for line in lines if "error" in line), lines[-1])
            return f"{compiler_name} exited with code {result.returncode}: {first_error}"
        if result.stderr.strip():
            log.info("%s: compiler output: %s", source_name, result.stderr.strip())
        if world_readable:
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

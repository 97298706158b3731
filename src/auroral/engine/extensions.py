"""Aurora PostgreSQL's extensions: which ones a cluster offers, and what it preloads.

``rds.extensions`` (a setting of the ``auroral_rds`` module, shown as on Aurora) lists the extensions
of Aurora's list for the cluster's major (:data:`AURORA`, from AWS's "Extension versions for Amazon
Aurora PostgreSQL") that the installation ships (its ``*.control`` files). Only those can be created
by users that are not superusers, and ``rds_superuser`` members create them with the privileges they
need (``ext/auroral_rds.c``). ``rds.allowed_extensions`` (a cluster parameter, ``*`` by default)
narrows them.

Left out on purpose, as on Aurora: untrusted languages (``plpython3u`` and its transforms, ``plperlu``),
server file access (``adminpack``, ``file_fdw``), ``xml2``, ``pg_surgery``, ``old_snapshot``. The
community extensions Aurora adds (PostGIS, pg_cron, pgvector, ...) are supported where an installation
ships them only if added to :data:`AURORA`; today's installations carry PostgreSQL's own contrib only.

``shared_preload_libraries``: Aurora's default cluster parameter group preloads ``pg_stat_statements``
(:data:`DEFAULT_PRELOAD`); a parameter group may name any of :data:`PRELOADABLE` that the installation
ships. The engine's own ``auroral_rds`` is loaded first in any case and does not show in
``SHOW shared_preload_libraries``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

# PostgreSQL's contrib modules that Aurora PostgreSQL offers, by the first major that has them.
_CONTRIB: dict[str, int] = {
    "amcheck": 11, "autoinc": 11, "bloom": 11, "btree_gin": 11, "btree_gist": 11, "citext": 11,
    "cube": 11, "dblink": 11, "dict_int": 11, "dict_xsyn": 11, "earthdistance": 11,
    "fuzzystrmatch": 11, "hstore": 11, "insert_username": 11, "intagg": 11, "intarray": 11, "isn": 11,
    "lo": 11, "ltree": 11, "moddatetime": 11, "pageinspect": 11, "pg_buffercache": 11,
    "pg_freespacemap": 11, "pg_prewarm": 11, "pg_stat_statements": 11, "pg_trgm": 11,
    "pg_visibility": 11, "pgcrypto": 11, "pgrowlocks": 11, "pgstattuple": 11, "plpgsql": 11,
    "postgres_fdw": 11, "refint": 11, "seg": 11, "sslinfo": 11, "tablefunc": 11, "tcn": 11,
    "tsm_system_rows": 11, "tsm_system_time": 11, "unaccent": 11, "uuid-ossp": 11,
    "pg_walinspect": 15,
}
# Aurora's own and community extensions (pg_stat_statements' neighbours in rds.extensions); offered
# when an installation ships them.
_COMMUNITY: dict[str, int] = {
    "pg_hint_plan": 11, "pg_partman": 12, "pg_cron": 12, "pgaudit": 11, "pglogical": 11, "pg_repack": 11,
    "postgis": 11, "postgis_raster": 12, "postgis_topology": 11, "address_standardizer": 11,
    "address_standardizer_data_us": 11, "vector": 11, "hll": 11, "hypopg": 11, "ip4r": 11,
    "orafce": 11, "pg_bigm": 11, "pg_similarity": 11, "pg_tle": 13, "plv8": 11, "prefix": 11,
    "rdkit": 11, "tds_fdw": 11, "mysql_fdw": 11, "oracle_fdw": 11, "h3-pg": 14, "pgtap": 11,
}
AURORA: dict[str, int] = {**_CONTRIB, **_COMMUNITY}

# What AWS's aurora-postgresql families allow in shared_preload_libraries (default_parameters.py).
PRELOADABLE = ("auto_explain", "orafce", "pg_bigm", "pg_cron", "pg_hint_plan", "pg_partman_bgw",
               "pg_similarity", "pg_stat_statements", "pg_tle", "pgaudit", "pglogical", "plprofiler")
DEFAULT_PRELOAD = "pg_stat_statements"
ALLOWED_SETTING = "rds.allowed_extensions"
PRELOAD_SETTING = "shared_preload_libraries"
# read by auroral_rds at start: what SHOW shared_preload_libraries answers (without the module itself)
USER_PRELOAD_SETTING = "auroral.preload_libraries"
_NAME = re.compile(r"[a-z0-9_-]{1,63}")


def offered(major: int) -> list[str]:
    """Aurora's extensions for ``major``, whether shipped or not."""
    return sorted(name for name, first in AURORA.items() if major >= first)


def supported(major: int, shipped: Iterable[str]) -> list[str]:
    """The extensions of ``major`` a cluster on an installation shipping ``shipped`` offers."""
    return sorted(set(offered(major)) & set(shipped))


def split_list(value: str) -> list[str]:
    """A comma-separated parameter value as names (blanks around them ignored, empty ones dropped)."""
    return [item.strip() for item in value.split(",") if item.strip()]


def allowed_extensions_ok(value: str) -> bool:
    """``*`` or a comma list of extension names: nothing else reaches the configuration file."""
    names = split_list(value)
    return all(name == "*" or _NAME.fullmatch(name) for name in names) and len(value) <= 4096


def preload_libraries(value: str | None, libdir: Path) -> list[str]:
    """The libraries a ``shared_preload_libraries`` value (None: Aurora's default) loads on an
    installation whose modules are in ``libdir``; ValueError naming one that is not allowed or not there."""
    names = split_list(DEFAULT_PRELOAD if value is None else value)
    for name in names:
        if name not in PRELOADABLE:
            raise ValueError(f"invalid value for parameter \"{PRELOAD_SETTING}\": \"{name}\" is not allowed")
        if not (libdir / f"{name}.so").is_file():
            if value is None:
                return [n for n in names if (libdir / f"{n}.so").is_file()]
            raise ValueError(f"invalid value for parameter \"{PRELOAD_SETTING}\": \"{name}\" is not installed")
    return list(dict.fromkeys(names))

"""engine.timezones: the zone names a PostgreSQL installation accepts, read from its tz database the
way ``pg_timezone_names`` enumerates it (compared with a real server in tests/rds/test_rds_e2e_parameters.py);
postmaster.config_rejection: which failed starts are the configuration's fault."""

from __future__ import annotations

from pathlib import Path

from auroral.engine.postmaster import config_rejection
from auroral.engine.timezones import names_in


def _tzif(path: Path, leapcnt: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = (0, 0, leapcnt, 0, 1, 4)
    path.write_bytes(b"TZif2" + bytes(15) + b"".join(c.to_bytes(4, "big") for c in counts) + bytes(16))


def test_names_as_postgresql_enumerates_them(tmp_path: Path) -> None:
    root = tmp_path / "zoneinfo"
    _tzif(root / "UTC")
    _tzif(root / "Europe" / "Paris")
    _tzif(root / "right" / "Europe" / "Paris", leapcnt=27)  # leap-second zones are not listed
    _tzif(root / ".hidden" / "Zone")
    (root / "zone.tab").write_text("# not a zone\n")
    (root / "tzdata.zi").write_text("TZi")  # too short for a header
    (root / "Etc").mkdir()
    (root / "Etc" / "UTC").symlink_to(root / "UTC")
    (root / "posix").symlink_to(root / "Europe")  # directories are followed, as stat() does
    assert names_in(root) == frozenset({"UTC", "Europe/Paris", "Etc/UTC", "posix/Paris"})


def test_names_with_a_directory_loop(tmp_path: Path) -> None:
    root = tmp_path / "loop"
    _tzif(root / "A" / "Zone")
    (root / "A" / "again").symlink_to(root / "A")
    names = names_in(root)
    assert "A/Zone" in names and "A/again/Zone" in names  # bounded by PostgreSQL's depth of ten
    assert max(name.count("/") for name in names) < 10


def test_config_rejection() -> None:
    tail = (
        "2026-12-06 02:45:48.545 UTC [1] LOG:  database system is shut down\n"
        "2026-12-06 02:45:48.557 UTC [2] FATAL:  too many server processes configured\n"
        '2026-12-06 02:45:48.557 UTC [2] DETAIL:  "max_connections" (262143) plus "autovacuum_worker_slots" (16) '
        "must be less than 262142.\n"
        "2026-12-06 02:45:48.557 UTC [2] LOG:  database system is shut down\n"
    )
    reason = config_rejection(tail)
    assert reason is not None and reason.startswith("too many server processes configured \"max_connections\"")
    assert config_rejection("x FATAL:  could not write lock file \"postmaster.pid\": No space left on device") is None
    assert config_rejection("x LOG:  configuration file contains errors") is None  # a reload's LOG, not a start
    assert config_rejection(
        'x LOG:  invalid value for parameter "TimeZone": "Mars"\n'
        'x FATAL:  configuration file "/d/postgresql.conf" contains errors') is not None

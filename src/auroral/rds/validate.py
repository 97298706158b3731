"""Input validation with AWS's messages (InvalidParameterValue / InvalidParameterCombination).

Where no public source quotes AWS's exact wording, the message says so in a comment; keep such
messages here so they are easy to correct.
"""

from __future__ import annotations

import re
from typing import Any

from auroral.errors import invalid_parameter_value

_IDENT = re.compile(r"[A-Za-z](?:[A-Za-z0-9]|-(?!-))*")
_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
_DBNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")

# Names the PostgreSQL engine keeps for itself or that RDS rejects as master user names.
# Observed: "postgres", "user", "root", "admin" ("MasterUsername admin cannot be used as it is a
# reserved word used by the engine"); the rds* roles exist in every cluster. The full list is
# unconfirmed (AWS says "reserved words"); SQL reserved words are a plausible superset.
RESERVED_USERNAMES = frozenset(
    {
        "admin", "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric",
        "both", "case", "cast", "check", "collate", "column", "constraint", "create",
        "current_catalog", "current_date", "current_role", "current_time", "current_timestamp",
        "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end", "except",
        "false", "fetch", "for", "foreign", "from", "grant", "group", "having", "in", "initially",
        "intersect", "into", "lateral", "leading", "limit", "localtime", "localtimestamp", "not",
        "null", "offset", "on", "only", "or", "order", "placing", "postgres", "primary", "public",
        "rds_iam", "rds_password", "rds_replication", "rds_superuser", "rdsadmin", "rdsrepladmin",
        "references", "returning", "root", "select", "session_user", "some", "superuser", "symmetric",
        "table", "then", "to", "trailing", "true", "union", "unique", "user", "using", "variadic",
        "when", "where", "window", "with",
    }
)

_IDENTIFIER_RULES = (
    "Identifiers must begin with a letter; must contain only ASCII letters, digits, and hyphens; "
    "and must not end with a hyphen or contain two consecutive hyphens."
)


def identifier(name: str, value: Any, max_len: int = 63) -> str:
    """A DB cluster / instance / parameter group identifier, lower-cased as AWS stores it."""
    text = "" if value is None else str(value)
    if not text:
        raise invalid_parameter_value(f"The parameter {name} must be provided and must not be blank.")
    if len(text) > max_len or not _IDENT.fullmatch(text) or text.endswith("-"):
        raise invalid_parameter_value(f"The parameter {name} is not a valid identifier. {_IDENTIFIER_RULES}")
    return text.lower()


def master_username(value: Any) -> str:
    text = "" if value is None else str(value)
    if not text:
        raise invalid_parameter_value("The parameter MasterUsername must be provided and must not be blank.")
    if not _USERNAME.fullmatch(text):
        # Unconfirmed wording (AWS: "must be 1 to 63 letters or numbers, first character a letter").
        raise invalid_parameter_value(
            "The parameter MasterUsername is not a valid identifier. It must contain 1 to 63 "
            "alphanumeric characters or underscores, and the first character must be a letter."
        )
    if text.lower() in RESERVED_USERNAMES or text.lower().startswith("pg_"):
        raise invalid_parameter_value(
            f"MasterUsername {text} cannot be used as it is a reserved word used by the engine"
        )
    return text


def master_password(value: Any) -> str:
    text = "" if value is None else str(value)
    if not text:
        raise invalid_parameter_value("The parameter MasterUserPassword must be provided and must not be blank.")
    if len(text) < 8:
        raise invalid_parameter_value(
            "The parameter MasterUserPassword is not a valid password because it is shorter than 8 characters."
        )
    if len(text) > 128:
        # Unconfirmed wording, modelled on the "shorter than" message.
        raise invalid_parameter_value(
            "The parameter MasterUserPassword is not a valid password because it is longer than 128 characters."
        )
    if any(not (32 < ord(c) < 127) or c in '/@"' for c in text):
        raise invalid_parameter_value(
            "The parameter MasterUserPassword is not a valid password. Only printable ASCII "
            "characters besides '/', '@', '\"', ' ' may be used."
        )
    return text


def database_name(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    if not _DBNAME.fullmatch(text):
        # Unconfirmed wording.
        raise invalid_parameter_value(
            "The parameter DatabaseName is not a valid identifier. It must begin with a letter and "
            "contain only alphanumeric characters or underscores, at most 63."
        )
    return text


def port(value: Any) -> int:
    if value is None:
        return 5432
    number = int(value)
    if not 1150 <= number <= 65535:
        # Unconfirmed wording; the documented range is 1150-65535.
        raise invalid_parameter_value(f"Invalid port {number}. The port must be between 1150 and 65535.")
    return number


def max_records(params: dict[str, Any]) -> int:
    value = params.get("MaxRecords")
    if value is None:
        return 100
    number = int(value)
    if not 20 <= number <= 100:
        raise invalid_parameter_value(f"Invalid value {number} for MaxRecords. Must be between 20 and 100")
    return number


def tags(value: Any) -> dict[str, str]:
    """The ``Tags`` list ([{Key, Value}]) as a dict, with AWS's limits."""
    out: dict[str, str] = {}
    for tag in value or []:
        key = str(tag.get("Key") or "")
        val = str(tag.get("Value") or "")
        if not key or len(key) > 128:
            raise invalid_parameter_value("Tag keys must be between 1 and 128 characters in length.")
        if len(val) > 256:
            raise invalid_parameter_value("Tag values must be between 0 and 256 characters in length.")
        if key.lower().startswith(("aws:", "rds:")):
            # Unconfirmed wording.
            raise invalid_parameter_value(f"Tag keys cannot start with 'aws:' or 'rds:': {key}")
        out[key] = val
    return out


def backup_retention(value: Any) -> int | None:
    """``BackupRetentionPeriod``: 1 to 35 days for Aurora (None: not given). Unconfirmed wording."""
    if value is None or value == "":
        return None
    text = str(value)
    if not text.isascii() or not text.lstrip("-").isdigit() or not 1 <= int(text) <= 35:
        raise invalid_parameter_value(f"Invalid backup retention period: {text}. Valid values are 1 to 35 days.")
    return int(text)


def _minutes(hhmm: str) -> int | None:
    if len(hhmm) != 5 or hhmm[2] != ":" or not (hhmm[:2] + hhmm[3:]).isdigit():
        return None
    hours, minutes = int(hhmm[:2]), int(hhmm[3:])
    return hours * 60 + minutes if hours < 24 and minutes < 60 else None


def backup_window(value: Any) -> str | None:
    """``PreferredBackupWindow``: ``hh24:mi-hh24:mi`` UTC, at least 30 minutes (None: not given).
    Unconfirmed wording."""
    if value is None or value == "":
        return None
    text = str(value)
    start, sep, end = text.partition("-")
    a, b = _minutes(start), _minutes(end)
    if not sep or a is None or b is None or (b - a) % 1440 < 30:
        raise invalid_parameter_value(
            "The backup window must be in the format hh24:mi-hh24:mi, in Universal Coordinated Time (UTC), "
            "and at least 30 minutes long.")
    return text


def window_start_minutes(window: str) -> int:
    """Minutes after midnight UTC at which a valid ``hh24:mi-hh24:mi`` window opens."""
    return _minutes(window.partition("-")[0]) or 0

"""Aurora's database-level model as SQL: roles, the master user, password verifiers.

The template-wide part lives in ``sql/bootstrap.sql`` (+ ``bootstrap-pre16.sql`` / ``bootstrap-16.sql``
for the CREATEROLE change of PostgreSQL 16). The per-cluster part is composed here with
:mod:`psycopg.sql`, so names are quoted by PostgreSQL's rules.

Passwords never reach PostgreSQL in plaintext: :func:`scram_verifier` computes the SCRAM-SHA-256
verifier (RFC 5802/7677, the format of ``pg_authid.rolpassword``) in Python, and only the verifier
appears in SQL text, server logs and ``pg_stat_statements``.

``rds.restrict_password_commands`` is not SQL: ``ALTER ROLE ... PASSWORD`` can only be intercepted by a
C hook (event triggers do not fire for roles, which are global objects), so it is enforced by the
``auroral_rds`` server module (``ext/auroral_rds.c``, compiled at run time by ``extension``).

What stock PostgreSQL cannot give us (the only module loaded is ``auroral_rds``):

- PostgreSQL <= 15: CREATEROLE may grant *any* non-superuser role, including
  ``pg_execute_server_program``/``pg_read_server_files``/``pg_write_server_files`` (shell and file
  access as the server's OS user). Fixed by PostgreSQL 16's CREATEROLE rules.
- PostgreSQL 16+: a master manages the roles it created (automatic ADMIN OPTION) but not roles created
  by other ``rds_superuser`` members; untrusted extensions (``pg_stat_statements``) need a superuser,
  trusted ones (``citext``, ``pgcrypto``...) need CREATE on the database.
- ``GRANT <role> TO rdsadmin`` by a role's admin succeeds (harmless: rdsadmin is a superuser).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata
from importlib import resources

from psycopg import sql

SCRAM_ITERATIONS = 4096
MASTER_ATTRIBUTES = (
    "LOGIN NOSUPERUSER INHERIT CREATEDB CREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1 "
    "VALID UNTIL 'infinity'"
)
AURORA_ROLES = ("rds_superuser", "rds_replication", "rds_password", "rds_iam")
ADMIN_ROLE = "rdsadmin"  # the bootstrap superuser: the engine's own, over the private socket only
# Streaming replication between a cluster's servers (Aurora reserves this name too): peer over the private
# socket only (conf.hba_conf), never a password.
REPLICATION_ROLE = "rdsrepladmin"
# Roles the engine creates that no client ever logs in as (as in Aurora, where customers cannot log in as
# rdsadmin at all): the endpoints refuse them at once.
RESERVED_ROLES = frozenset({ADMIN_ROLE, REPLICATION_ROLE, *AURORA_ROLES})
# Run on a primary before its first standby is cloned: the role exists with exactly these attributes
# and no password (a role of that name made by someone else is taken over; only rdsadmin, a superuser,
# may give REPLICATION). Idempotent.
ENSURE_REPLICATION_ROLE = (
    "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rdsrepladmin') THEN "
    "CREATE ROLE rdsrepladmin; END IF; END$$",
    "ALTER ROLE rdsrepladmin WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT "
    "NOBYPASSRLS CONNECTION LIMIT -1 PASSWORD NULL",
    "COMMENT ON ROLE rdsrepladmin IS 'Aurora: physical replication between the cluster''s instances "
    "(peer over the private socket only)'",
    # what pg_rewind needs of its source (the PostgreSQL documentation's list for a non-superuser)
    "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean), "
    "pg_catalog.pg_stat_file(text, boolean), pg_catalog.pg_read_binary_file(text), "
    "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO rdsrepladmin",
)


def template_sql(major: int) -> str:
    """The statements applied once per template (as the bootstrap superuser ``rdsadmin``)."""
    files = resources.files("auroral.engine") / "sql"
    common = (files / "bootstrap.sql").read_text(encoding="utf-8")
    specific = (files / ("bootstrap-16.sql" if major >= 16 else "bootstrap-pre16.sql")).read_text(
        encoding="utf-8"
    )
    return common + "\n" + specific


def set_admin_password(admin_password: str) -> sql.Composed:
    return sql.SQL("ALTER ROLE rdsadmin PASSWORD {}").format(sql.Literal(scram_verifier(admin_password)))


def create_master(username: str, password: str, major: int) -> list[sql.Composed]:
    return [
        sql.SQL("CREATE ROLE {} " + MASTER_ATTRIBUTES + " PASSWORD {}").format(
            sql.Identifier(username), sql.Literal(scram_verifier(password))
        ),
        grant_rds_superuser(username, major),
    ]


def reset_master(username: str, password: str, major: int, exists: bool) -> list[sql.Composed]:
    """Restore the master user's attributes, password and ``rds_superuser`` membership.

    ``ALTER ROLE`` does not end existing sessions, so connections stay open (as in Aurora).
    """
    if not exists:
        return create_master(username, password, major)
    return [
        sql.SQL("ALTER ROLE {} " + MASTER_ATTRIBUTES + " PASSWORD {}").format(
            sql.Identifier(username), sql.Literal(scram_verifier(password))
        ),
        grant_rds_superuser(username, major),
    ]


def grant_rds_superuser(username: str, major: int) -> sql.Composed:
    # WITH ADMIN OPTION: rds_superuser members may grant and revoke rds_superuser (Aurora behaviour).
    # On 16+ the INHERIT and SET options are restored too (the master may have granted them away).
    options = "WITH ADMIN OPTION, INHERIT TRUE, SET TRUE" if major >= 16 else "WITH ADMIN OPTION"
    return sql.SQL("GRANT rds_superuser TO {} " + options).format(sql.Identifier(username))


def create_database(name: str, owner: str) -> sql.Composed:
    return sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner))


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` exactly as PostgreSQL stores it."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _saslprep(password: str) -> bytes:
    """SASLprep (RFC 4013) as PostgreSQL's ``pg_saslprep`` applies it: on a prohibited result the
    raw UTF-8 bytes are used instead, so the verifier matches what the server computes at login."""
    raw = password.encode("utf-8")
    if password.isascii():
        # ASCII input: mapping and normalization change nothing; control characters are prohibited
        # (C.2.1), in which case PostgreSQL falls back to the raw bytes, which are these anyway.
        return raw
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in password if not stringprep.in_table_b1(ch)
    )
    normalized = unicodedata.normalize("NFKC", mapped)
    if not normalized:
        return raw
    prohibited = (
        stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3, stringprep.in_table_c4,
        stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
        stringprep.in_table_c9, stringprep.in_table_a1,
    )
    if any(check(ch) for ch in normalized for check in prohibited):
        return raw
    has_ral = any(stringprep.in_table_d1(ch) for ch in normalized)
    if has_ral and (
        any(stringprep.in_table_d2(ch) for ch in normalized)
        or not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1]))
    ):
        return raw
    return normalized.encode("utf-8")

"""PostgreSQL's log files through the RDS API, end to end: a cluster whose parameter group logs every
statement, connection and duration; DescribeDBLogFiles lists the writer's (and a reader's) files by
Aurora's names, DownloadDBLogFilePortion (boto3's paginator, and the AWS CLI's
``--starting-token 0 --output text``) returns what the server wrote, with Aurora's line prefix. No
password ever reaches a log: not a user's (CREATE/ALTER ROLE ... PASSWORD, a DO block, a syntax error,
a failed CREATE ROLE) even under ``log_statement=all``, not the master's set through the API — neither in
what the API returns nor in any file on disk. Changing ``log_statement`` applies at once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from .e2e_helpers import FAST, Db, create_db, delete_db, ident, served_engine_versions, until

SECRETS = ("Sup3r-Secret-Xyzzy", "Another-Secret-Plugh", "BareSecretQuux", "DoBlockSecret", "DupSecret-Fnord",
           "New-Master-Secret-1", "SCRAM-SHA-256$", "ParamSecret-Zork", "CommentSecret-Grue", "MappingSecret-Frotz")
NAME = re.compile(r"error/postgresql\.log\.\d{4}-\d\d-\d\d-\d{4}(\.csv)?")
# Aurora's log_line_prefix %t:%r:%u@%d:[%p]: (%r: the client as the endpoint saw it)
PREFIXED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC:127\.0\.0\.1\(\d+\):master@appdb:\[\d+\]:LOG:  ",
                      re.MULTILINE)


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


def _download(rds: Any, instance_id: str) -> str:
    files = rds.describe_db_log_files(DBInstanceIdentifier=instance_id)["DescribeDBLogFiles"]
    text = ""
    for item in files:
        pages = rds.get_paginator("download_db_log_file_portion").paginate(
            DBInstanceIdentifier=instance_id, LogFileName=item["LogFileName"], Marker="0",
            PaginationConfig={"PageSize": 50})
        text += "".join(page.get("LogFileData", "") for page in pages)
    return text


def _files_on_disk(data_dir: Path) -> list[Path]:
    # as root the engine's files are in /var/lib/auroral/<hash>, which <data dir>/engine links to
    roots = [data_dir, (data_dir / "engine").resolve()]
    return [p for root in roots for p in root.rglob("*") if p.is_file() and not p.is_symlink()
            and (p.name.startswith("postgresql.log.") or p.name == "postmaster.log")]


def _set(rds: Any, group: str, **values: str) -> None:
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
        {"ParameterName": k, "ParameterValue": v, "ApplyMethod": "immediate"} for k, v in values.items()])


def test_log_files_statements_and_no_passwords(rds: Any, server: Any, make_user: Any) -> None:
    group = ident("e2e-logs")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group,
                                          DBParameterGroupFamily="aurora-postgresql16", Description="logs")
    _set(rds, group, log_statement="all", log_connections="1", log_disconnections="1", log_min_duration_statement="0")
    db: Db = create_db(rds, prefix="e2e-logs", DBClusterParameterGroupName=group)
    try:
        with db.connect() as conn:
            assert conn.execute("SHOW log_line_prefix").fetchone() == ("%t:%r:%u@%d:[%p]:",)
            conn.execute("SELECT 'marker-statement-42'")
            conn.execute("CREATE ROLE app_user LOGIN PASSWORD 'Sup3r-Secret-Xyzzy'")
            conn.execute("ALTER ROLE app_user WITH PASSWORD 'Another-Secret-Plugh'")
            with pytest.raises(psycopg.errors.SyntaxError):
                conn.execute("ALTER ROLE app_user PASSWORD BareSecretQuux")
            conn.execute("DO $$ BEGIN EXECUTE format('ALTER ROLE app_user PASSWORD %L', 'DoBlockSecret'); END $$")
            with pytest.raises(psycopg.errors.DuplicateObject):
                conn.execute("CREATE ROLE app_user PASSWORD 'DupSecret-Fnord'")
            conn.execute("ALTER /* a comment */ ROLE app_user PASSWORD 'CommentSecret-Grue'")
            # extended protocol: the password as a bound parameter (PostgreSQL refuses $1 there)
            with pytest.raises(psycopg.errors.Error):
                conn.execute("ALTER ROLE app_user PASSWORD %s", ["ParamSecret-Zork"])
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgres_fdw")
            conn.execute("CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'x')")
            conn.execute("CREATE USER MAPPING FOR master SERVER remote "
                         "OPTIONS (user 'u', password 'MappingSecret-Frotz')")
        # the master's password set through the API (the control plane sends only a verifier, unlogged)
        rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, MasterUserPassword="New-Master-Secret-1",
                              ApplyImmediately=True)
        rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=db.cluster_id, WaiterConfig=FAST)
        db.password = "New-Master-Secret-1"
        with db.connect() as conn:
            conn.execute("SELECT 'after-master-change'")

        files = rds.describe_db_log_files(DBInstanceIdentifier=db.instance_id)["DescribeDBLogFiles"]
        assert files and all(NAME.fullmatch(f["LogFileName"]) and f["Size"] > 0 for f in files)

        def logged() -> str | None:
            text = _download(rds, db.instance_id)
            return text if "after-master-change" in text else None

        text = until(logged, what="the last statement in the log")
        assert "statement: SELECT 'marker-statement-42'" in text
        assert "connection authorized: user=master" in text and "disconnection: session time" in text
        assert "duration: " in text
        assert PREFIXED.search(text), text[-2000:]
        assert "<statement that sets a password: not logged>" in text
        for secret in SECRETS:
            assert secret not in text, secret
        # nor anywhere on disk: every PostgreSQL log file, the servers' stderr, auroral's own log
        on_disk = _files_on_disk(server.data_dir)
        assert any(p.name.startswith("postgresql.log.") for p in on_disk)
        on_disk.append(server.log_path)  # auroral's own log
        for path in on_disk:
            raw = path.read_bytes()
            for secret in SECRETS:
                assert secret.encode() not in raw, (secret, path)

        # the AWS CLI pages through a file with Marker (from --starting-token 0) and prints the text
        name = files[-1]["LogFileName"]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key,
               "AWS_DEFAULT_REGION": server.region, "AWS_CONFIG_FILE": "/dev/null",
               "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        env.pop("AWS_SESSION_TOKEN", None)
        cli = subprocess.run([sys.executable, "-m", "awscli", "rds", "download-db-log-file-portion",
                              "--endpoint-url", server.url, "--db-instance-identifier", db.instance_id,
                              "--log-file-name", name, "--starting-token", "0", "--output", "text"],
                             env=env, capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0, cli.stderr
        assert "after-master-change" in cli.stdout or "marker-statement-42" in cli.stdout
        assert PREFIXED.search(cli.stdout)

        with pytest.raises(ClientError) as info:
            rds.download_db_log_file_portion(DBInstanceIdentifier=db.instance_id,
                                             LogFileName="error/postgresql.log.1999-01-01-0000")
        assert info.value.response["Error"]["Code"] == "DBLogFileNotFoundFault"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

        # what the cluster's OS user plants in its log directory is never read by auroral (root)
        planted = "postgresql.log.1999-01-01-0000"
        for directory in {p.parent for p in on_disk if p.name.startswith("postgresql.log.")}:
            os.symlink("/etc/shadow", directory / planted)
        names = {f["LogFileName"] for f in rds.describe_db_log_files(
            DBInstanceIdentifier=db.instance_id)["DescribeDBLogFiles"]}
        assert f"error/{planted}" not in names
        with pytest.raises(ClientError) as info:
            rds.download_db_log_file_portion(DBInstanceIdentifier=db.instance_id, LogFileName=f"error/{planted}")
        assert info.value.response["Error"]["Code"] == "DBLogFileNotFoundFault"

        # dynamic: log_statement=none and no durations from now on (a reload, no reboot)
        _set(rds, group, log_statement="none", log_min_duration_statement="-1", log_rotation_age="30",
             log_rotation_size="50000", log_min_messages="notice")

        def quiet() -> bool:
            with db.connect() as conn:
                shown = [conn.execute(f"SHOW {name}").fetchone() for name in (
                    "log_statement", "log_rotation_age", "log_rotation_size", "log_min_messages")]
                return shown == [("none",), ("30min",), ("50000kB",), ("notice",)]

        until(quiet, what="log_statement=none")
        with db.connect() as conn:
            conn.execute("SELECT 'not-logged-77'")
            conn.execute("SELECT 'flush'")
        assert "not-logged-77" not in _download(rds, db.instance_id)

        # IAM: rds:DescribeDBLogFiles / rds:DownloadDBLogFilePortion on the db ARN, tag conditions included
        db_arn = rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)["DBInstances"][0]["DBInstanceArn"]
        rds.add_tags_to_resource(ResourceName=db_arn, Tags=[{"Key": "team", "Value": "blue"}])
        user = make_user({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "rds:DescribeDBLogFiles", "Resource": db_arn},
            {"Effect": "Allow", "Action": "rds:DownloadDBLogFilePortion", "Resource": "*",
             "Condition": {"StringEquals": {"rds:db-tag/team": "red"}}}]})
        limited = server.client("rds", access_key=user.access_key, secret_key=user.secret_key)
        until(lambda: limited.describe_db_log_files(DBInstanceIdentifier=db.instance_id), what="the user's policy")
        with pytest.raises(ClientError) as denied:
            limited.download_db_log_file_portion(DBInstanceIdentifier=db.instance_id, LogFileName=name)
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
        assert f"rds:DownloadDBLogFilePortion on resource: {db_arn}" in denied.value.response["Error"]["Message"]
        rds.add_tags_to_resource(ResourceName=db_arn, Tags=[{"Key": "team", "Value": "red"}])
        assert "LogFileData" in limited.download_db_log_file_portion(DBInstanceIdentifier=db.instance_id,
                                                                     LogFileName=name, NumberOfLines=1)

        # rotation: log_rotation_age=1 starts a new file (named for its minute) within a minute
        _set(rds, group, log_rotation_age="1", log_statement="all")
        before = {f["LogFileName"] for f in files}

        def rotated() -> set[str] | None:
            with db.connect() as conn:
                conn.execute("SELECT 'after-rotation'")
            now = {f["LogFileName"] for f in
                   rds.describe_db_log_files(DBInstanceIdentifier=db.instance_id)["DescribeDBLogFiles"]}
            return (now - before) or None

        new_files = until(rotated, timeout=150, what="a rotated log file")
        assert all(NAME.fullmatch(n) for n in new_files)
        newest = max(new_files)
        page = rds.download_db_log_file_portion(DBInstanceIdentifier=db.instance_id, LogFileName=newest, Marker="0")
        assert "after-rotation" in page["LogFileData"] or "after-rotation" in _download(rds, db.instance_id)

        # csvlog too: a .csv file next to the text one, with the same statements as CSV
        _set(rds, group, log_destination="stderr,csvlog")

        def csv_file() -> str | None:
            with db.connect() as conn:
                conn.execute("SELECT 'in-csv-99'")
            names = [f["LogFileName"] for f in
                     rds.describe_db_log_files(DBInstanceIdentifier=db.instance_id)["DescribeDBLogFiles"]]
            name = next((n for n in names if n.endswith(".csv")), None)
            if name is None:
                return None
            # the collector creates the file before it writes to it: wait for the statement's line
            text = str(rds.download_db_log_file_portion(DBInstanceIdentifier=db.instance_id, LogFileName=name,
                                                        Marker="0")["LogFileData"] or "")
            return name if "in-csv-99" in text else None

        csv_name = until(csv_file, what="a csvlog file with the statement")
        assert NAME.fullmatch(csv_name)
        csv_text = rds.download_db_log_file_portion(DBInstanceIdentifier=db.instance_id, LogFileName=csv_name,
                                                    Marker="0")["LogFileData"]
        assert ',"master","appdb",' in csv_text and "in-csv-99" in csv_text

        # a reader has its own server, and its own log files
        reader = ident("e2e-logs-r")
        rds.create_db_instance(DBInstanceIdentifier=reader, DBClusterIdentifier=db.cluster_id,
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=reader, WaiterConfig=FAST)
        reader_text = _download(rds, reader)
        assert "database system is ready to accept read-only connections" in reader_text
        assert "marker-statement-42" not in reader_text
        rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)
    finally:
        delete_db(rds, db)


@pytest.mark.parametrize(("engine_version", "major"), served_engine_versions())
def test_no_password_in_the_log_on_every_major(rds: Any, engine_version: str, major: int) -> None:
    """auroral_rds is compiled per major: its redaction holds on each, with every statement logged."""
    group = ident(f"e2e-logs{major}")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group,
                                          DBParameterGroupFamily=f"aurora-postgresql{major}", Description="logs")
    _set(rds, group, log_statement="all", log_min_duration_statement="0")
    db = create_db(rds, prefix=f"e2e-logs{major}", engine_version=engine_version, DBClusterParameterGroupName=group)
    try:
        with db.connect() as conn:
            conn.execute("CREATE ROLE u1 LOGIN PASSWORD 'EveryMajor-Secret-1'")
            conn.execute("ALTER USER u1 WITH ENCRYPTED PASSWORD 'EveryMajor-Secret-2'")
            conn.execute("SELECT 'every-major-done'")

        def logged() -> str | None:
            text = _download(rds, db.instance_id)
            return text if "every-major-done" in text else None

        text = until(logged, what="the last statement in the log")
        assert text.count("<statement that sets a password: not logged>") >= 2
        assert "EveryMajor-Secret" not in text
    finally:
        delete_db(rds, db)

"""DescribeDBLogFiles and DownloadDBLogFilePortion against the runtime's log directory (files written here
the way PostgreSQL's collector writes them), through botocore's parser; and the file handling of
``engine/logfiles.py`` against what the server's OS user could plant in its directory."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from auroral.engine import logfiles
from auroral.rds.logs import parse_marker

from .conftest import Env

OLD = "postgresql.log.2026-12-01-0900"
NEW = "postgresql.log.2026-12-06-1900"


def _write(directory: Path, name: str, lines: list[str], age_minutes: float = 0) -> None:
    path = directory / name
    path.write_text("".join(line + "\n" for line in lines))
    stamp = time.time() - age_minutes * 60
    os.utime(path, (stamp, stamp))


async def _setup(env: Env, tmp_path: Path) -> Path:
    await env.cluster()
    instance = await env.instance()
    directory = tmp_path / "pglog"
    directory.mkdir(mode=0o700)
    env.runtime.log_dirs[instance["DbiResourceId"]] = directory
    return directory


async def test_describe_lists_files_with_filters_and_expires_old_ones(env: Env, tmp_path: Path) -> None:
    directory = await _setup(env, tmp_path)
    _write(directory, NEW, ["a"] * 3)
    _write(directory, "postgresql.log.2026-12-06-1800", ["b"], age_minutes=60)
    _write(directory, OLD, ["c"], age_minutes=5 * 24 * 60)  # older than the default 4320 minutes
    (directory / "postgresql.log.evil").write_text("x")  # not a name the collector writes
    out = await env.call("DescribeDBLogFiles", DBInstanceIdentifier="i1")
    files = {f["LogFileName"]: f for f in out["DescribeDBLogFiles"]}
    assert set(files) == {f"error/{NEW}", "error/postgresql.log.2026-12-06-1800"}
    assert files[f"error/{NEW}"]["Size"] == 6
    assert abs(files[f"error/{NEW}"]["LastWritten"] - time.time() * 1000) < 60_000
    assert not (directory / OLD).exists()
    since = int((time.time() - 30 * 60) * 1000)
    out = await env.call("DescribeDBLogFiles", DBInstanceIdentifier="i1", FileLastWritten=since)
    assert [f["LogFileName"] for f in out["DescribeDBLogFiles"]] == [f"error/{NEW}"]
    out = await env.call("DescribeDBLogFiles", DBInstanceIdentifier="i1", FileSize=2)
    assert [f["LogFileName"] for f in out["DescribeDBLogFiles"]] == [f"error/{NEW}"]
    out = await env.call("DescribeDBLogFiles", DBInstanceIdentifier="i1", FilenameContains="-1800")
    assert [f["LogFileName"] for f in out["DescribeDBLogFiles"]] == ["error/postgresql.log.2026-12-06-1800"]
    err = await env.fails("DescribeDBLogFiles", DBInstanceIdentifier="nope")
    assert err.code == "DBInstanceNotFound"


async def test_download_tail_head_and_marker_pages(env: Env, tmp_path: Path) -> None:
    directory = await _setup(env, tmp_path)
    lines = [f"line {i}" for i in range(25)]
    _write(directory, NEW, lines)
    name = f"error/{NEW}"
    whole = await env.call("DownloadDBLogFilePortion", DBInstanceIdentifier="i1", LogFileName=name)
    assert whole["LogFileData"] == "".join(f"{x}\n" for x in lines)
    assert whole["AdditionalDataPending"] is False
    last = await env.call("DownloadDBLogFilePortion", DBInstanceIdentifier="i1", LogFileName=name, NumberOfLines=2)
    assert last["LogFileData"] == "line 23\nline 24\n"
    got, marker, pages = "", "0", 0
    while True:
        page = await env.call("DownloadDBLogFilePortion", DBInstanceIdentifier="i1", LogFileName=name,
                              Marker=marker, NumberOfLines=10)
        got += page["LogFileData"]
        marker, pages = page["Marker"], pages + 1
        if not page["AdditionalDataPending"]:
            break
    assert got == whole["LogFileData"] and pages == 3
    # new lines after the last marker come with the next call
    with open(directory / NEW, "a") as handle:
        handle.write("line 25\n")
    more = await env.call("DownloadDBLogFilePortion", DBInstanceIdentifier="i1", LogFileName=name, Marker=marker)
    assert more["LogFileData"] == "line 25\n"


@pytest.mark.parametrize("name", [
    "error/postgresql.log.2030-01-01-0000", "postgresql.log.2026-12-06-1900", "error/../../etc/passwd",
    "error/postgresql.log.2026-12-06-1900/x",
])
async def test_download_of_a_missing_file(env: Env, tmp_path: Path, name: str) -> None:
    directory = await _setup(env, tmp_path)
    _write(directory, NEW, ["x"])
    err = await env.fails("DownloadDBLogFilePortion", DBInstanceIdentifier="i1", LogFileName=name)
    assert (err.code, err.status) == ("DBLogFileNotFoundFault", 404)


async def test_bad_marker(env: Env, tmp_path: Path) -> None:
    directory = await _setup(env, tmp_path)
    _write(directory, NEW, ["x"])
    err = await env.fails("DownloadDBLogFilePortion", DBInstanceIdentifier="i1", LogFileName=f"error/{NEW}",
                          Marker="abc")
    assert err.code == "InvalidParameterValue"
    assert parse_marker("0") == 0 and parse_marker("3:120") == 120


def test_links_fifos_and_hard_links_are_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root's secret\n")
    directory = tmp_path / "pglog"
    directory.mkdir()
    os.symlink(secret, directory / "postgresql.log.2026-12-06-1900")
    os.mkfifo(directory / "postgresql.log.2026-12-06-2000")
    os.link(secret, directory / "postgresql.log.2026-12-06-2100")
    assert logfiles.list_files(directory) == []
    for name in ("postgresql.log.2026-12-06-1900", "postgresql.log.2026-12-06-2000", "postgresql.log.2026-12-06-2100"):
        assert logfiles.open_file(directory, name) is None
    # the directory itself swapped for a symlink in a directory others can write: refused
    (tmp_path / "pub").mkdir(mode=0o777)
    os.chmod(tmp_path / "pub", 0o777)
    os.symlink(tmp_path, tmp_path / "pub" / "pglog")
    with pytest.raises(OSError):
        logfiles.list_files(tmp_path / "pub" / "pglog")


def test_expire_keeps_the_newest_file(tmp_path: Path) -> None:
    _write(tmp_path, OLD, ["x"], age_minutes=10_000)
    assert logfiles.expire(tmp_path, 1440) == []  # the only (newest) file stays, however old
    _write(tmp_path, NEW, ["y"])
    assert logfiles.expire(tmp_path, 1440) == [OLD]
    assert [f.name for f in logfiles.list_files(tmp_path)] == [NEW]


def test_failure_lines_come_from_the_newest_file_only_for_failures(tmp_path: Path) -> None:
    _write(tmp_path, OLD, ["2026-12-01 09:00:00 UTC::@:[1]:FATAL:  old"], age_minutes=60)
    _write(tmp_path, NEW, ["2026-12-06 19:00:00 UTC:127.0.0.1(5):u@d:[2]:LOG:  statement: SELECT 'private'",
                           "2026-12-06 19:00:01 UTC::@:[3]:PANIC:  could not write to file"])
    assert logfiles.failure_lines(tmp_path) == "2026-12-06 19:00:01 UTC::@:[3]:PANIC:  could not write to file"


@pytest.mark.parametrize(("name", "value"), [
    ("log_line_prefix", "%m secret"), ("log_rotation_age", "0"), ("log_rotation_age", "1441"),
    ("log_rotation_size", "100"), ("rds.log_retention_period", "60"), ("log_min_messages", "chatty"),
    ("log_statement", "everything"),
])
async def test_logging_parameters_are_checked(env: Env, name: str, value: str) -> None:
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="g",
                   DBParameterGroupFamily="aurora-postgresql16", Description="d")
    err = await env.fails("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="g", Parameters=[
        {"ParameterName": name, "ParameterValue": value, "ApplyMethod": "immediate"}])
    assert err.code == "InvalidParameterValue"


async def test_retention_follows_the_cluster_parameter(env: Env, tmp_path: Path) -> None:
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="g",
                   DBParameterGroupFamily="aurora-postgresql16", Description="d")
    await env.call("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="g", Parameters=[
        {"ParameterName": "rds.log_retention_period", "ParameterValue": "1440", "ApplyMethod": "immediate"}])
    await env.cluster(DBClusterParameterGroupName="g")
    instance = await env.instance()
    env.runtime.log_dirs[instance["DbiResourceId"]] = tmp_path
    _write(tmp_path, NEW, ["new"])
    _write(tmp_path, OLD, ["two days old"], age_minutes=2 * 24 * 60)  # kept by the default 4320, not by 1440
    out = await env.call("DescribeDBLogFiles", DBInstanceIdentifier="i1")
    assert [f["LogFileName"] for f in out["DescribeDBLogFiles"]] == [f"error/{NEW}"]


def test_names_are_the_collectors_only() -> None:
    assert logfiles.is_log_name(NEW) and logfiles.is_log_name(NEW + ".csv")
    for name in (NEW + ".json", NEW + "x", "postgresql.log.2026-12-06-190", "postgresql.log.2026-12-06-19000",
                 "postgresql.log.2026/12/06-1900", "../" + NEW, "postgresql.log.\uff12\uff10\uff12\uff16-12-06-1900", ""):
        assert not logfiles.is_log_name(name), name

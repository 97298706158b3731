"""DB log files: DescribeDBLogFiles and DownloadDBLogFilePortion over each instance's real PostgreSQL log.

Every instance runs on a PostgreSQL server of its own (the writer on the primary, each reader on its
standby) that writes rotated log files (``engine/logfiles.py``); the runtime says where
(``ClusterRuntime.log_directory``). They are listed as Aurora PostgreSQL lists them:
``error/postgresql.log.2026-12-06-1900`` (``LogFileName``), ``LastWritten`` in milliseconds since the
epoch, ``Size`` in bytes. Files older than the cluster's ``rds.log_retention_period`` (minutes) are
removed before every listing as well as by the runtime's periodic sweep.

DownloadDBLogFilePortion follows the API reference: without ``Marker`` the last ``NumberOfLines`` lines
(10000 if not given) of the file; with ``Marker`` (``"0"``: the start) the lines after it, up to
``NumberOfLines`` (all, if not given), at most 1 MB either way, then the ``Marker`` of the next
portion and ``AdditionalDataPending``. The marker names a byte offset in the file: ``"<n>:<offset>"``
as AWS's markers look (the first field is always 0 here; unconfirmed what AWS puts there), and a plain
``"<offset>"`` is accepted too (so ``"0"``). This is the paginator the AWS CLI drives with
``--starting-token 0``.

Authorization is the table's (``rds:DescribeDBLogFiles`` / ``rds:DownloadDBLogFilePortion`` on the
``db`` ARN, with its tags as ``rds:db-tag/<k>``). Nothing here takes a path from a request: the file
name is checked for its exact shape and compared with what the directory holds, and every read goes
through the directory's descriptor (``logfiles``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from auroral.api.context import RequestContext
from auroral.engine import logfiles
from auroral.errors import invalid_parameter_value
from auroral.rds.base import paginate, rds_error
from auroral.rds.instances import InstanceOperations
from auroral.rds.model import Cluster, Instance

FILE_PREFIX = "error/"
_MAX_INT = 2**31 - 1


def _long(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_parameter_value(f"Invalid value for parameter {name}") from None


def parse_marker(value: Any) -> int:
    """A DownloadDBLogFilePortion marker as a byte offset; InvalidParameterValue if it is not one of ours."""
    text = str(value)
    tail = text.rpartition(":")[2]
    head = text.rpartition(":")[0]
    if not (tail.isascii() and tail.isdigit() and len(tail) <= 18) or (head and not (head.isascii() and head.isdigit())):
        # Unconfirmed wording.
        raise invalid_parameter_value(f"Invalid marker: {text}")
    return int(tail)


def make_marker(offset: int) -> str:
    return f"0:{offset}"


def retention_minutes(cluster: Cluster) -> int:
    value = cluster.parameters.get("rds.log_retention_period", "")
    return int(value) if value.isascii() and value.isdigit() else logfiles.DEFAULT_RETENTION_MINUTES


class LogOperations(InstanceOperations):
    def _log_target(self, ctx: RequestContext, params: dict[str, Any]) -> tuple[Cluster, Instance]:
        ident = str(params.get("DBInstanceIdentifier") or "")
        if not ident:
            raise invalid_parameter_value("The parameter DBInstanceIdentifier must be provided and must not be blank.")
        instance = self._instance(ctx.account, ident)
        cluster = self._cluster(ctx.account, instance.cluster_identifier)
        return cluster, instance

    def _log_files(self, cluster: Cluster, instance: Instance) -> list[logfiles.LogFile]:
        directory = self.runtime.log_directory(cluster, instance)
        if directory is None:
            return []
        logfiles.expire(directory, retention_minutes(cluster))
        return logfiles.list_files(directory)

    async def DescribeDBLogFiles(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        cluster, instance = self._log_target(ctx, params)
        contains = params.get("FilenameContains")
        since = _long(params, "FileLastWritten")
        larger = _long(params, "FileSize")
        files = await asyncio.to_thread(self._log_files, cluster, instance)
        views = []
        for item in files:
            name = FILE_PREFIX + item.name
            if contains and str(contains) not in name:
                continue
            if since is not None and item.last_written_ms < since:
                continue
            if larger is not None and item.size <= larger:
                continue
            views.append({"LogFileName": name, "LastWritten": item.last_written_ms, "Size": item.size})
        items, marker = paginate(views, lambda v: str(v["LogFileName"]), params)
        out: dict[str, Any] = {"DescribeDBLogFiles": items}
        if marker:
            out["Marker"] = marker
        return out

    async def DownloadDBLogFilePortion(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        cluster, instance = self._log_target(ctx, params)
        name = str(params.get("LogFileName") or "")
        if not name:
            raise invalid_parameter_value("The parameter LogFileName must be provided and must not be blank.")
        lines = _long(params, "NumberOfLines")
        if lines is not None and not 0 <= lines <= _MAX_INT:
            # Unconfirmed wording.
            raise invalid_parameter_value(f"Invalid value {lines} for NumberOfLines.")
        raw_marker = params.get("Marker")
        offset = parse_marker(raw_marker) if raw_marker not in (None, "") else None
        directory = self.runtime.log_directory(cluster, instance)
        portion = None
        if directory is not None and name.startswith(FILE_PREFIX):
            portion = await asyncio.to_thread(_read_portion, directory, name[len(FILE_PREFIX):], offset, lines)
        if portion is None:
            # Unconfirmed wording (the code and status are the model's).
            raise rds_error("DBLogFileNotFoundFault", f"DBLog File: {name}, is not found on the DB instance")
        return {
            "LogFileData": portion.data.decode("utf-8", errors="replace"),
            "Marker": make_marker(portion.next_offset),
            "AdditionalDataPending": portion.pending,
        }


def _read_portion(directory: Any, name: str, offset: int | None, lines: int | None) -> logfiles.Portion | None:
    fd = logfiles.open_file(directory, name)
    if fd is None:
        return None
    try:
        if offset is None:
            return logfiles.tail(fd, logfiles.DEFAULT_TAIL_LINES if lines is None else lines)
        return logfiles.forward(fd, offset, lines)
    finally:
        os.close(fd)

"""The ``auroral`` command as a user meets it: ``python -m auroral.cli`` subprocesses against two real
servers (different data directories and ports), which ``status`` must tell apart."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from botocore.exceptions import ClientError

from auroral import __version__
from auroral.gateway.flows import FlowRecord
from tests.conftest import Server, new_root_key, server_tmpdir, start_server, stop_server

SIGPIPE_STATUS = 128 + signal.SIGPIPE


def _env() -> dict[str, str]:
    """The caller's environment without auroral's variables: only the arguments choose the server."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AURORAL_")}


def _auroral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auroral.cli", *args], capture_output=True, text=True,
                          timeout=120, env=_env())


def _into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose reader has gone (``auroral ... | head -0``)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "auroral.cli", *args], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120, env=_env())
    finally:
        os.close(write)


@pytest.fixture(scope="module")
def two() -> Iterator[tuple[Server, Server]]:
    servers: list[Server] = []
    try:
        for account in ("111111111111", "222222222222"):
            key, secret = new_root_key()
            servers.append(start_server(server_tmpdir() / "data", access_key=key, secret_key=secret,
                                        account=account))
        yield servers[0], servers[1]
    finally:
        for server in servers:
            stop_server(server)
            shutil.rmtree(server.data_dir.parent, ignore_errors=True)


def _port(server: Server) -> str:
    return server.url.rsplit(":", 1)[1]


def test_status_describes_the_server_of_the_data_directory_given(two: tuple[Server, Server]) -> None:
    for mine, other in (two, two[::-1]):
        out = _auroral("status", "--data-dir", str(mine.data_dir))
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"ready at {mine.url} " in out.stdout and f"account {mine.account}," in out.stdout
        assert f"pid {mine.proc.pid if mine.proc else '?'}" in out.stdout
        assert str(mine.data_dir) in out.stdout
        assert other.url not in out.stdout and other.account not in out.stdout
        # the same data directory and its own port: the same answer
        assert _auroral("status", "--data-dir", str(mine.data_dir), "--port", _port(mine)).returncode == 0


def test_status_with_another_servers_port_is_not_running(two: tuple[Server, Server]) -> None:
    a, b = two
    out = _auroral("status", "--data-dir", str(a.data_dir), "--port", _port(b))
    assert out.returncode == 1
    assert out.stdout.startswith("auroral is not running")
    assert f"is at {a.url}" in out.stdout  # where a's server is,
    assert f"account {b.account}; give its --data-dir" in out.stdout  # and that another one answers there
    assert "ready" not in out.stdout


def test_status_of_a_data_directory_without_a_server(two: tuple[Server, Server], tmp_path: Path) -> None:
    # no server.json: not running, even with the port of a running server
    for args in ([], ["--port", _port(two[0])]):
        out = _auroral("status", "--data-dir", str(tmp_path), *args)
        assert out.returncode == 1 and out.stdout.startswith("auroral is not running"), out.stdout
        assert "ready" not in out.stdout


def test_status_refuses_a_stale_server_file_naming_another_running_server(two: tuple[Server, Server],
                                                                           tmp_path: Path) -> None:
    """A data directory whose server died without removing server.json, its address now served by
    another data directory's server: that other server is not the one of this directory."""
    _, b = two
    info = json.loads((b.data_dir / "server.json").read_text())
    stale = tmp_path / "stale"
    stale.mkdir()
    # a live pid (this test's) but another run of the server
    (stale / "server.json").write_text(json.dumps({**info, "pid": os.getpid(), "server_id": "0123456789abcdef"}))
    out = _auroral("status", "--data-dir", str(stale))
    assert out.returncode == 1 and f"another auroral answers at {b.url}" in out.stdout, out.stdout
    # b's exact server file, but its process is gone
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (stale / "server.json").write_text(json.dumps({**info, "pid": dead.pid}))
    out = _auroral("status", "--data-dir", str(stale))
    assert out.returncode == 1 and "is gone" in out.stdout, out.stdout


def test_version() -> None:
    out = _auroral("--version")
    assert out.returncode == 0 and out.stdout == f"auroral {__version__}\n"


def _audit_json(server: Server, *args: str) -> list[dict[str, object]]:
    out = _auroral("audit", "--data-dir", str(server.data_dir), "--json", "--max", "100000", *args)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_audit_has_error_and_resource_columns_and_says_what_max_left_out(two: tuple[Server, Server]) -> None:
    a, _ = two
    iam = a.client("iam")
    iam.create_user(UserName="cli-audit-u1")
    with pytest.raises(ClientError):
        iam.get_user(UserName="cli-audit-nobody")
    for _ in range(3):
        iam.list_users()
    for _ in range(100):  # the trail is written every 0.2 s
        if len(_audit_json(a, "--event", "ListUsers")) == 3:
            break
        time.sleep(0.1)
    table = _auroral("audit", "--data-dir", str(a.data_dir), "--max", "100000")
    header, *rows = table.stdout.splitlines()
    assert header.split()[-2:] == ["error", "resource"]
    [created] = [r for r in rows if " CreateUser " in r]
    assert created.split()[-2:] == ["-", "cli-audit-u1"]  # CloudTrail names IAM users by name
    [failed] = [r for r in rows if " GetUser " in r]
    assert failed.split()[-2] == "NoSuchEntity"
    assert table.stderr == ""  # nothing left out

    total = len(_audit_json(a))
    assert total > 3
    capped = _auroral("audit", "--data-dir", str(a.data_dir), "--max", "2")
    assert len(capped.stdout.splitlines()) == 1 + 2
    assert capped.stderr == f"({total - 2} more; use --max)\n"
    assert all(" ListUsers " in row for row in capped.stdout.splitlines()[1:])  # the newest
    # the default cap is 50, and is said too
    many = _auroral("audit", "--data-dir", str(a.data_dir))
    assert len(many.stdout.splitlines()) == 1 + min(total, 50)
    assert (many.stderr == f"({total - 50} more; use --max)\n") if total > 50 else many.stderr == ""
    # --json lists oldest first, as the table does
    names = [doc["eventName"] for doc in _audit_json(a)]
    assert names[0] == "CreateUser" and names[-1] == "ListUsers"


def _record(conn: int, phase: Literal["open", "close"], action: Literal["ACCEPT", "REJECT"], **kw: int) -> str:
    rec = FlowRecord(account_id="111111111111", interface_id="eni-1", srcaddr="127.10.1.10", dstaddr="127.0.0.1",
                     srcport=40000 + conn, dstport=5432, start=1_700_000_000 + conn, end=1_700_000_000 + conn,
                     action=action, reason=f"why {conn}", endpoint_id="db-ABC", connection_id=conn, phase=phase, **kw)
    return json.dumps(rec.to_dict()) + "\n"


def test_flows_one_row_per_record_with_its_phase(tmp_path: Path) -> None:
    # the records the gateway writes for an accepted connection (open, then close) and a rejected one
    (tmp_path / "flows.jsonl").write_text(
        _record(1, "open", "ACCEPT") + _record(2, "open", "REJECT")
        + _record(1, "close", "ACCEPT", packets=3, bytes=300, packets_out=2, bytes_out=4000)
    )
    out = _auroral("flows", "--data-dir", str(tmp_path))
    header, *rows = out.stdout.splitlines()
    assert header.split()[:6] == ["time", "(UTC)", "conn", "phase", "action", "source"]
    assert [r.split()[2:5] for r in rows] == [["1", "open", "ACCEPT"], ["2", "open", "REJECT"],
                                              ["1", "close", "ACCEPT"]]
    assert "300/4000" in rows[2] and "300/4000" not in rows[0]
    closed = _auroral("flows", "--data-dir", str(tmp_path), "--phase", "close").stdout.splitlines()
    assert len(closed) == 2 and closed[1].split()[3] == "close"
    helped = _auroral("flows", "--help").stdout
    assert "phase" in helped and "connection id" in helped and "bytes in/out" in helped


def test_printing_into_a_closed_pipe_is_quiet(two: tuple[Server, Server], tmp_path: Path) -> None:
    """`auroral status | head -0`: no BrokenPipeError traceback, the status of a SIGPIPE'd tool."""
    a, _ = two
    (tmp_path / "flows.jsonl").write_text(_record(1, "open", "ACCEPT") * 2000)
    data = ["--data-dir", str(a.data_dir)]
    for args in (["status", *data], ["audit", *data, "--max", "100000"],
                 ["audit", *data, "--json", "--max", "100000"], ["env", *data], ["ca", *data],
                 ["flows", "--data-dir", str(tmp_path)]):
        out = _into_closed_pipe(*args)
        assert out.stderr == "" and out.returncode == SIGPIPE_STATUS, (args, out.stderr)
    for args in (["--version"], ["--help"], ["flows", "--help"]):  # argparse's own printing
        out = _into_closed_pipe(*args)
        assert out.stderr == "" and out.returncode in (0, SIGPIPE_STATUS), (args, out.stderr)

"""``auroral up`` raises its descriptor soft limit (RLIMIT_NOFILE) to the hard limit at start: every
endpoint, the API and the PostgreSQL servers' pipes share the process's descriptors, and the gateway's
limits are derived from it (``auroral.gateway.limits``)."""

from __future__ import annotations

import resource
import shutil
from pathlib import Path

from tests.conftest import new_root_key, server_tmpdir, start_server, stop_server


def _soft_nofile(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no 'Max open files' line")


def test_up_raises_the_soft_descriptor_limit_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    started_with = min(soft, 1024)
    key, secret = new_root_key()
    base = server_tmpdir()
    resource.setrlimit(resource.RLIMIT_NOFILE, (started_with, hard))  # inherited by the server
    try:
        server = start_server(base / "data", access_key=key, secret_key=secret, account="123456789012")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert server.proc is not None
        got = _soft_nofile(server.proc.pid)
        assert got > started_with or started_with == hard
        if hard != resource.RLIM_INFINITY:
            assert got == hard
    finally:
        stop_server(server)
        shutil.rmtree(base, ignore_errors=True)

"""A real ``auroral up`` with its DNS server and hosts block: settings, status, `auroral dns`, restart."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from auroral.dns.hosts import block_id, splice
from tests.conftest import Server, free_port, new_root_key, server_tmpdir, start_server, stop_server

USER_LINES = "127.0.0.1\tlocalhost\n"


def health(srv: Server) -> dict[str, object]:
    with urllib.request.urlopen(srv.url + "/_auroral/health", timeout=5) as resp:
        return dict(json.loads(resp.read()))


def cli(srv: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auroral.cli", *args, "--data-dir", str(srv.data_dir)],
                          capture_output=True, text=True, env=srv.env, timeout=60)


def free_dns_port() -> int:
    """A port free on both UDP and TCP."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


@pytest.fixture
def base() -> Iterator[Path]:
    path = server_tmpdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_dns_server_and_hosts_block_with_the_app(base: Path) -> None:
    key, secret = new_root_key()
    port = free_dns_port()
    hosts = base / "hosts"
    data = base / "data"
    stale = f"127.0.0.9\tgone.{'a' * 12}.us-east-1.rds.amazonaws.com"
    # a block a killed run of this data directory left behind, and one of another server
    hosts.write_text(splice(splice(USER_LINES, block_id(data), [stale]), "0123456789ab", ["127.0.0.8\tother.x"]))
    srv = start_server(data, access_key=key, secret_key=secret, account="123456789012",
                       extra_env={"AURORAL_DNS": f"127.0.0.1:{port}", "AURORAL_HOSTS_FILE": str(hosts)})
    try:
        info = health(srv)
        assert info["dns"] == f"127.0.0.1:{port}" and info["hosts_file"] == str(hosts)
        text = hosts.read_text()
        assert "gone." not in text and "other.x" in text and text.startswith(USER_LINES)
        for query, expected in (("nope.abc.us-east-1.rds.amazonaws.com", dns.rcode.NXDOMAIN),
                                ("example.com", dns.rcode.REFUSED)):
            msg = dns.message.make_query(query, "A")
            assert dns.query.udp(msg, "127.0.0.1", port=port, timeout=3).rcode() == expected
            assert dns.query.tcp(msg, "127.0.0.1", port=port, timeout=3).rcode() == expected
        status = cli(srv, "status")
        assert status.returncode == 0 and f"127.0.0.1:{port}" in status.stdout, status.stdout
        shown = cli(srv, "dns")
        assert shown.returncode == 0 and f"DNS server: 127.0.0.1:{port}" in shown.stdout, shown.stderr
        assert json.loads(cli(srv, "dns", "--json").stdout)["records"] == {}
        # what the command prints for records (the snapshot the server writes after each change)
        snapshot = json.loads((data / "dns.json").read_text())
        w, i1 = "db1.cluster-abc.us-east-1.rds.amazonaws.com", "i1.abc.us-east-1.rds.amazonaws.com"
        snapshot["records"] = {w: [{"type": "CNAME", "value": i1}], i1: [{"type": "A", "value": "127.0.0.5"}]}
        (data / "dns.json").write_text(json.dumps(snapshot))
        assert f"{w}\tCNAME\t{i1}" in cli(srv, "dns").stdout
        pasted = cli(srv, "dns", "--hosts").stdout
        assert pasted == splice("", block_id(data), [f"127.0.0.5\t{w}", f"127.0.0.5\t{i1}"])
        # an explicit address that is taken: the second server does not start
        other = base / "other"
        with pytest.raises(RuntimeError, match=r"(?i)address already in use"):
            start_server(other, access_key=key, secret_key=secret, account="123456789012",
                         extra_env={"AURORAL_DNS": f"127.0.0.1:{port}", "AURORAL_HOSTS_FILE": "off"})
    finally:
        stop_server(srv)
    assert not (data / "dns.json").exists()
    assert hosts.read_text() == splice(USER_LINES, "0123456789ab", ["127.0.0.8\tother.x"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))  # released


def test_dns_off_and_bad_setting(base: Path) -> None:
    key, secret = new_root_key()
    srv = start_server(base / "data", access_key=key, secret_key=secret, account="123456789012",
                       extra_env={"AURORAL_DNS": "off", "AURORAL_HOSTS_FILE": "off"})
    try:
        info = health(srv)
        assert info["dns"] is None and info["hosts_file"] is None
    finally:
        stop_server(srv)
    bad = subprocess.run([sys.executable, "-m", "auroral.cli", "up", "--data-dir", str(base / "bad")],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "AURORAL_DNS": "localhost:53\n"})
    assert bad.returncode == 2 and "AURORAL_DNS must be" in bad.stderr

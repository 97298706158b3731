"""The managed hosts-file block: on a temporary file, and (as root) on the real /etc/hosts."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from auroral.dns.hosts import HostsBlock, UnsafeHostsFile, block_id, splice
from auroral.dns.publish import ZonePublisher
from auroral.dns.records import CNAME, A, Zone

ID = "c7tj4example"
W = f"db1.cluster-{ID}.us-east-1.rds.amazonaws.com"
RO = f"db1.cluster-ro-{ID}.us-east-1.rds.amazonaws.com"
I1 = f"inst1.{ID}.us-east-1.rds.amazonaws.com"
I2 = f"inst2.{ID}.us-east-1.rds.amazonaws.com"
USER_LINES = "127.0.0.1\tlocalhost\n# my own comment\n10.1.2.3 myhost.example myhost\n"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def cluster_zone() -> Zone:
    zone = Zone()
    zone.replace("rds:1:us-east-1", {W: [CNAME(I1)], RO: [CNAME(I1), CNAME(I2)],
                                     I1: [A("127.0.0.5")], I2: [A("127.0.0.6")]})
    return zone


def entries(text: str) -> list[tuple[str, str]]:
    return [(p[0], p[1]) for p in (line.split() for line in text.splitlines()) if len(p) == 2 and p[0][0].isdigit()]


@pytest.fixture
def hosts(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.write_text(USER_LINES)
    path.chmod(0o644)
    return path


def test_block_written_updated_removed(hosts: Path) -> None:
    zone = cluster_zone()
    block = HostsBlock(hosts, "aaaaaaaaaaaa")
    assert block.write(zone)
    text = hosts.read_text()
    assert text.startswith(USER_LINES)
    assert "# BEGIN auroral aaaaaaaaaaaa\n" in text and text.endswith("# END auroral aaaaaaaaaaaa\n")
    assert sorted(entries(text[len(USER_LINES):])) == sorted([
        ("127.0.0.5", W), ("127.0.0.5", RO), ("127.0.0.6", RO), ("127.0.0.5", I1), ("127.0.0.6", I2)])
    assert stat.S_IMODE(hosts.stat().st_mode) == 0o644
    zone.replace("rds:1:us-east-1", {W: [CNAME(I2)], I2: [A("127.0.0.6")]})
    block.write(zone)
    assert sorted(entries(hosts.read_text()[len(USER_LINES):])) == [("127.0.0.6", W), ("127.0.0.6", I2)]
    assert block.remove()
    assert hosts.read_text() == USER_LINES
    assert not block.remove()  # nothing to change: the file is not rewritten


def test_several_addresses_rotate_on_each_rewrite(hosts: Path) -> None:
    zone = cluster_zone()
    block = HostsBlock(hosts, "aaaaaaaaaaaa")
    firsts = []
    for _ in range(2):
        block.write(zone)
        firsts.append(next(a for a, n in entries(hosts.read_text()) if n == RO))
    assert firsts == ["127.0.0.5", "127.0.0.6"]


def test_blocks_of_two_servers_do_not_clobber_each_other(hosts: Path) -> None:
    one, two = cluster_zone(), Zone()
    two.replace("rds:2:us-east-1", {"other.xyz.us-east-1.rds.amazonaws.com": [A("127.0.0.9")]})
    a, b = HostsBlock(hosts, "aaaaaaaaaaaa"), HostsBlock(hosts, "bbbbbbbbbbbb")

    def hammer(block: HostsBlock, zone: Zone) -> None:
        for _ in range(25):
            block.write(zone)

    threads = [threading.Thread(target=hammer, args=args) for args in ((a, one), (b, two))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    text = hosts.read_text()
    assert text.count("# BEGIN auroral aaaaaaaaaaaa") == 1 and text.count("# BEGIN auroral bbbbbbbbbbbb") == 1
    assert ("127.0.0.9", "other.xyz.us-east-1.rds.amazonaws.com") in entries(text)
    a.remove()
    assert "aaaaaaaaaaaa" not in hosts.read_text() and "bbbbbbbbbbbb" in hosts.read_text()
    b.remove()
    assert hosts.read_text() == USER_LINES


def test_splice_keeps_user_lines_around_a_broken_block() -> None:
    text = "a\n# BEGIN auroral x1\n1.2.3.4 n\nb\n"  # an END lost to someone's edit
    assert splice(text, "x1", []) == "a\n1.2.3.4 n\nb\n"
    assert splice("no newline at end", "x1", ["1.2.3.4\tn"]).startswith("no newline at end\n# BEGIN auroral x1\n")
    twice = splice(splice("", "x1", ["1.1.1.1\ta"]) * 2, "x1", ["2.2.2.2\tb"])
    assert twice.count("BEGIN") == 1 and "1.1.1.1" not in twice


def test_crashed_run_block_is_replaced_at_next_start(tmp_path: Path, hosts: Path) -> None:
    ident = block_id(tmp_path / "data")
    crashed = ZonePublisher(cluster_zone(), hosts=HostsBlock(hosts, ident), snapshot=None)
    crashed.start()  # and never stopped: its block stays, as after a kill -9
    assert I1 in hosts.read_text()
    crashed.zone.remove_listener(crashed._changed)
    fresh = Zone()
    fresh.replace("rds:1:us-east-1", {I2: [A("127.0.0.6")]})
    again = ZonePublisher(fresh, hosts=HostsBlock(hosts, block_id(tmp_path / "data")), snapshot=None)
    again.start()
    try:
        text = hosts.read_text()
        assert I1 not in text and I2 in text and text.count("# BEGIN auroral") == 1
    finally:
        again.stop()
    assert hosts.read_text() == USER_LINES


def test_publisher_follows_changes_quickly(hosts: Path, tmp_path: Path) -> None:
    zone = Zone()
    snapshot = tmp_path / "dns.json"
    publisher = ZonePublisher(zone, hosts=HostsBlock(hosts, "cccccccccccc"), snapshot=snapshot, meta={"dns": "x"})
    publisher.start()
    try:
        for i in range(1, 6):
            zone.replace("rds:1:us-east-1", {I1: [A(f"127.0.0.{i}")]})
        assert publisher.wait(timeout=2)
        assert entries(hosts.read_text())[-1] == ("127.0.0.5", I1)
        assert '"127.0.0.5"' in snapshot.read_text() and stat.S_IMODE(snapshot.stat().st_mode) == 0o600
    finally:
        publisher.stop()
    assert hosts.read_text() == USER_LINES and not snapshot.exists()


@root_only
def test_symlink_of_another_user_is_not_followed(tmp_path: Path, hosts: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(hosts)
    os.lchown(link, 65534, 65534)
    with pytest.raises(UnsafeHostsFile):
        HostsBlock(link, "dddddddddddd").write(cluster_zone())
    assert hosts.read_text() == USER_LINES
    os.lchown(link, 0, 0)  # root's own link is followed
    assert HostsBlock(link, "dddddddddddd").write(cluster_zone()) and link.is_symlink()


def test_unsafe_directory_or_file_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone may swap the file: refused (a sticky directory would be fine)
    path = shared / "hosts"
    path.write_text(USER_LINES)
    with pytest.raises(UnsafeHostsFile):
        HostsBlock(path, "eeeeeeeeeeee").write(cluster_zone())
    shared.chmod(0o1777)
    assert HostsBlock(path, "eeeeeeeeeeee").write(cluster_zone())
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeHostsFile):
        HostsBlock(fifo, "eeeeeeeeeeee").write(cluster_zone())


@root_only
def test_bind_mounted_file_is_rewritten_in_place(tmp_path: Path, hosts: Path) -> None:
    target = tmp_path / "mounted"
    target.write_text(USER_LINES)
    mounted = subprocess.run(["mount", "--bind", str(hosts), str(target)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"no bind mounts here: {mounted.stderr.decode().strip()}")
    try:
        block = HostsBlock(target, "ffffffffffff")
        assert block.write(cluster_zone())  # rename over a mount point: EBUSY, so in place
        assert I1 in hosts.read_text()
        block.remove()
        assert hosts.read_text() == USER_LINES
    finally:
        subprocess.run(["umount", str(target)], check=True)


@pytest.fixture
def etc_hosts() -> Iterator[Path]:
    """The real /etc/hosts, put back as it was afterwards whatever happens."""
    path = Path("/etc/hosts")
    saved = path.read_bytes()
    mode = stat.S_IMODE(path.stat().st_mode)
    try:
        yield path
    finally:
        if path.read_bytes() != saved:
            path.write_bytes(saved)
        path.chmod(mode)


@root_only
def test_real_etc_hosts_resolves_every_address(etc_hosts: Path, tmp_path: Path) -> None:
    before = etc_hosts.read_text()
    zone = cluster_zone()
    publisher = ZonePublisher(zone, hosts=HostsBlock(etc_hosts, block_id(tmp_path)), snapshot=None)
    publisher.start()
    try:
        assert publisher.wait()
        infos = socket.getaddrinfo(W, 5432, type=socket.SOCK_STREAM)
        assert [i[4][0] for i in infos] == ["127.0.0.5"]
        readers = {i[4][0] for i in socket.getaddrinfo(RO, 5432, type=socket.SOCK_STREAM)}
        assert readers == {"127.0.0.5", "127.0.0.6"}  # every line of the name ("multi on", glibc's default)
        out = subprocess.run(["getent", "ahosts", RO], capture_output=True, text=True, check=True).stdout
        assert {line.split()[0] for line in out.splitlines()} == {"127.0.0.5", "127.0.0.6"}
        if shutil.which("psql"):
            # libpq tries every address of the name in turn: its error lists both
            probe = subprocess.run(
                ["psql", f"host={RO} port=9 user=x dbname=x connect_timeout=3", "-c", "select 1"],
                capture_output=True, text=True, timeout=30, env={**os.environ, "PGPASSWORD": "x"})
            assert "127.0.0.5" in probe.stderr and "127.0.0.6" in probe.stderr, probe.stderr
        zone.replace("rds:1:us-east-1", {W: [CNAME(I2)], I2: [A("127.0.0.6")]})
        assert publisher.wait()
        assert [i[4][0] for i in socket.getaddrinfo(W, 5432, type=socket.SOCK_STREAM)] == ["127.0.0.6"]
    finally:
        publisher.stop()
    assert etc_hosts.read_text() == before
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(I1, 5432)

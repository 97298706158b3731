"""fsafe: what a privileged process does in a directory another user can write."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from auroral.engine import fsafe


@pytest.fixture
def untrusted(tmp_path: Path) -> Path:
    path = tmp_path / "shared"
    path.mkdir()
    path.chmod(0o777)  # anyone may add, remove and rename entries
    return path


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_text("original")
    return path


def test_write_replaces_a_symlink_without_following_it(untrusted: Path, victim: Path) -> None:
    (untrusted / "conf").symlink_to(victim)
    fsafe.write_file(untrusted / "conf", b"ours", mode=0o640)
    assert victim.read_text() == "original"
    st = (untrusted / "conf").lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
    assert (untrusted / "conf").read_bytes() == b"ours"
    assert [p.name for p in untrusted.iterdir()] == ["conf"]


def test_symlinks_are_followed_only_in_trusted_directories(tmp_path: Path, untrusted: Path, victim: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (untrusted / "dir").symlink_to(elsewhere)
    with pytest.raises(fsafe.UnsafePathError):
        fsafe.write_file(untrusted / "dir" / "conf", b"x")
    assert list(elsewhere.iterdir()) == []
    trusted = tmp_path / "link"  # in our own 0700 directory: as trusted as the directory
    trusted.symlink_to(untrusted)
    fsafe.write_file(trusted / "conf", b"x")
    assert (untrusted / "conf").read_bytes() == b"x"
    assert victim.read_text() == "original"


def test_reads_accept_only_a_regular_file(untrusted: Path, victim: Path) -> None:
    (untrusted / "link").symlink_to(victim)
    os.mkfifo(untrusted / "fifo")
    os.link(victim, untrusted / "hard")
    for name in ("link", "fifo", "hard"):
        with pytest.raises(OSError):
            fsafe.read_text(untrusted / name)
    (untrusted / "big").write_bytes(b"x" * 100)
    with pytest.raises(fsafe.UnsafePathError):
        fsafe.read_bytes(untrusted / "big", limit=10)
    assert fsafe.read_text(untrusted / "big") == "x" * 100


def test_make_dir_and_open_file_refuse_planted_links(tmp_path: Path, untrusted: Path, victim: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    (untrusted / "run").symlink_to(elsewhere)
    fsafe.make_dir(untrusted / "run", mode=0o700)
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o755
    st = (untrusted / "run").lstat()
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    (untrusted / "log").symlink_to(victim)
    with pytest.raises(OSError):
        fsafe.open_file(untrusted / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    assert victim.read_text() == "original"


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_chown_tree_hands_over_only_what_the_old_owner_had(tmp_path: Path, victim: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "root-file").write_text("x")
    (tree / "sub" / "dirlink").symlink_to(outside)
    os.link(victim, tree / "hard")  # someone else's file, hard-linked in
    old, new = 4242, 4343
    for path in (tree, tree / "sub", tree / "sub" / "file"):
        os.chown(path, old, old)
    fsafe.chown_tree(tree, old, new, new)
    assert {p.stat().st_uid for p in (tree, tree / "sub", tree / "sub" / "file")} == {new}
    assert victim.stat().st_uid == 0 and (outside / "root-file").stat().st_uid == 0
    assert outside.stat().st_uid == 0

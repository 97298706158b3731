"""The sealed file format of snapshots and the WAL archive (rds/envelope.py): what goes in comes out, and a
file that was truncated, tampered with, cut at a chunk boundary, or opened with another data key does not
open (SealedArtifactError), never yielding unauthenticated bytes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auroral.rds.envelope import CHUNK, HEADER, SealedArtifactError, SealedWriter, read_sealed


def _seal(path: Path, key: bytes, data: bytes) -> None:
    writer = SealedWriter(path, key)
    for i in range(0, len(data), 100_000):
        writer.write(data[i:i + 100_000])
    writer.close()


def test_round_trip_and_no_plaintext(tmp_path: Path) -> None:
    key, data = os.urandom(32), b"secret-row " * 300_000  # several chunks
    path = tmp_path / "a.snap"
    _seal(path, key, data)
    assert b"".join(read_sealed(path, key)) == data
    assert b"secret-row" not in path.read_bytes()
    assert not (tmp_path / "a.snap.partial").exists()
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)


def test_empty_stream_round_trips(tmp_path: Path) -> None:
    key = os.urandom(32)
    _seal(tmp_path / "e.snap", key, b"")
    assert b"".join(read_sealed(tmp_path / "e.snap", key)) == b""


@pytest.mark.parametrize("damage", ["flip", "truncate", "boundary", "other-key", "swap"])
def test_damaged_files_do_not_open(tmp_path: Path, damage: str) -> None:
    key, data = os.urandom(32), os.urandom(CHUNK * 2 + 5)
    path = tmp_path / "d.snap"
    _seal(path, key, data)
    raw = bytearray(path.read_bytes())
    first_len = int.from_bytes(raw[HEADER:HEADER + 4], "big")
    boundary = HEADER + 4 + first_len  # the end of the first chunk
    if damage == "flip":
        raw[len(raw) // 2] ^= 1
    elif damage == "truncate":
        del raw[-10:]
    elif damage == "boundary":
        del raw[boundary:]  # a whole number of chunks, but not the final one
    elif damage == "swap":
        other = tmp_path / "o.snap"
        _seal(other, key, data)  # another file under the same key: its chunks do not fit this header
        raw[boundary:] = other.read_bytes()[boundary:]
    path.write_bytes(bytes(raw))
    with pytest.raises(SealedArtifactError):
        b"".join(read_sealed(path, os.urandom(32) if damage == "other-key" else key))

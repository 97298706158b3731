"""Envelope encryption of what auroral keeps outside a running server (cluster snapshots).

Every artifact gets its own 256-bit data key, wrapped by the cluster's KMS key (``Keyring.generate_data_key``,
an encrypted cluster) or by the installation's master key (``Sealer``, an unencrypted one: no plaintext of a
database ever rests on disk either way). The artifact is a stream of AES-256-GCM chunks, written as it is
produced (a ``pg_basebackup`` tar piped through :class:`SealedWriter`), so there is never a plaintext copy:

    header   b"AURSNAP1" | salt (8 random bytes)
    chunk    length (4 bytes, big endian) | AES-256-GCM(ciphertext + tag)

Chunk ``i``'s nonce is ``salt | i`` (32-bit counter); its associated data is the header, ``i`` and a final
flag, so chunks cannot be reordered, dropped or moved between artifacts, and a truncated file (no final
chunk) does not open. The file is written as ``<name>.partial``, fsynced and renamed into place.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"AURSNAP1"
_SALT = 8
HEADER = len(MAGIC) + _SALT
CHUNK = 1 << 20  # plaintext bytes per chunk
_TAG = 16


class SealedArtifactError(Exception):
    """The artifact is damaged, truncated, or not sealed under this data key."""


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">IB", index, 1 if final else 0)


class SealedWriter:
    """Encrypts a byte stream into ``path`` (via ``path.partial``); ``close()`` makes it durable."""

    def __init__(self, path: Path, data_key: bytes) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        self._aead = AESGCM(data_key)
        self._header = MAGIC + os.urandom(_SALT)
        fd = os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._file = os.fdopen(fd, "wb")
        self._file.write(self._header)
        self._buffer = bytearray()
        self._index = 0
        self.plaintext_bytes = 0

    def _emit(self, data: bytes, final: bool) -> None:
        if self._index >= 0xFFFFFFFF:
            raise SealedArtifactError("artifact too large")
        nonce = self._header[len(MAGIC):] + struct.pack(">I", self._index)
        sealed = self._aead.encrypt(nonce, data, _aad(self._header, self._index, final))
        self._file.write(struct.pack(">I", len(sealed)) + sealed)
        self._index += 1

    def write(self, data: bytes) -> None:
        self.plaintext_bytes += len(data)
        self._buffer += data
        while len(self._buffer) > CHUNK:
            self._emit(bytes(self._buffer[:CHUNK]), False)
            del self._buffer[:CHUNK]

    def close(self) -> None:
        """The final chunk, fsync, rename into place."""
        self._emit(bytes(self._buffer), True)
        self._buffer.clear()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._partial, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._partial.unlink(missing_ok=True)


def read_sealed(path: Path, data_key: bytes) -> Iterator[bytes]:
    """The plaintext of an artifact, chunk by chunk, each authenticated before it is yielded
    (SealedArtifactError at the first bad or missing chunk)."""
    aead = AESGCM(data_key)
    with open(path, "rb") as f:
        header = f.read(HEADER)
        if len(header) != HEADER or not header.startswith(MAGIC):
            raise SealedArtifactError(f"{path.name} is not a sealed artifact")
        index = 0
        length_bytes = f.read(4)
        while length_bytes:
            if len(length_bytes) != 4:
                raise SealedArtifactError(f"{path.name} is truncated")
            (length,) = struct.unpack(">I", length_bytes)
            if length < _TAG or length > CHUNK + _TAG:
                raise SealedArtifactError(f"{path.name} is damaged")
            body = f.read(length)
            if len(body) != length:
                raise SealedArtifactError(f"{path.name} is truncated")
            following = f.read(4)
            final = not following
            nonce = header[len(MAGIC):] + struct.pack(">I", index)
            try:
                plain = aead.decrypt(nonce, body, _aad(header, index, final))
            except InvalidTag:
                raise SealedArtifactError(f"{path.name} does not open with its data key") from None
            yield plain
            index += 1
            length_bytes = following
        if index == 0:
            raise SealedArtifactError(f"{path.name} is truncated")

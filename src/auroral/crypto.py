"""Encryption at rest with the installation's master key.

The master key is 32 random bytes in ``<data_dir>/master.key``, created with mode 0600 and
never logged. ``Sealer.seal`` uses AES-256-GCM with a random 96-bit nonce; the associated
data binds a ciphertext to its purpose (e.g. ``b"iam:access-key:AKIA..."``), so a sealed
value copied into another row does not open there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


def load_or_create_key(path: Path) -> bytes:
    """Read the master key, creating it (mode 0600) on first use."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = AESGCM.generate_key(bit_length=256)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        return key
    if len(key) != 32:
        raise ValueError(f"{path} does not hold a 32-byte key")
    return key


class Sealer:
    """Seals and opens small values under one 256-bit key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self._key = key

    def derive(self, label: str) -> bytes:
        """A secret for another purpose (e.g. the passphrase of the TLS private keys), bound to ``label``."""
        return hmac.new(self._key, label.encode(), hashlib.sha256).hexdigest().encode()

    def seal(self, plaintext: bytes, aad: bytes = b"") -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, plaintext, aad)
        return base64.b64encode(_VERSION + nonce + ct).decode("ascii")

    def open(self, sealed: str, aad: bytes = b"") -> bytes:
        raw = base64.b64decode(sealed)
        if raw[:1] != _VERSION:
            raise ValueError("unknown sealed-value version")
        return self._aead.decrypt(raw[1:13], raw[13:], aad)

    def seal_text(self, plaintext: str, aad: str = "") -> str:
        return self.seal(plaintext.encode(), aad.encode())

    def open_text(self, sealed: str, aad: str = "") -> str:
        return self.open(sealed, aad.encode()).decode()

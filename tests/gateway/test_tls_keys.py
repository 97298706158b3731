"""TLS private keys are not on disk in plaintext: PKCS#8-encrypted under a passphrase derived from
the master key, and still usable for handshakes after a reload."""

from __future__ import annotations

import ssl
from pathlib import Path

from auroral.crypto import Sealer
from auroral.gateway.tls import TlsMaterial


def test_keys_are_encrypted_and_usable(tmp_path: Path) -> None:
    passphrase = Sealer(b"k" * 32).derive("auroral-tls-keys")
    tls = TlsMaterial.load_or_create(tmp_path / "tls", passphrase)
    ctx = tls.server_context(["db.example"], ["127.0.0.1"])
    assert isinstance(ctx, ssl.SSLContext)
    keys = sorted((tmp_path / "tls").rglob("*.key"))
    assert len(keys) >= 2  # the CA's and the endpoint's
    for key in keys:
        text = key.read_text()
        assert "BEGIN ENCRYPTED PRIVATE KEY" in text and "BEGIN PRIVATE KEY" not in text
    again = TlsMaterial.load_or_create(tmp_path / "tls", passphrase)
    assert again.ca_cert == tls.ca_cert
    assert isinstance(again.server_context(["db.example"], ["127.0.0.1"]), ssl.SSLContext)


def test_plaintext_keys_from_before_are_encrypted_on_load(tmp_path: Path) -> None:
    TlsMaterial.load_or_create(tmp_path / "tls").server_context(["old"], [])
    assert "BEGIN PRIVATE KEY" in (tmp_path / "tls" / "ca.key").read_text()
    passphrase = Sealer(b"k" * 32).derive("auroral-tls-keys")
    tls = TlsMaterial.load_or_create(tmp_path / "tls", passphrase)
    assert "BEGIN ENCRYPTED PRIVATE KEY" in (tmp_path / "tls" / "ca.key").read_text()
    assert isinstance(tls.server_context(["old"], []), ssl.SSLContext)

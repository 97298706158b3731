"""TLS material: one certificate authority per installation and a server certificate per endpoint.

Layout of ``<data_dir>/tls/``::

    ca.key                 the CA's RSA 2048 key (0600)
    rds-ca-bundle.pem      the CA certificate: the bundle users pass as ``sslrootcert``
    servers/<hash>.pem     server certificate for a set of names (SAN DNS + IP), signed by the CA
    servers/<hash>.key     its key (0600)

The CA is named like Amazon's (``rds-ca-rsa2048-g1``) and, like it, lives for decades; server
certificates live 397 days and are reissued when less than 30 days remain, or when the CA changed
(the hash covers the CA fingerprint). SSL contexts are cached per name set. Files are written to a
temporary name and renamed, keys created 0600 from the start.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_IDENTIFIER = "rds-ca-rsa2048-g1"
CA_COMMON_NAME = f"Amazon RDS auroral {CA_IDENTIFIER} CA"
BUNDLE_NAME = "rds-ca-bundle.pem"
CA_LIFETIME = dt.timedelta(days=40 * 365)
SERVER_LIFETIME = dt.timedelta(days=397)
RENEW_BEFORE = dt.timedelta(days=30)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _key_pem(key: rsa.RSAPrivateKey, passphrase: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _load_key(data: bytes, passphrase: bytes | None) -> object:
    """A PEM private key, encrypted with ``passphrase`` or (written before keys were encrypted) not."""
    try:
        return serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:  # "Password was given but private key is not encrypted"
        return serialization.load_pem_private_key(data, password=None)


def _split_names(names: Iterable[str], ips: Iterable[str]) -> tuple[list[str], list[IpAddress]]:
    dns: list[str] = []
    addrs: list[IpAddress] = []
    for n in names:
        try:
            addrs.append(ipaddress.ip_address(n))
        except ValueError:
            dns.append(n.lower())
    addrs.extend(ipaddress.ip_address(i) for i in ips)
    return sorted(set(dns)), sorted(set(addrs), key=lambda a: (a.version, int(a)))


def host_ips(host: str) -> tuple[str, ...]:
    """The bind address as a certificate IP SAN, when it is a specific address."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return ()
    return () if addr.is_unspecified else (host,)


@dataclass
class TlsMaterial:
    directory: Path
    ca_key: rsa.RSAPrivateKey
    ca_cert: x509.Certificate
    # Private keys on disk are encrypted (PKCS#8) with this passphrase, derived from the master key.
    passphrase: bytes | None = None
    _contexts: dict[tuple[tuple[str, ...], tuple[str, ...]], ssl.SSLContext] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def bundle_path(self) -> Path:
        return self.directory / BUNDLE_NAME

    @property
    def ca_pem(self) -> bytes:
        return self.ca_cert.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def load_or_create(cls, directory: Path, passphrase: bytes | None = None) -> TlsMaterial:
        directory.mkdir(parents=True, exist_ok=True)
        key_path, cert_path = directory / "ca.key", directory / BUNDLE_NAME
        if key_path.exists() and cert_path.exists():
            key = _load_key(key_path.read_bytes(), passphrase)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{key_path} is not an RSA key")
            _write_private(key_path, _key_pem(key, passphrase))  # (re-)encrypted under the current passphrase
            return cls(directory, key, x509.load_pem_x509_certificate(cert_path.read_bytes()), passphrase)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "auroral"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Amazon RDS"),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME),
        ])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(key_path, _key_pem(key, passphrase))
        _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return cls(directory, key, cert, passphrase)

    def server_certificate(self, names: Iterable[str], ips: Iterable[str] = ()) -> tuple[Path, Path]:
        """Paths of (certificate, key) for these names, issued now if missing or near expiry."""
        dns, addrs = _split_names(names, ips)
        if not dns and not addrs:
            dns = ["localhost"]
        ca_fp = self.ca_cert.fingerprint(hashes.SHA256())
        ident = hashlib.sha256(ca_fp + repr((dns, [str(a) for a in addrs])).encode()).hexdigest()[:24]
        folder = self.directory / "servers"
        folder.mkdir(exist_ok=True)
        cert_path, key_path = folder / f"{ident}.pem", folder / f"{ident}.key"
        with self._lock:
            if cert_path.exists() and key_path.exists():
                cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
                if cert.not_valid_after_utc - _now() > RENEW_BEFORE:
                    return cert_path, key_path
            self._issue(dns, addrs, cert_path, key_path)
        return cert_path, key_path

    def _issue(self, dns: list[str], addrs: list[IpAddress], cert_path: Path, key_path: Path) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cn = dns[0] if dns else str(addrs[0])
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(a) for a in addrs]
        now = _now()
        ca_ski = self.ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn[:64])]))
            .issuer_name(self.ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + SERVER_LIFETIME)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        _write_private(key_path, _key_pem(key, self.passphrase))
        _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)

    def server_pem(self, names: Iterable[str], ips: Iterable[str] = ()) -> tuple[bytes, bytearray]:
        """(certificate PEM, unencrypted private key PEM) for these names, for the native relay. The key
        exists only in memory; the caller zeroes the bytearray once it has loaded it."""
        cert_path, key_path = self.server_certificate(names, ips)
        key = _load_key(key_path.read_bytes(), self.passphrase)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_path} is not an RSA key")
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        return cert_path.read_bytes(), bytearray(pem)

    def server_context(self, names: Iterable[str], ips: Iterable[str] = ()) -> ssl.SSLContext:
        """A server-side context (TLS 1.2+) presenting the certificate for these names; cached."""
        names, ips = tuple(names), tuple(ips)
        key = (names, ips)
        ctx = self._contexts.get(key)
        if ctx is not None:
            return ctx
        cert_path, key_path = self.server_certificate(names, ips)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert_path, key_path, password=self.passphrase)
        # libpq 17+ sends ALPN "postgresql"; accept it (clients without ALPN are fine too).
        ctx.set_alpn_protocols(["postgresql"])
        self._contexts[key] = ctx
        return ctx

"""The client side of PostgreSQL authentication, used when the gateway logs in upstream for a client.

With IAM database authentication the client proves itself to the gateway with a token; the gateway then
authenticates to PostgreSQL with the user's database password. PostgreSQL normally asks for
SCRAM-SHA-256 (RFC 5802 / RFC 7677, no channel binding over the Unix socket); md5 and cleartext are
answered too. The server's final signature is verified, so a server that does not know the password
cannot impersonate one that does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import stringprep
import struct
import unicodedata
from collections.abc import Callable
from typing import Protocol

from auroral.gateway import startup as pg


class UpstreamRefused(Exception):
    """The server answered with an ErrorResponse; ``raw`` is the whole message, to forward to the client."""

    def __init__(self, raw: bytes) -> None:
        fields = pg.parse_error_fields(raw[5:])
        super().__init__(fields.get("M", "upstream error"))
        self.raw = raw
        self.fields = fields


class PasswordRequired(Exception):
    """The server asked for a password where the gateway expected it to trust the gateway."""


class MessageChannel(Protocol):
    async def read_message(self, max_length: int) -> tuple[bytes, bytes]: ...

    def write(self, data: bytes) -> None: ...


def saslprep(password: str) -> str:
    """SASLprep (RFC 4013) as PostgreSQL applies it; like PostgreSQL, fall back to the raw password when
    the prepared form would be invalid."""
    if password.isascii():
        return password
    chars = []
    for c in password:
        if stringprep.in_table_c12(c):
            chars.append(" ")
        elif not stringprep.in_table_b1(c):
            chars.append(c)
    prepared = unicodedata.normalize("NFKC", "".join(chars))
    prohibited = (
        stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3, stringprep.in_table_c4,
        stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
        stringprep.in_table_c9, stringprep.in_table_a1,
    )
    if not prepared or any(check(c) for c in prepared for check in prohibited):
        return password
    return prepared


class ScramClient:
    """One SCRAM-SHA-256 exchange (client side)."""

    MECHANISM = "SCRAM-SHA-256"

    def __init__(self, password: str, nonce: str | None = None, user: str = "") -> None:
        # PostgreSQL ignores the SCRAM user name (the startup packet names the user); libpq sends "n=".
        self._password = saslprep(password).encode()
        self._nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
        self._first_bare = f"n={user},r={self._nonce}"
        self._server_signature = b""

    def first_message(self) -> bytes:
        return ("n,," + self._first_bare).encode()

    def final_message(self, server_first: bytes) -> bytes:
        text = server_first.decode()
        attrs = dict(a.split("=", 1) for a in text.split(",") if "=" in a)
        nonce, salt, iterations = attrs.get("r", ""), attrs.get("s", ""), int(attrs.get("i", "0"))
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce) or iterations < 1:
            raise pg.ProtocolViolation("invalid SCRAM server-first-message")
        salted = hashlib.pbkdf2_hmac("sha256", self._password, base64.b64decode(salt), iterations)
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._first_bare},{text},{without_proof}".encode()
        client_signature = hmac.digest(stored_key, auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, client_signature, strict=True))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self._server_signature = hmac.digest(server_key, auth_message, "sha256")
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify_final(self, server_final: bytes) -> None:
        text = server_final.decode()
        if not text.startswith("v="):
            raise pg.ProtocolViolation(f"SCRAM server error: {text}")
        if not hmac.compare_digest(base64.b64decode(text[2:]), self._server_signature):
            raise pg.ProtocolViolation("SCRAM server signature mismatch")


def md5_password(user: str, password: str, salt: bytes) -> bytes:
    inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
    return b"md5" + hashlib.md5(inner + salt).hexdigest().encode() + b"\0"


async def login(channel: MessageChannel, user: str, password: str | None,
                forward: Callable[[bytes], None] | None = None) -> None:
    """Run the authentication exchange after the StartupMessage was sent, up to AuthenticationOk
    (consumed; an immediate one too). Raises :class:`UpstreamRefused` on an ErrorResponse, and
    :class:`PasswordRequired` when ``password`` is None and the server asks for one. A
    NegotiateProtocolVersion goes to ``forward`` (it is the client's business)."""
    scram: ScramClient | None = None
    while True:
        kind, body = await channel.read_message(pg.MAX_AUTH_MESSAGE)
        if kind == b"E":
            raise UpstreamRefused(pg.message(kind, body))
        if kind == b"N":  # a NoticeResponse during authentication: nothing to do with it
            continue
        if kind == b"v" and forward is not None:
            forward(pg.message(kind, body))
            continue
        if kind != b"R" or len(body) < 4:
            raise pg.ProtocolViolation(f"unexpected message {kind!r} during authentication")
        code = int(struct.unpack_from("!I", body)[0])
        if code == pg.AUTH_OK:
            return
        if password is None:
            raise PasswordRequired(f"the server asked for a password (authentication request {code})")
        if code == pg.AUTH_CLEARTEXT:
            channel.write(pg.password_message(password.encode() + b"\0"))
        elif code == pg.AUTH_MD5:
            channel.write(pg.password_message(md5_password(user, password, body[4:8])))
        elif code == pg.AUTH_SASL:
            mechanisms = [m.decode() for m in body[4:].split(b"\0") if m]
            if ScramClient.MECHANISM not in mechanisms:
                raise pg.ProtocolViolation(f"no supported SASL mechanism in {mechanisms}")
            scram = ScramClient(password)
            channel.write(pg.sasl_initial_response(ScramClient.MECHANISM, scram.first_message()))
        elif code == pg.AUTH_SASL_CONTINUE and scram is not None:
            channel.write(pg.password_message(scram.final_message(body[4:])))
        elif code == pg.AUTH_SASL_FINAL and scram is not None:
            scram.verify_final(body[4:])
        else:
            raise pg.ProtocolViolation(f"unsupported authentication request {code}")

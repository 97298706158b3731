"""PostgreSQL wire-protocol framing for the startup phase (protocol 3.0).

Only what the gateway needs before it starts relaying: the untyped startup packets (SSLRequest,
GSSENCRequest, CancelRequest, StartupMessage), ErrorResponse, and the authentication messages it
exchanges when it runs IAM authentication itself. Limits follow PostgreSQL: a startup packet is at
least 8 and at most 10000 bytes (``MAX_STARTUP_PACKET_LENGTH``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SSL_REQUEST = 80877103
SSL_REQUEST_PACKET = (8).to_bytes(4, "big") + SSL_REQUEST.to_bytes(4, "big")
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3_0 = 196608
MIN_STARTUP_PACKET = 8
MAX_STARTUP_PACKET = 10000
# PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH: the largest password / SASL message it accepts.
MAX_AUTH_MESSAGE = 65535
# PostgreSQL's NAMEDATALEN: a name (role, database) is at most NAMEDATALEN - 1 bytes; the server cuts a
# longer name in a startup packet to that length without a word.
NAMEDATALEN = 64

AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_MD5 = 5
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12


class ProtocolViolation(Exception):
    """The peer broke the protocol; the connection is closed (PostgreSQL's 08P01)."""


@dataclass(frozen=True)
class StartupInfo:
    """A parsed StartupMessage. ``raw`` is the whole packet, forwarded upstream unchanged."""

    protocol: int
    params: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""

    @property
    def user(self) -> str:
        return self.params.get("user", "")

    @property
    def database(self) -> str:
        return self.params.get("database") or self.user

    @property
    def application_name(self) -> str:
        return self.params.get("application_name", "")


CLIENT_SETTING = "auroral.client"  # the gateway's word on the client, for the server module (engine/ext)
SERVER_SETTING = "auroral.server"  # and on the endpoint address the client connected to


def upstream_startup(info: StartupInfo, client: str, server: str | None = None) -> bytes:
    """The StartupMessage for the server: the client's parameters, less any ``auroral.*`` setting it
    sent (only the gateway speaks for the client), plus ``auroral.client`` = ``client`` and
    ``auroral.server`` = ``server`` ("<address> <port>" the client reached: ``inet_server_addr()``)."""
    pairs = [(k, v) for k, v in info.params.items() if not k.lower().startswith("auroral.")]
    pairs.append((CLIENT_SETTING, client))
    if server is not None:
        pairs.append((SERVER_SETTING, server))
    body = struct.pack("!I", info.protocol) + b"".join(
        k.encode() + b"\0" + v.encode() + b"\0" for k, v in pairs) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def packet_code(body: bytes) -> int:
    """The first Int32 of a startup packet body (the protocol version or a request code)."""
    return int(struct.unpack_from("!I", body)[0])


def parse_startup(body: bytes) -> StartupInfo:
    """Parse a StartupMessage body (the packet without its length word)."""
    protocol = packet_code(body)
    if protocol >> 16 != 3:
        raise ProtocolViolation(f"unsupported frontend protocol {protocol >> 16}.{protocol & 0xFFFF}")
    parts = body[4:].split(b"\0")
    # key\0value\0 ... \0 : the split ends with two empty strings (last terminator and the final \0)
    if len(parts) < 2 or parts[-1] != b"" or parts[-2] != b"":
        raise ProtocolViolation("invalid startup packet layout: expected terminator as last byte")
    items = parts[:-2]
    if len(items) % 2:
        raise ProtocolViolation("invalid startup packet layout")
    try:
        params = {items[i].decode(): items[i + 1].decode() for i in range(0, len(items), 2)}
    except UnicodeDecodeError as e:
        raise ProtocolViolation("invalid startup packet encoding") from e
    if not params.get("user"):
        raise ProtocolViolation("no PostgreSQL user name specified in startup packet")
    return StartupInfo(protocol, params, struct.pack("!I", len(body) + 4) + body)


def message(kind: bytes, payload: bytes = b"") -> bytes:
    """A typed protocol message: kind byte, Int32 length (including itself), payload."""
    return kind + struct.pack("!I", len(payload) + 4) + payload


def error_response(code: str, text: str, *, severity: str = "FATAL", routine: str | None = None) -> bytes:
    """An ErrorResponse as PostgreSQL sends it (S, V, C, M[, R])."""
    fields = [(b"S", severity), (b"V", severity), (b"C", code), (b"M", text)]
    if routine:
        fields.append((b"R", routine))
    payload = b"".join(k + v.encode() + b"\0" for k, v in fields) + b"\0"
    return message(b"E", payload)


def parse_error_fields(payload: bytes) -> dict[str, str]:
    """The fields of an ErrorResponse/NoticeResponse payload, keyed by their one-letter code."""
    out: dict[str, str] = {}
    for part in payload.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode(errors="replace")
    return out


def auth_request(code: int, data: bytes = b"") -> bytes:
    return message(b"R", struct.pack("!I", code) + data)


def password_message(data: bytes) -> bytes:
    return message(b"p", data)


def sasl_initial_response(mechanism: str, data: bytes) -> bytes:
    return message(b"p", mechanism.encode() + b"\0" + struct.pack("!i", len(data)) + data)


def no_encryption_error(peer_ip: str, user: str, database: str) -> bytes:
    """What PostgreSQL says when pg_hba only has ``hostssl`` lines and the client did not use TLS."""
    return error_response(
        "28000",
        f'no pg_hba.conf entry for host "{peer_ip}", user "{user}", database "{database}", no encryption',
        routine="ClientAuthentication",
    )


def name_too_long_error(info: StartupInfo) -> bytes | None:
    """The refusal of a startup whose user or database name PostgreSQL would truncate (longer than
    ``NAMEDATALEN - 1`` bytes in UTF-8), else None.

    PostgreSQL itself would log such a client in as the truncated name; but an IAM token is authorized
    for the name as given, so the gateway refuses it for every login, before any authorization.
    SQLSTATE 28000 (invalid_authorization_specification): the code PostgreSQL gives every refusal of a
    startup packet's identity (unknown role, no or a rejecting pg_hba.conf line), so drivers and poolers
    treat it as a login failure; 42622 (name_too_long) is a statement-level code PostgreSQL never sends
    during authentication."""
    for what, name in (("role", info.user), ("database", info.database)):
        if len(name.encode()) >= NAMEDATALEN:
            return error_response(
                "28000", f'{what} name "{name}" is too long (PostgreSQL allows at most {NAMEDATALEN - 1} bytes)',
                routine="ProcessStartupPacket")
    return None


def hba_reject_error(peer_ip: str, user: str, database: str, tls: bool) -> bytes:
    """What PostgreSQL says for a ``reject`` line in pg_hba.conf."""
    encryption = "SSL encryption" if tls else "no encryption"
    return error_response(
        "28000",
        f'pg_hba.conf rejects connection for host "{peer_ip}", user "{user}", database "{database}", {encryption}',
        routine="ClientAuthentication",
    )


def not_accepting_connections() -> bytes:
    """What PostgreSQL says while it cannot take connections (starting up, shutting down, recovering),
    as a client of an instance in the middle of a failover sees it; drivers retry on 57P03."""
    return error_response("57P03", "the database system is not accepting connections",
                          routine="ProcessStartupPacket")


def pam_failure(user: str) -> bytes:
    """What Aurora says for a rejected IAM token (``auth_failed`` is PostgreSQL's routine name)."""
    return error_response("28000", f'PAM authentication failed for user "{user}"', routine="auth_failed")

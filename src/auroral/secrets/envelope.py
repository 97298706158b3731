"""Envelope encryption of secret versions with the secret's KMS key.

Each version gets its own 256-bit data key from ``Keyring.generate_data_key`` under the encryption
context ``{"SecretARN": arn, "SecretVersionId": id}`` (what Secrets Manager passes to KMS). The version
keeps the KMS ciphertext blob of the data key and ``nonce | AES-256-GCM(value)``, with the ARN, version
id and value kind as associated data, so a ciphertext copied to another version or secret does not open.
Plaintext data keys live only for the duration of one call.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from auroral.errors import AwsError
from auroral.kms.keyring import Keyring
from auroral.kms.model import KeyRef
from auroral.secrets import errors

_NONCE = 12


def context(arn: str, version_id: str) -> dict[str, str]:
    return {"SecretARN": arn, "SecretVersionId": version_id}


def _aad(arn: str, version_id: str, binary: bool) -> bytes:
    return f"secretsmanager:{arn}:{version_id}:{'binary' if binary else 'string'}".encode()


def seal(keyring: Keyring, key: KeyRef, arn: str, version_id: str, value: bytes, binary: bool) -> tuple[str, str]:
    """(data key blob, ciphertext), both base64. EncryptionFailure if KMS cannot make a data key."""
    try:
        data_key, blob = keyring.generate_data_key(key, context(arn, version_id))
    except AwsError as err:
        raise errors.encryption_failure(err.message) from None
    nonce = os.urandom(_NONCE)
    ct = AESGCM(data_key).encrypt(nonce, value, _aad(arn, version_id, binary))
    return base64.b64encode(blob).decode(), base64.b64encode(nonce + ct).decode()


def open_(keyring: Keyring, account: str, arn: str, version_id: str, data_key_blob: str, ciphertext: str,
          binary: bool) -> bytes:
    """The version's plaintext. DecryptionFailure if the key is disabled, pending deletion or gone."""
    try:
        data_key, _key = keyring.decrypt(account, base64.b64decode(data_key_blob), context(arn, version_id))
    except AwsError as err:
        raise errors.decryption_failure(err.message) from None
    raw = base64.b64decode(ciphertext)
    try:
        return AESGCM(data_key).decrypt(raw[:_NONCE], raw[_NONCE:], _aad(arn, version_id, binary))
    except InvalidTag:
        raise errors.decryption_failure("The secret's ciphertext does not match its version.") from None

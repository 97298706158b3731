"""Cryptographic operations over HTTP: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext),
GenerateRandom. Each is a thin shell over the ``Keyring``, the same path other services use."""

from __future__ import annotations

import os
from typing import Any

from auroral.api.context import RequestContext
from auroral.kms import errors
from auroral.kms.base import KmsBase
from auroral.kms.model import SYMMETRIC

_DATA_KEY_BYTES = {"AES_256": 32, "AES_128": 16}


def _algorithm(params: dict[str, Any], name: str = "EncryptionAlgorithm") -> str:
    algorithm = params.get(name) or SYMMETRIC
    if algorithm != SYMMETRIC:
        raise errors.kms_error("InvalidKeyUsageException",
                               f"The encryption algorithm {algorithm} is not supported by a {SYMMETRIC} key.")
    return str(algorithm)


def _data_key_size(params: dict[str, Any]) -> int:
    spec, count = params.get("KeySpec"), params.get("NumberOfBytes")
    if (spec is None) == (count is None):
        raise errors.validation("Please specify either number of bytes or key spec.")
    return _DATA_KEY_BYTES[str(spec)] if spec is not None else int(str(count))


class CryptoOperations(KmsBase):
    def Encrypt(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        algorithm = _algorithm(params)
        key = self._ref(ctx, params.get("KeyId"))
        blob = self.keyring.encrypt(key, bytes(params["Plaintext"]), params.get("EncryptionContext"))
        return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": algorithm}

    def Decrypt(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        algorithm = _algorithm(params)
        blob = bytes(params["CiphertextBlob"])
        if params.get("KeyId"):
            wanted = self._ref(ctx, params["KeyId"])
            if wanted.key_id != self.keyring.key_of_blob(ctx.account, blob).key_id:
                raise errors.kms_error("IncorrectKeyException", "The key ID in the request does not identify a "
                                       "KMS key that can perform this operation.")
        plaintext, key = self.keyring.decrypt(ctx.account, blob, params.get("EncryptionContext"))
        return {"Plaintext": plaintext, "KeyId": key.arn, "EncryptionAlgorithm": algorithm}

    def ReEncrypt(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        source_algorithm = _algorithm(params, "SourceEncryptionAlgorithm")
        algorithm = _algorithm(params, "DestinationEncryptionAlgorithm")
        blob = bytes(params["CiphertextBlob"])
        source = self.keyring.key_of_blob(ctx.account, blob)
        if params.get("SourceKeyId") and self._ref(ctx, params["SourceKeyId"]).key_id != source.key_id:
            raise errors.kms_error("IncorrectKeyException", "The key ID in the request does not identify a "
                                   "KMS key that can perform this operation.")
        destination = self._ref(ctx, params.get("DestinationKeyId"))
        target_context = params.get("DestinationEncryptionContext")
        # The pipeline authorized kms:ReEncryptFrom on the source key; the destination needs ReEncryptTo.
        self.keyring.check(ctx, "kms:ReEncryptTo", destination, encryption_context=target_context)
        plaintext, _ = self.keyring.decrypt(ctx.account, blob, params.get("SourceEncryptionContext"))
        new_blob = self.keyring.encrypt(destination, plaintext, target_context)
        return {"CiphertextBlob": new_blob, "SourceKeyId": source.arn, "KeyId": destination.arn,
                "SourceEncryptionAlgorithm": source_algorithm, "DestinationEncryptionAlgorithm": algorithm}

    def GenerateDataKey(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        size = _data_key_size(params)
        key = self._ref(ctx, params.get("KeyId"))
        plaintext, blob = self.keyring.generate_data_key(key, params.get("EncryptionContext"), number_of_bytes=size)
        return {"CiphertextBlob": blob, "Plaintext": plaintext, "KeyId": key.arn}

    def GenerateDataKeyWithoutPlaintext(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        size = _data_key_size(params)
        key = self._ref(ctx, params.get("KeyId"))
        _, blob = self.keyring.generate_data_key(key, params.get("EncryptionContext"), number_of_bytes=size)
        return {"CiphertextBlob": blob, "KeyId": key.arn}

    def GenerateRandom(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        count = params.get("NumberOfBytes")
        if count is None:
            raise errors.validation("NumberOfBytes is required.")
        return {"Plaintext": os.urandom(int(count))}

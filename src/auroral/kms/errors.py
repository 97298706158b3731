"""KMS's errors with AWS's wording.

Messages quoted from real responses in public issues (terraform-provider-aws #17889, hashicorp/terraform
#14029, botocore #2107, sigstore/cosign #1474, aws-sdk-java #1323, aws-encryption-sdk-javascript #1005,
trussworks/terraform-aws-cloudtrail #178). The wire code and status come from botocore's model.
"""

from __future__ import annotations

from auroral.api.protocol import error_from_shape
from auroral.errors import AccessDenied, AwsError


def kms_error(shape: str, message: str = "") -> AwsError:
    return error_from_shape("kms", shape, message)


def key_not_found(arn: str) -> AwsError:
    return kms_error("NotFoundException", f"Key '{arn}' does not exist")


def alias_not_found(arn: str) -> AwsError:
    return kms_error("NotFoundException", f"Alias {arn} is not found.")


def invalid_key_id(text: str) -> AwsError:
    return kms_error("NotFoundException", f"Invalid keyId '{text}'")


def disabled(arn: str) -> AwsError:
    return kms_error("DisabledException", f"{arn} is disabled.")


def pending_deletion(arn: str) -> AwsError:
    return kms_error("KMSInvalidStateException", f"{arn} is pending deletion.")


def invalid_ciphertext() -> AwsError:
    # AWS sends no message with this error (it would tell an attacker which part failed).
    return kms_error("InvalidCiphertextException", "")


def ciphertext_key_unknown() -> AwsError:
    """Decrypt of a blob whose key is gone (or was never here): AWS answers AccessDeniedException."""
    return AccessDenied(
        "The ciphertext refers to a customer master key that does not exist, does not exist in this "
        "region, or you are not allowed to access."
    )


def validation(message: str) -> AwsError:
    # Not in the KMS model: a common error of every json service.
    return AwsError("ValidationException", message, 400)


def lockout() -> AwsError:
    return kms_error(
        "MalformedPolicyDocumentException",
        "The new key policy will not allow you to update the key policy in the future.",
    )

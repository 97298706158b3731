"""Secrets Manager's errors with AWS's wording.

Messages: "Secrets Manager can't find the specified secret." and the staging-label/VersionId texts
as moto's Secrets Manager (checked against AWS) sends them; the marked-for-deletion, ResourceExists,
Lambda-rotation and "previous rotation isn't complete" texts as users quote them from AWS. The
wording for a secret another service manages is not confirmed (the API reference only says "The
secret is managed by another service, and you must use that service to update it").
Wire codes and status come from botocore's model (the error shapes carry a ``Message`` member).
"""

from __future__ import annotations

from auroral.api.protocol import error_from_shape
from auroral.errors import AccessDenied, AwsError


def sm_error(shape: str, message: str) -> AwsError:
    return error_from_shape("secretsmanager", shape, message)


def not_found() -> AwsError:
    return sm_error("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")


def no_value_for_stage(stage: str) -> AwsError:
    return sm_error("ResourceNotFoundException",
                    f"Secrets Manager can't find the specified secret value for staging label: {stage}")


def no_value_for_version(version_id: str) -> AwsError:
    return sm_error("ResourceNotFoundException",
                    f"Secrets Manager can't find the specified secret value for VersionId: {version_id}")


def stage_version_mismatch() -> AwsError:
    return invalid_request("You provided a VersionStage that is not associated to the provided VersionId.")


def exists(name: str) -> AwsError:
    return sm_error("ResourceExistsException", f"The operation failed because the secret {name} already exists.")


def version_exists() -> AwsError:
    return sm_error("ResourceExistsException",
                    "You can't modify an existing version, you can only create a new version.")


def invalid_request(message: str) -> AwsError:
    return sm_error("InvalidRequestException", message)


def invalid_parameter(message: str) -> AwsError:
    return sm_error("InvalidParameterException", message)


def marked_for_deletion() -> AwsError:
    return invalid_request("You can't perform this operation on the secret because it was marked for deletion.")


def managed_by(arn: str, service: str) -> AwsError:
    return invalid_request(f"You can't modify secret {arn} because it's managed by {service}.")


def no_lambda() -> AwsError:
    return invalid_request(
        "You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured "
        "and you didn't include such an ARN as a parameter in this call."
    )


def rotation_in_progress() -> AwsError:
    return invalid_request("A previous rotation isn't complete. That rotation will be reattempted.")


def decryption_failure(reason: str) -> AwsError:
    return sm_error("DecryptionFailure",
                    f"Secrets Manager can't decrypt the protected secret text using the provided KMS key. {reason}")


def encryption_failure(reason: str) -> AwsError:
    return sm_error("EncryptionFailure",
                    f"Secrets Manager can't encrypt the protected secret text using the provided KMS key. {reason}")


def kms_access_denied() -> AwsError:
    # What AWS answers when the caller may use Secrets Manager but not the secret's KMS key.
    return AccessDenied("Access to KMS is not allowed")


def malformed_policy(message: str) -> AwsError:
    return sm_error("MalformedPolicyDocumentException", message)


def public_policy() -> AwsError:
    return sm_error("PublicPolicyException",
                    "You can't attach a resource-based policy that allows broad access to the secret.")

"""Authorization table entries for Secrets Manager (Service Authorization Reference, "AWS Secrets Manager").

Resource: ``secret`` ``arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>``.
SecretId may be a name or a (partial) ARN: it is a ``Ref`` that ``resolve_resource`` turns into the secret's
full ARN (for CreateSecret's Name, the ARN the new secret will have). Condition
keys that need a lookup (secretsmanager:SecretId, secretsmanager:ResourceTag/*, BlockPublicPolicy, ...)
come from ``authz_keys``; aws:ResourceTag/* from ``resource_tags``.
"""

from auroral.api.actions import ActionSpec, Ref

_SECRET = Ref("SecretId", "secret")


def _secret(action: str, keys: dict[str, str] | None = None, *, read_only: bool = False) -> ActionSpec:
    return ActionSpec(f"secretsmanager:{action}", (_SECRET,), keys=keys or {}, resource_tags=True,
                      read_only=read_only)


ACTIONS: dict[str, ActionSpec] = {
    "CreateSecret": ActionSpec(
        "secretsmanager:CreateSecret", (Ref("Name", "new-secret"),),
        keys={"secretsmanager:Name": "Name", "secretsmanager:Description": "Description",
              "secretsmanager:KmsKeyId": "KmsKeyId"},
        request_tags="Tags",
        # "If you include tags in the secret, you also need secretsmanager:TagResource" (API reference)
        tag_on_create=("secretsmanager:TagResource", "Tags"),
    ),
    "GetSecretValue": _secret("GetSecretValue", {
        "secretsmanager:VersionId": "VersionId", "secretsmanager:VersionStage": "VersionStage"}, read_only=True),
    "BatchGetSecretValue": ActionSpec("secretsmanager:BatchGetSecretValue", ("*",), read_only=True),
    "PutSecretValue": _secret("PutSecretValue"),
    "UpdateSecret": _secret("UpdateSecret", {
        "secretsmanager:Description": "Description", "secretsmanager:KmsKeyId": "KmsKeyId"}),
    "DescribeSecret": _secret("DescribeSecret", read_only=True),
    "ListSecrets": ActionSpec("secretsmanager:ListSecrets", ("*",), read_only=True),
    "ListSecretVersionIds": _secret("ListSecretVersionIds", read_only=True),
    "UpdateSecretVersionStage": _secret("UpdateSecretVersionStage", {
        "secretsmanager:VersionStage": "VersionStage"}),
    "DeleteSecret": _secret("DeleteSecret"),
    "RestoreSecret": _secret("RestoreSecret"),
    "TagResource": ActionSpec("secretsmanager:TagResource", (_SECRET,), request_tags="Tags", resource_tags=True),
    "UntagResource": ActionSpec("secretsmanager:UntagResource", (_SECRET,), tag_keys="TagKeys", resource_tags=True),
    "GetRandomPassword": ActionSpec("secretsmanager:GetRandomPassword", ("*",), read_only=True),
    "RotateSecret": _secret("RotateSecret", {"secretsmanager:RotationLambdaARN": "RotationLambdaARN"}),
    "CancelRotateSecret": _secret("CancelRotateSecret"),
    "PutResourcePolicy": _secret("PutResourcePolicy"),
    "GetResourcePolicy": _secret("GetResourcePolicy", read_only=True),
    "DeleteResourcePolicy": _secret("DeleteResourcePolicy"),
    "ValidateResourcePolicy": _secret("ValidateResourcePolicy", read_only=True),
}

"""Authorization table entries for STS (Service Authorization Reference, "Actions defined by AWS
Security Token Service"). GetCallerIdentity needs no permission: AWS answers it even when an
explicit deny covers it. GetSessionToken needs none either, but obeys an explicit deny."""

from __future__ import annotations

from auroral.api.actions import ActionSpec

ACTIONS: dict[str, ActionSpec] = {
    "GetCallerIdentity": ActionSpec("sts:GetCallerIdentity", ("*",), read_only=True, unauthorized=True),
    "AssumeRole": ActionSpec(
        "sts:AssumeRole",
        ("{RoleArn}",),
        keys={
            "sts:ExternalId": "ExternalId",
            "sts:RoleSessionName": "RoleSessionName",
            "sts:SourceIdentity": "SourceIdentity",
            "sts:TransitiveTagKeys": "TransitiveTagKeys",
        },
        request_tags="Tags",
    ),
    # "No permissions are required for users to perform this operation" (STS API reference); an
    # explicit Deny still applies.
    "GetSessionToken": ActionSpec("sts:GetSessionToken", ("*",), deny_only=True),
}

"""The request pipeline's authorizer with KMS's rule for keys.

Every other resource (and KMS aliases, which have no policy of their own) goes to IAM unchanged. A KMS
key ARN goes to ``Keyring.check``: key policy, then IAM where the key policy delegates to the account,
and grants — so the account root, too, is subject to the key policy, as in AWS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from auroral.api.context import Authorizer, RequestContext
from auroral.kms.keyring import Keyring
from auroral.kms.model import KeyRef, parse_key_arn


class KeyPolicyAuthorizer:
    def __init__(self, iam: Authorizer, keyrings: Callable[[str], Keyring | None]) -> None:
        self.iam = iam
        # region -> that region's keyring (None: the region holds no keys yet)
        self.keyrings = keyrings

    def authorize(
        self,
        ctx: RequestContext,
        action: str,
        resources: Sequence[str],
        keys: Mapping[str, Any] | None = None,
    ) -> None:
        is_kms = action.lower().startswith("kms:")
        for resource in resources or ("*",):
            parsed = parse_key_arn(resource) if is_kms else None
            keyring = self.keyrings(parsed[0]) if parsed is not None else None
            if parsed is None or keyring is None:
                self.iam.authorize(ctx, action, [resource], keys)
            else:
                _region, account, key_id = parsed
                keyring.check(ctx, action, KeyRef(account, key_id, resource), keys=keys)

    def authorize_unless_denied(
        self,
        ctx: RequestContext,
        action: str,
        resources: Sequence[str],
        keys: Mapping[str, Any] | None = None,
    ) -> None:
        # No KMS operation is deny-only; other services' are IAM's business.
        self.iam.authorize_unless_denied(ctx, action, resources, keys)

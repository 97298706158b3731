"""STS: who am I, and temporary credentials (AssumeRole, GetSessionToken).

Authorization of AssumeRole is split the way AWS splits it. The request pipeline authorizes
``sts:AssumeRole`` on the role ARN through ``IamAuthorizer`` (identity policies, or, within the
account, a trust policy that names the caller). This handler then requires the role's trust
policy to admit the caller with the request's context (``sts:ExternalId``, ``sts:RoleSessionName``,
session tags, ...), whatever the identity policies say.

Session tags (``Tags``, ``TransitiveTagKeys``) need the permissions-only action ``sts:TagSession``, and
a source identity ``sts:SetSourceIdentity``, on the role: always in its trust policy, and from the
caller's identity policies too unless the trust policy names the caller (IAM user guide, "Permissions
required to add session tags", "Permissions required to set source identity"). Without that, the tags
would override the role's tags and whatever ABAC policy reads ``aws:PrincipalTag``.

Issued credentials are ``Session`` records sealed in the store by the ``Directory``; they survive
a restart and answer ``ExpiredToken`` once expired.
"""

from __future__ import annotations

import base64
import json
import os
import re
from datetime import datetime, timedelta
from typing import Any

from auroral.api.context import Principal, RequestContext
from auroral.errors import AccessDenied, AwsError
from auroral.iam.authorizer import IamAuthorizer
from auroral.iam.directory import Directory
from auroral.iam.model import Role, Session, new_id, new_secret, tags_from_params
from auroral.iam.policy import Decision, access_denied_message

_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)  # AWS's pattern is ASCII (no look-alikes)
_PACKED_LIMIT = 2048  # characters of compact session policy + tags AWS packs into the token
_POLICY_PLAINTEXT = 2048  # characters of the inline session policy as sent
_CHAIN_LIMIT = 3600


def _duration_error(value: int, bound: str) -> AwsError:
    return AwsError(
        "ValidationError",
        f"1 validation error detected: Value '{value}' at 'durationSeconds' failed to satisfy constraint: "
        f"Member must have value {bound}",
    )


def _new_token() -> str:
    # Opaque, long and random like AWS's session tokens; only its equality matters to SigV4.
    return base64.b64encode(os.urandom(384)).decode()


def _whole_seconds(value: datetime) -> datetime:
    return value.replace(microsecond=0)


class StsService:
    service = "sts"

    def __init__(self, directory: Directory, authorizer: IamAuthorizer) -> None:
        self.directory = directory
        self.authorizer = authorizer

    def authz_keys(self, ctx: RequestContext, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """The tags of the role assumed (``aws:ResourceTag/*``, ``iam:ResourceTag/*``): a Deny on roles
        tagged privileged holds for sts:AssumeRole, as ABAC for roles expects."""
        role = self.directory.role_by_arn(str(params.get("RoleArn") or "")) if operation == "AssumeRole" else None
        if role is None:
            return {}
        return {**{f"aws:ResourceTag/{k}": v for k, v in role.tags.items()},
                **{f"iam:ResourceTag/{k}": v for k, v in role.tags.items()}}

    def GetCallerIdentity(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        p = ctx.principal
        return {"UserId": p.user_id, "Account": p.account, "Arn": p.arn}

    # --- AssumeRole -----------------------------------------------------------------------------

    def AssumeRole(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        caller = ctx.principal
        role_arn = params["RoleArn"]
        session_name = params["RoleSessionName"]
        if not 2 <= len(session_name) <= 64:
            bound = "greater than or equal to 2" if len(session_name) < 2 else "less than or equal to 64"
            raise AwsError(
                "ValidationError",
                f"1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy "
                f"constraint: Member must have length {bound}",
            )
        if not _SESSION_NAME.fullmatch(session_name):
            raise AwsError(
                "ValidationError",
                f"1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy "
                r"constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*",
            )
        denied = AccessDenied(
            f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        )
        if caller.is_root:
            raise AccessDenied("Roles may not be assumed by root accounts.")
        role = self.directory.role_by_arn(role_arn)
        if role is None:
            raise denied
        tags = tags_from_params(params.get("Tags"))
        if len({k.lower() for k in tags}) != len(tags):
            # Keys differing only in case would let a condition on one spelling pass while the other
            # becomes the principal tag. IAM's wording for tags; unconfirmed for STS.
            raise AwsError(
                "ValidationError", "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            )
        transitive = [str(k) for k in params.get("TransitiveTagKeys") or []]
        inherited = self._inherited_tags(caller)
        if inherited:
            # A role chain keeps the transitive tags of the calling session; a request may not override
            # them, in any case (IAM user guide, "Chaining roles with session tags"). Unconfirmed wording.
            lowered = {k.lower() for k in inherited}
            if any(k.lower() in lowered for k in tags):
                raise AwsError("ValidationError",
                               "A session tag cannot override a transitive tag inherited from the calling session.")
            tags = {**inherited, **tags}
            transitive += [k for k in inherited if k.lower() not in {t.lower() for t in transitive}]
        if len(tags) > 50:
            raise AwsError("ValidationError", "Session tags are limited to 50.")
        source_identity = params.get("SourceIdentity")
        if caller.source_identity and source_identity and source_identity != caller.source_identity:
            # "After the source identity is set, the value cannot be changed" (AssumeRole API reference);
            # unconfirmed: AWS's code and wording for an attempt to change it in a role chain.
            raise AccessDenied(
                f"User: {caller.arn} is not authorized to perform: sts:SetSourceIdentity on resource: {role_arn}"
            )
        source_identity = source_identity or caller.source_identity
        keys = self._trust_keys(params, tags)
        if source_identity:
            keys["sts:SourceIdentity"] = source_identity
        context = self.authorizer.request_context(ctx, keys)
        if not self.authorizer.trust_allows(role, caller, context):
            raise denied
        if tags or transitive:
            # inherited transitive tags too: they are session tags of the new session
            self._authorize_on_role(ctx, "sts:TagSession", role, role_arn, context)
        if source_identity:
            # Also when it is inherited in a role chain: "permissions for sts:SetSourceIdentity are required
            # in both the permissions policy of the principal who is assuming the role and in the role trust
            # policy of the target role" (IAM user guide, "Permissions required to set source identity").
            self._authorize_on_role(ctx, "sts:SetSourceIdentity", role, role_arn, context)

        chained = caller.kind == "assumed-role"
        duration = int(params.get("DurationSeconds") or 3600)
        if duration < 900:
            raise _duration_error(duration, "greater than or equal to 900")
        if duration > 43200:
            raise _duration_error(duration, "less than or equal to 43200")
        if chained and duration > _CHAIN_LIMIT:
            raise AwsError(
                "ValidationError",
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
            )
        if duration > role.max_session:
            raise AwsError(
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            )

        policies, given = self._session_policies(params)
        packed = len("".join(json.dumps(json.loads(p), separators=(",", ":")) for p in policies))
        packed += sum(len(k) + len(v) for k, v in tags.items())
        packed_percent = -(-packed * 100 // _PACKED_LIMIT)
        if packed_percent > 100:
            raise AwsError(
                "PackedPolicyTooLarge",
                f"Packed policy consumes {packed_percent}% of allotted space, please use smaller policy.",
                400,
            )

        now = _whole_seconds(ctx.time)
        session = Session(
            key_id=new_id("ASIA"),
            secret=new_secret(),
            token=_new_token(),
            kind="assumed-role",
            name=role.name,
            entity_id=role.role_id,
            entity_arn=role.arn(self.directory.account),
            issued=now,
            expires=now + timedelta(seconds=duration),
            session_name=session_name,
            tags=tags,
            policies=policies,
            policy_given=given,
            source_identity=source_identity,
            chained=chained,
            transitive=transitive,
        )
        self.directory.save_session(session)
        account = self.directory.account
        assumed = {
            "AssumedRoleId": f"{role.role_id}:{session_name}",
            "Arn": f"arn:aws:sts::{account}:assumed-role/{role.name}/{session_name}",
        }
        ctx.record_resource("AWS::IAM::Role", role_arn)
        ctx.response_elements = {
            "credentials": {"accessKeyId": session.key_id, "expiration": session.expires.isoformat()},
            "assumedRoleUser": {"assumedRoleId": assumed["AssumedRoleId"], "arn": assumed["Arn"]},
        }
        out: dict[str, Any] = {
            "Credentials": self._credentials(session),
            "AssumedRoleUser": assumed,
        }
        if given or tags:
            out["PackedPolicySize"] = packed_percent
        if session.source_identity:
            out["SourceIdentity"] = session.source_identity
        return out

    def _inherited_tags(self, caller: Principal) -> dict[str, str]:
        """The transitive session tags of the calling role session (empty for anyone else)."""
        if caller.kind != "assumed-role" or not caller.access_key_id:
            return {}
        session = self.directory.session(caller.access_key_id)
        if session is None:
            return {}
        wanted = {k.lower() for k in session.transitive}
        return {k: v for k, v in session.tags.items() if k.lower() in wanted}

    def _authorize_on_role(
        self, ctx: RequestContext, action: str, role: Role, role_arn: str, context: dict[str, Any]
    ) -> None:
        """A permissions-only action on the role assumed: the trust policy must allow it, and so must the
        caller's policies (identity, boundary, session), unless the trust policy names the caller."""
        caller = ctx.principal
        context = {**context, **{f"aws:ResourceTag/{k}": v for k, v in role.tags.items()}}
        if not self.authorizer.trust_allows(role, caller, context, action):
            raise AccessDenied(
                f"User: {caller.arn} is not authorized to perform: {action} on resource: {role_arn}"
            )
        result = self.authorizer.decide(caller, action, role_arn, context)
        if result.decision is not Decision.ALLOW:
            raise AccessDenied(access_denied_message(caller.arn, action, role_arn, result))

    @staticmethod
    def _trust_keys(params: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
        keys: dict[str, Any] = {"sts:RoleSessionName": params["RoleSessionName"]}
        if params.get("ExternalId") is not None:
            keys["sts:ExternalId"] = params["ExternalId"]
        if params.get("SourceIdentity"):
            keys["sts:SourceIdentity"] = params["SourceIdentity"]
        if params.get("TransitiveTagKeys"):
            keys["sts:TransitiveTagKeys"] = list(params["TransitiveTagKeys"])
        for k, v in tags.items():
            keys[f"aws:RequestTag/{k}"] = v
        if tags:
            keys["aws:TagKeys"] = list(tags)
        return keys

    def _session_policies(self, params: dict[str, Any]) -> tuple[list[str], bool]:
        """Session policy documents (inline ``Policy`` and the default versions of ``PolicyArns``)."""
        documents: list[str] = []
        given = False
        if params.get("Policy"):
            given = True
            text = str(params["Policy"])
            if len(text) > _POLICY_PLAINTEXT:
                # "The plaintext that you use for both inline and managed session policies can't exceed
                # 2,048 characters" (STS API reference). botocore's AssumeRole model no longer carries the
                # max its sibling operations keep; unconfirmed: AWS answers with the same constraint error.
                # Checked before parsing, so a huge document is refused without being compiled.
                raise AwsError(
                    "ValidationError",
                    f"1 validation error detected: Value '{text}' at 'policy' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {_POLICY_PLAINTEXT}",
                )
            self.directory.compile(text, "session")  # MalformedPolicyDocument if invalid
            documents.append(params["Policy"])
        for entry in params.get("PolicyArns") or []:
            given = True
            arn = entry.get("arn") or ""
            policy = self.directory.get_policy(arn)
            if policy is None:
                # Unconfirmed: AWS's code and wording for a session PolicyArn that does not exist.
                raise AwsError(
                    "InvalidParameterValue", f"Policy {arn} does not exist or is not attachable.", 400
                )
            documents.append(policy.document)
        if len(params.get("PolicyArns") or []) > 10:
            raise AwsError("ValidationError", "PolicyArns is limited to 10 managed policies.")
        return documents, given

    @staticmethod
    def _credentials(session: Session) -> dict[str, Any]:
        return {
            "AccessKeyId": session.key_id,
            "SecretAccessKey": session.secret,
            "SessionToken": session.token,
            "Expiration": session.expires,
        }

    # --- GetSessionToken ------------------------------------------------------------------------

    def GetSessionToken(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        caller = ctx.principal
        if caller.kind not in ("user", "root") or caller.token_expires is not None:
            raise AccessDenied("Cannot call GetSessionToken with session credentials")
        raw = params.get("DurationSeconds")
        duration = int(raw) if raw is not None else (3600 if caller.is_root else 43200)
        if duration < 900:
            raise _duration_error(duration, "greater than or equal to 900")
        if duration > 129600:
            raise _duration_error(duration, "less than or equal to 129600")
        if caller.is_root:
            # "Credentials based on account credentials can range from 900 seconds to 3,600 seconds";
            # longer requests get one hour rather than an error.
            duration = min(duration, 3600)
        now = _whole_seconds(ctx.time)
        session = Session(
            key_id=new_id("ASIA"),
            secret=new_secret(),
            token=_new_token(),
            kind=caller.kind,
            name=caller.name,
            entity_id=caller.user_id,
            entity_arn=caller.arn,
            issued=now,
            expires=now + timedelta(seconds=duration),
        )
        self.directory.save_session(session)
        ctx.response_elements = {
            "credentials": {"accessKeyId": session.key_id, "expiration": session.expires.isoformat()}
        }
        return {"Credentials": self._credentials(session)}

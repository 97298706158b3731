"""The identity store: IAM entities, credentials and compiled policies of one account.

Everything lives in the ``Store`` and is loaded into memory at start. Writes go to the store
first (``_put``/``_drop``) and only then to memory, so a failed write changes nothing. Every
change bumps a generation and clears the two hot-path caches:

* ``lookup_credentials`` — access key id → (signing key, Principal), a dict hit per request;
* ``policies_for`` — principal → compiled identity/boundary/session policies.

Secrets (access key secrets, session secrets and tokens) are sealed with the installation key
before they reach the store; the opened values live only in memory.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from auroral.api.context import Principal
from auroral.api.sigv4 import SigningKeyInfo
from auroral.crypto import Sealer
from auroral.errors import AwsError
from auroral.iam.managed import aws_managed_policies
from auroral.iam.model import (
    KIND_ACCESS_KEY,
    KIND_GROUP,
    KIND_POLICY,
    KIND_ROLE,
    KIND_ROOT_KEY,
    KIND_SESSION,
    KIND_USER,
    AccessKey,
    Group,
    ManagedPolicy,
    Role,
    Session,
    User,
    new_id,
    new_secret,
    utcnow,
)
from auroral.iam.policy import Policy, PolicyKind, parse_policy
from auroral.iam.policy.evaluate import evaluate_trust
from auroral.store import Store

log = logging.getLogger(__name__)

# How often the last-used time of one key is written to the store (GetAccessKeyLastUsed is
# reported by AWS with a granularity of minutes anyway).
_LAST_USED_WRITE_INTERVAL = timedelta(minutes=1)
# A key's last use names the service and region its request was signed for: the signer's own text, shown
# by GetAccessKeyLastUsed and in the credential report (a CSV auditors open in spreadsheets). Only what an
# AWS service or region name looks like is recorded (a formula is not), else nothing (N/A).
_SIGNED_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")
# Expired sessions are kept a while (so callers get ExpiredToken, not InvalidClientTokenId), then purged.
_SESSION_RETENTION = timedelta(days=1)

# service name -> (role name, AWS-managed policy name, description)
SERVICE_LINKED_ROLES: dict[str, tuple[str, str, str]] = {
    "rds.amazonaws.com": (
        "AWSServiceRoleForRDS",
        "AmazonRDSServiceRolePolicy",
        "Allows Amazon RDS to manage AWS resources on your behalf",
    ),
}

_ALLOW_NOTHING = '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}'

PolicyTriple = tuple[list[Policy], Policy | None, list[Policy] | None]


def expired_token() -> AwsError:
    return AwsError("ExpiredToken", "The security token included in the request is expired", 403)


class Directory:
    """IAM state of one account, persisted in the store, with in-memory caches for the hot path."""

    def __init__(
        self, store: Store, sealer: Sealer, account_id: str, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.store = store
        self.sealer = sealer
        self.account = account_id
        self.clock = clock
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}  # keyed by lower-case name: IAM names are case-insensitive
        self.groups: dict[str, Group] = {}
        self.roles: dict[str, Role] = {}
        self.policies: dict[str, ManagedPolicy] = {}  # customer-managed, keyed by ARN
        self.access_keys: dict[str, AccessKey] = {}
        self.root_keys: dict[str, AccessKey] = {}
        self.sessions: dict[str, Session] = {}
        self.aws_policies = aws_managed_policies()
        # service name -> callback answering why its service-linked role can't be deleted (or None)
        self.slr_deletion_checks: dict[str, Callable[[str], str | None]] = {}
        self.generation = 0
        self._cred_cache: dict[str, tuple[SigningKeyInfo, Principal]] = {}
        self._policy_cache: dict[tuple[str, str, tuple[str, ...]], PolicyTriple] = {}
        self._compiled: dict[tuple[str, str], Policy] = {}
        self._last_written: dict[str, datetime] = {}
        self._load()

    # --- loading and persistence ---------------------------------------------------------------

    def _load(self) -> None:
        acct = self.account
        for _, key, d in self.store.list(KIND_USER, acct):
            self.users[key] = User.from_doc(d)
        for _, key, d in self.store.list(KIND_GROUP, acct):
            self.groups[key] = Group.from_doc(d)
        for _, key, d in self.store.list(KIND_ROLE, acct):
            self.roles[key] = Role.from_doc(d)
        for _, key, d in self.store.list(KIND_POLICY, acct):
            self.policies[key] = ManagedPolicy.from_doc(d)
        for kind, target in ((KIND_ACCESS_KEY, self.access_keys), (KIND_ROOT_KEY, self.root_keys)):
            for _, key, d in self.store.list(kind, acct):
                k = AccessKey.from_doc(d, "")
                k.secret = self.sealer.open_text(d["secret"], k.aad())
                target[key] = k
        cutoff = self.clock() - _SESSION_RETENTION
        for _, key, d in self.store.list(KIND_SESSION, acct):
            s = Session.from_doc(d, "", "")
            if s.expires < cutoff:
                self.store.delete(KIND_SESSION, acct, key)
                continue
            s.secret = self.sealer.open_text(d["secret"], s.aad("secret"))
            s.token = self.sealer.open_text(d["token"], s.aad("token"))
            self.sessions[key] = s

    def _put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        self.store.put(kind, self.account, key, doc)

    def changed(self) -> None:
        """Invalidate the hot-path caches after any change of entities, policies or keys."""
        self.generation += 1
        self._cred_cache.clear()
        self._policy_cache.clear()

    def save_user(self, user: User, *, old_key: str | None = None) -> None:
        key = user.name.lower()
        with self.lock, self.store.transaction():
            if old_key is not None and old_key != key:
                self.store.delete(KIND_USER, self.account, old_key)
            self._put(KIND_USER, key, user.to_doc())
        if old_key is not None and old_key != key:
            self.users.pop(old_key, None)
        self.users[key] = user
        self.changed()

    def delete_user(self, user: User) -> None:
        self.store.delete(KIND_USER, self.account, user.name.lower())
        self.users.pop(user.name.lower(), None)
        self.changed()

    def save_group(self, group: Group) -> None:
        self._put(KIND_GROUP, group.name.lower(), group.to_doc())
        self.groups[group.name.lower()] = group
        self.changed()

    def delete_group(self, group: Group) -> None:
        self.store.delete(KIND_GROUP, self.account, group.name.lower())
        self.groups.pop(group.name.lower(), None)
        self.changed()

    def save_role(self, role: Role) -> None:
        self._put(KIND_ROLE, role.name.lower(), role.to_doc())
        self.roles[role.name.lower()] = role
        self.changed()

    def delete_role(self, role: Role) -> None:
        self.store.delete(KIND_ROLE, self.account, role.name.lower())
        self.roles.pop(role.name.lower(), None)
        self.changed()

    def save_policy(self, policy: ManagedPolicy) -> None:
        self._put(KIND_POLICY, policy.arn, policy.to_doc())
        self.policies[policy.arn] = policy
        self.changed()

    def delete_policy(self, policy: ManagedPolicy) -> None:
        self.store.delete(KIND_POLICY, self.account, policy.arn)
        self.policies.pop(policy.arn, None)
        self.changed()

    def save_access_key(self, key: AccessKey, *, root: bool = False) -> None:
        sealed = self.sealer.seal_text(key.secret, key.aad())
        self._put(KIND_ROOT_KEY if root else KIND_ACCESS_KEY, key.key_id, key.to_doc(sealed))
        (self.root_keys if root else self.access_keys)[key.key_id] = key
        self.changed()

    def delete_access_key(self, key: AccessKey, *, root: bool = False) -> None:
        self.store.delete(KIND_ROOT_KEY if root else KIND_ACCESS_KEY, self.account, key.key_id)
        (self.root_keys if root else self.access_keys).pop(key.key_id, None)
        self.changed()

    def save_session(self, session: Session) -> None:
        doc = session.to_doc(
            self.sealer.seal_text(session.secret, session.aad("secret")),
            self.sealer.seal_text(session.token, session.aad("token")),
        )
        self._put(KIND_SESSION, session.key_id, doc)
        self.sessions[session.key_id] = session
        # A new key needs no cache invalidation: lookups of unknown keys are never cached.

    # --- accessors other services use ----------------------------------------------------------

    def get_user(self, name: str) -> User | None:
        return self.users.get(name.lower())

    def get_group(self, name: str) -> Group | None:
        return self.groups.get(name.lower())

    def get_role(self, name: str) -> Role | None:
        return self.roles.get(name.lower())

    def get_policy(self, arn: str) -> ManagedPolicy | None:
        return self.policies.get(arn) or self.aws_policies.get(arn)

    def role_by_arn(self, arn: str) -> Role | None:
        name = arn.rsplit("/", 1)[-1]
        role = self.get_role(name)
        if role is None or role.arn(self.account) != arn:
            return None
        return role

    def service_may_assume(self, arn: str, service: str, context: dict[str, Any]) -> bool | None:
        """Whether the role ``arn`` trusts ``service`` (``rds.amazonaws.com``) to assume it, with the
        service's request context (``aws:SourceAccount``, ``aws:SourceArn``); None when there is no such
        role (RDS's AssociatedRoles status)."""
        role = self.role_by_arn(arn)
        if role is None:
            return None
        return evaluate_trust(self.compile(role.trust, "trust"), service, None, context)

    def session(self, access_key_id: str) -> Session | None:
        return self.sessions.get(access_key_id)

    def user_arn(self, user: User) -> str:
        return user.arn(self.account)

    def group_members(self, group: Group) -> list[User]:
        key = group.name.lower()
        return [u for u in self.users.values() if key in (g.lower() for g in u.groups)]

    def entities_attached_to(self, arn: str) -> tuple[list[User], list[Group], list[Role]]:
        return (
            [u for u in self.users.values() if arn in u.attached],
            [g for g in self.groups.values() if arn in g.attached],
            [r for r in self.roles.values() if arn in r.attached],
        )

    def boundary_usage(self, arn: str) -> int:
        return sum(1 for u in self.users.values() if u.boundary == arn) + sum(
            1 for r in self.roles.values() if r.boundary == arn
        )

    # --- credentials (hot path) ----------------------------------------------------------------

    def lookup_credentials(self, access_key_id: str) -> tuple[SigningKeyInfo, Principal] | None:
        hit = self._cred_cache.get(access_key_id)
        if hit is None:
            hit = self._build_credentials(access_key_id)
            if hit is None:
                return None
            self._cred_cache[access_key_id] = hit
        expires = hit[1].token_expires
        if expires is not None and expires <= self.clock():
            raise expired_token()
        return hit

    def _build_credentials(self, akid: str) -> tuple[SigningKeyInfo, Principal] | None:
        acct = self.account
        root = self.root_keys.get(akid)
        if root is not None:
            if root.status != "Active":
                return None
            return SigningKeyInfo(root.secret, None), self.root_principal(akid)
        key = self.access_keys.get(akid)
        if key is not None:
            user = self.get_user(key.user)
            if key.status != "Active" or user is None:
                return None
            return SigningKeyInfo(key.secret, None), self.user_principal(user, akid)
        s = self.sessions.get(akid)
        if s is None:
            return None
        if s.kind == "root":
            principal = self.root_principal(akid, s)
        elif s.kind == "user":
            user = self.get_user(s.name)
            if user is None or user.user_id != s.entity_id:
                return None
            principal = self.user_principal(user, akid, s)
        else:
            role = self.get_role(s.name)
            # Role tags are principal tags of its sessions; session tags override them, "regardless of
            # case" of the key (IAM user guide, "Things to know about session tags").
            tags = dict(role.tags) if role is not None and role.role_id == s.entity_id else {}
            overridden = {k.lower() for k in s.tags}
            tags = {k: v for k, v in tags.items() if k.lower() not in overridden}
            tags.update(s.tags)
            principal = Principal(
                account=acct,
                arn=f"arn:aws:sts::{acct}:assumed-role/{s.name}/{s.session_name}",
                kind="assumed-role",
                user_id=f"{s.entity_id}:{s.session_name}",
                name=s.name,
                access_key_id=akid,
                session_name=s.session_name,
                tags=tags,
                session_policies=tuple(s.policies),
                session_policy_given=s.policy_given,
                token_expires=s.expires,
                source_identity=s.source_identity,
            )
        return SigningKeyInfo(s.secret, s.token), principal

    def root_principal(self, akid: str = "", s: Session | None = None) -> Principal:
        return Principal(
            account=self.account,
            arn=f"arn:aws:iam::{self.account}:root",
            kind="root",
            user_id=self.account,
            name="root",
            access_key_id=akid,
            token_expires=s.expires if s else None,
        )

    def user_principal(self, user: User, akid: str = "", s: Session | None = None) -> Principal:
        return Principal(
            account=self.account,
            arn=user.arn(self.account),
            kind="user",
            user_id=user.user_id,
            name=user.name,
            access_key_id=akid,
            tags=dict(user.tags),
            token_expires=s.expires if s else None,
        )

    def note_key_used(self, access_key_id: str, service: str, region: str, when: datetime) -> None:
        key = self.access_keys.get(access_key_id) or self.root_keys.get(access_key_id)
        if key is None:
            session = self.sessions.get(access_key_id)
            if session is not None and session.kind == "assumed-role":
                self._note_role_used(session, region, when)
            return
        key.last_used = when
        key.last_service = service if _SIGNED_NAME.fullmatch(service) else None
        key.last_region = region if _SIGNED_NAME.fullmatch(region) else None
        last = self._last_written.get(access_key_id)
        if last is not None and when - last < _LAST_USED_WRITE_INTERVAL:
            return
        self._last_written[access_key_id] = when
        sealed = self.sealer.seal_text(key.secret, key.aad())
        kind = KIND_ROOT_KEY if access_key_id in self.root_keys else KIND_ACCESS_KEY
        # Written without changed(): the last-used time is not part of any cached decision.
        self._put(kind, access_key_id, key.to_doc(sealed))

    def _note_role_used(self, session: Session, region: str, when: datetime) -> None:
        role = self.get_role(session.name)
        if role is None or role.role_id != session.entity_id:
            return
        role.last_used = when
        role.last_used_region = region if _SIGNED_NAME.fullmatch(region) else None
        last = self._last_written.get(role.role_id)
        if last is not None and when - last < _LAST_USED_WRITE_INTERVAL:
            return
        self._last_written[role.role_id] = when
        self._put(KIND_ROLE, role.name.lower(), role.to_doc())

    # --- root -----------------------------------------------------------------------------------

    def ensure_root(self, access_key_id: str | None, secret: str | None) -> tuple[str, str]:
        """The account root's access key: pinned by the arguments (replacing any other root key),
        else the existing one, else a new one generated now."""
        with self.lock:
            if access_key_id and secret:
                current = self.root_keys.get(access_key_id)
                if current is not None and current.secret == secret and len(self.root_keys) == 1:
                    return access_key_id, secret
                with self.store.transaction():
                    for old in list(self.root_keys.values()):
                        self.delete_access_key(old, root=True)
                    self.save_access_key(
                        AccessKey(access_key_id, "", secret, "Active", self.clock()), root=True
                    )
                return access_key_id, secret
            for key in self.root_keys.values():
                return key.key_id, key.secret
            key = AccessKey(new_id("AKIA"), "", new_secret(), "Active", self.clock())
            self.save_access_key(key, root=True)
            return key.key_id, key.secret

    # --- compiled policies ---------------------------------------------------------------------

    def compile(self, text: str, kind: PolicyKind = "identity") -> Policy:
        """A parsed policy, cached by its text (parse once, evaluate many times)."""
        cache_key = (kind, text)
        policy = self._compiled.get(cache_key)
        if policy is None:
            if len(self._compiled) > 10_000:
                self._compiled.clear()
            policy = parse_policy(text, kind=kind)
            self._compiled[cache_key] = policy
        return policy

    def _compile_all(self, texts: Iterable[str]) -> list[Policy]:
        out: list[Policy] = []
        for text in texts:
            try:
                out.append(self.compile(text))
            except AwsError:  # validated on write; a stored document that no longer parses grants nothing
                log.warning("skipping a stored policy document that does not parse")
        return out

    def _managed_documents(self, arns: Iterable[str]) -> list[str]:
        out = []
        for arn in arns:
            policy = self.get_policy(arn)
            if policy is not None:
                out.append(policy.document)
        return out

    def documents_for_user(self, user: User) -> list[str]:
        texts = [*user.inline.values(), *self._managed_documents(user.attached)]
        for name in user.groups:
            group = self.get_group(name)
            if group is not None:
                texts += [*group.inline.values(), *self._managed_documents(group.attached)]
        return texts

    def documents_for_role(self, role: Role) -> list[str]:
        return [*role.inline.values(), *self._managed_documents(role.attached)]

    def boundary_document(self, arn: str | None) -> str | None:
        if arn is None:
            return None
        policy = self.get_policy(arn)
        return policy.document if policy is not None else None

    def policies_for(self, principal: Principal) -> PolicyTriple:
        """(identity policies, permissions boundary, session policies) of a principal."""
        cache_key = (principal.kind, principal.arn, principal.session_policies)
        hit = self._policy_cache.get(cache_key)
        if hit is not None:
            return hit
        identity: list[str] = []
        boundary: str | None = None
        if principal.kind == "user":
            user = self.get_user(principal.name)
            if user is not None and user.user_id == principal.user_id:
                identity, boundary = self.documents_for_user(user), self.boundary_document(user.boundary)
        elif principal.kind == "assumed-role":
            role = self.get_role(principal.name)
            if role is not None and principal.user_id.startswith(role.role_id + ":"):
                identity, boundary = self.documents_for_role(role), self.boundary_document(role.boundary)
        session = None
        if principal.session_policy_given:
            session = self._compile_all(principal.session_policies)
            if not session:
                # Session policies that no longer parse must not widen access (an empty list would mean
                # "no session policy"): the session is then allowed nothing.
                session = [self.compile(_ALLOW_NOTHING, "session")]
        compiled_boundary = None
        if boundary is not None:
            parsed = self._compile_all([boundary])
            # A boundary that no longer parses must not widen access: it then allows nothing.
            compiled_boundary = parsed[0] if parsed else self.compile(_ALLOW_NOTHING, "boundary")
        triple: PolicyTriple = (self._compile_all(identity), compiled_boundary, session)
        self._policy_cache[cache_key] = triple
        return triple

    def principal_arn(self, principal: Principal) -> str:
        """``aws:PrincipalArn``: for a role session AWS gives the role's ARN, not the session's."""
        if principal.kind == "assumed-role":
            s = self.sessions.get(principal.access_key_id)
            if s is not None and s.entity_arn:
                return s.entity_arn
            role = self.get_role(principal.name)
            if role is not None:
                return role.arn(self.account)
        return principal.arn

    # --- service-linked roles ------------------------------------------------------------------

    def service_linked_role_exists(self, service_name: str) -> bool:
        return any(r.service_linked == service_name for r in self.roles.values())

    def register_slr_deletion_check(
        self, service_name: str, can_delete_service_linked_role: Callable[[str], str | None]
    ) -> None:
        """``can_delete_service_linked_role(service_name)`` returns why the role is still needed, or None."""
        self.slr_deletion_checks[service_name] = can_delete_service_linked_role

    def create_service_linked_role(
        self, service_name: str, description: str | None = None, suffix: str | None = None
    ) -> Role:
        known = SERVICE_LINKED_ROLES.get(service_name)
        if known is None:
            # Unconfirmed wording: AWS refuses services without a service-linked role this way.
            raise AwsError("InvalidInput", f"Invalid ServiceName: {service_name}", 400)
        role_name, policy_name, default_description = known
        if suffix:
            role_name = f"{role_name}_{suffix}"
        if self.get_role(role_name) is not None:
            raise AwsError(
                "InvalidInput",
                f"Service role name {role_name} has been taken in this account, please try a different suffix.",
                400,
            )
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": [service_name]}, "Action": "sts:AssumeRole"}
            ],
        }
        role = Role(
            name=role_name,
            path=f"/aws-service-role/{service_name}/",
            role_id=new_id("AROA"),
            created=self.clock(),
            trust=json.dumps(trust),
            description=description or default_description,
            attached=[f"arn:aws:iam::aws:policy/aws-service-role/{policy_name}"],
            service_linked=service_name,
        )
        self.save_role(role)
        return role

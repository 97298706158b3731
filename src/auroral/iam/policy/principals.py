"""The Principal / NotPrincipal element of resource-based and trust policies.

Accepted forms: ``"*"``; ``{"AWS": ...}`` with ``"*"``, an account id, ``arn:aws:iam::<acct>:root``
(any principal of that account), or a user / role / assumed-role / federated-user ARN;
``{"Service": "rds.amazonaws.com"}``; ``{"Federated": ...}``; ``{"CanonicalUser": ...}``. Each value may
be a string or a list. A role ARN also matches that role's sessions
(``arn:aws:sts::<acct>:assumed-role/<name>/<session>``): AWS stores the role's unique id, so the path
does not take part in the match, only the account and role name.

A service principal is presented by the caller as ``principal_arn="rds.amazonaws.com"``.

``match`` also reports whether the match was *direct* — the statement names exactly the requesting
principal's ARN. ``reach`` classifies a match the way same-account evaluation needs it (IAM user guide,
"How AWS enforcement code logic evaluates requests", *Resource-based policies*, and "Principal",
*IAM role principals* / *AWS account principals*):

* ``Reach.DIRECT`` — names the IAM user or the role session making the request, or everyone (``"*"``):
  "an implicit deny in an identity-based policy, a permissions boundary, or a session policy does not
  impact the final decision"; for the wildcard: "permissions boundaries or session policies do not limit
  permissions granted using the ``aws:PrincipalArn`` condition key with a wildcard(*) in the Principal
  element, unless the identity-based policies contain an explicit deny" (the condition only narrows a
  wildcard grant, so a wildcard grant without one is classed the same).
* ``Reach.LIMITED`` — names the *role* of the calling session: "Resource-based policies that grant
  permissions to an IAM role ARN are limited by an implicit deny in a permissions boundary or session
  policy" (no identity-based Allow is needed). An Allow with ``NotPrincipal`` is classed here too
  (unconfirmed; AWS advises against that form — the limiting reading is the cautious one).
* ``Reach.DELEGATED`` — names only the caller's account: "This delegates authority to the account", so
  the account's identity-based policies must allow as well (also within the account: the same holds for
  KMS key policies, whose default policy works exactly this way).
"""

from __future__ import annotations

import enum
import re
from typing import Any

_ACCOUNT = re.compile(r"\d{12}")
_KEYS = ("AWS", "Service", "Federated", "CanonicalUser")


class PrincipalError(Exception):
    """``message`` is IAM's MalformedPolicyDocument text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _strings(raw: Any) -> list[str] | None:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
        return list(raw)
    return None


def _account_of(arn: str) -> str | None:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[0] == "arn" else None


def _session_role(arn: str) -> tuple[str, str] | None:
    """(account, role name) of an assumed-role session ARN."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "sts" or not parts[5].startswith("assumed-role/"):
        return None
    names = parts[5].split("/")
    return (parts[4], names[1]) if len(names) >= 3 else None


class Reach(enum.Enum):
    """How a matching resource-based Allow reaches the requesting principal (see the module docstring)."""

    DIRECT = "direct"
    LIMITED = "limited"
    DELEGATED = "delegated"


class PrincipalSpec:
    __slots__ = ("accounts", "any_aws", "arns", "everyone", "others", "roles")

    def __init__(self, raw: Any) -> None:
        self.everyone = False
        self.any_aws = False
        accounts: set[str] = set()
        arns: set[str] = set()
        roles: set[tuple[str, str]] = set()
        others: set[str] = set()
        if raw == "*":
            self.everyone = True
        elif isinstance(raw, dict) and raw:
            for key, value in raw.items():
                values = _strings(value)
                if key not in _KEYS or values is None:
                    raise PrincipalError("Syntax errors in policy.")
                for text in values:
                    if key != "AWS":
                        others.add(text)
                    elif text == "*":
                        self.any_aws = True
                    elif _ACCOUNT.fullmatch(text):
                        accounts.add(text)
                    else:
                        self._add_arn(text, accounts, arns, roles)
        else:
            raise PrincipalError("Syntax errors in policy.")
        self.accounts = frozenset(accounts)
        self.arns = frozenset(arns)
        self.roles = frozenset(roles)
        self.others = frozenset(others)

    @staticmethod
    def _add_arn(text: str, accounts: set[str], arns: set[str], roles: set[tuple[str, str]]) -> None:
        parts = text.split(":", 5)
        if (
            len(parts) != 6
            or parts[0] != "arn"
            or parts[2] not in ("iam", "sts")
            or not _ACCOUNT.fullmatch(parts[4])
        ):
            raise PrincipalError(f'Invalid principal in policy: "AWS":"{text}"')
        if parts[2] == "iam" and parts[5] == "root":
            accounts.add(parts[4])
            return
        arns.add(text)
        if parts[2] == "iam" and parts[5].startswith("role/"):
            roles.add((parts[4], parts[5].rsplit("/", 1)[-1]))

    def match(self, principal_arn: str | None, principal_account: str | None) -> tuple[bool, bool]:
        """(matches, direct)."""
        if self.everyone:
            return True, False
        if principal_arn is None:
            return False, False
        if principal_arn in self.arns:
            return True, True
        if principal_arn in self.others:
            return True, False
        if not principal_arn.startswith("arn:"):
            return False, False  # a service principal named nowhere above
        if self.any_aws:
            return True, False
        if (principal_account or _account_of(principal_arn)) in self.accounts:
            return True, False
        if self.roles:
            session = _session_role(principal_arn)
            if session is not None and session in self.roles:
                return True, False
        return False, False

    def reach(self, principal_arn: str | None, principal_account: str | None) -> Reach | None:
        """How this principal spec reaches the caller, ``None`` if it does not (the broadest way wins:
        a spec naming both the caller's role and its account grants as a role grant)."""
        matched, direct = self.match(principal_arn, principal_account)
        if not matched:
            return None
        if direct or self.everyone or self.any_aws or principal_arn in self.others:
            return Reach.DIRECT
        session = _session_role(principal_arn) if principal_arn else None
        if session is not None and session in self.roles:
            return Reach.LIMITED
        return Reach.DELEGATED

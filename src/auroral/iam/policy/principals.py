"""The Principal / NotPrincipal element of resource-based and trust policies.

Accepted forms: ``"*"``; ``{"AWS": ...}`` with ``"*"``, an account id, ``arn:aws:iam::<acct>:root``
(any principal of that account), or a user / role / assumed-role / federated-user ARN;
``{"Service": "rds.amazonaws.com"}``; ``{"Federated": ...}``; ``{"CanonicalUser": ...}``. Each value may
be a string or a list. A role ARN also matches that role's sessions
(``arn:aws:sts::<acct>:assumed-role/<name>/<session>``): AWS stores the role's unique id, so the path
does not take part in the match, only the account and role name.

A service principal is presented by the caller as ``principal_arn="rds.amazonaws.com"``.

``match`` also reports whether the match was *direct* — the statement names exactly the requesting
principal's ARN. Evaluation needs this: a same-account resource-policy Allow that names the IAM user
(or the role session) directly is not limited by a permissions boundary or session policy.
"""

from __future__ import annotations

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

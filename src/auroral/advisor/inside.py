"""AURORAL.4 to AURORAL.9: decided from inside each cluster's database (``auroral.advisor.database``)
and, for AURORAL.8, from the gateway's flow records. Each control has one finding per cluster, naming
the roles that fail it; the rules are in ``controls``' comments and descriptions.

A cluster whose database was not read yet (just created, its server not reachable since auroral
started) has none of these findings until it is. The engine's roles and PostgreSQL's ``pg_*`` ones are
never named; no finding carries a password or a hash, only role names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from auroral.rds.model import Cluster

from .controls import BY_ID, FLOW_WINDOW_HOURS
from .database import DatabaseState, RoleInfo
from .snapshot import Evaluation, Snapshot, logins, verdict

MAX_NAMED = 20  # role names listed in a finding (the count is exact)


def _names(roles: list[str]) -> str:
    more = f" (+{len(roles) - MAX_NAMED} more)" if len(roles) > MAX_NAMED else ""
    return ", ".join(roles[:MAX_NAMED]) + more


def _users(state: DatabaseState) -> list[RoleInfo]:
    """The customer's roles: not the engine's."""
    return [r for r in state.roles if not r.reserved]


def _role_control(s: Snapshot, control: str, failing: Callable[[Cluster, DatabaseState], list[str]],
                  bad: str, good: str, key: str, note: Callable[[Cluster], str] = lambda c: "",
                  ) -> Iterator[Evaluation]:
    for c in s.clusters:
        state = s.databases.get(c.resource_id)
        if state is None:
            continue
        roles = failing(c, state)
        evidence = {key: _names(roles) if roles else "none", "MasterUsername": c.master_username}
        why = f"{len(roles)} role(s) {bad}: {_names(roles)}{note(c)}" if roles else good
        yield Evaluation(BY_ID[control], s.cluster_arn(c), verdict(not roles), why, evidence,
                         {"DbClusterIdentifier": c.identifier})


def auroral_4(s: Snapshot) -> Iterator[Evaluation]:
    def failing(c: Cluster, state: DatabaseState) -> list[str]:
        return [r.name for r in _users(state) if r.login and r.superuser_member and r.name != c.master_username]

    yield from _role_control(s, "AURORAL.4", failing, "besides the master user can log in and are members of "
                             "rds_superuser", "no login role besides the master user is a member of rds_superuser",
                             "SuperuserMembers")


def auroral_5(s: Snapshot) -> Iterator[Evaluation]:
    def failing(c: Cluster, state: DatabaseState) -> list[str]:
        return [r.name for r in _users(state) if r.createrole and r.name != c.master_username]

    def note(c: Cluster) -> str:
        return f" (PostgreSQL {c.major}: CREATEROLE can grant itself rds_superuser)" if c.major < 16 else ""

    yield from _role_control(s, "AURORAL.5", failing, "besides the master user have CREATEROLE",
                             "no role besides the master user has CREATEROLE", "CreateRoleRoles", note)


def auroral_6(s: Snapshot) -> Iterator[Evaluation]:
    def failing(c: Cluster, state: DatabaseState) -> list[str]:
        return [r.name for r in _users(state) if r.md5]

    yield from _role_control(s, "AURORAL.6", failing, "have a password stored as an MD5 hash",
                             "no role's password is stored as MD5", "Md5PasswordRoles")


def auroral_7(s: Snapshot) -> Iterator[Evaluation]:
    def failing(c: Cluster, state: DatabaseState) -> list[str]:
        return [r.name for r in _users(state) if r.login and not r.has_password and not r.iam_member]

    yield from _role_control(s, "AURORAL.7", failing, "can log in but have no password and are not in rds_iam",
                             "every login role has a password or is a member of rds_iam",
                             "LoginRolesWithoutCredential")


def auroral_8(s: Snapshot) -> Iterator[Evaluation]:
    by_cluster = logins(s)
    for c in s.clusters:
        state = s.databases.get(c.resource_id)
        if state is None:
            continue
        seen: dict[str, int] = {}
        for rec in by_cluster.get(c.identifier, []):
            if rec.db_user and rec.db_user != c.master_username:
                seen[rec.db_user] = seen.get(rec.db_user, 0) + 1
        owned: dict[str, list[str]] = {}
        for w in state.writes:
            for owner, what in ((w.schema_owner, f"schema {w.database}.{w.schema}"),
                                (w.table_owner, f"{w.tables} written table(s) in {w.database}.{w.schema}")):
                if owner in seen and what not in owned.get(owner, []):
                    owned.setdefault(owner, []).append(what)
        roles = sorted(owned)
        evidence = {"OwnerLogins": _names(roles) if roles else "none", "WindowHours": str(FLOW_WINDOW_HOURS)}
        if roles:  # role names are the customer's text: values only, never ProductFields keys
            evidence["OwnedWrites"] = " | ".join(
                f"{role}: {'; '.join(owned[role])[:300]}; {seen[role]} login(s)" for role in roles[:MAX_NAMED])
        if roles:
            first = roles[0]
            why = (f"{len(roles)} role(s) log in at the endpoints and own what they write: {first} owns "
                   f"{owned[first][0]}")
        else:
            why = "no role that logs in at the endpoints (besides the master user) owns a schema or table it writes"
        yield Evaluation(BY_ID["AURORAL.8"], s.cluster_arn(c), verdict(not roles), why, evidence,
                         {"DbClusterIdentifier": c.identifier})


def auroral_9(s: Snapshot) -> Iterator[Evaluation]:
    for c in s.clusters:
        state = s.databases.get(c.resource_id)
        if state is None:
            continue
        members = [r.name for r in _users(state) if r.login and r.iam_member]
        evidence = {"IAMDatabaseAuthenticationEnabled": str(c.iam_auth).lower(),
                    "RdsIamMembers": _names(members) if members else "none"}
        if not c.iam_auth:
            why = "IAM database authentication is disabled (RDS.12 judges that)"
        elif members:
            why = f"IAM database authentication is enabled and {len(members)} login role(s) are in rds_iam"
        else:
            why = "IAM database authentication is enabled but no login role is a member of rds_iam"
        ok = not c.iam_auth or bool(members)
        yield Evaluation(BY_ID["AURORAL.9"], s.cluster_arn(c), verdict(ok), why, evidence,
                         {"DbClusterIdentifier": c.identifier})


INSIDE_CHECKS: dict[str, Callable[[Snapshot], Iterator[Evaluation]]] = {
    "AURORAL.4": auroral_4, "AURORAL.5": auroral_5, "AURORAL.6": auroral_6, "AURORAL.7": auroral_7,
    "AURORAL.8": auroral_8, "AURORAL.9": auroral_9,
}

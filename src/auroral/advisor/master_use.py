"""AURORAL.1: the master user used by an application, decided from the gateway's flow records and
its live logins.

The rule (documented in ``controls``): the master-user logins of the window are grouped by source
address. A source is an application's when it is outside the cluster's administration hosts (the
cluster tag ``auroral:admin-hosts``: CIDRs separated by commas or spaces; none designated means no
host is exempt) and any of:

- a login's ``application_name`` is not an administration tool's (``ADMIN_TOOLS``, by prefix,
  case-insensitive; an empty one is a driver's default, hence an application's);
- ``REPEATED_LOGINS`` or more logins in the window (a script, a cron job, a pool);
- ``CONCURRENT_SESSIONS`` or more sessions open at once (a pool, a service's workers).

An occasional interactive session from any host passes; anything from an administration host passes.
A client can send any ``application_name``: the rule catches the applications that do not lie, the
repeated or concurrent use catches most of the others.

A login counts when it happens, not when its connection ends: an application's pool holds its
master-user sessions open for hours, and a rule that waited for their close records would see the
pool only once it went away (and judge its concurrency afterwards). The gateway announces each login
that reaches the relay (``FlowLog.login``; the flow log's file keeps its two records per connection),
the advisor's poller notices within half a second (``FlowLog.logins`` is part of its version), and
the snapshot takes the closed connections and the open ones at one moment (``FlowLog.view``), each
connection once (``snapshot.with_live``). An open session is in its source's count, in the peak
(open until now), and in the evidence by the same ID its close record will have. Nothing depends on
memory that a restart loses: what was evidence before a restart is in the flow log's close records
(the open sessions' are written when the process stops).

Evidence per application source: address, the endpoint's network interface (the flow record's
``interface-id``) and the cluster's security groups on it, ``application_name`` values, count, rate per
hour and peak concurrency; the flow record IDs (``<interface-id>/<connection-id>``), and among them the
sessions still open (``OpenSessions``); the audit event IDs of IAM database logins (``AuditEvents``: the
``rds-db`` ``connect`` event of each token's verification, which the connection's records carry); and
the SQL of the least-privilege role to create instead (never a password: the role gets one with
``\\password`` or ``GRANT rds_iam``). Password logins leave no audit event (the server checks the
password, not the gateway): their flow records are the evidence. Unconfirmed that AWS has anything
comparable.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from auroral.gateway.flows import FlowRecord
from auroral.rds.model import Cluster

from .controls import ADMIN_HOSTS_TAG, BY_ID, CONCURRENT_SESSIONS, FLOW_WINDOW_HOURS, REPEATED_LOGINS
from .snapshot import Evaluation, Snapshot, flow_ids, logins, open_session, session_key, sources, verdict

# application_name prefixes of interactive and administration tools (what they send by default)
ADMIN_TOOLS = ("psql", "pg_dump", "pg_restore", "pgadmin", "dbeaver", "datagrip", "pgcli", "azure data studio")
MAX_FLOW_IDS = 20
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def admin_hosts(c: Cluster) -> tuple[list[Network], list[str]]:
    """The cluster's administration hosts, and the tag's entries that are not CIDRs (ignored)."""
    nets: list[Network] = []
    bad: list[str] = []
    for item in c.tags.get(ADMIN_HOSTS_TAG, "").replace(",", " ").split()[:50]:
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            bad.append(item[:64])
    return nets, bad


def _in(address: str, nets: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in nets)


def admin_tool(application_name: str | None) -> bool:
    name = (application_name or "").strip().lower()
    return any(name.startswith(tool) for tool in ADMIN_TOOLS)


def _sweep(spans: list[tuple[int, int]]) -> int:
    events = sorted([(a, 1) for a, _b in spans] + [(b, -1) for _a, b in spans])
    peak = now = 0
    for _t, step in events:  # at equal times the -1 sorts first: an end before a start
        now += step
        peak = max(peak, now)
    return peak


def peak_concurrency(records: list[FlowRecord],
                     sequence: dict[tuple[int, int, int], tuple[int, int]] | None = None) -> int:
    """The most sessions open at once: by their open and close records' positions in the flow log where
    known (this run's), else by their times (whole seconds: sessions within one second count as one
    after the other)."""
    sequence = sequence or {}
    placed = [sequence[session_key(r)] for r in records if session_key(r) in sequence]
    timed = [(r.start, r.end) for r in records if session_key(r) not in sequence]
    return max(_sweep(placed), _sweep(timed))


@dataclass
class SourceUse:
    address: str
    records: list[FlowRecord] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    peak: int = 0

    def describe(self, groups: list[str]) -> str:
        interfaces = sorted({r.interface_id for r in self.records})
        apps = sorted({r.application_name or "(none)" for r in self.records})
        rate = len(self.records) / FLOW_WINDOW_HOURS
        return (f"{self.address} via {', '.join(interfaces)} [{', '.join(groups) or 'no security group'}]: "
                f"{len(self.records)} login(s) ({rate:.2f}/h), peak {self.peak} at once, "
                f"application_name {', '.join(apps)[:200]}; {'; '.join(self.reasons)}")


def application_sources(records: list[FlowRecord], nets: list[Network],
                        sequence: dict[tuple[int, int, int], tuple[int, int]] | None = None) -> list[SourceUse]:
    """The sources whose master logins follow an application's pattern (the module's rule)."""
    by_source: dict[str, SourceUse] = {}
    for rec in records:
        if _in(rec.srcaddr, nets):
            continue
        by_source.setdefault(rec.srcaddr, SourceUse(rec.srcaddr)).records.append(rec)
    out: list[SourceUse] = []
    for use in by_source.values():
        apps = sorted({r.application_name or "" for r in use.records if not admin_tool(r.application_name)})
        if apps:
            shown = ", ".join(a or "(none)" for a in apps)[:200]
            use.reasons.append(f"application_name not an administration tool: {shown}")
        if len(use.records) >= REPEATED_LOGINS:
            use.reasons.append(f"{len(use.records)} logins in {FLOW_WINDOW_HOURS} h (>= {REPEATED_LOGINS})")
        use.peak = peak_concurrency(use.records, sequence)
        if use.peak >= CONCURRENT_SESSIONS:
            use.reasons.append(f"{use.peak} sessions at once (>= {CONCURRENT_SESSIONS})")
        if use.reasons:
            out.append(use)
    out.sort(key=lambda u: (-len(u.records), u.address))
    return out


_NOT_IDENT = re.compile(r"[^a-z0-9_]+")


# PostgreSQL's reserved keywords (kwlist.h, RESERVED_KEYWORD: not a role name unquoted) and the role
# names it refuses outright (public, none)
_NOT_A_ROLE = frozenset({
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case", "cast",
    "check", "collate", "column", "constraint", "create", "current_catalog", "current_date", "current_role",
    "current_time", "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do",
    "else", "end", "except", "false", "fetch", "for", "foreign", "from", "grant", "group", "having", "in",
    "initially", "intersect", "into", "lateral", "leading", "limit", "localtime", "localtimestamp", "not",
    "null", "offset", "on", "only", "or", "order", "placing", "primary", "references", "returning",
    "select", "session_user", "some", "symmetric", "system_user", "table", "then", "to", "trailing", "true",
    "union", "unique", "user", "using", "variadic", "when", "where", "window", "with", "public", "none",
})


def role_name(application_name: str | None) -> str:
    """A plain identifier from an application's name (``orders-api`` -> ``orders_api``), else ``app``."""
    if admin_tool(application_name):
        return "app"
    name = _NOT_IDENT.sub("_", (application_name or "").lower()[:60]).strip("_")[:40]
    if not name:
        return "app"
    if not name[0].isalpha() or name in _NOT_A_ROLE or name.startswith(("pg_", "rds")):
        return f"app_{name}"  # a keyword, or a name PostgreSQL or RDS reserves for roles
    return name


def suggested_role(c: Cluster, application_name: str | None) -> str:
    """The SQL of a least-privilege login for the application (no password in it: the role gets one
    with psql's \\password, which sends a SCRAM verifier, or logs in with IAM through rds_iam)."""
    role = role_name(application_name)
    database = c.database_name or "postgres"
    db = '"' + database.replace('"', '""') + '"'
    return (f"CREATE ROLE {role} LOGIN; "
            f"GRANT CONNECT ON DATABASE {db} TO {role}; "
            f"GRANT USAGE ON SCHEMA public TO {role}; "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}; "
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}; "
            f"then \\password {role} (or GRANT rds_iam TO {role}) and connect the application as {role}")


def auroral_1(s: Snapshot) -> Iterator[Evaluation]:
    by_cluster = logins(s)
    for c in s.clusters:
        master = [r for r in by_cluster.get(c.identifier, []) if r.db_user == c.master_username]
        nets, bad = admin_hosts(c)
        apps = application_sources(master, nets, s.sequence)
        evidence = {"MasterUsername": c.master_username, "WindowHours": str(FLOW_WINDOW_HOURS),
                    "MasterLogins": str(len(master)),
                    "AdminHosts": ", ".join(str(n) for n in nets) or f"none (tag {ADMIN_HOSTS_TAG} not set)"}
        if bad:
            evidence["AdminHostsIgnored"] = ", ".join(bad)
        if master:
            evidence["Sources"] = sources(master)
        if apps:
            groups = list(c.vpc_security_group_ids)
            evidence["ApplicationSources"] = " | ".join(u.describe(groups) for u in apps[:5])
            records = [r for u in apps for r in u.records]
            evidence["FlowRecords"] = flow_ids(records[-MAX_FLOW_IDS:])
            still_open = [r for r in records if open_session(r)]
            if still_open:
                evidence["OpenSessions"] = flow_ids(still_open[-MAX_FLOW_IDS:])
            audited = [r.audit_event_id for r in records if r.audit_event_id]
            if audited:
                evidence["AuditEvents"] = ", ".join(audited[-MAX_FLOW_IDS:])
            named = [r.application_name for r in records if not admin_tool(r.application_name)]
            evidence["SuggestedRole"] = suggested_role(c, named[-1] if named else None)
            first = apps[0]
            why = (f"the master user {c.master_username!r} is used like an application's login from "
                   f"{len(apps)} source(s) not designated for administration: {first.address} "
                   f"({first.reasons[0]})")
        elif master:
            why = (f"{len(master)} master-user login(s) in {FLOW_WINDOW_HOURS} h, all from administration "
                   "hosts or occasional administration tool sessions")
        else:
            why = f"no connection logged in as the master user in {FLOW_WINDOW_HOURS} h"
        yield Evaluation(BY_ID["AURORAL.1"], s.cluster_arn(c), verdict(not apps), why, evidence,
                         {"DbClusterIdentifier": c.identifier, "MasterUsername": c.master_username})

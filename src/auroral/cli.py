"""``auroral up | env | status | down | audit | ca | flows``."""

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
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from auroral import priority
from auroral.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REGION, Settings, default_data_dir


def _settings(args: argparse.Namespace) -> Settings:
    data_dir = Path(args.data_dir) if getattr(args, "data_dir", None) else default_data_dir()
    host = getattr(args, "host", None) or os.environ.get("AURORAL_HOST") or DEFAULT_HOST
    port = getattr(args, "port", None) or int(os.environ.get("AURORAL_PORT") or DEFAULT_PORT)
    return Settings(data_dir=data_dir, host=host, port=port, region=os.environ.get("AURORAL_REGION", DEFAULT_REGION),
                    endpoint_host=os.environ.get("AURORAL_ENDPOINT_HOST", host))


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


def cmd_status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    info = _server_info(settings)
    url = str(info["endpoint_url"]) if info else settings.endpoint_url
    health = _health(url)
    if health is None:
        print(f"auroral is not running at {url}")
        return 1
    print(f"auroral {health.get('version')} is {health.get('status')} at {url}")
    print(f"  account {health.get('account')}, region {health.get('region')}")
    for name, state in dict(health.get("services") or {}).items():
        print(f"  {name:<16} {state}")
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


def cmd_audit(args: argparse.Namespace) -> int:
    from auroral.store import Store

    settings = _settings(args)
    if not settings.store_path.exists():
        print(f"no auroral data in {settings.data_dir}")
        return 1
    store = Store(settings.store_path)
    try:
        attribute = None
        if args.user:
            attribute = ("Username", args.user)
        elif args.event:
            attribute = ("EventName", args.event)
        rows = store.query_audit(attribute=attribute, limit=args.limit)
    finally:
        store.close()
    if args.json:
        for _seq, row in rows:
            print(json.dumps(row.doc))
        return 0
    print(f"{'time (UTC)':<20} {'source':<15} {'event':<32} {'principal':<28} {'ip':<15} result")
    for _seq, row in reversed(rows):
        when = dt.datetime.fromtimestamp(row.event_time, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        source = row.event_source.split(".")[0]
        ident = row.doc.get("userIdentity") or {}
        principal = str(ident.get("arn") or ident.get("type") or "-").split(":", 5)[-1]
        ip = str(row.doc.get("sourceIPAddress") or "")
        result = row.error_code or "OK"
        print(f"{when:<20} {source:<15} {row.event_name:<32} {principal[:28]:<28} {ip:<15} {result}")
    return 0


def cmd_ca(args: argparse.Namespace) -> int:
    settings = _settings(args)
    bundle = settings.data_dir / "tls" / "rds-ca-bundle.pem"
    if not bundle.exists():
        print(f"no CA yet in {settings.data_dir}: run `auroral up` first", file=sys.stderr)
        return 1
    print(bundle if args.path else bundle.read_text(), end="\n" if args.path else "")
    return 0


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
    records = records[-args.limit:]
    if args.json:
        for r in records:
            print(json.dumps(r))
        return 0
    print(f"{'time (UTC)':<20} {'action':<7} {'source':<22} {'destination':<22} {'endpoint':<32} reason")
    for r in records:
        when = dt.datetime.fromtimestamp(int(r.get("start") or 0), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        src = f"{r.get('srcaddr')}:{r.get('srcport')}"
        dst = f"{r.get('dstaddr')}:{r.get('dstport')}"
        print(f"{when:<20} {r.get('action', ''):<7} {src:<22} {dst:<22} {str(r.get('endpoint-id', ''))[:32]:<32} "
              f"{r.get('reason', '')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="auroral", description=__doc__)
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
        ("status", cmd_status, "show whether auroral is running"),
        ("down", cmd_down, "stop a running auroral"),
    ):
        p = sub.add_parser(name, help=text)
        common(p)
        p.set_defaults(func=func)
    audit = sub.add_parser("audit", help="show the audit trail (newest last)")
    common(audit)
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--user", help="only events of this user name")
    audit.add_argument("--event", help="only events with this name (e.g. CreateDBCluster)")
    audit.add_argument("--json", action="store_true", help="print CloudTrail records as JSON lines")
    audit.set_defaults(func=cmd_audit)
    ca = sub.add_parser("ca", help="print the CA bundle that signs the endpoints' certificates")
    common(ca)
    ca.add_argument("--path", action="store_true", help="print the bundle's path instead")
    ca.set_defaults(func=cmd_ca)
    flows = sub.add_parser("flows", help="show the endpoints' flow records (ACCEPT/REJECT and why)")
    common(flows)
    flows.add_argument("--limit", type=int, default=50)
    flows.add_argument("--endpoint", help="only this endpoint (a DbiResourceId)")
    flows.add_argument("--action", choices=["accept", "reject", "ACCEPT", "REJECT"])
    flows.add_argument("--json", action="store_true", help="print records as JSON lines (VPC Flow Logs v2 fields)")
    flows.set_defaults(func=cmd_flows)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())


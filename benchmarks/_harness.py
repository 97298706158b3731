"""Shared helpers for the benchmark scripts: start auroral and moto_server on free ports."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT_KEY = "AKIABENCHMARKROOT001"
ROOT_SECRET = "benchmark-root-secret-key-0123456789abcdef"
ACCOUNT = "123456789012"



# url -> the pid of the server process behind it (for CPU accounting)
PIDS: dict[str, int] = {}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + path, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def auroral(extra_env: dict[str, str] | None = None, src: Path | None = None) -> Iterator[str]:
    """A running auroral; ``src``: the checkout whose ``src/`` it runs (another version, for before/after)."""
    data = Path(tempfile.mkdtemp(prefix="auroral-bench-"))
    port = free_port()
    env = {**os.environ, "AURORAL_ROOT_ACCESS_KEY_ID": ROOT_KEY, "AURORAL_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET,
           "AURORAL_ACCOUNT_ID": ACCOUNT, **(extra_env or {})}
    if src is not None:
        env["PYTHONPATH"] = str(src.resolve() / "src")
    proc = subprocess.Popen([sys.executable, "-m", "auroral.cli", "up", "--data-dir", str(data / "d"),
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, proc, "/_auroral/health")
        PIDS[url] = proc.pid
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    exe = shutil.which("moto_server")
    if exe is None:
        raise SystemExit("moto_server not found: pip install 'moto[server]' (the bench extra)")
    proc = subprocess.Popen([exe, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, proc, "/moto-api/")
        PIDS[url] = proc.pid
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure(worker: Callable[..., None], procs: int, *args: Any) -> float:
    """Requests/s of ``procs`` processes running ``worker(*args, queue)``; each puts its count on the queue."""
    out: Any = mp.Queue()
    ps = [mp.Process(target=worker, args=(*args, out)) for _ in range(procs)]
    start = time.monotonic()
    for p in ps:
        p.start()
    total = float(sum(out.get() for _ in ps))
    for p in ps:
        p.join()
    return total / (time.monotonic() - start)

"""Shared fixtures: a real ``auroral up`` process, and clients that reach it exactly as users do.

The server runs as a subprocess on a free port with a temporary data directory and pinned root
credentials. Tests drive it with unmodified boto3 and the AWS CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    data_dir: Path
    access_key: str
    secret_key: str
    account: str
    region: str = "us-east-1"
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None

    def client(self, service: str, access_key: str | None = None, secret_key: str | None = None,
               session_token: str | None = None, **kw: Any) -> Any:
        return boto3.session.Session().client(
            service,
            endpoint_url=self.url,
            region_name=kw.pop("region_name", self.region),
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            aws_session_token=session_token,
            **kw,
        )

    def cli(self, *args: str, access_key: str | None = None, secret_key: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": access_key or self.access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key or self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }
        env.pop("AWS_SESSION_TOKEN", None)
        # awscli v1 ignores AWS_ENDPOINT_URL for `aws rds` in us-east-1 (a customization pins
        # rds.amazonaws.com), so the endpoint is always passed explicitly as well
        extra = [] if "--endpoint-url" in args else ["--endpoint-url", self.url]
        proc = subprocess.run(
            [sys.executable, "-m", "awscli", *args, *extra, "--output", "json"],
            env=env, capture_output=True, text=True, timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def cli_json(self, *args: str, **kw: Any) -> Any:
        out = self.cli(*args, **kw).stdout
        return json.loads(out) if out.strip() else {}


def wait_healthy(url: str, proc: subprocess.Popen[bytes] | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"auroral exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_auroral/health", timeout=1) as resp:
                if json.loads(resp.read()).get("status") == "ready":
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("auroral did not become ready")


def start_server(data_dir: Path, *, access_key: str, secret_key: str, account: str,
                 port: int | None = None, extra_env: dict[str, str] | None = None) -> Server:
    port = port or free_port()
    env = {
        **os.environ,
        "AURORAL_ROOT_ACCESS_KEY_ID": access_key,
        "AURORAL_ROOT_SECRET_ACCESS_KEY": secret_key,
        "AURORAL_ACCOUNT_ID": account,
        # the KMS key watch every second instead of every 5 (rds/encryption.py): a disabled or re-enabled
        # key is noticed sooner, so the tests waiting for it wait less; a test may set its own
        "AURORAL_KMS_CHECK_SECONDS": "1",
        **(extra_env or {}),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "auroral.cli", "up", "--data-dir", str(data_dir), "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    server = Server(url=url, data_dir=data_dir, access_key=access_key, secret_key=secret_key,
                    account=account, proc=proc, env=env, log_path=log_path)
    try:
        wait_healthy(url, proc)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"auroral did not start:\n{log_path.read_text()}") from None
    return server


def stop_server(server: Server) -> None:
    if server.proc is not None and server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def new_root_key() -> tuple[str, str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    key = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
    return key, secrets.token_urlsafe(30)[:40]


def server_tmpdir() -> Path:
    """A private (0700) directory for a server's data. As root, the engine keeps its files in
    ``/var/lib/auroral/<hash>`` (PostgreSQL's users cannot traverse this directory, and auroral
    changes no permission outside its own): :func:`pytest_sessionfinish` removes what is left there
    once the directory is gone."""
    return Path(tempfile.mkdtemp(prefix=TMP_PREFIX))


TMP_PREFIX = "auroral-test-"
# PostgreSQL majors fetched on first use (auroral/engine/fetch.py) go to one cache shared by every test
# server of every run on this machine (each server would otherwise fetch into its own data directory):
# the first server that needs a major fetches it, under the cache's lock, and the others wait for it.
ENGINE_CACHE = Path(tempfile.gettempdir()) / f"auroral-test-engines-{os.geteuid()}"


# Template data directories (engine/template.py, AURORAL_TEMPLATE_CACHE: a hook for tests only) built once
# per major and test session, then copied by every further server instead of running initdb and the
# bootstrap again: the first build of each major in the session still goes through TemplateStore._build.
TEMPLATE_CACHE: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    global TEMPLATE_CACHE
    os.environ.setdefault("AURORAL_ENGINE_CACHE", str(ENGINE_CACHE))
    if "AURORAL_TEMPLATE_CACHE" not in os.environ:
        TEMPLATE_CACHE = Path(tempfile.mkdtemp(prefix="auroral-templates-"))
        os.environ["AURORAL_TEMPLATE_CACHE"] = str(TEMPLATE_CACHE)


def pytest_unconfigure(config: pytest.Config) -> None:
    if TEMPLATE_CACHE is not None:
        shutil.rmtree(TEMPLATE_CACHE, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Remove the engine directories (and the clusters' OS users) of test data directories that
    no longer exist. Only test directories: ``auroral-test-*`` and pytest's own temporary paths.
    And stop the AWS driver wrapper's monitor threads if a test left them: they are not daemons and
    would keep pytest from exiting."""
    wrapper = sys.modules.get("aws_advanced_python_wrapper")
    if wrapper is not None:
        wrapper.release_resources()
    from auroral.engine import local, osuser

    base = Path(os.environ.get(local.ENV_ENGINE_BASE) or local.ENGINE_BASE)
    if os.geteuid() != 0 or not base.is_dir():
        return
    tmp = Path(tempfile.gettempdir())
    for root in base.iterdir():
        try:
            data_dir = Path((root / "data_dir").read_text().strip())
        except OSError:
            continue
        is_test = data_dir.is_relative_to(tmp) and (
            data_dir.relative_to(tmp).parts[0].startswith((TMP_PREFIX, "pytest-of-")))
        if not is_test or data_dir.exists():
            continue
        for record in root.glob("clusters/*/osuser"):
            user = osuser.lookup(record.read_text().split()[0])
            if user is not None:
                with contextlib.suppress(OSError):
                    osuser.remove_user(user)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def fresh_server(account: str) -> Iterator[Server]:
    """A server of its own (new root key, private data directory), stopped and removed afterwards."""
    key, secret = new_root_key()
    base = server_tmpdir()
    srv = start_server(base / "data", access_key=key, secret_key=secret, account=account)
    try:
        yield srv
    finally:
        stop_server(srv)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    with fresh_server("123456789012") as srv:
        yield srv


@pytest.fixture
def iam(server: Server) -> Any:
    return server.client("iam")


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class UserKeys:
    name: str
    arn: str
    access_key: str
    secret_key: str


@pytest.fixture
def make_user(server: Server) -> Any:
    """Create an IAM user with an access key; optional inline policy documents."""
    iam = server.client("iam")

    def make(*policies: dict[str, Any], name: str | None = None) -> UserKeys:
        name = name or unique("user")
        user = iam.create_user(UserName=name)["User"]
        for i, doc in enumerate(policies):
            iam.put_user_policy(UserName=name, PolicyName=f"p{i}", PolicyDocument=json.dumps(doc))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return UserKeys(name, user["Arn"], key["AccessKeyId"], key["SecretAccessKey"])

    return make

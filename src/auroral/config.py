"""Settings for one auroral process.

Defaults are embedded (SQLite store, region ``us-east-1``, one account) and may be overridden
by flags or ``AURORAL_*`` environment variables. Nothing here reads the store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

DEFAULT_PORT = 4510
DEFAULT_HOST = "127.0.0.1"
DEFAULT_REGION = "us-east-1"


def default_data_dir() -> Path:
    env = os.environ.get("AURORAL_DATA_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("auroral", appauthor=False))


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    region: str = DEFAULT_REGION
    # One address every PostgreSQL endpoint listener binds, each with a port of its own
    # (AURORAL_ENDPOINT_HOST). None: each DB instance listens on its own loopback address (the one that
    # stands for its network interface's private address) on the cluster's port (rds/addresses.py).
    endpoint_host: str | None = None

    @property
    def store_path(self) -> Path:
        return self.data_dir / "auroral.sqlite3"

    @property
    def master_key_path(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

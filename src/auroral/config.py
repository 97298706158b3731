"""Settings for one auroral process.

Defaults are embedded (SQLite store, region ``us-east-1``, one account) and may be overridden
by flags or ``AURORAL_*`` environment variables. Nothing here reads the store.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

DEFAULT_PORT = 4510
DEFAULT_HOST = "127.0.0.1"
DEFAULT_REGION = "us-east-1"
# The DNS server of the endpoint names (auroral.dns): not 53, which systemd-resolved (127.0.0.53),
# dnsmasq and the like hold, and which needs root; resolvers that forward one domain take a port.
DEFAULT_DNS_PORT = 4553
DEFAULT_HOSTS_FILE = Path("/etc/hosts")


def dns_address(value: str) -> tuple[str, int] | None:
    """``AURORAL_DNS``: ``off`` (no DNS server), ``auto`` (127.0.0.1:4553, or a free port when another
    server holds it) or ``<IPv4>:<port>`` (that address or fail to start). ``auto`` is ``(host, -1)``."""
    text = value.strip().lower()
    if text == "off":
        return None
    if text in ("", "auto"):
        return (DEFAULT_HOST, -1)
    host, sep, port = text.rpartition(":")
    try:
        ipaddress.IPv4Address(host)
        number = int(port)
    except ValueError:
        number = -1
    if not sep or not 0 <= number <= 65535:
        raise ValueError(f"AURORAL_DNS must be off, auto or <IPv4 address>:<port>, not {value[:60]!r}")
    return host, number


def hosts_file(value: str) -> Path | None:
    """``AURORAL_HOSTS_FILE``: ``off``, ``auto`` (``/etc/hosts`` when running as root, else off) or a path."""
    text = value.strip()
    if text.lower() == "off":
        return None
    if text.lower() in ("", "auto"):
        return DEFAULT_HOSTS_FILE if os.geteuid() == 0 else None
    return Path(text)


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
    # The DNS server and the hosts file block of the endpoint names (see dns_address, hosts_file).
    dns: str = field(default_factory=lambda: os.environ.get("AURORAL_DNS", "auto"))
    hosts_file: str = field(default_factory=lambda: os.environ.get("AURORAL_HOSTS_FILE", "auto"))

    @property
    def store_path(self) -> Path:
        return self.data_dir / "auroral.sqlite3"

    @property
    def master_key_path(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

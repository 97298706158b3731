"""A DNS server of a zone on a free loopback port, in an event loop of its own thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from auroral.dns.records import Zone
from auroral.dns.server import DnsServer


@dataclass
class Running:
    zone: Zone
    server: DnsServer
    loop: asyncio.AbstractEventLoop

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture
def dns_server() -> Iterator[Running]:
    zone = Zone()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="dns-test-loop", daemon=True)
    thread.start()
    server = DnsServer(zone, "127.0.0.1", 0)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield Running(zone, server, loop)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

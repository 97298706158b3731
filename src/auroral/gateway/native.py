"""The gateway's data path in C: ``ext/auroral_relay.c``, compiled at run time, driven through ctypes.

The Python gateway decides everything (verdicts, the startup phase, force_ssl, IAM logins); once a
connection is authenticated, its bytes move on the library's own thread (epoll, OpenSSL), never
waiting for the GIL. TLS connections are terminated there from the handshake on: during the startup
phase the session reads the decrypted client from one end of a socketpair, as it would read a TLS
transport; see the C file's header for the handoff that follows.

The library is compiled once with ``gcc`` against the system's OpenSSL headers (Debian:
``libssl-dev``) into ``<cache_dir>/<hash of the source>/auroral_relay.so``. Without a compiler or the
headers, :func:`load` logs why once and returns None, and the gateway relays in Python (asyncio, the
same behaviour, about half the throughput). ``AURORAL_GATEWAY_RELAY=python`` chooses the Python relay.

One relay serves the whole process (the library has one thread); sessions of any event loop register
for their connection's close, which is delivered with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import logging
import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from auroral import cbuild
from auroral.gateway import startup as pg
from auroral.gateway.tls import TlsMaterial

log = logging.getLogger(__name__)

LIBRARY = "auroral_relay"
ENV_RELAY = "AURORAL_GATEWAY_RELAY"  # "native" (the default where it builds) or "python"
NO_ALPN = pg.error_response(
    "08P01", "received direct SSL connection request without ALPN protocol negotiation extension")

_lock = threading.Lock()
_loaded: dict[Path, NativeRelay | None] = {}
_instance: NativeRelay | None = None


@dataclass(frozen=True)
class Closed:
    """A relayed connection ended: what moved after the handoff."""

    client_bytes: int
    client_reads: int
    upstream_bytes: int
    upstream_reads: int


class _Event(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("client_bytes", ctypes.c_uint64), ("client_reads", ctypes.c_uint64),
                ("upstream_bytes", ctypes.c_uint64), ("upstream_reads", ctypes.c_uint64)]


def source() -> bytes:
    return (resources.files("auroral.gateway") / "ext" / f"{LIBRARY}.c").read_bytes()


def build(cache_dir: Path) -> tuple[Path | None, str]:
    """The compiled library (built now if not cached), or None and the reason."""
    target = cache_dir / hashlib.sha256(source()).hexdigest()[:16] / f"{LIBRARY}.so"
    if target.is_file():
        return target, ""
    reason = cbuild.compile_shared(source(), f"{LIBRARY}.c", target, cflags=["-pthread"], libs=["-lssl", "-lcrypto"])
    if reason is None:
        return target, ""
    hint = " (the OpenSSL headers: apt-get install libssl-dev)" if "openssl/" in reason else ""
    return None, reason + hint


def load(cache_dir: Path) -> NativeRelay | None:
    """The process's native relay, or None (Python relay) when it is turned off or cannot be built."""
    global _instance
    choice = os.environ.get(ENV_RELAY, "native").strip().lower()
    if choice == "python":
        return None
    if choice != "native":
        raise ValueError(f"{ENV_RELAY} must be 'native' or 'python', not {choice!r}")
    with _lock:
        if _instance is not None:
            return _instance
        if cache_dir in _loaded:
            return _loaded[cache_dir]
        path, reason = build(cache_dir)
        relay: NativeRelay | None = None
        if path is None:
            log.warning("gateway: the native relay could not be built (%s); relaying in Python", reason)
        else:
            try:
                relay = NativeRelay(ctypes.CDLL(str(path)))
            except OSError as exc:
                log.warning("gateway: the native relay could not be loaded (%s); relaying in Python", exc)
        _loaded[cache_dir] = relay
        _instance = relay
        return relay


Watcher = tuple[asyncio.AbstractEventLoop, Callable[[Closed], None]]


class NativeRelay:
    """The C relay's commands; closes are delivered to the loop that registered for them."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        u64, i, sz, cp = ctypes.c_uint64, ctypes.c_int, ctypes.c_size_t, ctypes.c_char_p
        for name, args in {
            "ar_init": [cp, sz], "ar_ctx_new": [cp, sz, ctypes.POINTER(ctypes.c_char), sz, ctypes.c_char_p, sz],
            "ar_tls": [u64, i, i, i, i], "ar_plain": [u64, i, i, cp, sz, cp, sz],
            "ar_handoff": [u64, i, i, cp, sz, cp, sz], "ar_close": [u64],
            "ar_events": [ctypes.POINTER(_Event), i], "ar_buffered": [], "ar_connections": [],
        }.items():
            fn = getattr(lib, name)
            fn.argtypes = args
            fn.restype = ctypes.c_long if name in ("ar_buffered", "ar_connections") else ctypes.c_int
        self._notify = int(lib.ar_init(NO_ALPN, len(NO_ALPN)))
        if self._notify < 0:
            raise OSError("auroral_relay: ar_init failed")
        self._contexts: dict[tuple[str, int, tuple[str, ...], tuple[str, ...]], int] = {}
        self._ctx_lock = threading.Lock()
        self._watchers: dict[int, Watcher] = {}
        self._watch_lock = threading.Lock()
        threading.Thread(target=self._deliver, name="auroral-relay-events", daemon=True).start()

    # -- TLS contexts ------------------------------------------------------------------------------
    def context(self, tls: TlsMaterial, names: tuple[str, ...], ips: tuple[str, ...]) -> int:
        """The library's server context for these names (the same certificate the Python path uses)."""
        key = (str(tls.directory), tls.ca_cert.serial_number, names, ips)  # not id(tls): ids are reused
        with self._ctx_lock:
            found = self._contexts.get(key)
            if found is not None:
                return found
            cert, private = tls.server_pem(names, ips)
            err = ctypes.create_string_buffer(256)
            key_buf = (ctypes.c_char * len(private)).from_buffer(private)  # no copy of the key to leave behind
            try:
                idx = int(self._lib.ar_ctx_new(cert, len(cert), key_buf, len(private), err, len(err)))
            finally:
                del key_buf
                private[:] = bytes(len(private))
            if idx < 0:
                raise OSError(f"auroral_relay: cannot load the server certificate: {err.value.decode()}")
            self._contexts[key] = idx
            return idx

    # -- connections (each call hands the descriptors it names to the library) ----------------------
    def tls(self, conn_id: int, client_fd: int, app_fd: int, ctx: int, *, direct: bool) -> None:
        self._check(self._lib.ar_tls(conn_id, client_fd, app_fd, ctx, int(direct)))

    def plain(self, conn_id: int, client_fd: int, upstream_fd: int, to_client: bytes, to_upstream: bytes) -> None:
        self._check(self._lib.ar_plain(conn_id, client_fd, upstream_fd, to_client, len(to_client), to_upstream,
                                       len(to_upstream)))

    def handoff(self, conn_id: int, upstream_fd: int, python_fd: int, to_client: bytes, to_upstream: bytes) -> None:
        """After the startup phase of a TLS connection: ``python_fd`` is our end of its socketpair."""
        self._check(self._lib.ar_handoff(conn_id, upstream_fd, python_fd, to_client, len(to_client), to_upstream,
                                         len(to_upstream)))

    def close(self, conn_id: int) -> None:
        self._check(self._lib.ar_close(conn_id))

    def buffered(self) -> int:
        """Bytes held in the library's buffers, over all connections."""
        return int(self._lib.ar_buffered())

    def connections(self) -> int:
        return int(self._lib.ar_connections())

    @staticmethod
    def _check(rc: int) -> None:
        if rc != 0:
            raise OSError("auroral_relay: the command pipe is closed")

    # -- close notifications -----------------------------------------------------------------------
    def watch(self, conn_id: int, callback: Callable[[Closed], None]) -> None:
        with self._watch_lock:
            self._watchers[conn_id] = (asyncio.get_running_loop(), callback)

    def unwatch(self, conn_id: int) -> None:
        with self._watch_lock:
            self._watchers.pop(conn_id, None)

    def _deliver(self) -> None:
        events = (_Event * 256)()
        while True:
            select.select([self._notify], [], [])
            n = int(self._lib.ar_events(events, len(events)))
            for k in range(n):
                ev = events[k]
                with self._watch_lock:
                    watcher = self._watchers.pop(int(ev.id), None)
                if watcher is None:
                    continue
                loop, callback = watcher
                closed = Closed(int(ev.client_bytes), int(ev.client_reads), int(ev.upstream_bytes),
                                int(ev.upstream_reads))
                with contextlib.suppress(RuntimeError):  # that loop is closed
                    loop.call_soon_threadsafe(callback, closed)

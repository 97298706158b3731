"""Clients at a chosen source address, for the network tests.

libpq cannot bind a source address, so:

* :func:`probe` opens a TCP connection from ``source`` itself and sends the PostgreSQL
  ``SSLRequest``; the answer ("S"/"N") means the gateway admitted the connection; a connect that
  times out means the SYN was dropped (``timeout``: a refusal, as a security group refuses);
  silence after the handshake that the connection was accepted and is held (``held``: a refusal
  where the kernel filter is not in use), an EOF or reset that it was closed;
* :class:`Relay` listens on 127.0.0.1 and forwards every connection to the endpoint from
  ``source``, so unmodified psql/psycopg log in "from" that address (TLS stays end to end: the
  relay only copies bytes).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from typing import Any, Literal

Outcome = Literal["ok", "timeout", "held", "closed", "refused"]

SSL_REQUEST = struct.pack("!II", 8, 80877103)
# How a refused client fares: its SYN is dropped where auroral can observe the dropped SYNs (root:
# CAP_NET_RAW), else it is accepted and held silently (auroral.gateway.synfilter).
REFUSED: Outcome = "timeout" if os.geteuid() == 0 else "held"


def probe(host: str, port: int, source: str, *, timeout: float = 1.0) -> Outcome:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((source, 0))
        try:
            s.connect((host, port))
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "timeout"
        try:
            s.sendall(SSL_REQUEST)
            answer = s.recv(1)
        except TimeoutError:
            return "held"
        except (ConnectionResetError, BrokenPipeError):
            return "closed"
        if answer in (b"S", b"N"):
            return "ok"
        return "closed"


def wait_probe(host: str, port: int, source: str, want: Outcome, *, timeout: float = 10.0,
               probe_timeout: float = 0.5) -> float:
    """Probe until the outcome is ``want``; returns the seconds it took (raises after ``timeout``)."""
    start = time.monotonic()
    last: Outcome | None = None
    while time.monotonic() - start < timeout:
        last = probe(host, port, source, timeout=probe_timeout)
        if last == want:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{source} -> {host}:{port}: {last}, not {want}, after {timeout}s")


class Relay:
    """127.0.0.1:<port> → ``target`` from ``source``."""

    def __init__(self, target: tuple[str, int], source: str) -> None:
        self.target, self.source = target, source
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.socket()
            upstream.bind((self.source, 0))
            try:
                upstream.connect(self.target)
            except OSError:
                client.close()
                upstream.close()
                continue
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def vpc_with_app_and_db_groups(ec2: Any, prefix: str) -> tuple[str, list[str], str, str]:
    """A VPC ``<prefix>.0.0/16`` with subnets ``<prefix>.1.0/24`` (us-east-1a) and ``<prefix>.2.0/24``
    (us-east-1b), and two empty security groups in it: ``app`` and ``db``. Returns
    ``(vpc_id, subnet_ids, app_group_id, db_group_id)``."""
    vpc = ec2.create_vpc(CidrBlock=f"{prefix}.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"{prefix}.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
               ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    app_sg = ec2.create_security_group(GroupName="app", Description="application", VpcId=vpc)["GroupId"]
    db_sg = ec2.create_security_group(GroupName="db", Description="database", VpcId=vpc)["GroupId"]
    return vpc, subnets, app_sg, db_sg

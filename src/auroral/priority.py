"""Scheduling priority: auroral's own threads ahead of the PostgreSQL servers they front.

The gateway has one event-loop thread (every connection's accept-time decision, startup and
authentication; the API) and one relay thread (every connection's bytes). Each is a point all clients
wait on, where a PostgreSQL backend serves one client: when a backend or a client program preempts the
relay, every connection stalls. On this project's 2-core machines (``benchmarks/gateway.py
--priority``: auroral against auroral at niceness 0, the same run) it was 15 to 25% more ``pgbench -S``
transactions and 5 to 10% more IAM-token logins per second (a PgBouncer at -10 gains about as much).

So ``auroral up`` lowers the niceness of its main thread to ``AURORAL_NICE`` (default -10; ``0`` leaves
it alone) before it starts anything: threads inherit the niceness of the thread that starts them, so the
relay thread gets it too. It needs root or ``CAP_SYS_NICE``; without, auroral runs on as it was started
(and says so at INFO). Every child process (PostgreSQL servers, ``initdb``, ``pg_ctl``) starts back at
the niceness auroral was started with: :func:`reset_in_child`, which :class:`~auroral.engine.osuser.RunAs`
puts into every spawn of a PostgreSQL program.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

ENV = "AURORAL_NICE"
DEFAULT = -10

log = logging.getLogger(__name__)
_started_at: int | None = None  # the niceness before apply() changed it; None while unchanged


def configured(environ: Mapping[str, str]) -> int:
    """The niceness asked for; ValueError with a message for a bad value."""
    text = environ.get(ENV, "").strip()
    if not text:
        return DEFAULT
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{ENV} must be an integer from -20 to 0, not {text!r}") from None
    if not -20 <= value <= 0:
        raise ValueError(f"{ENV} must be an integer from -20 to 0, not {value}")
    return value


def apply(nice: int) -> int:
    """Set the calling thread's niceness to ``nice`` (only ever lower than it is); the niceness in effect."""
    global _started_at
    current = os.getpriority(os.PRIO_PROCESS, 0)  # on Linux: the calling thread
    if nice >= current:
        return current
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except PermissionError:
        log.info("running at niceness %d: raising the gateway's priority to %d needs root or CAP_SYS_NICE "
                 "(%s=0 silences this)", current, nice, ENV)
        return current
    if _started_at is None:
        _started_at = current
    log.debug("auroral's threads run at niceness %d (children at %d)", nice, current)
    return nice


def raised() -> bool:
    return _started_at is not None


def reset_in_child() -> None:
    """In a child between fork and exec: back to the niceness auroral was started with. Raising a
    niceness needs no privilege, so this also works after the switch to the service user."""
    if _started_at is not None and os.getpriority(os.PRIO_PROCESS, 0) < _started_at:
        os.setpriority(os.PRIO_PROCESS, 0, _started_at)

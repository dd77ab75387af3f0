# SPDX-License-Identifier: BSD-3-Clause
"""DaCHS's database connection pools, made to survive a PostgreSQL restart.

DaCHS 2.7 (``gavo.base.sqlsupport._makeConnectionManager``) keeps one pool per
connection profile in a list, creates it lazily *outside* its lock and, after a
connection error without an SQLSTATE (the server went away), marks every pool
stale and replaces a stale one with ``pool[0].closeall(); pool.pop()``.  Two
requests arriving together at start-up can both create a pool, so the list holds
two; ``pop()`` then removes the *second*, and the first, already closed, stays
in front: from then on every request of that process fails with "connection
pool is closed" (HTTP 500) until the server is restarted.  Measured on the demo
with four DaCHS processes: after ``pg_ctl restart -m fast`` of an idle server,
one process answered every TAP, SCS and SIA request with a 500, for good.
Besides, the first request on each pooled connection that the restart killed
failed as well.

:func:`install` replaces DaCHS's six connection managers (``getTableConn``,
``getUntrustedConn``, ``getAdminConn`` and their ``Writable`` variants) by
managers that hold one pool under a lock, replace it whole when it is stale or
closed, return each connection to the pool it came from, and test a pooled
connection before handing it out: a connection whose socket is readable while
no query runs has been closed by the server (PostgreSQL sends its FATAL
"terminating connection" message and hangs up), so it is discarded and every
pool is renewed, before any request uses it.  The test is a zero-timeout
``select`` — no round trip to the server.  While the database is down, requests
still fail (there is nothing to answer from); the first request after it is back
succeeds, without any manual step.
"""

from __future__ import annotations

import contextlib
import select
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["MANAGERS", "connection_manager", "install", "is_alive"]

#: DaCHS's connection managers: name → (profile, autocommitted), as sqlsupport makes them.
MANAGERS: dict[str, tuple[str, bool]] = {
    "getUntrustedConn": ("untrustedquery", True),
    "getTableConn": ("trustedquery", True),
    "getAdminConn": ("admin", True),
    "getWritableUntrustedConn": ("untrustedquery", False),
    "getWritableTableConn": ("trustedquery", False),
    "getWritableAdminConn": ("admin", False),
}

#: Connections taken and found dead before one request gives up (a pool holds
#: at most ``minconn`` idle connections; all of them die together).
_ATTEMPTS = 4


def is_alive(conn: Any) -> bool:
    """False if ``conn`` is closed or the server has hung up on it.

    An idle connection has nothing to read; one the server terminated has its
    FATAL message or the end of the stream waiting on the socket.
    """
    if conn.closed:
        return False
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def connection_manager(profile: str, autocommitted: bool = True, min_conn: int = 2,
                       max_conn: int = 20) -> Callable[[], contextlib.AbstractContextManager]:
    """A context manager factory like DaCHS's, yielding live connections of ``profile``."""
    from gavo.base import sqlsupport

    lock = threading.Lock()
    current: list[Any] = [None]

    def live_pool() -> Any:
        with lock:
            pool = current[0]
            if pool is None or pool.stale or pool.closed:
                if pool is not None and not pool.closed and not pool._used:
                    with contextlib.suppress(Exception):
                        pool.closeall()
                pool = current[0] = sqlsupport.CustomConnectionPool(
                    min_conn, max_conn, profile, autocommitted)
            return pool

    def give_back(pool: Any, conn: Any, close: bool) -> None:
        try:
            pool.putconn(conn, close=close or conn.closed or pool.stale)
        except Exception:  # a closed or replaced pool: the connection is ours to close
            with contextlib.suppress(Exception):
                conn.close()

    def take() -> tuple[Any, Any]:
        for _ in range(_ATTEMPTS):
            pool = live_pool()
            conn = pool.getconn()
            if is_alive(conn):
                return pool, conn
            give_back(pool, conn, True)
            sqlsupport.CustomConnectionPool.serverRestarted()
        return pool, conn  # still dead: the query reports the database's error

    @contextlib.contextmanager
    def manager() -> Iterator[Any]:
        pool, conn = take()
        try:
            yield conn
        except Exception as ex:
            if (isinstance(ex, sqlsupport.OperationalError) and ex.pgcode is None) \
                    or conn.closed:
                sqlsupport.CustomConnectionPool.serverRestarted()
            give_back(pool, conn, True)
            raise
        if not autocommitted:
            try:
                conn.commit()
            except Exception:
                give_back(pool, conn, True)
                raise
        give_back(pool, conn, False)

    return manager


def install() -> None:
    """Replace DaCHS's connection managers wherever DaCHS exports them (idempotent)."""
    import sys

    from gavo.base import sqlsupport

    if getattr(sqlsupport.getTableConn, "casuvo_reconnects", False):
        return
    homes = [sqlsupport, sys.modules.get("gavo.base"), sys.modules.get("gavo.api")]
    for name, (profile, autocommitted) in MANAGERS.items():
        manager = connection_manager(profile, autocommitted)
        manager.casuvo_reconnects = True  # type: ignore[attr-defined]
        for module in homes:
            if module is not None and hasattr(module, name):
                setattr(module, name, manager)

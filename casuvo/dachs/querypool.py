# SPDX-License-Identifier: BSD-3-Clause
"""Reused database connections for TAP sync queries, applied at server start.

DaCHS 2.7 opens a new connection (profile ``untrustedquery``) for every
ADQL query and closes it when the result is written.  PostgreSQL then forks
a backend, authenticates it, and the backend loads its catalogue caches
(pgSphere's types, operators and functions, the table's indexes) for the
first query: measured on the demo stack, 8.5 ms to connect and 13.5 ms for
a 5″ cone on a fresh backend against under 1 ms on a used one (median of 40,
same run).  Under load that start-up is most of a small query's database time.

:func:`lease` marks the current thread's next ``untrustedquery`` connection
as one to take from (and give back to) a small per-process pool; the sync
TAP path without a job (:mod:`casuvo.dachs.synctap`) takes its query
connection so, through DaCHS's own ``taprunner.getQTableFromJob``, so every
wrapper of that function still sees the connection it works with.  Other
callers (async runners, uploads, the ADQL form, ``plan``) get DaCHS's
fresh connections as before.

A connection goes back to the pool when DaCHS closes it (the result table
closes it after its rows are written, having reset the parameters it set):
it is rolled back, every session setting is reset (``RESET ALL``, so nothing
one request set — a statement timeout, an access-control setting — reaches
the next) and committed; one that fails any of this, that the server hung up
on (:func:`casuvo.dachs.dbreconnect.is_alive`, after a database restart), or
that has been idle longer than :data:`MAX_IDLE_S` is closed instead.  Its
backend keeps the lower CPU priority :mod:`casuvo.dachs.timeouts` gave it.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

__all__ = ["MAX_IDLE", "MAX_IDLE_S", "PROFILE", "install", "installed", "lease", "stats"]

#: the connection profile DaCHS runs ADQL queries with
PROFILE = "untrustedquery"
#: idle connections a process keeps (each holds a PostgreSQL backend)
MAX_IDLE = 4
#: seconds an idle connection is kept before it is closed
MAX_IDLE_S = 60.0

_installed = False
_lock = threading.Lock()
_idle: list[tuple[float, Any]] = []
_thread = threading.local()
_counts = {"made": 0, "reused": 0, "closed": 0}


def installed() -> bool:
    """True once :func:`install` has run in this process."""
    return _installed


def stats() -> dict[str, int]:
    """Connections made, reused and closed by the pool in this process."""
    with _lock:
        return {**_counts, "idle": len(_idle)}


@contextlib.contextmanager
def lease() -> Iterator[None]:
    """Within the block, this thread's next ``untrustedquery`` connection is pooled."""
    _thread.leased = True
    try:
        yield
    finally:
        _thread.leased = False


def _really_close(conn: Any) -> None:
    with contextlib.suppress(Exception):
        type(conn).close(conn)
    with _lock:
        _counts["closed"] += 1


def _give_back(conn: Any) -> None:
    """``conn.close()`` of a pooled connection: clean it and keep it, or close it."""
    import psycopg2

    from casuvo.dachs.dbreconnect import is_alive

    if conn.closed:
        return
    try:
        conn.rollback()
        with conn.cursor() as cursor:
            cursor.execute("RESET ALL")
            cursor.execute("SET client_encoding TO 'UTF8'")  # as DaCHS's connect does
        conn.commit()
    except psycopg2.Error:
        _really_close(conn)
        return
    if not is_alive(conn):
        _really_close(conn)
        return
    with _lock:
        if len(_idle) < MAX_IDLE:
            _idle.append((time.monotonic(), conn))
            return
    _really_close(conn)


def _take(connect: Any, profile: Any, *args: Any, **kwargs: Any) -> Any:
    """A live pooled connection, or a new one that will go back to the pool."""
    from casuvo.dachs.dbreconnect import is_alive

    now = time.monotonic()
    while True:
        with _lock:
            if not _idle:
                break
            since, conn = _idle.pop()
        if now - since <= MAX_IDLE_S and is_alive(conn):
            with _lock:
                _counts["reused"] += 1
            return conn
        _really_close(conn)
    conn = connect(profile, *args, **kwargs)
    # a weak reference: a connection dropped without close() is freed (and so
    # closed) at once, as DaCHS's own are, not kept by a reference cycle
    ref = weakref.ref(conn)

    def close() -> None:
        live = ref()
        if live is not None:
            _give_back(live)

    conn.close = close
    with _lock:
        _counts["made"] += 1
    return conn


def install() -> None:
    """Let :func:`lease` route ``base.getDBConnection`` to the pool (idempotent)."""
    global _installed
    if _installed:
        return
    from gavo import base

    connect = base.getDBConnection

    def get_db_connection(profile: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_thread, "leased", False) and profile == PROFILE:
            _thread.leased = False  # one connection per lease: the query's
            return _take(connect, profile, *args, **kwargs)
        return connect(profile, *args, **kwargs)

    get_db_connection.__wrapped__ = connect  # type: ignore[attr-defined]
    base.getDBConnection = get_db_connection
    _installed = True

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

A restart also strands *synchronous TAP jobs*: DaCHS runs each sync query as a
transient UWS job (phase EXECUTING, pid −1) and destroys it when the request
ends; a request that the restart breaks cannot destroy it (the database is
away), and the row stays EXECUTING until its destruction time, two days later.
Such rows count towards ``maxTAPRunning``, so four of them stop the async queue:
every async job stays QUEUED.  :func:`install` makes a failed
``destroy`` retry in the background until the database is back (the process
that made the job cleans it up), and makes the queue's count of running jobs
first remove transient jobs that are EXECUTING long after their execution time
ended (the job of a process that died with it).
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["MANAGERS", "TAKE_HOOKS", "connection_manager", "install", "is_alive",
           "remove_stranded_sync_jobs"]

log = logging.getLogger(__name__)

#: How long a failed job destruction is retried (the database restarting).
DESTROY_RETRY_SECONDS = 600.0
#: Beyond its execution duration, how long a transient job may stay EXECUTING.
STRANDED_AFTER_SECONDS = 60.0

#: DaCHS's connection managers: name → (profile, autocommitted), as sqlsupport makes them.
MANAGERS: dict[str, tuple[str, bool]] = {
    "getUntrustedConn": ("untrustedquery", True),
    "getTableConn": ("trustedquery", True),
    "getAdminConn": ("admin", True),
    "getWritableUntrustedConn": ("untrustedquery", False),
    "getWritableTableConn": ("trustedquery", False),
    "getWritableAdminConn": ("admin", False),
}

#: Called with (connection, autocommitted) on every connection handed out, after
#: the liveness test (:mod:`casuvo.dachs.access` tells the database whom the
#: request acts for).
TAKE_HOOKS: list[Callable[[Any, bool], None]] = []

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
            for hook in TAKE_HOOKS:
                hook(conn, autocommitted)
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


def remove_stranded_sync_jobs(uws: Any) -> list[str]:
    """Destroy the transient (pid −1) jobs of ``uws`` still EXECUTING
    :data:`STRANDED_AFTER_SECONDS` after their execution duration ended; their ids."""
    from gavo import base

    table = uws.jobClass.jobsTD.getQName()
    with base.getTableConn() as conn:
        stranded = [job for (job,) in conn.query(
            f"SELECT jobId FROM {table} WHERE phase = 'EXECUTING' AND pid = -1"
            " AND coalesce(startTime, creationTime) + make_interval(secs =>"
            " coalesce(executionDuration, 0) + %(grace)s) < (now() AT TIME ZONE 'UTC')",
            {"grace": STRANDED_AFTER_SECONDS})]
    for job in stranded:
        log.warning("removing sync job %s, stranded by a database outage", job)
        uws.destroy(job)
    return stranded


def _install_job_cleanup() -> None:
    """Retry failed job destruction; sweep stranded sync jobs before counting running ones."""
    from gavo.protocols import uws

    destroy, count_running = uws.UWS.destroy, uws.UWS.countRunningJobs

    def retry_destroy(system: Any, job_id: str) -> None:
        deadline = time.monotonic() + DESTROY_RETRY_SECONDS
        while time.monotonic() < deadline:
            time.sleep(1.0)
            try:
                destroy(system, job_id)
                return
            except Exception:  # the database is still away: try again
                continue

    def destroy_or_retry(self: Any, job_id: str) -> None:
        try:
            destroy(self, job_id)
        except Exception:
            threading.Thread(target=retry_destroy, args=(self, job_id), daemon=True,
                             name=f"destroy {job_id}").start()
            raise

    def count_running_jobs(self: Any) -> int:
        with contextlib.suppress(Exception):
            remove_stranded_sync_jobs(self)
        return count_running(self)

    uws.UWS.destroy = destroy_or_retry
    uws.UWS.countRunningJobs = count_running_jobs


def install() -> None:
    """Replace DaCHS's connection managers wherever DaCHS exports them, and clean up
    the sync jobs a database outage strands (idempotent)."""
    import sys

    from gavo.base import sqlsupport

    if getattr(sqlsupport.getTableConn, "casuvo_reconnects", False):
        return
    _install_job_cleanup()
    homes = [sqlsupport, sys.modules.get("gavo.base"), sys.modules.get("gavo.api")]
    for name, (profile, autocommitted) in MANAGERS.items():
        manager = connection_manager(profile, autocommitted)
        manager.casuvo_reconnects = True  # type: ignore[attr-defined]
        for module in homes:
            if module is not None and hasattr(module, name):
                setattr(module, name, manager)

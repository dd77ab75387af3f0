# SPDX-License-Identifier: BSD-3-Clause
"""Caps on how long the database works for one request, beyond DaCHS's defaults.

What DaCHS 2.7 already does, and casuvo keeps: every ADQL query (TAP sync, TAP
async, the ADQL form) runs with PostgreSQL's ``statement_timeout`` set to its
time budget (``adqlglue.runTAPQuery``): ``[async]defaultExecTimeSync`` for
sync, the job's ``executionDuration`` for async; the DAL services' database
cores (SCS, SIA, DataLink look-ups, forms) set it to ``[web]sqlTimeout``.
PostgreSQL cancels the statement there, planning included, and DaCHS answers
"Query timed out" (a usage error: HTTP 400, or the async job in ERROR).  The
values are :data:`casuvo.dachs.limits.TIMEOUTS`, written into
``services/gavo.rc.template``.

What DaCHS leaves open, and :func:`install` closes:

- a client chooses an async job's EXECUTIONDURATION, and so its statement
  timeout, without bound: ``runTAPQuery`` gets at most ``async_max_s``;
- a client's ``_TIMEOUT`` parameter replaces ``sqlTimeout`` for the database
  cores without bound: it is capped at ``web_max_s``;
- PostgreSQL may give one ADQL query parallel workers (up to three busy
  backends per query on this two-core machine): ADQL queries run with
  ``max_parallel_workers_per_gather`` = ``ADQL_PARALLEL_WORKERS``, so that a
  query occupies at most that many cores of the database beyond its own;
- the database backend of an ADQL query runs at niceness
  ``ADQL_BACKEND_NICENESS`` (when the database is on this machine and the
  server may renice it: as root, or as the database's user), so that a long
  query yields the CPU to cone searches, health requests and the servers;
- deleting an executing async job (``DELETE``, ``ACTION=DELETE``) only
  removes the job: its ``taprun`` and database query run on to the timeout.
  The job is now aborted first (``PHASE=ABORT``'s path: SIGINT to the
  runner, which cancels its query); and since the runner finds the job row
  gone by then, and DaCHS gives up *before* the cancel in that case, the
  runner now cancels the query in any case;
- a TAP query refused before it reached the database (bad ADQL, a limit)
  left its private connection open and "idle in transaction" until garbage
  collection: it is closed at once.

TAP async jobs run as ``gavo taprun`` child processes, which start through
:mod:`casuvo.dachs.server` as well: the caps hold there too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from casuvo.dachs.limits import TIMEOUTS, Timeouts

__all__ = ["ADQL_BACKEND_NICENESS", "ADQL_PARALLEL_WORKERS", "capped", "install",
           "lower_backend_priority"]

#: PostgreSQL parallel workers an ADQL query may use besides its own backend
ADQL_PARALLEL_WORKERS = 0
#: niceness of the database backend running an ADQL query
ADQL_BACKEND_NICENESS = 10
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def lower_backend_priority(connection: Any, niceness: int = ADQL_BACKEND_NICENESS) -> bool:
    """Renice the PostgreSQL backend of ``connection`` if it runs on this machine.

    Returns whether it did.  Only a local backend (Unix socket or loopback)
    whose process is a ``postgres`` one is touched; when the server may not
    renice it (another user, no privilege) nothing happens: the statement
    timeout still bounds the query.
    """
    host = getattr(getattr(connection, "info", None), "host", None) or ""
    if not (host.startswith("/") or host in _LOCAL_HOSTS):
        return False
    try:
        pid = int(connection.get_backend_pid())
        if not Path(f"/proc/{pid}/comm").read_text().startswith("postgres"):
            return False
        if os.getpriority(os.PRIO_PROCESS, pid) < niceness:
            os.setpriority(os.PRIO_PROCESS, pid, niceness)
    except (OSError, ValueError, AttributeError):
        return False
    return True

_installed = False


def capped(requested: float | None, cap: float) -> float:
    """``requested`` seconds, at most ``cap``; a missing or non-positive value is ``cap``."""
    if requested is None or not requested > 0:
        return cap
    return min(float(requested), cap)


def install(limits: Timeouts = TIMEOUTS) -> None:
    """Cap ADQL and database-core statement timeouts; idempotent."""
    global _installed
    if _installed:
        return
    from gavo import base
    from gavo.protocols import adqlglue, taprunner, uws
    from gavo.svcs import common

    run_tap_query = adqlglue.runTAPQuery

    def capped_tap_query(query: Any, timeout: float, connection: Any, tds_for_uploads: Any,
                         maxrec: Any, autoClose: bool = True) -> Any:  # noqa: N803
        try:
            connection.execute(
                f"SET max_parallel_workers_per_gather = {int(ADQL_PARALLEL_WORKERS)}")
            lower_backend_priority(connection)
            return run_tap_query(query, capped(timeout, limits.async_max_s), connection,
                                 tds_for_uploads, maxrec, autoClose)
        except Exception:
            if autoClose:  # the connection is this query's own: nobody else closes it
                connection.close()
            raise

    capped_tap_query.__wrapped__ = run_tap_query  # type: ignore[attr-defined]
    adqlglue.runTAPQuery = capped_tap_query

    fill_db_options = common.QueryMeta._fillDbOptions

    def capped_db_options(self: Any, args: Any) -> None:
        fill_db_options(self, args)
        self["timeout"] = capped(self.get("timeout"), limits.web_max_s)

    common.QueryMeta._fillDbOptions = capped_db_options

    kill_worker = taprunner._killWorker

    def kill_worker_always(job_id: str) -> None:
        try:
            kill_worker(job_id)
        except uws.JobNotFound:
            pid = taprunner._WORKER_PID
            if pid:
                base.ui.notifyInfo(f"Cancelling the query of deleted job {job_id}, wpid {pid}")
                with base.getUntrustedConn() as conn:
                    conn.execute(f"SELECT pg_cancel_backend({int(pid)})")
            raise

    taprunner._killWorker = kill_worker_always

    destroy = uws.UWS.destroy

    def destroy_aborting(self: Any, job_id: str) -> None:
        try:
            job = self.getJob(job_id)
            if job.phase == uws.EXECUTING and (job.pid or 0) > 1:
                self.changeToPhase(job_id, uws.ABORTED)
        except Exception as exc:  # the job is destroyed anyway
            base.ui.notifyWarning(f"Could not abort job {job_id} before deleting it: {exc}")
        destroy(self, job_id)

    uws.UWS.destroy = destroy_aborting
    _installed = True

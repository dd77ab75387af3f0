# SPDX-License-Identifier: BSD-3-Clause
"""Run the ``dachs`` command line with casuvo's server adjustments installed.

``python -m casuvo.dachs.server serve start`` is ``dachs serve start`` with
casuvo's error, ADQL and DataLink adjustments installed first; DaCHS
daemonises by forking, so the adjustments live on in the server process.  Any other ``dachs``
subcommand passes straight through.

Several server processes on one database
----------------------------------------
``casuvo up`` may run several DaCHS processes behind one haproxy front
(:mod:`casuvo.dachs.front`).  What DaCHS 2.7 keeps where, and so what that split
has to respect:

- *UWS jobs* (TAP async): the job rows (phase, parameters, pid of the runner)
  are in the database (``tap_schema.tapjobs``, read and changed under row
  locks, ``uws.UWS.changeableJob``), the work directories (uploads, results)
  in ``[general]uwsWD`` under the shared DaCHS root; a job's runner is a
  ``gavo taprun`` child process of the server that moved the job to EXECUTING,
  and that server is the one that notices when the child ends
  (``_UWSBackendProtocol.processEnded``).  The queue (``maxTAPRunning``) is
  counted in the database, but each process decides alone, under an
  in-process lock only, which QUEUED jobs it starts, and every process runs a
  60-s queue check (``UWSWithQueueing``).  Two processes working one queue
  could both try to start the same job.  So all UWS routes (``…/async``,
  ``…/dlasync``, ``…/uws.xml``) go to one process, the *primary*: it creates,
  starts, aborts and deletes every job and reaps every runner.  A job is still
  readable through any process (the state is in the database and the shared
  work directory), so nothing breaks if a poll reaches another one.
- *Secondaries* (``--secondary``) drop DaCHS's periodic jobs (the UWS queue
  check and clean-up, RD ``<execute every=…>`` jobs) as ``dachs serve debug``
  does, so maintenance runs once, on the primary.
- *Sync uploads* live in the request's own database transaction (a temporary
  table) and *async uploads* in the job's work directory: no state outside the
  request or the job.
- *Sessions and credentials*: DaCHS has no server-side sessions; HTTP basic
  authentication is checked against the database (``dc.users``) per request.
- *serverURL* is the public URL in every process's ``gavo.rc`` (only
  ``serverPort`` and ``logDir`` differ), so job URLs, DataLink and
  capabilities point at the front.
- *pid files and logs*: ``serve start --foreground`` writes no pid file
  (``var/dachs/state/web.pid`` is the single-process server's); the front
  records pids and ports in ``var/front/processes.json``; each process logs
  into ``var/dachs/logs/server-<i>/``.
- *Caches*: RDs, table metadata and the ADQL parser are in-memory per process
  (``preloadPublishedRDs`` loads them at start); ``casuvo up`` restarts every
  process after an edit, so they never disagree.  ``dachs serve expireRDs``
  reaches only one process: restart instead.
"""

from __future__ import annotations

import os
import sys


def _drop_periodic_jobs() -> None:
    """Suppress DaCHS's periodic jobs in this process (a secondary behind the front).

    The same rule ``dachs serve debug`` uses: jobs run at a fixed time or every
    minute or less often are maintenance (UWS queue check and clean-up, RD
    ``execute`` jobs), which the primary does once for all processes.
    """
    from gavo.base import cron

    def is_censored(job: object) -> bool:
        return isinstance(job, cron.TimedJob) or abs(getattr(job, "interval", 0)) >= 60

    cron.isCensored = is_censored


#: niceness of an async TAP job's runner: the server processes keep the CPU first
TAPRUN_NICENESS = 10


def _lower_priority() -> None:
    """Run this process (an async TAP job's ``taprun``, a user UWS job's ``uwsrun``) at lower
    CPU priority.

    The runner is a child of the primary server process, which also answers
    the health, VOSI and page requests; a job writing a large result must not
    take the CPU from them.
    """
    os.nice(TAPRUN_NICENESS)


def main(argv: list[str] | None = None) -> None:
    from gavo.user import cli

    from casuvo.dachs import (
        access,
        adqlcache,
        adqlchecks,
        adqlguard,
        bulkcutouts,
        datalinks,
        dbreconnect,
        errors,
        htmlerrors,
        httpguard,
        inputs,
        mediatypes,
        nodelay,
        overflow,
        querypool,
        strictnum,
        synctap,
        timeouts,
        uwsparams,
        votcodec,
    )

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--secondary"]:
        args = args[1:]
        _drop_periodic_jobs()
    if "taprun" in args or "uwsrun" in args:
        _lower_priority()
    errors.install()
    adqlcache.install()  # inside the guard: limits are checked on every query
    adqlguard.install()
    timeouts.install()
    adqlchecks.install()
    datalinks.install()
    mediatypes.install()
    overflow.install()
    dbreconnect.install()
    access.install()  # after dbreconnect: its connection managers call the hook
    inputs.install()
    htmlerrors.install()
    httpguard.install()
    strictnum.install()
    uwsparams.install()
    nodelay.install()
    querypool.install()
    synctap.install()
    votcodec.install()
    bulkcutouts.install()
    if args[:1] == ["serve"]:
        datalinks.install_response_ucd()
    sys.argv = ["dachs", *args]
    cli.main()


if __name__ == "__main__":
    main()

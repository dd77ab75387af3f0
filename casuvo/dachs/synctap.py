# SPDX-License-Identifier: BSD-3-Clause
"""TAP sync queries run without a UWS job in the database, applied at server start.

DaCHS 2.7 runs every sync TAP query as a transient UWS job
(``TAPCore.run`` → ``taprunner.runSyncTAPJob``): it creates a job row and a
work directory, moves the job to EXECUTING, records its start, writes the
result into the work directory, moves the job to COMPLETED or ERROR, reads
the job back and destroys row and directory.  That is about thirty
statements on the jobs table (each job change takes the row lock under its
own ``statement_timeout``, which DaCHS reads with ``SHOW`` and sets back)
around a cone query that itself needs three.  py-spy on a work process
answering 5″ cones (one client): the job machinery held ~40 % of the
request's samples; under 8 concurrent clients every one of those round
trips also waits for the GIL again, and a DaCHS process stayed at 65 % of
a core while its clients queued.

:func:`install` gives ``TAPCore.run`` a path without the job: the same
parameter checks (``taprunner._parseTAPParameters`` through
``taprunner.getQTableFromJob``, which is also where the query connection is
made), the same result writer (``taprunner.writeResultTo``, casuvo's
exact-overflow one), the result in an anonymous temporary file in DaCHS's
``tempDir``, and the same failure: any exception becomes
``base.Error(message, hint=…)`` as DaCHS makes it from the job's error
record, logged as DaCHS's ``flagError`` logs it.  The DaCHS functions are
looked up on their modules at call time, so adjustments that wrap them
(timeouts, overflow, access rules) apply unchanged.  The query connection
comes from :mod:`casuvo.dachs.querypool` (reused, reset between requests).

Kept on DaCHS's own path: requests with uploads (the upload files live in
the job's work directory) and DaCHS's test instrumentation queries
(:data:`DACHS_MAGIC_QUERIES`).  What changes is only what was never a
contract: a sync query no longer shows up for a moment as an EXECUTING job
with pid -1 in the jobs table (nor counts against ``maxTAPRunning`` while
it runs).
"""

from __future__ import annotations

import contextlib
import tempfile
from typing import Any

__all__ = ["DACHS_MAGIC_QUERIES", "install", "installed", "takes_fast_path"]

#: queries DaCHS's taprunner treats as test instrumentation (``_hangIfMagic``):
#: they need a real job, so they keep DaCHS's path
DACHS_MAGIC_QUERIES = frozenset({"JUST HANG around", "MESSILY CRASH"})

_installed = False


def installed() -> bool:
    """True once :func:`install` has run in this process."""
    return _installed


def takes_fast_path(parameters: dict[str, Any]) -> bool:
    """Whether a sync query with these (lower-case) parameters runs without a job."""
    return not parameters.get("upload") and parameters.get("query") not in DACHS_MAGIC_QUERIES


def _job_parameters(param_dict: dict[str, Any]) -> dict[str, Any]:
    """The parameters as a job would hold them (``UWSJob.setParamsFromDict``:
    names lower-cased, a None not overwriting a value)."""
    out: dict[str, Any] = {}
    for key, value in param_dict.items():
        name = key.lower()
        if value is None and out.get(name):
            continue
        out[name] = value
    return out


class _TransientJob:
    """What ``taprunner.getQTableFromJob`` and its wrappers read of a job: its id
    (for messages), its parameters and its owner (None: DaCHS's sync jobs have
    none; the request's user is the request's, not the job's).

    Uploads, the only reason DaCHS opens the job's files, never take this path.
    """

    def __init__(self, job_id: str, parameters: dict[str, Any]) -> None:
        self.jobId = job_id
        self.parameters = parameters
        self.owner = None

    def openFile(self, name: str, mode: str = "r") -> Any:  # noqa: N802 -- DaCHS's name
        raise RuntimeError(f"a sync query without a job has no file {name!r}")


def _run_without_job(parameters: dict[str, Any]) -> tuple[Any, str]:
    """Run the query and write its result: ``(open result file, media type)``.

    Mirrors ``taprunner.runSyncTAPJob`` → ``runTAPJob`` → ``runTAPJobNoState``
    and ``TAPCore.run`` without the job rows.
    """
    from gavo import base, formats, svcs, utils
    from gavo.protocols import taprunner

    from casuvo.dachs import querypool

    timeout = base.getConfig("async", "defaultExecTimeSync")
    default_format = "votable"
    if base.getConfig("ivoa", "votDefaultEncoding") == "td":
        default_format = "votable/td"
    job = _TransientJob(utils.getRandomString(10), parameters)
    table = None
    try:
        raw_format = (parameters.get("responseformat") or parameters.get("format")
                      or default_format)
        result_format = formats.getKeyFor(raw_format)
        with querypool.lease():
            table = taprunner.getQTableFromJob(parameters, job, querypool.PROFILE, timeout)
        res = taprunner._makeDataFor(table)
        # handed to DaCHS's renderer, which streams and closes it
        result = tempfile.TemporaryFile(dir=base.getConfig("tempDir"))  # noqa: SIM115
        try:
            try:
                taprunner.writeResultTo(result_format, res, result)
            except Exception as exc:
                # DB errors can occur here since the rows stream from the database
                svcs.mapDBErrors(type(exc), exc, exc.__traceback__)
            result.seek(0)
        except BaseException:
            result.close()
            raise
        return result, formats.getMIMEFor(result_format, raw_format)
    except Exception as ex:
        if table is not None:
            # a query that fails at its start (DECLARE) skips QueryTable's own
            # clean-up: the connection goes back (rolled back) or closes now,
            # not when the garbage collector finds it
            with contextlib.suppress(Exception):
                table.cleanup()
        # what runTAPJob and the ERROR transition (flagError) log, and the
        # error TAPCore.run makes of the job's error record
        if not isinstance(ex, base.Error):
            base.ui.notifyError(f"While executing TAP job {job.jobId}: {ex}")
        if not isinstance(ex, base.ValidationError):
            base.ui.notifyError(f"Error during UWS execution of job {job.jobId}")
        raise base.Error(str(ex), hint=getattr(ex, "hint", None)) from ex


def install() -> None:
    """Route sync TAP queries without uploads around the UWS job (idempotent)."""
    global _installed
    if _installed:
        return
    from gavo.protocols import tap

    run_with_job = tap.TAPCore.run

    def run(self: Any, service: Any, inputTable: Any, queryMeta: Any) -> Any:  # noqa: N803
        parameters = _job_parameters(inputTable.getParamDict())
        if not takes_fast_path(parameters):
            return run_with_job(self, service, inputTable, queryMeta)
        return _run_without_job(parameters)

    run.__wrapped__ = run_with_job  # type: ignore[attr-defined]
    tap.TAPCore.run = run
    _installed = True

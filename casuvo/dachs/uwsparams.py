# SPDX-License-Identifier: BSD-3-Clause
"""UWS 1.1 parameters checked and errors given their HTTP status, applied at server start.

DaCHS 2.7's UWS (TAP async) answers every error on a job resource with HTTP
200 and an error document (only an unknown job gets 404), takes any float as
EXECUTIONDURATION (``-5``, ``1_0``, ``nan``), reads WAIT with ``int()`` and
waits as long as it is told (a client can hold a server connection for a
day).  :func:`install` makes job errors 4xx (:func:`casuvo.dachs.errors.status_for`;
unknown jobs 404) and checks:

- ``WAIT``: an integer number of seconds, -1 (the longest the server allows)
  or 0 and more; capped at :data:`WAIT_CAP` seconds (UWS 1.1 §2.2.1.1 lets the
  server return earlier than asked);
- ``EXECUTIONDURATION``: a non-negative integer number of seconds (UWS's
  type), at most ``TIMEOUTS.async_max_s`` of :mod:`casuvo.dachs.limits`
  (what :mod:`casuvo.dachs.timeouts` lets a job's statement run; a longer one
  would not be honoured, so it is refused rather than silently cut);
- ``DESTRUCTION``: an ISO 8601 UTC timestamp ``YYYY-MM-DDThh:mm:ss[.fff][Z]``
  not in the past;
- ``PHASE``: RUN or ABORT when posted; a known UWS phase with WAIT;
- job parameters only while the job is PENDING (DaCHS's own rule, now 400),
  and a POST to the job itself only with ``ACTION=DELETE``.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from casuvo.dachs.limits import TIMEOUTS

__all__ = ["WAIT_CAP", "check_destruction", "check_execution_duration", "install",
           "wait_seconds"]

#: the longest a WAIT (slow poll) holds a request, in seconds
WAIT_CAP = 60

_installed = False

_PHASES = {"PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED",
           "UNKNOWN", "HELD", "SUSPENDED", "ARCHIVED"}
_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z?\Z")


def _error(message: str, name: str) -> Exception:
    from gavo import base

    return base.ValidationError(message, name)


def wait_seconds(literal: str) -> int:
    """The seconds a ``WAIT=literal`` slow poll waits (capped at :data:`WAIT_CAP`)."""
    if not re.fullmatch(r"-?[0-9]+", literal or ""):
        raise _error(f"WAIT={literal[:40]!r} is not an integer number of seconds", "WAIT")
    value = int(literal)
    if value < -1:
        raise _error(f"WAIT={value} is negative (only -1, for the longest wait, is)",
                     "WAIT")
    return WAIT_CAP if value == -1 else min(value, WAIT_CAP)


def check_execution_duration(literal: str, maximum: int) -> int:
    """EXECUTIONDURATION as seconds (0 to ``maximum``), or a ValidationError."""
    if not re.fullmatch(r"[0-9]+", literal or ""):
        raise _error(f"EXECUTIONDURATION={literal[:40]!r} is not a non-negative integer"
                     " number of seconds", "EXECUTIONDURATION")
    value = int(literal)
    if value > maximum:
        raise _error(f"EXECUTIONDURATION={value} exceeds this service's limit of"
                     f" {maximum} s", "EXECUTIONDURATION")
    return value


def check_destruction(literal: str, now: datetime.datetime) -> datetime.datetime:
    """DESTRUCTION as a naive UTC datetime not before ``now``, or a ValidationError."""
    if not _ISO.match(literal or ""):
        raise _error(f"DESTRUCTION={literal[:40]!r} is not an ISO 8601 UTC timestamp"
                     " (YYYY-MM-DDThh:mm:ss[.fff]Z)", "DESTRUCTION")
    try:
        value = datetime.datetime.fromisoformat(literal.rstrip("Z"))
    except ValueError:
        raise _error(f"DESTRUCTION={literal!r} is not a valid date and time",
                     "DESTRUCTION") from None
    if value < now:
        raise _error(f"DESTRUCTION={literal} is in the past", "DESTRUCTION")
    return value


def install() -> None:
    """Patch DaCHS's UWS resources and job actions; idempotent."""
    global _installed
    if _installed:
        return
    from gavo import base, svcs
    from gavo.protocols import dali, uws, uwsactions
    from gavo.web import asyncrender, weberrors

    from casuvo.dachs.errors import status_for

    def deliver_error(self: Any, flr: Any, request: Any, httpCode: int = 200  # noqa: N803
                      ) -> Any:
        if isinstance(flr.value, svcs.Authenticate | svcs.SeeOther):
            return weberrors.renderDCErrorPage(flr, request)
        if isinstance(flr.value, uws.JobNotFound | svcs.UnknownURI):
            status = 404
        else:
            status = status_for(flr.value)
        if status >= 500:
            base.ui.notifyFailure(flr)
        return dali.serveDALIError(request, flr.value, status)

    asyncrender.UWSResource._deliverError = deliver_error

    def error_resource(self: Any, request: Any) -> Any:
        # DaCHS returns this from the async renderer's getChild (bad uploads
        # at job creation, for one) and serves it with 200.
        info = self.errInfo
        if isinstance(info, uws.JobNotFound | svcs.UnknownURI):
            status = 404
        elif isinstance(info, BaseException):
            status = status_for(info)
        else:
            status = 400
        return dali.serveDALIError(request, info, httpStatus=status)

    dali.DALIErrorResource.render = error_resource

    delay = uwsactions.RootAction._delayIfWAIT

    def capped_wait(self: Any, job: Any, request: Any) -> Any:
        args = request.uwsArgs
        if args.get("wait") is not None:
            seconds = wait_seconds(args["wait"])
            if seconds == 0:
                args.pop("wait")  # DaCHS would still wait its one-second poll
            else:
                args["wait"] = str(seconds)
        phase = args.get("phase")
        if phase is not None and phase not in _PHASES:
            raise _error(f"PHASE={phase[:40]!r} is not a UWS phase", "PHASE")
        return delay(self, job, request)

    uwsactions.RootAction._delayIfWAIT = capped_wait

    def post_to_job(self: Any, job: Any, request: Any) -> None:
        if (request.uwsArgs.get("action") or "").upper() == "DELETE":
            self.doDELETE(job, request)
        raise _error("a POST to a job takes ACTION=DELETE only; parameters go to"
                     " the job's parameters resource while it is PENDING", "ACTION")

    uwsactions.RootAction.doPOST = post_to_job

    def execution_duration(literal: str) -> int:
        return check_execution_duration(literal, TIMEOUTS.async_max_s)

    def destruction(literal: str) -> datetime.datetime:
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        return check_destruction(literal, now)

    uwsactions.ExecDAction.deserializeValue = staticmethod(execution_duration)
    uwsactions.DestructionAction.deserializeValue = staticmethod(destruction)
    _installed = True

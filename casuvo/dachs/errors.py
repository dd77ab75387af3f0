# SPDX-License-Identifier: BSD-3-Clause
"""HTTP status codes for service usage errors, applied at DaCHS server start.

DaCHS 2.7 answers usage errors of TAP sync and of the DAL protocols (SCS, SIA,
SSA) with HTTP 200 and an error VOTable, as the legacy DAL specifications
asked.  DALI 1.1 and casuvo's design want the error document *and* a 4xx, so
that clients (pyvo, astroquery, curl scripts) cannot mistake an error for a
result.  This module re-routes those error paths: a usage error
(:class:`gavo.utils.Error` and its subclasses: ADQL syntax, unknown table or
column, invalid parameters, broken uploads) gets 400, an authorisation problem
401/403, anything else stays a 500 and is logged as a bug.  The document
itself is DaCHS's own (``QUERY_STATUS=ERROR`` and the message).

A server reading a streaming replica (:mod:`casuvo.dachs.readonly`) cannot
write: PostgreSQL refuses the INSERT of a new UWS job or the temporary table
of an upload with SQLSTATE 25006 ("cannot execute INSERT in a read-only
transaction"), which DaCHS answers with a 500.  That is a request this server
does not serve, not a bug: it gets 403 and :data:`READ_ONLY_MESSAGE`, which says
where such requests go.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["READ_ONLY_MESSAGE", "install", "is_read_only_refusal", "scrub_paths", "status_for"]

_installed = False

#: an absolute file path of two or more segments, not part of a URL or a ratio
_PATH = re.compile(r"(?<![\w:/.~-])/(?:[\w.+@-]+/)+([\w.+@-]+)")


def scrub_paths(message: str) -> str:
    """``message`` with absolute server file paths cut to their last segment.

    DaCHS puts the path of a job's upload file, or of a file it could not
    open, into usage-error messages; the client learns nothing from it but
    the server's layout.
    """
    return _PATH.sub(lambda m: m.group(1), message)


#: PostgreSQL's SQLSTATE for a write in a read-only transaction (a hot standby's answer)
READ_ONLY_SQLSTATE = "25006"

#: what a client that asked a replica-reading server to write is told
READ_ONLY_MESSAGE = (
    "This service reads from a read-only replica of the archive's database: it answers"
    " synchronous queries without uploads, cone, image and spectrum searches, but"
    " cannot create asynchronous jobs or take table uploads. Send this request to"
    " the archive's primary service.")


def is_read_only_refusal(exc: BaseException) -> bool:
    """True if ``exc`` (or what it wraps) is PostgreSQL refusing a write on a standby."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "pgcode", None) == READ_ONLY_SQLSTATE:
            return True
        current = current.__cause__ or current.__context__
    return False


def status_for(exc: BaseException) -> int:
    """The HTTP status casuvo answers ``exc`` with."""
    from gavo import base, svcs

    if is_read_only_refusal(exc):
        return 403
    if isinstance(exc, svcs.Authenticate):
        return 401
    if isinstance(exc, svcs.ForbiddenURI):
        return 403
    if isinstance(exc, svcs.RequestEntityTooLarge):
        return 413
    if isinstance(exc, base.Error):
        return 400
    return 500


def install() -> None:
    """Patch DaCHS's sync and DAL renderers; idempotent."""
    global _installed
    if _installed:
        return
    from gavo import base
    from gavo.protocols import dali, tap, uwsactions
    from gavo.svcs import common as svccommon
    from gavo.web import syncrender, vodal

    from casuvo.dachs import params

    def sync_failure(self: Any, flr: Any, request: Any) -> Any:
        status = status_for(flr.value)
        if status >= 500:
            base.ui.notifyFailure(flr)
        return dali.serveDALIError(request, flr.value, httpStatus=status)

    syncrender.SyncRenderer._handleFailure = sync_failure

    # DaCHS looks up ``UPLOAD=name,param:x`` in request.fields, which is None
    # for a urlencoded request, and fails with a TypeError (a 500); an empty
    # mapping gives its proper "No inline upload 'x' found" usage error.
    mangle_uploads = tap.mangleUploads

    def checked_uploads(request: Any) -> Any:
        if getattr(request, "fields", None) is not None:
            return mangle_uploads(request)
        request.fields = {}
        try:
            return mangle_uploads(request)
        finally:
            request.fields = None

    tap.mangleUploads = checked_uploads

    get_dali_error = dali.getDALIError

    def scrubbed_dali_error(errInfo: Any, queryStatus: str = "ERROR") -> Any:  # noqa: N803
        info = errInfo
        if isinstance(info, Exception) and is_read_only_refusal(info):
            info = {"msg": READ_ONLY_MESSAGE, "type": "ReadOnlyReplica", "hint": None}
        if isinstance(info, Exception):
            info = {"msg": str(info), "type": info.__class__.__name__,
                    "hint": getattr(info, "hint", None)}
        if isinstance(info, dict):
            info = {**info, "msg": scrub_paths(str(info.get("msg") or ""))}
        elif isinstance(info, str):
            info = scrub_paths(info)
        return get_dali_error(info, queryStatus)

    dali.getDALIError = scrubbed_dali_error
    error_summary = uwsactions.getErrorSummary

    def scrubbed_summary(job: Any) -> Any:
        summary = error_summary(job)
        if summary is not None and job.error:
            from gavo.protocols.uwsactions import UWS

            msg = scrub_paths(str(job.error.get("msg") or ""))
            summary = UWS.errorSummary(type="fatal", hasDetail="false")[UWS.message[msg]]
        return summary

    uwsactions.getErrorSummary = scrubbed_summary

    from gavo.web import weberrors

    error_page = weberrors.getDCErrorPage

    def scrubbed_error_page(flr: Any) -> Any:
        # DaCHS's HTML error pages quote the exception message (a missing
        # file's full path, say); keep the message, drop the server's layout.
        message = flr.getErrorMessage
        flr.getErrorMessage = lambda: scrub_paths(message())
        return error_page(flr)

    weberrors.getDCErrorPage = scrubbed_error_page

    def input_errors(self: Any, flr: Any, request: Any) -> Any:
        status = status_for(flr.value)
        if status >= 500:
            base.ui.notifyFailure(flr)
        query_status = "EMPTY" if isinstance(flr.value, base.EmptyData) else "ERROR"
        return self._writeErrorTable(
            request, flr.value, httpStatus=status, queryStatus=query_status)

    for cls in vars(vodal).values():
        if isinstance(cls, type) and "_handleInputErrors" in vars(cls):
            cls._handleInputErrors = input_errors

    scs_write = vodal.SCSRenderer._writeErrorTable

    # DaCHS passes these two by keyword, so they keep DaCHS's spelling.
    def scs_error(self: Any, request: Any, msg: Any, httpStatus: int = 200,  # noqa: N803
                  queryStatus: str = "ERROR") -> Any:  # noqa: N803
        # SCS 1.03's error document (INFO name="Error"); DaCHS drops the status.
        if request.client:
            request.setResponseCode(httpStatus)
        return scs_write(self, request, msg, httpStatus, queryStatus)

    vodal.SCSRenderer._writeErrorTable = scs_error

    fill_db_options = svccommon.QueryMeta._fillDbOptions

    def checked_db_options(self: Any, args: Any) -> None:
        # A negative MAXREC made DaCHS fail with a 500 deep inside the query;
        # QueryMeta is built before DaCHS's error handling starts, so it is
        # treated as DaCHS treats a malformed MAXREC: the default limit.
        try:
            params.check_maxrec(args)
        except base.ValidationError:
            args = {k: v for k, v in args.items() if k != "MAXREC"}
        fill_db_options(self, args)

    svccommon.QueryMeta._fillDbOptions = checked_db_options
    _installed = True

# SPDX-License-Identifier: BSD-3-Clause
"""DataLink and SODA adjustments: ``#cutout`` descriptors, 400 for usage errors.

DaCHS 2.7 labels the service descriptor of a DataLink service's own SODA
endpoint with the generic ``#proc``.  Every SODA endpoint casuvo publishes
cuts images out, and DataLink 1.1's vocabulary has the narrower ``#cutout``
for exactly that, which clients (Aladin, pyvo users filtering by semantics)
look for.  :func:`install` relabels those rows at server start.

It also makes bad DataLink and SODA requests usage errors
(:func:`refuse_malformed_ids`, :func:`dali_errors_for_dlmeta`): an empty ID
or one holding a NUL character is refused (400, naming ID) by both
renderers; dlmeta answers usage errors (no ID, an unknown RESPONSEFORMAT,
parameters it does not take) with DALI's error VOTable and 400 instead of
DaCHS's text/plain 422.  An ID that is well-formed but not found stays what
DataLink 1.1 prescribes: a NotFoundFault row in a 200 response (one request
may hold several IDs, and the others still get their links); SODA's dlget
answers it with NotFoundFault and 404.
"""

from __future__ import annotations

import contextlib
from typing import Any

#: DataLink 1.1's media type of a links response.
DATALINK_TYPE = "application/x-votable+xml;content=datalink"

__all__ = ["CUTOUT_PARAMETERS", "DATALINK_TYPE", "dali_errors_for_dlmeta", "install",
           "install_response_ucd", "refuse_empty_cutout_parameters", "refuse_malformed_ids"]


def install() -> None:
    """Relabel DaCHS's SODA service-descriptor links as ``#cutout``."""
    from gavo import base, svcs, utils
    from gavo.protocols import datalink, soda
    from gavo.web import vodal
    from twisted.web import server

    original = datalink.LinkDef.__init__
    if getattr(original, "_casuvo", False):
        return

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("semantics") == "#proc" and kwargs.get("serviceType"):
            kwargs["semantics"] = "#cutout"
        original(self, *args, **kwargs)

    init._casuvo = True  # type: ignore[attr-defined]
    datalink.LinkDef.__init__ = init

    # A cutout that misses the image is the client's mistake: SODA's error
    # (text/plain, HTTP 400) rather than DaCHS's empty 204; other usage errors
    # get 400 instead of DaCHS's 422, as everywhere else in casuvo.
    soda.EmptyData.responseCode = 400
    soda.EmptyData.responsePayload = (
        "UsageError: NoOverlap: the requested cutout does not overlap the image\n")
    report = vodal.DatalinkGetDataRenderer._reportError

    def report_error(self: Any, failure: Any, request: Any) -> Any:
        if failure.check(svcs.UnknownURI, base.NotFoundError, svcs.ForbiddenURI):
            # an unknown or foreign ID: SODA's NotFoundFault, not an HTML page
            forbidden = failure.check(svcs.ForbiddenURI)
            request.setHeader("content-type", "text/plain")
            request.setResponseCode(403 if forbidden else 404)
            request.write(("AuthorizationFault: " if forbidden else "NotFoundFault: ")
                          + utils.safe_str(failure.value) + "\n")
            request.finish()
            return server.NOT_DONE_YET
        if not hasattr(failure.value, "responseCode"):
            with contextlib.suppress(AttributeError):
                failure.value.responseCode = 400
        return report(self, failure, request)

    vodal.DatalinkGetDataRenderer._reportError = report_error

    # DaCHS sends dlmeta as text/xml (for its XSLT) to any client whose
    # Accept header mentions text/html; Java clients (TOPCAT, STILTS) send
    # "text/html, image/gif, ..." by default and so got the wrong type.  Only
    # real browsers (which also accept application/xhtml+xml) get text/xml.
    run_for_meta = datalink.DatalinkCore.runForMeta

    def run_for_meta_typed(self: Any, service: Any, input_table: Any, query_meta: Any) -> Any:
        accept = query_meta["accept"]
        if "text/html" in accept and "application/xhtml+xml" not in accept:
            query_meta["accept"] = {k: v for k, v in accept.items() if k != "text/html"}
        return run_for_meta(self, service, input_table, query_meta)

    datalink.DatalinkCore.runForMeta = run_for_meta_typed
    refuse_malformed_ids()
    refuse_empty_cutout_parameters()
    dali_errors_for_dlmeta()


#: SODA parameters (and DaCHS's RA/DEC/PIXEL_n ones) that select a cutout.
CUTOUT_PARAMETERS = frozenset(
    {"POS", "CIRCLE", "POLYGON", "BAND", "TIME", "POL", "RA", "DEC", "PIXEL_1", "PIXEL_2",
     "KIND"})


def refuse_empty_cutout_parameters() -> None:
    """A SODA cutout parameter given without a value (``POS=``) is a usage error.

    DaCHS drops empty values, so ``POS=`` alone returned the whole image, as
    if no cutout had been asked for.
    """
    from gavo import base
    from gavo.web import vodal
    from twisted.python import failure

    renderer = vodal.DatalinkGetDataRenderer
    if "render" in vars(renderer):
        return
    render = renderer.render

    def render_checked(self: Any, request: Any) -> Any:
        for name, values in request.strargs.items():
            if (name.upper() in CUTOUT_PARAMETERS and values
                    and all(isinstance(v, str) and not v.strip() for v in values)):
                error = base.ValidationError(
                    f"{name} is given without a value; leave it out to not cut along it",
                    name)
                return self._reportError(failure.Failure(error), request)
        return render(self, request)

    renderer.render = render_checked


def refuse_malformed_ids() -> None:
    """An empty ID, or one with a NUL character, is a usage error naming ID.

    DaCHS hands every ID to the descriptor generator before any parameter is
    parsed, so these reached the products table (a database error on NUL)
    or came back as "not found" for an ID nobody could have meant.
    """
    from gavo import base
    from gavo.protocols import datalink

    core = datalink.DatalinkCore
    get_ids = core._getPubDIDs
    if getattr(get_ids, "_casuvo_checked_ids", False):
        return

    def checked_ids(self: Any, args: Any) -> list[Any]:
        ids = get_ids(self, args)
        for pub_did in ids:
            if isinstance(pub_did, str) and (not pub_did.strip() or "\0" in pub_did):
                what = "contains a NUL character" if "\0" in pub_did else "is empty"
                raise base.ValidationError(f"ID {what}: give a dataset identifier", "ID")
        return ids

    checked_ids._casuvo_checked_ids = True  # type: ignore[attr-defined]
    core._getPubDIDs = checked_ids


def dali_errors_for_dlmeta() -> None:
    """dlmeta usage errors: DALI's error VOTable with HTTP 400 (not text/plain 422).

    A dlmeta request without any ID is one of them (DaCHS answered an empty
    link table): there is nothing to link.
    """
    from gavo import base
    from gavo.protocols import dali, soda
    from gavo.web import vodal

    renderer = vodal.DatalinkGetMetaRenderer
    if "_reportError" in vars(renderer):
        return

    def report_error(self: Any, failure: Any, request: Any) -> Any:
        failure.trap(base.ValidationError, soda.EmptyData)
        return dali.serveDALIError(request, failure.value, httpStatus=400)

    renderer._reportError = report_error
    render = renderer.render

    def render_with_id(self: Any, request: Any) -> Any:
        # DataLink 1.1's own media type is its default RESPONSEFORMAT, which
        # DaCHS's list of formats lacks (it refused it): asking for it is
        # asking for the default.
        for key in [k for k in request.strargs if k.lower() == "responseformat"]:
            if all(v.replace(" ", "").lower() == DATALINK_TYPE
                   for v in request.strargs[key]):
                del request.strargs[key]
        if not request.strargs.get("ID"):
            return dali.serveDALIError(
                request, base.ValidationError("ID is mandatory with dlmeta", "ID"),
                httpStatus=400)
        return render(self, request)

    renderer.render = render_with_id


def install_response_ucd() -> None:
    """Give DataLink responses' ``service_def`` the UCD of DataLink 1.1.

    Separate from :func:`install` because it loads DaCHS's ``//datalink`` RD,
    which needs the database: only the server (``dachs serve``) calls it, not
    ``dachs init`` on a database that has no DaCHS tables yet.
    """
    from gavo import base

    # DataLink 1.1 gives service_def the UCD meta.ref; DaCHS 2.7 still says
    # meta.code (DataLink 1.0), which datalinklint reports as an error.
    response = base.caches.getRD("//datalink").getById("dlresponse")
    response.getColumnByName("service_def").ucd = "meta.ref"

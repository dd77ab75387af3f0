# SPDX-License-Identifier: BSD-3-Clause
"""DataLink and SODA adjustments: ``#cutout`` descriptors, 400 for usage errors.

DaCHS 2.7 labels the service descriptor of a DataLink service's own SODA
endpoint with the generic ``#proc``.  Every SODA endpoint casuvo publishes
cuts images out, and DataLink 1.1's vocabulary has the narrower ``#cutout``
for exactly that, which clients (Aladin, pyvo users filtering by semantics)
look for.  :func:`install` relabels those rows at server start.
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["install", "install_response_ucd"]


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

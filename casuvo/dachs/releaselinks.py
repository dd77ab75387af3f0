# SPDX-License-Identifier: BSD-3-Clause
"""DataLink rows from a product to the ESO Phase 3 releases that hold it.

``casuvo release build`` records every released file with the accref of the
archive product it was made from (``releases.products``, a view of
``ledger.release_products``, :mod:`casuvo.storage.releases`).  An image's or
a spectrum's DataLink document gets one ``#documentation`` row per release
(local semantics ``release``): a TAP query listing that release's files and
checksums.  The query runs on the request's connection, so a group's release
is linked for its members only (the tables are release-controlled).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

__all__ = ["release_links", "tap_query_url"]


def tap_query_url(query: str) -> str:
    """This server's TAP sync URL answering ``query`` (ADQL) with a VOTable."""
    from gavo import base

    return (base.getConfig("web", "serverURL").rstrip("/") + "/tap/sync?"
            + urllib.parse.urlencode({"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query}))


def release_links(descriptor: Any, accref: str) -> Iterator[Any]:
    """The DataLink rows of the releases holding the product ``accref``."""
    from gavo import base

    with base.getTableConn() as conn:
        rows = list(conn.query(
            "SELECT release, filename FROM releases.products WHERE accref = %(accref)s"
            " ORDER BY release", {"accref": accref}))
    for release, filename in rows:
        yield descriptor.makeLink(
            tap_query_url(f"SELECT * FROM releases.products WHERE release = '{release}'"),
            description=f"ESO Phase 3 release {release} (as {filename}): its files and "
                        "checksums (TAP query)",
            semantics="#documentation", localSemantics="release",
            contentType="application/x-votable+xml")

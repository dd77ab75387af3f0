# SPDX-License-Identifier: BSD-3-Clause
"""The "my data" page: what a logged-in user sees before its release, and their TAP jobs.

The archive's counterpart of ESO's and the Gaia-ESO archive's "My requests":
after logging in (HTTP basic authentication against DaCHS's users, the
browser's own dialog — the page answers 401 with DaCHS's realm when no
credentials come), a survey-team member finds

- the groups they belong to (``dc.groups``);
- every proprietary product they may see, from DaCHS's product table
  (``dc.products``: every file of every collection, with its owner and
  ``embargo``, the release date): rows whose release is still to come.  The
  page does not decide who sees what: it queries as the user, and the
  database's release control (:mod:`casuvo.storage.access`) filters the rows,
  as for TAP;
- the TAP jobs they started (DaCHS's ``tap_schema.tapjobs``, ``owner``), with
  their phase and a link to each job.

Served by ``resdir/portal`` (service ``mydata``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from twisted.web.template import Tag
from twisted.web.template import tags as T  # noqa: N812 -- DaCHS's and twisted's spelling

from casuvo.dachs import spectropages as sp

__all__ = ["PROPRIETARY_SQL", "mydata_args", "mydata_page"]

#: the proprietary products the session may see (DaCHS's product table, which
#: has every product of every collection with its owner and release date)
PROPRIETARY_SQL = (
    "SELECT split_part(sourcetable, '.', 1), sourcetable, accref, mime, embargo"
    " FROM dc.products WHERE embargo > now() ORDER BY 1, embargo, accref")

_JOBS_SQL = (
    "SELECT jobid, phase, creationtime, destructiontime FROM tap_schema.tapjobs"
    " WHERE owner = %(user)s ORDER BY creationtime DESC")


def _groups(user: str) -> list[str]:
    return sorted(g for (g,) in sp._query(
        "SELECT groupname FROM dc.groups WHERE username = %(user)s AND groupname <> %(user)s",
        {"user": user}, admin=True))


def _jobs(user: str) -> list[tuple[Any, ...]]:
    if not sp._table_exists("tap_schema.tapjobs", admin=True):
        return []
    return sp._query(_JOBS_SQL, {"user": user}, admin=True)


def _tap_url() -> str:
    return sp._site_path("/tap")


def mydata_page(user: str, groups: list[str], rows: list[tuple[Any, ...]],
                jobs: list[tuple[Any, ...]]) -> Tag:
    """The page: the user's groups, their proprietary products, their TAP jobs."""
    from gavo.rscdef.common import getStandardPubDID

    counts = Counter(r[0] for r in rows)
    shown = rows[:sp.MAX_ROWS]
    products = [T.tr(class_="data", **{"data-did": getStandardPubDID(r[2])})[
        sp._cell("collection", r[0]), sp._cell("table", r[1]), sp._cell("mime", r[3]),
        sp._cell("release", r[4].isoformat()[:10] if r[4] else None),
        T.td(**{"data-col": "file"})[
            T.a(href=sp._product_url(str(r[2])), class_="product")[
                str(r[2]).rsplit("/", 1)[-1]]]] for r in shown]
    job_rows = [T.tr(class_="job", **{"data-job": str(j[0])})[
        T.td[T.a(href=f"{_tap_url()}/async/{j[0]}")[str(j[0])]],
        sp._cell("phase", j[1]), sp._cell("creationtime", j[2]),
        sp._cell("destructiontime", j[3])] for j in jobs]
    return T.transparent[
        sp.portal_nav("mydata"),
        T.section(class_="panel", id="account")[
            T.h2["My data"],
            T.p["Logged in as ", T.strong(id="user")[user], "; member of ",
                T.span(id="groups")[", ".join(groups) or "no survey team"], "."],
            T.p["Everything public is in the archive for everyone; below are the products "
                "you may see before their release date, and the TAP jobs you started."]],
        T.section(class_="panel", id="proprietary")[
            T.h2["Proprietary products you may see"],
            T.p(class_="subtitle")[
                T.span(id="n-proprietary")[str(len(rows))], " products",
                " (" + ", ".join(f"{c}: {n}" for c, n in sorted(counts.items())) + ")"
                if counts else "",
                f"; the first {sp.MAX_ROWS} are shown" if len(rows) > len(shown) else ""],
            T.table(class_="results", id="products")[
                T.thead[T.tr[[T.th[h] for h in ("Collection", "Table", "Type", "Public on",
                                                "File")]]],
                T.tbody[products]]],
        T.section(class_="panel", id="jobs")[
            T.h2["My TAP jobs"],
            T.p(class_="subtitle")[T.span(id="n-jobs")[str(len(jobs))], " jobs"],
            T.table(class_="results", id="joblist")[
                T.thead[T.tr[[T.th[h] for h in ("Job", "Phase", "Created", "Destroyed on")]]],
                T.tbody[job_rows]]]]


def mydata_args(args: Any) -> Tag:
    """The page for the request's checked user; none: 401, the browser asks for a login."""
    from gavo import svcs

    from casuvo.dachs import access

    user = access.current_user()
    if not user:
        raise svcs.Authenticate()
    return mydata_page(user, _groups(user), sp._query(PROPRIETARY_SQL), _jobs(user))

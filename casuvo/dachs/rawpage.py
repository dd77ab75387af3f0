# SPDX-License-Identifier: BSD-3-Clause
"""The "query for raw data" page: raw exposures of every survey, from ``ivoa.obscore``.

Raw exposures — imaging frames and spectroscopic count spectra alike — are in
ObsCore with ``calib_level`` 0, so the talk's raw-data query is an ObsCore
query; this page is that query with a form (collection, kind, night,
position), and it shows the ADQL it ran, for TAP users to take further.  It
reads ObsCore, not the collections' own tables, so a new survey's raw data
appear here with no change.  Served by ``resdir/portal`` (service ``raw``).
"""

from __future__ import annotations

import datetime
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twisted.web.template import Tag
from twisted.web.template import tags as T  # noqa: N812 -- DaCHS's and twisted's spelling

from casuvo.dachs import spectropages as sp

__all__ = ["KINDS", "MAX_RADIUS_DEG", "RawQuery", "raw_adql", "raw_args", "raw_page",
           "raw_query", "raw_rows"]

#: ObsCore dataproduct types of raw exposures
KINDS = ("image", "spectrum")
#: widest position search (degrees): a field, not a sky survey
MAX_RADIUS_DEG = 2.0
#: MJD of 1858-11-17 00:00 UTC
_MJD0 = datetime.date(1858, 11, 17)
#: columns shown: (heading, ObsCore column)
COLUMNS = (("Collection", "obs_collection"), ("Kind", "dataproduct_type"),
           ("Instrument", "instrument_name"), ("Target", "target_name"),
           ("Start (UTC)", "t_min"), ("Exposure (s)", "t_exptime"),
           ("Coordinates", "s_ra"), ("File", "obs_id"))


@dataclass(frozen=True)
class RawQuery:
    """What the raw-data page selects: None is "any"."""

    collection: str | None = None
    kind: str | None = None
    night: int | None = None
    ra: float | None = None
    dec: float | None = None
    radius_deg: float = 0.5


def _collections() -> list[str]:
    return [r[0] for r in sp._query(
        "SELECT DISTINCT obs_collection FROM ivoa.obscore WHERE calib_level = 0"
        " ORDER BY 1")]


def raw_query(args: Mapping[str, Any]) -> RawQuery:
    """The page's selection from the request; a bad parameter is a 400 naming it."""
    collection = sp._check_text(sp._value(args, "collection"), "collection")
    if collection is not None and collection not in _collections():
        raise sp._error(f"Unknown collection {collection[:40]!r}; raw data are in "
                        + ", ".join(_collections()), "collection")
    kind = sp._check_choice(sp._value(args, "kind"), "kind", KINDS)
    night = sp._check_night(sp._value(args, "night"))
    pos = sp._check_text(sp._value(args, "pos"), "pos")
    radius = sp.check_radius(sp._value(args, "radius"), RawQuery.radius_deg, MAX_RADIUS_DEG,
                             "degrees")
    ra, dec = sp.check_position(pos, "194.3,-64.75", "12:57:12 -64:45:00")
    return RawQuery(collection, kind, night, ra, dec, radius)


def _night_mjd(night: int) -> tuple[float, float]:
    """MJD range of the night starting on the evening of ``night`` (noon to noon, UTC)."""
    day = datetime.datetime.strptime(str(night), "%Y%m%d").date()
    start = (day - _MJD0).days + 0.5
    return start, start + 1.0


def raw_adql(q: RawQuery) -> str:
    """The ObsCore query of the selection (ADQL; the page runs its SQL twin)."""
    where = ["calib_level = 0"]
    if q.collection is not None:
        where.append(f"obs_collection = '{q.collection}'")
    if q.kind is not None:
        where.append(f"dataproduct_type = '{q.kind}'")
    if q.night is not None:
        start, end = _night_mjd(q.night)
        where.append(f"t_min BETWEEN {start} AND {end}")
    if q.ra is not None:
        where.append(f"1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {q.ra:.6f},"
                     f" {q.dec:.6f}, {q.radius_deg:g}))")
    columns = ", ".join(c for _, c in COLUMNS if c != "s_ra") + ", s_ra, s_dec, access_url"
    return (f"SELECT {columns} FROM ivoa.obscore WHERE " + " AND ".join(where)
            + " ORDER BY t_min")


def raw_rows(q: RawQuery) -> list[dict[str, Any]]:
    """The selected raw exposures (at most :data:`spectropages.MAX_ROWS` + 1), oldest first."""
    where, args = ["calib_level = 0"], {}
    if q.collection is not None:
        where.append("obs_collection = %(collection)s")
        args["collection"] = q.collection
    if q.kind is not None:
        where.append("dataproduct_type = %(kind)s")
        args["kind"] = q.kind
    if q.night is not None:
        args["start"], args["end"] = _night_mjd(q.night)
        where.append("t_min BETWEEN %(start)s AND %(end)s")
    if q.ra is not None:
        where.append("spoint(radians(s_ra), radians(s_dec)) <@ scircle(spoint(radians(%(ra)s),"
                     " radians(%(dec)s)), radians(%(radius)s))")
        args.update(ra=q.ra, dec=q.dec, radius=q.radius_deg)
    names = [c for _, c in COLUMNS] + ["s_dec", "access_url"]
    rows = sp._query(f"SELECT {', '.join(names)} FROM ivoa.obscore WHERE "
                     + " AND ".join(where) + f" ORDER BY t_min, obs_id LIMIT {sp.MAX_ROWS + 1}",
                     args)
    return [dict(zip(names, r, strict=True)) for r in rows]


def _form(q: RawQuery) -> Tag:
    return T.form(id="raw-form", method="get", action=sp.page_path("raw"), class_="filters")[
        T.label(for_="r-collection")["Collection"],
        T.select(id="r-collection", name="collection")[
            sp._options(_collections(), q.collection, "all collections")],
        T.label(for_="r-kind")["Kind"],
        T.select(id="r-kind", name="kind")[sp._options(KINDS, q.kind, "images and spectra")],
        T.label(for_="r-night")["Night (YYYYMMDD)"],
        T.input(id="r-night", name="night", value=str(q.night or ""), size="9"),
        T.label(for_="r-pos")["Position"],
        T.input(id="r-pos", name="pos", size="22",
                value="" if q.ra is None else f"{q.ra:.5f},{q.dec:.5f}"),
        T.label(for_="r-radius")["Radius (deg)"],
        T.input(id="r-radius", name="radius", value=f"{q.radius_deg:g}", size="5"),
        T.input(type="submit", id="raw-submit", value="Search")]


def raw_page(q: RawQuery) -> Tag:
    """The raw exposures the selection finds, each with its file, and the ADQL of the query."""
    rows = raw_rows(q)
    cut = len(rows) > sp.MAX_ROWS
    rows = rows[:sp.MAX_ROWS]
    body = []
    for row in rows:
        body.append(T.tr(class_="data", **{"data-obs-id": str(row["obs_id"])})[
            sp._cell("obs_collection", row["obs_collection"]),
            sp._cell("dataproduct_type", row["dataproduct_type"]),
            sp._cell("instrument_name", row["instrument_name"]),
            sp._cell("target_name", row["target_name"]),
            T.td(**{"data-col": "t_min", "data-value": repr(row["t_min"])})[
                sp._mjd_iso(row["t_min"])],
            sp._cell("t_exptime", row["t_exptime"], ".1f"),
            T.td(**{"data-col": "position", "data-ra": repr(row["s_ra"]),
                    "data-dec": repr(row["s_dec"])})[
                sp.sexagesimal(row["s_ra"], row["s_dec"])
                if row["s_ra"] is not None else "–"],
            T.td(**{"data-col": "obs_id"})[
                T.a(href=sp._product_url(str(row["access_url"])), class_="rawfile")[
                    str(row["obs_id"]).rsplit("/", 1)[-1]]]])
    adql = raw_adql(q)
    tap_form = (sp._site_path("/__system__/adql/query/form") + "?"
                + urllib.parse.urlencode({"query": adql}))
    return T.transparent[
        sp.portal_nav("raw"),
        T.section(class_="panel", id="filter")[T.h2["Query for raw data"], _form(q)],
        T.p(class_="subtitle")[
            T.span(id="matched")[str(len(rows))], " raw exposures",
            f"; the first {sp.MAX_ROWS} are shown" if cut else ""],
        T.table(class_="results", id="raw")[
            T.thead[T.tr[[T.th[h] for h, _ in COLUMNS]]], T.tbody[body]],
        T.section(class_="panel", id="adql")[
            T.h2["The same, in ADQL (TAP, ivoa.obscore)"],
            T.pre(id="raw-adql")[adql],
            T.p[T.a(href=tap_form, id="raw-tap")["run it in the ADQL form"]]]]


def raw_args(args: Mapping[str, Any]) -> Tag:
    """The raw-data page for the request's selection (``resdir/portal``, service ``raw``)."""
    return raw_page(raw_query(args))

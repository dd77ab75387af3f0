# SPDX-License-Identifier: BSD-3-Clause
"""The spectroscopic archives' web pages: home, OB monitor, one OB, objects, processing, help.

The talk's Gaia-ESO archive and 4MOST operational repository pages, rebuilt on
DaCHS templates: the services are in ``resdir/portal/q.rd`` (one template,
``services/templates/casuvo/portal.html``), everything they show is built
here as twisted.web stan from the collections' tables (``<c>.obs_blocks``,
``<c>.targets``, ``<c>.spectra``: docs/spectroscopy.md) and the processing
ledger (``ledger.runs``, ``ledger.products``).

The spectroscopic collections are the survey registry's ``kind =
"spectroscopy"`` entries; the pages query each one's tables at request time
(a collection whose tables are not there yet is left out), so a survey added
to the registry appears on every page after a server restart, with no view
to rebuild.

Every query parameter is checked here before the page is drawn
(:func:`monitor_filter`, :func:`ob_key`, :func:`object_query`,
:func:`processing_filter`, called from the services' cores): a bad value is a
``ValidationError`` naming the parameter, which DaCHS's HTML error page
answers with 400 (:mod:`casuvo.dachs.htmlerrors`); a page never starts
rendering and then fails.

As on the image pages, every value a test reads sits in an element with a
``data-col`` (database column), ``data-count`` or ``data-*`` attribute.
"""

from __future__ import annotations

import datetime
import functools
import math
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.web.template import Tag
from twisted.web.template import tags as T  # noqa: N812 -- DaCHS's and twisted's spelling

from casuvo.archive.endpoints import services
from casuvo.config import Settings
from casuvo.surveys.registry import Registry, Survey, load_registry

__all__ = [
    "MAX_RADIUS_ARCSEC",
    "MODES",
    "PAGES",
    "STATUSES",
    "MonitorFilter",
    "ObjectQuery",
    "check_position",
    "check_radius",
    "help_args",
    "help_page",
    "home_args",
    "home_page",
    "monitor_args",
    "monitor_filter",
    "monitor_page",
    "ob_args",
    "ob_key",
    "ob_page",
    "object_query",
    "objects_args",
    "objects_page",
    "page_path",
    "plot",
    "portal_nav",
    "processing_args",
    "processing_filter",
    "processing_page",
    "raw_args",
    "run_log",
    "run_log_path",
    "sexagesimal",
    "spectrum_file",
]

#: the RD of the pages, and each page's service path under it
PORTAL_RD = "portal/q"
PAGES: dict[str, str] = {
    "home": "home/volatile",
    "monitor": "monitor/volatile",
    "ob": "ob/volatile",
    "objects": "objects/volatile",
    "processing": "processing/volatile",
    "raw": "raw/volatile",
    "mydata": "mydata/volatile",
    "help": "help/volatile",
    "plot": "plot/api",
    "log": "log/api",
}

#: an OB's life, in order (docs/spectroscopy.md, ``<c>.obs_blocks.status``)
STATUSES = ("scheduled", "observed", "processed", "completed", "aborted")
#: instrument modes: low and high resolution
MODES = ("LR", "HR")
#: widest object search (arcsec) and its default
MAX_RADIUS_ARCSEC = 600.0
DEFAULT_RADIUS_ARCSEC = 10.0
#: most rows the OB monitor and the object search show (the page says when it cut)
MAX_ROWS = 2000
#: spectrum plots drawn inline on the object search; further rows link to theirs
MAX_PLOTS = 8

#: the talk's OB monitor columns: (heading, obs_blocks column)
MONITOR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("OB id", "ob_id"), ("Night", "night"), ("OB name", "ob_name"),
    ("PROCTEMP", "proc_template"), ("OBSTEMP", "obs_template"), ("Made (binning)", "made"),
    ("Targets", "n_targets"), ("SRV1", "srv1"), ("SRV2", "srv2"), ("SRV3", "srv3"),
    ("Author", "author"), ("Trimester", "trimester"), ("Status", "status"),
)

#: per collection: what its products are, how they are named, its error convention
#: (docs/spectroscopy.md and ../shared/reference/formats-spectra.md)
FORMATS: dict[str, dict[str, str]] = {
    "ges": {
        "instrument": "FLAMES/GIRAFFE on the VLT (settings HR10 548.8 nm, HR21)",
        "per_ob": "\"manyspec\" multi-extension FITS per pointing: flux and error images"
                  " (one row per fibre), the Fibinfo table (one row per fibre: object,"
                  " position, magnitude) and velclass (radial velocities per fibre).",
        "per_object": "\"singlespec\" FITS per object (CNAME): one spectrum, one INPUTINFO"
                      " row per contributing epoch.",
        "naming": "Objects are named by their CNAME (HHMMSSss±DDMMSSs, from the position);"
                  " spectra ges-<CNAME>-<setting>.",
        "errors": "sigma (1σ flux error, same unit as the flux)",
    },
    "weave": {
        "instrument": "WEAVE on the WHT (LR and HR modes; BLUE and RED arms)",
        "per_ob": "L1 single_<run>.fit per run and arm and stack_<run>.fit per OB and arm:"
                  " PRIMARY, <ARM>_DATA, _IVAR, _DATA_NOSS, _IVAR_NOSS, _SENSFUNC, FIBTABLE"
                  " (in that order).",
        "per_object": "WVE_<CNAME>.fit: the object's rows of its stacks, both arms.",
        "naming": "Objects by CNAME; OBSpec → OB → exposure → run.",
        "errors": "inverse variance (IVAR; 1/σ², converted to σ on reading)",
    },
    "fourmost": {
        "instrument": "4MOST on VISTA (LRS: blue, green and red arms joined)",
        "per_ob": "per-arm OB files, one row per fibre.",
        "per_object": "one-row PHASE3SPECTRUM binary table per target and OB (WAVE, FLUX,"
                      " ERR_FLUX, QUAL, FLUX_NOSS, ERR_FLUX_NOSS) with the OB's S/N keywords.",
        "naming": "Objects by the survey's CNAME and target id.",
        "errors": "sigma (ERR_FLUX, 1σ)",
    },
}


# ---------------------------------------------------------------- collections and URLs

@functools.cache
def _registry() -> Registry:
    """The server's survey registry, read once per process (like the RDs)."""
    return load_registry(Settings.from_env())


def _spectro_surveys() -> tuple[Survey, ...]:
    return _registry().of_kind("spectroscopy")


def _site_path(path: str) -> str:
    from gavo import base

    return str(base.makeSitePath("/" + path.lstrip("/")))


def page_path(page: str, **params: Any) -> str:
    """The site path of portal page ``page``, with its query ``params`` (None ones left out)."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return _site_path(f"{PORTAL_RD}/{PAGES[page]}") + (f"?{query}" if query else "")


def _query(sql: str, args: Mapping[str, Any] | None = None, *, admin: bool = False
           ) -> list[tuple[Any, ...]]:
    """Rows of ``sql``; ``admin``: on DaCHS's administrative role, the one the ledger is
    granted to (``casuvo.storage.ledger.ensure_products_schema``)."""
    from gavo import base

    with (base.getAdminConn() if admin else base.getTableConn()) as conn:
        return list(conn.query(sql, dict(args or {})))


def _table_exists(table: str, *, admin: bool = False) -> bool:
    return bool(_query("SELECT to_regclass(%(t)s) IS NOT NULL", {"t": table},
                       admin=admin)[0][0])


def _collections(table: str, only: str | None = None) -> list[Survey]:
    """The spectroscopic surveys (``only``: that one) whose ``<collection>.<table>`` exists."""
    return [s for s in _spectro_surveys()
            if (only is None or s.key == only) and _table_exists(f"{s.collection}.{table}")]


def _survey(key: str) -> Survey:
    return _registry()[key]


# ---------------------------------------------------------------- parameters

def _value(args: Mapping[str, Any], key: str) -> str | None:
    """One parameter's value as text (DaCHS gives lists for raw requests, scalars for cores)."""
    value = args.get(key)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _error(message: str, parameter: str) -> Exception:
    from gavo import base

    return base.ValidationError(message, parameter)


def _check_text(text: str | None, parameter: str, limit: int = 64) -> str | None:
    if text is not None and (len(text) > limit or not text.isprintable()):
        raise _error(f"{parameter} must be at most {limit} printable characters", parameter)
    return text


def _check_survey(text: str | None) -> str | None:
    keys = [s.key for s in _spectro_surveys()]
    if text is not None and text not in keys:
        raise _error(f"Unknown survey {text[:40]!r}; the spectroscopic surveys are "
                     f"{', '.join(keys) or 'none'}", "survey")
    return text


def _check_choice(text: str | None, parameter: str, choices: Sequence[str]) -> str | None:
    if text is not None and text not in choices:
        raise _error(f"{parameter} must be one of {', '.join(choices)}, not {text[:40]!r}",
                     parameter)
    return text


def _check_night(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        night = datetime.datetime.strptime(text, "%Y%m%d").date() if re.fullmatch(
            r"\d{8}", text) else None
    except ValueError:
        night = None
    if night is None:
        raise _error(f"night must be a date YYYYMMDD (the evening's date), not {text[:40]!r}",
                     "night")
    return int(text)


@dataclass(frozen=True)
class MonitorFilter:
    """What the OB progress monitor shows: None is "any"."""

    survey: str | None = None
    field: str | None = None
    night: int | None = None
    status: str | None = None
    mode: str | None = None


def monitor_filter(args: Mapping[str, Any]) -> MonitorFilter:
    """The monitor's filter from the request; a bad value is a ValidationError naming it."""
    return MonitorFilter(
        survey=_check_survey(_value(args, "survey")),
        field=_check_text(_value(args, "field"), "field"),
        night=_check_night(_value(args, "night")),
        status=_check_choice(_value(args, "status"), "status", STATUSES),
        mode=_check_choice(_value(args, "mode"), "mode", MODES))


def ob_key(args: Mapping[str, Any]) -> tuple[str, int]:
    """(survey, ob_id) of the per-OB page; both are required."""
    survey = _check_survey(_value(args, "survey"))
    text = _value(args, "ob_id")
    if survey is None:
        raise _error("survey is required (the OB's survey key)", "survey")
    if text is None or not re.fullmatch(r"\d{1,18}", text):
        raise _error("ob_id must be the OB's number (digits)", "ob_id")
    return survey, int(text)


@dataclass(frozen=True)
class ObjectQuery:
    """An object search: by name (CNAME or Gaia source_id) or by position and radius."""

    survey: str | None = None
    name: str | None = None
    ra: float | None = None
    dec: float | None = None
    radius_arcsec: float = DEFAULT_RADIUS_ARCSEC

    @property
    def empty(self) -> bool:
        return self.name is None and self.ra is None

    @property
    def source_id(self) -> int | None:
        """The name as a Gaia source_id, when it is one (all digits)."""
        return int(self.name) if self.name and self.name.isdigit() else None


def _parse_position(text: str) -> tuple[float, float]:
    """``RA,DEC`` or ``RA DEC`` in degrees, or sexagesimal ``hh:mm:ss ±dd:mm:ss``."""
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    if len(parts) != 2:
        raise ValueError(text)
    if ":" in parts[0] or ":" in parts[1]:
        h, m, s = (float(x) for x in parts[0].split(":"))
        sign = -1 if parts[1].lstrip().startswith("-") else 1
        d, dm, ds = (abs(float(x)) for x in parts[1].split(":"))
        ra, dec = 15 * (h + m / 60 + s / 3600), sign * (d + dm / 60 + ds / 3600)
    else:
        ra, dec = float(parts[0]), float(parts[1])
    if not (math.isfinite(ra) and math.isfinite(dec)):
        raise ValueError(text)
    return ra, dec


def object_query(args: Mapping[str, Any]) -> ObjectQuery:
    """The object search from the request: ``name``, or ``pos`` (+ ``radius`` in arcsec)."""
    survey = _check_survey(_value(args, "survey"))
    name = _check_text(_value(args, "name"), "name")
    pos = _check_text(_value(args, "pos"), "pos")
    radius_text = _value(args, "radius")
    if name and pos:
        raise _error("give a name or a position (pos), not both", "pos")
    radius = check_radius(radius_text, DEFAULT_RADIUS_ARCSEC, MAX_RADIUS_ARCSEC, "arcsec")
    ra, dec = check_position(pos, "232.01,-50.71", "15:28:03.5 -50:42:34")
    return ObjectQuery(survey, name, ra, dec, radius)


def check_radius(text: str | None, default: float, maximum: float, unit: str) -> float:
    """A search radius in (0, maximum] (``default`` when not given); else a 400 naming it."""
    if text is None:
        return default
    try:
        radius = float(text)
    except ValueError:
        radius = math.nan
    if not 0 < radius <= maximum:
        raise _error(f"radius must be a number of {unit} in (0, {maximum:g}],"
                     f" not {text[:40]!r}", "radius")
    return radius


def check_position(text: str | None, decimal: str, sexagesimal: str
                   ) -> tuple[float, float] | tuple[None, None]:
    """(ra, dec) of a ``pos`` parameter (None, None when not given); else a 400 naming it.

    ``decimal`` and ``sexagesimal`` are the examples the message gives.
    """
    if text is None:
        return None, None
    try:
        ra, dec = _parse_position(text)
    except ValueError:
        raise _error(f"{text!r} is not a position: give RA,DEC in degrees ({decimal})"
                     f" or sexagesimal ({sexagesimal})", "pos") from None
    if not (0 <= ra < 360 and -90 <= dec <= 90):
        raise _error(f"{text!r}: RA must be within [0, 360) and Dec within [-90, 90]"
                     " degrees", "pos")
    return ra, dec


def processing_filter(args: Mapping[str, Any]) -> str | None:
    """The pipeline the processing page is limited to (a registry key), or None for all."""
    text = _value(args, "pipeline")
    if text is not None and text not in _registry():
        raise _error(f"Unknown pipeline {text[:40]!r}; the pipelines are "
                     f"{', '.join(s.key for s in _registry())}", "pipeline")
    return text


# ---------------------------------------------------------------- formatting

def sexagesimal(ra: float, dec: float) -> str:
    """``hh:mm:ss.ss ±dd:mm:ss.s`` (ICRS), rounded without a 60 in any field."""
    cs = round((ra % 360) / 15 * 3600 * 100) % (24 * 360000)
    h, rest = divmod(cs, 360000)
    m, rest = divmod(rest, 6000)
    sign = "-" if dec < 0 else "+"
    ds = round(abs(dec) * 36000)
    d, drest = divmod(ds, 36000)
    dm, drest = divmod(drest, 600)
    return f"{h:02d}:{m:02d}:{rest / 100:05.2f} {sign}{d:02d}:{dm:02d}:{drest / 10:04.1f}"


def _text(value: Any, fmt: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if fmt:
        return format(value, fmt)
    return str(value)


def _cell(column: str, value: Any, fmt: str | None = None, **attrs: str) -> Tag:
    raw = "" if value is None else str(value)
    return T.td(**{"data-col": column, "data-value": raw, **attrs})[_text(value, fmt)]


def _mjd_iso(mjd: float | None) -> str:
    if mjd is None:
        return "–"
    moment = datetime.datetime(1858, 11, 17) + datetime.timedelta(days=float(mjd))
    return moment.isoformat(timespec="milliseconds")


def portal_nav(current: str | None = None) -> Tag:
    """The archive's own menu (the talk's Home · Observations · Objects · Processing · Help)."""
    items = (("home", "Home"), ("monitor", "Observations"), ("objects", "Objects"),
             ("raw", "Raw data"), ("processing", "Processing"), ("mydata", "My data"),
             ("help", "Help"))
    return T.nav(class_="portal")[[
        T.a(href=page_path(key), class_="current" if key == current else "",
            **{"data-nav": key})[label] for key, label in items]]


def _survey_options(selected: str | None, anything: str = "all surveys") -> list[Tag]:
    options = [T.option(value="")[anything]]
    for s in _spectro_surveys():
        attrs = {"selected": "selected"} if s.key == selected else {}
        options.append(T.option(value=s.key, **attrs)[f"{s.label} ({s.key})"])
    return options


def _options(values: Iterable[Any], selected: Any, anything: str) -> list[Tag]:
    options = [T.option(value="")[anything]]
    for v in values:
        attrs = {"selected": "selected"} if str(v) == str(selected) else {}
        options.append(T.option(value=str(v), **attrs)[str(v)])
    return options


@functools.cache
def _services() -> dict[str, dict[str, str]]:
    """Service paths of every collection (:func:`casuvo.archive.endpoints.services`)."""
    return services(_registry())


def _datalink_url(survey: Survey, did: str, renderer: str = "datalink", **params: str) -> str:
    """The collection's DataLink document (``renderer`` datalink) or SODA/#this (soda)."""
    query = urllib.parse.urlencode({"ID": did, **params})
    return _site_path(_services()[renderer][survey.collection]) + "?" + query


def _product_url(path: str) -> str:
    from gavo.protocols import products

    return str(products.makeProductLink(path))


def _plot_url(survey: str, spectrum_id: str) -> str:
    return page_path("plot", survey=survey, spectrum_id=spectrum_id)


def _spectrum_links(survey: Survey, spectrum_id: str, did: str | None) -> list[Any]:
    """The spectrum (#this: SDM VOTable, SDM FITS), its DataLink document and its plot."""
    links: list[Any] = []
    if did:
        links += [
            T.a(href=_datalink_url(survey, did, "soda"), class_="spectrum",
                title="Spectral Data Model VOTable (SSA, TOPCAT, pyvo)",
                **{"data-spectrum": spectrum_id})["Spectrum"], " · ",
            T.a(href=_datalink_url(survey, did, "soda", FORMAT="application/fits"),
                class_="fits", title="Spectral Data Model FITS binary table")["FITS"], " · ",
            T.a(href=_datalink_url(survey, did), class_="dllink",
                title="All links: the survey's file, cutouts, progenitors, Gaia, images",
                **{"data-did": did})["DataLink"], " · "]
    links.append(T.a(href=_plot_url(survey.key, spectrum_id), class_="plotlink")["plot"])
    return links


# ---------------------------------------------------------------- home

def home_page() -> Tag:
    """The archives' home: what they hold and the quick links."""
    quick = (
        ("monitor", "Search for observations",
         "Query the observing blocks (OBs) of every survey by field, night, status and mode;"
         " each OB's page lists its targets and links to their spectra."),
        ("objects", "Search for objects",
         "Find an object by name (CNAME or Gaia source_id) or position and see its spectrum."),
        ("processing", "Processing status",
         "Follow the pipeline runs of the imaging and spectroscopic surveys: their inputs,"
         " products, QC, failures and logs."),
        ("help", "Help", "How to use the archive: the pages, the services, the tables."),
        ("help", "Spectra data and formats",
         "The products of each survey, their naming convention and file formats."),
    )
    links = [T.li(**{"data-quick": key if label != "Spectra data and formats" else "formats"})[
        T.a(href=page_path(key) + ("#formats" if label == "Spectra data and formats" else ""))[
            label], " – ", text] for key, label, text in quick]
    return T.transparent[
        portal_nav("home"),
        T.p(id="intro")[
            "The spectroscopic archives of the data centre: the surveys' observing blocks,"
            " night by night, from scheduling to completed processing; one spectrum per"
            " object per setting, with its S/N and radial velocity; the per-OB products"
            " with all the spectra of one configuration.  Everything here is also in the"
            " Virtual Observatory: TAP (the tables below and ivoa.obscore), SSA and"
            " DataLink."],
        T.div(class_="grid2")[
            T.div[T.section(id="quick-links", class_="panel")[
                T.h2["Quick links"], T.ul(class_="links")[links]]],
            T.div[T.section(id="surveys", class_="panel")[
                T.h2["Surveys"], _survey_summary()]]]]


def _vo_links(survey: Survey) -> list[Any]:
    """The collection's SSA endpoint and an ADQL query of its spectra, where they exist."""
    links: list[Any] = []
    ssa = _services().get("ssa", {}).get(survey.collection)
    if ssa:
        links += [T.a(href=_site_path(ssa) + "?REQUEST=queryData&FORMAT=METADATA",
                      **{"data-service": "ssa"})["SSA"], " · "]
    query = urllib.parse.quote(f"SELECT TOP 10 * FROM {survey.collection}.spectra")
    links.append(T.a(href=_site_path(f"__system__/adql/query/form?query={query}"),
                     **{"data-service": "adql"})["ADQL"])
    return links


def _survey_summary() -> Tag:
    rows = []
    for s in _spectro_surveys():
        obs = (_query(f"SELECT count(*), count(*) FILTER (WHERE status = 'completed')"
                      f" FROM {s.collection}.obs_blocks")[0]
               if _table_exists(f"{s.collection}.obs_blocks") else (None, None))
        spectra = (_query(f"SELECT count(*) FROM {s.collection}.spectra")[0][0]
                   if _table_exists(f"{s.collection}.spectra") else None)
        rows.append(T.tr(**{"data-survey": s.key})[
            T.td[T.a(href=page_path("monitor", survey=s.key))[s.label]],
            T.td[s.name], T.td[s.collection],
            T.td(class_="n", **{"data-count": "obs"})[_text(obs[0])],
            T.td(class_="n", **{"data-count": "completed"})[_text(obs[1])],
            T.td(class_="n", **{"data-count": "spectra"})[_text(spectra)],
            T.td[_vo_links(s)]])
    return T.table(class_="counts", id="survey-summary")[
        T.thead[T.tr[[T.th[h] for h in ("survey", "name", "TAP schema", "OBs", "completed",
                                         "spectra", "VO services")]]],
        T.tbody[rows]]


# ---------------------------------------------------------------- the OB monitor

def _monitor_sql(survey: Survey, filt: MonitorFilter) -> tuple[str, dict[str, Any]]:
    columns = ", ".join(c for _, c in MONITOR_COLUMNS)
    where, args = [], {}
    for column in ("field", "night", "status", "mode"):
        value = getattr(filt, column)
        if value is not None:
            where.append(f"{column} = %({column})s")
            args[column] = value
    sql = (f"SELECT '{survey.key}' AS survey, {columns}, field, mode"
           f" FROM {survey.collection}.obs_blocks"
           + (" WHERE " + " AND ".join(where) if where else ""))
    return sql, args


def monitor_rows(filt: MonitorFilter) -> list[tuple[Any, ...]]:
    """(survey, talk's columns..., field, mode) of the OBs the filter selects, newest first."""
    parts, args = [], {}
    for survey in _collections("obs_blocks", filt.survey):
        sql, args = _monitor_sql(survey, filt)
        parts.append(sql)
    if not parts:
        return []
    return _query(" UNION ALL ".join(f"({p})" for p in parts)
                  + f" ORDER BY night DESC, survey, ob_id LIMIT {MAX_ROWS + 1}", args)


def _distinct(column: str) -> list[Any]:
    values: set[Any] = set()
    for survey in _collections("obs_blocks"):
        values |= {r[0] for r in _query(
            f"SELECT DISTINCT {column} FROM {survey.collection}.obs_blocks"
            f" WHERE {column} IS NOT NULL")}
    return sorted(values)


def _monitor_form(filt: MonitorFilter) -> Tag:
    return T.form(id="monitor-form", method="get", action=page_path("monitor"),
                  class_="filters")[
        T.label(for_="f-survey")["Survey"],
        T.select(id="f-survey", name="survey")[_survey_options(filt.survey)],
        T.label(for_="f-field")["Field"],
        T.select(id="f-field", name="field")[_options(_distinct("field"), filt.field,
                                                      "all fields")],
        T.label(for_="f-night")["Night"],
        T.select(id="f-night", name="night")[_options(_distinct("night"), filt.night,
                                                      "all nights")],
        T.label(for_="f-status")["Status"],
        T.select(id="f-status", name="status")[_options(STATUSES, filt.status, "any status")],
        T.label(for_="f-mode")["Mode"],
        T.select(id="f-mode", name="mode")[_options(MODES, filt.mode, "any mode")],
        T.input(type="submit", id="monitor-submit", value="Filter")]


def monitor_page(filt: MonitorFilter) -> Tag:
    """The OB progress monitor: the talk's columns, each OB linking to its page."""
    rows = monitor_rows(filt)
    cut = len(rows) > MAX_ROWS
    rows = rows[:MAX_ROWS]
    body = []
    for survey, *values, field, mode in rows:
        record = dict(zip([c for _, c in MONITOR_COLUMNS], values, strict=True))
        cells = []
        for _, column in MONITOR_COLUMNS:
            value = record[column]
            if column == "ob_id":
                cells.append(T.td(**{"data-col": column, "data-value": str(value)})[
                    T.a(href=page_path("ob", survey=survey, ob_id=value), class_="oblink")[
                        str(value)]])
            elif column == "status":
                cells.append(T.td(**{"data-col": column, "data-value": str(value)})[
                    T.span(class_=f"status status-{value}")[str(value).capitalize()]])
            elif column == "author" and value:
                cells.append(T.td(**{"data-col": column, "data-value": str(value)})[
                    T.a(href=f"mailto:{value}")[str(value)]])
            else:
                cells.append(_cell(column, value))
        body.append(T.tr(class_="data", **{"data-survey": survey, "data-ob": str(record["ob_id"]),
                                           "data-field": str(field), "data-mode": str(mode)})[
            T.td(**{"data-col": "survey"})[_survey(survey).label], cells])
    chosen = [f"{k} {v}" for k, v in vars(filt).items() if v is not None]
    return T.transparent[
        portal_nav("monitor"),
        T.section(class_="panel", id="filter")[
            T.h2["Observing block filter options"], _monitor_form(filt)],
        T.p(class_="subtitle")[
            T.span(id="matched")[str(len(rows))], " observing blocks",
            (" (" + ", ".join(chosen) + ")") if chosen else " (all surveys)",
            f"; the first {MAX_ROWS} are shown" if cut else ""],
        T.table(class_="results", id="monitor")[
            T.thead[T.tr[T.th["Survey"], [T.th[h] for h, _ in MONITOR_COLUMNS]]],
            T.tbody[body]]]


# ---------------------------------------------------------------- one OB

_OB_COLUMNS = ("ob_id", "ob_name", "field", "night", "mjd_obs", "proc_template",
               "obs_template", "mode", "binning", "made", "n_targets", "n_sky",
               "n_unallocated", "author", "trimester", "status", "ra", "dec", "airmass",
               "seeing", "exptime", "n_exposures", "grating", "setting", "resolution",
               "em_min", "em_max", "snr_median", "product_file", "release_date")


def ob_row(survey: str, ob_id: int) -> dict[str, Any]:
    """The OB's ``obs_blocks`` row; an unknown OB is a 404."""
    from gavo import svcs

    s = _survey(survey)
    rows = (_query(f"SELECT {', '.join(_OB_COLUMNS)} FROM {s.collection}.obs_blocks"
                   " WHERE ob_id = %(ob)s", {"ob": ob_id})
            if _table_exists(f"{s.collection}.obs_blocks") else [])
    if not rows:
        raise svcs.UnknownURI(f"No OB {ob_id} in the {s.label} archive.")
    return dict(zip(_OB_COLUMNS, rows[0], strict=True))


def ob_title(survey: str, ob_id: int) -> str:
    """The per-OB page's title."""
    row = ob_row(survey, ob_id)
    return f"{_survey(survey).label} OB {ob_id} · {row['ob_name']}"


def _kv(label: str, column: str, value: Any, fmt: str | None = None) -> Tag:
    return T.tr(**{"data-col": column})[T.th[label],
                                        T.td(class_="value", **{"data-value": _text(value)})[
                                            _text(value, fmt)]]


def _ob_counts(collection: str, ob_id: int) -> dict[str, int]:
    row = _query(
        f"SELECT count(*) FILTER (WHERE obj_type = 'OBJ'),"
        f" count(*) FILTER (WHERE obj_type = 'OBJ' AND fibre_status <> 'OK'),"
        f" count(*) FILTER (WHERE obj_type = 'SKY'),"
        f" count(*) FILTER (WHERE obj_type = 'SKY' AND fibre_status <> 'OK')"
        f" FROM {collection}.targets WHERE ob_id = %(ob)s", {"ob": ob_id})[0]
    return dict(zip(("objects", "objects_dead", "sky", "sky_dead"), row, strict=True))


def ob_page(survey: str, ob_id: int) -> Tag:
    """One OB: the talk's summary (coordinates, file, date, exposure, conditions,
    instrument set-up, allocated fibres) and its targets, each with its spectrum."""
    s = _survey(survey)
    row = ob_row(survey, ob_id)
    has_targets = _table_exists(f"{s.collection}.targets")
    counts = (_ob_counts(s.collection, ob_id) if has_targets
              else dict.fromkeys(("objects", "objects_dead", "sky", "sky_dead"), 0))
    product = str(row["product_file"] or "")
    file_cell: Any = "–"
    if product:
        file_cell = T.a(href=_product_url(product), id="ob-file")[Path(product).name]
    summary = T.table(class_="keyvalue", id="ob-summary")[
        T.tr(**{"data-col": "coords"})[T.th["Coordinates"], T.td(class_="value", id="coords")[
            sexagesimal(row["ra"], row["dec"]) if row["ra"] is not None else "–"]],
        T.tr(**{"data-col": "product_file"})[T.th["File name"],
                                             T.td(class_="value")[file_cell]],
        _kv("OB ID", "ob_id", row["ob_id"]),
        _kv("OB name", "ob_name", row["ob_name"]),
        _kv("Field", "field", row["field"]),
        _kv("Night", "night", row["night"]),
        T.tr(**{"data-col": "mjd_obs"})[T.th["Date of observation"],
                                        T.td(class_="value")[_mjd_iso(row["mjd_obs"])]],
        _kv("Exposure time [s]", "exptime", row["exptime"], ".1f"),
        _kv("Exposures", "n_exposures", row["n_exposures"]),
        _kv("Airmass", "airmass", row["airmass"], ".2f"),
        _kv("Seeing [arcsec]", "seeing", row["seeing"], ".2f"),
        _kv("Status", "status", row["status"])]
    setup = T.table(class_="keyvalue", id="ob-setup")[
        _kv("Grating", "grating", row["grating"]),
        _kv("Setting", "setting", row["setting"]),
        _kv("Resolution (R)", "resolution", row["resolution"], ".0f"),
        _kv("Mode", "mode", row["made"]),
        T.tr(**{"data-col": "em"})[T.th["Wavelength range [nm]"], T.td(class_="value")[
            f"{row['em_min'] * 1e9:.1f} – {row['em_max'] * 1e9:.1f}"
            if row["em_min"] is not None and row["em_max"] is not None else "–"]],
        T.tr(**{"data-col": "objects"})[T.th["Allocated objects"], T.td(class_="value")[
            T.span(**{"data-count": "objects"})[str(counts["objects"])], " (",
            T.span(**{"data-count": "objects_dead"})[str(counts["objects_dead"])], " dead)"]],
        T.tr(**{"data-col": "sky"})[T.th["Allocated sky"], T.td(class_="value")[
            T.span(**{"data-count": "sky"})[str(counts["sky"])], " (",
            T.span(**{"data-count": "sky_dead"})[str(counts["sky_dead"])], " dead)"]],
        _kv("Unallocated fibres", "n_unallocated", row["n_unallocated"]),
        _kv("Median S/N", "snr_median", row["snr_median"], ".1f"),
        _kv("Templates (PROCTEMP/OBSTEMP)", "templates",
            f"{row['proc_template']} / {row['obs_template']}"),
        _kv("Author", "author", row["author"]),
        _kv("Trimester", "trimester", row["trimester"]),
        _kv("Release date", "release_date", row["release_date"])]
    return T.transparent[
        portal_nav("monitor"),
        T.h2(id="ob-name")[row["ob_name"] or f"OB {ob_id}"],
        T.p(class_="subtitle")[f"{s.label} ({s.name}) · OB {ob_id} · field {row['field']}"
                               f" · night {row['night']}"],
        T.div(class_="grid2")[
            T.section(class_="panel")[T.h2["Observation"], summary],
            T.section(class_="panel")[T.h2["Instrument and fibres"], setup]],
        T.section(class_="panel", id="targets-panel")[
            T.h2["Targets"], _targets_table(s, ob_id) if has_targets else T.p["No targets."]]]


def _targets_table(survey: Survey, ob_id: int) -> Tag:
    c = survey.collection
    spectra = _table_exists(f"{c}.spectra")
    join = (f" LEFT OUTER JOIN {c}.spectra AS s ON s.spectrum_id = t.spectrum_id"
            if spectra else "")
    extra = "s.obs_publisher_did" if spectra else "NULL"
    rows = _query(
        f"SELECT t.fibre, t.target_name, t.obj_type, t.ra, t.dec, t.mag_g, t.source_id,"
        f" t.fibre_status, t.snr, t.spectrum_id, {extra} FROM {c}.targets AS t{join}"
        f" WHERE t.ob_id = %(ob)s ORDER BY t.obj_type, t.fibre", {"ob": ob_id})
    body = []
    for fibre, name, kind, ra, dec, mag, source_id, status, snr, spectrum_id, did in rows:
        body.append(T.tr(class_="data", **{"data-fibre": str(fibre), "data-type": kind,
                                           "data-spectrum": spectrum_id or ""})[
            _cell("fibre", fibre),
            _cell("target_name", name or ("sky" if kind == "SKY" else "")),
            T.td(**{"data-col": "coords"})[
                sexagesimal(ra, dec) if ra is not None and dec is not None else "–"],
            _cell("mag_g", mag, ".2f"),
            _cell("source_id", source_id),
            _cell("obj_type", kind),
            _cell("fibre_status", status),
            _cell("snr", snr, ".1f"),
            T.td(class_="links")[
                _spectrum_links(survey, spectrum_id, did) if spectrum_id else "–"]])
    return T.table(class_="results", id="targets")[
        T.thead[T.tr[[T.th[h] for h in ("Fibre", "Name", "Coordinates", "Magnitude (G)",
                                         "Gaia source_id", "Type", "Fibre status", "S/N",
                                         "Spectrum")]]],
        T.tbody[body]]


# ---------------------------------------------------------------- objects

_SPECTRUM_COLUMNS = ("spectrum_id", "obs_publisher_did", "target_name", "source_id", "ra",
                     "dec", "ob_id", "setting", "snr", "rv", "rv_error", "file")


def object_rows(q: ObjectQuery) -> list[tuple[Any, ...]]:
    """(survey, spectrum columns...) of the spectra the object search finds."""
    if q.empty:
        return []
    parts = []
    args: dict[str, Any] = {}
    if q.name is not None:
        cond = ("(upper(target_name) = upper(%(name)s) OR source_id = %(sid)s)"
                if q.source_id is not None else "upper(target_name) = upper(%(name)s)")
        args.update(name=q.name, sid=q.source_id)
    else:
        cond = ("spoint(radians(ra), radians(dec)) <@ scircle(spoint(radians(%(ra)s),"
                " radians(%(dec)s)), radians(%(r)s))")
        args.update(ra=q.ra, dec=q.dec, r=q.radius_arcsec / 3600)
    for s in _collections("spectra", q.survey):
        parts.append(f"(SELECT '{s.key}' AS survey, {', '.join(_SPECTRUM_COLUMNS)}"
                     f" FROM {s.collection}.spectra WHERE {cond})")
    if not parts:
        return []
    return _query(" UNION ALL ".join(parts)
                  + f" ORDER BY survey, spectrum_id LIMIT {MAX_ROWS + 1}", args)


def _objects_form(q: ObjectQuery) -> Tag:
    pos = f"{q.ra:.6f},{q.dec:.6f}" if q.ra is not None else ""
    return T.form(id="objects-form", method="get", action=page_path("objects"),
                  class_="filters")[
        T.label(for_="o-survey")["Survey"],
        T.select(id="o-survey", name="survey")[_survey_options(q.survey)],
        T.label(for_="o-name")["Name"],
        T.input(type="text", id="o-name", name="name", value=q.name or ""),
        T.label(for_="o-pos")["or position"],
        T.input(type="text", id="o-pos", name="pos", value=pos),
        T.label(for_="o-radius")["radius [arcsec]"],
        T.input(type="text", id="o-radius", name="radius", value=f"{q.radius_arcsec:g}"),
        T.input(type="submit", id="objects-submit", value="Search"),
        T.p(class_="help")["Name: the survey's CNAME (e.g. 15280350-5042340) or a Gaia"
                           " source_id; position: RA,Dec in degrees or sexagesimal (ICRS)."]]


def objects_page(q: ObjectQuery) -> Tag:
    """The object search: the form, the spectra found and their plots."""
    rows = object_rows(q)
    cut = len(rows) > MAX_ROWS
    rows = rows[:MAX_ROWS]
    body, plots = [], []
    for survey, *values in rows:
        r = dict(zip(_SPECTRUM_COLUMNS, values, strict=True))
        s = _survey(survey)
        body.append(T.tr(class_="data", **{"data-survey": survey,
                                           "data-spectrum": r["spectrum_id"]})[
            T.td[s.label],
            _cell("spectrum_id", r["spectrum_id"]),
            _cell("target_name", r["target_name"]),
            _cell("source_id", r["source_id"]),
            T.td(**{"data-col": "coords"})[sexagesimal(r["ra"], r["dec"])],
            T.td(**{"data-col": "ob_id", "data-value": str(r["ob_id"])})[
                T.a(href=page_path("ob", survey=survey, ob_id=r["ob_id"]), class_="oblink")[
                    str(r["ob_id"])]],
            _cell("setting", r["setting"]),
            _cell("snr", r["snr"], ".1f"),
            _cell("rv", r["rv"], ".2f"),
            _cell("rv_error", r["rv_error"], ".2f"),
            T.td(class_="links")[_spectrum_links(s, r["spectrum_id"], r["obs_publisher_did"])]])
        if len(plots) < MAX_PLOTS:
            plots.append(T.figure(class_="plot")[
                T.img(src=_plot_url(survey, r["spectrum_id"]), class_="spectrum-plot",
                      alt=f"Spectrum {r['spectrum_id']}", **{"data-spectrum": r["spectrum_id"]}),
                T.figcaption[f"{r['spectrum_id']} (S/N {_text(r['snr'], '.1f')})"]])
    result: Any = ""
    if not q.empty:
        what = (f"name {q.name}" if q.name is not None else
                f"{q.radius_arcsec:g}″ around {sexagesimal(q.ra, q.dec)}")
        result = T.transparent[
            T.p(class_="subtitle")[T.span(id="matched")[str(len(rows))], f" spectra ({what})",
                                   f"; the first {MAX_ROWS} are shown" if cut else ""],
            T.table(class_="results", id="objects")[
                T.thead[T.tr[[T.th[h] for h in (
                    "Survey", "Spectrum", "Name", "Gaia source_id", "Coordinates", "OB",
                    "Setting", "S/N", "RV [km/s]", "σ(RV)", "Links")]]],
                T.tbody[body]],
            T.div(class_="plots", id="plots")[plots]]
    return T.transparent[
        portal_nav("objects"),
        T.section(class_="panel", id="search")[T.h2["Search for objects"], _objects_form(q)],
        result]


def spectrum_file(survey: str, spectrum_id: str) -> Path:
    """The per-object product of a spectrum (for its plot); unknown is a 404."""
    from gavo import base, svcs

    s = _survey(survey)
    rows = (_query(f"SELECT file FROM {s.collection}.spectra WHERE spectrum_id = %(id)s",
                   {"id": spectrum_id}) if _table_exists(f"{s.collection}.spectra") else [])
    if not rows or not rows[0][0]:
        raise svcs.UnknownURI(f"No spectrum {spectrum_id!r} in the {s.label} archive.")
    return Path(base.getConfig("inputsDir")) / rows[0][0]


# ---------------------------------------------------------------- processing status

def run_log_path(run_id: str) -> Path | None:
    """The record a pipeline run left: its log (``<var>/logs/runs/<id>.log``) if it wrote
    one, else the summary the runners write beside the products
    (``products/<survey>/runs/<id>.json``: products, failures, timing); None if neither."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", run_id):
        return None
    settings = Settings.from_env()
    candidates = [settings.var / "logs" / "runs" / f"{run_id}.log"] + [
        settings.data_dir / "products" / s.key / "runs" / f"{run_id}.json"
        for s in _registry()]
    return next((path for path in candidates if path.is_file()), None)


_RUN_SQL = """
SELECT r.run_id, r.pipeline, r.started, r.finished, r.status, r.scheduler,
  r.n_ok, r.n_failed, r.n_resumed,
  (SELECT count(*) FROM ledger.products p WHERE p.run_id = r.run_id AND p.status = 'ok'),
  (SELECT count(*) FROM ledger.products p WHERE p.run_id = r.run_id AND p.status = 'failed'),
  (SELECT count(*) FROM ledger.products p WHERE p.run_id = r.run_id AND p.status = 'resumed'),
  (SELECT count(DISTINCT k) FROM ledger.products p, jsonb_object_keys(p.inputs) k
     WHERE p.run_id = r.run_id),
  (SELECT count(*) FROM ledger.products p WHERE p.run_id = r.run_id
     AND coalesce(p.qc->>'qcstatus', p.qc->>'status') = 'pass'),
  (SELECT count(*) FROM ledger.products p WHERE p.run_id = r.run_id
     AND coalesce(p.qc->>'qcstatus', p.qc->>'status') = 'fail'),
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY (p.qc->>'seeing_arcsec')::float)
     FROM ledger.products p WHERE p.run_id = r.run_id AND p.qc ? 'seeing_arcsec'),
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY (p.qc->>'snr')::float)
     FROM ledger.products p WHERE p.run_id = r.run_id AND p.qc ? 'snr')
FROM ledger.runs r {where} ORDER BY r.started DESC, r.run_id
"""

_RUN_COLUMNS = ("run_id", "pipeline", "started", "finished", "status", "scheduler",
                "reported_ok", "reported_failed", "reported_resumed", "n_ok", "n_failed",
                "n_resumed", "n_inputs", "qc_pass", "qc_fail", "seeing", "snr")


def _duration(started: datetime.datetime | None, finished: datetime.datetime | None) -> str:
    if started is None or finished is None:
        return "–"
    seconds = (finished - started).total_seconds()
    minutes, sec = divmod(round(seconds), 60)
    return f"{minutes:d}m{sec:02d}s" if minutes else f"{seconds:.1f}s"


def _median_qc(run: Mapping[str, Any], survey: Survey | None) -> str:
    """The run's median S/N (spectra) or seeing (images), the survey's headline QC."""
    seeing = f"seeing {run['seeing']:.2f}″" if run["seeing"] is not None else None
    snr = f"S/N {run['snr']:.1f}" if run["snr"] is not None else None
    first, second = (snr, seeing) if survey and survey.kind == "spectroscopy" else (seeing, snr)
    return first or second or "–"


def processing_page(pipeline: str | None) -> Tag:
    """The pipeline runs (imaging and spectroscopic) with their counts, QC and failures."""
    kinds = {s.key: s for s in _registry()}
    if not (_table_exists("ledger.runs", admin=True)
            and _table_exists("ledger.products", admin=True)):
        runs, failures = [], []
    else:
        where = "WHERE r.pipeline = %(p)s" if pipeline else ""
        runs = _query(_RUN_SQL.format(where=where), {"p": pipeline}, admin=True)
        failures = _query(
            "SELECT run_id, pipeline, product, kind, message, finished FROM ledger.products"
            " WHERE status = 'failed'" + (" AND pipeline = %(p)s" if pipeline else "")
            + " ORDER BY finished DESC, id DESC LIMIT 200", {"p": pipeline}, admin=True)
    body = []
    for values in runs:
        r = dict(zip(_RUN_COLUMNS, values, strict=True))
        survey = kinds.get(r["pipeline"])
        log = run_log_path(r["run_id"])
        body.append(T.tr(class_="data", **{"data-run": r["run_id"],
                                           "data-pipeline": r["pipeline"]})[
            _cell("run_id", r["run_id"]),
            T.td(**{"data-col": "pipeline", "data-value": r["pipeline"]})[
                survey.label if survey else r["pipeline"]],
            T.td(**{"data-col": "kind"})[survey.kind if survey else "–"],
            T.td(**{"data-col": "started"})[r["started"].strftime("%Y-%m-%d %H:%M:%S")],
            T.td(**{"data-col": "duration"})[_duration(r["started"], r["finished"])],
            _cell("status", r["status"]),
            _cell("n_inputs", r["n_inputs"]),
            _cell("n_ok", r["n_ok"]),
            _cell("n_failed", r["n_failed"], class_="fail" if r["n_failed"] else ""),
            _cell("n_resumed", r["n_resumed"]),
            T.td(**{"data-col": "reported"})[
                "–" if r["reported_ok"] is None else
                f"{r['reported_ok']} / {r['reported_failed']} / {r['reported_resumed']}"],
            T.td(**{"data-col": "qc"})[
                T.span(class_="qc-pass", **{"data-count": "qc_pass"})[str(r["qc_pass"])], " / ",
                T.span(class_="qc-fail", **{"data-count": "qc_fail"})[str(r["qc_fail"])]],
            T.td(**{"data-col": "qc_median"})[_median_qc(r, survey)],
            T.td(**{"data-col": "log"})[
                T.a(href=page_path("log", run_id=r["run_id"]), class_="loglink")["log"]
                if log else "–"]])
    fail_items = [T.tr(class_="failure", **{"data-run": run_id})[
        T.td[finished.strftime("%Y-%m-%d %H:%M:%S")], T.td[run_id], T.td[pipe],
        T.td[product], T.td[kind], T.td(class_="message")[message or "–"]]
        for run_id, pipe, product, kind, message, finished in failures]
    pipelines = [T.option(value="")["all pipelines"]] + [
        T.option(value=s.key, **({"selected": "selected"} if s.key == pipeline else {}))[
            f"{s.label} ({s.kind})"] for s in _registry()]
    return T.transparent[
        portal_nav("processing"),
        T.section(class_="panel", id="filter")[
            T.form(id="processing-form", method="get", action=page_path("processing"),
                   class_="filters")[
                T.label(for_="p-pipeline")["Pipeline"],
                T.select(id="p-pipeline", name="pipeline")[pipelines],
                T.input(type="submit", id="processing-submit", value="Show")]],
        T.p(class_="subtitle")[T.span(id="matched")[str(len(runs))], " pipeline runs",
                               f" of {pipeline}" if pipeline else "", ", newest first"],
        T.p(class_="help")[
            "Inputs: distinct input files of the run's products; made, failed, resumed: the"
            " product records the run wrote to the ledger (resumed: found complete, not made"
            " again); the run's count: what the run reported when it ended (none while it"
            " runs, or when it was stopped); QC: the products' verdicts, and the median"
            " seeing of the images or S/N of the spectra the run made or kept."],
        T.table(class_="results", id="runs")[
            T.thead[T.tr[[T.th[h] for h in (
                "Run", "Survey", "Kind", "Started (UTC)", "Duration", "Status", "Inputs",
                "Made", "Failed", "Resumed", "Run's count (made / failed / resumed)",
                "QC pass / fail", "Median QC", "Log")]]],
            T.tbody[body]],
        T.section(class_="panel", id="failures")[
            T.h2["Failures"],
            T.table(class_="results")[
                T.thead[T.tr[[T.th[h] for h in ("When", "Run", "Pipeline", "Product", "Kind",
                                                 "Message")]]],
                T.tbody[fail_items]] if fail_items else T.p["No failures recorded."]]]


# ---------------------------------------------------------------- help

def help_page() -> Tag:
    """How to use the archive, and per survey: its products, naming and error convention."""
    surveys = []
    for s in _spectro_surveys():
        facts = FORMATS.get(s.collection, {})
        tables = [T.li[T.code[f"{s.collection}.{t}"], f" – {what}"]
                  for t, what in (("obs_blocks", "one row per observing block"),
                                  ("targets", "one row per allocated fibre (objects and sky)"),
                                  ("spectra", "one row per object spectrum (SSA, SODA)"),
                                  ("raw", "one row per raw exposure (ObsCore calib_level 0)"))]
        surveys.append(T.section(class_="panel", id=f"formats-{s.key}",
                                 **{"data-survey": s.key})[
            T.h2[f"{s.label}: {s.name}"],
            T.table(class_="keyvalue")[
                T.tr[T.th["Instrument"], T.td[facts.get("instrument", s.camera)]],
                T.tr[T.th["Per-OB product"], T.td[facts.get("per_ob", "–")]],
                T.tr[T.th["Per-object product"], T.td[facts.get("per_object", "–")]],
                T.tr[T.th["Naming"], T.td[facts.get("naming", "–")]],
                T.tr(**{"data-col": "errors"})[T.th["Flux errors"],
                                               T.td[facts.get("errors", "–")]],
                T.tr[T.th["Programme"], T.td[s.prog_id]]],
            T.h3["Tables (TAP)"], T.ul[tables]])
    return T.transparent[
        portal_nav("help"),
        T.section(class_="panel", id="usage")[
            T.h2["Using the archive"],
            T.ul(class_="links")[
                T.li[T.a(href=page_path("monitor"))["Observations"],
                     " – the OB progress monitor: every observing block of every survey, with"
                     " its night, templates, mode, targets, programme, author and status."
                     " Filter by survey, field, night, status and mode; an OB's number opens"
                     " its page (pointing, conditions, set-up, fibres, targets and spectra)."],
                T.li[T.a(href=page_path("objects"))["Objects"],
                     " – find the spectra of an object by its name (CNAME or Gaia source_id)"
                     " or around a position, with a plot of each."],
                T.li[T.a(href=page_path("processing"))["Processing"],
                     " – the pipeline runs of all surveys, imaging and spectroscopic."],
                T.li["Scripts and VO tools: TAP (", T.code["ivoa.obscore"],
                     " and the tables below), SSA and DataLink; the spectra are FITS files"
                     " with the survey's own layout."]]],
        T.section(class_="panel", id="formats")[
            T.h2["Spectra data and formats"],
            T.p["Wavelengths in the tables are metres (ObsCore, SSA), in the files Ångström"
                " (vacuum); positions are ICRS degrees; times MJD (UTC).  Each survey keeps"
                " its own file format and error convention; the services (SSA, SODA, the"
                " plots) convert inverse variance to 1σ errors on reading."]],
        surveys]


# ---------------------------------------------------------------- the services' entry points
# (resdir/portal/q.rd: each page's render function gets the core's parsed parameters)

def home_args(args: Mapping[str, Any]) -> Tag:
    """The home page (it takes no parameters)."""
    return home_page()


def help_args(args: Mapping[str, Any]) -> Tag:
    """The help page (it takes no parameters)."""
    return help_page()


def monitor_args(args: Mapping[str, Any]) -> Tag:
    """The OB monitor for the request's filter."""
    return monitor_page(monitor_filter(args))


def ob_args(args: Mapping[str, Any]) -> Tag:
    """The page of the request's OB."""
    return ob_page(*ob_key(args))


def objects_args(args: Mapping[str, Any]) -> Tag:
    """The object search for the request's name or position."""
    return objects_page(object_query(args))


def raw_args(args: Mapping[str, Any]) -> Tag:
    """The raw-data page (:mod:`casuvo.dachs.rawpage`) for the request's selection."""
    from casuvo.dachs import rawpage

    return rawpage.raw_args(args)


def mydata_args(args: Mapping[str, Any]) -> Tag:
    """The logged-in user's page (:mod:`casuvo.dachs.mydata`); anonymous: 401."""
    from casuvo.dachs import mydata

    return mydata.mydata_args(args)


def processing_args(args: Mapping[str, Any]) -> Tag:
    """The processing status, for one pipeline or all."""
    return processing_page(processing_filter(args))


def plot(args: Mapping[str, Any]) -> tuple[str, bytes]:
    """(``image/png``, the plot) of the request's spectrum (``survey``, ``spectrum_id``)."""
    from casuvo.dachs import spectroplot

    survey = _check_survey(_value(args, "survey"))
    spectrum_id = _check_text(_value(args, "spectrum_id"), "spectrum_id", 200)
    if survey is None or spectrum_id is None:
        raise _error("survey and spectrum_id are required", "spectrum_id")
    path = spectrum_file(survey, spectrum_id)
    return "image/png", spectroplot.plot_png(path, f"{_survey(survey).label} {spectrum_id}")


def run_log(args: Mapping[str, Any]) -> tuple[str, bytes]:
    """(``text/plain``, the log) of a pipeline run; a run without a log is a 404."""
    from gavo import svcs

    run_id = _value(args, "run_id") or ""
    path = run_log_path(run_id)
    if path is None:
        raise svcs.UnknownURI(f"No log of run {run_id[:64]!r}.")
    kind = "application/json" if path.suffix == ".json" else "text/plain;charset=utf-8"
    return kind, path.read_bytes()

# SPDX-License-Identifier: BSD-3-Clause
"""The image archive's web pages: query by position, one image, a collection's overview.

The pages are DaCHS services in ``resdir/common/images.rd`` (fed into each
image collection's RD) rendered from the templates in
``services/templates/casuvo/``; everything those templates show beyond
DaCHS's own form and result table is built here, as twisted.web stan, from
the image's database row, its FITS file (through the same SODA descriptor
DataLink uses, so the page and DataLink never disagree about an image's
links) and the collection's tables.  The RDs only hold one-line shims
(``customRF``, ``formatter``, ``phraseMaker``) that call these functions.

Every value a person (or a test) reads off a page sits in an element with a
``data-key`` (FITS keyword), ``data-col`` (database column) or ``data-*``
count attribute, so the pages can be checked against the database and the
files without scraping prose.
"""

from __future__ import annotations

import functools
import math
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.web.template import Tag
from twisted.web.template import tags as T  # noqa: N812 -- DaCHS's and twisted's spelling

from casuvo.archive.endpoints import services
from casuvo.config import Settings
from casuvo.surveys.registry import Registry, load_registry

__all__ = ["FORM_POSITION_KEY", "HEADER_SUMMARY", "QC_COLUMNS", "check_form_position",
           "datalink_link", "image_link", "image_page", "image_page_path", "image_title",
           "overview", "qc_badge", "qc_value", "site_banner", "site_footer", "site_style",
           "thumbnail"]

#: the SIA 1.0 form's position field (``//siap#humanInput``)
FORM_POSITION_KEY = "hPOS"

#: (keyword, label) of the header summary; looked up in the image extension, then primary
HEADER_SUMMARY: tuple[tuple[str, str], ...] = (
    ("OBJECT", "Survey field"),
    ("FILTER", "Filter"),
    ("DATE-OBS", "Start of observation"),
    ("MJD-OBS", "MJD start"),
    ("MJD-END", "MJD end"),
    ("TEXPTIME", "Total exposure time [s]"),
    ("NCOMBINE", "Exposures combined"),
    ("EXTNAME", "Detector"),
    ("NAXIS1", "Width [pix]"),
    ("NAXIS2", "Height [pix]"),
    ("CRVAL1", "Reference RA [deg]"),
    ("CRVAL2", "Reference Dec [deg]"),
    ("MAGZPT", "Zero point [mag]"),
    ("MAGZRR", "Zero-point error [mag]"),
    ("SEEING", "Seeing [pix]"),
    ("PSF_FWHM", "PSF FWHM [arcsec]"),
    ("ELLIPTIC", "Ellipticity"),
    ("SKYLEVEL", "Sky level [adu]"),
    ("SKYNOISE", "Sky noise [adu]"),
    ("ABMAGLIM", "Depth, 5σ AB [mag]"),
    ("STDCRMS", "Astrometric RMS [arcsec]"),
    ("OBSTATUS", "OB status"),
    ("QCSTATUS", "QC verdict"),
    ("PROG_ID", "Programme"),
)

#: (column, label, decimals) of the QC panel and the search results
QC_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("obsfwhm", "Seeing [arcsec]", 2),
    ("ellipticity", "Ellipticity", 3),
    ("skynoise", "Sky noise [adu]", 2),
    ("magzpt", "Zero point [mag]", 3),
    ("magzrr", "Zero-point error [mag]", 3),
    ("abmaglim", "Depth, 5σ AB [mag]", 2),
    ("astrms", "Astrometric RMS [arcsec]", 3),
)

#: default radius of the cutout form (degrees): a 30″ circle
CUTOUT_RADIUS_DEG = 30 / 3600


# ---------------------------------------------------------------- the collections

@functools.cache
def _registry() -> Registry:
    """The surveys of the server's settings (its ``CASUVO_*``), read once per process.

    Like the RDs, a survey added to the registry appears on the pages after a
    server restart.
    """
    return load_registry(Settings.from_env())


@functools.cache
def _services() -> dict[str, dict[str, str]]:
    """Service paths of every collection (:func:`casuvo.archive.endpoints.services`)."""
    return services(_registry())


# ---------------------------------------------------------------- the site's look

@functools.cache
def _stylesheet() -> str:
    from gavo.svcs import common

    return Path(common.getTemplatePath("casuvo/archive.css")).read_text()


def site_style(tag: Tag) -> Tag:
    """Fill the page's ``<style>`` with the data centre's stylesheet (one file for all pages).

    Inlined rather than linked so that the look travels with the templates
    (``casuvo up`` installs ``services/templates/`` only); the stylesheet has
    no characters that XML text escaping would change.
    """
    return tag(type="text/css")[_stylesheet()]


def _site_path(path: str) -> str:
    from gavo import base

    return base.makeSitePath("/" + path.lstrip("/"))


def _server_url() -> str:
    from gavo import base

    return str(base.getConfig("web", "serverURL")).rstrip("/")


def _collections() -> list[str]:
    """Image collections with archive pages (the registry's imaging surveys), sorted."""
    return sorted(s.collection for s in _registry().of_kind("imaging"))


def site_banner(service: Any) -> Tag:
    """The header bar of every archive page: the data centre and its collections' pages."""
    from gavo import base

    nav: list[Any] = []
    pages = _services()["pages"]
    for collection in _collections():
        label = _registry().by_collection(collection).label
        nav += [T.span(class_="group")[label],
                T.a(href=_site_path(pages[f"{collection}.overview"]),
                    **{"data-nav": f"{collection}.overview"})["overview"],
                T.a(href=_site_path(pages[f"{collection}.search"]),
                    **{"data-nav": f"{collection}.search"})["image search"]]
    if "spectra.home" in pages:
        nav += [T.span(class_="group")["Spectra"],
                *[T.a(href=_site_path(pages[f"spectra.{key}"]), **{"data-nav": f"spectra.{key}"})[
                    label] for key, label in (("home", "archive"), ("monitor", "OB monitor"),
                                              ("objects", "objects"))]]
    nav += [T.span(class_="group")["All"],
            T.a(href=_site_path("/__system__/adql/query/form"))["ADQL query"],
            T.a(href=_site_path("/tap/examples"))["TAP examples"]]
    for key, label in (("raw", "raw data"), ("processing", "processing")):
        if key in pages:
            nav.append(T.a(href=_site_path(pages[key]), **{"data-nav": key})[label])
    if service is not None:
        nav.append(T.a(href=service.getURL("info"))["service info"])
    return T.header(class_="site")[
        T.a(class_="sitename", href=_site_path("/"))[str(base.getConfig("web", "sitename"))],
        T.nav[nav]]


def site_footer() -> Tag:
    """The footer of every archive page: whom to write to, and the terms of use."""
    from gavo import base

    email = str(base.getConfig("maintainerAddress") or "")
    parts: list[Any] = ["casuvo survey data centre · images, catalogues and spectra"
                        " through the Virtual Observatory"]
    if email:
        parts += [" · ", T.a(href=f"mailto:{email}")["contact the archive team"]]
    return T.footer(class_="site")[parts]


# ---------------------------------------------------------------- URLs of the pages

def image_page_path(schema: str, accref: str) -> str:
    """The server path of the page of the image ``accref`` in collection ``schema``."""
    return f"{_services()['pages'][f'{schema}.image']}/{urllib.parse.quote(accref, safe='/')}"


def _preview_url(accref: str) -> str:
    from gavo.protocols import products

    return str(products.makeProductLink(accref)) + "?preview=True"


def _schema(rd: Any) -> str:
    return str(rd.schema)


# ---------------------------------------------------------------- search-result cells

def thumbnail(accref: str | None, rd: Any) -> Any:
    """A result-table cell: the image's PNG preview, linking to the image's page."""
    if not accref:
        return ""
    return T.a(href=_site_path(image_page_path(_schema(rd), accref)), class_="thumblink")[
        T.img(src=_preview_url(accref), class_="thumb", alt=f"Preview of {accref}",
              **{"data-accref": accref})]


def image_link(accref: str | None, rd: Any) -> Any:
    """A result-table cell: ``file [extension]``, linking to the image's page."""
    if not accref:
        return ""
    path, ext = accref.rsplit("/", 1)
    return T.a(href=_site_path(image_page_path(_schema(rd), accref)), class_="imagelink",
               **{"data-accref": accref, "data-filename": path.rsplit("/", 1)[-1],
                  "data-extnum": ext})[f"{path.rsplit('/', 1)[-1]} [{ext}]"]


def datalink_link(pub_did: str | None, rd: Any) -> Any:
    """A result-table cell: the image's DataLink document."""
    if not pub_did:
        return ""
    url = (_site_path(f"{_schema(rd)}/q/dl/dlmeta") + "?ID="
           + urllib.parse.quote(pub_did, safe=""))
    return T.a(href=url, class_="dllink", **{"data-did": pub_did})["DataLink"]


def qc_value(value: float | None, column: str, decimals: int) -> Any:
    """A QC number rounded to ``decimals`` (the column is named for readers of the page)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return T.span(class_="num missing", **{"data-col": column})["–"]
    return T.span(class_="num", **{"data-col": column})[f"{value:.{decimals}f}"]


def qc_badge(verdict: str | None) -> Any:
    """The QC verdict (pass, fail) as a coloured badge."""
    verdict = (verdict or "").strip()
    if not verdict:
        return ""
    css = "qc-pass" if verdict == "pass" else "qc-fail"
    return T.span(class_=css, **{"data-col": "qcstatus"})[verdict]


# ---------------------------------------------------------------- form input

def check_form_position(pars: Mapping[str, object], key: str = FORM_POSITION_KEY) -> None:
    """Reject a malformed ``RA,DEC`` in the search form before DaCHS asks Sesame.

    DaCHS treats anything it cannot parse as an object name for Simbad's
    Sesame; on a site without (or with slow) internet access that ends in
    "Simbad is offline" after a timeout, which tells the user nothing about
    their typo.  Input that looks like coordinates (digits, signs, commas,
    colons) but is not a valid pair gets a message naming the field here;
    real names still go to Sesame.
    """
    from gavo import base

    text = str(pars.get(key) or "").strip()
    if not text or any(c.isalpha() for c in text):
        return
    try:
        ra, dec = base.parseCooPair(text)
    except ValueError:
        raise base.ValidationError(
            f"{text!r} is not a position: give RA,DEC in degrees (e.g. 194.3,-64.75)"
            " or sexagesimal (12:57:12 -64:45:00)", key) from None
    if not -90 <= dec <= 90 or not -360 <= ra <= 360:
        raise base.ValidationError(
            f"{text!r}: RA must be within [0, 360] and Dec within [-90, 90] degrees", key)


# ---------------------------------------------------------------- one image

def image_title(row: Mapping[str, Any]) -> str:
    """The page title of one image."""
    return f"{row.get('filename')} [{row.get('extnum')}] · {row.get('filtername')}"


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).strip()


def _header_rows(primary: Any, header: Any) -> list[Tag]:
    rows = []
    for key, label in HEADER_SUMMARY:
        source = header if key in header else primary if key in primary else None
        if source is None:
            continue
        rows.append(T.tr(**{"data-key": key})[
            T.th[key],
            T.td(class_="value")[_header_value(source[key])],
            T.td(class_="comment")[label]])
    return rows


def _qc_rows(row: Mapping[str, Any]) -> list[Tag]:
    rows = [T.tr(**{"data-col": "qcstatus"})[T.th["QC verdict"],
                                             T.td(class_="value")[qc_badge(row.get("qcstatus"))]]]
    for column, label, decimals in QC_COLUMNS:
        rows.append(T.tr(**{"data-col": column})[
            T.th[label], T.td(class_="value")[qc_value(row.get(column), column, decimals)]])
    rows.append(T.tr(**{"data-col": "obstatus"})[
        T.th["OB status"], T.td(class_="value")[str(row.get("obstatus") or "")]])
    return rows


def _link_items(links: Iterable[Mapping[str, Any]]) -> list[Tag]:
    items = []
    for link in links:
        local = link.get("localSemantics") or ""
        items.append(T.li(**{"data-semantics": str(link.get("semantics") or ""),
                             "data-local": str(local)})[
            T.a(href=str(link["accessURL"]))[str(link.get("description") or link["accessURL"])],
            T.span(class_="semantics")[f"{link.get('semantics')}"
                                       + (f" · {local}" if local else "")]])
    return items


def _cutout_form(soda_url: str, pub_did: str, ra: float, dec: float) -> Tag:
    circle = f"{ra:.6f} {dec:.6f} {CUTOUT_RADIUS_DEG:.6f}"
    return T.form(id="cutout-form", method="get", action=soda_url)[
        T.input(type="hidden", name="ID", value=pub_did),
        T.label(for_="cutout-circle")["CIRCLE"],
        T.input(type="text", id="cutout-circle", name="CIRCLE", value=circle),
        T.p(class_="help")["Centre RA, Dec and radius, all in degrees (ICRS). The cutout is"
                           " a FITS file with this image's WCS, made by the SODA service."],
        T.input(type="submit", id="cutout-submit", value="Cut out")]


def image_page(row: Mapping[str, Any], service: Any) -> Tag:
    """The body of one image's page: summary, preview, QC, header, links, cutout form."""
    from gavo import svcs
    from gavo.protocols import datalink

    from casuvo.dachs import archive

    schema = _schema(service.rd)
    pub_did = str(row["obs_publisher_did"])
    descriptor = archive.image_descriptor(pub_did, f"products/{schema}/")
    if isinstance(descriptor, datalink.DatalinkFault):
        raise svcs.UnknownURI(f"No image {pub_did} in this collection.")
    links = [link.dlRow for link in archive.image_links(descriptor)]
    links.insert(1, {"accessURL": service.rd.getById("dl").getURL("dlmeta") + "?ID="
                     + urllib.parse.quote(pub_did, safe=""),
                     "description": "DataLink document of this image (all its links)",
                     "semantics": "#this", "localSemantics": "datalink"})
    ra, dec = float(row["centerAlpha"]), float(row["centerDelta"])
    soda_url = service.rd.getById("dl").getURL("dlget")
    return T.transparent[
        T.h1[f"{row['filename']} [{row['extnum']}]"],
        T.p(class_="subtitle")[
            f"{row.get('surveyname')} {row.get('imagetype')} · field {row.get('object')} · "
            f"{row.get('filtername')} · night {row.get('nightobs')} · centre "
            f"{row.get('coords')} ({ra:.5f}, {dec:+.5f})"],
        T.div(class_="grid2")[
            T.div[
                T.section(id="preview", class_="panel")[
                    T.h2["Preview"],
                    T.a(href=_preview_url(str(row["accref"])))[
                        T.img(id="preview-image", class_="preview",
                              src=_preview_url(str(row["accref"])),
                              alt=f"Preview of {row['filename']} [{row['extnum']}]")]],
                T.section(id="cutout", class_="panel")[
                    T.h2["Cutout"], _cutout_form(soda_url, pub_did, ra, dec)],
                T.section(id="qc", class_="panel")[
                    T.h2["Quality control"], T.table(class_="keyvalue")[_qc_rows(row)]]],
            T.div[
                T.section(id="links", class_="panel")[
                    T.h2["Files and links"], T.ul(class_="links")[_link_items(links)],
                    T.p(class_="help")["Dataset ID: ", T.code(id="pubdid")[pub_did]]],
                T.section(id="header-summary", class_="panel")[
                    T.h2["Header summary"],
                    T.table(class_="keyvalue")[
                        _header_rows(descriptor.primaryHeader, descriptor.hdr)]]]]]


# ---------------------------------------------------------------- a collection

def _query(sql: str, args: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    from gavo import base

    with base.getTableConn() as conn:
        return list(conn.query(sql, dict(args or {})))


def _counts_table(table_id: str, key: str, heads: Sequence[str],
                  rows: Iterable[Sequence[Any]]) -> Tag:
    body = []
    for values in rows:
        label, n, npass, nfail = values[:4]
        extra = values[4:]
        body.append(T.tr(**{f"data-{key}": str(label)})[
            T.td(class_="label")[str(label)],
            T.td(class_="n", **{"data-count": "images"})[str(n)],
            T.td(class_="n", **{"data-count": "pass"})[str(npass)],
            T.td(class_="n", **{"data-count": "fail"})[str(nfail)],
            [T.td(class_="n")["–" if v is None else f"{v:.2f}"] for v in extra]])
    return T.table(id=table_id, class_="counts")[
        T.thead[T.tr[[T.th[h] for h in heads]]], T.tbody[body]]


def overview(service: Any) -> Tag:
    """The body of a collection's overview page: counts, QC and the collection's services."""
    schema = _schema(service.rd)
    table = f"{schema}.images"
    qc = ("count(*), count(*) FILTER (WHERE qcstatus = 'pass'),"
          " count(*) FILTER (WHERE qcstatus = 'fail')")
    total, npass, nfail = _query(f"SELECT {qc} FROM {table}")[0]
    kinds = dict(_query(f"SELECT imagetype, count(*) FROM {table} GROUP BY 1"))
    nfiles = _query(f"SELECT count(DISTINCT filename) FROM {table}")[0][0]
    by_band = _query(
        f"SELECT filtername, {qc}, percentile_cont(0.5) WITHIN GROUP (ORDER BY obsfwhm),"
        f" percentile_cont(0.5) WITHIN GROUP (ORDER BY abmaglim)"
        f" FROM {table} GROUP BY 1 ORDER BY min(bandpassRefval)")
    by_night = _query(f"SELECT nightobs, {qc} FROM {table} GROUP BY 1 ORDER BY 1")
    by_field = _query(f"SELECT object, {qc} FROM {table} GROUP BY 1 ORDER BY 1")
    stats = T.div(class_="stats")[[
        T.div(class_="stat", **{"data-stat": key})[T.span(class_="value")[str(value)],
                                                   T.span(class_="label")[label]]
        for key, value, label in (
            ("images", total, "images"), ("files", nfiles, "product files"),
            ("pawprint", kinds.get("pawprint", 0), "pawprint detectors"),
            ("tile", kinds.get("tile", 0), "tiles"),
            ("pass", npass, "QC pass"), ("fail", nfail, "QC fail"),
            ("bands", len(by_band), "bands"), ("nights", len(by_night), "nights"))]]
    heads = ("images", "QC pass", "QC fail")
    return T.transparent[
        stats,
        T.div(class_="grid2")[
            T.div[
                T.section(id="services", class_="panel")[
                    T.h2["Find and get the data"],
                    T.ul(class_="links")[_service_items(schema, by_band)]]],
            T.div[
                T.section(class_="panel")[
                    T.h2["Per band"],
                    _counts_table("per-band", "band", ("band", *heads, "median seeing [″]",
                                                       "median depth [AB mag]"), by_band)],
                T.section(class_="panel")[
                    T.h2["Per night"], _counts_table("per-night", "night", ("night", *heads),
                                                     by_night)],
                T.section(class_="panel")[
                    T.h2["Per field"], _counts_table("per-field", "field", ("field", *heads),
                                                     by_field)]]]]


def _service_items(schema: str, by_band: Sequence[Sequence[Any]]) -> list[Tag]:
    base_url = _server_url()
    svc = _services()
    items: list[tuple[str, str, str]] = [
        ("search", "Image search by position (web form, with previews and QC)",
         svc["pages"][f"{schema}.search"]),
        ("sia2", "SIA 2.0 endpoint (TOPCAT, Aladin, pyvo)", svc["sia"][schema]),
        ("sia1", "SIA 1.0 endpoint (older clients)", svc["sia1"][schema]),
        ("tap", f"TAP (ADQL) service: tables {schema}.images, {schema}.ancillary,"
                " ivoa.obscore", "tap"),
        ("adql", f"ADQL web form, e.g. SELECT TOP 10 * FROM {schema}.images",
         "__system__/adql/query/form?query="
         + urllib.parse.quote(f"SELECT TOP 10 * FROM {schema}.images")),
        ("datalink", "DataLink and SODA cutouts (ID = obs_publisher_did)",
         svc["datalink"][schema]),
    ]
    if f"{schema}.sources" in svc["scs"]:
        items.append(("scs", "Cone search over the band-merged source catalogue",
                      svc["scs"][f"{schema}.sources"]))
    if schema in svc["moc"]:
        items.append(("moc", "Coverage (MOC 2.0, FITS)", svc["moc"][schema]))
    for band, *_ in by_band:
        key = f"{schema}.{band}"
        if key in svc["hips"]:
            items.append((f"hips-{band}", f"HiPS of the {band} images (Aladin)",
                          svc["hips"][key]))
    return [T.li(**{"data-service": key})[T.a(href=f"{base_url}/{path}")[label]]
            for key, label, path in items]

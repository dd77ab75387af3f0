# SPDX-License-Identifier: BSD-3-Clause
"""DaCHS glue of the spectroscopic archives (``resdir/common/spectra.rd``).

The RD imports a collection's TAP tables from the index tables its pipeline
writes beside the products (``products/<survey>/index/*.fits``, the contract
in docs/spectroscopy.md); this module turns their rows into what DaCHS's
rowmakers take (Python values, no FITS nulls, the products table's paths and
URLs), reads a product into the rows of a Spectral Data Model instance (via
:func:`casuvo.spectra.read.read_spectrum`, the one reader of all three
formats), draws previews and makes the DataLink rows that tie a spectrum to
its per-OB products, its Gaia source and the images at its position.

Why a grammar of ours and not DaCHS's ``fitsTableGrammar``: the index files
live in the data tree (``products/``), not in the RD's resource directory,
and the rows need their products-table paths computed; both are a few lines
here.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from casuvo.config import Settings
from casuvo.dachs import releaselinks
from casuvo.surveys.registry import load_registry

__all__ = ["INDEX_TABLES", "gaia_descriptor", "gaia_links", "gaia_source_links",
           "image_spectra_links", "index_rows", "ob_product_rows", "preview_png", "sdm_rows",
           "spectra_at", "spectrum_links", "spectrum_rows"]

#: the index tables a spectroscopic pipeline writes (docs/spectroscopy.md)
INDEX_TABLES = ("obs_blocks", "targets", "spectra", "raw")

#: the DataLink/SODA service of a spectroscopic collection and its SSA service
DL_SERVICE = "sdl"
SSA_SERVICE = "ssa"

#: content type of an SDM VOTable and of a DataLink document
VOTABLE = "application/x-votable+xml"
DATALINK = "application/x-votable+xml;content=datalink"


def _settings() -> Settings:
    return Settings.from_env()


def _survey_key(collection: str) -> str:
    """The survey key (products directory) of a collection; the same by the contract."""
    try:
        return load_registry(_settings()).by_collection(collection).key
    except (KeyError, ValueError):
        return collection


def _index_path(collection: str, table: str) -> Path:
    return _settings().data_dir / "products" / _survey_key(collection) / "index" / f"{table}.fits"


def _python(value: Any) -> Any:
    """A FITS cell as a plain Python value; masked, NaN and empty strings become None."""
    import numpy as np

    if value is np.ma.masked:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _timestamp(text: str) -> datetime.datetime:
    """An ISO date or timestamp of an index table (``2025-05-10T00:00:00``)."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def index_rows(collection: str, table: str) -> Iterator[dict[str, Any]]:
    """The rows of one index table of a collection, as rowmaker input.

    A missing index file yields nothing: a survey whose pipeline has not run
    yet publishes empty tables rather than failing the whole RD import.
    """
    from astropy.table import Table

    if table not in INDEX_TABLES:
        raise ValueError(f"no index table {table!r}; known: {', '.join(INDEX_TABLES)}")
    path = _index_path(collection, table)
    if not path.exists():
        return
    data = Table.read(path, format="fits", character_as_bytes=False)
    names = data.colnames
    group = _owner_group(collection)
    # rows without a release date of their own (targets, raw exposures) take their OB's
    ob_release = ({} if "release_date" in names or "ob_id" not in names
                  else _ob_releases(collection))
    for row in data:
        record = {name: _python(row[name]) for name in names}
        if isinstance(record.get("release_date"), str):
            record["release_date"] = _timestamp(record["release_date"])
        if "release_date" not in record:
            record["release_date"] = ob_release.get(record.get("ob_id"))
        record["owner_group"] = group
        source_id = record.get("source_id")
        if source_id is not None and source_id <= 0:
            record["source_id"] = None  # sky fibres: no Gaia source
        yield record


def _owner_group(collection: str) -> str:
    """The owning group of a collection's products (its survey's ``[access]``)."""
    return load_registry(_settings()).by_collection(collection).access.group


def _ob_releases(collection: str) -> dict[int, datetime.datetime | None]:
    """{ob_id: release date} of a collection's OBs (from its obs_blocks index)."""
    return {r["ob_id"]: r["release_date"] for r in index_rows(collection, "obs_blocks")}


def _standard_pubdid(accref: str) -> str:
    from gavo.rscdef import getStandardPubDID

    return getStandardPubDID(accref)


def _dl_url(collection: str, renderer: str, pub_did: str, **params: str) -> str:
    from gavo import base

    server = base.getConfig("web", "serverURL").rstrip("/")
    query = urllib.parse.urlencode({"ID": pub_did, **params})
    return f"{server}/{collection}/q/{DL_SERVICE}/{renderer}?{query}"


def spectrum_rows(collection: str) -> Iterator[dict[str, Any]]:
    """Rows of ``<c>.spectra``: the index row plus the products table's values.

    The accref is the product file (relative to the inputs root); the
    products table's path is the SDM VOTable the DataLink service makes from
    it, so SSA's and ObsCore's access URLs give a spectrum every VO client
    reads; the survey's own file is a DataLink ``#this`` as well.
    """
    inputs = _settings().data_dir
    for row in index_rows(collection, "spectra"):
        accref = row["file"]
        did = _standard_pubdid(accref)
        row["accref"] = accref
        row["obs_publisher_did"] = did
        row["sdm_url"] = _dl_url(collection, "dlget", did)
        row["preview_url"] = _dl_url(collection, "dlget", did, FORMAT="image/png")
        row["datalink_url"] = _dl_url(collection, "dlmeta", did)
        if row.get("file_size") is None:
            path = inputs / accref
            row["file_size"] = path.stat().st_size if path.exists() else None
        # an SDM VOTable is about 40 bytes a sample beyond its header
        row["sdm_size"] = 20000 + 5 * (row.get("file_size") or 0)
        yield row


def ob_product_rows(collection: str) -> Iterator[dict[str, Any]]:
    """Rows of ``<c>.ob_products``: each per-OB product file once.

    Per-OB products are named by ``obs_blocks.product_file`` and by the
    spectra's ``progenitors``; an OB's metadata (pointing, time, setting)
    describes each of its files.
    """
    inputs = _settings().data_dir
    obs = {row["ob_id"]: row for row in index_rows(collection, "obs_blocks")}
    files: dict[str, int | None] = {}
    for ob in obs.values():
        if ob.get("product_file"):
            files.setdefault(ob["product_file"], ob["ob_id"])
    for spectrum in index_rows(collection, "spectra"):
        for path in (spectrum.get("progenitors") or "").split():
            files.setdefault(path, None)
    for path, ob_id in sorted(files.items()):
        if ob_id is None:
            ob_id = next((k for k, ob in obs.items() if ob.get("product_file") == path), None)
        ob = obs.get(ob_id, {})
        full = inputs / path
        yield {
            "accref": path, "file": path, "ob_id": ob_id, "field": ob.get("field"),
            "ra": ob.get("ra"), "dec": ob.get("dec"), "mjd_obs": ob.get("mjd_obs"),
            "exptime": ob.get("exptime"), "setting": ob.get("setting"),
            "mode": ob.get("mode"), "em_min": ob.get("em_min"), "em_max": ob.get("em_max"),
            "resolution": ob.get("resolution"), "release_date": ob.get("release_date"),
            "owner_group": ob.get("owner_group") or _owner_group(collection),
            "file_size": full.stat().st_size if full.exists() else None,
            "title": f"{collection} OB {ob_id} {ob.get('setting') or ''} {Path(path).name}",
        }


def raw_rows(collection: str) -> Iterator[dict[str, Any]]:
    """Rows of ``<c>.raw`` with the products table's size and a title."""
    inputs = _settings().data_dir
    for row in index_rows(collection, "raw"):
        full = inputs / row["file"]
        row["accref"] = row["file"]
        row["file_size"] = full.stat().st_size if full.exists() else None
        row["title"] = (f"{collection} raw exposure OB {row.get('ob_id')} "
                        f"{row.get('arm') or ''} {Path(row['file']).name}")
        yield row


def sdm_rows(accref: str) -> Iterator[dict[str, float]]:
    """The samples of a product as SDM instance rows: wavelength (Å), flux, 1σ error."""
    from gavo import base

    from casuvo.spectra.read import read_spectrum

    spectrum = read_spectrum(os.path.join(base.getConfig("inputsDir"), accref))
    for wave, flux, sigma in zip(spectrum.wave, spectrum.flux, spectrum.sigma, strict=True):
        yield {"spectral": float(wave), "flux": float(flux),
               "flux_error": float(sigma) if math.isfinite(sigma) else None}


def preview_png(accref: str, title: str) -> bytes:
    """A PNG plot of a product (flux and 1σ against wavelength), cached per file version.

    Made on first request, not at publication: an archive holds many more
    spectra than anyone looks at, and the plot takes ~0.1 s.
    """
    from gavo import base

    path = os.path.join(base.getConfig("inputsDir"), accref)
    stat = os.stat(path)
    key = hashlib.sha256(f"{path}:{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()
    cache = Path(base.getConfig("cacheDir")) / "spectrum-previews"
    cached = cache / f"{key}.png"
    if cached.exists():
        return cached.read_bytes()

    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from casuvo.spectra.read import read_spectrum

    spectrum = read_spectrum(path)
    figure = Figure(figsize=(8, 3), dpi=90)
    axes = figure.add_subplot()
    axes.plot(spectrum.wave, spectrum.flux, lw=0.6, color="black", label="flux")
    axes.plot(spectrum.wave, spectrum.sigma, lw=0.5, color="tab:red", label="1σ")
    axes.set_xlabel("vacuum wavelength [Å]")
    axes.set_ylabel(getattr(spectrum, "flux_unit", "") or "flux")
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(cached)
    return buffer.getvalue()


def _server() -> str:
    from gavo import base

    return base.getConfig("web", "serverURL").rstrip("/")


def _tap_url(query: str) -> str:
    return f"{_server()}/tap/sync?" + urllib.parse.urlencode(
        {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query})


def _query(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    from gavo import base

    with base.getTableConn() as conn:
        return list(conn.queryToDicts(sql, params))


def _tables_with(table: str, column: str) -> list[str]:
    """``schema.table`` of every published ``table`` having ``column`` (e.g. the spectra).

    The database, not the survey registry, says which archives exist here:
    the server runs in DaCHS's "C" locale, where reading the registry's
    UTF-8 config files is not safe, and an archive not imported yet has no
    table to query anyway.
    """
    rows = _query("SELECT table_schema FROM information_schema.columns"
                  " WHERE table_name = %(table)s AND column_name = %(column)s"
                  " ORDER BY table_schema", {"table": table, "column": column})
    return [f"{r['table_schema']}.{table}" for r in rows]


def _images_at(ra: float, dec: float) -> list[dict[str, Any]]:
    """Published images (all imaging collections) whose footprint contains (ra, dec)."""
    rows: list[dict[str, Any]] = []
    for table in _tables_with("images", "coverage"):
        rows.extend(_query(
            f"SELECT '{table.split('.')[0]}' AS collection, obs_publisher_did, filename,"
            f" extnum, imagetype, filtername FROM {table}"
            " WHERE coverage @> spoint(radians(%(ra)s), radians(%(dec)s))"
            " ORDER BY imagetype DESC, filtername, filename, extnum",
            {"ra": ra, "dec": dec}))
    return rows


def spectrum_links(descriptor: Any, collection: str) -> Iterator[Any]:
    """DataLink rows of a spectrum besides its SODA service (DaCHS adds that).

    ``#this`` (the SDM VOTable and the survey's own product file),
    ``#preview`` (a PNG plot), ``#progenitor`` (the per-OB products it was
    extracted from), and as ``#auxiliary`` (local semantics ``gaia-source``,
    ``image-at-position``) the Gaia source (a TAP query selecting its row) and
    the images whose footprint contains the spectrum's position (their
    DataLink documents: cutouts, previews, files).  DataLink's newer
    ``#counterpart`` would say it better, but STILTS 3.4.7's datalinklint
    (and clients of its age) reject the term.
    """
    from gavo.protocols import products

    row = descriptor.ssaRow
    did = descriptor.pubDID
    name = row.get("ssa_targname") or row.get("target_name")
    yield descriptor.makeLink(
        _dl_url(collection, "dlget", did),
        description=f"Spectrum of {name} as a Spectral Data Model VOTable",
        semantics="#this", contentType=VOTABLE, contentLength=row.get("accsize"))
    yield descriptor.makeLink(
        _dl_url(collection, "dlget", did, FORMAT="application/fits"),
        description=f"Spectrum of {name} as an SDM FITS binary table",
        semantics="#this", contentType="application/fits")
    yield descriptor.makeLink(
        _dl_url(collection, "dlget", did, FORMAT="application/fits;content=survey-product"),
        description=f"The survey's own product file {Path(row['file']).name}",
        semantics="#this", contentType="application/fits",
        contentLength=row.get("file_size"))
    yield descriptor.makeLink(
        _dl_url(collection, "dlget", did, FORMAT="image/png"),
        description=f"Plot of the spectrum of {name} (PNG)",
        semantics="#preview", contentType="image/png")
    for path in (row.get("progenitors") or "").split():
        yield descriptor.makeLink(
            products.makeProductLink(path),
            description=f"Per-OB product {Path(path).name} this spectrum comes from",
            semantics="#progenitor", contentType="application/fits")
    source_id = row.get("source_id")
    if source_id is not None:
        yield descriptor.makeLink(
            _tap_url(f"SELECT * FROM gaia.sources WHERE source_id = {int(source_id)}"),
            description=f"Gaia source {source_id} of {name} (TAP query)",
            semantics="#auxiliary", localSemantics="gaia-source", contentType=VOTABLE)
    ra, dec = row.get("ra"), row.get("dec")
    if ra is not None and dec is not None:
        for image in _images_at(ra, dec):
            yield descriptor.makeLink(
                f"{_server()}/{image['collection']}/q/dl/dlmeta?"
                + urllib.parse.urlencode({"ID": image["obs_publisher_did"]}),
                description=(f"{image['collection'].upper()} {image['imagetype']} "
                             f"{image['filtername']} {image['filename']}"
                             f" extension {image['extnum']} covering this position"
                             " (its DataLink: image, preview, cutouts)"),
                semantics="#auxiliary", localSemantics="image-at-position",
                contentType=DATALINK)
    yield from releaselinks.release_links(descriptor, descriptor.accref)


def spectra_at(where: str, params: dict[str, Any], join: str = "") -> list[dict[str, Any]]:
    """Published spectra (``s``) of all spectroscopic collections matching an SQL condition.

    ``where`` is a condition on the spectra table's columns (``s.ssa_location``,
    ``s.source_id``), with named parameters in ``params``; ``join`` adds
    tables to the FROM clause.
    """
    rows: list[dict[str, Any]] = []
    for table in _tables_with("spectra", "ssa_location"):
        rows.extend(_query(
            f"SELECT '{table.split('.')[0]}' AS collection, s.obs_publisher_did,"
            f" s.spectrum_id, s.target_name FROM {table} AS s{join} WHERE {where}"
            " ORDER BY s.spectrum_id", params))
    return rows


def _spectrum_link(descriptor: Any, spectrum: dict[str, Any], why: str) -> Any:
    return descriptor.makeLink(
        _dl_url(spectrum["collection"], "dlmeta", spectrum["obs_publisher_did"]),
        description=(f"{spectrum['collection']} spectrum {spectrum['spectrum_id']} of "
                     f"{spectrum['target_name']} {why} (its DataLink: SDM VOTable, plot,"
                     " cutouts)"),
        semantics="#auxiliary", localSemantics="spectrum-at-position", contentType=DATALINK)


def image_spectra_links(descriptor: Any, images_table: str) -> Iterator[Any]:
    """DataLink rows of an image: the spectra whose positions lie in its footprint.

    ``images_table`` is the image's table (``vista.images``); its footprint
    (``coverage``) is matched against each spectrum's ``ssa_location`` in SQL.
    """
    for spectrum in spectra_at("i.accref = %(accref)s AND s.ssa_location <@ i.coverage",
                               {"accref": descriptor.accref},
                               join=f" JOIN {images_table} AS i ON TRUE"):
        yield _spectrum_link(descriptor, spectrum, "inside this image")


def gaia_source_links(descriptor: Any, source_id: int) -> Iterator[Any]:
    """DataLink rows of a Gaia source: the spectra of that source."""
    for spectrum in spectra_at("s.source_id = %(source_id)s", {"source_id": source_id}):
        yield _spectrum_link(descriptor, spectrum, "of this Gaia source")


def gaia_descriptor(pub_did: str) -> Any:
    """The DataLink descriptor of a Gaia source: ID is its ``source_id``.

    ``Gaia DR3 <source_id>`` (the designation) is accepted as well.  A source
    not in ``gaia.sources`` is DataLink's NotFoundFault.
    """
    from gavo.protocols import datalink

    text = pub_did.strip()
    if text.lower().startswith("gaia dr3 "):
        text = text[9:].strip()
    if not text.isdigit():
        return datalink.DatalinkFault.NotFoundFault(
            pub_did, "A Gaia source is identified by its source_id")
    source_id = int(text)
    if not _query("SELECT 1 FROM gaia.sources WHERE source_id = %(id)s", {"id": source_id}):
        return datalink.DatalinkFault.NotFoundFault(pub_did, f"No Gaia source {source_id} here")
    descriptor = datalink.ProductDescriptor(pub_did, None, None, None)
    descriptor.suppressAutoLinks = True
    descriptor.source_id = source_id
    return descriptor


def gaia_links(descriptor: Any) -> Iterator[Any]:
    """DataLink rows of a Gaia source: its row (TAP) and its spectra (``#auxiliary``)."""
    yield descriptor.makeLink(
        _tap_url(f"SELECT * FROM gaia.sources WHERE source_id = {descriptor.source_id}"),
        description=f"Gaia source {descriptor.source_id} (TAP query)",
        semantics="#this", contentType=VOTABLE)
    yield from gaia_source_links(descriptor, descriptor.source_id)

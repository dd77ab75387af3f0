# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo release build``: a query over the archive, packaged as an ESO Phase 3 release.

1. **Select.**  The query (SQL; the command line translates ADQL) runs as
   DaCHS's query role acting for the release's group, so row-level security
   decides: a public release holds public products only, a group's release
   its proprietary products too (:func:`casuvo.storage.releases.select_products`).
   Raw frames are ESO's own archive files and are never re-delivered.
2. **Close the provenance.**  Each product brings what its headers point to
   and the standard wants delivered with it: a science image its confidence
   map (ASSON1), a tile its pawprint stacks (PROVi), a source list its image,
   the merged catalogue its tile source lists.  Inputs that are not SDP
   products (raw frames, the spectroscopic pipelines' OB-level files) stay in
   the archive and are listed in the manifest as *external*, with their
   archive accref and SHA-256.  A pointer to a file the archive does not hold
   (or the release may not see) stops the build, naming both files.
3. **Write** each file with :mod:`casuvo.release.sdp` (deterministic bytes);
   the manifest and description; record the release in the archive.

The release directory is written in place: files are replaced atomically, so
an interrupted build is finished by running it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from astropy.io import fits

from casuvo._version import __version__
from casuvo.release import manifest as mf
from casuvo.release import sdp
from casuvo.release.rules import iter_prov
from casuvo.storage import access, releases

__all__ = ["BuildError", "ReleaseRequest", "build_release"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


class BuildError(ValueError):
    """A release cannot be built as asked (names the product and the problem)."""


@dataclass(frozen=True)
class ReleaseRequest:
    """What to release, for whom, where."""

    name: str
    sql: Sequence[str]
    query: str
    query_language: str
    out_dir: Path
    group: str | None = None
    catalogues: Sequence[str] = ()


@dataclass
class _Item:
    """One file of the release: source, how to write it, its provenance."""

    name: str
    src: Path
    category: str
    accref: str | None
    prodlvl: int
    provenance: list[str] = field(default_factory=list)
    simple: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class _Archive:
    """The archive as the release sees it: file names → accrefs and paths."""

    def __init__(self, dsn: str, inputs: Path, groups: str) -> None:
        self.dsn, self.inputs, self.groups = dsn, inputs, groups
        with psycopg.connect(dsn) as conn:
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(f'SET LOCAL ROLE "{access.QUERY_ROLES[0]}"')
            conn.execute("SELECT set_config(%s, %s, true)", (access.GUC, groups))
            rows = conn.execute("SELECT accref, accesspath, owner, embargo FROM dc.products"
                                ).fetchall()
            obscore = conn.execute(
                "SELECT access_url, calib_level, target_name, s_ra, s_dec, t_min, t_max,"
                " t_exptime, em_res_power, s_fov FROM ivoa.obscore").fetchall()
            conn.rollback()
        self.by_name: dict[str, tuple[str, str]] = {}
        self.by_accref: dict[str, str] = {}
        #: file accref → its release date while proprietary (owned, date to come)
        self.embargo: dict[str, str] = {}
        today = str(dt.date.today())
        for accref, path, owner, embargo in rows:
            if "://" in path:   # served through DataLink: the accref is the file
                path = accref
            ref = _file_accref(accref)
            self.by_name.setdefault(Path(path).name, (ref, path))
            self.by_accref.setdefault(ref, path)
            if owner and embargo and str(embargo) > today:
                self.embargo[ref] = str(embargo)
        self.obscore: dict[str, dict[str, Any]] = {}
        for url, level, target, ra, dec, tmin, tmax, texp, power, fov in obscore:
            path = _file_accref(str(url))
            self.obscore.setdefault(path, {
                "calib_level": level, "object": target, "ra": ra, "dec": dec,
                "mjd_obs": tmin, "mjd_end": tmax, "texptime": texp, "spec_res": power,
                "aperture_deg": fov})

    def path(self, name: str) -> Path | None:
        hit = self.by_name.get(name)
        return self.inputs / hit[1] if hit else None

    def stored(self, name: str) -> Path | None:
        """A file of the product store by name, published or not (an OB's arm
        files, say: the archive keeps them, DataLink serves one per OB)."""
        if not hasattr(self, "_store"):
            self._store = {p.name: p for p in (self.inputs / "products").rglob("*.fit*")
                           if p.suffix in (".fit", ".fits")}
        return self._store.get(name)

    def accref(self, name: str) -> str | None:
        hit = self.by_name.get(name)
        return hit[0] if hit else None

    def is_raw(self, name: str) -> bool:
        hit = self.by_name.get(name)
        return bool(hit and hit[1].startswith("raw/"))

    def record(self, path: Path) -> dict[str, Any]:
        rel = str(path.relative_to(self.inputs))
        return self.obscore.get(rel, {})


def _file_accref(accref: str) -> str:
    """The file of an accref (an image row per extension: ``…_st.fit/7``)."""
    return re.sub(r"(\.fits?)/\d+$", r"\1", accref)


def _primary(path: Path) -> fits.Header:
    with fits.open(path, memmap=True) as hdul:
        return hdul[0].header.copy()


def _spectrum_provenance(path: Path, header: fits.Header) -> list[str]:
    """A per-object spectrum's inputs: PROVi (PROV00n), or its INPUTINFO table's files."""
    names = [v for _, v in iter_prov(header)]
    names += [str(header[k]) for k in sorted(header) if re.match(r"^PROV0\d+$", k)]
    if not names:
        with fits.open(path, memmap=True) as hdul:
            if "INPUTINFO" in hdul:
                names = [str(n).strip() for n in hdul["INPUTINFO"].data["ARCFILE"]]
    return list(dict.fromkeys(n for n in names if n))


class _Planner:
    def __init__(self, archive: _Archive) -> None:
        self.archive = archive
        self.items: dict[str, _Item] = {}
        self.external: dict[str, dict[str, Any]] = {}
        self.skipped: list[str] = []

    def level(self, path: Path, default: int) -> int:
        return int(self.archive.record(path).get("calib_level") or default)

    def need(self, owner: str, key: str, name: str) -> Path:
        path = self.archive.path(name)
        if path is None or not path.exists():
            raise BuildError(f"{owner} {key}: {name} is not in the archive "
                             "(or not visible to this release)")
        return path

    def external_input(self, owner: str, key: str, name: str) -> None:
        path = self.archive.path(name) or self.archive.stored(name)
        if path is None or not path.exists():
            raise BuildError(f"{owner} {key}: {name} is not in the archive")
        if name not in self.external:
            md5, sha, size = mf.file_hashes(path)
            self.external[name] = {"accref": self.archive.accref(name), "sha256": sha,
                                   "size": size,
                                   "path": str(path.relative_to(self.archive.inputs))}

    def add_path(self, path: Path) -> None:
        name = path.name
        if name in self.items:
            return
        rel = str(path.relative_to(self.archive.inputs))
        if rel.startswith("raw/"):
            self.skipped.append(name)
            return
        header = _primary(path)
        category = str(header.get("PRODCATG", "")).strip()
        if "/objects/" in rel:
            self._spectrum(path, header)
            return
        if category == "SCIENCE.MEFIMAGE":
            self._image(path, header, simple=False)
        elif category == "SCIENCE.IMAGE":
            self._image(path, header, simple=True)
        elif category == "ANCILLARY.WEIGHTMAP":
            simple = fits.getval(path, "NAXIS", 0) == 0 and _n_hdus(path) == 2
            self.items[name] = _Item(name, path, category, self.archive.accref(name),
                                     self.level(path, 2), simple=simple)
        elif category == "SCIENCE.SRCTBL":
            image = str(header.get("PROV1", ""))
            self.items[name] = _Item(name, path, category, self.archive.accref(name),
                                     self.level(path, 2), provenance=[image])
            self.add_path(self.need(name, "PROV1", image))
        else:
            self.skipped.append(name)
            log.warning("%s: category %r is not released (skipped)", name, category)

    def _image(self, path: Path, header: fits.Header, simple: bool) -> None:
        name = path.name
        provenance = [v for _, v in iter_prov(header)]
        level = self.level(path, 3 if simple else 2)
        self.items[name] = _Item(name, path, "SCIENCE.IMAGE" if simple else "SCIENCE.MEFIMAGE",
                                 self.archive.accref(name), level, provenance=provenance,
                                 simple=simple)
        weight = str(header.get("ASSON1", "")).strip()
        if not weight:
            raise BuildError(f"{name} ASSON1: no confidence map named")
        weight_path = self.need(name, "ASSON1", weight)
        self.items[weight] = _Item(weight, weight_path, "ANCILLARY.WEIGHTMAP",
                                   self.archive.accref(weight), level, simple=simple)
        for key, source in iter_prov(header):
            if self.archive.is_raw(source):
                self.external_input(name, key, source)
            else:
                self.add_path(self.need(name, key, source))

    def _spectrum(self, path: Path, header: fits.Header) -> None:
        name = path.name
        record = self.archive.record(path)
        if not record:
            raise BuildError(f"{name}: no ObsCore record visible to this release")
        provenance = _spectrum_provenance(path, header)
        for n, source in enumerate(provenance, start=1):
            self.external_input(name, f"PROV{n}", source)
        out = re.sub(r"\.fits?$", "", name) + ".fits"
        self.items[out] = _Item(out, path, "SCIENCE.SPECTRUM", self.archive.accref(name),
                                int(record.get("calib_level") or 3), provenance=provenance,
                                extra={"record": record, "header": header})


def _n_hdus(path: Path) -> int:
    with fits.open(path, memmap=True) as hdul:
        return len(hdul)


def _catalogue_items(planner: _Planner, survey: Any, products_dir: Path, dsn: str,
                     groups: str, columns: dict[str, tuple[str, str, str]]) -> list[_Item]:
    """The survey's merged catalogue, rows of the frame sets whose every tile
    source list is in the release (and visible to it)."""
    from casuvo.catalogue.mergedtable import frame_set_members, merged_path

    path = merged_path(products_dir, survey.key)
    if not path.exists():
        raise BuildError(f"{survey.key}: no merged catalogue ({path}); run casuvo ingest "
                         "sources first")
    members = frame_set_members(path, survey, products_dir)
    visible = set(access.visible_framesets(dsn, survey.key, groups))
    by_set: dict[int, list[str]] = {}
    for frame_set, catname in members:
        by_set.setdefault(frame_set, []).append(catname)
    chosen = sorted(f for f, cats in by_set.items()
                    if f in visible and all(c in planner.items for c in cats))
    if not chosen:
        raise BuildError(f"{survey.key} catalogue: no frame set has all its tile source "
                         "lists in this release (select the tiles and their catalogues)")
    cats = sorted(c for f in chosen for c in by_set[f])
    name = f"{survey.key}_sources_{'_'.join(str(f) for f in chosen)}"[:63] + ".fits"
    return [_Item(name, path, "SCIENCE.CATALOG", None, 3, provenance=cats,
                  extra={"frame_sets": chosen, "survey": survey, "columns": columns})]


def _column_meta(dsn: str, table: str) -> dict[str, tuple[str, str, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT column_name, unit, ucd, description FROM tap_schema.columns"
                            " WHERE table_name = %s", (table,)).fetchall()
    return {str(c).lower(): (u or "", ucd or "", " ".join(str(d or "").split()))
            for c, u, ucd, d in rows}


def _archive_state(dsn: str, names: Sequence[str]) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (product) product, run_id, code_version FROM ledger.products"
            " WHERE product = ANY(%s) AND status = 'ok'"
            " ORDER BY product, finished DESC", (list(names),)).fetchall()
    return {"code_version": __version__,
            "runs": sorted({r for _, r, _ in rows}),
            "product_runs": {p: r for p, r, _ in rows},
            "product_code_versions": sorted({v for _, _, v in rows})}


def build_release(request: ReleaseRequest, *, dsn: str, inputs: Path, products_dir: Path,
                  surveys: Callable[[str], Any],
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build the release; returns its manifest (also written to the directory)."""
    if not _NAME.match(request.name):
        raise BuildError(f"release name {request.name!r}: upper-case letters, digits and "
                         "underscores, starting with a letter (ESO data collection names)")
    groups = access.groups_setting([request.group] if request.group else None)
    archive = _Archive(dsn, inputs, groups)
    planner = _Planner(archive)
    selected: list[str] = []
    for sql in request.sql:
        selected += releases.select_products(dsn, sql, groups)
    paths = sorted({archive.by_accref[ref] for ref in map(_file_accref, selected)
                    if ref in archive.by_accref})
    if not paths:
        raise BuildError("the query selects no product this release may hold")
    for path in paths:
        planner.add_path(inputs / path)
    for key in request.catalogues:
        survey = surveys(key)
        columns = _column_meta(dsn, f"{key}.sources")
        for item in _catalogue_items(planner, survey, products_dir, dsn, groups, columns):
            planner.items[item.name] = item
    out = request.out_dir
    out.mkdir(parents=True, exist_ok=True)
    note = f"ESO Phase 3 release {request.name}"
    files: dict[str, dict[str, Any]] = {}
    items = sorted(planner.items.values(), key=lambda i: i.name)
    for n, item in enumerate(items, start=1):
        if progress:
            progress(f"[{n}/{len(items)}] {item.name}")
        _write(item, out / item.name, note, products_dir)
        md5, sha, size = mf.file_hashes(out / item.name)
        record = archive.record(item.src)
        files[item.name] = {"prodcatg": item.category, "md5": md5, "sha256": sha, "size": size,
                            "accref": item.accref,
                            "source": str(item.src.relative_to(inputs)),
                            "ra": record.get("ra"), "dec": record.get("dec")}
    for stale in out.glob("*.fit*"):
        if stale.name not in files:
            stale.unlink()
    state = _archive_state(dsn, [i.src.name for i in items])
    manifest = {"name": request.name, "query": request.query,
                "query_language": request.query_language, "sql": list(request.sql),
                "group": request.group, "built": dt.datetime.now(dt.UTC)
                .replace(microsecond=0).isoformat(), "files": files,
                "external": dict(sorted(planner.external.items())),
                "skipped": sorted(planner.skipped), "archive_state": state}
    mf.write_manifest(out, manifest)
    mf.write_description(out, manifest)
    embargoes = [archive.embargo[i.accref] for i in items if i.accref in archive.embargo]
    releases.record_release(dsn, releases.ReleaseRecord(
        name=request.name, built=manifest["built"], query=request.query,
        owner_group=request.group, directory=str(out.resolve()),
        files=[releases.ReleasedFile(name, f["prodcatg"], f["accref"], f["md5"], f["sha256"],
                                     f["size"]) for name, f in files.items()],
        archive_state=state, manifest=manifest,
        release_date=max(embargoes) if embargoes else None))
    return manifest


def _write(item: _Item, dst: Path, note: str, products_dir: Path) -> None:
    if item.category == "SCIENCE.SPECTRUM":
        from casuvo.spectra.read import read_spectrum

        spectrum = read_spectrum(item.src)
        header = item.extra["header"]
        record = dict(item.extra["record"])
        meta = spectrum.meta
        record["obid"] = int(meta.get("OBID1", meta.get("OBID", header.get("OBID", 0))) or 0)
        record["ncombine"] = int(meta.get("NCOMBINE", 1) or 1)
        record["prog_id"] = meta.get("PROG_ID")
        start = float(meta.get("MJD-OBS", record["mjd_obs"]))
        exptime = float(meta.get("TEXPTIME", meta.get("EXPTIME", record["texptime"])))
        end = float(meta.get("MJD-END", start + exptime / 86400))
        record.update(mjd_obs=start, mjd_end=max(end, start + exptime / 86400),
                      texptime=exptime)
        if not record.get("spec_res"):
            record["spec_res"] = float(meta.get("SPEC_RES", 0) or 0)
        sdp.write_spectrum(spectrum, dst, archive=record, provenance=item.provenance,
                           note=note)
    elif item.category == "SCIENCE.CATALOG":
        survey = item.extra["survey"]
        tiles = []
        for cat in item.provenance:
            with fits.open(products_dir / survey.key / _night_dir(cat) / cat) as hdul:
                header = hdul[0].header.copy()
                for key in ("ABMAGLIM", "PHOTSYS"):
                    if key in hdul[1].header:
                        header[key] = hdul[1].header[key]
                tiles.append(header)
        bands = [(b.filter, b.prefix) for b in survey.bands]
        sdp.write_catalog(item.src, dst, frame_sets=item.extra["frame_sets"],
                          columns=item.extra["columns"], tiles=tiles,
                          provenance=item.provenance, bands=bands, note=note)
    elif item.simple:
        asson = None
        if item.category == "SCIENCE.IMAGE":
            asson = str(fits.getval(item.src, "ASSON1"))
        sdp.write_simple_image(item.src, dst, prodlvl=item.prodlvl, note=note, asson=asson)
    else:
        sdp.write_copy(item.src, dst, prodlvl=item.prodlvl, note=note,
                       provenance=item.provenance if item.category == "SCIENCE.SRCTBL"
                       else None)


def _night_dir(name: str) -> str:
    """The night folder of a CASU product name (``v20240510_00010_…`` → ``20240510``)."""
    match = re.match(r"^[a-z](\d{8})_", name)
    if not match:
        raise BuildError(f"{name}: not a CASU product name")
    return match.group(1)

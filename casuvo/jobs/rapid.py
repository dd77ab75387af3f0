# SPDX-License-Identifier: BSD-3-Clause
"""Rapid mode: each new science exposure calibrated, compared and alerted as it lands.

``casuvo pipeline watch SURVEY`` (compute environment, a
:class:`casuvo.jobs.RapidJob`) scans the survey's raw area
(``var/data/raw/<survey>/<night>/``) for science exposures it has not yet
alerted on, oldest first, and for each:

1. reduces it with the **existing masters** of its night and band (or, if the
   night has none yet, the latest earlier night's: rapid mode never waits for
   the night's flats), solves its astrometry and zero points against Gaia
   (:func:`casuvo.pipeline.tasks.reduce_exposure`, the full pipeline's own
   code, with its calibrated detections kept);
2. picks its **reference**: the tile catalogue of the same field and band from
   the latest earlier night (passed QC); without one (a field's first epoch)
   the exposure is calibrated and recorded, and nothing is compared;
3. compares the two catalogues (:mod:`casuvo.catalogue.alerts`: new,
   brightening, fading, moving) and writes the candidates (``candidates.fits``);
   candidates off plain sky are set aside, a *new* source is alerted once a
   second exposure of the night sees it, changes of brightness at once
   (:func:`_status`); the alerts
   (``alerts.fits``), one **VOEvent 2.0** per alert
   (:mod:`casuvo.catalogue.voevents`, validated against the schema before it is
   written) and ``done.json`` with the timings.

Everything goes under ``var/data/alerts/<survey>/<night>/<exposure>/``; a
finished exposure has ``done.json`` and is skipped by the next scan (a crash
half-way redoes only that exposure).  One exposure at a time in this process,
no Dask cluster: a cluster's start-up would be a good part of the latency that
rapid mode exists to cut, and one exposure's detectors are one task.

Timing: ``latency_seconds`` is from the file's arrival (its modification
time) to the last VOEvent written; ``pipeline_seconds`` is what the full
pipeline spent on the products made from the same exposure (its reduction, its
stack and the tile), from the products' records, for comparison.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table, vstack

from casuvo.catalogue.alerts import (
    KINDS,
    AlertParams,
    compare,
    detection_magnitudes,
    detections_epoch,
    forced_magnitudes,
    sky_like,
    tile_epoch,
)
from casuvo.catalogue.framesets import BandMergeError, read_tile_frame
from casuvo.catalogue.voevents import AlertContext, write_voevents
from casuvo.pipeline import tasks
from casuvo.pipeline.config import PipelineConfig
from casuvo.pipeline.rawindex import RawFile, RawProblem, read_raw
from casuvo.storage.files import write_fits, write_json
from casuvo.surveys.access import AccessPolicy
from casuvo.surveys.instruments import Instrument, instrument

__all__ = ["RapidError", "extended_objects", "find_masters", "find_reference", "pending",
           "process_exposure", "scan", "watch"]

log = logging.getLogger(__name__)


class RapidError(RuntimeError):
    """An exposure cannot be processed in rapid mode; the message names it and why."""


def _instrument(cfg: PipelineConfig, raw: RawFile) -> Instrument:
    full = instrument(cfg.instrument)
    with fits.open(raw.path) as hdul:
        ny, nx = hdul[1].data.shape
    return full if nx == full.nx else full.miniature(nx / full.nx)


def find_masters(calib_dir: Path, night: str, band: str) -> tasks.ProductResult:
    """The masters of ``night`` and ``band``, else the latest earlier night's."""
    nights = sorted((p.name for p in calib_dir.iterdir() if p.is_dir() and p.name <= night),
                    reverse=True) if calib_dir.is_dir() else []
    for n in nights:
        marker = calib_dir / n / f"{band}_flat_{n}.fit.done.json"
        if marker.is_file():
            data = json.loads(marker.read_text())
            data["files"], data["inputs"] = tuple(data["files"]), tuple(data["inputs"])
            return tasks.ProductResult(**data)
    raise RapidError(f"no master flat in {band} for night {night} or before under {calib_dir}"
                     " (`casuvo pipeline run` makes them)")


def find_reference(products_dir: Path, raw: RawFile) -> Path | None:
    """The latest earlier night's tile catalogue of the same field and band (QC passed)."""
    best: tuple[float, Path] | None = None
    for path in sorted(products_dir.glob("2*/*_st_tl_cat.fits")):
        if path.parent.name >= raw.night:
            continue
        try:
            frame = read_tile_frame(path)
        except BandMergeError as exc:
            log.warning("%s: not a usable reference (%s)", path.name, exc)
            continue
        if frame.field == raw.obj and frame.filter == raw.band and frame.usable \
                and frame.mjd < raw.mjd and (best is None or frame.mjd > best[0]):
            best = (frame.mjd, path)
    return None if best is None else best[1]


def _pipeline_seconds(products_dir: Path, raw: RawFile) -> float | None:
    """Seconds the full pipeline spent on the products made from ``raw``: its reduction,
    the stack of it and the tile of that stack (their records); None if not processed."""
    red = products_dir / "work" / raw.night / f"{raw.path.stem}_red.fits.done.json"
    if not red.is_file():
        return None
    seconds = float(json.loads(red.read_text())["seconds"])
    records = [json.loads(m.read_text()) for m in (products_dir / raw.night).glob("*.done.json")]
    for stack in records:
        if stack["kind"] == "stack" and raw.path.name in {Path(p).name for p in stack["inputs"]}:
            seconds += float(stack["seconds"])
            seconds += sum(float(t["seconds"]) for t in records
                           if t["kind"] == "tile" and stack["files"][0] in t["inputs"])
    return seconds


def process_exposure(cfg: PipelineConfig, raw: RawFile, products_dir: Path,
                     gaia_files: list[Path], out_dir: Path, context: AlertContext,
                     params: AlertParams | None = None, extended: Table | None = None,
                     access: AccessPolicy | None = None) -> dict:
    """One exposure through rapid mode (see the module notes); its ``done.json`` content."""
    params = params or AlertParams()
    extended = extended if extended is not None else extended_objects(None)
    t0 = time.time()
    out = out_dir / raw.night / raw.path.stem
    out.mkdir(parents=True, exist_ok=True)
    ref_path = find_reference(products_dir, raw)
    summary: dict = {"exposure": raw.path.name, "night": raw.night, "band": raw.band,
                     "field": raw.obj, "mjd": raw.mjd,
                     "reference": None if ref_path is None else str(ref_path),
                     "params": asdict(params)}
    candidates = Table(names=["kind", "status"], dtype=["U11", "U10"])
    alerts = candidates
    events: list[Path] = []
    t_reduced = time.time()
    if ref_path is None:
        # a field's first epoch in this band: nothing to compare with, nothing reduced
        summary["note"] = "no earlier tile of this field and band: nothing to compare"
    else:
        masters = find_masters(products_dir / "calib", raw.night, raw.band)
        summary["masters"] = masters.files[0]
        reduced = tasks.reduce_exposure(cfg, _instrument(cfg, raw), raw, masters, gaia_files,
                                        out, detections=True)
        if isinstance(reduced, tasks.Failed):
            raise RapidError(reduced.message)
        t_reduced = time.time()
        new = detections_epoch(Path(reduced.meta["detections"]), Path(reduced.files[0]), params)
        ref = tile_epoch(ref_path, params)
        candidates, comparison = compare(new, ref, params)
        summary |= {k: v for k, v in comparison.items() if k != "reference"}
        candidates["status"] = _status(candidates, Path(reduced.files[0]),
                                       _tile_image(ref_path), _seen_earlier(out_dir, raw),
                                       params, comparison["offset_mag"], extended)
        candidates.meta.update({"EXPOSURE": raw.path.name, "MJD-OBS": raw.mjd,
                                "FILTER": raw.band, "OBJECT": raw.obj,
                                "REFERENC": ref_path.name})
        alerts = candidates[candidates["status"] == "alert"]
        events = write_voevents(alerts, context, raw, out / "voevents")
        if len(alerts):
            alerts["ivorn"] = [context.ivorn(raw, k) for k in range(len(alerts))]
    for table, name in ((candidates, "candidates"), (alerts, "alerts")):
        hdu = fits.table_to_hdu(table)
        hdu.name = name.upper()
        write_fits(fits.HDUList([fits.PrimaryHDU(), hdu]), out / f"{name}.fits")
    _write_alerts_table(out / "alerts_table.fits", alerts, events, raw, ref_path, access)
    t_done = time.time()
    summary |= {"n_candidates": len(candidates), "n_alerts": len(alerts),
                "alert_counts": {k: int((alerts["kind"] == k).sum()) for k in KINDS},
                "voevents": [str(p) for p in events],
                "reduce_seconds": t_reduced - t0, "compare_seconds": t_done - t_reduced,
                "seconds": t_done - t0,
                "latency_seconds": t_done - raw.path.stat().st_mtime,
                "pipeline_seconds": _pipeline_seconds(products_dir, raw)}
    write_json(out / "done.json", summary, indent=1, default=float)
    log.info("%s: %d alert(s) (%s) of %d candidate(s), %.1f s after arrival", raw.path.name,
             len(alerts), summary["alert_counts"], len(candidates), summary["latency_seconds"])
    return summary


#: Columns of ``<collection>.alerts`` (resdir/common/alerts.rd), in its order.
ALERT_COLUMNS = ("ivorn", "kind", "ra", "dec", "mag", "mag_err", "ref_mag", "ref_mag_err",
                 "delta_mag", "significance", "exposure", "mjd_obs", "band", "field",
                 "reference", "voevent", "owner_group", "release_date")


def _write_alerts_table(path: Path, alerts: Table, events: list[Path], raw: RawFile,
                        ref_path: Path | None, access: AccessPolicy | None) -> None:
    """The exposure's alerts as rows of ``<collection>.alerts``, for COPY.

    Release control: an alert is derived from the exposure and the reference tile,
    so it is released when the later of the two is (the survey's ``[access]``
    rules); it belongs to the survey's group.  Infinite significances (a source
    that appeared or vanished) are NULL.
    """
    n = len(alerts)
    owner, released = "", ""
    if access is not None:
        nights = [raw.night] + ([ref_path.parent.name] if ref_path is not None else [])
        owner = access.group
        released = access.latest([access.release(night, raw.obj) for night in nights]
                                 ).isoformat()

    def column(name: str, dtype: str = "f8") -> np.ndarray:
        if not n:
            return np.zeros(0, dtype=dtype)
        values = np.asarray(alerts[name].filled(np.nan) if hasattr(alerts[name], "filled")
                            else alerts[name], dtype=float)
        return np.where(np.isfinite(values), values, np.nan)

    table = Table({
        "ivorn": np.asarray(alerts["ivorn"] if n else [], dtype="U160"),
        "kind": np.asarray(alerts["kind"] if n else [], dtype="U11"),
        "ra": column("ra"), "dec": column("dec"), "mag": column("mag"),
        "mag_err": column("mag_err"), "ref_mag": column("ref_mag"),
        "ref_mag_err": column("ref_mag_err"), "delta_mag": column("delta_mag"),
        "significance": column("significance"),
        "exposure": np.full(n, raw.path.name, dtype="U80"),
        "mjd_obs": np.full(n, raw.mjd), "band": np.full(n, raw.band, dtype="U16"),
        "field": np.full(n, raw.obj, dtype="U40"),
        "reference": np.full(n, ref_path.name if ref_path else "", dtype="U80"),
        "voevent": np.asarray([e.read_text(encoding="utf-8") for e in events] or [],
                              dtype="U8192"),
        "owner_group": np.full(n, owner, dtype="U64"),
        "release_date": np.full(n, released, dtype="U10")})
    hdu = fits.table_to_hdu(table)
    hdu.name = "ALERTS"
    write_fits(fits.HDUList([fits.PrimaryHDU(), hdu]), path)


def _tile_image(catalogue: Path) -> Path:
    """The tile image of a tile catalogue (``…_st_tl_cat.fits`` → ``…_st_tl.fit``)."""
    return catalogue.with_name(catalogue.name.replace("_tl_cat.fits", "_tl.fit"))


def _seen_earlier(out_dir: Path, raw: RawFile) -> Table:
    """Detections (ra, dec, mag) of the night's earlier exposures of the same field and
    band, as rapid mode reduced them."""
    parts = []
    for done in sorted((out_dir / raw.night).glob("*/done.json")):
        summary = json.loads(done.read_text())
        if (summary.get("field") != raw.obj or summary.get("band") != raw.band
                or float(summary.get("mjd", np.inf)) >= raw.mjd):
            continue
        det = done.parent / f"{done.parent.name}_det.fits"
        if det.is_file():
            table, mag, _ = detection_magnitudes(det)
            parts.append(Table({"ra": np.asarray(table["RA"], float),
                                "dec": np.asarray(table["DEC"], float), "mag": mag}))
    return vstack(parts) if parts else Table(names=["ra", "dec", "mag"],
                                             dtype=["f8", "f8", "f8"])


#: How far (mag) an earlier sighting of a new source may be from its magnitude now.
CONFIRM_MAG = 0.75


#: How far a known nebula's emission is assumed to reach, in its catalogued major
#: diameters from its centre: twice its radius (HASH measures the bright shell; ionised
#: haloes reach about twice as far, Corradi et al. 2003, MNRAS 340, 417).
NEBULA_REACH = 1.0


def extended_objects(path: Path | None) -> Table:
    """Known extended objects (ra, dec, radius in arcsec) from a planetary-nebula
    catalogue (HASH columns: raj2000, dej2000, maj_diam); empty without one."""
    if path is None or not Path(path).is_file():
        return Table(names=["ra", "dec", "radius_arcsec"], dtype=["f8", "f8", "f8"])
    table = Table.read(path, hdu=1)
    return Table({"ra": np.asarray(table["raj2000"], float),
                  "dec": np.asarray(table["dej2000"], float),
                  "radius_arcsec": NEBULA_REACH * np.asarray(table["maj_diam"], float)})


def _on_extended(candidates: Table, extended: Table) -> np.ndarray:
    inside = np.zeros(len(candidates), dtype=bool)
    if not len(extended) or not len(candidates):
        return inside
    here = SkyCoord(candidates["ra"], candidates["dec"], unit="deg")
    for obj in extended:
        centre = SkyCoord(obj["ra"], obj["dec"], unit="deg")
        inside |= here.separation(centre).arcsec <= obj["radius_arcsec"]
    return inside


def _status(candidates: Table, image: Path, ref_image: Path, seen: Table,
            params: AlertParams, offset: float, extended: Table) -> np.ndarray:
    """Per candidate: ``alert``, ``held``, ``background``, ``present`` or ``extended``.

    ``background``: the candidate does not sit on plain sky
    (:func:`casuvo.catalogue.alerts.sky_like`, on the image where it is measured:
    the exposure, or the reference tile for a source that vanished).  ``held``: a
    *new* source no earlier exposure of the night detected (within the match radius,
    within :data:`CONFIRM_MAG`); it is alerted when a later one confirms it.  A single
    noisy detection near the limit (a blend of faint stars, a cosmic ray) makes no
    alert; changes of brightness are alerted at once (their significance is already
    ``sigma`` standard deviations).  ``present``: a reference source the exposure did
    not detect, whose flux forced photometry finds at its position after all (or on
    blanked pixels, where nothing can be said); a vanished source's forced magnitude
    goes into ``mag`` when it is an alert.  ``extended``: on a known nebula
    (:func:`extended_objects`), whose knots one seeing resolves and another does not.
    """
    status = np.full(len(candidates), "alert", dtype="U10")
    if not len(candidates):
        return status
    ra, dec = np.asarray(candidates["ra"]), np.asarray(candidates["dec"])
    here = np.isfinite(np.asarray(candidates["mag"], dtype=float))
    like = np.ones(len(candidates), dtype=bool)
    if here.any():
        like[here] = sky_like(image, ra[here], dec[here])
    if (~here).any() and ref_image.is_file():
        like[~here] = sky_like(ref_image, ra[~here], dec[~here])
    new = np.asarray(candidates["kind"]) == "new"
    status[new] = "held"
    if len(seen) and new.any():
        rows = np.flatnonzero(new)
        earlier = SkyCoord(seen["ra"], seen["dec"], unit="deg")
        for k in rows:
            sep = SkyCoord(ra[k], dec[k], unit="deg").separation(earlier).arcsec
            close = (sep <= params.radius_arcsec) & (
                np.abs(np.asarray(seen["mag"]) - candidates["mag"][k]) <= CONFIRM_MAG)
            if close.any():
                status[k] = "alert"
    gone = np.flatnonzero(~here)
    if gone.size:
        forced, forced_err = forced_magnitudes(image, ra[gone], dec[gone])
        # gone below detection: a partial fade the exposure would have detected, and
        # matched; a forced aperture on the reference position also loses flux to any
        # astrometric offset between the epochs, so it only tells present from gone
        faded = np.isfinite(forced_err) & (forced_err > 2.5 / np.log(10.0) / params.new_snr)
        status[gone[~faded]] = "present"
        keep = gone[faded & np.isfinite(forced)]
        candidates["mag"][keep] = (forced - offset)[faded & np.isfinite(forced)]
    status[~like] = "background"
    status[_on_extended(candidates, extended)] = "extended"
    return status


def pending(raw_dir: Path, out_dir: Path, filters: dict[str, str],
            night: str | None = None) -> tuple[list[RawFile], list[RawProblem]]:
    """Science exposures under ``raw_dir`` without a rapid-mode result, oldest first,
    and the files that cannot be read as raw frames.

    An exposure that failed (``failed.json``) is not tried again unless its file
    changed since.  An unreadable file is reported but not marked: a file still
    being transferred is truncated until it has landed, and is read on a later scan.
    """
    found, problems = [], []
    for path in sorted(raw_dir.glob("*/*.fits"), key=lambda p: p.stat().st_mtime):
        if night is not None and path.parent.name != night:
            continue
        raw = read_raw(path, filters)
        if isinstance(raw, RawProblem):
            problems.append(raw)
            continue
        if raw.kind != "science":
            continue
        result = out_dir / raw.night / path.stem
        if (result / "done.json").is_file():
            continue
        failed = result / "failed.json"
        if failed.is_file() and failed.stat().st_mtime >= path.stat().st_mtime:
            continue
        found.append(raw)
    return found, problems


def scan(cfg: PipelineConfig, raw_dir: Path, products_dir: Path, gaia_dir: Path,
         out_dir: Path, context: AlertContext, *, night: str | None = None,
         params: AlertParams | None = None, extended: Path | None = None,
         access: AccessPolicy | None = None, reported: set[Path] | None = None
         ) -> list[dict]:
    """Process every pending exposure once (:func:`pending`); their summaries.

    A failure is recorded in the exposure's ``failed.json`` and logged, and the
    scan goes on with the next one; its summary is ``{"exposure", "error"}``, as is
    an unreadable file's (once per file while ``reported`` collects them).
    ``extended``: a planetary-nebula catalogue whose nebulae mask candidates
    (:func:`extended_objects`).
    """
    masks = extended_objects(extended)
    full = instrument(cfg.instrument)
    filters = {f.eso_name: f.name for f in full.filters.values()}
    gaia_files = sorted(gaia_dir.glob("gaia_*.fits"))
    done: list[dict] = []
    found, problems = pending(raw_dir, out_dir, filters, night)
    for problem in problems:
        if reported is not None:
            if problem.path in reported:
                continue
            reported.add(problem.path)
        log.error("%s", problem.message)
        done.append({"exposure": problem.path.name, "error": problem.message})
    for raw in found:
        try:
            done.append(process_exposure(cfg, raw, products_dir, gaia_files, out_dir, context,
                                         params, masks, access))
        except (RapidError, OSError, ValueError) as exc:
            log.error("%s: %s", raw.path.name, exc)
            write_json(out_dir / raw.night / raw.path.stem / "failed.json",
                       {"exposure": raw.path.name, "message": str(exc)}, indent=1)
            message = str(exc)
            if not message.startswith(raw.path.name):
                message = f"{raw.path.name}: {message}"
            done.append({"exposure": raw.path.name, "error": message})
    return done


def watch(cfg: PipelineConfig, raw_dir: Path, products_dir: Path, gaia_dir: Path,
          out_dir: Path, context: AlertContext, *, night: str | None = None,
          extended: Path | None = None, once: bool = True, interval_s: float = 10.0,
          duration_s: float | None = None, access: AccessPolicy | None = None) -> list[dict]:
    """Scan the raw area (:func:`scan`) once, or every ``interval_s`` seconds until
    ``duration_s`` have passed (None: until interrupted); every exposure's summary."""
    done: list[dict] = []
    reported: set[Path] = set()
    start = time.monotonic()
    while True:
        done += scan(cfg, raw_dir, products_dir, gaia_dir, out_dir, context, night=night,
                     extended=extended, access=access, reported=reported)
        if once or (duration_s is not None and time.monotonic() - start >= duration_s):
            return done
        try:
            time.sleep(interval_s)
        except KeyboardInterrupt:
            return done

# SPDX-License-Identifier: BSD-3-Clause
"""Band-merged source catalogues (the VSA's ``<survey>Source``) from CASU tile catalogues.

A survey field observed in several passbands has one CASU catalogue per tile
(``*_st_tl_cat.fits``).  The band merge turns them into one table per survey
with one row per astronomical source and per-band columns with VSA names
(``jAperMag3``, ``ksClass``, ``hppErrBits``, ...), which ``casuvo ingest sources``
bulk-loads into ``<survey>.sources``.  It runs in the compute environment (as a
:class:`casuvo.jobs.BandMergeJob`) but imports only numpy and astropy, so its pure
functions work in the service environment too.

What a survey merges — its passbands in merge (wavelength) order with their
column prefixes, its colours and its survey code — is the survey's registry
entry (``pipelines/<survey>/config.toml``, :mod:`casuvo.surveys.registry`); a
survey added there is merged with no code change.  The steps live in one
module each, with their rules in their docstrings:

- :mod:`casuvo.catalogue.framesets` reads the tile catalogues and chooses the
  frame sets (one tile per band and field: QC passed, best seeing, deepest,
  latest);
- :mod:`casuvo.catalogue.pairing` pairs each band's detections with the sources
  built so far (mutual nearest neighbours within 1″) and averages positions;
- :mod:`casuvo.catalogue.measurements` computes CASU-calibrated aperture
  magnitudes, post-processing error bits and the VSA's mergedClass;
- :mod:`casuvo.catalogue.mergedtable` owns the table's columns, its frameSetID
  and Gaia-encoded sourceID, and writes the file.

This module composes them: :func:`merge_field` merges one frame set,
:func:`merge_survey` every frame set of a survey.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.table import Table, vstack

from casuvo.catalogue.framesets import (
    BandMergeError,
    TileFrame,
    read_tile_columns,
    read_tile_frame,
    select_frame_sets,
    tile_catalogues,
)
from casuvo.catalogue.measurements import (
    CLASS_NULL,
    aperture_magnitude,
    merged_class,
    pp_err_bits,
)
from casuvo.catalogue.mergedtable import (
    band_columns,
    frame_set_id,
    merged_path,
    source_ids,
    write_merged,
)
from casuvo.catalogue.pairing import merge_positions, tangent_offsets
from casuvo.surveys.registry import Survey

__all__ = ["merge_field", "merge_survey", "merged_path", "write_merged"]

log = logging.getLogger("casuvo.catalogue.bandmerge")  # also when run as __main__


def _band_values(frame: TileFrame, cols: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    mag3, err3 = aperture_magnitude(cols["Aper_flux_3"], cols["Aper_flux_3_err"], frame.magzpt,
                                    frame.exptime, frame.apcor3, frame.extinct, frame.airmass)
    mag4, err4 = aperture_magnitude(cols["Aper_flux_4"], cols["Aper_flux_4_err"], frame.magzpt,
                                    frame.exptime, frame.apcor4, frame.extinct, frame.airmass)
    return {"AperMag3": mag3, "AperMag3Err": err3, "AperMag4": mag4, "AperMag4Err": err4,
            "Class": np.asarray(cols["Classification"], np.int16),
            "Ell": np.asarray(cols["Ellipticity"], np.float32),
            "ppErrBits": pp_err_bits(cols["Error_bit_flag"], cols["Av_conf"],
                                     cols["Classification"], cols["Peak_height"],
                                     frame.saturate)}


def merge_field(survey: Survey, field: str, frames: Mapping[str, TileFrame]) -> Table:
    """The merged sources of one frame set (one tile per band of one field)."""
    bands = [b for b in survey.bands if b.prefix in frames]
    cols = {b.prefix: read_tile_columns(frames[b.prefix].path) for b in bands}
    positions = [(cols[b.prefix]["RA"], cols[b.prefix]["DEC"]) for b in bands]
    members, ra, dec = merge_positions(positions)
    n = len(members)
    out = Table()
    out["sourceID"] = source_ids(ra, dec, survey, field)
    out["frameSetID"] = np.full(n, frame_set_id(survey, field), dtype=np.int64)
    out["ra"], out["dec"] = ra, dec
    classes = np.full((n, len(survey.bands)), CLASS_NULL, dtype=np.int16)
    per_band: dict[str, dict[str, np.ndarray]] = {}
    for k, band in enumerate(survey.bands):
        values: dict[str, np.ndarray] = {}
        if band.prefix in frames:
            j = bands.index(band)
            idx = members[:, j]
            has = idx >= 0
            take = np.where(has, idx, 0)
            frame = frames[band.prefix]
            raw = _band_values(frame, cols[band.prefix])
            for name, arr in raw.items():
                values[name] = arr[take]
            xi, eta = tangent_offsets(cols[band.prefix]["RA"][take],
                                      cols[band.prefix]["DEC"][take], ra, dec)
            values["Xi"], values["Eta"] = xi, eta
            values["mjd"] = np.full(n, frame.mjd)
            classes[has, k] = values["Class"][has]
        else:
            has = np.zeros(n, dtype=bool)
        per_band[band.prefix] = {band.prefix + suffix: col for suffix, col
                                 in band_columns(values, has, n).items()}
    cls, probs = merged_class(classes)
    out["mergedClass"] = cls
    for i, name in enumerate(("pStar", "pGalaxy", "pNoise", "pSaturated")):
        out[name] = probs[:, i].astype(np.float32)
    for a, b in survey.colours:
        ma, mb = per_band[a][a + "AperMag3"], per_band[b][b + "AperMag3"]
        ea, eb = per_band[a][a + "AperMag3Err"], per_band[b][b + "AperMag3Err"]
        out[f"{a}m{b}Pnt"] = (np.asarray(ma, np.float64) - mb).astype(np.float32)
        out[f"{a}m{b}PntErr"] = np.hypot(np.asarray(ea, np.float64), eb).astype(np.float32)
        out[f"{a}m{b}Pnt"].unit = out[f"{a}m{b}PntErr"].unit = u.mag
    for band in survey.bands:
        for name, col in per_band[band.prefix].items():
            out[name] = col
    out["ra"].unit = out["dec"].unit = u.deg
    return out


def merge_survey(survey: Survey, products_dir: Path) -> tuple[Table, list[TileFrame]]:
    """The merged table of every frame set of a survey, sorted by sourceID, and its tiles."""
    if not survey.sources:
        raise BandMergeError(f"{survey.source}: survey {survey.key!r} has no band-merged "
                             "sources ([survey] sources = false)")
    tiles = tile_catalogues(products_dir, survey.key)
    if not tiles:
        raise BandMergeError(f"{products_dir / survey.key}: no tile catalogues "
                             f"(*_st_tl_cat.fits); run `casuvo pipeline run {survey.key}` first")
    frame_sets = select_frame_sets((read_tile_frame(p) for p in tiles), survey.bands)
    if not frame_sets:
        raise BandMergeError(f"{products_dir / survey.key}: no tile passed QC in a merged band")
    parts, used = [], []
    for field in sorted(frame_sets):
        frames = frame_sets[field]
        t0 = time.perf_counter()
        part = merge_field(survey, field, frames)
        log.info("%s %s: %d sources from %s (%.1f s)", survey.key, field, len(part),
                 ", ".join(f"{b}={f.path.name}" for b, f in frames.items()),
                 time.perf_counter() - t0)
        parts.append(part)
        used += [frames[b.prefix] for b in survey.bands if b.prefix in frames]
    table = vstack(parts, join_type="exact", metadata_conflicts="silent") if len(parts) > 1 \
        else parts[0]
    table.sort("sourceID")
    if len(np.unique(table["sourceID"])) != len(table):
        raise BandMergeError(f"{survey.key}: sourceID collision between frame sets "
                             "(overlapping fields with equal CRC-32 low bytes)")
    return table, used


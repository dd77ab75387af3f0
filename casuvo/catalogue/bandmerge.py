# SPDX-License-Identifier: BSD-3-Clause
"""Band-merged source catalogues (the VSA's ``<survey>Source``) from CASU tile catalogues.

A survey field observed in several passbands has one CASU catalogue per tile
(``*_st_tl_cat.fits``).  This module turns them into one table per survey with
one row per astronomical source and per-band columns with VSA names
(``jAperMag3``, ``ksClass``, ``hppErrBits``, ...), which ``casuvo ingest sources``
bulk-loads into ``<survey>.sources``.  It runs in the compute environment
(``python -m casuvo.catalogue.bandmerge SURVEY --out FILE``) but imports only numpy and
astropy, so its pure functions work in the service environment too.

**Frame sets.**  As in the VSA, a *frame set* is the set of frames merged into
sources: here one tile per passband per field (OBJECT).  A field/band observed
several times (VVV Ks on two nights) contributes the tile chosen by
:func:`select_frame_sets`: only tiles that passed QC (``QCSTATUS = 'pass'``)
of completed OBs (``OBSTATUS = 'Completed'``) count; among them the best seeing
(smallest ``PSF_FWHM``), then the deepest (largest ``ABMAGLIM``), then the
latest.  A band whose every tile failed QC is left out of that frame set (its
columns are NULL) rather than publishing bad photometry.
``frameSetID = survey code × 2^32 + CRC-32(field name)`` (survey codes:
:data:`SURVEY_CODE`), stable across reprocessing.

**Pairing.**  Passbands are merged in wavelength order.  Each band's detections
are paired with the sources built so far by mutual nearest neighbours
(astropy sky matching) within :data:`PAIRING_RADIUS_ARCSEC` = 1″, repeated on
what is left so that a detection whose nearest source is taken by a closer
detection may still pair with its second nearest; detections left unpaired
start new sources.  A source holds at most one detection per band and a
detection belongs to exactly one source.  The source position (ra, dec) is
the mean of its band positions (mean unit vector), updated after each band;
``<b>Xi``/``<b>Eta`` are the band position's offsets from it in the tangent
plane (arcsec, east and north), as in the VSA.

**Photometry.**  CASU's calibration (photcal's convention)::

    mag = MAGZPT − 2.5 log10(flux / EXPTIME) − APCORn − EXTINCT (AMSTART − 1)

with ``<b>AperMag3`` from ``Aper_flux_3`` (radius RCORE = 1″) and
``<b>AperMag4`` from ``Aper_flux_4`` (√2″); the errors are the photon-noise
errors 2.5/ln 10 × σ_flux/flux, without the zero-point error (MAGZRR).
Non-positive fluxes give NULL magnitudes.  Colours ``<a>m<b>Pnt`` are point-
source (aperture 3) colours, NULL unless both bands are measured.
``<b>mjd`` is the tile's MJD-OBS (start of its first exposure).

**Classes.**  ``<b>Class`` is CASU's Classification (−1 stellar, +1
non-stellar, 0 noise, −2 borderline stellar, −9 saturated); ``mergedClass``
follows the WSA/VSA Bayesian rule (Hambly et al. 2008, MNRAS 384, 637):
each band's class gives (pStar, pGalaxy, pNoise) from :data:`CLASS_PROBABILITIES`,
the unsaturated bands' probabilities are multiplied and normalised, and
mergedClass is −1 (star) if pStar ≥ 0.9, +1 (galaxy) if pGalaxy ≥ 0.9, 0
(noise) if pNoise ≥ 0.9, −2 (probable star) if pStar ≥ 0.7, −3 (probable
galaxy) if pGalaxy ≥ 0.7, otherwise the most probable of −2/−3/0; it is −9
(saturated, pSaturated = 1) where any band is saturated.

**Post-processing error bits** ``<b>ppErrBits`` (VSA bit numbers): bit 6
(64) bad pixels in the default aperture (CASU Error_bit_flag > 0, which also
counts the part of the aperture beyond the image edge), bit 7 (128) low
confidence in the default aperture (Av_conf < :data:`LOW_CONFIDENCE`, per cent
of the median), bit 16 (65536) close to saturation (Classification −9 or a
peak within :data:`NEAR_SATURATION` of SATURATE).

**sourceID.**  Gaia's scheme (:mod:`casuvo.sky.healpix`): nested HEALPix level-12
index × 2^35 + a running number whose 12-bit chunk is
``(survey code << 8) | (CRC-32(field) mod 256)``, the counter running in
(dec, ra) order inside each level-12 pixel.  So ``healpix12 = sourceID / 2^35``,
sorting on sourceID sorts along the HEALPix curve, the same tiles always give
the same identifiers, and VISTA and VST identifiers never collide.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Column, MaskedColumn, Table, vstack
from astropy.utils.exceptions import AstropyWarning

from casuvo.logsetup import configure_logging
from casuvo.sky.healpix import GAIA_HEALPIX_ORDER, gaia_source_ids, lonlat_to_nested

__all__ = [
    "CLASS_PROBABILITIES",
    "COLOURS",
    "LOW_CONFIDENCE",
    "NEAR_SATURATION",
    "PAIRING_RADIUS_ARCSEC",
    "SURVEY_BANDS",
    "SURVEY_CODE",
    "Band",
    "BandMergeError",
    "TileFrame",
    "aperture_magnitude",
    "column_names",
    "frame_set_id",
    "main",
    "merge_field",
    "merge_positions",
    "merge_survey",
    "merged_class",
    "merged_path",
    "pp_err_bits",
    "read_tile_frame",
    "select_frame_sets",
    "source_ids",
    "tangent_offsets",
    "tile_catalogues",
    "write_merged",
]

log = logging.getLogger("casuvo.catalogue.bandmerge")  # also when run as __main__

#: Largest separation of two band detections of one source (arcsec).
PAIRING_RADIUS_ARCSEC = 1.0
#: Av_conf below this (per cent of the median confidence) sets ppErrBits bit 7.
LOW_CONFIDENCE = 80.0
#: A peak above this fraction of SATURATE sets ppErrBits bit 16.
NEAR_SATURATION = 0.9

_BIT_BAD_PIXELS = 1 << 6
_BIT_LOW_CONFIDENCE = 1 << 7
_BIT_NEAR_SATURATION = 1 << 16

#: (pStar, pGalaxy, pNoise) of one band's CASU class (WSA, Hambly et al. 2008).
CLASS_PROBABILITIES: dict[int, tuple[float, float, float]] = {
    -1: (0.90, 0.05, 0.05),
    -2: (0.70, 0.25, 0.05),
    -3: (0.25, 0.70, 0.05),
    1: (0.05, 0.90, 0.05),
    0: (0.05, 0.05, 0.90),
}
SATURATED = -9

#: Fill values written as TNULL for NULL integer columns (the RD's nullLiterals).
CLASS_NULL = -99
ERRBITS_NULL = -99999999


@dataclass(frozen=True)
class Band:
    """A passband of a survey: VSA column prefix and the FILTER keyword of its tiles."""

    prefix: str
    """Column prefix (``j``, ``ks``, ``ha``)."""
    filter: str
    """FILTER value of the tiles (``J``, ``Ks``, ``Halpha``; see casuvo.surveys.instruments)."""


#: The passbands merged per survey, in wavelength order (the merge order).
SURVEY_BANDS: dict[str, tuple[Band, ...]] = {
    "vista": (Band("j", "J"), Band("h", "H"), Band("ks", "Ks")),
    "vst": (Band("u", "u"), Band("g", "g"), Band("r", "r"), Band("ha", "Halpha"),
            Band("i", "i")),
}
#: Point-source colours per survey: (bluer band, redder band) prefixes.
COLOURS: dict[str, tuple[tuple[str, str], ...]] = {
    "vista": (("j", "h"), ("h", "ks")),
    "vst": (("u", "g"), ("g", "r"), ("r", "i"), ("r", "ha")),
}
#: Prefix of frameSetID and part of the sourceID chunk, per survey.
SURVEY_CODE: dict[str, int] = {"vista": 1, "vst": 2}

#: Per-band columns: (suffix, numpy dtype, unit).
_BAND_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("AperMag3", "f4", "mag"), ("AperMag3Err", "f4", "mag"),
    ("AperMag4", "f4", "mag"), ("AperMag4Err", "f4", "mag"),
    ("Class", "i2", None), ("Ell", "f4", None), ("ppErrBits", "i4", None),
    ("Xi", "f4", "arcsec"), ("Eta", "f4", "arcsec"), ("mjd", "f8", "d"),
)


class BandMergeError(ValueError):
    """A tile catalogue cannot be merged; the message names the file and the problem."""


def column_names(survey: str) -> list[str]:
    """The columns of a survey's merged table, in order (what the RD declares, less the
    generated healpix12 and pos)."""
    names = ["sourceID", "frameSetID", "ra", "dec", "mergedClass", "pStar", "pGalaxy",
             "pNoise", "pSaturated"]
    for a, b in COLOURS[survey]:
        names += [f"{a}m{b}Pnt", f"{a}m{b}PntErr"]
    for band in SURVEY_BANDS[survey]:
        names += [band.prefix + suffix for suffix, _, _ in _BAND_COLUMNS]
    return names


def merged_path(products_dir: Path, survey: str) -> Path:
    """Where a survey's merged catalogue lives: ``<products>/<survey>/merged/…``."""
    return products_dir / survey / "merged" / f"{survey}_sources.fits"


def tile_catalogues(products_dir: Path, survey: str) -> list[Path]:
    """Every tile catalogue of a survey (``<products>/<survey>/<night>/*_st_tl_cat.fits``)."""
    return sorted((products_dir / survey).glob("2*/*_st_tl_cat.fits"))


def frame_set_id(survey: str, field: str) -> int:
    """VSA-style frameSetID: survey code × 2^32 + CRC-32 of the field name."""
    return SURVEY_CODE[survey] * 2**32 + zlib.crc32(field.encode("utf-8"))


# ----------------------------------------------------------------------- tiles

@dataclass(frozen=True)
class TileFrame:
    """The facts about one tile catalogue that frame-set selection and calibration need."""

    path: Path
    field: str
    filter: str
    mjd: float
    psf_fwhm: float
    """arcsec."""
    depth: float
    """ABMAGLIM (5σ, AB)."""
    qcstatus: str
    obstatus: str
    magzpt: float
    exptime: float
    apcor3: float
    apcor4: float
    extinct: float
    airmass: float
    saturate: float

    @property
    def usable(self) -> bool:
        """Passed QC and comes from a completed OB."""
        return self.qcstatus.strip().lower() == "pass" and \
            self.obstatus.strip().lower() == "completed"


def _open(path: Path) -> fits.HDUList:
    try:
        return fits.open(path, memmap=False, checksum=True)
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise BandMergeError(f"{path}: not a readable FITS file ({exc})") from exc


def _frame(path: Path, primary: fits.Header, ext: fits.Header) -> TileFrame:
    def get(key: str, header: fits.Header | None = None) -> object:
        for h in (header,) if header is not None else (ext, primary):
            if key in h:
                return h[key]
        raise BandMergeError(f"{path}: keyword {key} missing")

    try:
        return TileFrame(
            path=path, field=str(get("OBJECT", primary)).strip(),
            filter=str(get("FILTER", primary)).strip(), mjd=float(get("MJD-OBS", primary)),
            psf_fwhm=float(get("PSF_FWHM")), depth=float(get("ABMAGLIM")),
            qcstatus=str(primary.get("QCSTATUS", "pass")),
            obstatus=str(primary.get("OBSTATUS", "Completed")),
            magzpt=float(get("MAGZPT")), exptime=float(get("EXPTIME")),
            apcor3=float(get("APCOR3")), apcor4=float(get("APCOR4")),
            extinct=float(get("EXTINCT")), airmass=float(get("AMSTART", primary)),
            saturate=float(get("SATURATE")))
    except (TypeError, ValueError) as exc:
        raise BandMergeError(f"{path}: bad calibration keyword ({exc})") from exc


def read_tile_frame(path: Path) -> TileFrame:
    """The headers of a tile catalogue (primary + first table), strictly read."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyWarning)
        try:
            with _open(path) as hdul:
                if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
                    raise BandMergeError(f"{path}: no binary table extension")
                return _frame(path, hdul[0].header, hdul[1].header)
        except BandMergeError:
            raise
        except (OSError, ValueError, KeyError, AstropyWarning) as exc:
            raise BandMergeError(f"{path}: corrupt or truncated catalogue ({exc})") from exc


_TILE_COLUMNS = ("RA", "DEC", "Aper_flux_3", "Aper_flux_3_err", "Aper_flux_4",
                 "Aper_flux_4_err", "Classification", "Ellipticity", "Error_bit_flag",
                 "Av_conf", "Peak_height")


def read_tile_columns(path: Path) -> dict[str, np.ndarray]:
    """The catalogue columns merging uses, as native-endian arrays; errors name the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyWarning)
        try:
            with _open(path) as hdul:
                hdu = hdul[1]
                missing = [c for c in _TILE_COLUMNS if c not in hdu.columns.names]
                if missing:
                    raise BandMergeError(f"{path}: missing column(s) {', '.join(missing)}")
                data = hdu.data
                if data is None or data.nbytes < hdu.header["NAXIS1"] * hdu.header["NAXIS2"]:
                    raise BandMergeError(f"{path}: table data truncated")
                return {c: np.asarray(data[c]).astype(data[c].dtype.newbyteorder("="))
                        for c in _TILE_COLUMNS}
        except BandMergeError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AstropyWarning) as exc:
            raise BandMergeError(f"{path}: corrupt or truncated catalogue ({exc})") from exc


def select_frame_sets(frames: Iterable[TileFrame], bands: Sequence[Band]
                      ) -> dict[str, dict[str, TileFrame]]:
    """{field: {band prefix: tile}}: one tile per band and field (see the module notes).

    Tiles in a filter that is not one of ``bands`` are ignored; so are tiles
    that failed QC.  Fields with no usable tile at all are absent.
    """
    prefix = {b.filter: b.prefix for b in bands}
    best: dict[str, dict[str, TileFrame]] = {}
    for frame in frames:
        if frame.filter not in prefix:
            log.info("%s: filter %s is not merged; ignored", frame.path.name, frame.filter)
            continue
        if not frame.usable:
            log.warning("%s: QCSTATUS %s, OBSTATUS %s: not merged", frame.path.name,
                        frame.qcstatus.strip(), frame.obstatus.strip())
            continue
        slot = best.setdefault(frame.field, {})
        key = prefix[frame.filter]
        rank = (frame.psf_fwhm, -frame.depth, -frame.mjd, frame.path.name)
        if key not in slot or rank < (slot[key].psf_fwhm, -slot[key].depth, -slot[key].mjd,
                                      slot[key].path.name):
            slot[key] = frame
    return best


# ------------------------------------------------------------- pure functions

def aperture_magnitude(flux: np.ndarray, flux_err: np.ndarray, magzpt: float, exptime: float,
                       apcor: float, extinct: float, airmass: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(magnitude, error) of aperture fluxes in ADU; NaN where the flux is not positive."""
    flux = np.asarray(flux, dtype=np.float64)
    good = flux > 0
    safe = np.where(good, flux, 1.0)
    mag = magzpt - 2.5 * np.log10(safe / exptime) - apcor - extinct * (airmass - 1.0)
    err = 2.5 / np.log(10.0) * np.asarray(flux_err, dtype=np.float64) / safe
    return np.where(good, mag, np.nan), np.where(good, err, np.nan)


def pp_err_bits(error_bit_flag: np.ndarray, av_conf: np.ndarray, classification: np.ndarray,
                peak: np.ndarray, saturate: float) -> np.ndarray:
    """VSA post-processing error bits (int32) from CASU catalogue columns."""
    bits = np.zeros(len(error_bit_flag), dtype=np.int32)
    bits[np.asarray(error_bit_flag) > 0] |= _BIT_BAD_PIXELS
    bits[np.asarray(av_conf) < LOW_CONFIDENCE] |= _BIT_LOW_CONFIDENCE
    near = (np.asarray(classification) == SATURATED) | (
        np.asarray(peak) >= NEAR_SATURATION * saturate)
    bits[near] |= _BIT_NEAR_SATURATION
    return bits


def _unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    a, d = np.radians(np.asarray(ra, np.float64)), np.radians(np.asarray(dec, np.float64))
    return np.column_stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])


def _radec(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def tangent_offsets(ra: np.ndarray, dec: np.ndarray, ra0: np.ndarray, dec0: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic (xi, eta) of (ra, dec) about (ra0, dec0), in arcsec (east, north)."""
    a = np.radians(np.asarray(ra, np.float64) - np.asarray(ra0, np.float64))
    d = np.radians(np.asarray(dec, np.float64))
    d0 = np.radians(np.asarray(dec0, np.float64))
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a)
    xi = np.cos(d) * np.sin(a) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a)) / cosc
    return np.degrees(xi) * 3600.0, np.degrees(eta) * 3600.0


def _mutual_pairs(det: SkyCoord, src: SkyCoord, radius_arcsec: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(detection indices, source indices) of mutual nearest neighbours within the radius."""
    if len(det) == 0 or len(src) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    idx, sep, _ = det.match_to_catalog_sky(src)
    back, _, _ = src.match_to_catalog_sky(det)
    idx, back = np.atleast_1d(idx), np.atleast_1d(back)
    ok = (np.atleast_1d(sep.arcsec) <= radius_arcsec) & (back[idx] == np.arange(len(det)))
    return np.flatnonzero(ok), idx[ok]


def merge_positions(positions: Sequence[tuple[np.ndarray, np.ndarray]],
                    radius_arcsec: float = PAIRING_RADIUS_ARCSEC, rounds: int = 3
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair detections of several bands into sources.

    ``positions`` holds (ra, dec) arrays in degrees per band, in merge order.
    Returns (members, ra, dec): ``members[i, k]`` is the index of source i's
    detection in band k, or −1; (ra, dec) the mean of its band positions.
    Pairing is by mutual nearest neighbours within ``radius_arcsec``, tried
    ``rounds`` times on what is left unpaired.
    """
    nbands = len(positions)
    members = np.empty((0, nbands), dtype=np.int64)
    xyz_sum = np.empty((0, 3))
    for k, (ra, dec) in enumerate(positions):
        ra, dec = np.asarray(ra, np.float64), np.asarray(dec, np.float64)
        det_xyz = _unit_vectors(ra, dec)
        det_left = np.arange(len(ra))
        src_left = np.arange(len(members))
        for _ in range(rounds):
            if len(det_left) == 0 or len(src_left) == 0:
                break
            s_ra, s_dec = _radec(xyz_sum[src_left])
            d, s = _mutual_pairs(SkyCoord(ra[det_left] * u.deg, dec[det_left] * u.deg),
                                 SkyCoord(s_ra * u.deg, s_dec * u.deg), radius_arcsec)
            if len(d) == 0:
                break
            members[src_left[s], k] = det_left[d]
            xyz_sum[src_left[s]] += det_xyz[det_left[d]]
            det_left = np.delete(det_left, d)
            src_left = np.delete(src_left, s)
        new = np.full((len(det_left), nbands), -1, dtype=np.int64)
        new[:, k] = det_left
        members = np.vstack([members, new])
        xyz_sum = np.vstack([xyz_sum, det_xyz[det_left]])
    if len(members) == 0:
        return members, np.empty(0), np.empty(0)
    ra, dec = _radec(xyz_sum)
    return members, ra, dec


def merged_class(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mergedClass int16, probabilities (n, 4): pStar, pGalaxy, pNoise, pSaturated).

    ``classes`` is (n sources, n bands) of CASU classes, with ``CLASS_NULL``
    where a band has no detection.  Sources whose only detections are
    saturated get NaN pStar/pGalaxy/pNoise.
    """
    classes = np.asarray(classes)
    n = classes.shape[0]
    logp = np.zeros((n, 3))
    used = np.zeros(n, dtype=bool)
    for value, probs in CLASS_PROBABILITIES.items():
        hits = (classes == value).sum(axis=1)
        logp += hits[:, None] * np.log(np.asarray(probs))[None, :]
        used |= hits > 0
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[~used] = np.nan
    saturated = (classes == SATURATED).any(axis=1)
    eps = 1e-9
    star, galaxy, noise = p[:, 0], p[:, 1], p[:, 2]
    cls = np.select(
        [star >= 0.9 - eps, galaxy >= 0.9 - eps, noise >= 0.9 - eps,
         star >= 0.7 - eps, galaxy >= 0.7 - eps,
         (noise > star) & (noise > galaxy), star >= galaxy],
        [-1, 1, 0, -2, -3, 0, -2], default=-3).astype(np.int16)
    cls[saturated] = SATURATED
    cls[~used & ~saturated] = 0
    return cls, np.column_stack([p, saturated.astype(np.float64)])


def source_ids(ra: np.ndarray, dec: np.ndarray, survey: str, field: str) -> np.ndarray:
    """Gaia-encoded sourceIDs (see the module notes); stable for the same positions."""
    ra, dec = np.asarray(ra, np.float64), np.asarray(dec, np.float64)
    chunk = (SURVEY_CODE[survey] << 8) | (zlib.crc32(field.encode("utf-8")) & 0xFF)
    hpx = lonlat_to_nested(ra, dec, GAIA_HEALPIX_ORDER)
    order = np.lexsort((ra, dec, hpx))
    ids = np.empty(len(ra), dtype=np.int64)
    ids[order] = gaia_source_ids(ra[order], dec[order], chunk=chunk)
    return ids


# -------------------------------------------------------------------- merging

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


def merge_field(survey: str, field: str, frames: Mapping[str, TileFrame]) -> Table:
    """The merged sources of one frame set (one tile per band of one field)."""
    bands = [b for b in SURVEY_BANDS[survey] if b.prefix in frames]
    cols = {b.prefix: read_tile_columns(frames[b.prefix].path) for b in bands}
    positions = [(cols[b.prefix]["RA"], cols[b.prefix]["DEC"]) for b in bands]
    members, ra, dec = merge_positions(positions)
    n = len(members)
    out = Table()
    out["sourceID"] = source_ids(ra, dec, survey, field)
    out["frameSetID"] = np.full(n, frame_set_id(survey, field), dtype=np.int64)
    out["ra"], out["dec"] = ra, dec
    classes = np.full((n, len(SURVEY_BANDS[survey])), CLASS_NULL, dtype=np.int16)
    per_band: dict[str, dict[str, np.ndarray]] = {}
    for k, band in enumerate(SURVEY_BANDS[survey]):
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
                                 in _band_columns(values, has, n).items()}
    cls, probs = merged_class(classes)
    out["mergedClass"] = cls
    for i, name in enumerate(("pStar", "pGalaxy", "pNoise", "pSaturated")):
        out[name] = probs[:, i].astype(np.float32)
    for a, b in COLOURS[survey]:
        ma, mb = per_band[a][a + "AperMag3"], per_band[b][b + "AperMag3"]
        ea, eb = per_band[a][a + "AperMag3Err"], per_band[b][b + "AperMag3Err"]
        out[f"{a}m{b}Pnt"] = (np.asarray(ma, np.float64) - mb).astype(np.float32)
        out[f"{a}m{b}PntErr"] = np.hypot(np.asarray(ea, np.float64), eb).astype(np.float32)
        out[f"{a}m{b}Pnt"].unit = out[f"{a}m{b}PntErr"].unit = u.mag
    for band in SURVEY_BANDS[survey]:
        for name, col in per_band[band.prefix].items():
            out[name] = col
    out["ra"].unit = out["dec"].unit = u.deg
    return out


def _band_columns(values: Mapping[str, np.ndarray], has: np.ndarray, n: int
                  ) -> dict[str, Column]:
    """One band's output columns; NULL (NaN, or masked integers) where it has no detection."""
    out: dict[str, Column] = {}
    for suffix, dtype, unit in _BAND_COLUMNS:
        src = values.get(suffix)
        if np.dtype(dtype).kind == "i":
            fill = CLASS_NULL if suffix == "Class" else ERRBITS_NULL
            data = np.where(has, src, fill) if src is not None else np.full(n, fill)
            out[suffix] = MaskedColumn(data.astype(dtype), mask=~has, fill_value=fill)
        else:
            data = np.where(has, src, np.nan) if src is not None else np.full(n, np.nan)
            out[suffix] = Column(data.astype(dtype), unit=unit)
    return out


def merge_survey(survey: str, products_dir: Path) -> tuple[Table, list[TileFrame]]:
    """The merged table of every frame set of a survey, sorted by sourceID, and its tiles."""
    if survey not in SURVEY_BANDS:
        raise BandMergeError(f"unknown survey {survey!r}; known: {', '.join(SURVEY_BANDS)}")
    tiles = tile_catalogues(products_dir, survey)
    if not tiles:
        raise BandMergeError(f"{products_dir / survey}: no tile catalogues (*_st_tl_cat.fits);"
                             f" run `casuvo pipeline run {survey}` first")
    frame_sets = select_frame_sets((read_tile_frame(p) for p in tiles), SURVEY_BANDS[survey])
    if not frame_sets:
        raise BandMergeError(f"{products_dir / survey}: no tile passed QC in a merged band")
    parts, used = [], []
    for field in sorted(frame_sets):
        frames = frame_sets[field]
        t0 = time.perf_counter()
        part = merge_field(survey, field, frames)
        log.info("%s %s: %d sources from %s (%.1f s)", survey, field, len(part),
                 ", ".join(f"{b}={f.path.name}" for b, f in frames.items()),
                 time.perf_counter() - t0)
        parts.append(part)
        used += [frames[b.prefix] for b in SURVEY_BANDS[survey] if b.prefix in frames]
    table = vstack(parts, join_type="exact", metadata_conflicts="silent") if len(parts) > 1 \
        else parts[0]
    table.sort("sourceID")
    if len(np.unique(table["sourceID"])) != len(table):
        raise BandMergeError(f"{survey}: sourceID collision between frame sets "
                             "(overlapping fields with equal CRC-32 low bytes)")
    return table, used


def write_merged(table: Table, frames: Sequence[TileFrame], survey: str, path: Path) -> None:
    """Write the merged table atomically (temporary name, then rename) with provenance."""
    primary = fits.PrimaryHDU()
    h = primary.header
    h["SURVEY"] = survey
    h["PRODCATG"] = "SCIENCE.CATALOG"
    h["FILTER"] = "MULTI"
    for i, band in enumerate(SURVEY_BANDS[survey], start=1):
        h[f"FILTER{i}"] = band.filter
    h["PAIRRAD"] = (PAIRING_RADIUS_ARCSEC, "[arcsec] band pairing radius")
    for i, frame in enumerate(frames, start=1):
        h[f"PROV{i}"] = frame.path.name
    hdu = fits.table_to_hdu(table)
    hdu.header["EXTNAME"] = "SOURCES"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fits.HDUList([primary, hdu]).writeto(tmp, overwrite=True, checksum=True)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m casuvo.catalogue.bandmerge SURVEY [--out FILE] [--products DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m casuvo.catalogue.bandmerge",
                                     description="Merge a survey's tile catalogues into one "
                                                 "band-merged source table (FITS).")
    parser.add_argument("survey", choices=sorted(SURVEY_BANDS))
    parser.add_argument("--products", type=Path,
                        help="pipeline products directory (default var/data/products)")
    parser.add_argument("--out", type=Path, help="output FITS file (default "
                        "<products>/<survey>/merged/<survey>_sources.fits)")
    args = parser.parse_args(argv)
    configure_logging()
    if args.products is None:
        from casuvo.config import Settings

        args.products = Settings.from_env().data_dir / "products"
    out = args.out or merged_path(args.products, args.survey)
    t0 = time.perf_counter()
    try:
        table, frames = merge_survey(args.survey, args.products)
        write_merged(table, frames, args.survey, out)
    except BandMergeError as exc:
        print(f"casuvo bandmerge: {exc}", file=sys.stderr)
        return 1
    print(f"{args.survey}: {len(table):,d} sources from {len(frames)} tiles -> {out} "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

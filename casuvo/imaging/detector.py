# SPDX-License-Identifier: BSD-3-Clause
"""One detector from sky-subtracted image to calibrated catalogue: the shared core step.

Used for single exposures (to solve their WCS before stacking), for stacked
pawprints and for tiles alike: detect and measure, solve the astrometry
against Gaia at the epoch, derive aperture corrections and the zero point,
add calibrated RA/Dec to the catalogue and measure QC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.wcs import WCS

from casuvo.imaging import astrometry, photcal, qc
from casuvo.imaging.detect import DetectionParams, detect_sources
from casuvo.imaging.reduce import Background
from casuvo.imaging.reference import Reference
from casuvo.surveys.instruments import Filter

__all__ = ["Calibrated", "ExposureInfo", "astrometric_stars", "calibrate", "calibrate_detector",
           "measure"]


@dataclass(frozen=True)
class ExposureInfo:
    """What calibration needs to know about the exposure(s) behind an image."""

    band: str
    exptime: float
    airmass: float
    mjd: float
    pixel_scale: float
    saturation: float


@dataclass(frozen=True)
class Calibrated:
    catalogue: Table
    wcs: WCS
    apcor: dict[str, float]
    zp: photcal.ZeroPoint
    qc: qc.DetectorQC
    astrometry: astrometry.AstrometryResult
    stars: np.ndarray
    """The point sources (bool per detection) seeing and aperture corrections came from."""


def _on_detector(ref: Reference, wcs: WCS, shape: tuple[int, int], margin: float = 20
                 ) -> Reference:
    x, y = wcs.world_to_pixel(SkyCoord(ref.ra * u.deg, ref.dec * u.deg))
    ok = (x > -margin) & (y > -margin) & (x < shape[1] + margin) & (y < shape[0] + margin)
    return Reference(ref.ra[ok], ref.dec[ok], ref.g[ok], ref.bp_rp[ok], ref.source_id[ok])


def measure(sky: np.ndarray, conf: np.ndarray | None, background: Background,
            info: ExposureInfo, params: DetectionParams, n_apertures: int = 13) -> Table:
    """Detect and measure the sources of one sky-subtracted detector image."""
    return detect_sources(sky, background.noise, info.pixel_scale,
                          info.saturation - background.level, conf, params, n_apertures)


def astrometric_stars(cat: Table) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the detections fit for astrometry: compact, S/N > 10 (noise only confuses)."""
    use = np.asarray((cat["Classification"] != 0)
                     & (cat["Aper_flux_3"] > 10 * cat["Aper_flux_3_err"]))
    return (np.asarray(cat["X_coordinate"], float)[use],
            np.asarray(cat["Y_coordinate"], float)[use])


def calibrate(sky: np.ndarray, cat: Table, ast: astrometry.AstrometryResult,
              background: Background, ref: Reference, filt: Filter, info: ExposureInfo,
              params: DetectionParams, zero: photcal.ZeroPoint | None = None,
              camera_apcor: dict[str, float] | None = None,
              camera_seeing: tuple[float, float] | None = None) -> Calibrated:
    """Add calibrated RA/Dec, aperture corrections, zero point and QC to a catalogue.

    ``zero`` is the camera's zero point where this detector has too few
    calibration stars of its own (one zero point fits the whole camera, since
    the flats keep the detectors' relative gains); ``camera_apcor`` and
    ``camera_seeing`` (FWHM″, ellipticity) stand in likewise where the detector has
    too few point sources.  Seeing, ellipticity and aperture corrections come from
    point sources only: isolated, unsaturated stars matched to Gaia."""
    x = np.asarray(cat["X_coordinate"], float)
    y = np.asarray(cat["Y_coordinate"], float)
    world = ast.wcs.pixel_to_world(x - 1, y - 1)
    cat["RA"] = world.ra.deg
    cat["DEC"] = world.dec.deg
    ref_c = SkyCoord(ref.ra * u.deg, ref.dec * u.deg)
    idx, sep, _ = world.match_to_catalog_sky(ref_c)
    matched = sep.arcsec < 0.5
    sat = info.saturation - background.level
    rcore = params.rcore_arcsec / info.pixel_scale
    stars = qc.point_sources(cat, sat, 5 * rcore, reference=matched)
    apcor = photcal.aperture_corrections(cat, sat, rcore, stars)
    if camera_apcor:  # too few bright isolated stars here: the camera's curve of growth
        apcor = {k: (camera_apcor[k] if not np.isfinite(v) else v) for k, v in apcor.items()}
    zp = zero or photcal.zero_point(cat, ref.g[idx], ref.bp_rp[idx], matched, info.band,
                                    info.exptime, info.airmass, filt.extinction,
                                    apcor["APCOR3"], sat)
    seeing, ell, _ = qc.measure_seeing(sky, cat, stars, info.pixel_scale)
    if camera_seeing and not np.isfinite(seeing):
        seeing, ell = camera_seeing
    depth = qc.depth_5sigma(background.noise, info.pixel_scale, zp.magzpt, info.exptime,
                            apcor["APCOR3"], filt.extinction, info.airmass,
                            params.rcore_arcsec)
    dqc = qc.DetectorQC(seeing, ell, background.level, background.noise, zp.magzpt,
                        zp.magzrr, depth, ast.rms_arcsec, ast.n_stars, zp.n_stars, len(cat))
    return Calibrated(cat, ast.wcs, apcor, zp, dqc, ast, stars)


def calibrate_detector(sky: np.ndarray, conf: np.ndarray | None, background: Background,
                       header_wcs: WCS, ref: Reference, filt: Filter, info: ExposureInfo,
                       params: DetectionParams, cat: Table | None = None) -> Calibrated:
    """Detect (unless ``cat`` holds the sources already), solve WCS on its own, calibrate
    and measure QC of one image (a tile)."""
    if cat is None:
        cat = measure(sky, conf, background, info, params)
    local = _on_detector(ref, header_wcs, sky.shape, margin=60)
    x, y = astrometric_stars(cat)
    ast = astrometry.solve(x, y, header_wcs, local)
    return calibrate(sky, cat, ast, background, local, filt, info, params)

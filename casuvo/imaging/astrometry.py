# SPDX-License-Identifier: BSD-3-Clause
"""Astrometric calibration of one detector against the epoch-propagated Gaia reference.

1. Coarse offset: the header WCS is the telescope's nominal one (pointing
   errors of a few arcsec).  All detection–reference pairs within a search
   radius vote in a 2-D histogram of offsets; the peak is the shift.
2. Fine fit: unambiguous nearest matches within 1″ after the shift feed
   a linear TAN-SIP fit (:mod:`casuvo.imaging.tansip`; SIP terms when enough stars
   constrain them); two iterations with 3σ clipping.
The RMS of the final residuals and the number of stars are CASU's STDCRMS and
NUMBRMS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.wcs import WCS

from casuvo.imaging.reference import Reference
from casuvo.imaging.tansip import fit_tan_sip

__all__ = ["AstrometryError", "AstrometryResult", "DetectorStars", "solve", "solve_mosaic"]


class AstrometryError(ValueError):
    """Not enough reference stars to calibrate; the message says how many."""


@dataclass(frozen=True)
class AstrometryResult:
    wcs: WCS
    rms_arcsec: float
    n_stars: int
    offset_arcsec: tuple[float, float]


def _coarse_shift(det: SkyCoord, ref: SkyCoord, search: float) -> tuple[float, float]:
    """Offset (dra*, ddec) in arcsec voted by all pairs within ``search`` arcsec."""
    i, j, _, _ = search_around_sky(det, ref, search * u.arcsec)
    if len(i) < 3:
        raise AstrometryError(f"only {len(i)} detection–reference pairs within {search}″")
    dra = ((ref.ra.deg[j] - det.ra.deg[i] + 180) % 360 - 180) * np.cos(det.dec.rad[i]) * 3600
    ddec = (ref.dec.deg[j] - det.dec.deg[i]) * 3600
    step = 0.5
    bins = np.arange(-search, search + step, step)
    hist, xe, ye = np.histogram2d(dra, ddec, bins=[bins, bins])
    k = np.unravel_index(np.argmax(hist), hist.shape)
    cx, cy = (xe[k[0]] + xe[k[0] + 1]) / 2, (ye[k[1]] + ye[k[1] + 1]) / 2
    near = (np.abs(dra - cx) < 1.0) & (np.abs(ddec - cy) < 1.0)
    return float(np.median(dra[near])), float(np.median(ddec[near]))


def solve(x: np.ndarray, y: np.ndarray, header_wcs: WCS, ref: Reference,
          search_arcsec: float = 10.0, match_arcsec: float = 1.0,
          min_stars: int = 8) -> AstrometryResult:
    """Fit the WCS of a detector from detections at 1-based pixel (x, y)."""
    if len(ref) < min_stars:
        raise AstrometryError(f"only {len(ref)} reference stars on the detector "
                              f"(need {min_stars})")
    if len(x) < min_stars:
        raise AstrometryError(f"only {len(x)} detections (need {min_stars})")
    ref_c = SkyCoord(ref.ra * u.deg, ref.dec * u.deg)
    det_c = header_wcs.pixel_to_world(x - 1, y - 1)
    dra, ddec = _coarse_shift(det_c, ref_c, search_arcsec)
    shifted = det_c.spherical_offsets_by(dra * u.arcsec, ddec * u.arcsec)
    idx, sep, _ = shifted.match_to_catalog_sky(ref_c)
    back, _, _ = ref_c.match_to_catalog_sky(shifted)
    good = (sep.arcsec < match_arcsec) & (back[idx] == np.arange(len(idx)))
    wcs = header_wcs
    for _ in range(2):
        n = int(good.sum())
        if n < min_stars:
            raise AstrometryError(f"only {n} stars matched within {match_arcsec}″ "
                                  f"(need {min_stars})")
        sip = 2 if n >= 40 else None
        wcs = fit_tan_sip(x[good] - 1, y[good] - 1, ref_c[idx[good]], sip)
        fitted = wcs.pixel_to_world(x - 1, y - 1)
        resid = fitted[good].separation(ref_c[idx[good]]).arcsec
        rms = float(np.sqrt(np.mean(resid**2)))
        keep = resid < max(3 * rms, 0.05)
        good[np.flatnonzero(good)[~keep]] = False
        # Re-match on the fitted solution: recovers stars the coarse shift missed.
        idx2, sep2, _ = fitted.match_to_catalog_sky(ref_c)
        good = good | ((sep2.arcsec < min(match_arcsec, 5 * rms + 0.1)) & (idx2 == idx))
    fitted = wcs.pixel_to_world(x[good] - 1, y[good] - 1)
    resid = fitted.separation(ref_c[idx[good]]).arcsec
    return AstrometryResult(wcs, float(np.sqrt(np.mean(resid**2))), int(good.sum()),
                            (dra, ddec))


def _plane(axis_ra: float, axis_dec: float) -> WCS:
    """Gnomonic projection about the optical axis, in arcsec (standard coordinates)."""
    plane = WCS(naxis=2)
    plane.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    plane.wcs.crval = [axis_ra, axis_dec]
    plane.wcs.crpix = [0.0, 0.0]
    plane.wcs.cdelt = [-1 / 3600, 1 / 3600]
    return plane


def _design(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Terms of a cubic polynomial of focal-plane coordinates (units of 1000″): pointing,
    rotation, scale and the radial distortion of the optics about any centre."""
    return np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y, x**3, x * x * y,
                            x * y * y, y**3])


@dataclass(frozen=True)
class DetectorStars:
    """Detections of one detector for the mosaic solution."""

    x: np.ndarray
    """1-based pixel columns."""
    y: np.ndarray
    header_wcs: WCS
    """The nominal WCS (used to find the matches)."""
    centre_arcsec: tuple[float, float]
    """Where the detector centre sits in the focal plane (east, north of the axis)."""


def _focal(d: DetectorStars, x: np.ndarray, y: np.ndarray, scale: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """Focal-plane position (arcsec east, north of the axis) of 1-based pixels (x, y).

    Columns run west as on the sky (CD1_1 < 0), rows north."""
    nx, ny = d.header_wcs.pixel_shape
    ex = d.centre_arcsec[0] - (x - (nx + 1) / 2) * scale
    ny_ = d.centre_arcsec[1] + (y - (ny + 1) / 2) * scale
    return ex, ny_


def solve_mosaic(detectors: Sequence[DetectorStars], ref: Reference,
                 axis: tuple[float, float], pixel_scale: float,
                 search_arcsec: float = 10.0, match_arcsec: float = 1.0,
                 min_stars: int = 8) -> list[AstrometryResult]:
    """One astrometric solution for a whole camera exposure (or stack), per detector WCSs.

    Per-detector fits go wrong where a detector holds few reference stars (small
    detectors, blue bands, sparse fields).  The optics are one system: every
    detection is placed in the focal plane by the camera's geometry, and one
    cubic polynomial maps the focal plane onto the sky's tangent plane about the
    nominal axis — pointing, rotation, scale and the radial distortion of the
    optics (what CASU's ZPN projection holds for VIRCAM) — fitted to every
    matched star of every detector.  Each detector then gets a TAN-SIP WCS
    fitted to noise-free points of that model.  The nominal header WCSs only
    serve to find the matches.
    """
    plane = _plane(*axis)
    hx, hy, fx, fy, dets = [], [], [], [], []
    for k, d in enumerate(detectors):
        px, py = plane.world_to_pixel(d.header_wcs.pixel_to_world(d.x - 1, d.y - 1))
        ex, ey = _focal(d, d.x, d.y, pixel_scale)
        hx.append(px)
        hy.append(py)
        fx.append(ex)
        fy.append(ey)
        dets.append(np.full(len(d.x), k))
    hx_all, hy_all = np.concatenate(hx), np.concatenate(hy)
    fx_all, fy_all = np.concatenate(fx) / 1000, np.concatenate(fy) / 1000
    det = np.concatenate(dets)
    if len(ref) < min_stars or len(hx_all) < min_stars:
        raise AstrometryError(f"only {len(ref)} reference stars and {len(hx_all)} detections")
    ref_c = SkyCoord(ref.ra * u.deg, ref.dec * u.deg)
    ru, rv = plane.world_to_pixel(ref_c)
    det_c = plane.pixel_to_world(hx_all, hy_all)
    dra, ddec = _coarse_shift(det_c, ref_c, search_arcsec)
    shifted = det_c.spherical_offsets_by(dra * u.arcsec, ddec * u.arcsec)
    idx, sep, _ = shifted.match_to_catalog_sky(ref_c)
    back, _, _ = ref_c.match_to_catalog_sky(shifted)
    good = (sep.arcsec < match_arcsec) & (back[idx] == np.arange(len(idx)))
    full = _design(fx_all, fy_all)
    cx = cy = np.zeros(full.shape[1])
    for _ in range(4):
        n = int(good.sum())
        if n < max(min_stars, 20):
            raise AstrometryError(f"only {n} stars matched within {match_arcsec}″ "
                                  f"(need {max(min_stars, 20)})")
        cx, *_ = np.linalg.lstsq(full[good], ru[idx[good]] / 1000, rcond=None)
        cy, *_ = np.linalg.lstsq(full[good], rv[idx[good]] / 1000, rcond=None)
        mu, mv = full @ cx * 1000, full @ cy * 1000
        rms = float(np.sqrt(np.mean((np.hypot(mu - ru[idx], mv - rv[idx]))[good] ** 2)))
        # Re-match on the model, then clip at 3σ (or 50 mas for very good fits).
        idx, sep, _ = plane.pixel_to_world(mu, mv).match_to_catalog_sky(ref_c)
        good = (sep.arcsec < max(3 * rms, 0.05)) & (sep.arcsec < match_arcsec)
    results = []
    for k, d in enumerate(detectors):
        nx, ny = d.header_wcs.pixel_shape
        gx, gy = np.meshgrid(np.linspace(1, nx, 9), np.linspace(1, ny, 9))
        gx, gy = gx.ravel(), gy.ravel()
        ex, ey = _focal(d, gx, gy, pixel_scale)
        grid = _design(ex / 1000, ey / 1000)
        world = plane.pixel_to_world(grid @ cx * 1000, grid @ cy * 1000)
        fitted = fit_tan_sip(gx - 1, gy - 1, world, 3, crpix=((nx + 1) / 2, (ny + 1) / 2))
        mine = good[det == k]
        if not mine.any():
            results.append(AstrometryResult(fitted, float("nan"), 0, (dra, ddec)))
            continue
        sky = fitted.pixel_to_world(d.x[mine] - 1, d.y[mine] - 1)
        r = sky.separation(ref_c[idx[det == k][mine]]).arcsec
        results.append(AstrometryResult(fitted, float(np.sqrt(np.mean(r**2))),
                                        int(mine.sum()), (dra, ddec)))
    return results

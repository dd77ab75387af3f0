# SPDX-License-Identifier: BSD-3-Clause
"""Astrometric calibration of one detector against the epoch-propagated Gaia reference.

1. Coarse offset: the header WCS is the telescope's nominal one (pointing
   errors of a few arcsec).  All detection–reference pairs within a search
   radius vote in a 2-D histogram of offsets; the peak is the shift.
2. Fine fit: unambiguous nearest matches within 1″ after the shift feed
   astropy's ``fit_wcs_from_points`` (TAN, with SIP terms when enough stars
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
from astropy.wcs.utils import fit_wcs_from_points

from casuvo.imaging.reference import Reference

__all__ = ["AstrometryError", "AstrometryResult", "solve", "solve_mosaic"]


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
        xy = (x[good] - 1, y[good] - 1)
        wcs = fit_wcs_from_points(xy, ref_c[idx[good]], projection="TAN", sip_degree=sip)
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


def _design(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the focal-plane model for (x, y) in units of 1000″: a linear term per axis
    and one radial cubic coefficient shared by both (x r², y r²)."""
    r2 = x**2 + y**2
    one, zero = np.ones_like(x), np.zeros_like(x)
    ax = np.column_stack([one, x, y, zero, zero, zero, x * r2])
    ay = np.column_stack([zero, zero, zero, one, x, y, y * r2])
    return ax, ay


def solve_mosaic(detectors: Sequence[tuple[np.ndarray, np.ndarray, WCS]], ref: Reference,
                 axis: tuple[float, float], search_arcsec: float = 10.0,
                 match_arcsec: float = 1.0, min_stars: int = 8
                 ) -> list[AstrometryResult | None]:
    """One astrometric solution for a whole camera exposure (or stack), per detector WCSs.

    Per-detector fits go wrong where a detector holds few reference stars (small
    detectors, blue bands, sparse fields).  The optics are one system: the
    nominal detector WCSs are corrected by one model of the focal plane — a
    linear transformation (pointing, rotation, scale) and a radial cubic
    distortion about the optical axis, as CASU's ZPN projection for VIRCAM —
    fitted to every matched star of every detector.  Each detector then gets a
    TAN-SIP WCS fitted to noise-free points of that model.  ``detectors`` holds
    (x, y) of detections (1-based pixels) and the header WCS of each detector.
    """
    plane = _plane(*axis)
    xs, ys, dets = [], [], []
    for k, (x, y, wcs) in enumerate(detectors):
        world = wcs.pixel_to_world(x - 1, y - 1)
        px, py = plane.world_to_pixel(world)
        xs.append(px)
        ys.append(py)
        dets.append(np.full(len(x), k))
    fx_all, fy_all, det = np.concatenate(xs), np.concatenate(ys), np.concatenate(dets)
    if len(ref) < min_stars or len(fx_all) < min_stars:
        raise AstrometryError(f"only {len(ref)} reference stars and {len(fx_all)} detections")
    ref_c = SkyCoord(ref.ra * u.deg, ref.dec * u.deg)
    ru, rv = plane.world_to_pixel(ref_c)
    det_c = plane.pixel_to_world(fx_all, fy_all)
    dra, ddec = _coarse_shift(det_c, ref_c, search_arcsec)
    shifted = det_c.spherical_offsets_by(dra * u.arcsec, ddec * u.arcsec)
    idx, sep, _ = shifted.match_to_catalog_sky(ref_c)
    back, _, _ = ref_c.match_to_catalog_sky(shifted)
    good = (sep.arcsec < match_arcsec) & (back[idx] == np.arange(len(idx)))
    coef = np.zeros(7)
    for _ in range(4):
        n = int(good.sum())
        if n < max(min_stars, 10):
            raise AstrometryError(f"only {n} stars matched within {match_arcsec}″ "
                                  f"(need {max(min_stars, 10)})")
        ax, ay = _design(fx_all[good] / 1000, fy_all[good] / 1000)
        a = np.vstack([ax, ay])
        b = np.concatenate([ru[idx[good]], rv[idx[good]]]) / 1000
        coef, *_ = np.linalg.lstsq(a, b, rcond=None)
        fx, fy = _design(fx_all / 1000, fy_all / 1000)
        mu, mv = fx @ coef * 1000, fy @ coef * 1000
        resid = np.hypot(mu - ru[idx], mv - rv[idx])
        rms = float(np.sqrt(np.mean(resid[good] ** 2)))
        # Re-match on the model, then clip at 3σ (or 50 mas for very good fits).
        model_c = plane.pixel_to_world(mu, mv)
        idx, sep, _ = model_c.match_to_catalog_sky(ref_c)
        resid = sep.arcsec
        good = resid < max(3 * rms, 0.05)
        good &= resid < match_arcsec
    results: list[AstrometryResult | None] = []
    for k, (x, y, wcs) in enumerate(detectors):
        nx, ny = wcs.pixel_shape if wcs.pixel_shape else (int(x.max()) + 1, int(y.max()) + 1)
        gx, gy = np.meshgrid(np.linspace(0, nx - 1, 9), np.linspace(0, ny - 1, 9))
        gx, gy = gx.ravel(), gy.ravel()
        px, py = plane.world_to_pixel(wcs.pixel_to_world(gx, gy))
        fx, fy = _design(px / 1000, py / 1000)
        world = plane.pixel_to_world(fx @ coef * 1000, fy @ coef * 1000)
        fitted = fit_wcs_from_points((gx, gy), world, projection="TAN", sip_degree=3)
        mine = good & (det == k)
        if mine.sum() == 0:
            results.append(AstrometryResult(fitted, float("nan"), 0, (dra, ddec)))
            continue
        sky = fitted.pixel_to_world(x[mine[det == k]] - 1, y[mine[det == k]] - 1)
        r = sky.separation(ref_c[idx[mine]]).arcsec
        results.append(AstrometryResult(fitted, float(np.sqrt(np.mean(r**2))),
                                        int(mine.sum()), (dra, ddec)))
    return results

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

from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.wcs import WCS
from astropy.wcs.utils import fit_wcs_from_points

from casuvo.imaging.reference import Reference

__all__ = ["AstrometryError", "AstrometryResult", "solve"]


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

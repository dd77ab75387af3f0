# SPDX-License-Identifier: BSD-3-Clause
"""Aperture corrections and the photometric zero point of a detector, against Gaia.

CASU's convention (formats.md §2.3): a calibrated magnitude is
``MAGZPT − 2.5 log10(flux / EXPTIME) − APCORn − EXTINCT (airmass − 1)``, so
MAGZPT is the zero point for 1 s at airmass 1.  Stars used: stellar class,
unsaturated, S/N > 20, BP−RP within the range of the colour transformations,
matched to Gaia within 0.5″.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.stats import sigma_clipped_stats
from astropy.table import Table

from casuvo.imaging import qc
from casuvo.surveys.photometry import VALID_BP_RP, gaia_to_band

__all__ = ["PhotometryError", "ZeroPoint", "aperture_corrections", "zero_point"]

#: The aperture taken as "total" for aperture corrections (4 × RCORE = 4″):
#: a Moffat β=3 PSF of 1″ FWHM leaves 0.3 % of its flux outside it.
TOTAL_APERTURE = 7


class PhotometryError(ValueError):
    """Too few calibration stars; the message says how many."""


@dataclass(frozen=True)
class ZeroPoint:
    magzpt: float
    magzrr: float
    n_stars: int


def _bright_stars(cat: Table, saturation: float, snr_min: float = 20.0) -> np.ndarray:
    snr = cat["Aper_flux_3"] / np.maximum(cat["Aper_flux_3_err"], 1e-9)
    return ((cat["Classification"] == -1) & (snr > snr_min)
            & (cat["Peak_height"] < 0.7 * saturation) & (cat["Error_bit_flag"] == 0))


def aperture_corrections(cat: Table, saturation: float, rcore_pix: float,
                         point_sources: np.ndarray | None = None) -> dict[str, float]:
    """APCOR1..APCOR7 (mag, ≥ 0) from the curve of growth of bright isolated stars.

    A neighbour inside the largest aperture inflates the "total" flux; in
    crowded Galactic-plane fields that would bias every correction, so only
    stars without a detected neighbour within 5 × RCORE count.  ``point_sources``
    (see :func:`casuvo.imaging.qc.point_sources`: also matched to Gaia) is used
    first where it holds enough stars: nebular knots have other curves of growth.
    """
    isolated = qc.isolated(cat, 5 * rcore_pix)
    good = _bright_stars(cat, saturation, snr_min=50.0) & isolated
    if point_sources is not None and (good & point_sources).sum() >= 5:
        good = good & point_sources
    elif point_sources is not None and point_sources.sum() >= 5:
        good = point_sources
    if good.sum() < 5:
        good = _bright_stars(cat, saturation) & isolated
    if good.sum() < 5:
        good = _bright_stars(cat, saturation)
    total = np.asarray(cat[f"Aper_flux_{TOTAL_APERTURE}"], float)[good]
    out = {}
    for n in range(1, 8):
        flux = np.asarray(cat[f"Aper_flux_{n}"], float)[good]
        ok = (flux > 0) & (total > 0)
        if ok.sum() < 3:
            out[f"APCOR{n}"] = float("nan")
            continue
        _, med, _ = sigma_clipped_stats(-2.5 * np.log10(flux[ok] / total[ok]), sigma=3)
        out[f"APCOR{n}"] = float(max(med, 0.0))
    return out


def zero_point(cat: Table, matched_g: np.ndarray, matched_bp_rp: np.ndarray,
               matched: np.ndarray, band: str, exptime: float, airmass: float,
               extinction: float, apcor3: float, saturation: float,
               min_stars: int = 5) -> ZeroPoint:
    """MAGZPT from detections ``matched`` (bool) to Gaia stars of (G, BP−RP)."""
    lo, hi = VALID_BP_RP
    use = matched & _bright_stars(cat, saturation) & (matched_bp_rp > lo + 0.1) & (
        matched_bp_rp < hi - 0.2)
    n = int(use.sum())
    if n < min_stars:
        raise PhotometryError(f"only {n} calibration stars (need {min_stars})")
    flux = np.asarray(cat["Aper_flux_3"], float)[use]
    inst = -2.5 * np.log10(flux / exptime) - apcor3
    ref = gaia_to_band(band, matched_g[use], matched_bp_rp[use])
    zps = ref - inst + extinction * (airmass - 1.0)
    _, med, std = sigma_clipped_stats(zps, sigma=2.5)
    return ZeroPoint(float(med), float(1.2533 * std / np.sqrt(n)), n)

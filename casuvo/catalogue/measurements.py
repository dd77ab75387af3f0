# SPDX-License-Identifier: BSD-3-Clause
"""What a band-merged source says about itself: magnitudes, error bits, merged class.

**Photometry.**  CASU's calibration (photcal's convention)::

    mag = MAGZPT − 2.5 log10(flux / EXPTIME) − APCORn − EXTINCT (AMSTART − 1)

with ``<b>AperMag3`` from ``Aper_flux_3`` (radius RCORE = 1″) and
``<b>AperMag4`` from ``Aper_flux_4`` (√2″); the errors are the photon-noise
errors 2.5/ln 10 × σ_flux/flux, without the zero-point error (MAGZRR).
Non-positive fluxes give NULL magnitudes (:func:`aperture_magnitude`).

**Classes.**  ``<b>Class`` is CASU's Classification (−1 stellar, +1
non-stellar, 0 noise, −2 borderline stellar, −9 saturated); ``mergedClass``
follows the WSA/VSA Bayesian rule (Hambly et al. 2008, MNRAS 384, 637):
each band's class gives (pStar, pGalaxy, pNoise) from :data:`CLASS_PROBABILITIES`,
the unsaturated bands' probabilities are multiplied and normalised, and
mergedClass is −1 (star) if pStar ≥ 0.9, +1 (galaxy) if pGalaxy ≥ 0.9, 0
(noise) if pNoise ≥ 0.9, −2 (probable star) if pStar ≥ 0.7, −3 (probable
galaxy) if pGalaxy ≥ 0.7, otherwise the most probable of −2/−3/0; it is −9
(saturated, pSaturated = 1) where any band is saturated (:func:`merged_class`).

**Post-processing error bits** ``<b>ppErrBits`` (VSA bit numbers): bit 6
(64) bad pixels in the default aperture (CASU Error_bit_flag > 0, which also
counts the part of the aperture beyond the image edge), bit 7 (128) low
confidence in the default aperture (Av_conf < :data:`LOW_CONFIDENCE`, per cent
of the median), bit 16 (65536) close to saturation (Classification −9 or a
peak within :data:`NEAR_SATURATION` of SATURATE) (:func:`pp_err_bits`).

Pure numpy functions of catalogue columns.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLASS_NULL", "CLASS_PROBABILITIES", "ERRBITS_NULL", "LOW_CONFIDENCE",
           "NEAR_SATURATION", "SATURATED", "aperture_magnitude", "merged_class", "pp_err_bits"]

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
#: CASU's class of a saturated detection (and mergedClass of a saturated source).
SATURATED = -9

#: Fill values written as TNULL for NULL integer columns (the RD's nullLiterals).
CLASS_NULL = -99
ERRBITS_NULL = -99999999


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

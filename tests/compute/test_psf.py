# SPDX-License-Identifier: BSD-3-Clause
"""PSF photometry (casuvo.imaging.psf) against the truth on crowded detectors.

Expected values are the simulator's: a crowded detector rendered at the
Bulge's density (:mod:`casuvo.simulate.crowded`, its own truth table).  PSF
and aperture magnitudes are compared with the truth in 1-mag bins; the scatter
is 1.4826 MAD after each method's median offset for bright stars is removed
(a zero point is calibrated on Gaia anyway).  PSF photometry must be at least
as accurate as the aperture in every bin (within the noise of the scatter
estimate, 3 %) and better where crowding dominates.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from casuvo.imaging.detect import DetectionParams, detect_sources
from casuvo.imaging.psf import catalogue_psf
from casuvo.simulate.crowded import PIXEL, SKY, ZP, crowded_field

BINS = np.arange(13.0, 18.01, 1.0)
MIN_PER_BIN = 20


def _scatter(truth_mag: np.ndarray, mag: np.ndarray) -> dict[float, float]:
    """Per 1-mag bin of the true magnitude: 1.4826 MAD of (measured − true), the
    bright offset removed."""
    ok = np.isfinite(mag)
    delta = mag - truth_mag
    bright = ok & (truth_mag < 15.0)
    offset = np.median(delta[bright])
    out = {}
    for lo in BINS[:-1]:
        m = ok & (truth_mag >= lo) & (truth_mag < lo + 1)
        if m.sum() >= MIN_PER_BIN:
            d = delta[m] - offset
            out[float(lo)] = float(1.4826 * np.median(np.abs(d - np.median(d))))
    return out


def test_psf_beats_the_aperture_in_a_crowded_field() -> None:
    """At the Bulge's density (VVV's inner fields, 10⁶ stars per square degree);
    three times it is ``bench/psf.py``'s, where the bright stars are not yet as good
    as the aperture's (docs/psf.md)."""
    density = 1.0e6
    image, truth = crowded_field(768, density, seed=11)
    cat = detect_sources(image, float(np.sqrt(SKY)), PIXEL, 1e9, params=DetectionParams())
    x, y = np.asarray(cat["X_coordinate"], float), np.asarray(cat["Y_coordinate"], float)
    f3, e3 = np.asarray(cat["Aper_flux_3"], float), np.asarray(cat["Aper_flux_3_err"], float)
    snr = np.divide(f3, e3, out=np.zeros_like(f3), where=e3 > 0)
    result = catalogue_psf(image, np.full(image.shape, 100.0, np.float32), cat,
                           pixel_scale=PIXEL, params=DetectionParams(), saturation=1e9,
                           gain=1.0)
    assert result.n_stars >= 10
    # each true star's detection: nearest within 1 pixel
    d, k = cKDTree(np.column_stack([x - 1, y - 1])).query(
        np.column_stack([truth["x"], truth["y"]]), distance_upper_bound=1.0)
    hit = np.isfinite(d)
    tmag = np.asarray(truth["mag"])[hit]
    with np.errstate(invalid="ignore", divide="ignore"):
        aper = ZP - 2.5 * np.log10(f3[k[hit]])
        psf = ZP - 2.5 * np.log10(result.flux[k[hit]])
    # the scale: bright stars' PSF − core-aperture offset (the aperture correction and,
    # in crowding, the neighbours in the model's normalisation aperture); one number
    # per image, the same everywhere on it (see the scatter below)
    bright = np.isfinite(psf) & np.isfinite(aper) & (tmag < 15.0)
    offset = float(np.median(psf[bright] - aper[bright]))
    assert -1.0 < offset < 0.0, offset
    s_aper, s_psf = _scatter(tmag, aper), _scatter(tmag, psf)
    fitted = np.isfinite(result.flux[snr > 10]).mean()
    print(f"density {density:.0e}: PSF model {result.n_stars} stars, FWHM "
          f"{result.fwhm_pix * PIXEL:.3f}″, PSF − aperture (bright) {offset:+.3f}, "
          f"{fitted:.1%} of S/N>10 sources fitted; scatter aperture/PSF per bin: " + ", ".join(
              f"{lo:.0f}: {s_aper[lo]:.3f}/{s_psf.get(lo, np.nan):.3f}" for lo in s_aper))
    assert fitted >= 0.9
    assert set(s_psf) == set(s_aper) and len(s_aper) >= 4
    for lo in s_aper:
        assert s_psf[lo] <= 1.03 * s_aper[lo], (lo, s_psf[lo], s_aper[lo])
    # better where crowding dominates the error: the mid-range bins
    assert np.mean([s_psf[lo] / s_aper[lo] for lo in (14.0, 15.0, 16.0)]) < 0.85

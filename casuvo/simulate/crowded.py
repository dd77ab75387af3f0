# SPDX-License-Identifier: BSD-3-Clause
"""A crowded detector at a chosen source density, with its truth: PSF photometry's test bed.

The demo's fields are not crowded (a few thousand sources per detector);
VVV's Bulge fields reach about 10⁶ sources per square degree to Ks 18.  This
renders one sky-subtracted detector (``size`` pixels square, VIRCAM's 0.339″
pixels) at any density: stars with a Galactic luminosity function
(dN/dm ∝ 10^(0.3 m)) to 1.5 mag below the 1″ aperture's 5σ limit (the unresolved
ones are the crowding noise), a PSF that varies over the detector (Moffat β = 3,
FWHM 0.85″ at the centre to 1.05″ in the corners, ellipticity 0.03 to 0.10,
its angle turning with the position), a known sky and Poisson noise.
Used by ``bench/psf.py`` and ``tests/compute/test_psf.py``.
"""

from __future__ import annotations

import math

import numpy as np
from astropy.table import Table

from casuvo.simulate.rendering import MoffatPSF

__all__ = ["MAG_RANGE", "PIXEL", "SKY", "ZP", "crowded_field", "psf_at"]

PIXEL = 0.339
ZP = 26.2
"""Magnitude of 1 e⁻: the 1″ core aperture's 5σ limit is then Ks ≈ 18.5, a VVV
pawprint's depth."""
SKY = 2000.0
"""Sky per pixel, e⁻ (Ks is bright)."""
MAG_RANGE = (12.0, 20.0)


def psf_at(x: float, y: float, size: int) -> MoffatPSF:
    """The PSF at pixel (x, y): wider, more elongated and turned towards the corners."""
    r = math.hypot(x - size / 2, y - size / 2) / (size / math.sqrt(2))
    angle = math.degrees(math.atan2(y - size / 2, x - size / 2))
    return MoffatPSF.make(0.85 + 0.20 * r**2, 0.03 + 0.07 * r, angle, PIXEL)


def crowded_field(size: int, density: float, seed: int) -> tuple[np.ndarray, Table]:
    """A sky-subtracted image (e⁻, float32) and its truth (x, y 0-based, mag).

    ``density``: stars per square degree to :data:`MAG_RANGE`'s faint end.
    """
    rng = np.random.default_rng(seed)
    area = (size * PIXEL / 3600) ** 2
    n = rng.poisson(density * area)
    lo, hi = 10 ** (0.3 * MAG_RANGE[0]), 10 ** (0.3 * MAG_RANGE[1])
    mag = np.log10(rng.uniform(lo, hi, n)) / 0.3
    x, y = rng.uniform(-0.5, size - 0.5, n), rng.uniform(-0.5, size - 0.5, n)
    flux = 10 ** (-0.4 * (mag - ZP))
    image = np.zeros((size, size), np.float64)
    for xi, yi, fi in zip(x, y, flux, strict=True):
        psf = psf_at(xi, yi, size)
        # the stamp reaches further for bright stars (their wings stay above the noise)
        h = int(min(max(4 * psf.fwhm, 6) * (1 + math.log10(max(fi, 1)) / 3), 40))
        cx, cy = int(round(xi)), int(round(yi))
        x0, x1 = max(cx - h, 0), min(cx + h + 1, size)
        y0, y1 = max(cy - h, 0), min(cy + h + 1, size)
        if x0 >= x1 or y0 >= y1:
            continue
        dx = np.arange(x0, x1) - xi
        dy = np.arange(y0, y1) - yi
        image[y0:y1, x0:x1] += fi * psf.peak_fraction() * psf.profile(dx[None, :], dy[:, None])
    noisy = rng.poisson(image + SKY).astype(np.float32) - np.float32(SKY)
    return noisy, Table({"x": x, "y": y, "mag": mag})

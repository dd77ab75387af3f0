# SPDX-License-Identifier: BSD-3-Clause
"""Colour transformations from Gaia (G, BP−RP) to the survey bands (Vega magnitudes).

The imaging pipelines calibrate zero points against Gaia stars through these
relations, and the simulator uses the same relations (plus intrinsic scatter)
as the stars' true colours, so calibration is as good as the relations are
for normal stars.  Sources: Riello et al. 2021 (A&A 649, A3), table C.2, for
2MASS J/H/Ks (taken for VISTA J/H/Ks, whose colour terms against 2MASS are a
few hundredths) and SDSS g/r/i; Z, Y, u and Hα are interpolations of our own
(documented approximations; VPHAS+ r−Hα of main-sequence stars ≈ 0–0.5).
Valid for 0 ≤ BP−RP ≤ 3 (normal stars); outside, colours are clamped.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BANDS", "VALID_BP_RP", "gaia_to_band"]

VALID_BP_RP = (0.0, 3.0)

# G − band = Σ c_k x^k, x = BP − RP.
_G_MINUS = {
    "J": (-0.01798, 1.389, -0.09338),
    "H": (-0.1048, 2.011, -0.1758),
    "Ks": (-0.0981, 2.089, -0.1579),
    "g": (0.2199, -0.6365, -0.1548, 0.0064),
    "r": (-0.09837, 0.08592, 0.1907, -0.1701, 0.02263),
    "i": (-0.293, 0.6404, -0.09609, -0.002104),
}
BANDS = ("Z", "Y", "J", "H", "Ks", "u", "g", "r", "i", "Halpha")


def _poly(coeffs: tuple[float, ...], x: np.ndarray) -> np.ndarray:
    return sum(c * x**k for k, c in enumerate(coeffs))


def gaia_to_band(band: str, g: np.ndarray, bp_rp: np.ndarray) -> np.ndarray:
    """Predicted Vega magnitude in ``band`` of stars with Gaia G and BP−RP."""
    x = np.clip(np.asarray(bp_rp, float), *VALID_BP_RP)
    g = np.asarray(g, float)
    if band in _G_MINUS:
        return g - _poly(_G_MINUS[band], x)
    j = g - _poly(_G_MINUS["J"], x)
    i = g - _poly(_G_MINUS["i"], x)
    if band == "Z":  # between SDSS i (763 nm) and J (1252 nm), nearer i
        return i + 0.35 * (j - i)
    if band == "Y":
        return i + 0.6 * (j - i)
    r = g - _poly(_G_MINUS["r"], x)
    gg = g - _poly(_G_MINUS["g"], x)
    if band == "u":  # u − g grows with g − r along the main sequence
        return gg + 0.8 + 1.4 * (gg - r)
    if band == "Halpha":
        return r - (0.04 + 0.16 * x)
    raise ValueError(f"no Gaia transformation for band {band!r}; known: {', '.join(BANDS)}")

# SPDX-License-Identifier: BSD-3-Clause
"""Colour transformations from Gaia (G, BP−RP) to the survey bands (Vega magnitudes).

One owner for these relations: the simulator gives stars their survey-band
magnitudes with them, and the imaging pipelines calibrate zero points against
Gaia stars through them — as a real pipeline calibrates through published
transformations.  Valid for normal stars; outside each relation's colour range
it is continued along its tangent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from casuvo.surveys.instruments import OMEGACAM, VIRCAM

__all__ = ["ALL_BANDS", "VALID_BP_RP", "gaia_to_band", "survey_mags_from_gaia"]

#: Every band of both cameras.
ALL_BANDS: tuple[str, ...] = (*VIRCAM.filters, *OMEGACAM.filters)
#: BP−RP range of the stars the pipelines calibrate with (all relations hold there).
VALID_BP_RP = (0.5, 2.0)

# -- colour transformations ---------------------------------------------------------------

#: G − X = Σ c_k (BP−RP)^k and the colour range where the fit holds (Gaia EDR3
#: documentation §5.5.1, Riello et al. 2021, Table C.2): SDSS g r i (AB) and
#: 2MASS J H Ks (Vega).  Outside the range the polynomial is continued along
#: its tangent at the edge instead of being extrapolated.
_GAIA_TO: dict[str, tuple[tuple[float, ...], float, float]] = {
    "g_sdss": ((0.2199, -0.6365, -0.1548, 0.0064), 0.3, 3.0),
    "r_sdss": ((-0.09837, 0.08592, 0.1907, -0.1701, 0.02263), 0.0, 3.0),
    "i_sdss": ((-0.293, 0.6404, -0.09609, -0.002104), 0.5, 2.0),
    "J_2mass": ((0.01798, 1.389, -0.09338), -0.5, 2.5),
    "H_2mass": ((-0.1048, 2.011, -0.1758), -0.5, 2.5),
    "Ks_2mass": ((-0.0981, 2.089, -0.1579), -0.5, 2.5),
}
#: Stellar locus u−g against g−r (SDSS, AB), read off Covey et al. (2007) —
#: approximate; hot stars at the blue end.
_LOCUS_GR = np.array([-0.5, -0.3, -0.1, 0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.6])
_LOCUS_UG = np.array([-0.4, 0.15, 0.6, 0.9, 1.05, 1.3, 1.75, 2.2, 2.45, 2.6, 2.7])
#: r − Hα against r − i (Vega) of normal stars (VPHAS+ main-sequence track,
#: Drew et al. 2014, read by eye — approximate).
_HA_RI = np.array([-0.3, 0.0, 0.25, 0.5, 1.0, 1.5, 2.5])
_HA_RHA = np.array([-0.05, 0.0, 0.15, 0.27, 0.42, 0.55, 0.7])


def _gaia_relation(name: str, bp_rp: np.ndarray) -> np.ndarray:
    coeffs, lo, hi = _GAIA_TO[name]
    poly = np.polynomial.Polynomial(coeffs)
    xc = np.clip(bp_rp, lo, hi)
    return poly(xc) + poly.deriv()(xc) * (bp_rp - xc)


def survey_mags_from_gaia(g: np.ndarray, bp_rp: np.ndarray,
                          bands: Sequence[str] = ALL_BANDS) -> dict[str, np.ndarray]:
    """Vega magnitudes in the survey bands of stars with Gaia G and BP−RP.

    SDSS g r i and 2MASS J H Ks come from the Gaia EDR3 relations above; SDSS
    (AB) to the VST Vega system subtracts the filters' AB−Vega offsets
    (:class:`~casuvo.surveys.instruments.Filter`); 2MASS to VISTA follows
    González-Fernández et al. (2018): J_V = J − 0.031 (J−Ks), H_V = H + 0.015
    (J−Ks), Ks_V = Ks − 0.006 (J−Ks), with Z_V = J + 0.86 (J−Ks) and
    Y_V = J + 0.46 (J−Ks) as rough approximations.  u follows the stellar
    locus in g−r and Hα the main-sequence r−Hα(r−i) track: both approximate.
    """
    g = np.asarray(g, dtype=np.float64)
    x = np.asarray(bp_rp, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    abv = {b: f.ab_minus_vega for b, f in OMEGACAM.filters.items()}
    g_ab = g - _gaia_relation("g_sdss", x)
    r_ab = g - _gaia_relation("r_sdss", x)
    i_ab = g - _gaia_relation("i_sdss", x)
    u_ab = g_ab + np.interp(g_ab - r_ab, _LOCUS_GR, _LOCUS_UG)
    vst = {"u": u_ab - abv["u"], "g": g_ab - abv["g"], "r": r_ab - abv["r"],
           "i": i_ab - abv["i"]}
    vst["Halpha"] = vst["r"] - np.interp(vst["r"] - vst["i"], _HA_RI, _HA_RHA)
    j2 = g - _gaia_relation("J_2mass", x)
    h2 = g - _gaia_relation("H_2mass", x)
    k2 = g - _gaia_relation("Ks_2mass", x)
    jk = j2 - k2
    vista = {"Z": j2 + 0.86 * jk, "Y": j2 + 0.46 * jk, "J": j2 - 0.031 * jk,
             "H": h2 + 0.015 * jk, "Ks": k2 - 0.006 * jk}
    for band in bands:
        out[band] = vista[band] if band in vista else vst[band]
    return out


def gaia_to_band(band: str, g: np.ndarray, bp_rp: np.ndarray) -> np.ndarray:
    """Predicted Vega magnitude in one ``band`` of stars with Gaia G and BP−RP."""
    if band not in ALL_BANDS:
        raise ValueError(f"no Gaia transformation for band {band!r}; known: "
                         f"{', '.join(ALL_BANDS)}")
    return survey_mags_from_gaia(g, bp_rp, (band,))[band]

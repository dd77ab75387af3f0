# SPDX-License-Identifier: BSD-3-Clause
"""Where each detector looks: the nominal WCS of the header and the true mapping.

Each detector has a *nominal* TAN WCS in its header (CD from the pixel
scale, CRPIX at the detector centre, CRVAL the detector centre projected
from the commanded pointing).  The *true* mapping differs by the telescope's
pointing error and a radial cubic distortion about the optical axis
(:data:`DISTORTION_EDGE_ARCSEC` at the field edge).  The true mapping is an
exact TAN-SIP WCS with its tangent point at the true optical axis
(:func:`true_wcs`), so the truth is a FITS WCS a pipeline can evaluate.
"""

from __future__ import annotations

import math

from astropy.io import fits
from astropy.wcs import WCS

from casuvo.simulate.pointing import Pointing
from casuvo.surveys.instruments import Instrument

__all__ = ["DISTORTION_EDGE_ARCSEC", "distortion_coefficient", "field_edge_arcsec",
           "nominal_wcs_cards", "sky_offset", "tangent_wcs", "true_axis", "true_wcs",
           "true_wcs_cards", "wcs_from_cards"]

#: Displacement of the radial cubic distortion at the corner of the mosaic farthest from the
#: optical axis (arcsec): δ = k r³ with k = DISTORTION_EDGE_ARCSEC / r_edge³.
DISTORTION_EDGE_ARCSEC = 0.8


def tangent_wcs(ra: float, dec: float) -> WCS:
    """Gnomonic projection about (ra, dec) in arcsec, x towards east, y north; pixel 0 = centre."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [1.0, 1.0]
    w.wcs.cdelt = [1 / 3600.0, 1 / 3600.0]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.radesys = "ICRS"
    w.wcs.set()
    return w


def sky_offset(ra: float, dec: float, east: float, north: float) -> tuple[float, float]:
    """The sky position at (east, north) arcsec in the tangent plane about (ra, dec)."""
    r, d = tangent_wcs(ra, dec).wcs_pix2world([[east, north]], 0)[0]
    return float(r), float(d)


def field_edge_arcsec(inst: Instrument) -> float:
    """Distance from the optical axis to the farthest detector corner (arcsec)."""
    hx, hy = inst.nx * inst.pixel_scale / 2, inst.ny * inst.pixel_scale / 2
    return max(math.hypot(abs(x) + hx, abs(y) + hy) for x, y in inst.layout)


def distortion_coefficient(inst: Instrument) -> float:
    """k (arcsec⁻²) of the true radial distortion δ = k r³ about the optical axis."""
    return DISTORTION_EDGE_ARCSEC / field_edge_arcsec(inst) ** 3


def wcs_from_cards(cards: dict[str, object], inst: Instrument) -> WCS:
    w = WCS(fits.Header(cards))
    w.pixel_shape = (inst.nx, inst.ny)
    return w


def nominal_wcs_cards(inst: Instrument, pointing: Pointing, chip: int) -> dict[str, object]:
    x_k, y_k = inst.layout[chip - 1]
    ra, dec = sky_offset(pointing.ra, pointing.dec, x_k, y_k)
    s = inst.pixel_scale / 3600.0
    return {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": ra, "CRVAL2": dec,
            "CRPIX1": (inst.nx + 1) / 2, "CRPIX2": (inst.ny + 1) / 2, "CD1_1": -s,
            "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": s, "CUNIT1": "deg", "CUNIT2": "deg",
            "RADESYS": "ICRS"}


def true_axis(pointing: Pointing) -> tuple[float, float]:
    return sky_offset(pointing.ra, pointing.dec, *pointing.pointing_error_arcsec)


def true_wcs_cards(inst: Instrument, pointing: Pointing, chip: int) -> dict[str, object]:
    """TAN-SIP about the true optical axis; the SIP terms are the radial cubic distortion."""
    x_k, y_k = inst.layout[chip - 1]
    ra, dec = true_axis(pointing)
    s = inst.pixel_scale
    k_pix = distortion_coefficient(inst) * s**2  # δ[pix] = k_pix r[pix]³
    cards: dict[str, object] = {
        "CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRVAL1": ra, "CRVAL2": dec,
        "CRPIX1": (inst.nx + 1) / 2 + x_k / s, "CRPIX2": (inst.ny + 1) / 2 - y_k / s,
        "CD1_1": -s / 3600.0, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": s / 3600.0,
        "CUNIT1": "deg", "CUNIT2": "deg", "RADESYS": "ICRS", "A_ORDER": 3, "B_ORDER": 3,
        "A_3_0": k_pix, "A_1_2": k_pix, "B_2_1": k_pix, "B_0_3": k_pix}
    return cards


def true_wcs(inst: Instrument, pointing: Pointing, chip: int) -> WCS:
    """The true pixel→sky mapping of detector ``chip``: pointing error and distortion."""
    return wcs_from_cards(true_wcs_cards(inst, pointing, chip), inst)

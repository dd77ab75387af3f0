# SPDX-License-Identifier: BSD-3-Clause
"""Proper motion: positions at another epoch, linear in space along the tangent.

Gaia gives (ra, dec) at ``ref_epoch`` (2016.0 for DR3) with ``pmra`` (μα* =
μα cos δ) and ``pmdec`` in mas/yr; the other catalogue was observed at its own
epoch (VISTA tiles: 2010–2020).  Moving the Gaia position to that epoch before
matching keeps a star with 100 mas/yr on its counterpart.

The motion is applied to the unit vector, ``r(t) = r0 + (μα* p + μδ q) Δt``
renormalised, with p and q the local east and north unit vectors: the same
first-order propagation as the linear formula with cos δ, but without its
singularity at the poles.  Parallax and radial velocity are ignored, which is
far below a milliarcsecond for the epochs involved (astropy's
``SkyCoord.apply_space_motion`` agrees to better than 1 µas over decades for
distant stars; the tests check it).  A null proper motion or reference epoch
means the source does not move.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAS_PER_RAD", "jyear_from_mjd", "propagate", "unit_vectors", "vectors_to_radec"]

#: Milliarcseconds per radian.
MAS_PER_RAD = np.degrees(1.0) * 3600e3
#: MJD of J2000.0 and the length of a Julian year in days.
_MJD_J2000 = 51544.5
_JULIAN_YEAR_DAYS = 365.25


def jyear_from_mjd(mjd: np.ndarray | float) -> np.ndarray:
    """Julian epoch (e.g. 2016.0) of a Modified Julian Date."""
    return 2000.0 + (np.asarray(mjd, dtype=np.float64) - _MJD_J2000) / _JULIAN_YEAR_DAYS


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """(n, 3) unit vectors of positions in degrees."""
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    cos_dec = np.cos(dec)
    return np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=-1)


def vectors_to_radec(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees, ra in [0, 360), of (n, 3) vectors (not necessarily unit)."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def propagate(ra_deg: np.ndarray, dec_deg: np.ndarray, pmra: np.ndarray, pmdec: np.ndarray,
              years: np.ndarray | float) -> np.ndarray:
    """Unit vectors (n, 3) of the positions moved by ``years`` (target − reference epoch).

    ``pmra`` is μα* (already multiplied by cos δ) and ``pmdec`` μδ, both in mas/yr;
    where either (or ``years``) is NaN the position is not moved.
    """
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    sin_ra, cos_ra = np.sin(ra), np.cos(ra)
    sin_dec, cos_dec = np.sin(dec), np.cos(dec)
    r0 = np.stack([cos_dec * cos_ra, cos_dec * sin_ra, sin_dec], axis=-1)
    east = np.stack([-sin_ra, cos_ra, np.zeros_like(ra)], axis=-1)
    north = np.stack([-sin_dec * cos_ra, -sin_dec * sin_ra, cos_dec], axis=-1)
    dt = np.broadcast_to(np.asarray(years, dtype=np.float64), ra.shape)
    mu_e = np.asarray(pmra, dtype=np.float64) * dt / MAS_PER_RAD
    mu_n = np.asarray(pmdec, dtype=np.float64) * dt / MAS_PER_RAD
    still = ~(np.isfinite(mu_e) & np.isfinite(mu_n))
    mu_e = np.where(still, 0.0, mu_e)
    mu_n = np.where(still, 0.0, mu_n)
    r = r0 + east * mu_e[..., None] + north * mu_n[..., None]
    return r / np.linalg.norm(r, axis=-1, keepdims=True)

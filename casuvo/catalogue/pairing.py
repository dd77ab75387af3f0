# SPDX-License-Identifier: BSD-3-Clause
"""Pairing the detections of several passbands into sources: the band merge's geometry.

Passbands are merged in wavelength order.  Each band's detections are paired
with the sources built so far by mutual nearest neighbours (astropy sky
matching) within :data:`PAIRING_RADIUS_ARCSEC` = 1″, repeated on what is left
so that a detection whose nearest source is taken by a closer detection may
still pair with its second nearest; detections left unpaired start new
sources.  A source holds at most one detection per band and a detection
belongs to exactly one source.  The source position (ra, dec) is the mean of
its band positions (mean unit vector), updated after each band;
``<b>Xi``/``<b>Eta`` are the band position's offsets from it in the tangent
plane (arcsec, east and north), as in the VSA (:func:`tangent_offsets`).

Pure numpy + astropy, no files: it knows nothing of surveys or catalogues.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord

__all__ = ["PAIRING_RADIUS_ARCSEC", "merge_positions", "tangent_offsets"]

#: Largest separation of two band detections of one source (arcsec).
PAIRING_RADIUS_ARCSEC = 1.0


def _unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    a, d = np.radians(np.asarray(ra, np.float64)), np.radians(np.asarray(dec, np.float64))
    return np.column_stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])


def _radec(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def tangent_offsets(ra: np.ndarray, dec: np.ndarray, ra0: np.ndarray, dec0: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic (xi, eta) of (ra, dec) about (ra0, dec0), in arcsec (east, north)."""
    a = np.radians(np.asarray(ra, np.float64) - np.asarray(ra0, np.float64))
    d = np.radians(np.asarray(dec, np.float64))
    d0 = np.radians(np.asarray(dec0, np.float64))
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a)
    xi = np.cos(d) * np.sin(a) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a)) / cosc
    return np.degrees(xi) * 3600.0, np.degrees(eta) * 3600.0


def _mutual_pairs(det: SkyCoord, src: SkyCoord, radius_arcsec: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(detection indices, source indices) of mutual nearest neighbours within the radius."""
    if len(det) == 0 or len(src) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    idx, sep, _ = det.match_to_catalog_sky(src)
    back, _, _ = src.match_to_catalog_sky(det)
    idx, back = np.atleast_1d(idx), np.atleast_1d(back)
    ok = (np.atleast_1d(sep.arcsec) <= radius_arcsec) & (back[idx] == np.arange(len(det)))
    return np.flatnonzero(ok), idx[ok]


def merge_positions(positions: Sequence[tuple[np.ndarray, np.ndarray]],
                    radius_arcsec: float = PAIRING_RADIUS_ARCSEC, rounds: int = 3
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair detections of several bands into sources.

    ``positions`` holds (ra, dec) arrays in degrees per band, in merge order.
    Returns (members, ra, dec): ``members[i, k]`` is the index of source i's
    detection in band k, or −1; (ra, dec) the mean of its band positions.
    Pairing is by mutual nearest neighbours within ``radius_arcsec``, tried
    ``rounds`` times on what is left unpaired.
    """
    nbands = len(positions)
    members = np.empty((0, nbands), dtype=np.int64)
    xyz_sum = np.empty((0, 3))
    for k, (ra, dec) in enumerate(positions):
        ra, dec = np.asarray(ra, np.float64), np.asarray(dec, np.float64)
        det_xyz = _unit_vectors(ra, dec)
        det_left = np.arange(len(ra))
        src_left = np.arange(len(members))
        for _ in range(rounds):
            if len(det_left) == 0 or len(src_left) == 0:
                break
            s_ra, s_dec = _radec(xyz_sum[src_left])
            d, s = _mutual_pairs(SkyCoord(ra[det_left] * u.deg, dec[det_left] * u.deg),
                                 SkyCoord(s_ra * u.deg, s_dec * u.deg), radius_arcsec)
            if len(d) == 0:
                break
            members[src_left[s], k] = det_left[d]
            xyz_sum[src_left[s]] += det_xyz[det_left[d]]
            det_left = np.delete(det_left, d)
            src_left = np.delete(src_left, s)
        new = np.full((len(det_left), nbands), -1, dtype=np.int64)
        new[:, k] = det_left
        members = np.vstack([members, new])
        xyz_sum = np.vstack([xyz_sum, det_xyz[det_left]])
    if len(members) == 0:
        return members, np.empty(0), np.empty(0)
    ra, dec = _radec(xyz_sum)
    return members, ra, dec

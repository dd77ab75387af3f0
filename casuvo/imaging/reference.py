# SPDX-License-Identifier: BSD-3-Clause
"""The astrometric and photometric reference: Gaia, propagated to the epoch of an exposure.

Gaia DR3 positions are at J2016.0; a VISTA or VST exposure taken years
later sees every star moved by its proper motion (for nearby stars by
hundreds of mas), so the reference is propagated before matching.  Sources
without proper motions (2-parameter solutions) stay at their 2016 position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table, vstack
from astropy.time import Time

__all__ = ["Reference", "load_gaia", "propagate"]

GAIA_EPOCH = 2016.0


@dataclass(frozen=True)
class Reference:
    """Reference stars at one epoch: positions (deg) and Gaia photometry."""

    ra: np.ndarray
    dec: np.ndarray
    g: np.ndarray
    bp_rp: np.ndarray
    source_id: np.ndarray

    def __len__(self) -> int:
        return len(self.ra)


def propagate(ra: np.ndarray, dec: np.ndarray, pmra: np.ndarray, pmdec: np.ndarray,
              years: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear proper-motion propagation on the sphere (pmra is μα* = μα cos δ, mas/yr).

    Over a decade at the few-mas/yr motions of survey stars the second-order
    terms are below a µas; NaN motions count as zero.
    """
    pa = np.nan_to_num(pmra) * years / 3.6e6
    pd = np.nan_to_num(pmdec) * years / 3.6e6
    dec_new = dec + pd
    ra_new = (ra + pa / np.cos(np.radians(dec_new))) % 360.0
    return ra_new, dec_new


def load_gaia(files: Sequence[Path], ra: float, dec: float, radius_deg: float,
              mjd: float, g_max: float = 20.5) -> Reference:
    """Gaia stars within ``radius_deg`` of (ra, dec), at the epoch ``mjd``."""
    tables = []
    for path in files:
        # Gaia's flux columns are in electron/s, which FITS cannot name: read quietly.
        t = Table.read(path, hdu=1, unit_parse_strict="silent")
        cosd = np.cos(np.radians(dec))
        near = (np.abs(t["dec"] - dec) < radius_deg) & (
            np.abs(((t["ra"] - ra + 180) % 360 - 180) * cosd) < radius_deg)
        if near.any():
            tables.append(t[near])
    if not tables:
        empty = np.zeros(0)
        return Reference(empty, empty, empty, empty, np.zeros(0, np.int64))
    t = vstack(tables, metadata_conflicts="silent")
    t = t[np.asarray(t["phot_g_mean_mag"]) < g_max]
    years = Time(mjd, format="mjd").jyear - GAIA_EPOCH
    r, d = propagate(np.asarray(t["ra"], float), np.asarray(t["dec"], float),
                     np.asarray(t["pmra"], float), np.asarray(t["pmdec"], float), years)
    return Reference(r, d, np.asarray(t["phot_g_mean_mag"], float),
                     np.asarray(t["bp_rp"], float), np.asarray(t["source_id"], np.int64))

# SPDX-License-Identifier: BSD-3-Clause
"""HEALPix for casuvo: nested indices (ICRS) and Gaia's source_id encoding.

This is the one module that talks to the HEALPix library (``cdshealpix``), so
that every part of casuvo agrees on the scheme (nested), the frame (ICRS, the
coordinates are taken as given) and the integer type (int64, the type of
PostgreSQL's ``bigint``).

Gaia source_id (Gaia DR3 documentation, section on source identifiers)::

    source_id = healpix12 * 2**35 + running number        (0 <= running number < 2**35)

so that ``source_id // (2**35 * 4**(12 - k))`` is the nested HEALPix index at
level ``k <= 12`` and sorting on source_id sorts the sky along the HEALPix
curve.  casuvo's simulated catalogues split the 35-bit running number into a
12-bit *chunk* (one per simulated field, see :func:`gaia_source_ids`) and a
23-bit counter inside each level-12 pixel, which keeps identifiers unique
across fields and chunks generated independently of each other.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.coordinates import Latitude, Longitude
from cdshealpix import nested

__all__ = [
    "CHUNK_BITS",
    "COUNTER_BITS",
    "GAIA_HEALPIX_ORDER",
    "GAIA_SOURCE_ID_SHIFT",
    "gaia_source_ids",
    "healpix_from_source_id",
    "lonlat_to_nested",
]

#: Level of the HEALPix index that Gaia stores in source_id.
GAIA_HEALPIX_ORDER = 12
#: source_id = healpix12 * GAIA_SOURCE_ID_SHIFT + running number.
GAIA_SOURCE_ID_SHIFT = 2**35
#: Bits of the running number that casuvo uses for the chunk (simulated field).
CHUNK_BITS = 12
#: Bits of the running number left for the counter inside one level-12 pixel.
COUNTER_BITS = 35 - CHUNK_BITS


def lonlat_to_nested(ra_deg: np.ndarray, dec_deg: np.ndarray, order: int) -> np.ndarray:
    """Nested HEALPix index at ``order`` of ICRS positions in degrees (int64).

    int64 rather than cdshealpix's uint64, so that indices mix with source_id
    and PostgreSQL ``bigint`` without silent conversions to float.
    """
    if not 0 <= order <= 29:
        raise ValueError(f"HEALPix order must be in 0..29, not {order}")
    lon = Longitude(np.asarray(ra_deg, dtype=np.float64), unit=u.deg)
    lat = Latitude(np.asarray(dec_deg, dtype=np.float64), unit=u.deg)
    return np.asarray(nested.lonlat_to_healpix(lon, lat, order), dtype=np.int64)


def healpix_from_source_id(source_id: np.ndarray | int,
                           order: int = GAIA_HEALPIX_ORDER) -> np.ndarray:
    """Nested HEALPix index at level ``order`` (0..12) encoded in a Gaia source_id.

    The encoding is Gaia's own, so this works on real Gaia DR2/DR3
    identifiers as well as on casuvo's simulated ones.
    """
    if not 0 <= order <= GAIA_HEALPIX_ORDER:
        raise ValueError(f"source_id encodes HEALPix levels 0..12, not {order}")
    divisor = GAIA_SOURCE_ID_SHIFT * 4 ** (GAIA_HEALPIX_ORDER - order)
    return np.asarray(source_id, dtype=np.int64) // np.int64(divisor)


def gaia_source_ids(ra_deg: np.ndarray, dec_deg: np.ndarray, chunk: int = 0) -> np.ndarray:
    """Gaia-encoded source_ids for positions in degrees (ICRS), unique within ``chunk``.

    The running number is ``chunk * 2**COUNTER_BITS + k`` where ``k`` counts
    the sources of one level-12 pixel in input order (0, 1, 2, ...).  The
    result is therefore a pure function of the positions, their order and the
    chunk: rerunning a simulation gives the same identifiers, and two chunks
    (e.g. two simulated fields, each with its own chunk number) can never
    produce the same identifier, even where they share HEALPix pixels.
    """
    if not 0 <= chunk < 2**CHUNK_BITS:
        raise ValueError(f"chunk must be in 0..{2**CHUNK_BITS - 1}, not {chunk}")
    hpx = lonlat_to_nested(ra_deg, dec_deg, GAIA_HEALPIX_ORDER)
    if hpx.size == 0:
        return hpx
    order = np.argsort(hpx, kind="stable")
    sorted_hpx = hpx[order]
    starts = np.flatnonzero(np.r_[True, sorted_hpx[1:] != sorted_hpx[:-1]])
    counts = np.diff(np.r_[starts, sorted_hpx.size])
    counter = np.empty(hpx.size, dtype=np.int64)
    counter[order] = np.arange(hpx.size, dtype=np.int64) - np.repeat(starts, counts)
    if counter.max() >= 2**COUNTER_BITS:
        raise ValueError(f"more than 2**{COUNTER_BITS} sources in one level-12 pixel")
    running = np.int64(chunk) * np.int64(2**COUNTER_BITS) + counter
    return hpx * np.int64(GAIA_SOURCE_ID_SHIFT) + running

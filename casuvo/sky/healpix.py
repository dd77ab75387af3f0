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

#: Deepest HEALPix order (cdshealpix's limit on 64-bit indices).
MAX_ORDER = 29
#: A fine pixel used to find margins must be this many times wider than the margin
#: (see :func:`pixels_near`; HEALPix pixels are distorted, so their narrowest width
#: is up to about half their mean size).
MARGIN_SAFETY = 4.0

__all__ = [
    "CHUNK_BITS",
    "COUNTER_BITS",
    "GAIA_HEALPIX_ORDER",
    "GAIA_SOURCE_ID_SHIFT",
    "border_pixels",
    "gaia_source_ids",
    "healpix_from_source_id",
    "lonlat_to_nested",
    "nested_neighbours",
    "order_for_margin",
    "pixel_size_arcsec",
    "pixel_vertices",
    "pixels_near",
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


def pixel_size_arcsec(order: int) -> float:
    """Mean size (square root of the area) of a pixel at ``order``, in arcsec."""
    if not 0 <= order <= MAX_ORDER:
        raise ValueError(f"HEALPix order must be in 0..{MAX_ORDER}, not {order}")
    return float(np.degrees(np.sqrt(4 * np.pi / (12 * 4**order))) * 3600.0)


def order_for_margin(margin_arcsec: float) -> int:
    """Deepest order whose pixels are at least ``MARGIN_SAFETY`` × ``margin_arcsec`` wide.

    A point within ``margin_arcsec`` of a pixel at this order (or any coarser one)
    then lies in that pixel or in one of its eight neighbours, which is what
    :func:`pixels_near` relies on.  0 when the margin is too wide even for the
    base pixels (cross-matches at degree radii are not what this is for).
    """
    if not margin_arcsec > 0:
        raise ValueError(f"margin must be > 0 arcsec, not {margin_arcsec}")
    order = 0
    while order < MAX_ORDER and pixel_size_arcsec(order + 1) >= MARGIN_SAFETY * margin_arcsec:
        order += 1
    return order


def nested_neighbours(ipix: np.ndarray, order: int) -> np.ndarray:
    """The pixel itself and its 8 neighbours at ``order``, shape (n, 9), int64.

    -1 where a pixel has only seven neighbours (the eight HEALPix vertices where
    three base pixels meet).
    """
    ipix = np.asarray(ipix, dtype=np.int64)
    if ipix.size == 0:
        return np.empty((0, 9), dtype=np.int64)
    out = np.asarray(nested.neighbours(ipix.astype(np.uint64), order), dtype=np.int64)
    return out.reshape(ipix.size, 9)


def border_pixels(order: int, pixel: int, delta_order: int) -> np.ndarray:
    """The pixels at ``order + delta_order`` just outside one pixel at ``order``, along
    its edges and at its corners (cdshealpix's ``external_neighbours``), int64."""
    edges, corners = nested.external_neighbours(np.array([pixel], dtype=np.uint64), order,
                                                delta_order)
    ring = np.r_[np.ravel(edges), np.ravel(corners)].astype(np.int64)
    return np.unique(ring[ring >= 0])


def pixels_near(ra_deg: np.ndarray, dec_deg: np.ndarray, order: int,
                margin_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """(point index, pixel) for every pixel at ``order`` that may lie within
    ``margin_arcsec`` of a point, its own pixel excluded.

    A superset (never misses a pixel, may add some a little farther away): each
    point's pixel at the fine order :func:`order_for_margin` and its eight
    neighbours are mapped up to ``order``.  That is enough because a segment
    shorter than the margin cannot cross a whole fine pixel.  Used to give each
    partition the sources of other partitions within its margin, so that a
    pair across a partition boundary is found exactly once.
    """
    fine = order_for_margin(margin_arcsec)
    if order > fine:
        raise ValueError(f"HEALPix order {order} is too deep for a {margin_arcsec:g}″ "
                         f"margin (at most {fine})")
    fine_pix = lonlat_to_nested(ra_deg, dec_deg, fine)
    delta = fine - order
    own = fine_pix >> (2 * delta)
    # Only fine pixels on the border of their coarse pixel have neighbours outside it.
    local = fine_pix & ((1 << (2 * delta)) - 1)
    x, y = _compact_bits(local), _compact_bits(local >> 1)
    edge = (1 << delta) - 1
    border = np.flatnonzero((x == 0) | (y == 0) | (x == edge) | (y == edge))
    near = nested_neighbours(fine_pix[border], fine)
    coarse = np.where(near >= 0, near >> (2 * delta), -1)
    coarse[coarse == own[border, None]] = -1
    coarse.sort(axis=1)
    # One entry per (point, pixel): drop repeats along each sorted row.
    keep = coarse >= 0
    keep[:, 1:] &= coarse[:, 1:] != coarse[:, :-1]
    rows = np.broadcast_to(border[:, None], coarse.shape)
    return rows[keep].astype(np.int64), coarse[keep]


def _compact_bits(z: np.ndarray) -> np.ndarray:
    """The even bits of ``z`` packed together (one coordinate of a nested index's z-order)."""
    x = np.asarray(z, dtype=np.uint64) & np.uint64(0x5555555555555555)
    for shift, mask in ((1, 0x3333333333333333), (2, 0x0F0F0F0F0F0F0F0F),
                        (4, 0x00FF00FF00FF00FF), (8, 0x0000FFFF0000FFFF),
                        (16, 0x00000000FFFFFFFF)):
        x = (x | (x >> np.uint64(shift))) & np.uint64(mask)
    return x.astype(np.int64)


def pixel_vertices(ipix: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees of the four corners of each pixel, each of shape (n, 4)."""
    lon, lat = nested.vertices(np.asarray(ipix, dtype=np.uint64), order)
    return (np.asarray(lon.to_value(u.deg), dtype=np.float64),
            np.asarray(lat.to_value(u.deg), dtype=np.float64))

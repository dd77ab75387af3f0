# SPDX-License-Identifier: BSD-3-Clause
"""HEALPix partitions of a cross-match: which rows of A and B each kernel call sees.

A partition is one nested HEALPix pixel at a single order ``k``: the A rows in
the pixel, and the B rows in the pixel plus those of other pixels within the
margin (:func:`casuvo.sky.healpix.pixels_near`).  Every A row is in exactly one
partition, and each pair is found in the partition of its A row, so no pair is
found twice; a B row near a boundary is in several partitions, so no pair is
lost as long as the margin covers the radius (the kernel's ``validate``).

The order follows the density: the shallowest order at which no partition
holds more than ``rows_per_partition`` rows of A and B together.  The default,
300 000 rows, keeps a kernel call near a second and its memory near 100 MB (two
kd-trees, the pairs), small enough for several workers per machine and large
enough that Dask's per-task overhead (a few ms) is noise; 100 000–1 000 000 all
work.  Sparse regions of a deep order cost nothing: only pixels holding A rows
become partitions.  The order is capped by the margin: a pixel must be wider
than :data:`casuvo.sky.healpix.MARGIN_SAFETY` × the margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from casuvo.sky.healpix import lonlat_to_nested, order_for_margin, pixels_near

__all__ = ["DEFAULT_ROWS_PER_PARTITION", "MAX_PARTITION_ORDER", "Partition", "choose_order",
           "partition"]

#: Target of rows (A + B) per partition; see the module notes.
DEFAULT_ROWS_PER_PARTITION = 300_000
#: Deepest order the density rule picks on its own (0.8′ pixels at order 12).
MAX_PARTITION_ORDER = 12


@dataclass(frozen=True)
class Partition:
    """One kernel call: a pixel, its A rows and its B rows (own pixel plus margin)."""

    order: int
    pixel: int
    a_rows: np.ndarray
    b_rows: np.ndarray

    @property
    def name(self) -> str:
        return f"order{self.order}_pix{self.pixel}"


def choose_order(a_pix: np.ndarray, b_pix: np.ndarray, pix_order: int,
                 rows_per_partition: int = DEFAULT_ROWS_PER_PARTITION) -> int:
    """Shallowest order ≤ ``pix_order`` whose fullest pixel holds ≤ ``rows_per_partition``.

    ``a_pix``/``b_pix`` are the rows' nested pixels at ``pix_order`` (the deepest
    allowed), so that every shallower order is a bit shift away.  ``pix_order``
    itself when even that is too crowded (a dense cluster; the partitions are
    then larger than the target, which costs memory, never correctness).
    """
    if rows_per_partition < 1:
        raise ValueError(f"rows per partition must be >= 1, not {rows_per_partition}")
    both = np.concatenate([np.asarray(a_pix, np.int64), np.asarray(b_pix, np.int64)])
    for order in range(pix_order + 1):
        _, counts = np.unique(both >> (2 * (pix_order - order)), return_counts=True)
        if counts.max(initial=0) <= rows_per_partition:
            return order
    return pix_order


def deepest_order(margin_arcsec: float) -> int:
    """The deepest partition order a margin allows (and the density rule's own cap)."""
    return min(MAX_PARTITION_ORDER, order_for_margin(margin_arcsec))


def partition(a_ra: np.ndarray, a_dec: np.ndarray, b_ra: np.ndarray, b_dec: np.ndarray,
              order: int, margin_arcsec: float) -> list[Partition]:
    """The partitions at ``order``: one per pixel holding A rows, sorted by pixel."""
    a_pix = lonlat_to_nested(a_ra, a_dec, order)
    a_sort = np.argsort(a_pix, kind="stable")
    a_pixels, a_start = np.unique(a_pix[a_sort], return_index=True)
    a_stop = np.r_[a_start[1:], a_sort.size]

    b_pix = lonlat_to_nested(b_ra, b_dec, order)
    near_rows, near_pix = pixels_near(b_ra, b_dec, order, margin_arcsec)
    rows = np.concatenate([np.arange(b_pix.size, dtype=np.int64), near_rows])
    pixels = np.concatenate([b_pix, near_pix])
    b_sort = np.argsort(pixels, kind="stable")
    rows, pixels = rows[b_sort], pixels[b_sort]
    b_lo = np.searchsorted(pixels, a_pixels, side="left")
    b_hi = np.searchsorted(pixels, a_pixels, side="right")
    return [Partition(order, int(p), a_sort[s:e], rows[lo:hi])
            for p, s, e, lo, hi in zip(a_pixels, a_start, a_stop, b_lo, b_hi, strict=True)]

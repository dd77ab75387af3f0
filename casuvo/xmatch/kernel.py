# SPDX-License-Identifier: BSD-3-Clause
"""The cross-match kernel: one partition of A, the same pixel of B plus its margin.

The contract (the shape of lsdb's ``AbstractCrossmatchAlgorithm``): positions of
two partitions in, index pairs into them and separations out; nothing about
files, HEALPix or Dask.  :meth:`KdTreeKernel.validate` runs before any graph is
built and refuses a radius that the margin cannot cover, because a kernel that
is handed too thin a margin silently loses the pairs across partition
boundaries.

The search is a scipy ``cKDTree`` on unit vectors with the chord of the radius
(a chord is monotonic in the angle, so nothing inside the radius is missed),
then every candidate is re-filtered on its exact angular separation,
``atan2(|a × b|, a · b)``, which is accurate at all angles, unlike the
arccos of a dot product at arcsecond scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from casuvo.xmatch.errors import XmatchError
from casuvo.xmatch.motion import propagate, unit_vectors

__all__ = ["ARCSEC_PER_RAD", "KdTreeKernel", "Pairs", "Side", "separation_arcsec"]

ARCSEC_PER_RAD = np.degrees(1.0) * 3600.0
#: The chord searched is widened by this relative amount so that rounding in the
#: tree never drops a pair the exact separation keeps.
_CHORD_SLACK = 1e-9


@dataclass(frozen=True)
class Side:
    """The rows of one catalogue in a partition (A: its pixel; B: pixel plus margin).

    ``pmra``/``pmdec``/``ref_epoch`` (mas/yr, Julian years) only on the side that
    moves (A); ``epoch`` (Julian years, per row) only on the side whose epoch A is
    moved to, when that epoch differs from row to row.
    """

    ra: np.ndarray
    dec: np.ndarray
    pmra: np.ndarray | None = None
    pmdec: np.ndarray | None = None
    ref_epoch: np.ndarray | None = None
    epoch: np.ndarray | None = None

    def __len__(self) -> int:
        return int(np.asarray(self.ra).size)

    @property
    def moves(self) -> bool:
        return self.pmra is not None


@dataclass(frozen=True)
class Pairs:
    """Index pairs into the two sides and their separations, sorted by (a, separation)."""

    a: np.ndarray
    b: np.ndarray
    separation_arcsec: np.ndarray

    def __len__(self) -> int:
        return int(self.a.size)


def separation_arcsec(xyz_a: np.ndarray, xyz_b: np.ndarray) -> np.ndarray:
    """Angle between rows of two (n, 3) arrays of unit vectors, in arcsec."""
    cross = np.linalg.norm(np.cross(xyz_a, xyz_b), axis=-1)
    dot = np.einsum("ij,ij->i", xyz_a, xyz_b)
    return np.arctan2(cross, dot) * ARCSEC_PER_RAD


@dataclass(frozen=True)
class KdTreeKernel:
    """All pairs within ``radius_arcsec``, from a kd-tree of unit vectors.

    ``epoch`` (Julian years) is where A's positions are moved to before the
    search (None: A does not move).  When B has one epoch per row, A goes to
    ``epoch`` (the catalogue's median) for the search, the radius is widened by
    ``slack_arcsec`` (the farthest any A source moves between ``epoch`` and any
    B epoch), and each candidate is re-measured with A at that B row's own epoch.
    ``margin_arcsec`` is how far beyond its pixel B's rows were collected.
    """

    radius_arcsec: float
    margin_arcsec: float
    epoch: float | None = None
    slack_arcsec: float = 0.0

    def validate(self) -> None:
        """Refuse parameters the partitions cannot answer correctly (before the graph runs)."""
        if not (np.isfinite(self.radius_arcsec) and self.radius_arcsec > 0):
            raise XmatchError(f"radius must be a positive number of arcsec, "
                              f"not {self.radius_arcsec!r}")
        if not (np.isfinite(self.slack_arcsec) and self.slack_arcsec >= 0):
            raise XmatchError(f"proper-motion slack must be >= 0 arcsec, "
                              f"not {self.slack_arcsec!r}")
        if self.radius_arcsec + self.slack_arcsec > self.margin_arcsec:
            raise XmatchError(
                f"radius {self.radius_arcsec:g}″ (+ {self.slack_arcsec:g}″ of proper motion) "
                f"is wider than the partition margin {self.margin_arcsec:g}″: pairs across "
                "partition boundaries would be lost")

    def positions_a(self, a: Side) -> np.ndarray:
        """Unit vectors of A at the kernel's epoch (where it moves) — what is searched."""
        if a.moves and self.epoch is not None:
            return propagate(a.ra, a.dec, a.pmra, a.pmdec, self.epoch - a.ref_epoch)
        return unit_vectors(a.ra, a.dec)

    def match(self, a: Side, b: Side) -> Pairs:
        """Every (i, j) with A row i and B row j within the radius, with separations."""
        if len(a) == 0 or len(b) == 0:
            empty = np.empty(0, dtype=np.int64)
            return Pairs(empty, empty.copy(), np.empty(0, dtype=np.float64))
        xyz_a = self.positions_a(a)
        xyz_b = unit_vectors(b.ra, b.dec)
        search = (self.radius_arcsec + self.slack_arcsec) / ARCSEC_PER_RAD
        chord = 2.0 * np.sin(search / 2.0) * (1.0 + _CHORD_SLACK)
        tree_a = cKDTree(xyz_a, balanced_tree=False, compact_nodes=False)
        tree_b = cKDTree(xyz_b, balanced_tree=False, compact_nodes=False)
        found = tree_a.sparse_distance_matrix(tree_b, chord, output_type="ndarray")
        i = found["i"].astype(np.int64)
        j = found["j"].astype(np.int64)
        if a.moves and b.epoch is not None and self.epoch is not None:
            # Each candidate again, with A at the epoch of this B row.
            xyz_i = propagate(a.ra[i], a.dec[i], a.pmra[i], a.pmdec[i],
                              b.epoch[j] - a.ref_epoch[i])
        else:
            xyz_i = xyz_a[i]
        sep = separation_arcsec(xyz_i, xyz_b[j])
        keep = sep <= self.radius_arcsec
        i, j, sep = i[keep], j[keep], sep[keep]
        order = np.lexsort((j, sep, i))
        return Pairs(i[order], j[order], sep[order])

# SPDX-License-Identifier: BSD-3-Clause
"""Match quality from the list of all pairs, as the Gaia archive and WFAU give it.

Input: every pair (A row, B row, separation) within the radius.  Output:

* per pair: ``number_of_neighbours`` (B rows within the radius of its A row)
  and ``number_of_mates`` (*other* A rows with this B row within the radius);
* ``best``: the pair is its A row's nearest B row — Gaia's ``best_neighbour``
  direction (one per A row; a B row may be the best of several A rows) and
  STILTS ``tmatch2 find=best1``;
* ``number_of_mates`` of a best pair: other A rows whose best neighbour is the
  same B row, the Gaia archive's definition;
* ``mutual``: the pair survives the one-to-one selection of STILTS
  ``find=best``: each row of the larger table takes its nearest match, then
  each row of the smaller table keeps only the nearest of the rows that took
  it (table A first when both have as many rows).  Not a greedy assignment: a
  row whose nearest went to a closer one stays unmatched rather than taking
  its second nearest.  This rule was established against STILTS 3 on crowded
  fields with A larger, smaller and as large as B, where the alternatives
  (greedy, mutual nearest neighbours, always A first) all differ from it.
* ``ambiguous``: the pair is not an isolated one-to-one match: its A row has
  another neighbour or its B row is within the radius of another A row — the
  cases where the nearest is not necessarily the right one.

All vectorised.  Ties in separation (measure zero for real positions) are
broken by the lower row number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PairQuality", "assess", "best_per_a", "mutual_best"]


@dataclass(frozen=True)
class PairQuality:
    """Quality columns, one value per pair, in the order of the pairs given."""

    number_of_neighbours: np.ndarray
    number_of_mates: np.ndarray
    best: np.ndarray
    best_mates: np.ndarray
    mutual: np.ndarray
    ambiguous: np.ndarray


def _counts_of(values: np.ndarray) -> np.ndarray:
    """For each element (a row number, >= 0), how many elements share its value."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.bincount(values)[values]


def _first_of_each(sorted_keys: np.ndarray) -> np.ndarray:
    """Positions of the first element of each run of equal values in sorted keys."""
    if sorted_keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


def best_per_a(a: np.ndarray, b: np.ndarray, sep: np.ndarray) -> np.ndarray:
    """Mask of each A row's nearest pair (STILTS ``find=best1``, Gaia ``best_neighbour``)."""
    order = np.lexsort((b, sep, a))           # per A row: nearest first, then lowest B row
    best = np.zeros(a.size, dtype=bool)
    best[order[_first_of_each(a[order])]] = True
    return best


def mutual_best(a: np.ndarray, b: np.ndarray, sep: np.ndarray, n_a: int, n_b: int,
                best: np.ndarray | None = None) -> np.ndarray:
    """Mask of the pairs STILTS ``find=best`` keeps (one-to-one; see the module notes).

    ``n_a``/``n_b``: the rows of the two tables, which decide whose rows choose first.
    ``best``: :func:`best_per_a` when A chooses first, if already at hand.
    """
    if n_b > n_a:
        first, second = b, a
        chosen = best_per_a(b, a, sep)
    else:
        first, second = a, b
        chosen = best if best is not None else best_per_a(a, b, sep)
    candidates = np.flatnonzero(chosen)
    order = candidates[np.lexsort((first[candidates], sep[candidates], second[candidates]))]
    mutual = np.zeros(a.size, dtype=bool)
    mutual[order[_first_of_each(second[order])]] = True
    return mutual


def assess(a: np.ndarray, b: np.ndarray, sep: np.ndarray, n_a: int | None = None,
           n_b: int | None = None) -> PairQuality:
    """The quality columns of all pairs (A row ``a``, B row ``b``, separation ``sep``).

    ``n_a``/``n_b``: rows of the input tables (default: as many), for ``mutual``.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    n_neighbours = _counts_of(a).astype(np.int32)
    n_mates = (_counts_of(b) - 1).astype(np.int32)
    best = best_per_a(a, b, sep)
    best_mates = np.full(a.size, -1, dtype=np.int32)
    if best.any():
        best_mates[best] = _counts_of(b[best]) - 1
    ambiguous = (n_neighbours > 1) | (n_mates > 0)
    mutual = mutual_best(a, b, sep, n_a or 0, n_b or 0, best)
    return PairQuality(n_neighbours, n_mates, best, best_mates, mutual, ambiguous)

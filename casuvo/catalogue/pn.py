# SPDX-License-Identifier: BSD-3-Clause
"""Central stars of planetary nebulae in Gaia: where to look, and how to rank what is there.

A planetary-nebula catalogue (HASH, Kerber et al. 2003) gives the nebula's centre
to a few arcseconds and its size; the central star is a hot (T ≳ 30 000 K)
star close to that centre, at the distance of a planetary nebula.  So, for each
nebula:

* **Where to look** (:func:`search_radius_arcsec`): the catalogue position
  error and the star's offset from the nebula's geometric centre (central
  stars of asymmetric nebulae sit up to ~10 % of the radius off it) add in
  quadrature to a positional σ; the search circle is :data:`SEARCH_SIGMAS` σ.
* **How to rank** (:func:`candidate_scores`): a χ²-like sum, lower is better,
  of three terms:

  - position: (separation / σ)²;
  - colour: a hot star has BP−RP ≈ −0.5 before reddening; observed colours
    redder than that are penalised as ((BP−RP − (−0.5)) / 0.3)², so a
    reddened central star (E(BP−RP) ≈ 0.5) still beats a field star with
    BP−RP ≈ 1; no BP/RP costs :data:`MISSING_PENALTY`;
  - parallax: planetary nebulae are more than ~400 pc away (ϖ < 2.5 mas);
    a parallax above that by k σ costs k², and a five-parameter solution
    missing costs 1.

The functions are pure (numpy in, numpy out), so the notebook, the tests and
any other front end rank the same way.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["HOT_BP_RP", "MAX_PARALLAX", "MISSING_PENALTY", "OFFCENTRE_FRACTION",
           "SEARCH_SIGMAS", "best_candidates", "candidate_scores", "position_sigma_arcsec",
           "search_radius_arcsec"]

#: Central stars lie within this fraction of the nebula's semi-major axis of its centre (1σ).
OFFCENTRE_FRACTION = 0.1
#: The search circle's radius in positional σ.
SEARCH_SIGMAS = 5.0
#: Intrinsic BP−RP of a hot central star, and the σ of the colour term (mag).
HOT_BP_RP, COLOUR_SIGMA = -0.5, 0.3
#: Largest parallax of a planetary nebula (mas): ~400 pc, closer than all but a few.
MAX_PARALLAX = 2.5
#: Score of a missing colour (a 3σ mismatch).
MISSING_PENALTY = 9.0


def position_sigma_arcsec(pos_err: np.ndarray | float, maj_diam: np.ndarray | float
                          ) -> np.ndarray:
    """1σ of the central star's offset from the catalogued centre (arcsec)."""
    return np.hypot(np.asarray(pos_err, dtype=np.float64),
                    OFFCENTRE_FRACTION * np.asarray(maj_diam, dtype=np.float64) / 2)


def search_radius_arcsec(pos_err: np.ndarray | float, maj_diam: np.ndarray | float
                         ) -> np.ndarray:
    """Radius of the circle to search for the central star (arcsec)."""
    return SEARCH_SIGMAS * position_sigma_arcsec(pos_err, maj_diam)


def candidate_scores(sep_arcsec: np.ndarray, bp_rp: np.ndarray, parallax: np.ndarray,
                     parallax_error: np.ndarray, pos_err: np.ndarray | float,
                     maj_diam: np.ndarray | float) -> np.ndarray:
    """χ²-like score of each candidate (lower is better); NaN inputs are "not measured"."""
    sep = np.asarray(sep_arcsec, dtype=np.float64)
    if not np.all(np.isfinite(sep)) or np.any(sep < 0):
        raise ValueError("separations must be finite and non-negative")
    sigma = position_sigma_arcsec(pos_err, maj_diam)
    if not np.all(sigma > 0):
        raise ValueError("pos_err and maj_diam must give a positive positional sigma")
    score = (sep / sigma) ** 2
    colour = np.asarray(bp_rp, dtype=np.float64)
    red = np.clip((colour - HOT_BP_RP) / COLOUR_SIGMA, 0.0, None) ** 2
    score += np.where(np.isfinite(colour), red, MISSING_PENALTY)
    plx = np.asarray(parallax, dtype=np.float64)
    err = np.asarray(parallax_error, dtype=np.float64)
    ok = np.isfinite(plx) & np.isfinite(err) & (err > 0)
    near = np.clip((np.where(ok, plx, 0.0) - MAX_PARALLAX) / np.where(ok, err, 1.0), 0.0, None)
    score += np.where(ok, near**2, 1.0)
    return score


def best_candidates(names: np.ndarray, scores: np.ndarray) -> dict[str, int]:
    """{name: index of its lowest-scoring row} (ties go to the first row)."""
    names = np.asarray(names).astype(str)
    scores = np.asarray(scores, dtype=np.float64)
    if names.shape != scores.shape:
        raise ValueError("names and scores must have the same length")
    best: dict[str, int] = {}
    for i, (name, s) in enumerate(zip(names, scores, strict=True)):
        if not math.isnan(s) and (name not in best or s < scores[best[name]]):
            best[name] = i
    return best

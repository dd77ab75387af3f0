# SPDX-License-Identifier: BSD-3-Clause
"""Central-star candidates of planetary nebulae (casuvo.catalogue.pn), on the simulated Gaia sky."""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from casuvo.catalogue.pn import (
    MISSING_PENALTY,
    best_candidates,
    candidate_scores,
    position_sigma_arcsec,
    search_radius_arcsec,
)
from casuvo.simulate.fields import field_by_name
from casuvo.simulate.gaia import simulate_gaia
from casuvo.simulate.nebulae import simulate_pn_catalogue


def test_search_radius_from_position_error_and_size() -> None:
    # NGC 5189: 3″ catalogue error, 140″ across -> σ = hypot(3, 7), radius 5σ
    assert position_sigma_arcsec(3.0, 140.0) == pytest.approx(math.hypot(3.0, 7.0))
    assert search_radius_arcsec(3.0, 140.0) == pytest.approx(5 * math.hypot(3.0, 7.0))
    np.testing.assert_allclose(search_radius_arcsec([2.0, 2.0], [0.0, 12.0]),
                               [10.0, 5 * math.hypot(2.0, 0.6)])


def test_scores_prefer_near_blue_and_distant() -> None:
    sep = np.array([1.0, 1.0, 1.0, 1.0, 9.0, 1.0])
    bp_rp = np.array([-0.4, 1.2, -0.4, np.nan, -0.4, 0.1])
    plx = np.array([0.6, 0.6, 6.0, 0.6, 0.6, np.nan])
    err = np.array([0.03, 0.03, 0.05, 0.03, 0.03, np.nan])
    s = candidate_scores(sep, bp_rp, plx, err, 2.0, 10.0)
    pos = (1 / math.hypot(2.0, 0.5)) ** 2
    blue = (0.1 / 0.3) ** 2                                   # −0.4 is a little redder than −0.5
    assert s[0] == pytest.approx(pos + blue)                  # blue, PN-like
    assert s[1] == pytest.approx(pos + (1.7 / 0.3) ** 2)      # red field star
    assert s[2] == pytest.approx(s[0] + ((6.0 - 2.5) / 0.05) ** 2)  # a nearby dwarf
    assert s[3] == pytest.approx(pos + MISSING_PENALTY)
    assert s[4] == pytest.approx(81 * pos + blue)
    assert s[5] == pytest.approx(pos + (0.6 / 0.3) ** 2 + 1.0)   # no parallax: small cost
    assert int(np.argmin(s)) == 0
    with pytest.raises(ValueError, match="separations"):
        candidate_scores(np.array([-1.0]), bp_rp[:1], plx[:1], err[:1], 2.0, 10.0)
    with pytest.raises(ValueError, match="sigma"):
        candidate_scores(sep[:1], bp_rp[:1], plx[:1], err[:1], 0.0, 0.0)


def test_best_candidates_per_nebula() -> None:
    names = np.array(["A", "B", "A", "B", "A"])
    scores = np.array([3.0, 1.0, 0.5, 2.0, np.nan])
    assert best_candidates(names, scores) == {"A": 2, "B": 1}
    with pytest.raises(ValueError):
        best_candidates(names, scores[:2])


@pytest.mark.parametrize("seed", [20161, 8])
def test_true_central_stars_rank_first(seed: int) -> None:
    """On the simulated sky, the truth's central star is the best candidate of every nebula."""
    fields = ("vphas_pn", "ges_1528")
    sims = {name: simulate_gaia(field_by_name(name), seed, 1.0) for name in fields}
    cat, truth = simulate_pn_catalogue(seed, {n: t for n, (_, t) in sims.items()})
    for row, true in zip(cat, truth, strict=True):
        gaia = sims[str(true["field"])][0]
        centre = SkyCoord(row["raj2000"] * u.deg, row["dej2000"] * u.deg)
        sep = centre.separation(SkyCoord(np.asarray(gaia["ra"]) * u.deg,
                                         np.asarray(gaia["dec"]) * u.deg)).arcsec
        inside = sep <= search_radius_arcsec(row["pos_err"], row["maj_diam"])
        assert inside.sum() >= 1
        scores = candidate_scores(sep[inside], np.asarray(gaia["bp_rp"])[inside],
                                  np.asarray(gaia["parallax"])[inside],
                                  np.asarray(gaia["parallax_error"])[inside],
                                  row["pos_err"], row["maj_diam"])
        ids = np.asarray(gaia["source_id"])[inside]
        best = best_candidates(np.full(len(ids), row["name"]), scores)[row["name"]]
        assert ids[best] == true["source_id"], row["name"]

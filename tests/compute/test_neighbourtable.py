# SPDX-License-Identifier: BSD-3-Clause
"""casuvo.catalogue.neighbourtable: the survey-as-master neighbour file, from synthetic catalogues.

A brute-force computation on a small crowded field is the reference for the
pairs and every quality column (with the survey choosing, not Gaia); the
file depends only on the inputs (same bytes twice), a rerun is skipped, and
bad input writes nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from casuvo.catalogue.neighbourtable import NEIGHBOUR_COLUMNS, build_neighbours
from casuvo.xmatch import XmatchError

RADIUS = 2.0
MJD_2012 = 55927.0


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A 3′ field: 400 Gaia stars (some fast), 500 survey sources, many near pairs."""
    rng = np.random.default_rng(12)
    d = tmp_path_factory.mktemp("nt")
    n_g = 400
    ra0, dec0, half = 150.0, -30.0, 1.5 / 60
    g_ra = ra0 + rng.uniform(-half, half, n_g) / np.cos(np.radians(dec0))
    g_dec = dec0 + rng.uniform(-half, half, n_g)
    pmra, pmdec = rng.normal(0, 30, n_g), rng.normal(0, 30, n_g)
    pmra[:5] = np.nan
    gaia = Table({"source_id": np.arange(n_g, dtype=np.int64) * 7 + 1000, "ra": g_ra,
                  "dec": g_dec, "pmra": pmra, "pmdec": pmdec,
                  "ref_epoch": np.full(n_g, 2016.0)})
    gaia.write(d / "gaia.fits")
    # Survey: 300 counterparts (moved to 2012, 0.3″ noise), 200 random sources.
    k = rng.choice(n_g, 300, replace=False)
    dt = 2012.0 - 2016.0
    s_dec = g_dec[k] + np.nan_to_num(pmdec[k]) * dt / 3.6e6 + rng.normal(0, 0.3, 300) / 3600
    s_ra = g_ra[k] + np.nan_to_num(pmra[k]) * dt / 3.6e6 / np.cos(np.radians(s_dec)) \
        + rng.normal(0, 0.3, 300) / 3600
    s_ra = np.r_[s_ra, ra0 + rng.uniform(-half, half, 200) / np.cos(np.radians(dec0))]
    s_dec = np.r_[s_dec, dec0 + rng.uniform(-half, half, 200)]
    n_s = s_ra.size
    survey = Table({"sourceID": np.arange(n_s, dtype=np.int64) + 10**9, "ra": s_ra,
                    "dec": s_dec})
    for c in ("jmjd", "hmjd", "ksmjd"):
        survey[c] = np.full(n_s, MJD_2012)
        survey[c].unit = "d"
    survey["jmjd"][:10] = np.nan
    survey.write(d / "sources.fits")
    return d, gaia, survey


def _brute(gaia: Table, survey: Table) -> dict[tuple[int, int], float]:
    from casuvo.xmatch.motion import jyear_from_mjd, propagate, unit_vectors

    years = float(jyear_from_mjd(MJD_2012)) - np.asarray(gaia["ref_epoch"])
    g = propagate(gaia["ra"], gaia["dec"], gaia["pmra"], gaia["pmdec"], years)
    s = unit_vectors(survey["ra"], survey["dec"])
    cross = np.linalg.norm(np.cross(s[:, None, :], g[None, :, :]), axis=-1)
    sep = np.degrees(np.arctan2(cross, s @ g.T)) * 3600
    i, j = np.nonzero(sep < RADIUS)
    return {(int(survey["sourceID"][a]), int(gaia["source_id"][b])): float(sep[a, b])
            for a, b in zip(i, j, strict=True)}


def test_pairs_and_quality_equal_brute_force(field, tmp_path) -> None:
    d, gaia, survey = field
    state = build_neighbours("vista", d / "sources.fits", [d / "gaia.fits"], RADIUS,
                             tmp_path / "out", workers=1, progress=False)
    got = Table.read(tmp_path / "out" / "neighbours.fits", hdu=1)
    assert got.colnames == list(NEIGHBOUR_COLUMNS)
    truth = _brute(gaia, survey)
    pairs = dict(zip(zip(got["masterObjID"].tolist(), got["slaveObjID"].tolist(),
                         strict=True), got["angular_distance"].tolist(), strict=True))
    assert set(pairs) == set(truth)
    assert max(abs(pairs[p] - truth[p]) for p in truth) < 1e-6
    assert state["n_pairs"] == len(truth)
    masters = np.asarray(got["masterObjID"])
    slaves = np.asarray(got["slaveObjID"])
    sep = np.asarray(got["angular_distance"])
    for m in np.unique(masters):
        rows = np.flatnonzero(masters == m)
        assert (got["number_of_neighbours"][rows] == rows.size).all()
        assert got["best_neighbour"][rows].sum() == 1
        assert got["best_neighbour"][rows[np.argmin(sep[rows])]] == 1
    for s in np.unique(slaves):
        rows = np.flatnonzero(slaves == s)
        assert (got["number_of_mates"][rows] == rows.size - 1).all()
    assert (got["ambiguous"] == ((got["number_of_neighbours"] > 1)
                                 | (got["number_of_mates"] > 0))).all()
    assert got["one_to_one"].sum() <= got["best_neighbour"].sum()
    print(f"{len(truth)} pairs, {int(got['ambiguous'].sum())} ambiguous")


def test_file_is_deterministic_and_rerun_skipped(field, tmp_path) -> None:
    d, _, _ = field
    args = ("vista", d / "sources.fits", [d / "gaia.fits"], RADIUS, tmp_path / "out")
    first = build_neighbours(*args, workers=1, progress=False)
    again = build_neighbours(*args, workers=1, progress=False)
    assert again["skipped"] is True and again["sha256"] == first["sha256"]
    forced = build_neighbours(*args, workers=1, progress=False, force=True)
    assert forced["skipped"] is False and forced["sha256"] == first["sha256"]
    state = json.loads((tmp_path / "out" / "state.json").read_text())
    assert state["sha256"] == first["sha256"]


@pytest.mark.parametrize("survey, radius, message", [
    ("nosuch", RADIUS, "unknown survey"),
    ("vista", 0.0, "radius must be a positive"),
    ("vista", -1.0, "radius must be a positive"),
    ("vista", float("nan"), "radius must be a positive"),
])
def test_bad_input_writes_nothing(field, tmp_path, survey, radius, message) -> None:
    d, _, _ = field
    with pytest.raises(XmatchError, match=message):
        build_neighbours(survey, d / "sources.fits", [d / "gaia.fits"], radius,
                         tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out").exists()


def test_nan_positions_are_refused(field, tmp_path) -> None:
    d, _, survey = field
    bad = survey.copy()
    bad["ra"][3] = np.nan
    bad.write(tmp_path / "bad.fits")
    with pytest.raises(XmatchError, match="no position"):
        build_neighbours("vista", tmp_path / "bad.fits", [d / "gaia.fits"], RADIUS,
                         tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out" / "neighbours.fits").exists()
    assert fits.getheader(tmp_path / "bad.fits", 1)["NAXIS2"] == len(survey)

# SPDX-License-Identifier: BSD-3-Clause
"""casuvo.catalogue.neighbourtable: the survey-as-master neighbour file, from synthetic catalogues.

A brute-force computation on a small crowded field is the reference for the
pairs and every quality column (with the survey choosing, not Gaia); the
file depends only on the inputs (same bytes twice), and bad input writes nothing.
"""

from __future__ import annotations

import dataclasses
import json

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.io import fits
from astropy.table import Table

from casuvo.catalogue.neighbourtable import NEIGHBOUR_COLUMNS, build_neighbours
from casuvo.surveys.registry import Survey
from casuvo.xmatch import XmatchError
from tests.compute.conftest import jyear, moved_by_astropy

RADIUS = 2.0
MJD_2012 = 55927.0


@pytest.fixture(scope="module")
def vista(registry) -> Survey:
    """The registry's VISTA survey: its epoch columns are jmjd, hmjd and ksmjd."""
    survey = registry["vista"]
    assert survey.epoch_columns == ("jmjd", "hmjd", "ksmjd")
    return survey


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
    """Every (survey, Gaia) pair within RADIUS, Gaia moved to the survey epoch by astropy.

    Independent of casuvo.xmatch: astropy's ``apply_space_motion`` and MJD
    conversion, and a plain search around the sky.  All survey sources share
    the epoch MJD_2012 (one band's epoch missing leaves the others).
    """
    g_ra, g_dec = moved_by_astropy(gaia["ra"], gaia["dec"], gaia["pmra"], gaia["pmdec"],
                                   gaia["ref_epoch"], jyear(MJD_2012))
    s = SkyCoord(np.asarray(survey["ra"]) * u.deg, np.asarray(survey["dec"]) * u.deg)
    g = SkyCoord(g_ra * u.deg, g_dec * u.deg)
    i, j, sep, _ = search_around_sky(s, g, RADIUS * u.arcsec)
    return {(int(survey["sourceID"][a]), int(gaia["source_id"][b])): float(d)
            for a, b, d in zip(i, j, sep.to_value(u.arcsec), strict=True)}


def _quality(pairs: dict[tuple[int, int], float]) -> dict[str, dict[tuple[int, int], int]]:
    """The VSA quality columns of (master, slave) -> separation pairs, in plain Python.

    ``one_to_one`` is STILTS ``find=best`` when the master table is the larger:
    every master takes its nearest slave, and each slave keeps the nearest of
    the masters that took it.
    """
    near: dict[int, list] = {}
    mates: dict[int, list] = {}
    for (m, s), d in pairs.items():
        near.setdefault(m, []).append((d, s))
        mates.setdefault(s, []).append((d, m))
    best = {(m, min(cands)[1]) for m, cands in near.items()}
    took: dict[int, list] = {}
    for m, s in best:
        took.setdefault(s, []).append((pairs[m, s], m))
    one_to_one = {(min(cands)[1], s) for s, cands in took.items()}
    out: dict[str, dict[tuple[int, int], int]] = {
        "number_of_neighbours": {}, "number_of_mates": {}, "best_neighbour": {},
        "one_to_one": {}, "ambiguous": {}}
    for m, s in pairs:
        out["number_of_neighbours"][m, s] = len(near[m])
        out["number_of_mates"][m, s] = len(mates[s]) - 1
        out["best_neighbour"][m, s] = int((m, s) in best)
        out["one_to_one"][m, s] = int((m, s) in one_to_one)
        out["ambiguous"][m, s] = int(len(near[m]) > 1 or len(mates[s]) > 1)
    return out


def test_pairs_and_quality_equal_brute_force(vista, field, tmp_path) -> None:
    d, gaia, survey = field
    state = build_neighbours(vista, d / "sources.fits", [d / "gaia.fits"], RADIUS,
                             tmp_path / "out", workers=1, progress=False)
    got = Table.read(tmp_path / "out" / "neighbours.fits", hdu=1)
    assert got.colnames == list(NEIGHBOUR_COLUMNS)
    truth = _brute(gaia, survey)
    pairs = dict(zip(zip(got["masterObjID"].tolist(), got["slaveObjID"].tolist(),
                         strict=True), got["angular_distance"].tolist(), strict=True))
    assert set(pairs) == set(truth)
    assert max(abs(pairs[p] - truth[p]) for p in truth) < 1e-6
    assert state["n_pairs"] == len(truth)
    # The quality columns, each from the brute-force pairs (the survey chooses).
    expected = _quality(truth)
    assert len(survey) > len(gaia)  # so the survey's rows choose first in find=best
    for column in ("number_of_neighbours", "number_of_mates", "best_neighbour", "one_to_one",
                   "ambiguous"):
        mine = dict(zip(pairs, got[column].tolist(), strict=True))
        assert mine == expected[column], column
    assert 0 < sum(expected["one_to_one"].values()) < sum(expected["best_neighbour"].values())
    assert 0 < sum(expected["ambiguous"].values()) < len(truth)
    print(f"{len(truth)} pairs, {int(got['ambiguous'].sum())} ambiguous")


def test_file_is_deterministic(vista, field, tmp_path) -> None:
    """Same inputs, same bytes: the ledger's up-to-date check can compare checksums.

    (Whether a rerun is needed is decided by the caller, from the ledger:
    tests/integration/test_uptodate.py and test_xmatch_tables.py.)
    """
    d, _, _ = field
    args = (vista, d / "sources.fits", [d / "gaia.fits"], RADIUS)
    first = build_neighbours(*args, tmp_path / "out", workers=1, progress=False)
    again = build_neighbours(*args, tmp_path / "again", workers=1, progress=False)
    assert again["sha256"] == first["sha256"]
    assert (tmp_path / "again" / "neighbours.fits").read_bytes() == \
        (tmp_path / "out" / "neighbours.fits").read_bytes()
    state = json.loads((tmp_path / "out" / "state.json").read_text())
    assert state["sha256"] == first["sha256"]
    assert state["n_pairs"] == first["n_pairs"] > 0


@pytest.mark.parametrize("sources, radius, message", [
    (False, RADIUS, "'vista' has no band-merged sources"),
    (True, 0.0, "radius must be a positive"),
    (True, -1.0, "radius must be a positive"),
    (True, float("nan"), "radius must be a positive"),
])
def test_bad_input_writes_nothing(vista, field, tmp_path, sources, radius, message) -> None:
    d, _, _ = field
    survey = dataclasses.replace(vista, sources=sources)
    with pytest.raises(XmatchError, match=message):
        build_neighbours(survey, d / "sources.fits", [d / "gaia.fits"], radius,
                         tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out").exists()


def test_nan_positions_are_refused(vista, field, tmp_path) -> None:
    d, _, survey = field
    bad = survey.copy()
    bad["ra"][3] = np.nan
    bad.write(tmp_path / "bad.fits")
    with pytest.raises(XmatchError, match="no position"):
        build_neighbours(vista, tmp_path / "bad.fits", [d / "gaia.fits"], RADIUS,
                         tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out" / "neighbours.fits").exists()
    assert fits.getheader(tmp_path / "bad.fits", 1)["NAXIS2"] == len(survey)

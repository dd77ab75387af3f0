# SPDX-License-Identifier: BSD-3-Clause
"""The partitioned cross-match engine against STILTS, astropy, brute force and the truth.

Synthetic catalogues with known counterparts, built with a fixed seed: fields
around RA = 0, the north pole and two of the HEALPix vertices where only three
base pixels meet, plus pairs placed on the corners and edges of the partition
pixels so that they straddle partition boundaries, and deliberate crowding
(second neighbours, shared counterparts) so that the best-match rules differ.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.table import Table
from astropy.time import Time

from casuvo.jobs import CatalogueColumns, JobResult, XmatchJob
from casuvo.sky.healpix import lonlat_to_nested, pixels_near
from casuvo.xmatch import KdTreeKernel, TableSpec, XmatchArgs, XmatchError, run_xmatch
from casuvo.xmatch.motion import propagate, vectors_to_radec
from casuvo.xmatch.partition import choose_order
from casuvo.xmatch.quality import assess
from tests.compute.xmatchsky import (
    ORDER,
    RADIUS,
    STILTS,
    boundary_anchors,
    build_movers,
    cap,
    offset,
)


def _args(sky: dict, out: Path, **kw) -> XmatchArgs:
    return XmatchArgs(TableSpec(sky["a"], id="source_id"), TableSpec(sky["b"], id="sourceID"),
                      kw.pop("radius", RADIUS), out, progress=False, **kw)


def _pairs(path: Path) -> dict[tuple[int, int], float]:
    t = pq.read_table(path)
    return dict(zip(zip(t.column("a_row").to_pylist(), t.column("b_row").to_pylist(),
                        strict=True), t.column("angular_distance").to_pylist(), strict=True))


@pytest.fixture(scope="module")
def result(sky: dict, client, tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("xmatch_out") / "run"
    summary = run_xmatch(_args(sky, out, order=ORDER), client=client)
    return summary, out


def _stilts(sky: dict, find: str, out: Path) -> set[tuple[int, int]]:
    subprocess.run(
        [STILTS, "tmatch2", f"in1={sky['a']}", f"in2={sky['b']}",
         "icmd1=addcol arow \"(long)$0-1\"", "icmd2=addcol brow \"(long)$0-1\"",
         "matcher=sky", "values1=ra dec", "values2=ra dec", f"params={RADIUS}",
         f"find={find}", "join=1and2", f"out={out}", "ofmt=fits",
         "ocmd=keepcols \"arow brow Separation\""],
        check=True, capture_output=True)
    t = Table.read(out)
    return set(zip(t["arow"].tolist(), t["brow"].tolist(), strict=True))


# ------------------------------------------------------------------ equality with others

def test_pairs_and_best_equal_stilts(sky: dict, result: tuple, tmp_path: Path) -> None:
    summary, out = result
    pairs = pq.read_table(out / "pairs.parquet").to_pandas()
    mine = set(zip(pairs.a_row, pairs.b_row, strict=True))
    assert len(mine) == len(pairs) == summary.n_pairs > 5000
    assert mine == _stilts(sky, "all", tmp_path / "all.fits")
    best = pq.read_table(out / "best.parquet").to_pandas()
    assert set(zip(best.a_row, best.b_row, strict=True)) == _stilts(sky, "best1",
                                                                     tmp_path / "b1.fits")
    mutual = pairs[pairs.mutual]
    stilts_best = _stilts(sky, "best", tmp_path / "best.fits")
    assert set(zip(mutual.a_row, mutual.b_row, strict=True)) == stilts_best
    # The crowding makes the three rules differ, so each equality says something.
    assert len(stilts_best) < len(best) < len(pairs)


def test_best_equals_stilts_with_a_larger(sky: dict, client, tmp_path: Path) -> None:
    """The same sky with the tables swapped: now A is the larger one."""
    swapped = {**sky, "a": sky["b"], "b": sky["a"]}
    summary = run_xmatch(XmatchArgs(TableSpec(sky["b"]), TableSpec(sky["a"]), RADIUS,
                                    tmp_path / "swapped", progress=False), client=client)
    assert summary.n_a > summary.n_b
    pairs = pq.read_table(tmp_path / "swapped" / "pairs.parquet").to_pandas()
    mutual = pairs[pairs.mutual]
    assert (set(zip(mutual.a_row, mutual.b_row, strict=True))
            == _stilts(swapped, "best", tmp_path / "best.fits"))


def test_pairs_equal_astropy(sky: dict, result: tuple) -> None:
    _, out = result
    a = SkyCoord(sky["a_ra"] * u.deg, sky["a_dec"] * u.deg)
    b = SkyCoord(sky["b_ra"] * u.deg, sky["b_dec"] * u.deg)
    ia, ib, sep, _ = search_around_sky(a, b, RADIUS * u.arcsec)
    theirs = dict(zip(zip(ia.tolist(), ib.tolist(), strict=True),
                      sep.to_value(u.arcsec).tolist(), strict=True))
    mine = _pairs(out / "pairs.parquet")
    assert mine.keys() == theirs.keys()
    diff = max(abs(mine[k] - theirs[k]) for k in mine)
    assert diff < 1e-9                                     # arcsec


def test_true_counterparts_recovered(sky: dict, result: tuple) -> None:
    _, out = result
    best = pq.read_table(out / "best.parquet").to_pandas()
    found = dict(zip(best.a_row, best.b_row, strict=True))
    true_b = sky["true_b"]
    isolated = best.a_row[(best.number_of_neighbours == 1) & (best.number_of_mates == 0)
                          & (true_b[best.a_row] >= 0)]
    wrong = [a for a in isolated if found[a] != true_b[a]]
    assert wrong == []
    with_truth = np.flatnonzero(true_b >= 0)
    recovered = sum(found.get(a) == true_b[a] for a in with_truth)
    assert recovered / with_truth.size > 0.97
    # Every boundary pair is found, once, and most cross a partition boundary.
    pairs = _pairs(out / "pairs.parquet")
    bnd = np.flatnonzero(sky["boundary"])
    assert all((a, true_b[a]) in pairs for a in bnd)
    a_pix = lonlat_to_nested(sky["a_ra"][bnd], sky["a_dec"][bnd], ORDER)
    b_pix = lonlat_to_nested(sky["b_ra"][true_b[bnd]], sky["b_dec"][true_b[bnd]], ORDER)
    assert (a_pix != b_pix).sum() > 0.3 * bnd.size


def test_partition_order_independence(sky: dict, result: tuple, client,
                                      tmp_path: Path) -> None:
    summary6, out6 = result
    summary7 = run_xmatch(_args(sky, tmp_path / "o7", order=ORDER + 1), client=client)
    auto = run_xmatch(_args(sky, tmp_path / "auto", rows_per_partition=800), client=client)
    assert summary7.partitions > summary6.partitions
    assert auto.order > ORDER + 1 and auto.partitions > summary7.partitions
    p6 = _pairs(out6 / "pairs.parquet")
    for out in (tmp_path / "o7", tmp_path / "auto"):
        other = _pairs(out / "pairs.parquet")
        assert other.keys() == p6.keys()
        assert max(abs(other[k] - p6[k]) for k in p6) < 1e-9


def test_pairs_on_a_process_cluster_equal_the_local_run(sky: dict, result: tuple,
                                                       process_cluster: dict,
                                                       tmp_path: Path) -> None:
    """The same match through ``--scheduler`` on ``casuvo cluster up``'s processes."""
    _, local = result
    run_xmatch(_args(sky, tmp_path / "cluster", order=ORDER,
                     scheduler=process_cluster["address"]))
    assert _pairs(tmp_path / "cluster" / "pairs.parquet") == _pairs(local / "pairs.parquet")


# ------------------------------------------------------------------ quality columns

def test_quality_of_a_known_group() -> None:
    # A0 sees B0 (0.2″) and B1 (0.6″); A1 sees B1 (0.3″); A2 sees B2 alone; A3 sees B0 (0.5″).
    a = np.array([0, 0, 1, 2, 3])
    b = np.array([0, 1, 1, 2, 0])
    sep = np.array([0.2, 0.6, 0.3, 0.4, 0.5])
    q = assess(a, b, sep)
    assert q.number_of_neighbours.tolist() == [2, 2, 1, 1, 1]
    assert q.number_of_mates.tolist() == [1, 1, 1, 0, 1]
    assert q.best.tolist() == [True, False, True, True, True]
    assert q.best_mates.tolist() == [1, -1, 0, 0, 1]          # A0 and A3 share B0
    assert q.mutual.tolist() == [True, False, True, True, False]
    assert q.ambiguous.tolist() == [True, True, True, False, True]
    # Whose rows choose first (STILTS: the larger table's) changes the one-to-one set.
    a, b, sep = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 0]), np.array([.38, .42, .19, .35])
    assert assess(a, b, sep, 2, 2).mutual.tolist() == [True, False, True, False]
    assert assess(a, b, sep, 2, 3).mutual.tolist() == [False, False, True, False]


def test_output_columns(sky: dict, result: tuple) -> None:
    _, out = result
    pairs = pq.read_table(out / "pairs.parquet").to_pandas()
    vsa = pq.read_table(out / "neighbours.parquet")
    assert vsa.column_names == ["masterObjID", "slaveObjID", "distanceMins"]
    assert str(vsa.schema.field("distanceMins").type) == "float"
    assert str(vsa.schema.field("masterObjID").type) == "int64"
    assert np.array_equal(vsa.column("masterObjID").to_numpy(), 10**12 + pairs.a_row)
    assert np.array_equal(vsa.column("slaveObjID").to_numpy(), 5 * 10**12 + pairs.b_row)
    assert np.allclose(vsa.column("distanceMins").to_numpy() * 60.0,
                       pairs.angular_distance, rtol=1e-6)
    counts = pairs.groupby("a_row").size()
    assert (pairs.number_of_neighbours.to_numpy() == counts[pairs.a_row].to_numpy()).all()
    best = pq.read_table(out / "best.parquet").to_pandas()
    assert best.a_row.is_unique and len(best) == pairs.a_row.nunique()
    assert (best.ambiguous == ((best.number_of_neighbours > 1)
                               | (pairs[pairs.best].number_of_mates.to_numpy() > 0))).all()
    assert (best.number_of_mates > 0).sum() > 5            # twins share counterparts
    assert best.angular_distance.max() <= RADIUS


# ------------------------------------------------------------------ proper motion

def test_propagation_agrees_with_astropy() -> None:
    ra = np.array([10.0, 200.0, 45.0, 0.0, 359.99])
    dec = np.array([-30.0, 89.99, 60.0, -89.9, 0.0])
    pmra = np.array([500.0, -2000.0, 10.0, 300.0, 8000.0])
    pmdec = np.array([-300.0, 1000.0, 5.0, -800.0, 100.0])
    start = SkyCoord(ra * u.deg, dec * u.deg, pm_ra_cosdec=pmra * u.mas / u.yr,
                     pm_dec=pmdec * u.mas / u.yr, obstime=Time(2016.0, format="jyear"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # ERFA: no distance, taken as very far
        theirs = start.apply_space_motion(new_obstime=Time(2006.0, format="jyear"))
    mine = SkyCoord(*vectors_to_radec(propagate(ra, dec, pmra, pmdec, -10.0)), unit="deg")
    assert mine.separation(theirs).to_value(u.uas).max() < 1.0
    # Null proper motion: the position stays.
    still = vectors_to_radec(propagate(ra[:1], dec[:1], [np.nan], [5.0], -10.0))
    assert np.allclose([still[0][0], still[1][0]], [ra[0], dec[0]], atol=1e-12)


@pytest.fixture(scope="module")
def movers(tmp_path_factory) -> dict:
    """60 Gaia-like stars at 2016.0 (up to 1″/yr) and their counterparts at 2009–2012."""
    return build_movers(tmp_path_factory.mktemp("xmatch_pm"))


def _gaia(root: Path) -> TableSpec:
    return TableSpec(root / "gaia.fits", pmra="pmra", pmdec="pmdec", ref_epoch="ref_epoch")


def test_proper_motion_moves_stars_onto_counterparts(movers: dict, client,
                                                     tmp_path: Path) -> None:
    root = movers["root"]
    # Without propagation, only the star that does not move is matched.
    plain = run_xmatch(XmatchArgs(TableSpec(root / "gaia.fits"), TableSpec(root / "b.fits"),
                                  RADIUS, tmp_path / "plain", progress=False), client=client)
    assert plain.n_pairs == 1 and (movers["moved"][1:] > RADIUS + 0.1).all()
    # Moved to each B row's epoch (MJD column): every star finds its own counterpart.
    summary = run_xmatch(XmatchArgs(_gaia(root), TableSpec(root / "b.fits", epoch="mjd"),
                                    RADIUS, tmp_path / "per_row", order=9, progress=False),
                         client=client)
    assert summary.slack_arcsec > 1.0 and summary.partitions > 10
    best = pq.read_table(tmp_path / "per_row" / "best.parquet").to_pandas()
    assert (best.a_row == best.b_row).all() and len(best) == 60
    assert best.angular_distance.max() < 0.06
    # Moved to one fixed epoch.
    run_xmatch(XmatchArgs(_gaia(root), TableSpec(root / "b_fixed.fits"), RADIUS,
                          tmp_path / "fixed", epoch=2010.5, progress=False), client=client)
    fixed = pq.read_table(tmp_path / "fixed" / "best.parquet").to_pandas()
    assert (fixed.a_row == fixed.b_row).all() and len(fixed) == 60
    assert fixed.angular_distance.max() < 1e-6


# ------------------------------------------------------------------ resume

def test_resume_skips_finished_partitions(sky: dict, client, tmp_path: Path) -> None:
    out = tmp_path / "resume"
    first = run_xmatch(_args(sky, out, order=ORDER + 1), client=client)
    assert first.computed == first.partitions > 5 and first.resumed == 0
    before = _pairs(out / "pairs.parquet")
    markers = sorted((out / "parts").glob("*.done"))
    for marker in markers[:3]:                     # as if the run had died there
        marker.unlink()
    markers[0].with_suffix(".parquet").write_bytes(b"half a file")
    again = run_xmatch(_args(sky, out, order=ORDER + 1), client=client)
    assert again.computed == 3 and again.resumed == first.partitions - 3
    assert _pairs(out / "pairs.parquet") == before
    assert again.n_pairs == first.n_pairs and again.n_mutual == first.n_mutual
    done = run_xmatch(_args(sky, out, order=ORDER + 1), client=client)
    assert done.computed == 0
    # Another radius is another plan: everything again.
    wider = run_xmatch(_args(sky, out, order=ORDER + 1, radius=1.2), client=client)
    assert wider.computed == wider.partitions and wider.n_pairs > first.n_pairs


# ------------------------------------------------------------------ bad input

def _write(path: Path, **columns) -> Path:
    Table(columns).write(path)
    return path


@pytest.mark.parametrize("case", ["no column", "nan position", "radius 0", "radius < 0",
                                  "radius nan", "empty", "margin", "order", "no file",
                                  "epoch without pm", "float id"])
def test_bad_input_raises_and_writes_nothing(case: str, sky: dict, tmp_path: Path) -> None:
    good_a, good_b = TableSpec(sky["a"]), TableSpec(sky["b"])
    kw: dict = {}
    a, b, radius = good_a, good_b, RADIUS
    if case == "no column":
        b, match = TableSpec(sky["b"], ra="alpha"), "no column 'alpha'"
    elif case == "nan position":
        a = TableSpec(_write(tmp_path / "nan.fits", ra=[1.0, np.nan, 3.0], dec=[0.0, 0, 0]))
        match = "1 rows have no position.*row 1"
    elif case.startswith("radius"):
        radius = {"radius 0": 0.0, "radius < 0": -1.0, "radius nan": np.nan}[case]
        match = "radius must be a positive number"
    elif case == "empty":
        b = TableSpec(_write(tmp_path / "empty.fits", ra=np.zeros(0), dec=np.zeros(0)))
        match = "empty"
    elif case == "margin":
        kw, match = {"margin_arcsec": 0.5}, "wider than the partition margin"
    elif case == "order":
        kw, match = {"order": 17}, "partition order must be in 0..15"
    elif case == "no file":
        a, match = TableSpec(tmp_path / "absent.fits"), "no such file"
    elif case == "epoch without pm":
        kw, match = {"epoch": 2010.0}, "needs A's proper motions"
    else:
        a, match = TableSpec(sky["a"], id="ra"), "not an integer column"
    out = tmp_path / "out"
    with pytest.raises(XmatchError, match=match):
        run_xmatch(XmatchArgs(a, b, radius, out, progress=False, **kw))
    assert not out.exists()


def test_kernel_contract() -> None:
    with pytest.raises(XmatchError, match="wider than the partition margin"):
        KdTreeKernel(radius_arcsec=2.0, margin_arcsec=1.0).validate()
    with pytest.raises(XmatchError, match="proper motion"):
        KdTreeKernel(radius_arcsec=1.0, margin_arcsec=1.5, epoch=2010.0,
                     slack_arcsec=1.0).validate()
    KdTreeKernel(radius_arcsec=1.0, margin_arcsec=1.0).validate()


# ------------------------------------------------------------------ pure functions

def test_pixels_near_covers_the_margin() -> None:
    """Brute force: every order-6 pixel with a corner or edge point within the margin."""
    rng = np.random.default_rng(3)
    anc_ra, anc_dec = boundary_anchors()
    n = anc_ra.size
    ra, dec = offset(anc_ra, anc_dec, rng.uniform(0, 360, n), rng.uniform(0, 2.0, n))
    rows, pix = pixels_near(ra, dec, ORDER, 2.0)
    got = set(zip(rows.tolist(), pix.tolist(), strict=True))
    # Probe points up to 1.99″ away from each point, every 2° of position angle.
    pa = np.tile(np.repeat(np.arange(0, 360, 2.0), 4), n)
    dist = np.tile([0.5, 1.0, 1.5, 1.99], 180 * n)
    which = np.repeat(np.arange(n), 720)
    probe_ra, probe_dec = offset(ra[which], dec[which], pa, dist)
    probe = lonlat_to_nested(probe_ra, probe_dec, ORDER)
    own = lonlat_to_nested(ra, dec, ORDER)[which]
    needed = set(zip(which[probe != own].tolist(), probe[probe != own].tolist(), strict=True))
    assert len(needed) > n / 2 and needed <= got


def test_choose_order_follows_density() -> None:
    rng = np.random.default_rng(1)
    ra, dec = cap(rng, 30.0, 10.0, 4000)
    pix = lonlat_to_nested(ra, dec, 12)
    shallow = choose_order(pix, pix, 12, rows_per_partition=10_000)
    deep = choose_order(pix, pix, 12, rows_per_partition=500)
    assert shallow == 0 and deep > 4
    counts = np.unique(pix >> (2 * (12 - deep)), return_counts=True)[1]
    assert 2 * counts.max() <= 500


# ------------------------------------------------------------------ as a job

def test_xmatch_job(sky: dict, result: tuple, tmp_path: Path) -> None:
    """The engine as a job file run by ``python -m casuvo.jobs`` (what a user runs by hand)."""
    out = tmp_path / "cli"

    def job(radius: float) -> str:
        return XmatchJob(CatalogueColumns(sky["a"], id="source_id"), CatalogueColumns(sky["b"]),
                         radius, out, order=ORDER, workers=1, progress=False,
                         output_format="fits").to_json()

    bad = subprocess.run([sys.executable, "-m", "casuvo.jobs"], input=job(-1.0),
                         capture_output=True, text=True)
    assert bad.returncode == 2
    failed = JobResult.from_json(bad.stdout)
    assert failed.status == "usage-error"
    assert "radius must be a positive number" in failed.message
    assert not out.exists()
    (tmp_path / "job.json").write_text(job(RADIUS))
    ok = subprocess.run([sys.executable, "-m", "casuvo.jobs", str(tmp_path / "job.json")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    done = JobResult.from_json(ok.stdout)
    assert done.status == "ok"
    assert done.summary["n_pairs"] == result[0].n_pairs
    assert done.summary["order"] == ORDER
    pairs = Table.read(out / "pairs.fits")
    assert pairs["angular_distance"].unit == u.arcsec
    _, ref = result
    assert (set(zip(pairs["a_row"].tolist(), pairs["b_row"].tolist(), strict=True))
            == _pairs(ref / "pairs.parquet").keys())

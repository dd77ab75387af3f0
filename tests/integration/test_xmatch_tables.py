# SPDX-License-Identifier: BSD-3-Clause
"""The Gaia neighbour tables vista.sources_x_gaia and vst.sources_x_gaia, end to end.

Loaded by ``casuvo xmatch SURVEY`` (in ``casuvo demo``) from the engine's
file under var/data/xmatch/<survey>_x_gaia.  Checked: published in TAP with
units and UCDs, the rows are the engine's pairs, the pairs equal STILTS
``tmatch2`` on the same two tables, the best matches of bright isolated stars
are their true Gaia stars (the simulator's sky truth), bad input changes
nothing and a rerun is skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
import pyvo
from astropy import units as u
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.io import fits
from astropy.table import Table, vstack

from casuvo.catalogue.mergedtable import merged_path
from casuvo.catalogue.neighbourtable import NEIGHBOUR_COLUMNS
from casuvo.dachs.instance import dachs_env

pytestmark = pytest.mark.integration

SURVEYS = ("vista", "vst")
RADIUS = 2.0
#: Bright, unsaturated point sources of each survey for the truth check: (band column, range).
BRIGHT = {"vista": ("ksAperMag3", 12.0, 16.0), "vst": ("rAperMag3", 14.0, 18.5)}
#: The sky-truth magnitude of that band.
TRUTH_MAG = {"vista": "mag_Ks", "vst": "mag_r"}


@pytest.fixture(scope="module", params=SURVEYS)
def survey(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def work_dir(settings, survey) -> Path:
    path = settings.data_dir / "xmatch" / f"{survey}_x_gaia"
    assert (path / "state.json").is_file(), f"no {path}: `casuvo demo` runs `casuvo xmatch`"
    return path


@pytest.fixture(scope="module")
def state(work_dir) -> dict:
    return json.loads((work_dir / "state.json").read_text())


@pytest.fixture(scope="module")
def neighbours(work_dir) -> Table:
    return Table.read(work_dir / "neighbours.fits", hdu=1)


def _table_digest(settings, survey: str) -> tuple:
    """(rows, content digest, ledger rows) of the neighbour table: what must not change."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        rows, digest = conn.execute(
            f"SELECT count(*), md5(string_agg(masterobjid::text || ':' || slaveobjid::text,"
            f" ',' ORDER BY masterobjid, slaveobjid)) FROM {survey}.sources_x_gaia"
        ).fetchone()
        ledger_rows = conn.execute("SELECT count(*) FROM ledger.ingests WHERE target = %s",
                                   (f"{survey}.sources_x_gaia",)).fetchone()[0]
        catalogue = conn.execute(f"SELECT built FROM {survey}.required_neighbours"
                                 ).fetchall()
    return rows, digest, ledger_rows, catalogue


def test_tables_are_in_tap_schema_with_units_and_ucds(endpoints, survey) -> None:
    tap = pyvo.dal.TAPService(endpoints["tap"])
    cols = tap.run_sync(
        "SELECT column_name, unit, ucd, description FROM TAP_SCHEMA.columns"
        f" WHERE table_name = '{survey}.sources_x_gaia'").to_table()
    names = [str(n).lower() for n in cols["column_name"]]
    assert sorted(names) == sorted(n.lower() for n in NEIGHBOUR_COLUMNS)
    meta = {str(r["column_name"]).lower(): r for r in cols}
    assert meta["distancemins"]["unit"] == "arcmin"
    assert meta["angular_distance"]["unit"] == "arcsec"
    assert meta["distancemins"]["ucd"] == "pos.angDistance"
    assert meta["masterobjid"]["ucd"] == "meta.id;meta.main"
    assert all(len(str(r["description"])) > 20 for r in cols)
    tables = tap.run_sync("SELECT table_name FROM TAP_SCHEMA.tables WHERE table_name LIKE"
                          f" '{survey}.%'").to_table()
    assert {f"{survey}.sources_x_gaia", f"{survey}.required_neighbours"} <= {
        str(t) for t in tables["table_name"]}


def test_rd_columns_equal_the_copied_columns(settings, survey) -> None:
    out = subprocess.run([sys.executable, "-m", "casuvo.dachs.rdschema", f"{survey}/q",
                          "sources_x_gaia"], env=dachs_env(settings), capture_output=True,
                         text=True, check=True)
    assert [c["name"] for c in json.loads(out.stdout)] == list(NEIGHBOUR_COLUMNS)


def test_indexes_on_master_and_slave(settings, survey) -> None:
    """One B-tree index on each id column alone, which the VSA-style joins use."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        indexed = {r[0] for r in conn.execute(
            "SELECT pg_get_indexdef(x.indexrelid, 1, true) FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am m ON m.oid = i.relam"
            " WHERE x.indrelid = %s::regclass AND x.indnatts = 1 AND m.amname = 'btree'",
            (f"{survey}.sources_x_gaia",)).fetchall()}
    assert {"masterobjid", "slaveobjid"} <= indexed, indexed


def test_rows_are_the_engines_pairs(settings, endpoints, survey, state, neighbours,
                                    work_dir) -> None:
    tap = pyvo.dal.TAPService(endpoints["tap"])
    counts = tap.run_sync(
        "SELECT COUNT(*) AS n, SUM(best_neighbour) AS best, SUM(one_to_one) AS mutual,"
        f" MAX(angular_distance) AS far FROM {survey}.sources_x_gaia").to_table()[0]
    engine = json.loads((work_dir / "engine" / "summary.json").read_text())
    print(f"{survey}.sources_x_gaia: {int(counts['n']):,d} pairs, {int(counts['best']):,d} "
          f"best, {int(counts['mutual']):,d} one-to-one; engine {engine['n_pairs']:,d} pairs "
          f"in {engine['partitions']} partitions (order {engine['order']})")
    assert int(counts["n"]) == engine["n_pairs"] == state["n_pairs"] == len(neighbours)
    assert int(counts["best"]) == state["n_masters"] == len(np.unique(neighbours["masterObjID"]))
    assert int(counts["mutual"]) == engine["n_mutual"]
    assert float(counts["far"]) < RADIUS
    # Row by row: the table holds the file's pairs, distances and flags.
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT masterobjid, slaveobjid, angular_distance, number_of_neighbours,"
            " number_of_mates, best_neighbour, one_to_one, ambiguous"
            f" FROM {survey}.sources_x_gaia").fetchall()
    columns = ("masterObjID", "slaveObjID", "angular_distance", "number_of_neighbours",
               "number_of_mates", "best_neighbour", "one_to_one", "ambiguous")
    in_file = {(int(r[0]), int(r[1])): tuple(r[2:]) for r in zip(
        *(neighbours[c].tolist() for c in columns), strict=True)}
    in_table = {(int(r[0]), int(r[1])): tuple(r[2:]) for r in rows}
    assert in_table == in_file
    catalogue = tap.run_sync(f"SELECT * FROM {survey}.required_neighbours").to_table()
    assert len(catalogue) == 1
    row = catalogue[0]
    assert str(row["neighbourTable"]) == f"{survey}.sources_x_gaia"
    assert float(row["radius"]) == RADIUS
    assert float(row["joinCriterion"]) == pytest.approx(RADIUS / 3600)
    assert int(row["nPairs"]) == len(neighbours)


def test_quality_columns_are_consistent(neighbours) -> None:
    master, slave = np.asarray(neighbours["masterObjID"]), np.asarray(neighbours["slaveObjID"])
    _, inv_m, n_m = np.unique(master, return_inverse=True, return_counts=True)
    _, inv_s, n_s = np.unique(slave, return_inverse=True, return_counts=True)
    assert np.array_equal(neighbours["number_of_neighbours"], n_m[inv_m])
    assert np.array_equal(neighbours["number_of_mates"], n_s[inv_s] - 1)
    assert np.array_equal(neighbours["ambiguous"] == 1,
                          (n_m[inv_m] > 1) | (n_s[inv_s] > 1))
    assert np.allclose(neighbours["distanceMins"], neighbours["angular_distance"] / 60,
                       rtol=1e-6)


def _survey_epochs(merged: Table, columns: tuple[str, ...]) -> np.ndarray:
    """Julian year of each merged source: the mean of its band epochs (MJD ``columns``)."""
    mjd = np.stack([np.asarray(merged[c].filled(np.nan) if hasattr(merged[c], "filled")
                               else merged[c], dtype=float) for c in columns])
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(mjd, axis=0)
    return 2000.0 + (mean - 51544.5) / 365.25


def _stilts(in1: Path, in2: Path, find: str, tmp: Path) -> dict[tuple[int, int], float]:
    """STILTS tmatch2 matcher=sky pairs (sourceID, source_id) -> separation in arcsec."""
    out = tmp / f"pairs_{find}.fits"
    subprocess.run(["stilts", "-Xmx2g", "tmatch2", f"in1={in1}", f"in2={in2}",
                    "matcher=sky", "values1=ra dec", "values2=ra dec", f"params={RADIUS}",
                    "join=1and2", f"find={find}", f"out={out}",
                    "ocmd=keepcols 'sourceID source_id Separation'"],
                   check=True, capture_output=True, text=True, timeout=600)
    rows = fits.getdata(out, 1)
    return {(int(a), int(b)): float(s) for a, b, s in zip(
        rows["sourceID"], rows["source_id"], rows["Separation"], strict=True)}


def test_pairs_equal_stilts_tmatch2(settings, registry, survey, gaia_catalogue, neighbours,
                                    tmp_path) -> None:
    """STILTS matches the same tables, Gaia moved to the median epoch by astropy.

    The motion is astropy's ``spherical_offsets_by`` (μα*·Δt east, μδ·Δt
    north), not casuvo.xmatch.motion; not ``apply_space_motion``, because the
    service environment's pyerfa (Debian's 2.0.0.1) misplaces about one star in
    ten by up to 0.2 mas without a distance, more than the tolerance below.

    The engine moves each Gaia star to the epoch of the source it is compared
    with; the difference from the median epoch can move a pair across the
    radius only by the star's motion over that difference, and only such pairs
    may differ.
    """
    merged_file = merged_path(settings.data_dir / "products", survey)
    merged = Table.read(merged_file, hdu=1)
    epochs = _survey_epochs(merged, registry[survey].epoch_columns)
    median = float(np.nanmedian(epochs))
    g = gaia_catalogue
    pmra = np.nan_to_num(np.asarray(g["pmra"], dtype=float))
    pmdec = np.nan_to_num(np.asarray(g["pmdec"], dtype=float))
    dt = median - np.asarray(g["ref_epoch"], dtype=float)
    at_ref = SkyCoord(np.asarray(g["ra"]) * u.deg, np.asarray(g["dec"]) * u.deg)
    moved = at_ref.spherical_offsets_by(pmra * dt * u.mas, pmdec * dt * u.mas)
    gaia_file = tmp_path / "gaia_moved.fits"
    Table({"source_id": np.asarray(g["source_id"]), "ra": moved.ra.deg,
           "dec": moved.dec.deg}).write(gaia_file)
    theirs = _stilts(merged_file, gaia_file, "all", tmp_path)
    ours = {(int(a), int(b)): float(s) for a, b, s in zip(
        neighbours["masterObjID"], neighbours["slaveObjID"], neighbours["angular_distance"],
        strict=True)}
    # The largest shift between the median epoch and any source's own epoch.
    spread = float(np.nanmax(np.abs(epochs - median)))
    pm = dict(zip(np.asarray(g["source_id"]).tolist(), np.hypot(pmra, pmdec), strict=True))

    def slack(pair: tuple[int, int]) -> float:
        return pm[pair[1]] * spread / 1000.0 + 1e-6
    only_ours, only_theirs = set(ours) - set(theirs), set(theirs) - set(ours)
    assert all(abs(ours[p] - RADIUS) <= slack(p) for p in only_ours), sorted(only_ours)[:5]
    assert all(abs(theirs[p] - RADIUS) <= slack(p) for p in only_theirs), \
        sorted(only_theirs)[:5]
    common = set(ours) & set(theirs)
    worst = max(abs(ours[p] - theirs[p]) - slack(p) for p in common)
    assert worst <= 1e-5, f"separations differ by {worst}″ beyond the epoch difference"
    print(f"{survey}: {len(ours):,d} pairs, STILTS {len(theirs):,d}, {len(common):,d} common; "
          f"{len(only_ours)} + {len(only_theirs)} within the epoch slack of {RADIUS:g}″ "
          f"(epoch spread {spread:.3f} yr)")
    # Best match per survey source (find=best1) and one-to-one (find=best).
    for find, column in (("best1", "best_neighbour"), ("best", "one_to_one")):
        flagged = neighbours[neighbours[column] == 1]
        mine = set(zip(flagged["masterObjID"].tolist(), flagged["slaveObjID"].tolist(),
                       strict=True))
        stilts = set(_stilts(merged_file, gaia_file, find, tmp_path))
        differ = mine ^ stilts
        if spread == 0:
            assert not differ, f"{find}: {len(differ)} pairs differ, e.g. {sorted(differ)[:3]}"
        else:  # a different epoch may reorder near-equal candidates
            assert len(differ) <= 0.001 * len(mine) + 2 * len(only_ours | only_theirs) + 10
        print(f"{survey}: find={find}: {len(mine):,d} pairs, STILTS {len(stilts):,d}, "
              f"{len(differ)} differ")


def test_bright_isolated_stars_have_their_true_gaia_star(settings, survey,
                                                         neighbours) -> None:
    merged = Table.read(merged_path(settings.data_dir / "products", survey), hdu=1)
    band, lo, hi = BRIGHT[survey]
    mag = np.asarray(merged[band].filled(np.nan) if hasattr(merged[band], "filled")
                     else merged[band], dtype=float)
    bright = merged[(mag > lo) & (mag < hi) & (np.asarray(merged["mergedClass"]) == -1)]
    sky = vstack([Table.read(f, hdu=1) for f in sorted((settings.data_dir / "truth").glob(
        "sky_*.fits"))], metadata_conflicts="silent")
    # Sources that could confuse the match: anything within 2.5 mag of the faintest
    # bright star; isolated: no other such source within 3″.
    truth_mag = np.asarray(sky[TRUTH_MAG[survey]], dtype=float)
    visible = sky[np.isfinite(truth_mag) & (truth_mag < hi + 2.5)]
    s_pos = SkyCoord(np.asarray(bright["ra"]) * u.deg, np.asarray(bright["dec"]) * u.deg)
    t_pos = SkyCoord(np.asarray(visible["ra"]) * u.deg, np.asarray(visible["dec"]) * u.deg)
    i_s, i_t, sep, _ = search_around_sky(s_pos, t_pos, 3 * u.arcsec)
    n_near = np.bincount(i_s, minlength=len(bright))
    close = sep.arcsec < 0.5
    isolated = (n_near[i_s] == 1) & close & np.asarray(visible["in_gaia"])[i_t]
    truth = dict(zip(np.asarray(bright["sourceID"])[i_s[isolated]].tolist(),
                     np.asarray(visible["sky_id"])[i_t[isolated]].tolist(), strict=True))
    assert len(truth) > 100, f"only {len(truth)} bright isolated stars with a Gaia counterpart"
    best = neighbours[neighbours["best_neighbour"] == 1]
    found = dict(zip(np.asarray(best["masterObjID"]).tolist(),
                     np.asarray(best["slaveObjID"]).tolist(), strict=True))
    right = sum(found.get(s) == g for s, g in truth.items())
    unmatched = sum(s not in found for s in truth)
    print(f"{survey}: {right} of {len(truth)} bright isolated stars have their true Gaia "
          f"star as best neighbour ({unmatched} without a neighbour)")
    assert right >= 0.99 * len(truth)


def _casuvo(casuvo_bin: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(casuvo_bin), *args], capture_output=True, text=True,
                          timeout=900, check=False)


@pytest.mark.parametrize("args, message", [
    (("xmatch", "nosuchsurvey"), "no band-merged sources for survey 'nosuchsurvey'"),
    (("xmatch", "vista", "--radius", "0"), "--radius must be a positive number"),
    (("xmatch", "vista", "--radius", "-2"), "--radius must be a positive number"),
    (("xmatch", "vista", "--radius", "nan"), "--radius must be a positive number"),
])
def test_bad_input_changes_nothing(settings, casuvo_bin, args, message) -> None:
    before = _table_digest(settings, "vista")
    proc = _casuvo(casuvo_bin, *args)
    assert proc.returncode == 2
    assert message in proc.stdout + proc.stderr
    assert _table_digest(settings, "vista") == before


def test_rerun_is_skipped(settings, casuvo_bin, survey, work_dir) -> None:
    before = _table_digest(settings, survey)
    state_mtime = (work_dir / "state.json").stat().st_mtime_ns
    t0 = time.perf_counter()
    proc = _casuvo(casuvo_bin, "xmatch", survey, "--no-progress")
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "up to date" in proc.stdout
    assert _table_digest(settings, survey) == before
    assert (work_dir / "state.json").stat().st_mtime_ns == state_mtime
    print(f"casuvo xmatch {survey} rerun: skipped in {seconds:.1f} s")


def _table_rows(settings, survey: str) -> dict[tuple[int, int], tuple]:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT masterobjid, slaveobjid, distancemins, angular_distance,"
            " number_of_neighbours, number_of_mates, best_neighbour, one_to_one, ambiguous"
            f" FROM {survey}.sources_x_gaia").fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_hats_engine_loads_the_same_table(settings, casuvo_bin) -> None:
    """``--engine hats``: partitions matched on the workers, one Parquet file each COPYed;
    every row and column equal to the in-memory engine's file; then restored from it."""
    work = settings.data_dir / "xmatch" / "vst_x_gaia"
    expected = Table.read(work / "neighbours.fits", hdu=1)
    proc = _casuvo(casuvo_bin, "xmatch", "vst", "--engine", "hats", "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hats_state = json.loads((work / "hats_state.json").read_text())
    loaded = _table_rows(settings, "vst")
    try:
        files = [Path(p) for p in hats_state["files"]]
        assert len(files) > 1 and all(p.parent.parent.name.startswith("Norder=")
                                      for p in files)
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            copied = conn.execute(
                "SELECT count(*), sum(rows) FROM ledger.ingests WHERE target ="
                " 'vst.sources_x_gaia' AND file LIKE %s AND status = 'ok'",
                (str(work / "hats" / "pairs") + "/%",)).fetchone()
        assert copied[0] >= len(files) and copied[1] >= len(expected)
        assert len(loaded) == len(expected) == hats_state["n_pairs"] > 1000
        for row in expected:
            got = loaded[(int(row["masterObjID"]), int(row["slaveObjID"]))]
            assert abs(got[1] - row["angular_distance"]) < 1e-9
            assert abs(got[0] - row["distanceMins"]) < 1e-6
            assert got[2:] == tuple(int(row[c]) for c in (
                "number_of_neighbours", "number_of_mates", "best_neighbour", "one_to_one",
                "ambiguous"))
        rerun = _casuvo(casuvo_bin, "xmatch", "vst", "--engine", "hats", "--no-progress")
        assert rerun.returncode == 0 and "up to date" in rerun.stdout, rerun.stdout
    finally:
        restore = _casuvo(casuvo_bin, "xmatch", "vst", "--no-progress")
        assert restore.returncode == 0, restore.stdout + restore.stderr
    assert _table_rows(settings, "vst") == loaded

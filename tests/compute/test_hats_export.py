# SPDX-License-Identifier: BSD-3-Clause
"""HATS exports (``casuvo export hats``) open in LSDB and agree with the database.

Runs in the compute environment on the demo's tables: each export holds as
many rows as the files the ledger says are in its table, and an LSDB
cross-match of the VISTA export with the Gaia export finds the pairs of
``vista.sources_x_gaia`` (read from its file, the one COPYed).  The neighbour
table compares the Gaia position moved to the VISTA epoch, LSDB the
catalogue positions as they are (J2016.0), so a pair may differ only where a
proper motion moves it across the radius: the test allows exactly those,
pair by pair (|separation − radius| below the star's motion between the
epochs), and prints how many there were.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from tests.compute.conftest import jyear, moved_by_astropy
from tests.truth import hidden_framesets

#: lsdb 0.11 sets a pandas option that pandas 3 deprecates (not ours to fix).
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

TABLES = ("gaia.sources", "vista.sources", "vst.sources")
RADIUS = 2.0


def _service_casuvo(settings) -> Path:
    """The service environment's casuvo (``export hats`` reads the ledger, then runs here)."""
    return settings.var / "venv" / "bin" / "casuvo"


def _ingested(settings, table: str) -> list[Path]:
    import psycopg

    from casuvo.storage import ledger

    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        files = ledger.recorded_set(conn, table)
    assert files, f"{table} not loaded: `make test` runs `casuvo demo` first"
    return sorted(Path(f) for f in files)


@pytest.fixture(scope="module")
def exports(settings) -> dict[str, Path]:
    """Export the three tables (skipped when up to date) and return their collections."""
    out = {}
    for table in TABLES:
        proc = subprocess.run([str(_service_casuvo(settings)), "export", "hats", table],
                              capture_output=True, text=True, timeout=1200, check=False)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        out[table] = settings.data_dir / "hats" / table.replace(".", "_")
        print(table, proc.stdout.strip().splitlines()[-1])
    return out


def _public_rows(settings, registry, table: str, group: str | None = None) -> int:
    """Rows of the ingested files the export's audience may see (the public, or a group).

    A survey's merged rows are hidden while a tile of their frame set is
    proprietary (``tests.truth.hidden_framesets``); Gaia has no owners.
    """
    import psycopg

    files = _ingested(settings, table)
    if table == "gaia.sources":
        return sum(fits.getheader(f, 1)["NAXIS2"] for f in files)
    schema = table.split(".", 1)[0]
    survey = registry.by_collection(schema)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        hidden = hidden_framesets(conn, files[0], survey.code, schema,
                                  lambda owner: owner == group)
    return sum(int(np.count_nonzero(~np.isin(fits.getdata(f, 1)["frameSetID"],
                                             list(hidden)))) for f in files)


@pytest.mark.parametrize("table", TABLES)
def test_export_opens_in_lsdb_with_all_rows(settings, registry, exports, table) -> None:
    """Every row the public may see, and no other (a proprietary frame set stays out)."""
    import lsdb

    catalogue = lsdb.open_catalog(exports[table])
    expected = _public_rows(settings, registry, table)
    if table == "vst.sources":  # the demo's NGC 6791 field is proprietary
        assert expected < sum(fits.getheader(f, 1)["NAXIS2"] for f in _ingested(settings, table))
    assert catalogue.margin is not None, "no margin catalogue: cross-matches lose pairs"
    assert len(catalogue) == expected
    frame = catalogue.compute()
    assert len(frame) == expected
    key = "source_id" if table == "gaia.sources" else "sourceID"
    assert frame[key].is_unique
    print(f"{table}: {len(frame):,d} rows in {catalogue.npartitions} partitions")


def test_a_groups_export_holds_what_its_members_see(settings, registry, exports) -> None:
    import lsdb

    proc = subprocess.run([str(_service_casuvo(settings)), "export", "hats", "vst.sources",
                           "--group", "vphas"], capture_output=True, text=True, timeout=1200,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    path = settings.data_dir / "hats" / "vst_sources_vphas"
    expected = _public_rows(settings, registry, "vst.sources", group="vphas")
    assert expected == sum(fits.getheader(f, 1)["NAXIS2"]
                           for f in _ingested(settings, "vst.sources"))
    assert len(lsdb.open_catalog(path)) == expected
    assert expected > len(lsdb.open_catalog(exports["vst.sources"]))


def test_export_is_skipped_when_up_to_date(settings, exports) -> None:
    before = (exports["gaia.sources"] / "casuvo_export.json").stat().st_mtime_ns
    proc = subprocess.run([str(_service_casuvo(settings)), "export", "hats", "gaia.sources"],
                          capture_output=True, text=True, timeout=600, check=True)
    assert json.loads(proc.stdout.strip().splitlines()[-1])["skipped"] is True
    assert (exports["gaia.sources"] / "casuvo_export.json").stat().st_mtime_ns == before


def test_lsdb_crossmatch_equals_neighbour_table(settings, registry, exports) -> None:
    import lsdb

    survey = "vista"
    epoch_columns = registry[survey].epoch_columns
    neighbours = fits.getdata(settings.data_dir / "xmatch" / f"{survey}_x_gaia" /
                              "neighbours.fits", 1)
    table = {(int(m), int(s)): float(d) for m, s, d in zip(
        neighbours["masterObjID"], neighbours["slaveObjID"], neighbours["angular_distance"],
        strict=True)}
    left = lsdb.open_catalog(exports[f"{survey}.sources"],
                             columns=["sourceID", "ra", "dec", *epoch_columns])
    right = lsdb.open_catalog(exports["gaia.sources"],
                              columns=["source_id", "ra", "dec", "pmra", "pmdec"])
    matched = left.crossmatch(right, n_neighbors=64, radius_arcsec=RADIUS,
                              suffixes=("_s", "_g"), suffix_method="all_columns").compute()
    assert len(matched) > 1000
    got = {(int(m), int(s)): float(d) for m, s, d in zip(
        matched["sourceID_s"], matched["source_id_g"], matched["_dist_arcsec"], strict=True)}

    # How far each Gaia star moves between J2016.0 and the survey source's epoch.
    epochs = np.nanmean(np.stack([matched[f"{c}_s"].to_numpy(dtype=float, na_value=np.nan)
                                  for c in epoch_columns]), axis=0)
    pm = np.hypot(matched["pmra_g"].to_numpy(dtype=float, na_value=0.0),
                  matched["pmdec_g"].to_numpy(dtype=float, na_value=0.0))
    motion = dict(zip(got, pm * np.abs(jyear(epochs) - 2016.0) / 1000.0 + 1e-6,
                      strict=True))
    missing = set(table) - set(got)   # in the table, not found by LSDB: moved inside
    extra = set(got) - set(table)     # found by LSDB, not in the table: moved outside
    max_motion = max(motion.values())
    assert all(abs(table[p] - RADIUS) <= max_motion for p in missing)
    assert all(abs(got[p] - RADIUS) <= motion[p] for p in extra)
    common = set(table) & set(got)
    assert len(common) >= 0.99 * len(table)
    worst = max(abs(table[p] - got[p]) - motion[p] for p in common)
    assert worst <= 1e-4, f"a separation differs by more than the motion: {worst}″"
    print(f"{survey}: {len(table):,d} neighbour pairs, LSDB {len(got):,d}; "
          f"{len(common):,d} common, {len(missing)} + {len(extra)} moved across "
          f"{RADIUS:g}″ by proper motion (max {max_motion:.4f}″)")

    # The same with the Gaia export moved to the survey's (median) epoch first: now
    # LSDB must find exactly the table's pairs, up to the epoch spread of the survey.
    gaia = lsdb.open_catalog(exports["gaia.sources"], columns=[
        "source_id", "ra", "dec", "pmra", "pmdec", "ref_epoch"]).compute()
    sources = left.compute()
    survey_epochs = jyear(np.nanmean(np.stack([
        sources[c].to_numpy(dtype=float, na_value=np.nan) for c in epoch_columns]), axis=0))
    median = float(np.nanmedian(survey_epochs))
    spread = float(np.nanmax(np.abs(survey_epochs - median)))
    pmra = gaia["pmra"].to_numpy(dtype=float, na_value=np.nan)
    pmdec = gaia["pmdec"].to_numpy(dtype=float, na_value=np.nan)
    ra, dec = moved_by_astropy(gaia["ra"].to_numpy(dtype=float),
                               gaia["dec"].to_numpy(dtype=float), pmra, pmdec,
                               gaia["ref_epoch"].to_numpy(dtype=float), median)
    moved = lsdb.from_dataframe(pd.DataFrame({"source_id": gaia["source_id"].to_numpy(),
                                              "ra": ra, "dec": dec}),
                                margin_threshold=10.0, catalog_name="gaia_moved")
    exact = left.crossmatch(moved, n_neighbors=64, radius_arcsec=RADIUS, suffixes=("_s", "_g"),
                            suffix_method="all_columns").compute()
    pairs = {(int(m), int(s)): float(d) for m, s, d in zip(
        exact["sourceID_s"], exact["source_id_g"], exact["_dist_arcsec"], strict=True)}
    slack = float(np.nanmax(np.hypot(pmra, pmdec))) * spread / 1000.0 + 1e-6
    differ = set(pairs) ^ set(table)
    assert all(abs(pairs.get(p, table.get(p)) - RADIUS) <= slack for p in differ)
    if spread == 0:
        assert not differ
    assert max(abs(pairs[p] - table[p]) for p in set(pairs) & set(table)) <= slack + 1e-4
    print(f"{survey}: Gaia moved to {median:.3f} first: LSDB {len(pairs):,d} pairs, "
          f"{len(differ)} differ from the table (epoch spread {spread:.3f} yr)")


@pytest.mark.parametrize("args, message", [
    (("export", "hats", "gaia.nosuch"), "invalid choice"),
    (("export", "hats", "gaia.sources", "--margin", "0"), "--margin must be > 0"),
    (("export", "hats", "gaia.sources", "--group", "vvv"), "no owners"),
    (("export", "hats", "vst.sources", "--group", "a,b"), "not a plain name"),
])
def test_bad_input_writes_nothing(settings, exports, args, message) -> None:
    before = sorted(p.name for p in (settings.data_dir / "hats").iterdir())
    state = (exports["gaia.sources"] / "casuvo_export.json").read_text()
    proc = subprocess.run([str(_service_casuvo(settings)), *args], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert message in proc.stdout + proc.stderr
    assert sorted(p.name for p in (settings.data_dir / "hats").iterdir()) == before
    assert (exports["gaia.sources"] / "casuvo_export.json").read_text() == state

# SPDX-License-Identifier: BSD-3-Clause
"""The band-merged source tables vista.sources and vst.sources: loaded, published, searchable.

Compared with the merged FITS files that ``casuvo ingest sources`` loaded
(var/data/products/<survey>/merged/<survey>_sources.fits).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import psycopg
import pytest
import pyvo
import requests
from astropy.io.votable import parse
from astropy.table import Table

from casuvo.catalogue.mergedtable import column_names, merged_path
from casuvo.dachs.instance import dachs_env
from casuvo.storage import ledger
from casuvo.storage.ingest import IngestError, ingest_catalogue
from casuvo.storage.ingest.catalogue import copy_columns
from tests.truth import EDGE_DEG, separation_deg

pytestmark = pytest.mark.integration

SURVEYS = ("vista", "vst")
GENERATED = ("healpix12", "pos")


@pytest.fixture(scope="module", params=SURVEYS)
def survey(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def merged_file(settings, survey: str) -> Path:
    path = merged_path(settings.data_dir / "products", survey)
    assert path.is_file(), f"no {path}: `casuvo demo` runs `casuvo ingest sources {survey}`"
    return path


@pytest.fixture(scope="module")
def merged(merged_file: Path) -> Table:
    return Table.read(merged_file, hdu=1)


def _digest(settings, survey: str) -> tuple[int, str]:
    """(row count, order-independent digest of the table's content)."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return conn.execute(
            f"SELECT count(*), md5(string_agg(sourceid::text || ':' || ra::text || ':'"
            f" || mergedclass::text, ',' ORDER BY sourceid)) FROM {survey}.sources"
        ).fetchone()


def test_table_was_loaded_from_the_merged_file(settings, survey, merged_file, merged) -> None:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        loaded = ledger.recorded_set(conn, f"{survey}.sources")
    assert loaded == {str(merged_file.resolve()): ledger.checksum(merged_file)}
    assert len(merged) > 1000


def test_tap_row_count_equals_the_merged_file(endpoints, survey, merged) -> None:
    tap = pyvo.dal.TAPService(endpoints["tap"])
    n = tap.run_sync(f"SELECT COUNT(*) AS n FROM {survey}.sources")["n"][0]
    print(f"{survey}.sources: {int(n):,d} rows")
    assert int(n) == len(merged)


def test_copy_columns_equal_rd_and_merge_columns(settings, registry, survey) -> None:
    out = subprocess.run([sys.executable, "-m", "casuvo.dachs.rdschema", f"{survey}/q",
                          "sources"], env=dachs_env(settings), capture_output=True, text=True,
                         check=True)
    declared = [c["name"] for c in json.loads(out.stdout)]
    assert declared[-2:] == list(GENERATED)
    assert declared[:-2] == column_names(registry[survey])
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        copied = [c.name for c in copy_columns(conn, f"{survey}.sources")]
    assert copied == [n.lower() for n in declared[:-2]]


def test_generated_columns_and_nulls(settings, registry, survey, merged) -> None:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        bad = conn.execute(
            f"SELECT count(*) FROM {survey}.sources WHERE healpix12 <> sourceid / 34359738368"
            " OR abs(degrees(long(pos)) - ra) > 1e-9 OR abs(degrees(lat(pos)) - dec) > 1e-9"
        ).fetchone()[0]
        assert bad == 0
        for band in registry[survey].bands:
            p = band.prefix
            nulls = conn.execute(
                f"SELECT count(*) FILTER (WHERE {p}aperMag3 IS NULL),"
                f" count(*) FILTER (WHERE {p}class IS NULL),"
                f" count(*) FILTER (WHERE {p}pperrbits IS NULL) FROM {survey}.sources"
            ).fetchone()
            assert nulls[0] == int(np.isnan(np.asarray(merged[p + "AperMag3"])).sum())
            missing = int(np.ma.getmaskarray(merged[p + "Class"]).sum())
            assert nulls[1] == nulls[2] == missing


def test_tap_query_on_vsa_columns(endpoints, registry, survey, merged) -> None:
    """Bright stars with a colour, through the VSA-named columns, as the file says.

    The colour is the survey's first whose two bands the merged file has; where only
    one band passed QC (the demo's VST tiles mostly fail the seeing limit), the
    "colour" is that band's magnitude and its error.
    """
    measured = [p for p in (b.prefix for b in registry[survey].bands)
                if np.isfinite(np.asarray(merged[f"{p}AperMag3"])).any()]
    pairs = [(a, b) for a, b in registry[survey].colours if a in measured and b in measured]
    a, b = pairs[0] if pairs else (measured[0], measured[0])
    colour = f"{a}m{b}Pnt" if pairs else f"{b}AperMag3Err"
    query = (f"SELECT sourceID, ra, dec, {a}AperMag3, {a}AperMag3Err, {b}AperMag3, {colour},"
             f" mergedClass, {b}ppErrBits FROM {survey}.sources"
             f" WHERE mergedClass = -1 AND {a}AperMag3 < 17 AND {colour} IS NOT NULL")
    got = pyvo.dal.TAPService(endpoints["tap"]).run_sync(query, maxrec=1_000_000).to_table()
    mag = np.asarray(merged[f"{a}AperMag3"])
    want = (np.asarray(merged["mergedClass"]) == -1) & (mag < np.float32(17)) & np.isfinite(
        np.asarray(merged[colour]))
    # DaCHS answers with the RD's spelling of a column, whatever the query's
    assert sorted(np.asarray(got["sourceID"]).tolist()) == \
        sorted(np.asarray(merged["sourceID"])[want].tolist())
    assert len(got) > 10
    assert {f"{a}AperMag3Err", colour, "mergedClass", f"{b}ppErrBits"} <= set(got.colnames)


def test_scs_cone_matches_astropy(endpoints, registry, survey, merged) -> None:
    ra0, dec0 = np.median(np.asarray(merged["ra"])), np.median(np.asarray(merged["dec"]))
    r = 0.02
    sep = separation_deg(np.asarray(merged["ra"]), np.asarray(merged["dec"]), ra0, dec0)
    ids = np.asarray(merged["sourceID"])
    inside, allowed = set(ids[sep < r - EDGE_DEG].tolist()), set(ids[sep < r + EDGE_DEG]
                                                                    .tolist())
    assert len(inside) > 20
    scs = pyvo.dal.SCSService(endpoints["scs"][f"{survey}.sources"])
    table = scs.search(pos=(ra0, dec0), radius=r, verbosity=3).to_table()
    got = {int(s) for s in table["sourceID"]}
    assert inside <= got <= allowed
    assert {"mergedClass", registry[survey].bands[0].prefix + "AperMag3"} <= \
        set(table.colnames)


def _scs_error(response: requests.Response) -> str:
    assert "xml" in response.headers["content-type"]
    vot = parse(io.BytesIO(response.content), verify="ignore")
    infos = list(vot.infos) + [i for res in vot.resources for i in res.infos]
    params = [p for res in vot.resources for p in res.params]
    for item in infos + params:
        if item.name == "Error":
            return str(item.value)
    raise AssertionError(f"no SCS error in {response.text[:300]}")


@pytest.mark.parametrize(("params", "needle"), [
    ({"RA": "194.3", "DEC": "-64.75", "SR": "-1"}, "sr"),
    ({"RA": "400", "DEC": "-64.75", "SR": "0.01"}, "ra"),
])
def test_bad_cone_is_400_with_scs_error(endpoints, survey, params: dict, needle: str) -> None:
    response = requests.get(endpoints["scs"][f"{survey}.sources"], params=params, timeout=60)
    assert response.status_code == 400, response.text[:500]
    assert needle in _scs_error(response).lower()


def test_rerun_is_skipped(settings, casuvo_bin, survey) -> None:
    before = _digest(settings, survey)
    proc = subprocess.run([str(casuvo_bin), "ingest", "sources", survey, "--no-progress"],
                          capture_output=True, text=True, check=True)
    assert "up to date" in proc.stdout
    assert _digest(settings, survey) == before


def test_rows_lost_since_the_ingest_are_reloaded(settings, casuvo_bin, survey) -> None:
    """Same files but fewer rows than the ledger recorded: the rerun reloads, not skips."""
    before = _digest(settings, survey)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {survey}.sources WHERE sourceid = "
                     f"(SELECT min(sourceid) FROM {survey}.sources)")
    assert _digest(settings, survey)[0] == before[0] - 1
    proc = subprocess.run([str(casuvo_bin), "ingest", "sources", survey, "--no-progress"],
                          capture_output=True, text=True, check=True)
    assert "up to date" not in proc.stdout
    assert _digest(settings, survey) == before


def test_wrong_columns_fail_by_name_and_change_nothing(settings, casuvo_bin, survey, merged,
                                                       tmp_path) -> None:
    before = _digest(settings, survey)
    bad = tmp_path / f"{survey}_wrong_columns.fits"
    table = merged.copy()
    table.remove_column("mergedClass")
    table.write(bad)
    with pytest.raises(IngestError, match=bad.name):
        ingest_catalogue(settings.dsn, f"{survey}.sources", [bad], force=True,
                         progress=False)
    proc = subprocess.run([str(casuvo_bin), "ingest", "sources", survey, str(bad),
                           "--no-progress"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert bad.name in proc.stderr and "mergedclass" in proc.stderr.lower()
    assert "Traceback" not in proc.stderr
    assert _digest(settings, survey) == before


def test_corrupt_file_fails_by_name_and_changes_nothing(settings, casuvo_bin, survey,
                                                        merged_file, tmp_path) -> None:
    before = _digest(settings, survey)
    bad = tmp_path / f"{survey}_truncated.fits"
    data = merged_file.read_bytes()
    bad.write_bytes(data[: len(data) * 2 // 3])
    proc = subprocess.run([str(casuvo_bin), "ingest", "sources", survey, str(bad),
                           "--no-progress", "--force"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert bad.name in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _digest(settings, survey) == before

# SPDX-License-Identifier: BSD-3-Clause
"""TAP on gaia.sources with the clients astronomers use: pyvo (sync, async, upload), astroquery."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import psycopg
import pytest
import pyvo
import requests
from astropy.table import Table

from tests.truth import cone_truth, separation_deg

pytestmark = pytest.mark.integration

# A cone in the crowded VVV disc field and one on NGC 6791.
CONES = [(194.30, -64.75, 0.05), (290.2208, 37.7717, 0.08)]


def _cone_adql(ra: float, dec: float, r: float) -> str:
    return ("SELECT source_id, ra, dec FROM gaia.sources WHERE 1=CONTAINS("
            f"POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {r}))")


@pytest.fixture(scope="module")
def tap(endpoints: dict) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(endpoints["tap"])


def test_count_equals_simulator(tap: pyvo.dal.TAPService, gaia_catalogue: Table) -> None:
    result = tap.run_sync("SELECT COUNT(*) AS n FROM gaia.sources")
    assert int(result["n"][0]) == len(gaia_catalogue)


@pytest.mark.parametrize(("ra", "dec", "r"), CONES)
def test_sync_cone_matches_truth(tap: pyvo.dal.TAPService, gaia_catalogue: Table,
                                 ra: float, dec: float, r: float) -> None:
    truth = cone_truth(gaia_catalogue, ra, dec, r)
    assert len(truth.inside) > 100, "the test cone should hold many sources"
    result = tap.run_sync(_cone_adql(ra, dec, r), maxrec=100_000)
    got = set(np.asarray(result["source_id"]).tolist())
    truth.check(got)


def test_async_cone_matches_truth(tap: pyvo.dal.TAPService, gaia_catalogue: Table) -> None:
    ra, dec, r = CONES[0]
    truth = cone_truth(gaia_catalogue, ra, dec, r)
    job = tap.submit_job(_cone_adql(ra, dec, r), maxrec=100_000)
    try:
        job.run()
        job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=120)
        assert job.phase == "COMPLETED"
        got = set(np.asarray(job.fetch_result().to_table()["source_id"]).tolist())
    finally:
        job.delete()
    truth.check(got)


def test_cone_uses_the_pgsphere_index(tap: pyvo.dal.TAPService, settings) -> None:
    """The ADQL cone on POINT(ra, dec) is answered through the functional GiST index."""
    query = ("SELECT idx_scan FROM pg_stat_user_indexes WHERE schemaname = 'gaia'"
             " AND indexrelname = 'sources_spoint_sources'")
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        before = conn.execute(query).fetchone()[0]
        tap.run_sync(_cone_adql(194.31, -64.76, 0.01))
        for _ in range(50):  # statistics reach the view asynchronously
            conn.execute("SELECT pg_stat_clear_snapshot()")
            after = conn.execute(query).fetchone()[0]
            if after > before:
                break
    assert after > before, "TAP cone query did not use the spoint index"


def _status_infos(endpoints: dict, query: str, maxrec: int) -> tuple[list[str], list[str]]:
    """The QUERY_STATUS values of a sync answer's results RESOURCE: (before, after) its TABLE.

    Read from the XML itself, in document order: DALI puts the OVERFLOW INFO
    after the table it truncates, which parsed tables and pyvo do not show.
    """
    response = requests.post(endpoints["tap"] + "/sync", timeout=60, data={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, "MAXREC": str(maxrec)})
    assert response.status_code == 200, response.text[:500]
    resource = next(e for e in ET.fromstring(response.content).iter()
                    if e.tag.endswith("}RESOURCE") and e.get("type") == "results")
    children = list(resource)
    table = next(i for i, e in enumerate(children) if e.tag.endswith("}TABLE"))
    status = [(i, e.get("value")) for i, e in enumerate(children)
              if e.tag.endswith("}INFO") and e.get("name") == "QUERY_STATUS"]
    return [v for i, v in status if i < table], [v for i, v in status if i > table]


def test_maxrec_truncation_is_flagged_overflow(tap: pyvo.dal.TAPService, endpoints: dict,
                                               gaia_catalogue: Table) -> None:
    """MAXREC caps the rows and says so (OVERFLOW after the table); below the cap, no flag."""
    cap = 25
    everything = "SELECT source_id FROM gaia.sources"
    assert len(gaia_catalogue) > cap
    result = tap.run_sync(everything, maxrec=cap)
    assert len(result) == cap
    assert result.query_status == "OVERFLOW"
    assert _status_infos(endpoints, everything, cap) == (["OK"], ["OVERFLOW"])
    # A query with fewer rows than the cap: all of them, and no overflow.
    ra, dec, r = 194.30, -64.75, 0.008
    truth = cone_truth(gaia_catalogue, ra, dec, r)
    assert len(truth.inside) > 0
    assert len(truth.allowed) < cap
    small = _cone_adql(ra, dec, r)
    result = tap.run_sync(small, maxrec=cap)
    truth.check(set(np.asarray(result["source_id"]).tolist()))
    assert result.query_status == "OK"
    assert _status_infos(endpoints, small, cap) == (["OK"], [])


def test_upload_join_returns_right_matches(tap: pyvo.dal.TAPService,
                                           gaia_catalogue: Table) -> None:
    """Upload 300 positions offset by 0.3″ from known sources; each must match its source."""
    rng = np.random.default_rng(7)
    pick = rng.choice(len(gaia_catalogue), 300, replace=False)
    src = gaia_catalogue[pick]
    pa = rng.uniform(0, 2 * np.pi, len(src))
    offset = 0.3 / 3600
    upload = Table({
        "id": np.arange(len(src)),
        "ra": np.asarray(src["ra"]) + offset * np.sin(pa) / np.cos(np.radians(src["dec"])),
        "dec": np.asarray(src["dec"]) + offset * np.cos(pa),
    })
    result = tap.run_sync(
        "SELECT u.id, g.source_id FROM TAP_UPLOAD.mine AS u JOIN gaia.sources AS g"
        " ON 1=CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', u.ra, u.dec, 1./3600))",
        uploads={"mine": upload}, maxrec=100_000)
    pairs = set(zip(np.asarray(result["id"]).tolist(),
                    np.asarray(result["source_id"]).tolist(), strict=True))
    # Every uploaded position finds its own source...
    expected = set(zip(upload["id"].tolist(), np.asarray(src["source_id"]).tolist(),
                       strict=True))
    assert expected <= pairs
    # ...and every other pair reported is a real neighbour within 1″.
    cat_by_id = {int(s): i for i, s in enumerate(np.asarray(gaia_catalogue["source_id"]))}
    for uid, sid in pairs - expected:
        row = gaia_catalogue[cat_by_id[sid]]
        sep = separation_deg(np.array([row["ra"]]), np.array([row["dec"]]),
                             float(upload["ra"][uid]), float(upload["dec"][uid]))[0]
        assert sep * 3600 < 1.0 + 1e-3


def test_astroquery_tapplus(endpoints: dict, gaia_catalogue: Table) -> None:
    from astroquery.utils.tap.core import TapPlus

    ra, dec, r = CONES[1]
    truth = cone_truth(gaia_catalogue, ra, dec, r)
    tap = TapPlus(url=endpoints["tap"], verbose=False)
    job = tap.launch_job(_cone_adql(ra, dec, r).replace("SELECT", "SELECT TOP 100000"))
    got = set(np.asarray(job.get_results()["source_id"]).tolist())
    truth.check(got)


def test_tables_metadata_has_units_and_ucds(tap: pyvo.dal.TAPService) -> None:
    cols = {c.name: c for c in tap.tables["gaia.sources"].columns}
    assert cols["ra"].unit == "deg" and cols["ra"].ucd == "pos.eq.ra;meta.main"
    assert cols["parallax"].unit == "mas"
    assert cols["pmra"].unit == "mas/yr"
    assert cols["source_id"].ucd == "meta.id;meta.main"
    assert cols["phot_g_mean_mag"].unit == "mag"

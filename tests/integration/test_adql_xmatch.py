# SPDX-License-Identifier: BSD-3-Clause
"""ADQL cross-matches of an uploaded table (TAP_UPLOAD) with gaia.sources and vista.sources.

A user table of 10 000 positions (half near VVV sources, half anywhere in the
field) is uploaded with pyvo (async TAP) and joined with CONTAINS(POINT, CIRCLE) and
DISTANCE; the answer must equal astropy's ``search_around_sky`` on the same
catalogue rows read straight from the database.  The plan: the SQL that
DaCHS's ADQL translator makes of the query (:mod:`casuvo.dachs.adqlsql`) is
EXPLAINed against a temporary table holding the same 10 000 rows, as DaCHS
itself puts an upload into a temporary table, and must use the GiST index on
the catalogue's position.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import psycopg
import pytest
import pyvo
from astropy import units as u
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.table import Table

from casuvo.dachs.instance import dachs_env

pytestmark = pytest.mark.integration

N_UPLOAD = 10_000
RADIUS_ARCSEC = 1.0
#: pgSphere's comparison tolerance (1e-9 rad ≈ 0.2 mas): pairs this close to the
#: radius may fall either side.
EDGE_ARCSEC = 5e-4
#: (table, id column) of the catalogues joined.
CATALOGUES = {"gaia.sources": "source_id", "vista.sources": "sourceID"}
#: Fewest pairs each join must find: every one of the 5 000 positions placed near a
#: VVV source has it; Gaia holds about a quarter of the VVV sources.
MIN_PAIRS = {"gaia.sources": 500, "vista.sources": N_UPLOAD // 2}


def _query(table: str, ident: str) -> str:
    return (f"SELECT m.uid, c.{ident} AS cid,"
            " 3600*DISTANCE(POINT('ICRS', m.ra, m.dec), POINT('ICRS', c.ra, c.dec)) AS sep"
            f" FROM TAP_UPLOAD.mine AS m JOIN {table} AS c"
            " ON 1=CONTAINS(POINT('ICRS', c.ra, c.dec),"
            f" CIRCLE('ICRS', m.ra, m.dec, {RADIUS_ARCSEC}/3600.))")


@pytest.fixture(scope="module")
def upload(settings) -> Table:
    """10 000 positions: 5 000 within 0.7″ of VVV sources, 5 000 uniform in the field."""
    rng = np.random.default_rng(6)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        ra, dec = np.array(conn.execute(
            "SELECT ra, dec FROM vista.sources ORDER BY sourceid").fetchall()).T
    pick = rng.choice(ra.size, N_UPLOAD // 2, replace=False)
    near = SkyCoord(ra[pick] * u.deg, dec[pick] * u.deg).directional_offset_by(
        rng.uniform(0, 360, pick.size) * u.deg, rng.uniform(0, 0.7, pick.size) * u.arcsec)
    n_far = N_UPLOAD - pick.size
    lo_ra, hi_ra = np.percentile(ra, [1, 99])
    lo_dec, hi_dec = np.percentile(dec, [1, 99])
    return Table({"uid": np.arange(N_UPLOAD, dtype=np.int32),
                  "ra": np.r_[near.ra.deg, rng.uniform(lo_ra, hi_ra, n_far)],
                  "dec": np.r_[near.dec.deg, rng.uniform(lo_dec, hi_dec, n_far)]})


def _direct(settings, table: str, ident: str, upload: Table) -> dict[tuple[int, int], float]:
    """All pairs within the radius by astropy, on the catalogue rows read from the DB."""
    pad = 10 / 3600
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        rows = np.array(conn.execute(
            f"SELECT {ident}, ra, dec FROM {table} WHERE dec BETWEEN %s AND %s",
            (float(np.min(upload["dec"])) - pad, float(np.max(upload["dec"])) + pad)
        ).fetchall(), dtype=object)
    ids = rows[:, 0].astype(np.int64)
    cat = SkyCoord(rows[:, 1].astype(float) * u.deg, rows[:, 2].astype(float) * u.deg)
    mine = SkyCoord(np.asarray(upload["ra"]) * u.deg, np.asarray(upload["dec"]) * u.deg)
    i, j, sep, _ = search_around_sky(mine, cat, (RADIUS_ARCSEC + EDGE_ARCSEC) * u.arcsec)
    return {(int(upload["uid"][a]), int(ids[b])): float(s)
            for a, b, s in zip(i, j, sep.arcsec, strict=True)}


@pytest.mark.parametrize("table", CATALOGUES)
def test_upload_join_equals_direct_computation(settings, endpoints, upload, table) -> None:
    ident = CATALOGUES[table]
    tap = pyvo.dal.TAPService(endpoints["tap"])
    # Async, as TOPCAT does for large uploads: sync TAP takes at most 500 kB
    # ([web]maxSyncUploadSize), less than 10 000 rows of VOTable.
    t0 = time.perf_counter()
    result = tap.run_async(_query(table, ident), uploads={"mine": upload}, maxrec=1_000_000)
    seconds = time.perf_counter() - t0
    got = {(int(a), int(b)): float(s) for a, b, s in zip(
        result["uid"], result["cid"], result["sep"], strict=True)}
    truth = _direct(settings, table, ident, upload)
    inside = {p for p, s in truth.items() if s < RADIUS_ARCSEC - EDGE_ARCSEC}
    assert inside - set(got) == set(), "pairs within the radius missing from the TAP answer"
    assert set(got) - set(truth) == set(), "TAP answered pairs outside the radius"
    # pgSphere's distance is good to ~0.1 mas at arcsecond separations.
    worst = max(abs(got[p] - truth[p]) for p in got)
    assert worst < EDGE_ARCSEC
    matched = len({a for a, _ in got})
    print(f"{table}: {N_UPLOAD} uploaded positions, {len(got):,d} pairs within "
          f"{RADIUS_ARCSEC:g}″ ({matched:,d} positions matched), equal to astropy "
          f"(separations within {worst * 1000:.3f} mas); async job {seconds:.1f} s")
    assert len(got) > MIN_PAIRS[table]


@pytest.mark.parametrize("table", CATALOGUES)
def test_upload_join_plan_uses_the_gist_index(settings, upload, table) -> None:
    schema, name = table.split(".")
    sql = subprocess.run([sys.executable, "-m", "casuvo.dachs.adqlsql",
                          _query(table, CATALOGUES[table])], env=dachs_env(settings),
                         capture_output=True, text=True, check=True).stdout.strip()
    assert "<@" in sql and "scircle" in sql, sql
    with psycopg.connect(settings.dsn) as conn:
        gist = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s"
            " AND indexdef ILIKE '%%using gist%%'", (schema, name)).fetchall()}
        assert gist, f"{table} has no GiST index"
        conn.execute("CREATE TEMP TABLE mine (uid integer, ra double precision,"
                     " dec double precision)")
        with conn.cursor().copy("COPY mine (uid, ra, dec) FROM STDIN") as copy:
            for row in upload:
                copy.write_row((int(row["uid"]), float(row["ra"]), float(row["dec"])))
        conn.execute("ANALYZE mine")
        plans = {"owner": "\n".join(r[0] for r in conn.execute(f"EXPLAIN ANALYZE {sql}"))}
        # as the server's query role for a member of every team: the release policy
        # applies, and the join must still reach the index below it
        conn.execute("GRANT SELECT ON mine TO gavo")
        conn.execute("SET LOCAL ROLE gavo")
        conn.execute("SET LOCAL casuvo.groups = 'vvv,vphas,gaiaeso,weave,4most'")
        plans["query role"] = "\n".join(r[0] for r in conn.execute(f"EXPLAIN ANALYZE {sql}"))
        conn.rollback()
    for who, plan in plans.items():
        print(f"{table} as {who}:\n{plan}")
        used = [i for i in gist if i in plan]
        assert used, f"plan as {who} does not use {sorted(gist)}:\n{plan}"
        assert f"Seq Scan on {name}" not in plan
        assert "Join Filter: (spoint" not in plan, plan

# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: the position index of gaia.sources, pgSphere GiST against q3c btree.

Copies gaia.sources (``--copies`` times, each copy shifted by 1″ in RA so that
positions stay distinct) into ``bench.positions``, then, for each index design
in turn — the functional GiST on ``spoint(radians(ra), radians(dec))`` that
``//scs#pgs-pos-index`` declares, and the btree on ``q3c_ang2ipix(ra, dec)``
that ``//scs#q3cindex`` declares — times its build and the queries DaCHS
writes for the ADQL forms users send, in the SQL DaCHS 2.7's translator makes
of them under that design (``gavo/adql/morphpg.py``: with a q3c index on
a table's ra/dec it writes ``q3c_join`` and ``q3c_poly_query``, but not for
every join: ``FROM vista.sources JOIN gaia.sources ON CONTAINS(POINT(gaia),
CIRCLE(vista))`` stays pgSphere, while ``FROM gaia.sources JOIN vista.sources``
and joins with an upload become ``q3c_join``).  Each query runs ``--repeat``
times; medians.  The GiST design is the baseline of every ratio (ratio = GiST
time ÷ q3c time: below 1, q3c is slower).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psycopg

from casuvo.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import figure, write_json  # bench/report.py: standard library only

TABLE = "bench.positions"
UPLOAD = "bench.positions_upload"
INDEXES = {
    "GiST": f"CREATE INDEX positions_pos ON {TABLE} USING gist (spoint(radians(ra), radians(dec)))",
    "q3c": f"CREATE INDEX positions_pos ON {TABLE} (q3c_ang2ipix(ra, dec))",
}
_CONE = ("spoint(RADIANS(ra), RADIANS(dec)) <@ scircle(spoint(RADIANS({ra}), RADIANS({dec})),"
         " RADIANS({r}))")
_JOIN_PGS = ("SELECT u.uid, c.source_id FROM {first} JOIN {second} ON spoint(RADIANS(c.ra),"
             " RADIANS(c.dec)) <@ scircle(spoint(RADIANS(u.ra), RADIANS(u.dec)),"
             " RADIANS(1.0/3600))")
#: label -> (SQL DaCHS writes with the GiST design, SQL it writes with the q3c design).
QUERIES: dict[str, tuple[str, str]] = {
    "cone 36″ (CONTAINS or DISTANCE)": (
        f"SELECT source_id FROM {TABLE} WHERE " + _CONE.format(ra=194.3, dec=-64.75, r=0.01),
        f"SELECT source_id FROM {TABLE} WHERE q3c_join(194.3, -64.75, ra, dec, 0.01)"),
    "cone 10′": (
        f"SELECT source_id FROM {TABLE} WHERE " + _CONE.format(ra=194.3, dec=-64.75, r=1 / 6),
        f"SELECT source_id FROM {TABLE} WHERE q3c_join(194.3, -64.75, ra, dec, {1 / 6})"),
    "polygon 0.1°×0.2°": (
        f"SELECT source_id FROM {TABLE} WHERE spoint(RADIANS(ra), RADIANS(dec)) <@"
        " spoly '{(194.2d,-64.8d),(194.4d,-64.8d),(194.4d,-64.7d)}'",
        f"SELECT source_id FROM {TABLE} WHERE q3c_poly_query(ra, dec,"
        " ARRAY[194.2,-64.8,194.4,-64.8,194.4,-64.7])"),
    "join 10k positions, 1″ (upload or table first)": (
        _JOIN_PGS.format(first=f"{UPLOAD} AS u", second=f"{TABLE} AS c"),
        f"SELECT u.uid, c.source_id FROM {UPLOAD} AS u JOIN {TABLE} AS c"
        " ON q3c_join(u.ra, u.dec, c.ra, c.dec, 1.0/3600)"),
    "join 10 positions, 1″, left to pgSphere": (
        _JOIN_PGS.format(first=f"(SELECT * FROM {UPLOAD} WHERE uid <= 10) AS u",
                         second=f"{TABLE} AS c"),
        _JOIN_PGS.format(first=f"(SELECT * FROM {UPLOAD} WHERE uid <= 10) AS u",
                         second=f"{TABLE} AS c")),
}


def _median_ms(conn: psycopg.Connection, query: str, repeat: int) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        rows = len(conn.execute(query).fetchall())
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4, help="copies of gaia.sources")
    parser.add_argument("--repeat", type=int, default=7, help="runs of each query and build")
    parser.add_argument("--json", type=Path, metavar="PATH", help="figures for bench/report.py")
    args = parser.parse_args()
    settings = Settings.from_env()
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}, {UPLOAD}")
        conn.execute(f"CREATE TABLE {TABLE} AS SELECT source_id, ra, dec FROM gaia.sources"
                     " WITH NO DATA")
        for k in range(args.copies):
            conn.execute(f"INSERT INTO {TABLE} SELECT source_id + {k}, ra + {k} / 3600.0, dec"
                         " FROM gaia.sources ORDER BY source_id")
        # 10 000 positions near catalogue sources (0.2″ away), as an upload would hold.
        conn.execute(f"CREATE TABLE {UPLOAD} AS SELECT (row_number() OVER ())::integer AS uid,"
                     f" ra + 0.2 / 3600 AS ra, dec FROM (SELECT ra, dec FROM {TABLE}"
                     " ORDER BY md5(source_id::text) LIMIT 10000) AS s")
        conn.execute(f"VACUUM ANALYZE {TABLE}")
        conn.execute(f"VACUUM ANALYZE {UPLOAD}")
        nrows = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        conn.execute("SET maintenance_work_mem = '1GB'")
        builds: dict[str, list[float]] = {name: [] for name in INDEXES}
        for _ in range(max(1, args.repeat // 2)):
            for name, statement in INDEXES.items():
                conn.execute("DROP INDEX IF EXISTS bench.positions_pos")
                t = time.perf_counter()
                conn.execute(statement)
                builds[name].append(time.perf_counter() - t)
        timings: dict[str, dict[str, tuple[float, int]]] = {}
        for design, statement in INDEXES.items():
            conn.execute("DROP INDEX IF EXISTS bench.positions_pos")
            conn.execute(statement)
            conn.execute(f"ANALYZE {TABLE}")
            column = 0 if design == "GiST" else 1
            timings[design] = {label: _median_ms(conn, sql[column], args.repeat)
                               for label, sql in QUERIES.items()}
        conn.execute(f"DROP TABLE {TABLE}, {UPLOAD}")

    figures = []
    print(f"{nrows:,d} rows; medians of {args.repeat}; ratio = GiST time ÷ q3c time\n")
    print(f"{'':<48} {'GiST':>10} {'q3c':>10} {'ratio':>7} {'rows':>7}")
    gist_s, q3c_s = (statistics.median(builds[n]) for n in INDEXES)
    print(f"{'index build (s)':<48} {gist_s:10.2f} {q3c_s:10.2f} {gist_s / q3c_s:6.2f}×")
    figures.append(figure("position index build, q3c btree (s)", q3c_s, "s",
                          baseline="pgSphere GiST build, same rows", baseline_value=gist_s,
                          ratio=gist_s / q3c_s))
    for label in QUERIES:
        (g_ms, g_rows), (q_ms, q_rows) = timings["GiST"][label], timings["q3c"][label]
        # pgSphere and q3c may disagree on a pair at the radius (1e-9 rad tolerances).
        assert abs(g_rows - q_rows) <= max(1, g_rows // 1000), (label, g_rows, q_rows)
        print(f"{label + ' (ms)':<48} {g_ms:10.2f} {q_ms:10.2f} {g_ms / q_ms:6.2f}× {g_rows:7d}")
        figures.append(figure(f"{label} with the q3c index (ms)", q_ms, "ms",
                              baseline="same query with the GiST index", baseline_value=g_ms,
                              ratio=g_ms / q_ms))
    if args.json:
        write_json(args.json, "positions", figures, rows=nrows, repeat=args.repeat)


if __name__ == "__main__":
    main()

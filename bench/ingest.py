# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: casuvo's ingest path against raw psycopg binary COPY of the same rows.

Simulates a larger Gaia-like catalogue (``--scale``), then loads it
1. with ``casuvo.ingest_catalogue`` into a copy of ``gaia.sources`` (generated
   columns, four indexes rebuilt after the load, ledger, ANALYZE);
2. with psycopg's ``Copy.write_row`` in binary into a plain table with the same
   COPY columns and no indexes (the baseline the issue names);
3. with the same numpy-encoded stream as casuvo but into that plain table
   (COPY alone, isolating the cost of generated columns and indexes).
All in one run, on the same files; prints rows/s and ratios.
"""

from __future__ import annotations

import argparse
import logging
import time

import psycopg

from casuvo.config import Settings
from casuvo.simulate import simulate_demo
from casuvo.storage.ingest import ingest_catalogue
from casuvo.storage.ingest.catalogue import copy_columns
from casuvo.storage.ingest.fitstable import read_columns
from casuvo.storage.ingest.pgbinary import HEADER, TRAILER, iter_chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=4.0,
                        help="simulator scale (4 gives about 1.2 M rows)")
    args = parser.parse_args()
    # casuvo's ingest logs its phases (COPY per file, each index build).
    logging.basicConfig(level=logging.INFO, format="  %(message)s")
    settings = Settings.from_env()
    out = settings.var / "bench" / f"gaia_scale{args.scale:g}"
    t = time.perf_counter()
    files = [r.catalogue for r in simulate_demo(out, seed=settings.seed + 1, scale=args.scale)]
    print(f"simulated/reused {len(files)} files in {time.perf_counter() - t:.1f} s")

    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        conn.execute("DROP TABLE IF EXISTS bench.gaia_sources, bench.raw_sources")
        conn.execute("CREATE TABLE bench.gaia_sources (LIKE gaia.sources INCLUDING ALL)")
        columns = copy_columns(conn, "gaia.sources")
        conn.execute("CREATE TABLE bench.raw_sources AS SELECT "
                     + ", ".join(f'"{c.name}"' for c in columns)
                     + " FROM gaia.sources WITH NO DATA")
    names = [c.name for c in columns]
    arrays = [read_columns(f, names) for f in files]
    nrows = sum(len(a[names[0]]) for a in arrays)
    print(f"{nrows:,d} rows, {len(names)} COPY columns")

    # 1. casuvo
    res = ingest_catalogue(settings.dsn, "bench.gaia_sources", files, order_by="source_id",
                           force=True, progress=False)
    casuvo_rate = res.rows / res.seconds

    # 2. psycopg write_row, binary
    with psycopg.connect(settings.dsn) as conn:
        conn.execute("TRUNCATE bench.raw_sources")
        t = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                "COPY bench.raw_sources FROM STDIN (FORMAT binary)") as copy:
            copy.set_types([c.pg_type for c in columns])
            for a in arrays:
                cols = [a[n].tolist() for n in names]
                for row in zip(*cols, strict=True):
                    copy.write_row([None if isinstance(v, float) and v != v else v
                                    for v in row])
        conn.commit()
        write_row_s = time.perf_counter() - t

    # 3. casuvo's encoder into the plain table
    with psycopg.connect(settings.dsn) as conn:
        conn.execute("TRUNCATE bench.raw_sources")
        t = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                "COPY bench.raw_sources FROM STDIN (FORMAT binary)") as copy:
            copy.write(HEADER)
            for a in arrays:
                for chunk in iter_chunks(columns, a):
                    copy.write(chunk)
            copy.write(TRAILER)
        conn.commit()
        stream_s = time.perf_counter() - t

    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        n_bench = conn.execute("SELECT count(*) FROM bench.gaia_sources").fetchone()[0]
        n_raw = conn.execute("SELECT count(*) FROM bench.raw_sources").fetchone()[0]
        conn.execute("DROP TABLE bench.gaia_sources, bench.raw_sources")
        conn.execute("DELETE FROM ledger.ingests WHERE target = 'bench.gaia_sources'")
    assert n_bench == n_raw == nrows, (n_bench, n_raw, nrows)

    print()
    print(f"{'path':<58} {'s':>7} {'rows/s':>11} {'ratio':>7}")
    base = nrows / write_row_s
    for label, seconds in [
        ("psycopg write_row, binary, plain table (baseline)", write_row_s),
        ("casuvo numpy-encoded COPY, plain table", stream_s),
        ("casuvo ingest: COPY + generated cols + 4 indexes + ANALYZE", res.seconds),
    ]:
        rate = nrows / seconds
        print(f"{label:<58} {seconds:7.2f} {rate:11,.0f} {rate / base:7.2f}")
    print(f"\ncasuvo ingest / raw write_row COPY: {casuvo_rate / base:.2f}x rows/s")
    print(f"casuvo encoder / raw write_row COPY: {(nrows / stream_s) / base:.2f}x rows/s")


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: casuvo's full catalogue ingest against a raw binary COPY of the same rows.

Simulates a larger Gaia-like catalogue (``--scale``), then, ``--repeat`` times
and interleaved so that a busy moment of the (shared) machine hits every path
alike, loads the same rows

1. **raw binary COPY — the baseline every ratio refers to**: the rows are
   encoded into one in-memory buffer first (untimed); timed is only
   ``COPY … FROM STDIN (FORMAT binary)`` of that buffer, plus the commit, into a
   regular (logged, as ``gaia.sources`` is) table with the same COPY columns and
   types and no indexes, no generated columns;
2. psycopg ``Copy.write_row`` in binary into that table (the older baseline);
3. casuvo's numpy encoder streaming into that table (file read and encoding
   included, no generated columns, no indexes);
4. ``casuvo.ingest_catalogue`` into a copy of ``gaia.sources`` (generated
   columns, its indexes, ANALYZE, ledger, atomic swap) — the figure with the goal.

Prints one table (median seconds, rows/s, ratio to the baseline of the same
run, the goal, pass/miss), then the ingest's breakdown (COPY, ANALYZE, each
index build, swap; medians) against the same baseline; ``--json PATH`` writes
the figures for ``bench/report.py``.  ``--order-experiment`` also times the
GiST build on the loaded rows in HEALPix (source_id) order against the same
rows in random order.  ``--compare-q3c`` adds a fifth path, the same ingest into
a copy of ``gaia.sources`` whose pgSphere GiST is replaced by the q3c btree of
DaCHS's ``//scs#q3cindex`` (what that index design would give the ingest;
``bench/positions.py`` measures what it would cost the queries).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import psycopg

from casuvo.config import Settings
from casuvo.simulate import simulate_demo
from casuvo.storage.ingest import ingest_catalogue
from casuvo.storage.ingest.catalogue import copy_columns
from casuvo.storage.ingest.fitstable import read_columns, read_rows
from casuvo.storage.ingest.pgbinary import HEADER, TRAILER, CopyColumn, encode_rows, iter_chunks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import figure, write_json  # bench/report.py: standard library only

#: The issue's goal for the full ingest, as a fraction of the raw COPY's rows/s.
INGEST_GOAL = 0.6
BASELINE = "raw binary COPY of a pre-encoded buffer, logged table, no indexes"


def _copy_sql(table: str, columns: Sequence[CopyColumn]) -> str:
    return (f"COPY {table} ({', '.join(c.name for c in columns)})"
            " FROM STDIN (FORMAT binary)")


def _timed_copy(dsn: str, table: str, columns: Sequence[CopyColumn],
                feed: Callable[[psycopg.Copy], None]) -> float:
    """Seconds to COPY what ``feed`` writes into the emptied ``table`` and commit."""
    with psycopg.connect(dsn) as conn:
        conn.execute(f"TRUNCATE {table}")
        conn.commit()
        t = time.perf_counter()
        with conn.cursor() as cur, cur.copy(_copy_sql(table, columns)) as copy:
            feed(copy)
        conn.commit()
        return time.perf_counter() - t


def raw_copy(dsn: str, table: str, columns: Sequence[CopyColumn], buffer: bytes) -> float:
    """Seconds to COPY the pre-encoded ``buffer`` into the empty ``table`` and commit."""
    view = memoryview(buffer)

    def feed(copy: psycopg.Copy) -> None:
        for start in range(0, len(view), 1 << 20):
            copy.write(view[start:start + (1 << 20)])
    return _timed_copy(dsn, table, columns, feed)


def write_row_copy(dsn: str, table: str, columns: Sequence[CopyColumn],
                   arrays: Sequence[dict[str, np.ndarray]]) -> float:
    """Seconds for psycopg's per-row binary COPY of the same rows."""
    names = [c.name for c in columns]

    def feed(copy: psycopg.Copy) -> None:
        copy.set_types([c.pg_type for c in columns])
        for a in arrays:
            cols = [a[n].tolist() for n in names]
            for row in zip(*cols, strict=True):
                copy.write_row([None if isinstance(v, float) and v != v else v for v in row])
    return _timed_copy(dsn, table, columns, feed)


def stream_copy(dsn: str, table: str, columns: Sequence[CopyColumn],
                files: Sequence[Path]) -> float:
    """Seconds for casuvo's reader and encoder streaming into the plain table."""
    names = [c.name for c in columns]

    def feed(copy: psycopg.Copy) -> None:
        copy.write(HEADER)
        for path in files:
            for chunk in iter_chunks(columns, read_rows(path, names, "source_id")):
                copy.write(chunk)
        copy.write(TRAILER)
    return _timed_copy(dsn, table, columns, feed)


def order_experiment(dsn: str, full: str, repeat: int) -> dict[str, float]:
    """Median seconds of the GiST build of ``full``'s position index on copies of its
    rows: as the ingest left them, in HEALPix (source_id) order, in random order.

    The builds alternate between the copies, ``repeat`` rounds, so that a busy
    moment of the machine does not land on one order only.
    """
    orders = {"as loaded": "", "HEALPix order": " ORDER BY source_id",
              "random order": " ORDER BY random()"}
    with psycopg.connect(dsn, autocommit=True) as conn:
        gist = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s"
            " AND indexdef LIKE '%%USING gist%%'", tuple(full.split("."))).fetchone()[0]
        conn.execute("SET maintenance_work_mem = '1GB'")
        for i, order in enumerate(orders.values()):
            conn.execute(f"DROP TABLE IF EXISTS bench.order_{i}")
            conn.execute(f"CREATE TABLE bench.order_{i} AS SELECT * FROM {full}{order}")
            conn.execute(f"VACUUM ANALYZE bench.order_{i}")
        times: dict[str, list[float]] = {label: [] for label in orders}
        for _ in range(repeat):
            for i, label in enumerate(orders):
                conn.execute("DROP INDEX IF EXISTS bench.order_gist")
                statement = (f"CREATE INDEX order_gist ON bench.order_{i} "
                             + gist.split(f" ON {full} ", 1)[1])
                t = time.perf_counter()
                conn.execute(statement)
                times[label].append(time.perf_counter() - t)
        conn.execute("DROP INDEX IF EXISTS bench.order_gist")
        for i in range(len(orders)):
            conn.execute(f"DROP TABLE bench.order_{i}")
    return {label: statistics.median(secs) for label, secs in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=4.0,
                        help="simulator scale (4 gives about 1 M rows)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path (medians)")
    parser.add_argument("--no-write-row", action="store_true",
                        help="leave out the slow per-row COPY")
    parser.add_argument("--order-experiment", action="store_true",
                        help="also time the GiST build on rows in HEALPix vs random order")
    parser.add_argument("--compare-q3c", action="store_true",
                        help="also ingest into a copy with a q3c btree instead of the GiST")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="write the figures for bench/report.py")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="  %(message)s")
    settings = Settings.from_env()
    out = settings.var / "bench" / f"gaia_scale{args.scale:g}"
    t = time.perf_counter()
    files = [r.catalogue for r in simulate_demo(out, seed=settings.seed + 1, scale=args.scale)]
    print(f"simulated/reused {len(files)} files in {time.perf_counter() - t:.1f} s")

    plain, full, q3c = "bench.raw_sources", "bench.gaia_sources", "bench.gaia_sources_q3c"
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        conn.execute(f"DROP TABLE IF EXISTS {full}, {plain}, {q3c}")
        # INCLUDING ALL: generated columns and every index gaia.sources has.
        conn.execute(f"CREATE TABLE {full} (LIKE gaia.sources INCLUDING ALL)")
        if args.compare_q3c:
            conn.execute(f"CREATE TABLE {q3c} (LIKE gaia.sources INCLUDING ALL)")
            for (name,) in conn.execute(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = 'bench'"
                    " AND tablename = 'gaia_sources_q3c' AND indexdef LIKE '%%USING gist%%'"
                    ).fetchall():
                conn.execute(f"DROP INDEX bench.{name}")
            conn.execute(f"CREATE INDEX gaia_sources_q3c_pos ON {q3c} (q3c_ang2ipix(ra, dec))")
        columns = copy_columns(conn, "gaia.sources")
        conn.execute(f"CREATE TABLE {plain} AS SELECT "
                     + ", ".join(c.name for c in columns)
                     + " FROM gaia.sources WITH NO DATA")
        indexes = [r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'bench'"
            " AND tablename = 'gaia_sources' ORDER BY indexname")]
    names = [c.name for c in columns]
    arrays = []
    for path in files:  # as the ingest loads them: each file in source_id order
        a = read_columns(path, names)
        order = np.argsort(a["source_id"], kind="stable")
        arrays.append({k: v[order] for k, v in a.items()})
    nrows = sum(len(a[names[0]]) for a in arrays)
    buffer = HEADER + b"".join(encode_rows(columns, a) for a in arrays) + TRAILER
    print(f"{nrows:,d} rows, {len(names)} COPY columns, {len(buffer) / nrows:.0f} bytes/row "
          f"binary; indexes of the ingest target:")
    for definition in indexes:
        print(f"  {definition}")

    ingests = []
    q3c_ingests = []

    def ingest() -> float:
        result = ingest_catalogue(settings.dsn, full, files, order_by="source_id",
                                  force=True, progress=False)
        ingests.append(result)
        return result.seconds

    def ingest_q3c() -> float:
        result = ingest_catalogue(settings.dsn, q3c, files, order_by="source_id",
                                  force=True, progress=False)
        q3c_ingests.append(result)
        return result.seconds

    full_label = "casuvo ingest: COPY, generated cols, indexes, ANALYZE"
    paths: dict[str, Callable[[], float]] = {
        BASELINE: lambda: raw_copy(settings.dsn, plain, columns, buffer),
        "psycopg write_row binary COPY, same table":
            lambda: write_row_copy(settings.dsn, plain, columns, arrays),
        "casuvo read + numpy-encoded COPY, same table":
            lambda: stream_copy(settings.dsn, plain, columns, files),
        full_label: ingest,
    }
    q3c_label = "the same ingest, q3c btree instead of the GiST"
    if args.compare_q3c:
        paths[q3c_label] = ingest_q3c
    if args.no_write_row:
        del paths["psycopg write_row binary COPY, same table"]
    runs: dict[str, list[float]] = {label: [] for label in paths}
    for i in range(args.repeat):
        for label, run in paths.items():
            runs[label].append(run())
        print(f"run {i + 1}/{args.repeat}: "
              + ", ".join(f"{s[-1]:.2f}" for s in runs.values()) + " s", flush=True)

    order_times = (order_experiment(settings.dsn, full, args.repeat)
                   if args.order_experiment else {})

    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        n_full = conn.execute(f"SELECT count(*) FROM {full}").fetchone()[0]
        n_plain = conn.execute(f"SELECT count(*) FROM {plain}").fetchone()[0]
        if args.compare_q3c:
            assert conn.execute(f"SELECT count(*) FROM {q3c}").fetchone()[0] == nrows
        conn.execute(f"DROP TABLE IF EXISTS {full}, {plain}, {q3c}")
        for target in (full, q3c):
            conn.execute("DELETE FROM ledger.ingests WHERE target = %s", (target,))
            conn.execute("DELETE FROM ledger.builds WHERE target = %s", (target,))
    assert n_full == n_plain == nrows, (n_full, n_plain, nrows)

    base_s = statistics.median(runs[BASELINE])
    base_rate = nrows / base_s
    figures = []
    print(f"\n{nrows:,d} rows, medians of {args.repeat} runs; ratio = rows/s ÷ rows/s of "
          f"the baseline (first line) in the same run\n")
    print(f"{'path':<62} {'s':>7} {'rows/s':>11} {'ratio':>6} {'goal':>7} {'':>4}")
    for label, seconds in runs.items():
        median = statistics.median(seconds)
        ratio = base_s / median
        goal = INGEST_GOAL if label in (full_label, q3c_label) else None
        met = None if goal is None else ratio >= goal
        verdict = "" if met is None else ("pass" if met else "miss")
        goal_text = "—" if goal is None else f"≥{goal:.1f}×"
        print(f"{label:<62} {median:7.2f} {nrows / median:11,.0f} {ratio:5.2f}× "
              f"{goal_text:>7} {verdict:>4}")
        if label != BASELINE:
            figures.append(figure(
                f"{label} (rows/s)", nrows / median, "rows/s", baseline=BASELINE,
                baseline_value=base_rate, ratio=ratio,
                goal=None if goal is None else f"≥ {goal:g}× the baseline's rows/s", met=met))

    # Where the full ingest's time goes: each phase against the raw COPY's time.
    phases: dict[str, list[float]] = {}
    for prefix, results in (("", ingests), ("q3c design: ", q3c_ingests)):
        for result in results:
            for name, secs in result.phases.items():
                phases.setdefault(f"{prefix}{name}", []).append(secs)
            for name, secs in result.index_seconds.items():
                phases.setdefault(f"  {prefix}index {name} (overlaps)", []).append(secs)
    print(f"\nbreakdown of the ingest (median s; ÷ raw COPY {base_s:.2f} s):")
    for name, secs in phases.items():
        median = statistics.median(secs)
        print(f"  {name:<58} {median:7.2f} {median / base_s:5.2f}×")
        figures.append(figure(
            f"ingest phase: {name.strip()} (s; ratio = time ÷ baseline time)", median, "s",
            baseline=BASELINE, baseline_value=base_s, ratio=median / base_s))
    if order_times:
        print("\nGiST build of the position index on the ingested rows:")
        for label, secs in order_times.items():
            print(f"  {label:<58} {secs:7.2f}")
        figures.append(figure(
            "GiST build on rows in HEALPix order (s; ratio = random-order time ÷ this)",
            order_times["HEALPix order"], "s", baseline="GiST build, same rows in random order",
            baseline_value=order_times["random order"],
            ratio=order_times["random order"] / order_times["HEALPix order"]))
        figures.append(figure(
            "GiST build on rows as the ingest loads them (s; ratio = random-order time ÷ this)",
            order_times["as loaded"], "s", baseline="GiST build, same rows in random order",
            baseline_value=order_times["random order"],
            ratio=order_times["random order"] / order_times["as loaded"]))
    if args.json:
        write_json(args.json, "ingest", figures, rows=nrows, scale=args.scale,
                   repeat=args.repeat, copy_columns=len(names), target_indexes=indexes,
                   runs=runs, note=f"{nrows:,d} rows, medians of {args.repeat} runs")


if __name__ == "__main__":
    main()

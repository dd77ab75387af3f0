# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo xmatch vista|vst``: the survey's Gaia neighbour table, computed and loaded.

The inputs are exactly the files the ledger says are in ``<survey>.sources``
and ``gaia.sources`` (refused if a file changed since it was ingested, since
the table would then pair rows that are not in the database).  The match runs
in the compute environment (:mod:`casuvo.catalogue.neighbourtable`, on Dask); its file
``var/data/xmatch/<survey>_x_gaia/neighbours.fits`` is COPYed into
``<survey>.sources_x_gaia`` in one transaction (ledgered; skipped when the
file is unchanged), and its row in ``<survey>.required_neighbours`` is
rewritten.  A rerun with unchanged inputs and radius does nothing.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from casuvo.config import Settings

SURVEYS = ("vista", "vst")
#: Kept equal to casuvo.catalogue.neighbourtable.DEFAULT_RADIUS_ARCSEC (compute-side).
DEFAULT_RADIUS_ARCSEC = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("survey", choices=SURVEYS)
    parser.add_argument("--radius", type=float, default=DEFAULT_RADIUS_ARCSEC,
                        help=f"match radius in arcsec (default {DEFAULT_RADIUS_ARCSEC:g}, "
                             "the VSA's for Gaia)")
    parser.add_argument("--scheduler", help="Dask scheduler address (default: local cluster)")
    parser.add_argument("--workers", type=int, help="workers of the local cluster")
    parser.add_argument("--force", action="store_true",
                        help="match and reload even if nothing changed")
    parser.add_argument("--no-progress", action="store_true")


def neighbour_dir(settings: Settings, survey: str) -> Path:
    """Where the engine's work and the neighbour-table file of a survey live."""
    return settings.data_dir / "xmatch" / f"{survey}_x_gaia"


def _inputs(settings: Settings, survey: str) -> tuple[Path, list[Path]] | str:
    """(merged sources file, Gaia files) as ingested, or why there are none."""
    import psycopg

    from casuvo.storage import ledger

    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        ledger.ensure_schema(conn)
        sources = ledger.recorded_set(conn, f"{survey}.sources")
        gaia = ledger.recorded_set(conn, "gaia.sources")
    if not sources:
        return f"{survey}.sources has not been loaded; run `casuvo ingest sources {survey}`"
    if not gaia:
        return "gaia.sources has not been loaded; run `casuvo ingest gaia`"
    for path, digest in {**sources, **gaia}.items():
        if not Path(path).is_file():
            return f"{path} (ingested) no longer exists; ingest again"
        if ledger.checksum(Path(path)) != digest:
            return f"{path} changed since it was ingested; ingest it again first"
    return Path(next(iter(sources))), sorted(Path(p) for p in gaia)


def _ensure_tables(settings: Settings, survey: str) -> bool:
    """Create the neighbour tables from the RD if missing or without their indexes.

    True if they were (re)created, empty: the load must then not be skipped.
    ``casuvo up`` imports an RD's tables only the first time it sees the RD,
    and an import that stopped half-way can leave a table without indexes.
    """
    import psycopg

    from casuvo.dachs.instance import dachs

    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        have = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND"
            " tablename IN ('sources_x_gaia', 'required_neighbours')", (survey,)).fetchone()[0]
    if have >= 3:   # masterObjID, slaveObjID and the catalogue's primary key
        return False
    dachs(settings, "imp", f"{survey}/q", "create_neighbours")
    return True


def _recorded(settings: Settings, survey: str) -> bool:
    import psycopg

    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return conn.execute(f"SELECT 1 FROM {survey}.required_neighbours WHERE"
                            " neighbourtable = %s", (f"{survey}.sources_x_gaia",)
                            ).fetchone() is not None


def _record(settings: Settings, survey: str, radius: float, state: dict) -> None:
    import psycopg

    table = f"{survey}.sources_x_gaia"
    with psycopg.connect(settings.dsn) as conn:
        conn.execute(f"DELETE FROM {survey}.required_neighbours WHERE neighbourtable = %s",
                     (table,))
        conn.execute(
            f"INSERT INTO {survey}.required_neighbours (neighbourtable, mastertable, slavetable,"
            " joincriterion, radius, epochrule, npairs, nmasters, built)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now() AT TIME ZONE 'UTC')",
            (table, f"{survey}.sources", "gaia.sources", radius / 3600.0, radius,
             "Gaia positions moved with their proper motions from ref_epoch to the mean "
             "epoch of the master source's band detections", state["n_pairs"],
             state["n_masters"]))


def run(args: argparse.Namespace, settings: Settings) -> int:
    from casuvo.cli.pipeline import compute
    from casuvo.storage.ingest import ingest_catalogue

    if not (math.isfinite(args.radius) and args.radius > 0):
        print(f"casuvo xmatch: --radius must be a positive number of arcsec, not "
              f"{args.radius:g}; nothing changed")
        return 2
    found = _inputs(settings, args.survey)
    if isinstance(found, str):
        print(f"casuvo xmatch: {found}; nothing changed")
        return 1
    sources, gaia = found
    out = neighbour_dir(settings, args.survey)
    extra = [f"--{k}={v}" for k in ("scheduler", "workers")
             if (v := getattr(args, k)) is not None]
    extra += [f for f, on in (("--force", args.force), ("--no-progress", args.no_progress))
              if on]
    status = compute(settings, "casuvo.catalogue.neighbourtable", args.survey,
                     "--sources", str(sources),
                     "--radius", repr(args.radius), "--out", str(out), *extra,
                     "--gaia", *map(str, gaia))
    if status:
        print(f"casuvo xmatch: the {args.survey} × Gaia match failed (exit status {status}); "
              f"{args.survey}.sources_x_gaia is unchanged")
        return status
    state = json.loads((out / "state.json").read_text())
    created = _ensure_tables(settings, args.survey)
    table = f"{args.survey}.sources_x_gaia"
    result = ingest_catalogue(settings.dsn, table, [out / "neighbours.fits"],
                              force=args.force or created, progress=not args.no_progress)
    if result.skipped and _recorded(settings, args.survey):
        print(f"{table}: up to date ({result.rows:,d} pairs within {args.radius:g}″)")
        return 0
    _record(settings, args.survey, args.radius, state)
    print(f"{table}: {result.rows:,d} pairs within {args.radius:g}″ of "
          f"{state['n_masters']:,d} of {state['n_survey']:,d} sources "
          f"({state['n_best']:,d} best, {state['n_one_to_one']:,d} one-to-one); match "
          f"{state['engine_seconds']:.1f} s, load {result.seconds:.1f} s")
    return 0

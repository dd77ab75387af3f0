# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo xmatch SURVEY``: the survey's Gaia neighbour table, computed and loaded.

SURVEY is a survey of the registry with band-merged sources (:func:`surveys`).

The inputs are exactly the files the ledger says are in ``<survey>.sources``
and ``gaia.sources`` (refused if a file changed since it was ingested, since
the table would then pair rows that are not in the database).  The match runs
in the compute environment (:mod:`casuvo.catalogue.neighbourtable`, on Dask, as a
:class:`casuvo.jobs.NeighbourTableJob`) unless the ledger says its file is up to
date with those inputs and the radius (:mod:`casuvo.storage.uptodate`); the file
``var/data/xmatch/<survey>_x_gaia/neighbours.fits`` is COPYed into
``<survey>.sources_x_gaia`` in one transaction (ledgered; skipped when the
file is unchanged), and its row in ``<survey>.required_neighbours`` is
rewritten.  A rerun with unchanged inputs and radius does nothing.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from casuvo.cli.ingest import not_a_source_survey, source_surveys
from casuvo.config import Settings
from casuvo.surveys.registry import load_registry

#: Kept equal to casuvo.catalogue.neighbourtable.DEFAULT_RADIUS_ARCSEC (compute-side).
DEFAULT_RADIUS_ARCSEC = 2.0
#: Kept equal to casuvo.catalogue.neighbourtable.ENGINES (compute-side).
ENGINES = ("memory", "hats")


@dataclass(frozen=True)
class XmatchOptions:
    """How to make a neighbour table (``casuvo xmatch``'s options)."""

    radius_arcsec: float = DEFAULT_RADIUS_ARCSEC
    scheduler: str | None = None
    workers: int | None = None
    force: bool = False
    """Match and reload even if nothing changed."""
    progress: bool = True
    engine: str = "memory"
    """``hats``: HATS partitions matched on the workers and COPYed one file each."""


def surveys(settings: Settings) -> tuple[str, ...]:
    """Surveys with a neighbour table: those with band-merged sources, in registry order."""
    return source_surveys(settings)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("survey", help="a survey of the registry with band-merged sources")
    parser.add_argument("--radius", type=float, default=DEFAULT_RADIUS_ARCSEC,
                        help=f"match radius in arcsec (default {DEFAULT_RADIUS_ARCSEC:g}, "
                             "the VSA's for Gaia)")
    parser.add_argument("--scheduler", help="Dask scheduler address (default: local cluster)")
    parser.add_argument("--workers", type=int, help="workers of the local cluster")
    parser.add_argument("--engine", choices=ENGINES, default="memory",
                        help="memory: one file made on the driver (default, small surveys); "
                             "hats: the inputs as HATS catalogues, matched partition by "
                             "partition on the workers and COPYed one Parquet file each")
    parser.add_argument("--force", action="store_true",
                        help="match and reload even if nothing changed")
    parser.add_argument("--no-progress", action="store_true")


def neighbour_dir(settings: Settings, survey: str) -> Path:
    """Where the engine's work and the neighbour-table file of a survey live."""
    return settings.data_dir / "xmatch" / f"{survey}_x_gaia"


#: What to run when an input table has not been loaded.
_LOAD_HINT = {"gaia.sources": "casuvo ingest gaia"}


def _ensure_tables(settings: Settings, schema: str) -> bool:
    """Create the neighbour tables from the RD if missing or without their indexes.

    True if they were (re)created, empty: the load must then not be skipped.
    ``casuvo up`` imports an RD's tables only the first time it sees the RD,
    and an import that stopped half-way can leave a table without indexes.
    """
    from casuvo.dachs.instance import dachs
    from casuvo.storage.neighbours import tables_complete

    if tables_complete(settings.dsn, schema):
        return False
    dachs(settings, "imp", f"{schema}/q", "create_neighbours")
    return True


def build_neighbour_table(settings: Settings, survey: str,
                          options: XmatchOptions) -> int:
    """Make (if needed) and load ``<survey>.sources_x_gaia``; print what it holds."""
    from casuvo.jobs import JobFailedError, NeighbourTableJob, run_in_compute
    from casuvo.storage import uptodate
    from casuvo.storage.ingest import ingest_catalogue
    from casuvo.storage.neighbours import NeighbourTableEntry, is_registered, register

    radius = options.radius_arcsec
    if not (math.isfinite(radius) and radius > 0):
        print(f"casuvo xmatch: --radius must be a positive number of arcsec, not "
              f"{radius:g}; nothing changed")
        return 2
    if problem := not_a_source_survey(settings, survey):
        print(f"casuvo xmatch: {problem}; nothing changed")
        return 2
    schema = load_registry(settings)[survey].collection
    inputs = {}
    for loaded in (f"{schema}.sources", "gaia.sources"):
        try:
            inputs[loaded] = uptodate.ingested_files(settings.dsn, loaded)
        except uptodate.StaleInputError as exc:
            hint = _LOAD_HINT.get(loaded, f"casuvo ingest sources {survey}")
            print(f"casuvo xmatch: {exc} (`{hint}`); nothing changed")
            return 1
    sources, gaia = inputs[f"{schema}.sources"], inputs["gaia.sources"]
    out = neighbour_dir(settings, survey)
    table = f"{schema}.sources_x_gaia"
    job = NeighbourTableJob(survey, Path(next(iter(sources))),
                            tuple(sorted(Path(p) for p in gaia)), radius, out,
                            workers=options.workers, scheduler=options.scheduler,
                            progress=options.progress, engine=options.engine)
    params = {"survey": survey, "radius_arcsec": radius}
    made = [out / "neighbours.fits", out / "state.json"]
    if options.engine != "memory":
        params["engine"] = options.engine
        made = [out / "hats" / "summary.json", out / "hats_state.json"]
    fp = uptodate.fingerprint(f"neighbours:{schema}", {**sources, **gaia}, params)
    try:
        outcome = uptodate.ensure_current(
            settings.dsn, fp, made,
            lambda: run_in_compute(settings, job).raise_for_status().summary,
            force=options.force)
    except JobFailedError as exc:
        print(f"casuvo xmatch: the {survey} × Gaia match failed: {exc}; {table} is unchanged")
        return exc.result.exit_status
    state = outcome.result
    created = _ensure_tables(settings, schema)
    files = ([Path(p) for p in state["files"]] if options.engine == "hats"
             else [out / "neighbours.fits"])
    result = ingest_catalogue(settings.dsn, table, files,
                              force=options.force or created, progress=options.progress)
    if result.skipped and is_registered(settings.dsn, schema, table):
        print(f"{table}: up to date ({result.rows:,d} pairs within {radius:g}″)")
        return 0
    register(settings.dsn, schema, NeighbourTableEntry(
        table, f"{schema}.sources", "gaia.sources", radius, state["n_pairs"],
        state["n_masters"]))
    print(f"{table}: {result.rows:,d} pairs within {radius:g}″ of "
          f"{state['n_masters']:,d} of {state['n_survey']:,d} sources "
          f"({state['n_best']:,d} best, {state['n_one_to_one']:,d} one-to-one); match "
          f"{state['engine_seconds']:.1f} s, load {result.seconds:.1f} s")
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    return build_neighbour_table(settings, args.survey, XmatchOptions(
        radius_arcsec=args.radius, scheduler=args.scheduler, workers=args.workers,
        force=args.force, progress=not args.no_progress, engine=args.engine))

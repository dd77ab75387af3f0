# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo ingest gaia [FILE ...]`` and ``casuvo ingest sources SURVEY [FILE]``.

``gaia`` bulk-loads the reference catalogue files into ``gaia.sources``.
``sources`` loads a survey's band-merged source catalogue into
``<survey>.sources`` (the surveys of the registry with ``sources = true``,
:func:`source_surveys`); unless a file is given, it first (re)makes the merged
file with :mod:`casuvo.catalogue.bandmerge` in the compute environment (a
:class:`casuvo.jobs.BandMergeJob`, design decision 12) unless the ledger says
the file is up to date with the survey's tile catalogues
(:mod:`casuvo.storage.uptodate`: their SHA-256, not their file times).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from casuvo.config import Settings
from casuvo.surveys.registry import load_registry


@dataclass(frozen=True)
class Collection:
    """Where a collection's catalogue files are and which table they fill."""

    table: str
    pattern: str
    order_by: str


COLLECTIONS = {
    "gaia": Collection("gaia.sources", "gaia/gaia_*.fits", "source_id"),
}


@dataclass(frozen=True)
class IngestOptions:
    """How to ingest (the options every ``casuvo ingest`` collection takes)."""

    force: bool = False
    """Reload even if the ledger says the files are loaded."""
    progress: bool = True


def source_surveys(settings: Settings) -> tuple[str, ...]:
    """Surveys with a band-merged source table ``<survey>.sources``, in registry order."""
    return tuple(s.key for s in load_registry(settings).with_sources())


def not_a_source_survey(settings: Settings, survey: str) -> str | None:
    """Why ``survey`` cannot be used where band-merged sources are needed, or None.

    The usage error of ``casuvo ingest sources`` and ``casuvo xmatch``.
    """
    known = source_surveys(settings)
    if survey in known:
        return None
    return f"no band-merged sources for survey {survey!r}; choose from {', '.join(known)}"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="reload even if the ledger says the files are loaded")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="collection", required=True, metavar="COLLECTION")
    gaia = sub.add_parser("gaia", help="the Gaia DR3-like reference catalogue")
    gaia.add_argument("files", nargs="*", type=Path,
                      help="catalogue files (default: the collection's files under var/data)")
    _common(gaia)
    sources = sub.add_parser("sources", help="a survey's band-merged source catalogue")
    sources.add_argument("survey", help="a survey of the registry with band-merged sources")
    sources.add_argument("file", nargs="?", type=Path,
                         help="merged catalogue (default: var/data/products/SURVEY/merged/"
                              "SURVEY_sources.fits, merged first if out of date)")
    sources.add_argument("--remerge", action="store_true",
                         help="merge the tile catalogues again even if the merged file is "
                              "up to date")
    _common(sources)


def _report(table: str, result) -> None:
    if result.skipped:
        print(f"{table}: up to date ({result.rows:,d} rows from {result.files} files)")
    else:
        print(f"{table}: {result.rows:,d} rows from {result.files} files in "
              f"{result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s)")


def ingest_collection(settings: Settings, name: str, files: Sequence[Path],
                      options: IngestOptions) -> int:
    """Load a reference collection (``gaia``) from ``files`` (default: its files in var/data)."""
    from casuvo.storage.ingest import ingest_catalogue

    coll = COLLECTIONS[name]
    files = list(files) or sorted(settings.data_dir.glob(coll.pattern))
    if not files:
        print(f"casuvo ingest: no files match {settings.data_dir / coll.pattern}; "
              "run `casuvo simulate` first")
        return 1
    result = ingest_catalogue(settings.dsn, coll.table, files, order_by=coll.order_by,
                              force=options.force, progress=options.progress)
    _report(coll.table, result)
    return 0


def merge_sources(settings: Settings, survey: str, *, force: bool = False) -> int:
    """(Re)make a survey's merged source file unless the ledger says it is up to date.

    Returns an exit status; the merged file is replaced whole or not at all.
    """
    from casuvo.catalogue.framesets import tile_catalogues
    from casuvo.catalogue.mergedtable import merged_path
    from casuvo.jobs import BandMergeJob, JobFailedError, run_in_compute
    from casuvo.storage import uptodate

    products = settings.data_dir / "products"
    path = merged_path(products, survey)
    tiles = tile_catalogues(products, survey)
    if not tiles:
        if path.exists():  # products gone, merged file kept: load what there is
            return 0
        print(f"casuvo ingest: no tile catalogues under {products / survey}; "
              f"run `casuvo pipeline run {survey}` first")
        return 1
    job = BandMergeJob(survey, products, path)
    fp = uptodate.fingerprint(f"bandmerge:{survey}", tiles, {"survey": survey})
    try:
        outcome = uptodate.ensure_current(
            settings.dsn, fp, [path],
            lambda: run_in_compute(settings, job).raise_for_status().summary, force=force)
    except JobFailedError as exc:
        print(f"casuvo ingest: merging the {survey} tile catalogues failed: {exc}")
        return exc.result.exit_status
    if not outcome.skipped:
        made = outcome.result
        print(f"{survey}: {made['sources']:,d} sources from {made['tiles']} tiles -> "
              f"{made['out']} ({outcome.build.seconds:.1f} s)")
    return 0


def ingest_sources(settings: Settings, survey: str, file: Path | None = None, *,
                   remerge: bool = False, options: IngestOptions) -> int:
    """Load ``<survey>.sources`` from ``file`` or from the (re)merged tile catalogues."""
    from casuvo.catalogue.mergedtable import merged_path
    from casuvo.storage.ingest import ingest_catalogue

    if problem := not_a_source_survey(settings, survey):
        print(f"casuvo ingest: {problem}")
        return 2
    collection = load_registry(settings)[survey].collection
    table = f"{collection}.sources"
    path = file
    if path is None:
        status = merge_sources(settings, survey, force=remerge)
        if status:
            print(f"casuvo ingest: {table} is unchanged")
            return status
        path = merged_path(settings.data_dir / "products", survey)
    _ensure_table(settings, collection)
    result = ingest_catalogue(settings.dsn, table, [path], order_by="sourceid",
                              force=options.force, progress=options.progress)
    _report(table, result)
    return _record_framesets(settings, survey, collection, path)


def _record_framesets(settings: Settings, survey: str, collection: str, path: Path) -> int:
    """Record which tiles each frame set came from: its rows' release follows theirs."""
    from casuvo.catalogue.framesets import BandMergeError
    from casuvo.catalogue.mergedtable import frame_set_members
    from casuvo.storage.access import record_framesets

    try:
        members = frame_set_members(path, load_registry(settings)[survey],
                                    settings.data_dir / "products")
    except (OSError, BandMergeError) as exc:
        print(f"casuvo ingest: {exc}; {collection}.sources stays hidden from all but its "
              "builders until its frame sets are recorded")
        return 1
    n = record_framesets(settings.dsn, collection, members)
    print(f"{collection}.sources: {len({f for f, _ in members})} frame sets from {n} tiles "
          "recorded (release control)")
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    options = IngestOptions(force=args.force, progress=not args.no_progress)
    if args.collection == "sources":
        return ingest_sources(settings, args.survey, args.file, remerge=args.remerge,
                              options=options)
    return ingest_collection(settings, args.collection, args.files, options)


def _ensure_table(settings: Settings, survey: str) -> None:
    """Create ``<survey>.sources`` from its RD if it does not exist yet (survey: collection).

    ``casuvo up`` imports an RD's tables only the first time it sees the RD;
    an RD that gained the sources table later would otherwise never get it.
    """
    from casuvo.dachs.instance import dachs, table_exists

    if not table_exists(settings, f"{survey}.sources"):
        dachs(settings, "imp", f"{survey}/q", "create_sources")

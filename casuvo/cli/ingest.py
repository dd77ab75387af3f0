# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo ingest gaia [FILE ...]`` and ``casuvo ingest sources vista|vst [FILE]``.

``gaia`` bulk-loads the reference catalogue files into ``gaia.sources``.
``sources`` loads a survey's band-merged source catalogue into
``<survey>.sources``; unless a file is given, it first (re)makes the merged file
with :mod:`casuvo.catalogue.bandmerge` in the compute environment when that file is
missing or older than any of the survey's tile catalogues (design decision 12).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from casuvo.config import Settings


@dataclass(frozen=True)
class Collection:
    """Where a collection's catalogue files are and which table they fill."""

    table: str
    pattern: str
    order_by: str


COLLECTIONS = {
    "gaia": Collection("gaia.sources", "gaia/gaia_*.fits", "source_id"),
}
#: Surveys with a band-merged source table ``<survey>.sources``.
SOURCE_SURVEYS = ("vista", "vst")


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
    sources.add_argument("survey", choices=SOURCE_SURVEYS)
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


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.collection == "sources":
        return _run_sources(args, settings)
    from casuvo.storage.ingest import ingest_catalogue

    coll = COLLECTIONS[args.collection]
    files = args.files or sorted(settings.data_dir.glob(coll.pattern))
    if not files:
        print(f"casuvo ingest: no files match {settings.data_dir / coll.pattern}; "
              "run `casuvo simulate` first")
        return 1
    result = ingest_catalogue(settings.dsn, coll.table, files, order_by=coll.order_by,
                              force=args.force, progress=not args.no_progress)
    _report(coll.table, result)
    return 0


def merge_needed(merged: Path, tiles: list[Path]) -> bool:
    """True if the merged file is missing or older than any tile catalogue."""
    if not merged.exists():
        return True
    made = merged.stat().st_mtime
    return any(t.stat().st_mtime > made for t in tiles)


def _run_sources(args: argparse.Namespace, settings: Settings) -> int:
    from casuvo.catalogue.bandmerge import merged_path, tile_catalogues
    from casuvo.cli.pipeline import compute
    from casuvo.storage.ingest import ingest_catalogue

    table = f"{args.survey}.sources"
    products = settings.data_dir / "products"
    path = args.file
    if path is None:
        path = merged_path(products, args.survey)
        tiles = tile_catalogues(products, args.survey)
        if not tiles and not path.exists():
            print(f"casuvo ingest: no tile catalogues under {products / args.survey}; "
                  f"run `casuvo pipeline run {args.survey}` first")
            return 1
        if args.remerge or merge_needed(path, tiles):
            status = compute(settings, "casuvo.catalogue.bandmerge", args.survey, "--products",
                             str(products), "--out", str(path))
            if status:
                print(f"casuvo ingest: merging the {args.survey} tile catalogues failed "
                      f"(exit status {status}); {table} is unchanged")
                return status
    _ensure_table(settings, args.survey)
    result = ingest_catalogue(settings.dsn, table, [path], order_by="sourceid",
                              force=args.force, progress=not args.no_progress)
    _report(table, result)
    return 0


def _ensure_table(settings: Settings, survey: str) -> None:
    """Create ``<survey>.sources`` from its RD if it does not exist yet.

    ``casuvo up`` imports an RD's tables only the first time it sees the RD;
    an RD that gained the sources table later would otherwise never get it.
    """
    from casuvo.dachs.instance import dachs, table_exists

    if not table_exists(settings, f"{survey}.sources"):
        dachs(settings, "imp", f"{survey}/q", "create_sources")

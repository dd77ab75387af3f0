# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo ingest COLLECTION [FILE ...]``: bulk-load catalogue files into a table."""

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("collection", choices=sorted(COLLECTIONS))
    parser.add_argument("files", nargs="*", type=Path,
                        help="catalogue files (default: the collection's files under "
                             "var/data)")
    parser.add_argument("--force", action="store_true",
                        help="reload even if the ledger says the files are loaded")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from casuvo.ingest import ingest_catalogue

    coll = COLLECTIONS[args.collection]
    files = args.files or sorted(settings.data_dir.glob(coll.pattern))
    if not files:
        print(f"casuvo ingest: no files match {settings.data_dir / coll.pattern}; "
              "run `casuvo simulate` first")
        return 1
    result = ingest_catalogue(settings.dsn, coll.table, files, order_by=coll.order_by,
                              force=args.force, progress=not args.no_progress)
    if result.skipped:
        print(f"{coll.table}: up to date ({result.rows:,d} rows from {result.files} files)")
    else:
        print(f"{coll.table}: {result.rows:,d} rows from {result.files} files in "
              f"{result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s)")
    return 0

# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo export hats TABLE``: a published catalogue as a HATS collection for LSDB.

TABLE is ``gaia.sources``, ``vista.sources`` or ``vst.sources``.  The export is
made from exactly the files the ledger says are in TABLE (refused if one
changed since it was ingested), by :mod:`casuvo.catalogue.hatsexport` in the compute
environment (design decision 12), under ``var/data/hats/<schema>_<table>/``
(the catalogue and a 10″ margin; ``lsdb.open_catalog`` on that directory).
Unchanged inputs: nothing is redone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from casuvo.config import Settings

#: Tables that can be exported, with their position columns.
EXPORTABLE = {"gaia.sources": ("ra", "dec"), "vista.sources": ("ra", "dec"),
              "vst.sources": ("ra", "dec")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    hats = sub.add_parser("hats", help="a HATS collection (catalogue + margin) for LSDB")
    hats.add_argument("table", choices=sorted(EXPORTABLE))
    hats.add_argument("--out", type=Path, help="parent directory (default: var/data/hats)")
    hats.add_argument("--margin", type=float, default=10.0,
                      help="margin catalogue width in arcsec (default 10)")
    hats.add_argument("--workers", type=int, default=1, help="Dask workers (default 1)")
    hats.add_argument("--force", action="store_true", help="export even if up to date")


def hats_name(table: str) -> str:
    """Directory (and HATS catalogue) name of an exported table: ``gaia_sources``."""
    return table.replace(".", "_")


def hats_path(settings: Settings, table: str) -> Path:
    """The collection ``lsdb.open_catalog`` opens for an exported table."""
    return settings.data_dir / "hats" / hats_name(table)


def _ingested_files(settings: Settings, table: str) -> list[Path] | str:
    import psycopg

    from casuvo.storage import ledger

    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        ledger.ensure_schema(conn)
        files = ledger.recorded_set(conn, table)
    if not files:
        return f"{table} has not been loaded"
    for path, digest in files.items():
        if not Path(path).is_file() or ledger.checksum(Path(path)) != digest:
            return f"{path} is missing or changed since it was ingested into {table}"
    return sorted(Path(p) for p in files)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from casuvo.cli.pipeline import compute

    if not args.margin > 0:
        print(f"casuvo export: --margin must be > 0 arcsec, not {args.margin:g}")
        return 2
    files = _ingested_files(settings, args.table)
    if isinstance(files, str):
        print(f"casuvo export: {files}; nothing written")
        return 1
    out = args.out or settings.data_dir / "hats"
    ra, dec = EXPORTABLE[args.table]
    extra = ["--force"] if args.force else []
    return compute(settings, "casuvo.catalogue.hatsexport", hats_name(args.table), *map(str, files),
                   "--out", str(out), "--ra", ra, "--dec", dec, "--margin", repr(args.margin),
                   "--workers", str(args.workers), *extra)

# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo export hats TABLE``: a published catalogue as a HATS collection for LSDB.

TABLE is ``gaia.sources``, ``vista.sources`` or ``vst.sources``.  A survey's
merged sources are exported as the public sees them (the frame sets whose
tiles are all released; :mod:`casuvo.storage.access`), or, with ``--group``,
as that group's members see them, under ``<schema>_<table>_<group>/``: a
group's export is made for that group.  The export is
made from exactly the files the ledger says are in TABLE (refused if one
changed since it was ingested), by :mod:`casuvo.catalogue.hatsexport` in the
compute environment (a :class:`casuvo.jobs.HatsExportJob`, design decision 12),
under ``var/data/hats/<schema>_<table>/`` (the catalogue and a 10″ margin;
``lsdb.open_catalog`` on that directory).  Unchanged inputs and parameters, and
the collection as it was written: nothing is redone (the ledger's answer,
:mod:`casuvo.storage.uptodate`).  The last line printed is the export's summary
as JSON (``rows``, ``partitions``, ``path``, ``seconds``, ``skipped``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from casuvo.config import Settings

#: Reference tables without owners or release dates: exported whole.
UNRESTRICTED = frozenset({"gaia.sources"})
#: Tables that can be exported, with their position columns.
EXPORTABLE = {"gaia.sources": ("ra", "dec"), "vista.sources": ("ra", "dec"),
              "vst.sources": ("ra", "dec")}


@dataclass(frozen=True)
class HatsOptions:
    """How to export (``casuvo export hats``'s options)."""

    out: Path | None = None
    """Parent directory (default: var/data/hats)."""
    margin_arcsec: float = 10.0
    workers: int = 1
    force: bool = False
    """Export even if up to date."""
    group: str | None = None
    """Export what this group's members may see (None: what the public may see)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    hats = sub.add_parser("hats", help="a HATS collection (catalogue + margin) for LSDB")
    hats.add_argument("table", choices=sorted(EXPORTABLE))
    hats.add_argument("--out", type=Path, help="parent directory (default: var/data/hats)")
    hats.add_argument("--margin", type=float, default=10.0,
                      help="margin catalogue width in arcsec (default 10)")
    hats.add_argument("--workers", type=int, default=1, help="Dask workers (default 1)")
    hats.add_argument("--force", action="store_true", help="export even if up to date")
    hats.add_argument("--group", help="export what this group's members may see (default: "
                                      "what the public may see)")


def hats_name(table: str) -> str:
    """Directory (and HATS catalogue) name of an exported table: ``gaia_sources``."""
    return table.replace(".", "_")


def export_hats(settings: Settings, table: str, options: HatsOptions) -> int:
    """Export ``table`` as a HATS collection unless it is up to date; print its summary."""
    from casuvo.jobs import HatsExportJob, JobFailedError, run_in_compute
    from casuvo.storage import uptodate

    if not options.margin_arcsec > 0:
        print(f"casuvo export: --margin must be > 0 arcsec, not {options.margin_arcsec:g}")
        return 2
    try:
        files = uptodate.ingested_files(settings.dsn, table)
    except uptodate.StaleInputError as exc:
        print(f"casuvo export: {exc}; nothing written")
        return 1
    out = options.out or settings.data_dir / "hats"
    ra, dec = EXPORTABLE[table]
    try:
        framesets = _framesets(settings, table, options.group)
    except ValueError as exc:
        print(f"casuvo export: {exc}; nothing written")
        return 2
    name = hats_name(table) + (f"_{options.group}" if options.group else "")
    job = HatsExportJob(name, tuple(sorted(Path(p) for p in files)), out, ra=ra,
                        dec=dec, margin_arcsec=options.margin_arcsec, workers=options.workers,
                        framesets=framesets)
    collection = (out / job.name).resolve()
    fp = uptodate.fingerprint(f"hats:{collection}", files, {
        "ra": job.ra, "dec": job.dec, "pixel_threshold": job.pixel_threshold,
        "highest_order": job.highest_order, "margin_arcsec": job.margin_arcsec,
        "framesets": None if framesets is None else list(framesets)})
    try:
        outcome = uptodate.ensure_current(
            settings.dsn, fp, [collection],
            lambda: run_in_compute(settings, job).raise_for_status().summary,
            force=options.force)
    except JobFailedError as exc:
        print(f"casuvo export: {exc}")
        return exc.result.exit_status
    print(json.dumps({**outcome.result, "skipped": outcome.skipped}))
    return 0


def _framesets(settings: Settings, table: str, group: str | None) -> tuple[int, ...] | None:
    """The frame sets an export of ``table`` holds (None: a reference table, all rows)."""
    from casuvo.storage import access

    if table in UNRESTRICTED:
        if group:
            raise ValueError(f"{table} has no owners: --group does not apply")
        return None
    setting = access.groups_setting([group]) if group else access.ANONYMOUS
    return access.visible_framesets(settings.dsn, table.split(".", 1)[0], setting)


def run(args: argparse.Namespace, settings: Settings) -> int:
    return export_hats(settings, args.table, HatsOptions(
        out=args.out, margin_arcsec=args.margin, workers=args.workers, force=args.force,
        group=args.group))

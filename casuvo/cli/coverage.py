# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo coverage``: MOCs and HiPS of the image collections, for Aladin.

Runs in the service environment: mocpy and astropy 5.3 suffice for the MOCs,
and the HiPS are made by Hipsgen (Java, Debian's ``aladin``).  What is up to
date is skipped, so it is cheap to run after every pipeline run.  The files are
served at once by ``resdir/coverage`` (no server restart).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from casuvo.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("collections", nargs="*", metavar="COLLECTION",
                        help="image collections of the survey registry (default: all)")
    parser.add_argument("--band", action="append", dest="bands", metavar="BAND",
                        help="only the HiPS of this band (FILTER value; repeatable)")
    parser.add_argument("--no-moc", action="store_true", help="do not make the MOCs")
    parser.add_argument("--no-hips", action="store_true", help="do not make the HiPS")
    parser.add_argument("--moc-order", type=int, default=None,
                        help="HEALPix order of the MOCs (default 15, 6.4 arcsec cells)")
    parser.add_argument("--force", action="store_true", help="remake what is up to date")


@dataclass(frozen=True)
class CoverageOptions:
    """What to make (``casuvo coverage``'s options)."""

    collections: tuple[str, ...] = ()
    """Image collections (default: all of the registry)."""
    bands: tuple[str, ...] = ()
    """Only the HiPS of these bands (default: all)."""
    moc: bool = True
    hips: bool = True
    moc_order: int | None = None
    force: bool = False


def make_coverage(settings: Settings, options: CoverageOptions) -> int:
    """Make what is out of date of the MOCs and HiPS; print them with their URLs."""
    from casuvo.archive.coverage import build_coverage, image_collections
    from casuvo.archive.endpoints import endpoints
    from casuvo.archive.moc import MOC_ORDER

    known = image_collections(settings)
    unknown = sorted(set(options.collections) - set(known))
    if unknown:
        print(f"casuvo coverage: unknown collection {', '.join(unknown)}; "
              f"choose from {', '.join(known)}")
        return 2
    collections = list(options.collections) or list(known)
    report = build_coverage(
        settings, collections, moc=options.moc, hips=options.hips, force=options.force,
        moc_order=options.moc_order or MOC_ORDER, bands=list(options.bands) or None)
    urls = endpoints(settings)
    for moc in report.mocs:
        print(f"MOC  {moc.collection:<14} order {moc.order}, {moc.area_deg2:.4f} deg², "
              f"{moc.n_products} products  {urls['moc'].get(moc.collection, moc.path)}")
    for hips in report.hips:
        state = f"made in {hips.seconds:.0f} s" if hips.built else "up to date"
        key = f"{hips.collection}.{hips.band}"
        print(f"HiPS {key:<14} order {hips.order}, {hips.n_products} products, {state}  "
              f"{urls['hips'].get(key, hips.path)}")
    if report.hipslist is not None:
        print(f"HiPS list: {urls['hipslist']}")
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    return make_coverage(settings, CoverageOptions(
        collections=tuple(args.collections), bands=tuple(args.bands or ()),
        moc=not args.no_moc, hips=not args.no_hips, moc_order=args.moc_order,
        force=args.force))

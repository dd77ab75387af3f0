# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo coverage``: MOCs and HiPS of the image collections, for Aladin.

Runs in the service environment: mocpy and astropy 5.3 suffice for the MOCs,
and the HiPS are made by Hipsgen (Java, Debian's ``aladin``).  What is up to
date is skipped, so it is cheap to run after every pipeline run.  The files are
served at once by ``resdir/coverage`` (no server restart).
"""

from __future__ import annotations

import argparse

from casuvo.archive.coverage import COLLECTIONS
from casuvo.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("collections", nargs="*", metavar="COLLECTION",
                        help="vista and/or vst (default: both)")
    parser.add_argument("--band", action="append", dest="bands", metavar="BAND",
                        help="only the HiPS of this band (FILTER value; repeatable)")
    parser.add_argument("--no-moc", action="store_true", help="do not make the MOCs")
    parser.add_argument("--no-hips", action="store_true", help="do not make the HiPS")
    parser.add_argument("--moc-order", type=int, default=None,
                        help="HEALPix order of the MOCs (default 15, 6.4 arcsec cells)")
    parser.add_argument("--force", action="store_true", help="remake what is up to date")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from casuvo.archive.coverage import MOC_ORDER, build_coverage
    from casuvo.archive.endpoints import endpoints

    unknown = sorted(set(args.collections) - set(COLLECTIONS))
    if unknown:
        print(f"casuvo coverage: unknown collection {', '.join(unknown)}; "
              f"choose from {', '.join(COLLECTIONS)}")
        return 2
    collections = args.collections or list(COLLECTIONS)
    report = build_coverage(
        settings, collections, moc=not args.no_moc, hips=not args.no_hips, force=args.force,
        moc_order=args.moc_order or MOC_ORDER, bands=args.bands)
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

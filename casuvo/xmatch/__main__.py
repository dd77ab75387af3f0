# SPDX-License-Identifier: BSD-3-Clause
"""``python -m casuvo.xmatch A B --radius R --out DIR`` — the cross-match command line.

Runs in the compute environment (``var/venv-compute``); the service-side
command line starts it there (see ``casuvo.cli.pipeline.compute``).  Exit
status 0 on success, 2 on a usage error (bad parameters or inputs, nothing
written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from casuvo.logsetup import configure_logging
from casuvo.xmatch.catalogue import TableSpec
from casuvo.xmatch.engine import OUTPUT_FORMATS, XmatchArgs, run_xmatch
from casuvo.xmatch.errors import XmatchError
from casuvo.xmatch.partition import DEFAULT_ROWS_PER_PARTITION


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m casuvo.xmatch",
        description="Cross-match two catalogues (FITS or Parquet): all pairs within a radius, "
                    "the best match per A source and VSA-style neighbour columns.")
    p.add_argument("a", type=Path, help="catalogue A (partitioned; the one that moves)")
    p.add_argument("b", type=Path, help="catalogue B")
    p.add_argument("--radius", type=float, required=True, help="match radius in arcsec")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
    p.add_argument("--workers", type=int, help="local cluster workers (default: cores, ≤ 4)")
    p.add_argument("--a-ra", default="ra")
    p.add_argument("--a-dec", default="dec")
    p.add_argument("--a-id", help="A's integer id column (default: row number)")
    p.add_argument("--b-ra", default="ra")
    p.add_argument("--b-dec", default="dec")
    p.add_argument("--b-id", help="B's integer id column (default: row number)")
    motion = p.add_argument_group("proper motion of A (Gaia columns by default)")
    motion.add_argument("--epoch", type=float,
                        help="move A to this Julian epoch (e.g. 2012.5)")
    motion.add_argument("--epoch-from-b", metavar="COLUMN",
                        help="move A to each B row's epoch in COLUMN (MJD or Julian years)")
    motion.add_argument("--a-pmra", default="pmra")
    motion.add_argument("--a-pmdec", default="pmdec")
    motion.add_argument("--a-ref-epoch", default="ref_epoch",
                        help="column or number (Gaia DR3: ref_epoch = 2016.0)")
    p.add_argument("--order", type=int, help="force the HEALPix partition order")
    p.add_argument("--rows-per-partition", type=int, default=DEFAULT_ROWS_PER_PARTITION)
    p.add_argument("--margin", type=float, help="partition margin in arcsec (default: radius "
                                                "+ proper-motion slack)")
    p.add_argument("--format", choices=sorted(OUTPUT_FORMATS), default="parquet")
    p.add_argument("--no-progress", action="store_true")
    return p


def _ref_epoch(value: str) -> str | float:
    try:
        return float(value)
    except ValueError:
        return value


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import distributed  # noqa: F401 - configures its loggers on import; quieten them after

    configure_logging(quiet=("distributed", "bokeh", "tornado"))
    moving = args.epoch is not None or args.epoch_from_b is not None
    a = TableSpec(args.a, args.a_ra, args.a_dec, args.a_id,
                  args.a_pmra if moving else None, args.a_pmdec if moving else None,
                  _ref_epoch(args.a_ref_epoch) if moving else None)
    b = TableSpec(args.b, args.b_ra, args.b_dec, args.b_id, epoch=args.epoch_from_b)
    xargs = XmatchArgs(a, b, args.radius, args.out, epoch=args.epoch,
                       margin_arcsec=args.margin, order=args.order,
                       rows_per_partition=args.rows_per_partition, scheduler=args.scheduler,
                       workers=args.workers, progress=not args.no_progress,
                       output_format=args.format)
    try:
        summary = run_xmatch(xargs)
    except XmatchError as exc:
        print(f"casuvo xmatch: {exc}", file=sys.stderr)
        return 2
    print(f"{summary.n_pairs} pairs, {summary.n_best} best matches "
          f"({summary.n_mutual} one-to-one) at {args.radius:g}″; order {summary.order}, "
          f"{summary.partitions} partitions ({summary.computed} computed, "
          f"{summary.resumed} resumed), {summary.seconds:.1f} s → {summary.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo simulate``: the seeded demo sky (Gaia-like reference catalogue and truth)."""

from __future__ import annotations

import argparse
from pathlib import Path

from casuvo.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="output directory (default var/data)")
    parser.add_argument("--seed", type=int, help="random seed (default CASUVO_SEED)")
    parser.add_argument("--scale", type=float,
                        help="multiply the number of sources (default CASUVO_SCALE)")
    parser.add_argument("--field", action="append", dest="fields",
                        help="only this demo field (repeatable)")
    parser.add_argument("--no-imaging", action="store_true",
                        help="only the Gaia catalogue, not the VISTA/VST raw survey")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from casuvo.simulate import simulate_demo
    from casuvo.simulate.fields import DEMO_FIELDS, field_by_name

    fields = tuple(field_by_name(f) for f in args.fields) if args.fields else DEMO_FIELDS
    out = args.out or settings.data_dir
    results = simulate_demo(out, seed=settings.seed if args.seed is None else args.seed,
                            scale=settings.scale if args.scale is None else args.scale,
                            fields=fields)
    total = 0
    for res in results:
        print(f"{res.field.name:<10} {res.rows:>9,d} sources  {res.catalogue}")
        total += res.rows
    print(f"{'total':<10} {total:>9,d} sources")
    if getattr(args, "no_imaging", False) or args.out is not None:
        return 0
    # The raw imaging survey needs the compute environment (numpy 2, astropy 8).
    from casuvo.cli.pipeline import compute

    return compute(settings, "casuvo.simulate", "--out", str(settings.data_dir),
                   "--seed", str(settings.seed if args.seed is None else args.seed))

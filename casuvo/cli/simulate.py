# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo simulate``: the seeded demo sky (Gaia-like reference catalogue and truth).

The Gaia catalogue is written here; the raw imaging survey (VISTA, VST
exposures, calibrations, truth) needs the compute environment (numpy 2,
astropy 7) and is a :class:`casuvo.jobs.SimulateJob` there.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from casuvo.config import Settings


@dataclass(frozen=True)
class SimulateOptions:
    """What to simulate (``casuvo simulate``'s options); None: the settings' value."""

    out: Path | None = None
    """Output directory; another than ``var/data`` gets the Gaia catalogue only."""
    seed: int | None = None
    scale: float | None = None
    fields: tuple[str, ...] = ()
    """Only these demo fields (default: all)."""
    imaging: bool = True
    """Also the VISTA/VST raw survey (compute environment)."""
    spectroscopy: bool = True
    """Also the spectroscopic surveys' raw data (compute environment)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="output directory (default var/data)")
    parser.add_argument("--seed", type=int, help="random seed (default CASUVO_SEED)")
    parser.add_argument("--scale", type=float,
                        help="multiply the number of sources (default CASUVO_SCALE)")
    parser.add_argument("--field", action="append", dest="fields",
                        help="only this demo field (repeatable)")
    parser.add_argument("--no-imaging", action="store_true",
                        help="only the Gaia catalogue, not the VISTA/VST raw survey")
    parser.add_argument("--no-spectroscopy", action="store_true",
                        help="not the spectroscopic surveys (GES, WEAVE, 4MOST) raw data")


def simulate(settings: Settings, options: SimulateOptions) -> int:
    """Write the Gaia catalogue here, then (for ``var/data``) the imaging survey as a job."""
    from casuvo.jobs import SimulateJob, run_in_compute
    from casuvo.simulate import simulate_demo
    from casuvo.simulate.fields import DEMO_FIELDS, field_by_name

    fields = tuple(field_by_name(f) for f in options.fields) if options.fields else DEMO_FIELDS
    out = options.out or settings.data_dir
    seed = settings.seed if options.seed is None else options.seed
    # The source-count factor (CASUVO_SCALE): the Gaia catalogue and the imaging survey's sky.
    scale = settings.scale if options.scale is None else options.scale
    results = simulate_demo(out, seed=seed, scale=scale, fields=fields)
    total = 0
    for res in results:
        print(f"{res.field.name:<10} {res.rows:>9,d} sources  {res.catalogue}")
        total += res.rows
    print(f"{'total':<10} {total:>9,d} sources")
    if options.out is not None:
        return 0
    if options.imaging:
        result = run_in_compute(settings, SimulateJob(out=settings.data_dir, seed=seed,
                                                      density_factor=scale))
        if result.status != "ok":
            print(f"casuvo simulate: {result.message}")
            return result.exit_status
        print(f"imaging survey written to {result.summary['raw_dir']} ({result.seconds:.0f} s;"
              " raw/manifest.json lists the files)")
    if options.spectroscopy:
        from casuvo.jobs import SpectroSimulateJob

        result = run_in_compute(settings, SpectroSimulateJob(out=settings.data_dir, seed=seed))
        if result.status != "ok":
            print(f"casuvo simulate: {result.message}")
            return result.exit_status
        for key, done in result.summary.items():
            print(f"{key:<10} {done['obs']:>3} OBs, {done['spectra']:>4} object spectra, "
                  f"{done['files']} files under raw/{key}")
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    return simulate(settings, SimulateOptions(
        out=args.out, seed=args.seed, scale=args.scale, fields=tuple(args.fields or ()),
        imaging=not args.no_imaging, spectroscopy=not args.no_spectroscopy))

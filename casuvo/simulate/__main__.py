# SPDX-License-Identifier: BSD-3-Clause
"""``python -m casuvo.simulate --out DIR`` — the imaging survey, in the compute environment.

``casuvo simulate`` (service environment) writes the Gaia catalogue itself and
starts this for the VISTA and VST raw exposures, calibrations and truth.
Resumable: complete files are kept.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from casuvo.logsetup import configure_logging
from casuvo.simulate.survey import write_survey


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m casuvo.simulate",
                                     description="Write the demo imaging survey.")
    parser.add_argument("--out", type=Path, required=True, help="data directory (var/data)")
    parser.add_argument("--seed", type=int, default=20161)
    parser.add_argument("--scale", type=float, default=None,
                        help="instrument miniature factor (default: the demo scales)")
    args = parser.parse_args(argv)
    configure_logging()
    t0 = time.perf_counter()
    manifest = write_survey(args.out, seed=args.seed, scale=args.scale,
                            gaia_dir=args.out / "gaia")
    del manifest  # raw/manifest.json lists every file
    print(f"imaging survey written to {args.out / 'raw'} "
          f"({time.perf_counter() - t0:.0f} s; raw/manifest.json lists the files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

# SPDX-License-Identifier: BSD-3-Clause
"""``python -m casuvo.pipeline SURVEY_CONFIG ...`` — the compute-environment entry point.

``casuvo pipeline run vista|vst`` (service environment) starts this in
``var/venv-compute``; it can also be run there directly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from casuvo.config import Settings
from casuvo.logsetup import configure_logging
from casuvo.pipeline.config import load_config
from casuvo.pipeline.runner import run_pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m casuvo.pipeline",
                                     description="Run a survey imaging pipeline.")
    parser.add_argument("config", type=Path, help="pipelines/<survey>/config.toml")
    parser.add_argument("--night", help="only this night (YYYYMMDD)")
    parser.add_argument("--scheduler", help="Dask scheduler address (default: local cluster)")
    parser.add_argument("--workers", type=int, help="local cluster workers (default: cores)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 3 if any product failed")
    args = parser.parse_args(argv)
    # reproject logs every input of a mosaic at INFO; distributed its lifecycle.
    configure_logging(quiet=("reproject", "distributed", "bokeh"))
    settings = Settings.from_env()
    try:
        cfg = load_config(args.config)
    except (OSError, ValueError) as exc:
        print(f"casuvo pipeline: {exc}", file=sys.stderr)
        return 2
    summary = run_pipeline(
        cfg, settings.data_dir / "raw" / cfg.survey, settings.data_dir / "gaia",
        settings.data_dir / "products" / cfg.survey, dsn=settings.dsn, night=args.night,
        scheduler=args.scheduler, workers=args.workers, progress=not args.no_progress)
    print(f"run {summary.run_id}: {summary.ok} products made, {summary.resumed} already "
          f"done, {summary.failed} failed, {summary.seconds:.1f} s")
    for message in summary.failures:
        print(f"  FAILED {message}")
    return 3 if args.strict and summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())

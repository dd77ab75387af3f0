# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo demo``: the whole demo data centre — up, simulate, ingest, pipelines, URLs."""

from __future__ import annotations

import argparse

from casuvo.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from casuvo.cli import endpoints, ingest, pipeline, simulate
    from casuvo.stack import up

    up(settings)
    if simulate.run(argparse.Namespace(out=None, seed=None, scale=None, fields=None,
                                       no_imaging=False), settings):
        return 1
    ingest.run(argparse.Namespace(collection="gaia", files=[], force=False,
                                  no_progress=args.no_progress), settings)
    for survey in pipeline.SURVEYS:
        status = pipeline.run(argparse.Namespace(
            action="run", survey=survey, night=None, scheduler=None, workers=None,
            no_progress=args.no_progress, strict=False), settings)
        if status:
            return status
    pipeline.run(argparse.Namespace(action="plots", survey=None), settings)
    print()
    return endpoints.run(argparse.Namespace(json=False), settings)

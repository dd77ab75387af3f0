# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo demo``: the whole demo data centre — up, simulate, ingest, pipelines, archives."""

from __future__ import annotations

import argparse

from casuvo.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from casuvo.cli import coverage, endpoints, export, ingest, pipeline, publish, simulate, xmatch
    from casuvo.dachs.stack import up

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
    publish.run(argparse.Namespace(surveys=[]), settings)
    for survey in ingest.SOURCE_SURVEYS:  # band-merge the tiles, load <survey>.sources
        status = ingest.run(argparse.Namespace(
            collection="sources", survey=survey, file=None, remerge=False, force=False,
            no_progress=args.no_progress), settings)
        if status:
            return status
    for survey in xmatch.SURVEYS:  # <survey>.sources_x_gaia neighbour tables
        status = xmatch.run(argparse.Namespace(
            survey=survey, radius=xmatch.DEFAULT_RADIUS_ARCSEC, scheduler=None, workers=None,
            force=False, no_progress=args.no_progress), settings)
        if status:
            return status
    for table in sorted(export.EXPORTABLE):  # HATS catalogues for LSDB users
        status = export.run(argparse.Namespace(
            format="hats", table=table, out=None, margin=10.0, workers=1, force=False),
            settings)
        if status:
            return status
    pipeline.run(argparse.Namespace(action="plots", survey=None), settings)
    status = coverage.run(argparse.Namespace(  # MOCs and HiPS for Aladin
        collections=[], bands=None, no_moc=False, no_hips=False, moc_order=None,
        force=False), settings)
    if status:
        return status
    print()
    return endpoints.run(argparse.Namespace(json=False), settings)

# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo demo``: the whole demo data centre — up, simulate, ingest, URLs."""

from __future__ import annotations

import argparse

from casuvo.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from casuvo.cli import endpoints, ingest, simulate
    from casuvo.stack import up

    up(settings)
    simulate.run(argparse.Namespace(out=None, seed=None, scale=None, fields=None), settings)
    ingest.run(argparse.Namespace(collection="gaia", files=[], force=False,
                                  no_progress=args.no_progress), settings)
    print()
    return endpoints.run(argparse.Namespace(json=False), settings)

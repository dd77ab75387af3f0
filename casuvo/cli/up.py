# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo up``: bring the project-local stack up (idempotent)."""

from __future__ import annotations

import argparse
import logging

from casuvo.config import Settings

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--republish", action="store_true",
                        help="re-create published tables (drops their rows) after an RD change")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from casuvo.dachs.stack import up

    up(settings, republish=args.republish)
    from casuvo.cli.endpoints import print_urls

    print_urls(settings)
    return 0

# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo publish [SURVEY ...]``: put a survey's pipeline products into its image archive.

Run after a pipeline run: it lists every finished product in ``<survey>.images``
(one row per image), its confidence maps and catalogues in
``<survey>.ancillary``, both in ObsCore, behind SIA, DataLink and SODA.
"""

from __future__ import annotations

import argparse
import logging
import time

from casuvo.config import Settings

log = logging.getLogger(__name__)

HELP = "Publish pipeline products in the image archives (SIA, ObsCore, DataLink, SODA)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("surveys", nargs="*", metavar="SURVEY",
                        help="vista and/or vst (default: both)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from casuvo.dachs.stack import ARCHIVES, publish_archive

    for survey in args.surveys or list(ARCHIVES):
        start = time.perf_counter()
        images = publish_archive(settings, survey)
        log.info("%s archive: %d images published in %.1f s", survey, images,
                 time.perf_counter() - start)
    return 0

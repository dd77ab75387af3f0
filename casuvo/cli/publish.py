# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo publish [SURVEY ...]``: put a survey's pipeline products into its archive.

Spectroscopic surveys (registry kind ``spectroscopy``) are imported from the
index tables their pipeline writes into ``<survey>.obs_blocks``, ``targets``,
``spectra`` (SSA), ``ob_products`` and ``raw``, all in ObsCore
(:func:`casuvo.dachs.stack.publish_spectra`).  Imaging surveys:

Run after a pipeline run: it lists every finished product in ``<survey>.images``
(one row per image), its confidence maps and catalogues in
``<survey>.ancillary``, both in ObsCore, behind SIA, DataLink and SODA.  An
archive whose products, RDs and code are unchanged since its last import is
left as it is (the ledger says so: :func:`casuvo.dachs.stack.archive_fingerprint`);
``--force`` imports it again regardless.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence

from casuvo.config import Settings

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("surveys", nargs="*", metavar="SURVEY",
                        help="archives of the survey registry (default: all)")
    parser.add_argument("--force", action="store_true",
                        help="import the archives even if nothing changed")


def publish(settings: Settings, surveys: Sequence[str] = (), *, force: bool = False) -> int:
    """Publish the named surveys' products (default: every archive)."""
    from casuvo.dachs.stack import (
        archives,
        publish_archive,
        publish_spectra,
        spectroscopic_archives,
    )

    spectroscopic = spectroscopic_archives(settings)
    for survey in surveys or [*archives(settings), *spectroscopic]:
        start = time.perf_counter()
        if survey in spectroscopic:
            rows = publish_spectra(settings, survey, force=force)
            log.info("%s archive: %s (%.1f s)", survey,
                     ", ".join(f"{n} {name}" for name, n in rows.items()),
                     time.perf_counter() - start)
            continue
        state = publish_archive(settings, survey, force=force)
        if state.published:
            log.info("%s archive: %d images published in %.1f s", survey, state.images,
                     time.perf_counter() - start)
        else:
            log.info("%s archive: up to date (%d images, %d ancillary files)", survey,
                     state.images, state.ancillary)
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    return publish(settings, args.surveys, force=args.force)

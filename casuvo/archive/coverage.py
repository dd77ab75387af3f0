# SPDX-License-Identifier: BSD-3-Clause
"""Sky coverage of the imaging collections for Aladin: a MOC per collection, a HiPS per band.

Aladin (and Aladin Lite, TOPCAT, ipyaladin) find what a data centre holds through
two IVOA products besides the SIA/ObsCore footprints: a **MOC** (MOC 2.0, FITS)
per collection, the union of its images' footprints (:mod:`casuvo.archive.moc`),
and a **HiPS** per instrument and band, made by Aladin's Hipsgen
(:mod:`casuvo.archive.hips`), listed in the HiPS list.  :func:`build_coverage`
makes them all for ``casuvo coverage``.

Everything is generated under ``var/data`` (``hips/<collection>/<band>/``,
``coverage/<collection>.moc.fits``, the HiPS list ``hips/hipslist``), built aside
in ``var/data/coverage-build`` and moved into place when complete, so the
server never shows a half-made HiPS.  A build is skipped when the ledger says
its output is up to date: same inputs (SHA-256), same parameters, and the output
as it was written (:mod:`casuvo.storage.uptodate`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from casuvo.archive._builds import CoverageError
from casuvo.archive.hips import HipsResult, build_hips, hips_specs, write_hipslist
from casuvo.archive.imagemeta import ledger_release_overrides, public_image_files
from casuvo.archive.moc import MOC_ORDER, MocResult, build_moc
from casuvo.config import Settings
from casuvo.surveys.registry import load_registry

__all__ = ["CoverageError", "CoverageReport", "build_coverage", "image_collections"]

log = logging.getLogger(__name__)


def image_collections(settings: Settings) -> tuple[str, ...]:
    """The image collections (imaging surveys of the registry) that get a MOC and HiPS."""
    return tuple(s.collection for s in load_registry(settings).of_kind("imaging"))


@dataclass
class CoverageReport:
    """What ``casuvo coverage`` made."""

    mocs: list[MocResult] = field(default_factory=list)
    hips: list[HipsResult] = field(default_factory=list)
    hipslist: Path | None = None


def build_coverage(settings: Settings, collections: Sequence[str] | None = None, *,
                   moc: bool = True, hips: bool = True, force: bool = False,
                   moc_order: int = MOC_ORDER, bands: Sequence[str] | None = None
                   ) -> CoverageReport:
    """MOCs and HiPS of ``collections``, then the HiPS list; resumable and idempotent.

    ``collections`` defaults to every image collection (:func:`image_collections`).
    A collection without finished products is skipped with a warning, so that the
    demo's coverage step does not fail for a survey that was not run.
    """
    report = CoverageReport()
    for collection in image_collections(settings) if collections is None else collections:
        entry = load_registry(settings).by_collection(collection)
        releases = ledger_release_overrides(settings.dsn, entry.key)
        if not public_image_files(settings.data_dir / "products" / collection, entry.access,
                                  releases=releases):
            log.warning("no finished public image products of %s: no MOC or HiPS", collection)
            continue
        if moc:
            report.mocs.append(build_moc(settings, collection, order=moc_order, force=force))
        if hips:
            for spec in hips_specs(settings, collection):
                if bands and spec.band not in bands:
                    continue
                report.hips.append(build_hips(settings, spec, force=force))
    if hips:
        report.hipslist = write_hipslist(settings)
    return report

# SPDX-License-Identifier: BSD-3-Clause
"""The MOC of an image collection: the sky its science images cover, for Aladin and TOPCAT.

One MOC 2.0 FITS file per collection, ``var/data/coverage/<collection>.moc.fits``:
the union of the footprints of every science image extension (stacked pawprints
and tiles).  The footprint of an image is its pixel *boundary* mapped through
the full WCS (TAN-SIP), :data:`EDGE_SAMPLES` points per side so that distortion
is followed (:func:`casuvo.sky.footprint.footprint`).  :data:`MOC_ORDER` 15
(6.4″ cells) keeps the MOC within ~2 % of the exact union area on the demo's
shrunken detectors (order 12, 52″ cells, overstates it by ~10 % there and blurs
the gaps between the 54″-wide OmegaCAM demo detectors).

This module runs in the service environment (mocpy, astropy 5.3) as well as
the compute one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from casuvo.archive._builds import CoverageError
from casuvo.archive.imagemeta import ledger_release_overrides, public_image_files
from casuvo.config import Settings
from casuvo.sky.footprint import celestial_images, footprint
from casuvo.storage import uptodate
from casuvo.storage.files import atomic_path
from casuvo.surveys.registry import load_registry

__all__ = ["EDGE_SAMPLES", "MOC_ORDER", "MocResult", "build_moc", "collection_moc",
           "image_footprints", "moc_path"]

log = logging.getLogger(__name__)

#: HEALPix order of the collection MOCs: 6.4″ cells (see the module docstring)
MOC_ORDER = 15

#: points per image side of a footprint polygon (follows the SIP distortion)
EDGE_SAMPLES = 8

_SQDEG_PER_SKY = 4 * math.pi * (180 / math.pi) ** 2


def moc_path(settings: Settings, collection: str) -> Path:
    """The served MOC of a collection."""
    return settings.data_dir / "coverage" / f"{collection}.moc.fits"


def image_footprints(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Footprints (pixel boundaries) of every science image extension of a product file."""
    with fits.open(path, memmap=True) as hdul:
        return [footprint(hdu.header, samples=EDGE_SAMPLES, edges=True)
                for _, hdu in celestial_images(hdul)]


def collection_moc(products: Sequence[Path], order: int = MOC_ORDER):  # -> mocpy.MOC
    """The MOC (union of footprint polygons) of some product files at ``order``.

    mocpy includes every cell a polygon touches, so the MOC is a superset of the
    footprints: a point on an image is always inside its collection's MOC.
    """
    from astropy.coordinates import SkyCoord
    from mocpy import MOC

    polygons = [SkyCoord(ra, dec, unit="deg")
                for path in products for ra, dec in image_footprints(path)]
    if not polygons:
        raise CoverageError("no image footprints: nothing to make a MOC of")
    mocs = MOC.from_polygons(polygons, max_depth=order)
    union = mocs[0]
    for moc in mocs[1:]:
        union = union.union(moc)
    return union


@dataclass(frozen=True)
class MocResult:
    """A collection's MOC: where, how much sky, from how many files."""

    collection: str
    path: Path
    order: int
    area_deg2: float
    n_products: int
    built: bool
    """False when the existing MOC was up to date."""


def build_moc(settings: Settings, collection: str, *, order: int = MOC_ORDER,
              force: bool = False) -> MocResult:
    """Write ``coverage/<collection>.moc.fits`` from the finished, public science images.

    Skipped (the recorded area returned) when the ledger says the file is up to
    date with the products' SHA-256 and the parameters.
    """
    entry = load_registry(settings).by_collection(collection)
    releases = ledger_release_overrides(settings.dsn, entry.key)
    products = [f.path for f in public_image_files(settings.data_dir / "products" / collection,
                                                   entry.access, releases=releases)]
    if not products:
        raise CoverageError(f"no finished public image products of {collection} under "
                            f"{settings.data_dir / 'products' / collection}")
    out = moc_path(settings, collection)

    def make() -> dict[str, float]:
        start = time.monotonic()
        moc = collection_moc(products, order)
        with atomic_path(out) as tmp:
            # NUNIQ ordering: MOC 2.0 that MOC 1.x readers (older Aladin, TOPCAT) also read.
            moc.save(str(tmp), format="fits", overwrite=True, v1_compatible=True)
        area = moc.sky_fraction * _SQDEG_PER_SKY
        log.info("%s MOC: %d products, order %d, %.4f deg², %.1f s -> %s", collection,
                 len(products), order, area, time.monotonic() - start, out)
        return {"area_deg2": area}

    fp = uptodate.fingerprint(f"moc:{collection}", products,
                              {"order": order, "edge_samples": EDGE_SAMPLES})
    outcome = uptodate.ensure_current(settings.dsn, fp, [out], make, force=force)
    if outcome.skipped:
        log.info("%s MOC up to date (%d products)", collection, len(products))
    return MocResult(collection, out, order, outcome.result["area_deg2"], len(products),
                     built=not outcome.skipped)

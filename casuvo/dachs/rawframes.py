# SPDX-License-Identifier: BSD-3-Clause
"""Rows of an imaging survey's raw frames for ObsCore (``resdir/common/rawframes.rd``).

The raw science exposures of VIRCAM and OmegaCAM are published with
``calib_level`` 0, so "query for raw data" is an ObsCore query on every
survey alike (the spectroscopic raw exposures come from
their pipeline's index, :mod:`casuvo.dachs.spectra`).  The files are
classified from their own headers by the pipeline's
:func:`casuvo.pipeline.rawindex.index_raw`; the footprint of a science
exposure is the circle around its pointing that holds the camera's
detectors, as a 12-gon.  Calibration frames (darks, biases, twilight
flats) have no position on the sky and stay out: every ObsCore row of an
imaging collection has a footprint, time and band.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from casuvo.config import Settings
from casuvo.pipeline.rawindex import index_raw
from casuvo.surveys.registry import load_registry

__all__ = ["raw_frame_rows"]

#: ObsCore dataproduct_subtype and title word of each kind of raw frame
KINDS = {"science": "science"}


def raw_frame_rows(collection: str) -> Iterator[dict[str, Any]]:
    """One row per raw science exposure of an imaging collection, as rowmaker input."""
    from gavo.utils import pgsphere

    settings = Settings.from_env()
    entry = load_registry(settings).by_collection(collection)
    camera = entry.instrument
    filters = {f.eso_name: f.name for f in camera.filters.values()}
    raw_dir = settings.data_dir / "raw" / entry.key
    # the circle (arcsec) around the optical axis that holds every detector
    half_diagonal = math.hypot(camera.nx, camera.ny) / 2 * camera.pixel_scale
    radius = max(math.hypot(x, y) for x, y in camera.layout) + half_diagonal
    for raw in index_raw(raw_dir.rglob("*.fits"), filters).science():
        band = camera.filters.get(raw.band)
        science = raw.kind == "science"
        row: dict[str, Any] = {
            "accref": str(raw.path.relative_to(settings.data_dir)),
            "file_size": raw.path.stat().st_size,
            "kind": KINDS.get(raw.kind, raw.kind),
            "band": raw.band, "night": int(raw.night), "mjd_obs": raw.mjd,
            "exptime": raw.exptime, "object": raw.obj or None,
            "obs_id": raw.obs_id or None, "airmass": raw.airmass if science else None,
            "ra": raw.ra if science else None, "dec": raw.dec if science else None,
            "fov": 2 * radius / 3600 if science else None,
            "em_min": (band.wavelength_nm - band.width_nm / 2) * 1e-9 if band else None,
            "em_max": (band.wavelength_nm + band.width_nm / 2) * 1e-9 if band else None,
            "coverage": (pgsphere.SCircle.fromDALI([raw.ra, raw.dec, radius / 3600]).asPoly(12)
                         if science else None),
            "owner_group": entry.access.group,
            # a raw frame is released with the products of its night and field
            "release_date": entry.access.release(raw.night, raw.obj or None),
            "instrument": camera.name, "facility": camera.telescope,
            "title": (f"{entry.name} raw {KINDS.get(raw.kind, raw.kind)} {raw.band}"
                      f" {raw.path.name}"),
        }
        yield row

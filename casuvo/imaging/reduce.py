# SPDX-License-Identifier: BSD-3-Clause
"""Instrumental signature removal and sky subtraction of one detector image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sep

from casuvo.imaging.calib import MasterCalibration

__all__ = ["Background", "reduce_detector", "subtract_sky"]

#: sep background mesh (pixels) and filter size; 64 pixels ≈ 20″ on VIRCAM
#: is large against stars and small against the flat-field structure left.
BACK_MESH = 64
BACK_FILTER = 3


@dataclass(frozen=True)
class Background:
    """Sky level and noise of a detector (ADU), as CASU's SKYLEVEL/SKYNOISE."""

    level: float
    noise: float


def reduce_detector(raw: np.ndarray, cal: MasterCalibration) -> np.ndarray:
    """(raw − dark) / flat, as float32; bad pixels (confidence 0) become NaN."""
    data = (np.asarray(raw, np.float32) - cal.dark) / np.where(cal.flat > 0, cal.flat, 1.0)
    data[cal.conf <= 0] = np.nan
    return data.astype(np.float32)


def subtract_sky(data: np.ndarray, mesh: int | None = None) -> tuple[np.ndarray, Background]:
    """Subtract a smooth sep background; return the result and the sky statistics.

    ``mesh`` is the background cell in pixels: None for the default (64, shrunk
    for miniature detectors so there are always several cells across), 0 for a
    single level per image — for fields with nebulae larger than the cells,
    which a local background would subtract away.
    """
    mask = ~np.isfinite(data)
    filled = np.where(mask, np.nanmedian(data), data).astype(np.float32)
    if mesh == 0:  # one level for the whole image: keeps nebulae larger than a detector
        bkg = sep.Background(filled, mask=mask, bw=data.shape[1], bh=data.shape[0], fw=1,
                             fh=1)
        sky = filled - np.float32(bkg.globalback)
        sky[mask] = np.nan
        return sky.astype(np.float32), Background(float(bkg.globalback),
                                                  float(bkg.globalrms))
    size = mesh or int(min(BACK_MESH, max(16, min(data.shape) // 8)))
    bkg = sep.Background(filled, mask=mask, bw=size, bh=size, fw=BACK_FILTER, fh=BACK_FILTER)
    sky = filled - bkg.back()
    sky[mask] = np.nan
    return sky.astype(np.float32), Background(float(bkg.globalback), float(bkg.globalrms))

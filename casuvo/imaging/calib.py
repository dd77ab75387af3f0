# SPDX-License-Identifier: BSD-3-Clause
"""Master calibrations: dark/bias, twilight flat and the confidence map derived from it.

As CASU does, the confidence map is the normalised flat field expressed as an
integer percentage (median 100), with bad pixels (dead, hot, or with a flat
response far from the median) set to 0; it weights stacking and flags
detections whose aperture touches bad pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MasterCalibration", "combine_darks", "combine_flats", "confidence_map"]

#: Flat response outside this range of the median marks a pixel bad.
BAD_FLAT_RANGE = (0.5, 1.5)


@dataclass(frozen=True)
class MasterCalibration:
    """Master dark (ADU, includes bias), normalised flat and confidence map of one detector."""

    dark: np.ndarray
    flat: np.ndarray
    conf: np.ndarray


def combine_darks(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Median of dark (or bias) frames: robust to cosmic rays in any one frame."""
    if not frames:
        raise ValueError("no dark frames")
    return np.median(np.stack([np.asarray(f, np.float32) for f in frames]), axis=0)


def combine_flats(frames: Sequence[np.ndarray], dark: np.ndarray,
                  levels: Sequence[float] | None = None) -> np.ndarray:
    """Dark-subtracted flats, each divided by its frame's level, median-combined.

    ``levels`` are the illumination levels of the frames over the *whole
    mosaic* (as CASU normalises), so the relative sensitivity of the detectors
    stays in their flats and one zero point fits the whole camera; without
    them each detector is normalised to median 1 on its own.
    """
    if not frames:
        raise ValueError("no flat frames")
    normed = []
    for k, frame in enumerate(frames):
        f = np.asarray(frame, np.float32) - dark
        normed.append(f / (levels[k] if levels is not None else np.median(f)))
    flat = np.median(np.stack(normed), axis=0).astype(np.float32)
    return flat if levels is not None else flat / np.median(flat)


def confidence_map(flat: np.ndarray, dark: np.ndarray | None = None,
                   hot_sigma: float = 10.0) -> np.ndarray:
    """Integer confidence (0–~110, median 100) from the flat; 0 marks bad pixels."""
    low, high = BAD_FLAT_RANGE
    conf = np.clip(np.nan_to_num(flat, nan=0.0) * 100.0, 0, 32767)
    bad = (flat < low) | (flat > high) | ~np.isfinite(flat)
    if dark is not None:
        med = np.median(dark)
        mad = 1.4826 * np.median(np.abs(dark - med)) or 1.0
        bad |= np.abs(dark - med) > hot_sigma * mad
    conf[bad] = 0
    return np.rint(conf).astype(np.int16)

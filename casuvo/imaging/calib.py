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

__all__ = ["MasterCalibration", "combine_darks", "combine_flats", "confidence_map",
           "image_median", "median_frames"]

#: Flat response outside this range of the median marks a pixel bad.
BAD_FLAT_RANGE = (0.5, 1.5)


@dataclass(frozen=True)
class MasterCalibration:
    """Master dark (ADU, includes bias), normalised flat and confidence map of one detector."""

    dark: np.ndarray
    flat: np.ndarray
    conf: np.ndarray


#: Arrays smaller than this take ``np.median`` directly.
_SELECT_MIN = 100_000


def image_median(image: np.ndarray) -> np.floating:
    """The median of all pixels of a float image, equal to ``np.median(image)``.

    Making a night's masters takes about a hundred medians of 2048² detectors
    (frame levels, flat normalisation, the dark's level and spread), and numpy
    selects among all four million pixels for each.  Here a sparse sample gives
    a narrow window of values around the median, one pass counts the pixels
    below it, and numpy selects only among the few per cent inside — twice as
    fast, and exact: where the window misses the median (or there are NaNs)
    the answer is ``np.median``'s.
    """
    flat = np.asarray(image).ravel()
    n = flat.size
    if n < _SELECT_MIN or flat.dtype.kind != "f" or np.isnan(flat[::97]).any():
        return np.median(flat)
    lo, hi = np.quantile(flat[:: n // 20_000], [0.48, 0.52]).astype(flat.dtype)
    below = np.count_nonzero(flat < lo)
    window = flat[(flat >= lo) & (flat <= hi)]
    k1, k2 = (n - 1) // 2 - below, n // 2 - below
    if k1 < 0 or k2 >= window.size or np.isnan(flat).any():
        return np.median(flat)
    part = np.partition(window, (k1, k2))
    return np.mean(part[[k1, k2]])  # as np.median: the mean of the middle one or two


def median_frames(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Pixel-by-pixel median of equal-shaped frames, as float32.

    Equal to ``np.median(np.stack(frames), axis=0)``, but three frames (a night's
    usual darks and twilight flats) take a min/max network: 15 times faster on a
    2048² detector than numpy's partition along the short axis, which made up a
    quarter of the time of a whole VIRCAM exposure.  A NaN in any frame gives NaN,
    as with ``np.median``.
    """
    arrays = [np.asarray(f, np.float32) for f in frames]
    if len(arrays) == 1:
        return arrays[0].copy()
    if len(arrays) == 3:
        a, b, c = arrays
        low, high = np.minimum(a, b), np.maximum(a, b)
        np.minimum(high, c, out=high)
        return np.maximum(low, high, out=low)
    return np.median(np.stack(arrays), axis=0).astype(np.float32)


def combine_darks(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Median of dark (or bias) frames: robust to cosmic rays in any one frame."""
    if not frames:
        raise ValueError("no dark frames")
    return median_frames(frames)


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
        normed.append(f / (levels[k] if levels is not None else image_median(f)))
    flat = median_frames(normed)
    return flat if levels is not None else flat / image_median(flat)


def confidence_map(flat: np.ndarray, dark: np.ndarray | None = None,
                   hot_sigma: float = 10.0) -> np.ndarray:
    """Integer confidence (0–~110, median 100) from the flat; 0 marks bad pixels."""
    low, high = BAD_FLAT_RANGE
    conf = np.clip(np.nan_to_num(flat, nan=0.0) * 100.0, 0, 32767)
    bad = (flat < low) | (flat > high) | ~np.isfinite(flat)
    if dark is not None:
        med = image_median(dark)
        mad = 1.4826 * image_median(np.abs(dark - med)) or 1.0
        bad |= np.abs(dark - med) > hot_sigma * mad
    conf[bad] = 0
    return np.rint(conf).astype(np.int16)

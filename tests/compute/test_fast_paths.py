# SPDX-License-Identifier: BSD-3-Clause
"""The fast paths of the imaging pipeline give what the straightforward code gives.

Medians of frames and of images, gap filling, spike masking and a tile resampled
in pieces are each compared with an independent computation: numpy's median,
a pixel-by-pixel loop, scipy's filters and the one-piece mosaic.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS
from scipy import ndimage

from casuvo.imaging import combine
from casuvo.imaging.calib import image_median, median_frames
from casuvo.imaging.detect import fill_gaps
from casuvo.imaging.reduce import SPIKE_RATIO, SPIKE_SIGMA, mask_spikes


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_median_of_frames_is_numpys(n: int) -> None:
    rng = np.random.default_rng(n)
    frames = [rng.normal(1000, 30, (64, 80)).astype(np.float32) for _ in range(n)]
    frames[0][3, 4] = np.nan
    expected = np.median(np.stack(frames), axis=0)
    got = median_frames(frames)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    skewed = np.abs(rng.normal(0, 3, (700, 301))).astype(np.float32)
    ties = rng.integers(0, 5, (400, 400)).astype(np.float32)
    plateau = rng.normal(0, 1, (500, 400)).astype(np.float32)
    plateau[:, :250] = 7.0  # the median sits on a run of equal values
    with_nan = rng.normal(5, 1, (400, 300)).astype(np.float32)
    with_nan[100, 100] = np.nan
    return [rng.normal(1000, 10, (512, 512)).astype(np.float32),  # even count
            rng.normal(1, 0.01, (511, 401)).astype(np.float32),  # odd count
            rng.normal(0, 1, 150_001), skewed, ties, plateau, with_nan,
            np.sort(rng.normal(0, 1, 300_000)).astype(np.float32), np.zeros(5, np.float32)]


@pytest.mark.parametrize("index", range(9))
def test_image_median_is_numpys(index: int) -> None:
    image = _images()[index]
    expected, got = np.median(image), image_median(image)
    assert type(got) is type(expected)
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == expected


def _fill_by_loop(sky: np.ndarray, max_gap: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Row by row: a run of at most ``max_gap`` bad pixels with good pixels on both
    sides is interpolated linearly between them."""
    data = np.where(np.isfinite(sky), sky, 0.0).astype(np.float32)
    bad = ~np.isfinite(sky)
    for row in range(sky.shape[0]):
        col = 0
        while col < sky.shape[1]:
            if not bad[row, col]:
                col += 1
                continue
            end = col
            while end < sky.shape[1] and bad[row, end]:
                end += 1
            if col > 0 and end < sky.shape[1] and end - col <= max_gap:
                lo, hi = col - 1, end
                for c in range(col, end):
                    w = (c - lo) / (hi - lo)
                    data[row, c] = data[row, lo] * (1 - w) + data[row, hi] * w
                    bad[row, c] = False
            col = end
    return data, bad


def test_fill_gaps_is_the_row_by_row_interpolation() -> None:
    rng = np.random.default_rng(3)
    sky = rng.normal(0, 1, (60, 70)).astype(np.float32)
    sky[rng.random(sky.shape) < 0.15] = np.nan
    sky[5, 10:16] = np.nan  # wider than 4: stays bad
    sky[7, :3] = np.nan  # at the edge: stays bad
    sky[9, -2:] = np.nan
    data, still_bad = fill_gaps(sky)
    expected_data, expected_bad = _fill_by_loop(sky)
    np.testing.assert_array_equal(still_bad, expected_bad)
    np.testing.assert_allclose(data, expected_data, rtol=1e-6, atol=1e-6)


def test_spikes_are_those_of_scipys_filters() -> None:
    rng = np.random.default_rng(11)
    sky = rng.normal(0, 10, (300, 280)).astype(np.float32)
    where = rng.integers(0, 280, (2, 200))
    sky[where[0] % 300, where[1]] += rng.uniform(50, 3000, 200).astype(np.float32)
    sky[0, 0] = sky[299, 279] = 5000  # corners: the edge pixels repeat outwards
    sky[50, 50:53] = np.nan
    filled = np.nan_to_num(sky)
    neighbours = (ndimage.uniform_filter(filled.astype(np.float64), 3, mode="nearest") * 9
                  - filled) / 8
    spikes = ((filled - neighbours > SPIKE_SIGMA * 10.0)
              & (filled > SPIKE_RATIO * np.maximum(neighbours, 10.0)))
    expected = np.isnan(sky) | ndimage.binary_dilation(spikes, np.ones((3, 3), bool))
    got = sky.copy()
    assert mask_spikes(got, 10.0) == spikes.sum()
    np.testing.assert_array_equal(np.isnan(got), expected)


def _input(rng: np.random.Generator, ra: float, dec: float) -> combine.Input:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [40.5, 30.5]
    wcs.wcs.cdelt = [-0.34 / 3600, 0.34 / 3600]
    data = rng.normal(0, 1, (60, 80)).astype(np.float32)
    data[10, 10:14] = np.nan
    conf = np.full((60, 80), 100, np.int16)
    return combine.Input(data, conf, wcs, 25.0 + rng.uniform(-0.05, 0.05), 10.0)


def test_tile_from_pieces_is_the_mosaic() -> None:
    rng = np.random.default_rng(5)
    inputs = [_input(rng, 150.0 + dx / 3600, 2.0 + dy / 3600)
              for dx, dy in ((0, 0), (20, 3), (-15, 12), (400, 400))]
    whole = combine.mosaic(inputs, 20.0)
    grid = combine.tile_grid([(i.data.shape, i.wcs, i.magzpt) for i in inputs])
    # resampled apart, in two halves, as two workers would
    pieces = ([combine.resample_piece(i, grid, 20.0) for i in inputs[:2]]
              + [combine.resample_piece(i, grid, 20.0) for i in inputs[2:]])
    parts = combine.coadd(pieces, grid)
    assert whole.magzpt == parts.magzpt
    np.testing.assert_array_equal(whole.data, parts.data)
    np.testing.assert_array_equal(whole.conf, parts.conf)
    assert whole.wcs.to_header() == parts.wcs.to_header()

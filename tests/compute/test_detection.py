# SPDX-License-Identifier: BSD-3-Clause
"""Detection around bad pixels and spikes, on analytic stars.

A cosmic ray on a star's wing, or a bad column through a star, used to give two
detections of one star (the deblender splits at the valley or the spike); an
undersampled bright star must never be taken for a spike.
"""

from __future__ import annotations

import numpy as np

from casuvo.imaging.detect import DetectionParams, detect_sources, fill_gaps
from casuvo.imaging.reduce import mask_spikes


def _star(shape, x, y, flux, fwhm, beta=3.0, oversample=5) -> np.ndarray:
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    img = np.zeros(shape)
    for dy in sub:
        for dx in sub:
            r2 = ((xx + dx - x) ** 2 + (yy + dy - y) ** 2) / alpha**2
            img += (beta - 1) / (np.pi * alpha**2) * (1 + r2) ** -beta
    return flux * img / oversample**2


def _sky(seed=1, shape=(120, 120)) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1.0, shape).astype(np.float32)


def test_undersampled_bright_star_is_not_a_spike() -> None:
    img = _sky() + _star((120, 120), 60.0, 60.0, 2e5, 1.8).astype(np.float32)
    before = img.copy()
    assert mask_spikes(img, 1.0) == 0
    assert np.array_equal(img, before)


def test_spikes_are_blanked_also_on_a_star_wing() -> None:
    img = _sky() + _star((120, 120), 60.0, 60.0, 5e4, 5.0).astype(np.float32)
    img[30, 90] += 300.0  # hot pixel on empty sky
    img[60, 66] += 3000.0  # cosmic ray on the star's wing (1.2 FWHM out)
    assert mask_spikes(img, 1.0) == 2
    assert np.isnan(img[30, 90]) and np.isnan(img[60, 66])
    assert np.isfinite(img[60, 60])  # the star's core is kept
    cat = detect_sources(img, 1.0, 0.2, 1e9, params=DetectionParams(threshold=3.0))
    near = np.hypot(cat["X_coordinate"] - 61, cat["Y_coordinate"] - 61) < 8
    assert near.sum() == 1


def test_a_bad_column_through_a_star_does_not_split_it() -> None:
    star = _star((120, 120), 60.3, 60.0, 5e4, 5.0).astype(np.float32)
    img = _sky() + star
    img[:, 60] = np.nan  # a bad column through the star's core
    img[:, 20:26] = np.nan  # a 6-pixel hole: too wide to interpolate
    data, mask = fill_gaps(img)
    assert not mask[:, 60].any() and mask[:, 20:26].all()
    cat = detect_sources(img, 1.0, 0.2, 1e9, params=DetectionParams(threshold=3.0))
    near = np.hypot(cat["X_coordinate"] - 61.3, cat["Y_coordinate"] - 61) < 8
    assert near.sum() == 1
    # with the column interpolated, the 4″ aperture (20 px) holds the star's flux
    total = float(cat["Aper_flux_7"][near][0])
    assert abs(total / float(star.sum()) - 1) < 0.02

# SPDX-License-Identifier: BSD-3-Clause
"""The imaging building blocks that replaced slower library calls, against those calls.

* :func:`casuvo.imaging.tansip.fit_tan_sip` against astropy's
  ``fit_wcs_from_points`` and a known distorted (ZPN) WCS;
* :func:`casuvo.imaging.resample.resample` keeps a Moffat PSF's width and flux
  and puts stars where the WCS says (the stars are rendered analytically, the
  widths measured by second moments in numpy);
* detection in blocks (:data:`casuvo.imaging.detect.BLOCK`) finds what one
  pass over the whole image finds.
"""

from __future__ import annotations

import numpy as np
import pytest
import sep
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS
from astropy.wcs.utils import fit_wcs_from_points
from reproject import reproject_interp

from casuvo.imaging import detect
from casuvo.imaging.resample import pixel_map, resample
from casuvo.imaging.tansip import fit_tan_sip


def _zpn() -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---ZPN", "DEC--ZPN"]
    w.wcs.crval = [270.0, -30.0]
    w.wcs.crpix = [-3000.0, 2500.0]
    w.wcs.cd = [[-9.4e-5, 1e-6], [1.2e-6, 9.4e-5]]
    w.wcs.set_pv([(2, 1, 1.0), (2, 3, 44.0)])
    return w


@pytest.mark.parametrize("degree", [None, 2, 3])
def test_tan_sip_fit_agrees_with_astropy(degree) -> None:
    truth = _zpn()
    gx, gy = (a.ravel() for a in np.meshgrid(np.linspace(0, 2047, 9), np.linspace(0, 2047, 9)))
    world = truth.pixel_to_world(gx, gy)
    ours = fit_tan_sip(gx, gy, world, degree, crpix=(1024.5, 1024.5))
    theirs = fit_wcs_from_points((gx, gy), world, projection="TAN", sip_degree=degree)
    px, py = np.random.default_rng(3).uniform(0, 2047, (2, 500))
    diff = ours.pixel_to_world(px, py).separation(theirs.pixel_to_world(px, py)).to_value("mas")
    assert diff.max() < 2.0
    if degree == 3:  # the cubic captures the distortion: exact against the truth
        off = ours.pixel_to_world(px, py).separation(truth.pixel_to_world(px, py))
        assert off.to_value("mas").max() < 1.0
        back_x, back_y = ours.world_to_pixel(world)
        assert np.abs(back_x - gx).max() < 0.01 and np.abs(back_y - gy).max() < 0.01


def test_tan_sip_fit_needs_enough_points() -> None:
    world = SkyCoord([10.0, 10.001, 10.002], [0.0, 0.001, 0.002], unit="deg")
    with pytest.raises(ValueError, match="3 points"):
        fit_tan_sip(np.arange(3.0), np.arange(3.0), world, 3)


def _tan(crval, crpix, scale_arcsec, rot_deg=0.0) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = list(crpix)
    c, s = np.cos(np.radians(rot_deg)), np.sin(np.radians(rot_deg))
    w.wcs.cd = np.array([[-c, s], [s, c]]) * scale_arcsec / 3600
    return w


def _moffat_image(shape, xs, ys, fwhm, beta=3.0, oversample=5) -> np.ndarray:
    """Stars of unit flux, integrated over pixels by oversampling."""
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    img = np.zeros(shape)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    for x, y in zip(xs, ys, strict=True):
        for dy in sub:
            for dx in sub:
                r2 = ((xx + dx - x) ** 2 + (yy + dy - y) ** 2) / alpha**2
                img += (beta - 1) / (np.pi * alpha**2) * (1 + r2) ** -beta
    return img / oversample**2


def _moments(img, xs, ys, box=10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flux, centroid and rms radius of each star, from pixel sums."""
    flux, dpos, width = [], [], []
    for x, y in zip(xs, ys, strict=True):
        ix, iy = int(round(x)), int(round(y))
        cut = img[iy - box:iy + box + 1, ix - box:ix + box + 1]
        gy, gx = np.mgrid[iy - box:iy + box + 1, ix - box:ix + box + 1]
        f = cut.sum()
        cx, cy = (cut * gx).sum() / f, (cut * gy).sum() / f
        core = np.hypot(gx - cx, gy - cy) < 4
        w = cut * core
        flux.append(f)
        dpos.append((cx, cy))
        width.append(np.sqrt((w * ((gx - cx) ** 2 + (gy - cy) ** 2)).sum() / w.sum()))
    return np.array(flux), np.array(dpos), np.array(width)


def test_resampling_keeps_the_psf_and_puts_stars_where_the_wcs_says() -> None:
    shape = (160, 160)
    src = _tan((150.0, 2.0), (80.5, 80.5), 0.34)
    dst = _tan((150.0 + 0.37 * 0.34 / 3600, 2.0 - 0.41 * 0.34 / 3600), (80.5, 80.5), 0.34, 0.3)
    rng = np.random.default_rng(5)
    xs, ys = rng.uniform(25, 135, (2, 12))
    fwhm = 2.0  # pixels: VIRCAM's 0.34″ pixels in 0.68″ seeing, the hard case
    img = _moffat_image(shape, xs, ys, fwhm).astype(np.float32)
    world = src.pixel_to_world(xs, ys)
    ox, oy = dst.world_to_pixel(world)
    expected = _moffat_image(shape, ox, oy, fwhm)
    out, weight = resample(img, np.full(shape, 100.0, np.float32), src, dst, shape)
    f0, c0, w0 = _moments(expected, ox, oy)
    f1, c1, w1 = _moments(out, ox, oy)
    assert np.all(np.abs(f1 / f0 - 1) < 0.005)
    assert np.all(np.hypot(*(c1 - c0).T) < 0.01)
    assert np.all(np.abs(w1 / w0 - 1) < 0.02)
    assert np.all(weight[20:-20, 20:-20] == pytest.approx(100.0, rel=1e-3))
    # bilinear interpolation, the alternative, broadens the same stars measurably
    lin, _ = reproject_interp((img, src), dst, shape_out=shape)
    _, _, w2 = _moments(np.nan_to_num(lin), ox, oy)
    assert np.median(w2 / w0) > np.median(w1 / w0) + 0.02


def test_pixel_map_matches_the_full_wcs_chain() -> None:
    src = _zpn()
    dst = _tan((270.02, -29.98), (700.5, 600.5), 0.34, 1.0)
    shape = (1200, 1400)
    my, mx = pixel_map(src, dst, shape)
    gx, gy = np.meshgrid(np.arange(0, shape[1], 37.0), np.arange(0, shape[0], 41.0))
    ex, ey = src.world_to_pixel_values(*dst.pixel_to_world_values(gx, gy))
    iy, ix = gy.astype(int), gx.astype(int)
    assert np.abs(mx[iy, ix] - ex).max() < 1e-3
    assert np.abs(my[iy, ix] - ey).max() < 1e-3


def test_detection_in_blocks_finds_what_one_pass_finds() -> None:
    rng = np.random.default_rng(11)
    shape = (2600, 2700)
    n = 1500
    xs, ys = rng.uniform(5, shape[1] - 5, n), rng.uniform(5, shape[0] - 5, n)
    img = rng.normal(0, 1, shape).astype(np.float32)
    yy, xx = np.mgrid[-6:7, -6:7]
    for x, y, f in zip(xs, ys, rng.uniform(50, 2000, n), strict=True):
        ix, iy = int(x), int(y)
        stamp = f * np.exp(-((xx + ix - x) ** 2 + (yy + iy - y) ** 2) / (2 * 1.5**2)) / (
            2 * np.pi * 1.5**2)
        y0, x0 = max(iy - 6, 0), max(ix - 6, 0)
        y1, x1 = min(iy + 7, shape[0]), min(ix + 7, shape[1])
        img[y0:y1, x0:x1] += stamp[y0 - iy + 6:y1 - iy + 6, x0 - ix + 6:x1 - ix + 6]
    mask = np.zeros(shape, bool)
    params = detect.DetectionParams(threshold=3.0)
    blocks = detect._extract(img, mask, 1.0, params)
    sep.set_extract_pixstack(img.size)
    whole = sep.extract(img, 3.0, err=1.0, mask=mask, minarea=params.min_area,
                        deblend_cont=params.deblend_cont)
    assert abs(len(blocks) - len(whole)) <= 0.002 * len(whole)
    d = np.hypot(blocks["x"][:, None] - whole["x"][None, :],
                 blocks["y"][:, None] - whole["y"][None, :]).min(axis=1)
    assert np.mean(d < 0.01) > 0.995

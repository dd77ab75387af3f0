# SPDX-License-Identifier: BSD-3-Clause
"""Footprints from WCS (casuvo.sky.footprint), checked against astropy's own WCS mapping."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from casuvo.sky.footprint import celestial_images, enclosing_outline, footprint

NX, NY = 300, 200


def _header(cd11: float = -9.4e-5, ra: float = 194.3, dec: float = -64.75) -> fits.Header:
    """A TAN-SIP image header like a VIRCAM detector's (0.34″ pixels, quadratic distortion)."""
    h = fits.Header()
    h.update(NAXIS=2, NAXIS1=NX, NAXIS2=NY, CTYPE1="RA---TAN-SIP", CTYPE2="DEC--TAN-SIP",
             CRVAL1=ra, CRVAL2=dec, CRPIX1=NX / 2 + 10.5, CRPIX2=NY / 2 - 7.5,
             CD1_1=cd11, CD1_2=2e-6, CD2_1=1.5e-6, CD2_2=9.4e-5,
             A_ORDER=2, B_ORDER=2, A_2_0=4e-6, A_0_2=-2e-6, A_1_1=3e-6,
             B_2_0=-1e-6, B_0_2=5e-6, B_1_1=2e-6)
    return h


def _sep_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    return SkyCoord(ra1, dec1, unit="deg").separation(SkyCoord(ra2, dec2, unit="deg")).arcsec


def _signed_area_east_left(ra: np.ndarray, dec: np.ndarray) -> float:
    """Shoelace area in the tangent plane at the first vertex, east to the left."""
    centre = SkyCoord(ra[0], dec[0], unit="deg")
    off = SkyCoord(ra, dec, unit="deg").transform_to(centre.skyoffset_frame())
    x, y = -off.lon.deg, off.lat.deg
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


@pytest.mark.parametrize("cd11", [-9.4e-5, 9.4e-5])
def test_four_corners_are_astropy_calc_footprint(cd11: float) -> None:
    h = _header(cd11)
    expected = WCS(h).calc_footprint(h, undistort=True)  # (1,1), (1,NY), (NX,NY), (NX,1)
    if cd11 < 0:   # not mirrored: DaCHS's //siap#computePGS reverses astropy's order
        expected = expected[::-1]
    ra, dec = footprint(h)
    assert _sep_arcsec(ra, dec, expected[:, 0], expected[:, 1]).max() < 1e-6


@pytest.mark.parametrize("cd11", [-9.4e-5, 9.4e-5])
def test_footprint_winds_counter_clockwise_on_the_sky(cd11: float) -> None:
    for kwargs in ({}, {"samples": 8, "edges": True}):
        ra, dec = footprint(_header(cd11), **kwargs)
        assert _signed_area_east_left(ra, dec) > 0


def test_edge_footprint_follows_the_pixel_boundary() -> None:
    h = _header()
    ra, dec = footprint(h, samples=8, edges=True)
    assert ra.shape == dec.shape == (32,)
    x, y = WCS(h).all_world2pix(ra, dec, 0, tolerance=1e-10)
    on_x = np.isclose(x, -0.5, atol=1e-6) | np.isclose(x, NX - 0.5, atol=1e-6)
    on_y = np.isclose(y, -0.5, atol=1e-6) | np.isclose(y, NY - 0.5, atol=1e-6)
    assert (on_x | on_y).all()
    # 8 evenly spaced points per side, corners included once
    assert np.isclose(on_x & on_y, True).sum() == 4
    corners = WCS(h).pixel_to_world_values([NX - 0.5, NX - 0.5, -0.5, -0.5],
                                           [-0.5, NY - 0.5, NY - 0.5, -0.5])
    assert _sep_arcsec(ra[::8], dec[::8], *corners).max() < 1e-6


def test_ra_is_wrapped_into_0_360() -> None:
    ra, _ = footprint(_header(ra=0.001, dec=0.0), samples=4, edges=True)
    assert ((ra >= 0) & (ra < 360)).all()
    assert (ra > 359).any() and (ra < 1).any()


def test_celestial_images_skip_what_has_no_sky_wcs() -> None:
    hdul = fits.HDUList([
        fits.PrimaryHDU(),
        fits.ImageHDU(np.zeros((NY, NX), np.float32), _header()),
        fits.ImageHDU(np.zeros((4, 4), np.float32)),
        fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.zeros(3))]),
        fits.ImageHDU(np.zeros((NY, NX), np.float32), _header(ra=194.4)),
    ])
    assert [index for index, _ in celestial_images(hdul)] == [1, 4]


def test_enclosing_outline_of_two_detectors() -> None:
    left, right = _header(ra=194.30), _header(ra=194.38)
    feet = [footprint(left), footprint(right)]
    outline = enclosing_outline(feet)
    corners = np.concatenate([np.column_stack(f) for f in feet])
    # the hull's vertices are corners, and every corner is inside it or on it
    # (left of each side, counter-clockwise in the (east, north) tangent plane)
    assert 4 <= len(outline.hull) <= 8
    assert {tuple(v) for v in outline.hull} <= {tuple(c) for c in corners}
    frame = SkyCoord(outline.ra, outline.dec, unit="deg").skyoffset_frame()

    def plane(points: np.ndarray) -> np.ndarray:
        off = SkyCoord(points[:, 0], points[:, 1], unit="deg").transform_to(frame)
        return np.column_stack([off.lon.deg, off.lat.deg])

    hull, inner = plane(outline.hull), plane(corners)
    for a, b in zip(hull, np.roll(hull, -1, axis=0), strict=True):
        cross = (b[0] - a[0]) * (inner[:, 1] - a[1]) - (b[1] - a[1]) * (inner[:, 0] - a[0])
        assert (cross >= -1e-12).all()
    sep = _sep_arcsec(outline.ra, outline.dec, corners[:, 0], corners[:, 1])
    assert outline.radius * 3600 == pytest.approx(sep.max(), rel=1e-9)
    xyz = SkyCoord(corners[:, 0], corners[:, 1], unit="deg").cartesian.xyz.value.mean(axis=1)
    middle = SkyCoord(*xyz, representation_type="cartesian")
    assert _sep_arcsec(outline.ra, outline.dec, middle.spherical.lon.deg,
                       middle.spherical.lat.deg) < 1e-6

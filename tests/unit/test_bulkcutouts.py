# SPDX-License-Identifier: BSD-3-Clause
"""Bulk cutouts: SODA's geometry recomputed without DaCHS, and the upload's checks.

The truth for the geometry is DaCHS itself (this environment has it): the
polygon ``pgsphere.SCircle.asPoly`` draws around a SODA circle and the pixel
box ``coords.getPixelLimits`` takes of it, which the synchronous service cuts.
:func:`casuvo.imaging.cutout.circle_limits` must give the same box for circles
inside, across the edge of and off a TAN-SIP image.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from casuvo.dachs.bulkcutouts import BulkCutoutError, read_positions
from casuvo.dachs.limits import BULK_CUTOUTS
from casuvo.imaging import cutout
from casuvo.imaging.bulkcutouts import CutoutItem, cut_items, read_plan, write_plan

with warnings.catch_warnings():
    # DaCHS 2.7 imports sre_constants (deprecated in Python 3.11)
    warnings.simplefilter("ignore", DeprecationWarning)
    from gavo.base import coords
    from gavo.utils import pgsphere

NX, NY = 300, 200


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One TAN-SIP image extension with checksums, like a CASU product."""
    rng = np.random.default_rng(5)
    h = fits.Header()
    h.update({"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRPIX1": 150.3,
              "CRPIX2": 99.7, "CRVAL1": 194.01, "CRVAL2": -64.8,
              "CD1_1": -9.4e-5, "CD1_2": 5e-7, "CD2_1": 4e-7, "CD2_2": 9.4e-5,
              "A_ORDER": 2, "A_2_0": 1e-6, "A_0_2": 3e-7, "A_1_1": -5e-7,
              "B_ORDER": 2, "B_2_0": -2e-7, "B_0_2": -7e-7, "B_1_1": 6e-7})
    data = rng.normal(100, 10, (NY, NX)).astype(np.float32)
    path = tmp_path_factory.mktemp("bulk") / "b_st.fit"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, h)]).writeto(path, checksum=True)
    return path


@pytest.mark.parametrize(("ra", "dec", "radius"), [
    (194.01, -64.8, 0.003), (0.0, 0.0, 1.0), (359.9, 89.5, 0.7), (123.4, -89.99, 0.01),
    (45.0, 30.0, 1e-5)])
def test_polygon_is_dachs_polygon(ra: float, dec: float, radius: float) -> None:
    dachs = pgsphere.SCircle.fromDALI([ra, dec, radius]).asPoly().asCooPairs()
    ours = cutout.circle_polygon(ra, dec, radius)
    assert len(ours) == len(dachs) == 32
    for (a, d), (a2, d2) in zip(ours, dachs, strict=True):
        assert a == pytest.approx(a2, abs=1e-11) and d == pytest.approx(d2, abs=1e-11)


def _dachs_box(path: Path, ra: float, dec: float, radius: float
               ) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """What the SODA service cuts (casuvo.dachs.archive.cutout_limits' steps), or None."""
    header = fits.getheader(path, 1)
    wcs, _ = coords.getSkyWCS(header)
    poly = pgsphere.SCircle.fromDALI([ra, dec, radius]).asPoly()
    found = coords.getPixelLimits(poly.asCooPairs(), wcs)
    limits = {axis: (lo, hi) for axis, lo, hi in found}
    if any(lo == hi for lo, hi in limits.values()):
        return None
    return (cutout.axis_slice(NX, *limits.get(1, (None, None))),
            cutout.axis_slice(NY, *limits.get(2, (None, None))))


def test_pixel_box_is_sodas(image: Path) -> None:
    img = cutout.image_file(str(image), 1)
    wcs = cutout.sky_wcs(img.header)
    rng = np.random.default_rng(11)
    # centres on, near and off the image; radii from 1 px to more than the image
    px = rng.uniform(-120, NX + 120, 150)
    py = rng.uniform(-120, NY + 120, 150)
    radii = np.exp(rng.uniform(math.log(1e-4), math.log(0.05), 150))
    ras, decs = wcs.all_pix2world(px, py, 0)
    seen = {"inside": 0, "cropped": 0, "off": 0}
    for ra, dec, r in zip(ras, decs, radii, strict=True):
        ours = cutout.circle_limits(img, wcs, float(ra), float(dec), float(r))
        assert ours == _dachs_box(image, float(ra), float(dec), float(r))
        if ours is None:
            seen["off"] += 1
        elif ours[0][0] == 0 or ours[1][0] == 0 or ours[0][1] == NX or ours[1][1] == NY:
            seen["cropped"] += 1
        else:
            seen["inside"] += 1
    assert min(seen.values()) >= 10, seen


def test_cut_items_writes_sodas_bytes(image: Path, tmp_path: Path) -> None:
    img = cutout.image_file(str(image), 1)
    wcs = cutout.sky_wcs(img.header)
    ra, dec = (float(v) for v in wcs.all_pix2world(100.0, 80.0, 0))
    items = [CutoutItem(0, 0, ra, dec, 0.004, "test", "ivo://x?a/1", str(image), 1, "a.fits"),
             CutoutItem(1, 1, ra + 1, dec, 0.004, "test", "ivo://x?a/1", str(image), 1,
                        "b.fits")]
    write_plan(tmp_path / "plan", items)
    assert read_plan(tmp_path / "plan") == items
    got = cut_items(items, str(tmp_path))
    box = _dachs_box(image, ra, dec, 0.002)
    assert box is not None
    assert (tmp_path / "a.fits").read_bytes() == cutout.fits_bytes(cutout.cut(img, *box))
    assert (got[0].naxis1, got[0].naxis2) == (box[0][1] - box[0][0], box[1][1] - box[1][0])
    assert got[1].error == "the circle does not overlap the image"
    assert not (tmp_path / "b.fits").exists()


def test_positions_from_csv_and_votable() -> None:
    from astropy import units as u
    from astropy.io.votable import from_table, writeto
    from astropy.table import Table

    got = read_positions(b"ra,dec,size\n10.5,-20.25,0.01\n359.5,89,0.002\n")
    assert got.ra.tolist() == [10.5, 359.5] and got.dec.tolist() == [-20.25, 89.0]
    assert got.size.tolist() == [0.01, 0.002] and got.did is None
    table = Table({"RA": [1.0], "DEC": [2.0], "size": [36.0] * u.arcsec,
                   "obs_publisher_did": ["ivo://x?y/1"]})
    table["RA"].unit = table["DEC"].unit = u.deg
    buf = io.BytesIO()
    writeto(from_table(table), buf)
    got = read_positions(buf.getvalue())
    assert got.size[0] == pytest.approx(0.01) and got.did == ["ivo://x?y/1"]
    assert read_positions(b"ra,dec\n1,2\n").size[0] == pytest.approx(30 / 3600)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "the uploaded table is empty"),
    (b"x,y\n1,2\n", "needs columns ra and dec"),
    (b"ra,dec\n", "the table has no rows"),
    (b"ra,dec\n400,2\n", "row 0: ra must be in [0, 360)"),
    (b"ra,dec\n1,2\n1,-91\n", "row 1: dec must be in [-90, 90]"),
    (b"ra,dec\nnan,2\n", "row 0: ra must be"),
    (b"ra,dec,size\n1,2,0\n", "row 0: size must be in (0, 0.25]"),
    (b"ra,dec,size\n1,2,1\n", "row 0: size must be in (0, 0.25]"),
    (b"ra,dec\nabc,2\n", "column ra is not numeric"),
    (b"<VOTABLE><oops", "not a readable VOTable"),
    (b"ra,dec\n" + b"1,2\n" * (BULK_CUTOUTS.max_rows + 1), "split the table"),
])
def test_bad_positions_are_named(data: bytes, message: str) -> None:
    with pytest.raises(BulkCutoutError) as err:
        read_positions(data)
    assert str(err.value).startswith("positions:") and message in str(err.value)

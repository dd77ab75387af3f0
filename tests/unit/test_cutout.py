# SPDX-License-Identifier: BSD-3-Clause
"""casuvo.dachs.cutout on a small multi-extension file: pixels, headers, checksums, reads.

The truth is astropy reading the same file; the checksums are checked by
astropy's own verification (``fits.open(checksum=True)`` warns on a mismatch,
turned into an error here), and the reads are observed at ``os.preadv``.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from casuvo.dachs import cutout

NX, NY = 300, 200


@pytest.fixture(scope="module")
def mef(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two image extensions with TAN-SIP WCS and checksums, like a CASU product."""
    rng = np.random.default_rng(3)
    primary = fits.PrimaryHDU()
    primary.header["INSTRUME"] = "TESTCAM"
    hdus = [primary]
    for ext in (1, 2):
        data = rng.normal(100, 10, (NY, NX)).astype(np.float32)
        data[5, 7] = np.nan
        h = fits.Header()
        h.update({"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRPIX1": 150.3,
                  "CRPIX2": 99.7, "CRVAL1": 194.0 + ext * 0.01, "CRVAL2": -64.8,
                  "CD1_1": -9.4e-5, "CD1_2": 5e-7, "CD2_1": 4e-7, "CD2_2": 9.4e-5,
                  "A_ORDER": 2, "A_2_0": 1e-6, "A_0_2": 3e-7, "A_1_1": -5e-7,
                  "B_ORDER": 2, "B_2_0": -2e-7, "B_0_2": -7e-7, "B_1_1": 6e-7,
                  "EXTNAME": f"DET1.CHIP{ext}"})
        hdus.append(fits.ImageHDU(data, h))
    path = tmp_path_factory.mktemp("mef") / "t_st.fit"
    fits.HDUList(hdus).writeto(path, checksum=True)
    return path


def _open_checked(body: bytes) -> fits.HDUList:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hdul = fits.open(io.BytesIO(body), checksum=True)
        hdul.verify("exception")
    return hdul


@pytest.mark.parametrize(("x", "y"), [((10, 60), (20, 45)), ((0, NX), (50, 120)),
                                      ((299, 300), (0, 1)), ((0, NX), (0, NY))])
def test_cut_pixels_header_and_checksums(mef: Path, x: tuple[int, int],
                                         y: tuple[int, int]) -> None:
    image = cutout.image_file(str(mef), 2)
    cut = cutout.cut(image, x, y)
    body = b"".join(cut.parts)
    assert len(body) == cut.length and len(body) % 2880 == 0
    with fits.open(mef) as orig:
        full, full_header = orig[2].data, orig[2].header
        primary_header = orig[0].header
        hdul = _open_checked(body)
    assert len(hdul) == 2 and hdul[0].header == primary_header   # verbatim
    data, header = hdul[1].data, hdul[1].header
    np.testing.assert_array_equal(data, full[y[0]:y[1], x[0]:x[1]])
    assert data.dtype == full.dtype and cut.shape == data.shape
    assert header["CRPIX1"] == full_header["CRPIX1"] - x[0]
    assert header["CRPIX2"] == full_header["CRPIX2"] - y[0]
    # the same sky for the same pixel (SIP included), to far better than 0.01"
    xs = np.array([0, x[1] - x[0] - 1, (x[1] - x[0]) / 2])
    ys = np.array([0, y[1] - y[0] - 1, (y[1] - y[0]) / 3])
    a = WCS(header).pixel_to_world(xs, ys)
    b = WCS(full_header).pixel_to_world(xs + x[0], ys + y[0])
    assert a.separation(b).arcsec.max() < 1e-6
    assert header["DATASUM"] != full_header["DATASUM"] or (x, y) == ((0, NX), (0, NY))


def test_checksum_detects_a_changed_byte(mef: Path) -> None:
    image = cutout.image_file(str(mef), 1)
    body = bytearray(b"".join(cutout.cut(image, (3, 40), (3, 30)).parts))
    body[-2880 - 7] ^= 0x01                   # one bit of the pixels
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fits.open(io.BytesIO(bytes(body)), checksum=True) as hdul:
            _ = hdul[1].data
    assert any("checksum" in str(w.message).lower() for w in caught)


def test_reads_only_the_cutout_bytes(mef: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = cutout.image_file(str(mef), 2)
    reads: list[tuple[int, int]] = []
    real = os.preadv

    def record(fd: int, buffers: list, offset: int) -> int:
        reads.append((offset, sum(len(b) for b in buffers)))
        return real(fd, buffers, offset)

    monkeypatch.setattr(os, "preadv", record)
    x, y = (100, 160), (30, 70)
    cutout.read_pixels(image, x, y)
    assert sum(n for _, n in reads) == (x[1] - x[0]) * (y[1] - y[0]) * 4
    first_row = image.data_offset + y[0] * NX * 4
    last_row_end = image.data_offset + y[1] * NX * 4
    assert all(first_row <= off and off + n <= last_row_end for off, n in reads)
    reads.clear()
    cutout.read_pixels(image, (0, NX), y)             # whole rows: one read
    assert reads == [(first_row, (y[1] - y[0]) * NX * 4)]


def test_whole_image_streams_the_extension_verbatim(mef: Path) -> None:
    image = cutout.image_file(str(mef), 1)
    segments = cutout._Segments(cutout.whole_image(image))
    chunks = []
    while chunk := segments.read(1000):
        chunks.append(chunk)
    body = b"".join(chunks)
    assert len(body) == image.full_length
    with fits.open(mef) as orig:
        hdul = _open_checked(body)        # the file's own checksums still hold
        np.testing.assert_array_equal(hdul[1].data, orig[1].data)
        assert hdul[1].header["CHECKSUM"] == orig[1].header["CHECKSUM"]


def test_layout_cache_follows_the_file(mef: Path, tmp_path: Path) -> None:
    copy = tmp_path / "c.fit"
    copy.write_bytes(mef.read_bytes())
    first = cutout.image_file(str(copy), 1)
    assert cutout.image_file(str(copy), 1) is first          # cached
    with fits.open(copy, mode="update") as hdul:              # republished in place
        hdul[1].header["NEWKEY"] = 1
    assert cutout.image_file(str(copy), 1) is not first
    assert "NEWKEY" in cutout.image_file(str(copy), 1).header


@pytest.mark.parametrize(("length", "first", "last", "expected"), [
    (100, None, None, (0, 100)), (100, 11, 60, (10, 60)), (100, -5, 500, (0, 100)),
    (100, 60, 60, (59, 60)), (100, 150, 200, (99, 100)), (100, 0, 0, (0, 1))])
def test_axis_slice_clamps_as_dachs_does(length: int, first: int | None, last: int | None,
                                         expected: tuple[int, int]) -> None:
    assert cutout.axis_slice(length, first, last) == expected

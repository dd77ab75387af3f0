# SPDX-License-Identifier: BSD-3-Clause
"""The compute side of a bulk cutout job on Dask: files, progress, index and archive.

A plan over two image extensions of a synthetic product (and one circle off
the image) runs on the multi-process cluster of ``casuvo cluster up`` (a given
scheduler) and on a local cluster (none given); each file must hold the
image's pixels of the box SODA cuts, read back with astropy, with the
image's WCS moved by the box's origin, and both runs must write the same
bytes.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from casuvo.imaging import cutout
from casuvo.imaging.bulkcutouts import CutoutItem, run_bulk_cutouts

NX, NY = 400, 300


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(8)
    hdus = [fits.PrimaryHDU()]
    for ext in (1, 2):
        h = fits.Header()
        h.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 200.5,
                  "CRPIX2": 150.5, "CRVAL1": 120.0 + 0.04 * ext, "CRVAL2": -30.0,
                  "CD1_1": -9.4e-5, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 9.4e-5})
        data = rng.normal(0, 5, (NY, NX)).astype(np.float32)
        data[10:14, 20:25] = np.nan
        hdus.append(fits.ImageHDU(data, h))
    path = tmp_path_factory.mktemp("bulk") / "p_st.fit"
    fits.HDUList(hdus).writeto(path, checksum=True)
    return path


def _plan(product: Path) -> list[CutoutItem]:
    rng = np.random.default_rng(2)
    items = []
    for k in range(40):
        ext = 1 + k % 2
        wcs = WCS(fits.getheader(product, ext))
        ra, dec = wcs.all_pix2world(rng.uniform(-10, NX + 10), rng.uniform(-10, NY + 10), 0)
        items.append(CutoutItem(k, k // 2, float(ra), float(dec), float(rng.uniform(2e-3, 9e-3)),
                                "test", f"ivo://test?p/{ext}", str(product), ext,
                                f"cutout_{k:05d}.fits"))
    items.append(CutoutItem(40, 20, 10.0, 10.0, 0.01, "test", "ivo://test?p/1", str(product),
                            1, "cutout_00040.fits"))
    return items


def _check(out: Path, items: list[CutoutItem], summary: dict) -> dict[str, bytes]:
    assert summary["cutouts"] == 40 and summary["failed"] == 1
    progress = json.loads((out / "progress").read_text())
    assert progress["done"] == progress["total"] == 41
    index = list(csv.DictReader(io.StringIO((out / "index.csv").read_text())))
    assert [int(line["item"]) for line in index] == list(range(41))
    assert index[40]["error"] == "the circle does not overlap the image"
    files = {}
    for item, line in zip(items[:40], index[:40], strict=True):
        assert line["file"] == item.name and not line["error"]
        image = cutout.image_file(item.path, item.ext)
        box = cutout.circle_limits(image, cutout.sky_wcs(image.header), item.ra, item.dec,
                                   item.size / 2)
        assert box is not None
        (x0, x1), (y0, y1) = box
        body = (out / item.name).read_bytes()
        files[item.name] = body
        with fits.open(io.BytesIO(body), checksum=True) as got, \
                fits.open(item.path) as orig:
            np.testing.assert_array_equal(got[1].data, orig[item.ext].data[y0:y1, x0:x1])
            assert got[1].header["CRPIX1"] == orig[item.ext].header["CRPIX1"] - x0
            assert got[1].header["CRPIX2"] == orig[item.ext].header["CRPIX2"] - y0
            assert (int(line["naxis1"]), int(line["naxis2"])) == (x1 - x0, y1 - y0)
    with tarfile.open(out / "cutouts.tar") as tar:
        packed = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert packed.pop("index.csv") == (out / "index.csv").read_bytes()
    assert packed == files
    return files


def test_on_a_given_scheduler_and_on_a_local_cluster(product: Path, tmp_path: Path,
                                                     process_cluster: dict) -> None:
    items = _plan(product)
    seen: list[tuple[int, int]] = []
    on_cluster = run_bulk_cutouts(items, tmp_path / "a", tmp_path / "a" / "progress",
                                  scheduler=process_cluster["address"],
                                  on_progress=lambda done, total: seen.append((done, total)))
    first = _check(tmp_path / "a", items, on_cluster)
    assert [t for _, t in seen] == [41] * len(seen) and len(seen) >= 3
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] == 41
    local = run_bulk_cutouts(items, tmp_path / "b", tmp_path / "b" / "progress")
    assert _check(tmp_path / "b", items, local) == first

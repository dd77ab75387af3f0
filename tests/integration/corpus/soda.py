# SPDX-License-Identifier: BSD-3-Clause
"""SODA (DataLink ``dlget``) cases, for every ``soda`` service of the endpoints.

Bad input: IDs missing, empty, unknown, of another collection, with ``..``,
a NUL byte or a file path (NotFoundFault and 404 for a well-formed ID that
names nothing, UsageError and 400 for a malformed one); cutouts that cannot
exist: CIRCLE, POLYGON, POS and RA/DEC ranges that miss the image
(NoOverlap), NaN geometry, negative radii, latitudes beyond ±90, pixel
ranges reversed or outside the image, BAND and TIME on an image without
those axes, an unknown KIND.  Errors are SODA's text/plain documents.
Valid input: pixel ranges and circles (inside and across an edge) whose
pixels and WCS equal astropy's Cutout2D of the product file, the whole
image, and KIND=HEADER.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import requests
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS, FITSFixedWarning

from tests.integration.corpus import Case, qs
from tests.integration.corpus import _dal as dal

SERVICE = "soda"


def soda_error(kind: str, *names: str) -> Callable[[requests.Response], None]:
    """SODA's text/plain error document of ``kind`` mentioning one of ``names``."""

    def check(answer: requests.Response) -> None:
        assert answer.headers["content-type"].startswith("text/plain"), answer.headers
        assert answer.text.startswith(kind), answer.text[:300]
        assert any(n.lower() in answer.text.lower() for n in names), (names, answer.text)

    return check


def _fits(answer: requests.Response) -> fits.HDUList:
    assert answer.headers["content-type"] == "image/fits", answer.text[:300]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return fits.open(io.BytesIO(answer.content), checksum=True)


def is_cutout2d(image: dal.Image, must_hold: tuple[float, float, float] | None = None
                ) -> Callable[[requests.Response], None]:
    """The answer's pixels and WCS equal Cutout2D of the file on the same box.

    The box is where the cutout's reference pixel puts it in the file; with
    ``must_hold`` = (x, y, r) in 0-based pixels, the box must also hold the
    part of that circle's bounding box that lies on the image.
    """

    def check(answer: requests.Response) -> None:
        with _fits(answer) as got, fits.open(image.path) as orig:
            data, header = got[1].data, got[1].header
            full = orig[image.ext].data
            full_header = orig[image.ext].header
        x0 = round(full_header["CRPIX1"] - header["CRPIX1"])
        y0 = round(full_header["CRPIX2"] - header["CRPIX2"])
        ny, nx = data.shape
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            reference = Cutout2D(full, ((2 * x0 + nx - 1) / 2, (2 * y0 + ny - 1) / 2),
                                 (ny, nx), wcs=WCS(full_header), mode="strict")
        assert reference.origin_original == (x0, y0)
        np.testing.assert_array_equal(data, reference.data)
        assert np.allclose(WCS(header).wcs.crpix, reference.wcs.wcs.crpix, atol=1e-9)
        if must_hold is not None:
            x, y, r = must_hold
            fy, fx = full.shape
            assert x0 <= max(0, x - r) + 1 and x0 + nx >= min(fx, x + r + 1) - 1
            assert y0 <= max(0, y - r) + 1 and y0 + ny >= min(fy, y + r + 1) - 1

    return check


def is_whole(image: dal.Image) -> Callable[[requests.Response], None]:
    def check(answer: requests.Response) -> None:
        with _fits(answer) as got, fits.open(image.path) as orig:
            np.testing.assert_array_equal(got[1].data, orig[image.ext].data)
            assert got[1].header == orig[image.ext].header

    return check


def header_of(nx: int, ny: int) -> Callable[[requests.Response], None]:
    def check(answer: requests.Response) -> None:
        header = fits.Header.fromstring(answer.content)
        assert (header["NAXIS1"], header["NAXIS2"]) == (nx, ny)

    return check


def _bad(schema: str, url: str, other: str | None) -> Iterator[Case]:
    image = dal.sample_image(schema, "pawprint")
    did, (ra, dec) = image.did, image.centre()
    ny, nx = image.shape
    prefix, _, accref = did.partition("?")
    for label, bad_id in (("id-unknown-extension", did.rsplit("/", 1)[0] + "/99"),
                          ("id-unknown-file", did.replace("_st.fit", "_xx.fit")),
                          ("id-dotdot", f"{prefix}?{accref.split('/')[0]}/{schema}/../../"
                                        "../../etc/passwd/1"),
                          ("id-file-path", "/etc/passwd"),
                          ("id-foreign", "ivo://elsewhere.example/data?x/1"),
                          ("id-unicode", f"{prefix}?products/{schema}/ünïcødé ✓.fit/1")):
        yield Case(SERVICE, label, url, qs(("ID", bad_id), ("CIRCLE", f"{ra} {dec} 0.01")),
                   status=404, check=soda_error("NotFoundFault", "not"))
    if other:
        yield Case(SERVICE, "id-other-collection", url, qs(("ID", other)), status=404,
                   check=soda_error("NotFoundFault", "not"))
    yield Case(SERVICE, "id-missing", url, qs(("CIRCLE", f"{ra} {dec} 0.01")),
               check=soda_error("UsageError", "ID"))
    yield Case(SERVICE, "id-empty", url, qs(("ID", "")), check=soda_error("UsageError", "ID"))
    yield Case(SERVICE, "id-nul", url, qs(("ID", did[:-2] + "\0" + did[-2:])),
               check=soda_error("UsageError", "ID"))
    off = (ra + 30) % 360
    for name, value, label, text in (
            ("CIRCLE", f"{off} {dec} 0.01", "circle-off-image", "NoOverlap"),
            ("POLYGON", f"{off} {dec} {off + 0.01} {dec} {off} {dec + 0.01}",
             "polygon-off-image", "NoOverlap"),
            ("POS", f"CIRCLE {off} {dec} 0.01", "pos-circle-off-image", "NoOverlap"),
            ("POS", f"RANGE {off} {off + 0.01} {dec} {dec + 0.01}", "pos-range-off-image",
             "NoOverlap"),
            ("POS", f"POLYGON {off} {dec} {off + 0.01} {dec} {off} {dec + 0.01}",
             "pos-polygon-off-image", "NoOverlap"),
            ("RA", f"{off} {off + 0.01}", "ra-off-image", "NoOverlap"),
            ("DEC", f"{dec + 5} {dec + 6}", "dec-off-image", "NoOverlap"),
            ("CIRCLE", f"nan {dec} 0.01", "circle-nan-ra", "CIRCLE"),
            ("CIRCLE", f"{ra} NaN 0.01", "circle-nan-dec", "CIRCLE"),
            ("CIRCLE", f"{ra} {dec} nan", "circle-nan-radius", "CIRCLE"),
            ("CIRCLE", f"{ra} {dec} inf", "circle-inf-radius", "CIRCLE"),
            ("CIRCLE", f"{ra} {dec} -0.01", "circle-negative-radius", "radius"),
            ("CIRCLE", f"{ra} 95 0.01", "circle-beyond-pole", "CIRCLE"),
            ("CIRCLE", f"{ra} {dec}", "circle-two-numbers", "CIRCLE"),
            ("POLYGON", f"{ra} {dec} {ra + 0.01} nan {ra} {dec + 0.01}", "polygon-nan",
             "POLYGON"),
            ("POLYGON", f"{ra} {dec} {ra + 0.01} {dec}", "polygon-two-points", "POLYGON"),
            ("POS", f"CIRCLE nan {dec} 0.01", "pos-circle-nan", "POS"),
            ("POS", f"CIRCLE {ra} {dec} -1", "pos-circle-negative-radius", "radius"),
            ("POS", f"CIRCLE {ra} 91 0.1", "pos-circle-beyond-pole", "POS"),
            ("POS", "", "pos-empty", "POS"), ("CIRCLE", " ", "circle-blank", "CIRCLE"),
            ("POS", "BOX 1 2 3 4", "pos-unknown-shape", "POS"),
            ("RA", f"{ra + 0.01} {ra - 0.01}", "ra-reversed", "RA"),
            ("DEC", f"nan {dec}", "dec-nan", "DEC"),
            ("PIXEL_1", "20 10", "pixel1-reversed", "PIXEL_1"),
            ("PIXEL_2", "40 20", "pixel2-reversed", "PIXEL_2"),
            ("PIXEL_1", "0 10", "pixel1-below-1", "PIXEL_1"),
            ("PIXEL_2", "-5 3", "pixel2-negative", "PIXEL_2"),
            ("PIXEL_1", f"1 {nx + 1}", "pixel1-beyond-width", "PIXEL_1"),
            ("PIXEL_2", f"{ny + 10} {ny + 20}", "pixel2-outside", "PIXEL_2"),
            ("PIXEL_1", "1.5 3", "pixel1-fraction", "PIXEL_1"),
            ("PIXEL_1", "5", "pixel1-one-number", "PIXEL_1"),
            ("BAND", "1e-6 2e-6", "band-no-spectral-axis", "band"),
            ("TIME", "55000 56000", "time-no-time-axis", "time"),
            ("POL", "I", "pol-no-polarisation-axis", "pol"),
            ("KIND", "FOO", "kind-unknown", "KIND")):
        yield Case(SERVICE, label, url, qs(("ID", did), (name, value)),
                   check=soda_error("UsageError", text))
    yield Case(SERVICE, "circle-and-pos", url,
               qs(("ID", did), ("CIRCLE", f"{ra} {dec} 0.01"), ("POS", f"CIRCLE {ra} {dec} 0.01")),
               check=soda_error("UsageError", "POS"))


def _valid(schema: str, url: str) -> Iterator[Case]:
    for imagetype in ("pawprint", "tile"):
        image = dal.sample_image(schema, imagetype)
        ny, nx = image.shape
        did = image.did
        yield Case(SERVICE, f"{imagetype}-pixels", url,
                   qs(("ID", did), ("PIXEL_1", "11 61"), ("PIXEL_2", "21 40")), status=200,
                   check=is_cutout2d(image))
        yield Case(SERVICE, f"{imagetype}-pixels-full-range", url,
                   qs(("ID", did), ("PIXEL_1", f"1 {nx}"), ("PIXEL_2", f"{ny - 9} {ny}")),
                   status=200, check=is_cutout2d(image))
        x, y = (nx - 1) / 2 - 7.3, (ny - 1) / 2 + 4.6
        ra, dec = (float(v) for v in image.wcs.all_pix2world(x, y, 0))
        radius = 0.002
        r_px = radius / image.scale()
        yield Case(SERVICE, f"{imagetype}-circle", url,
                   qs(("ID", did), ("CIRCLE", f"{ra!r} {dec!r} {radius}")), status=200,
                   check=is_cutout2d(image, (x, y, r_px)))
        yield Case(SERVICE, f"{imagetype}-pos-circle", url,
                   qs(("ID", did), ("POS", f"CIRCLE {ra!r} {dec!r} {radius}")), status=200,
                   check=is_cutout2d(image, (x, y, r_px)))
        # a circle across the image's left edge: the part on the image
        ex, ey = 3.0, (ny - 1) / 2
        era, edec = (float(v) for v in image.wcs.all_pix2world(ex, ey, 0))
        yield Case(SERVICE, f"{imagetype}-circle-across-edge", url,
                   qs(("ID", did), ("CIRCLE", f"{era!r} {edec!r} {radius}")), status=200,
                   check=is_cutout2d(image, (ex, ey, r_px)))
    image = dal.sample_image(schema, "pawprint")
    yield Case(SERVICE, "whole-image", url, qs(("ID", image.did)), status=200,
               check=is_whole(image))
    yield Case(SERVICE, "kind-header", url,
               qs(("ID", image.did), ("KIND", "HEADER"), ("PIXEL_1", "11 60"),
                  ("PIXEL_2", "21 40")), status=200, check=header_of(50, 20))


def cases(endpoints: dict) -> Iterator[Case]:
    services = sorted((schema, url) for schema, url in endpoints.get("soda", {}).items()
                      if schema in dal.image_schemas())
    for schema, url in services:
        others = [s for s, _ in services if s != schema]
        other = dal.sample_image(others[0], "pawprint").did if others else None
        yield from _bad(schema, url, other)
        yield from _valid(schema, url)

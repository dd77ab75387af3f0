# SPDX-License-Identifier: BSD-3-Clause
"""SODA cutouts (casuvo.dachs.cutout) against the product files read with astropy.

Requests go through pyvo's SODA query built from the DataLink service
descriptor, as a client does; each cutout must hold exactly the file's pixels
(NaN included), carry a WCS that puts every pixel where the file's WCS puts
it (within 0.01″), valid checksums, and come without content encoding.
Usage errors keep SODA's error documents.
"""

from __future__ import annotations

import io
import urllib.parse
import warnings

import numpy as np
import psycopg
import pytest
import pyvo
import requests
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from pyvo.dal.adhoc import SodaQuery

from casuvo.config import Settings

pytestmark = pytest.mark.integration

warnings.filterwarnings("ignore", category=FITSFixedWarning)


def _image(settings: Settings, survey: str, imagetype: str) -> tuple[str, str, int]:
    """(ID, product path, extension): a late extension of a pawprint, or a tile."""
    with psycopg.connect(settings.dsn) as conn:
        did, accref = conn.execute(
            f"SELECT obs_publisher_did, accref FROM {survey}.images WHERE imagetype = %s"
            " ORDER BY extnum DESC, accref LIMIT 1", (imagetype,)).fetchone()
    rel, ext = accref.rsplit("/", 1)
    return did, str(settings.data_dir / rel), int(ext)


def _soda(endpoints: dict, survey: str, did: str) -> tuple[object, object]:
    url = endpoints["datalink"][survey] + "?ID=" + urllib.parse.quote(did)
    links = pyvo.dal.adhoc.DatalinkResults.from_result_url(url)
    row = next(r for r in links if r.semantics == "#cutout")
    return row, links.get_adhocservice_by_id(row.service_def)


def _checked(body: bytes) -> fits.HDUList:
    """The response as FITS; astropy's checksum and standard checks must pass."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=FITSFixedWarning)
        hdul = fits.open(io.BytesIO(body), checksum=True)
        hdul.verify("exception")
    return hdul


@pytest.mark.parametrize(("survey", "imagetype"), [
    ("vista", "pawprint"), ("vista", "tile"), ("vst", "pawprint"), ("vst", "tile")])
def test_cutout_is_the_files_pixels_and_wcs(survey: str, imagetype: str, endpoints: dict,
                                            settings: Settings) -> None:
    did, path, ext = _image(settings, survey, imagetype)
    record, service = _soda(endpoints, survey, did)
    with fits.open(path) as orig:
        full, full_header, primary = orig[ext].data, orig[ext].header, orig[0].header
    full_wcs = WCS(full_header)
    ny_full, nx_full = full.shape
    rng = np.random.default_rng(41)
    # 0.1′ radius: inside a 256-px OmegaCAM detector; positions 40 px from the edges
    for px, py in zip(rng.uniform(40, nx_full - 41, 3), rng.uniform(40, ny_full - 41, 3),
                      strict=True):
        ra, dec = full_wcs.pixel_to_world_values(px, py)
        query = SodaQuery.from_resource(record, service, circle=(float(ra), float(dec),
                                                                 0.1 / 60))
        r = requests.get(query.baseurl, params=dict(query.items()), timeout=60,
                         headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200, r.text[:300]
        # sent as it is: no gzip of float pixels, an exact length
        assert "content-encoding" not in r.headers
        assert int(r.headers["content-length"]) == len(r.content)
        assert r.headers["content-type"] == "image/fits"
        with _checked(r.content) as cut:
            assert len(cut) == 2 and cut[0].header == primary
            data, header = cut[1].data, cut[1].header
        # its place in the file: the reference pixel moved by a whole number of pixels
        dx = full_header["CRPIX1"] - header["CRPIX1"]
        dy = full_header["CRPIX2"] - header["CRPIX2"]
        x0, y0 = round(dx), round(dy)
        assert abs(dx - x0) < 1e-9 and abs(dy - y0) < 1e-9
        ny, nx = data.shape
        assert 20 <= nx <= 60 and 20 <= ny <= 60      # 12″ across at 0.21–0.34″/px
        np.testing.assert_array_equal(data, full[y0:y0 + ny, x0:x0 + nx])
        assert data.dtype == full.dtype
        # every sampled pixel on the sky where the file puts it, within 0.01″
        xs = np.array([0, nx - 1, nx / 2, 3.3])
        ys = np.array([0, ny - 1, ny / 3, ny - 2.7])
        a = WCS(header).pixel_to_world(xs, ys)
        b = full_wcs.pixel_to_world(xs + x0, ys + y0)
        assert a.separation(b).arcsec.max() < 0.01
        # and the requested centre lies in the middle of the cutout
        cx, cy = WCS(header).world_to_pixel_values(ra, dec)
        assert abs(cx - (nx - 1) / 2) < 1.5 and abs(cy - (ny - 1) / 2) < 1.5


def test_whole_image_and_its_declared_length(endpoints: dict, settings: Settings) -> None:
    did, path, ext = _image(settings, "vista", "pawprint")
    url = endpoints["datalink"]["vista"] + "?ID=" + urllib.parse.quote(did)
    links = pyvo.dal.adhoc.DatalinkResults.from_result_url(url)
    this = next(r for r in links if r.semantics == "#this")
    r = requests.get(this.access_url, timeout=60)
    assert r.status_code == 200
    assert int(this.content_length) == len(r.content) == int(r.headers["content-length"])
    with _checked(r.content) as got, fits.open(path) as orig:
        np.testing.assert_array_equal(got[1].data, orig[ext].data)
        assert got[1].header == orig[ext].header       # verbatim, checksums included


def test_kind_header_is_the_cutout_header(endpoints: dict, settings: Settings) -> None:
    did, path, ext = _image(settings, "vista", "pawprint")
    r = requests.get(endpoints["soda"]["vista"], params={
        "ID": did, "KIND": "HEADER", "PIXEL_1": "11 60", "PIXEL_2": "21 40"}, timeout=60)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fits-header")
    header = fits.Header.fromstring(r.content)
    full = fits.getheader(path, ext)
    assert (header["NAXIS1"], header["NAXIS2"]) == (50, 20)
    assert header["CRPIX1"] == pytest.approx(full["CRPIX1"] - 10, abs=1e-9)
    assert header["CRPIX2"] == pytest.approx(full["CRPIX2"] - 20, abs=1e-9)


def test_declared_parameters(endpoints: dict, settings: Settings) -> None:
    did, path, ext = _image(settings, "vst", "pawprint")
    _, service = _soda(endpoints, "vst", did)
    params = {p.name: p for p in service.params}
    inputs = {p.name: p for p in service.groups[0].entries}
    assert params["standardID"].value.lower() == "ivo://ivoa.net/std/soda#sync-1.0"
    assert {"ID", "RA", "DEC", "POS", "CIRCLE", "POLYGON", "PIXEL_1", "PIXEL_2",
            "KIND"} <= set(inputs)
    header = fits.getheader(path, ext)
    # astropy reads an int[2] interval's one-number MAX as its first element
    assert np.ravel(inputs["PIXEL_1"].values.max)[0] == header["NAXIS1"]
    assert np.ravel(inputs["PIXEL_2"].values.max)[0] == header["NAXIS2"]


@pytest.mark.parametrize(("params", "status", "text"), [
    ({"CIRCLE": "10 10 0.01"}, 400, "NoOverlap"),                     # off the image
    ({"POS": "CIRCLE 10 10 0.01"}, 400, "NoOverlap"),
    ({"CIRCLE": "CENTRE -0.1"}, 400, "CIRCLE"),
    ({"CIRCLE": "{ra} {dec} -0.01"}, 400, "radius"),                  # negative radius
    ({"POS": "CIRCLE {ra} {dec} 0"}, 400, "radius"),
    ({"CIRCLE": "{ra} {dec} 0.01", "POS": "CIRCLE {ra} {dec} 0.01"}, 400, "POS"),
    ({"CIRCLE": "{ra} {dec} 0.01", "PIXEL_1": "1 10"}, 400, "PIXEL_1"),
    ({"PIXEL_2": "40 20"}, 400, "PIXEL_2"),
    ({"SCALE": "2"}, 400, "scale"),
])
def test_bad_input_gets_sodas_error(params: dict, status: int, text: str, endpoints: dict,
                                    settings: Settings) -> None:
    did, path, ext = _image(settings, "vista", "pawprint")
    ra, dec = WCS(fits.getheader(path, ext)).pixel_to_world_values(200, 200)
    params = {k: v.format(ra=float(ra), dec=float(dec)) for k, v in params.items()}
    r = requests.get(endpoints["soda"]["vista"], params={"ID": did, **params}, timeout=60)
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith("UsageError") and text in r.text and "Traceback" not in r.text


def test_unknown_id_gets_not_found(endpoints: dict, settings: Settings) -> None:
    did, _, _ = _image(settings, "vista", "pawprint")
    for bad in (did.rsplit("/", 1)[0] + "/99", did.replace("_st.fit", "_xx.fit"),
                "ivo://elsewhere.example/data?x", did.replace("products/vista", "products/vst")):
        r = requests.get(endpoints["soda"]["vista"],
                         params={"ID": bad, "CIRCLE": "194.5 -64.6 0.01"}, timeout=60)
        assert r.status_code == 404, (bad, r.status_code, r.text[:200])
        assert r.text.startswith("NotFoundFault")

# SPDX-License-Identifier: BSD-3-Clause
"""The image archives through the clients astronomers use: pyvo SIA2/SIA1, DataLink, SODA.

The truth is the product files themselves: an image contains a position when
the position falls on its pixel grid according to the file's own WCS (with its
SIP distortion).  Positions are drawn away from every image edge (more than
``EDGE_MARGIN_PIX`` pixels), so the archive's four-corner footprints must
answer exactly.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import subprocess
import urllib.parse
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import psycopg
import pytest
import pyvo
import requests
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.nddata import Cutout2D
from astropy.time import Time
from astropy.wcs import WCS, FITSFixedWarning

from casuvo.config import Settings

pytestmark = pytest.mark.integration

EDGE_MARGIN_PIX = 15.0
SURVEYS = ("vista", "vst")
DID_PREFIX = "~?"

warnings.filterwarnings("ignore", category=FITSFixedWarning)


@cache
def _image_grid(path: Path) -> list[tuple[int, WCS, int, int]]:
    """(extension, WCS, nx, ny) of every image extension of a product file."""
    out = []
    with fits.open(path) as hdul:
        for ext, hdu in enumerate(hdul[1:], start=1):
            h = hdu.header
            out.append((ext, WCS(h), int(h["NAXIS1"]), int(h["NAXIS2"])))
    return out


def footprint_truth(settings: Settings, files: list[Path], ra: float, dec: float
                    ) -> tuple[set[str], set[str]]:
    """(accrefs of images containing the position, accrefs of images too close to call)."""
    inside, close = set(), set()
    base = settings.data_dir
    for path in files:
        rel = path.relative_to(base).as_posix()
        for ext, wcs, nx, ny in _image_grid(path):
            cra, cdec = wcs.wcs.crval
            cos_sep = (np.sin(np.radians(dec)) * np.sin(np.radians(cdec)) + np.cos(
                np.radians(dec)) * np.cos(np.radians(cdec)) * np.cos(np.radians(ra - cra)))
            if cos_sep < np.cos(np.radians(1.0)):   # another field: no need to project
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                x, y = wcs.world_to_pixel_values(ra, dec)
            depth = min(x + 0.5, nx - 0.5 - x, y + 0.5, ny - 0.5 - y)
            if depth > EDGE_MARGIN_PIX:
                inside.add(f"{rel}/{ext}")
            elif depth > -EDGE_MARGIN_PIX:
                close.add(f"{rel}/{ext}")
    return inside, close


def accref_of(did: str) -> str:
    return did.split(DID_PREFIX, 1)[1]


@pytest.fixture(scope="module")
def test_positions(settings: Settings, image_products: dict[str, list[Path]]
                   ) -> dict[str, list[tuple[float, float, set[str]]]]:
    """Per survey, six positions with their true image sets (none close to an edge)."""
    rng = np.random.default_rng(5189)
    out: dict[str, list[tuple[float, float, set[str]]]] = {}
    for survey in SURVEYS:
        files = image_products[survey]
        centres = []
        for path in files[:: max(1, len(files) // 12)]:
            for _ext, wcs, nx, ny in _image_grid(path)[:: 5]:
                centres.append(wcs.pixel_to_world_values(
                    rng.uniform(0, nx - 1), rng.uniform(0, ny - 1)))
        found: list[tuple[float, float, set[str]]] = []
        for ra, dec in centres:
            inside, close = footprint_truth(settings, files, float(ra), float(dec))
            if inside and not close:
                found.append((float(ra), float(dec), inside))
            if len(found) == 6:
                break
        assert len(found) >= 4, f"too few clean test positions in {survey}"
        out[survey] = found
    return out


@pytest.mark.parametrize("survey", SURVEYS)
def test_sia2_matches_footprint_truth(survey: str, endpoints: dict, test_positions) -> None:
    service = pyvo.dal.SIA2Service(endpoints["sia"][survey], check_baseurl=False)
    for ra, dec, truth in test_positions[survey]:
        result = service.search(pos=(ra, dec, 1e-4), maxrec=1000)
        got = {accref_of(str(did)) for did in result["obs_publisher_did"]}
        assert got == truth, f"{survey} at ({ra:.5f}, {dec:.5f})"
        assert set(result["dataproduct_type"]) == {"image"}


@pytest.mark.parametrize("survey", SURVEYS)
def test_sia1_matches_sia2(survey: str, endpoints: dict, test_positions) -> None:
    service = pyvo.dal.SIAService(endpoints["sia1"][survey])
    for ra, dec, truth in test_positions[survey][:3]:
        result = service.search(pos=(ra, dec), size=2e-4)
        got = {accref_of(str(did)) for did in result.to_table()["obs_publisher_did"]}
        assert got == truth


def test_sia2_band_time_collection(endpoints: dict, settings: Settings) -> None:
    url = endpoints["sia"]["vista"]
    service = pyvo.dal.SIA2Service(url, check_baseurl=False)
    everything = service.search(pos=(194.30, -64.75, 1.0), maxrec=10000).to_table()
    with psycopg.connect(settings.dsn) as conn:
        n_images = conn.execute("SELECT count(*) FROM vista.images").fetchone()[0]
        nights = [r[0] for r in conn.execute(
            "SELECT DISTINCT nightobs FROM vista.images ORDER BY 1")]
        second = conn.execute("SELECT min(mjdobs), max(mjdend) FROM vista.images"
                              " WHERE nightobs = %s", (nights[-1],)).fetchone()
    assert len(everything) == n_images
    # J is 1.166-1.338 um: a band inside it selects J images only
    j_only = service.search(pos=(194.30, -64.75, 1.0), band=(1.24e-6, 1.26e-6),
                            maxrec=10000).to_table()
    assert len(j_only) and set(j_only["em_min"].round(9)) == {1.166e-6}
    assert len(j_only) == sum(np.isclose(everything["em_min"], 1.166e-6))
    night2 = service.search(pos=(194.30, -64.75, 1.0),
                            time=(Time(second[0], format="mjd"),
                                  Time(second[1], format="mjd")),
                            maxrec=10000).to_table()
    assert len(night2) and all(second[0] - 1e-6 <= t <= second[1] + 1e-6
                                for t in night2["t_min"])
    assert len(night2) < len(everything)
    assert len(service.search(pos=(194.30, -64.75, 1.0), collection="VVV",
                              maxrec=10000)) == n_images
    assert len(service.search(pos=(194.30, -64.75, 1.0), collection="VPHAS+")) == 0


def test_obscore_has_every_product(settings: Settings, image_products) -> None:
    with psycopg.connect(settings.dsn) as conn:
        rows = dict(conn.execute(
            "SELECT source_table || ':' || dataproduct_type, count(*) FROM ivoa.obscore"
            " WHERE obs_collection IN ('VVV', 'VPHAS+') GROUP BY 1").fetchall())
        no_region = conn.execute(
            "SELECT count(*) FROM ivoa.obscore WHERE obs_collection IN ('VVV', 'VPHAS+')"
            " AND (s_region IS NULL OR t_min IS NULL OR em_min IS NULL OR access_url IS NULL"
            " OR obs_publisher_did IS NULL OR calib_level IS NULL)").fetchone()[0]
    for survey in SURVEYS:
        files = image_products[survey]
        n_images = sum(len(_image_grid(p)) for p in files)
        assert rows[f"{survey}.images:image"] == n_images
        assert rows[f"{survey}.ancillary:image"] == len(files)          # confidence maps
        assert rows[f"{survey}.ancillary:measurements"] == len(files)   # catalogues
    assert no_region == 0


def _datalink(endpoints: dict, survey: str, did: str) -> pyvo.dal.adhoc.DatalinkResults:
    url = endpoints["datalink"][survey] + "?ID=" + urllib.parse.quote(did)
    return pyvo.dal.adhoc.DatalinkResults.from_result_url(url)


def _a_tile(settings: Settings, survey: str) -> tuple[str, str, int]:
    with psycopg.connect(settings.dsn) as conn:
        return conn.execute(
            f"SELECT obs_publisher_did, filename, extnum FROM {survey}.images"
            " WHERE imagetype = 'tile' ORDER BY filename LIMIT 1").fetchone()


def test_datalink_of_a_tile(endpoints: dict, settings: Settings) -> None:
    did, filename, _ = _a_tile(settings, "vista")
    links = _datalink(endpoints, "vista", did).to_table()
    by_sem: dict[str, list] = {}
    for row in links:
        by_sem.setdefault(str(row["semantics"]), []).append(row)
    assert {"#this", "#preview", "#cutout", "#auxiliary", "#progenitor"} <= set(by_sem)
    local = {str(r["local_semantics"]) for r in by_sem["#auxiliary"]}
    assert {"confidence-map", "source-catalogue", "provenance", "product-file"} <= local
    product = next(settings.data_dir.glob(f"products/vista/*/{filename}"))
    prov = [v for k, v in fits.getheader(product, 0).items() if k.startswith("PROV")]
    assert len(by_sem["#progenitor"]) == len(prov) == 6
    # the files behind the links are what they say
    this = requests.get(by_sem["#this"][0]["access_url"], timeout=60)
    assert this.status_code == 200
    with fits.open(io.BytesIO(this.content)) as hdul, fits.open(product) as orig:
        assert len(hdul) == 2
        np.testing.assert_array_equal(hdul[1].data, orig[1].data)
    preview = requests.get(by_sem["#preview"][0]["access_url"], timeout=60)
    assert preview.content[:8] == b"\x89PNG\r\n\x1a\n"
    # provenance: the tile's processing record (latest first) names as inputs exactly
    # the stacks of its PROVn keywords ...
    record = next(r for r in by_sem["#auxiliary"] if r["local_semantics"] == "provenance")
    table = pyvo.dal.DALResults.from_result_url(str(record["access_url"])).to_table()
    assert len(table) >= 1 and set(table["product"]) == {filename}
    inputs = json.loads(str(table["inputs"][0]))
    assert {Path(f) for f in inputs} == {product.parent / name for name in prov}
    # ... and a stack's record its raw exposures (its PROVn), each with its SHA-256
    stack = product.parent / prov[0]
    raws = json.loads(str(pyvo.dal.TAPService(endpoints["tap"]).run_sync(
        f"SELECT inputs FROM vista.processing WHERE product = '{stack.name}'"
        " ORDER BY finished DESC")["inputs"][0]))
    assert sorted(Path(f).name for f in raws) == sorted(
        v for k, v in fits.getheader(stack, 0).items() if k.startswith("PROV"))
    for path, sha256 in raws.items():
        assert sha256 == hashlib.sha256(Path(path).read_bytes()).hexdigest(), path


def test_datalinklint_and_votlint(endpoints: dict, settings: Settings, tmp_path) -> None:
    did, _, _ = _a_tile(settings, "vista")
    url = endpoints["datalink"]["vista"] + "?ID=" + urllib.parse.quote(did)
    out = subprocess.run(["stilts", "datalinklint", f"votable={url}"], capture_output=True,
                         text=True, timeout=300).stdout
    assert "Totals: Errors: 0;" in out, out[-3000:]
    responses = {
        "sia2": endpoints["sia"]["vista"] + "?POS=CIRCLE+194.3+-64.75+0.05",
        "sia1": endpoints["sia1"]["vst"] + "?POS=203.3875,-65.9741&SIZE=0.05",
        "scs": endpoints["scs"]["gaia.sources"] + "?RA=194.3&DEC=-64.75&SR=0.01",
        "datalink": url,
    }
    polygon_bug = _votlint_misreads_binary_polygons(tmp_path)
    for name, response_url in responses.items():
        path = tmp_path / f"{name}.xml"
        content = requests.get(response_url, timeout=120).content
        if name == "sia1":
            # SIA1's coverage is a DALI polygon (double[*], xtype polygon); check it by value
            table = parse_single_table(io.BytesIO(content)).to_table()
            assert len(table) > 10
            assert all(len(c) >= 6 and len(c) % 2 == 0 for c in table["coverage"])
            if polygon_bug:
                content = content.replace(b' xtype="polygon"', b"")
        path.write_bytes(content)
        errors = _votlint_errors(path)
        assert not errors, f"votlint on {name}:\n" + "\n".join(errors[:20])


def _votlint_errors(path: Path) -> list[str]:
    proc = subprocess.run(["stilts", "votlint", f"votable={path}"], capture_output=True,
                          text=True, timeout=300)
    return [line for line in (proc.stdout + proc.stderr).splitlines()
            if line.startswith("ERROR")]


def _votlint_misreads_binary_polygons(tmp_path: Path) -> bool:
    """True for votlints (STILTS 3.4.7) that read no elements of a BINARY polygon[*].

    Their polygon parser reads the element count and then loops to the declared
    arraysize (-1 for ``*``), so the coordinates are misread as the next fields; a
    two-row table that STILTS itself writes shows it.  Newer STILTS read the count.
    """
    rows = b""
    for poly, label in (((1.0, 2, 3, 4, 5, 6), b"a"), ((7.0, 8, 9, 1, 2, 3, 4, 5), b"b")):
        rows += struct.pack(f">i{len(poly)}d", len(poly), *poly)
        rows += struct.pack(">i", len(label)) + label
    probe = tmp_path / "polygon-probe.xml"
    probe.write_text(
        '<?xml version="1.0"?><VOTABLE version="1.4" '
        'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
        '<FIELD name="poly" datatype="double" arraysize="*" xtype="polygon" unit="deg"/>'
        '<FIELD name="s" datatype="char" arraysize="*"/><DATA><BINARY>'
        f'<STREAM encoding="base64">{base64.b64encode(rows).decode()}</STREAM>'
        "</BINARY></DATA></TABLE></RESOURCE></VOTABLE>")
    return bool(_votlint_errors(probe))


@pytest.mark.parametrize("survey", SURVEYS)
def test_soda_cutout_equals_cutout2d(survey: str, endpoints: dict, settings: Settings,
                                     test_positions) -> None:
    for ra, dec, truth in test_positions[survey][:3]:
        accref = sorted(truth)[0]
        rel, ext = accref.rsplit("/", 1)
        path = settings.data_dir / rel
        did = f"ivo://{settings_authority(settings)}/~?{accref}"
        r = requests.get(endpoints["soda"][survey],
                         params={"ID": did, "CIRCLE": f"{ra} {dec} {10 / 3600}"}, timeout=60)
        assert r.status_code == 200, r.text[:300]
        with fits.open(io.BytesIO(r.content)) as cut, fits.open(path) as orig:
            assert len(cut) == 2 and cut[0].header["INSTRUME"] == orig[0].header["INSTRUME"]
            data, header = cut[1].data, cut[1].header
            full, full_header = orig[int(ext)].data, orig[int(ext)].header
        ny, nx = data.shape
        # the cutout's place in the image, from its reference pixel
        x0 = round(full_header["CRPIX1"] - header["CRPIX1"])
        y0 = round(full_header["CRPIX2"] - header["CRPIX2"])
        wcs = WCS(full_header)
        expected = Cutout2D(full, (x0 + (nx - 1) / 2, y0 + (ny - 1) / 2), (ny, nx), wcs=wcs,
                            mode="strict")
        np.testing.assert_array_equal(data, expected.data)
        # a 20" circle at 0.21-0.34"/px: between 55 and 100 pixels across
        assert 55 <= nx <= 100 and 55 <= ny <= 100
        # world coordinates agree with the original file's to 0.05"
        cut_wcs = WCS(header)
        px = np.array([[0, 0], [nx - 1, ny - 1], [nx / 2, ny / 3]])
        a = cut_wcs.pixel_to_world(px[:, 0], px[:, 1])
        b = expected.wcs.pixel_to_world(px[:, 0], px[:, 1])
        assert a.separation(b).arcsec.max() < 0.05
        # and the requested centre is in the middle of the cutout (within 1.5 pixel)
        # along each axis where the image edge did not crop it
        cx, cy = cut_wcs.world_to_pixel_values(ra, dec)
        full_ny, full_nx = full.shape
        if x0 > 0 and x0 + nx < full_nx:
            assert abs(cx - (nx - 1) / 2) < 1.5
        if y0 > 0 and y0 + ny < full_ny:
            assert abs(cy - (ny - 1) / 2) < 1.5


def settings_authority(settings: Settings) -> str:
    with psycopg.connect(settings.dsn) as conn:
        did = conn.execute("SELECT obs_publisher_did FROM vista.images LIMIT 1").fetchone()[0]
    return did.split("//", 1)[1].split("/", 1)[0]


def test_soda_pixel_and_polygon_cutouts(endpoints: dict, settings: Settings) -> None:
    with psycopg.connect(settings.dsn) as conn:
        did, accref, ra, dec = conn.execute(
            "SELECT obs_publisher_did, accref, centeralpha, centerdelta FROM vista.images"
            " WHERE imagetype = 'pawprint' ORDER BY accref LIMIT 1").fetchone()
    rel, ext = accref.rsplit("/", 1)
    full = fits.getdata(settings.data_dir / rel, int(ext))
    r = requests.get(endpoints["soda"]["vista"],
                     params={"ID": did, "PIXEL_1": "11 60", "PIXEL_2": "21 40"}, timeout=60)
    assert r.status_code == 200
    data = fits.getdata(io.BytesIO(r.content), 1)
    np.testing.assert_array_equal(data, full[20:40, 10:60])   # FITS pixels are 1-based
    poly = f"POLYGON {ra - 0.01} {dec - 0.005} {ra + 0.01} {dec - 0.005} {ra} {dec + 0.005}"
    r = requests.get(endpoints["soda"]["vista"], params={"ID": did, "POS": poly}, timeout=60)
    assert r.status_code == 200
    ny, nx = fits.getdata(io.BytesIO(r.content), 1).shape
    # the polygon's bounding box: 0.02 deg of RA (times cos dec) by 0.01 deg of Dec
    header = fits.getheader(settings.data_dir / rel, int(ext))
    scale = 3600 * float(np.sqrt(abs(np.linalg.det(WCS(header).pixel_scale_matrix))))  # "/px
    assert abs(nx - 0.02 * np.cos(np.radians(dec)) * 3600 / scale) <= 3
    assert abs(ny - 0.01 * 3600 / scale) <= 3


@pytest.mark.parametrize(("params", "status", "text"), [
    ({"POS": "CIRCLE 194.5"}, 400, "CIRCLE"),
    ({"POS": "CIRCLE 194.5 -64.6 -0.1"}, 400, "radius"),
    ({"CIRCLE": "194.5 -64.6 -0.1"}, 400, "radius"),
    ({"POS": "CIRCLE 10 10 0.01"}, 400, "NoOverlap"),
    ({"PIXEL_1": "60 10"}, 400, "PIXEL_1"),
])
def test_soda_bad_input(params: dict, status: int, text: str, endpoints: dict,
                        settings: Settings) -> None:
    did, _, _ = _a_tile(settings, "vista")
    r = requests.get(endpoints["soda"]["vista"], params={"ID": did, **params}, timeout=60)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/plain")
    assert text in r.text and "Traceback" not in r.text


def test_soda_unknown_id(endpoints: dict, settings: Settings) -> None:
    authority = settings_authority(settings)
    for did in (f"ivo://{authority}/~?products/vista/20990101/nothing_st.fit/1",
                "ivo://elsewhere.example/data?x"):
        r = requests.get(endpoints["soda"]["vista"],
                         params={"ID": did, "POS": "CIRCLE 194.5 -64.6 0.01"}, timeout=60)
        assert r.status_code == 404
        assert r.text.startswith("NotFoundFault")
    # DataLink answers an unknown ID in-band, as DataLink 1.1 prescribes
    links = _datalink(endpoints, "vista", f"ivo://{authority}/~?products/vista/x.fit/1")
    row = links.to_table()[0]
    assert str(row["error_message"]).startswith("NotFoundFault")


@pytest.mark.parametrize(("survey", "query", "text"), [
    ("sia", "POS=CIRCLE+194.5", "CIRCLE"),
    ("sia", "POS=CIRCLE+194.5+-64.6+-1", "radius"),
    ("sia", "POS=CIRCLE+194.5+-95+1", "latitude"),
    ("sia", "BAND=foo", "BAND"),
    ("sia", "TIME=yesterday", "TIME"),
    ("sia1", "POS=194.5,-64.6&SIZE=-1", "SIZE"),
    ("sia1", "POS=194.5&SIZE=0.1", "POS"),
])
def test_sia_bad_input(survey: str, query: str, text: str, endpoints: dict) -> None:
    r = requests.get(endpoints[survey]["vista"] + "?" + query, timeout=60)
    assert r.status_code == 400
    doc = r.text
    assert 'value="ERROR"' in doc and text in doc and "Traceback" not in doc

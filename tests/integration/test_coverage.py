# SPDX-License-Identifier: BSD-3-Clause
"""Coverage for Aladin over HTTP: the collection MOCs, the HiPS per band and the HiPS list.

Everything is fetched from the running server at the URLs ``casuvo endpoints``
advertises, and checked against the pipeline products themselves: their WCS
(footprints, image centres, the sky position of a star) and their pixels.  The
expected values come from astropy, mocpy and cdshealpix applied to the product
files and from the HiPS standard, never from casuvo's coverage code
(:mod:`casuvo.archive.moc`, :mod:`casuvo.archive.hips`).
"""

from __future__ import annotations

import configparser
import functools
import io
import math
import re
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import requests
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning, NoConvergence
from cdshealpix import nested
from mocpy import MOC

from casuvo.archive.endpoints import services
from casuvo.config import Settings
from casuvo.surveys.registry import load_registry

pytestmark = pytest.mark.integration

SERVICES = services(load_registry(Settings.from_env()))
HIPS_KEYS = sorted(SERVICES["hips"])
COLLECTIONS = sorted(SERVICES["moc"])
#: IVOA identifier syntax (IVOA Identifiers 2.0): ivo://authority/path
IVOID = re.compile(r"^ivo://[\w][\w\-.~]{2,}(/[\w\-.~/]+)$")
#: the MOC may exceed the exact union of footprints by its cells along the edges:
#: measured +1.7 % (VISTA) at order 15 on the demo; more means a wrong footprint
MOC_AREA_EXCESS = 0.06
#: HiPS pixel (Hipsgen's bilinear resampling, mean of overlapping images) against
#: the products' pixels bilinearly interpolated at the same sky position, on a star
STAR_TOLERANCE = 0.10
SQDEG = (180 / math.pi) ** 2
#: HiPS tiles are 2^9 pixels wide (Hipsgen's default; ``hips_tile_width``)
TILE_DEPTH = 9
TILE_WIDTH = 2**TILE_DEPTH


def _get(url: str) -> requests.Response:
    return requests.get(url, timeout=60)


@dataclass(frozen=True)
class Image:
    """One science image extension of a product: its WCS and size."""

    path: Path
    ext: int
    wcs: WCS
    nx: int
    ny: int

    def centre(self) -> tuple[float, float]:
        ra, dec = self.wcs.all_pix2world([[(self.nx - 1) / 2, (self.ny - 1) / 2]], 0)[0]
        return float(ra), float(dec)

    def inside(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Which positions fall on a pixel of this image.

        The linear WCS selects candidates first (SIP distortion is a few pixels
        at most); the SIP inversion diverges far outside an image.
        """
        ra, dec = np.atleast_1d(ra), np.atleast_1d(dec)
        result = np.zeros(ra.shape, dtype=bool)
        x, y = self.wcs.wcs_world2pix(ra, dec, 0)
        margin = 50
        near = ((x >= -margin) & (x < self.nx + margin) & (y >= -margin)
                & (y < self.ny + margin))
        if near.any():
            x, y = self.wcs.all_world2pix(ra[near], dec[near], 0, quiet=True)
            result[near] = ((x >= -0.5) & (x < self.nx - 0.5) & (y >= -0.5)
                            & (y < self.ny - 0.5))
        return result


def _wcs(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


@pytest.fixture(scope="module")
def images(public_image_products: dict[str, list[Path]]) -> dict[str, list[Image]]:
    """The public images (MOCs and HiPS are made of these only)."""
    out: dict[str, list[Image]] = {}
    for collection, paths in public_image_products.items():
        for path in paths:
            with fits.open(path) as hdul:
                for ext, hdu in enumerate(hdul):
                    h = hdu.header
                    if h.get("NAXIS") == 2 and str(h.get("CTYPE1", "")).startswith("RA"):
                        out.setdefault(collection, []).append(
                            Image(path, ext, _wcs(h), h["NAXIS1"], h["NAXIS2"]))
    return out


@pytest.fixture(scope="module")
def served_moc(endpoints: dict, tmp_path_factory: pytest.TempPathFactory
               ) -> Callable[[str], MOC]:
    """The MOC of a collection as fetched from the server (once per collection)."""
    mocs: dict[str, MOC] = {}

    def fetch(collection: str) -> MOC:
        if collection not in mocs:
            response = _get(endpoints["moc"][collection])
            assert response.status_code == 200, endpoints["moc"][collection]
            path = tmp_path_factory.mktemp("moc") / f"{collection}.moc.fits"
            path.write_bytes(response.content)
            mocs[collection] = MOC.from_fits(path)
        return mocs[collection]

    return fetch


@pytest.fixture(scope="module")
def hips_properties(endpoints: dict) -> Callable[[str], dict[str, str]]:
    """The ``properties`` of a HiPS as fetched from the server (once per HiPS)."""
    props: dict[str, dict[str, str]] = {}

    def fetch(key: str) -> dict[str, str]:
        if key not in props:
            response = _get(endpoints["hips"][key] + "/properties")
            assert response.status_code == 200, f"{key}: {response.status_code}"
            props[key] = _parse_properties(response.text)
        return props[key]

    return fetch


def _parse_properties(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), value.strip())
    return out


def _authority(settings: Settings) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(settings.home / "services" / "gavo.rc.template")
    return parser.get("ivoa", "authority")


# --------------------------------------------------------------------------- MOC

@pytest.mark.parametrize("collection", COLLECTIONS)
def test_moc_is_served_as_moc2_fits(endpoints: dict, collection: str) -> None:
    response = _get(endpoints["moc"][collection])
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/fits"
    with fits.open(io.BytesIO(response.content)) as hdul:
        h = hdul[1].header
        assert (h["MOCVERS"], h["MOCDIM"], h["COORDSYS"]) == ("2.0", "SPACE", "C")
        assert h["MOCORD_S"] == 15


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_moc_contains_every_image_centre(served_moc: Callable[[str], MOC],
                                         images: dict[str, list[Image]],
                                         collection: str) -> None:
    centres = np.array([im.centre() for im in images[collection]])
    inside = served_moc(collection).contains_lonlat(centres[:, 0] * u.deg, centres[:, 1] * u.deg)
    assert inside.all(), [str(im.path.name) for im, ok in zip(images[collection], inside,
                                                               strict=True) if not ok]


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_moc_excludes_the_sky_beside_the_images(served_moc: Callable[[str], MOC],
                                                images: dict[str, list[Image]],
                                                collection: str) -> None:
    centres = np.array([im.centre() for im in images[collection]])
    # 1° north and south of every image centre: no demo image reaches that far
    # (the fields are < 0.5° across), unless another field lies there.
    for sign in (1, -1):
        dec = np.clip(centres[:, 1] + sign * 1.0, -90, 90)
        ra = centres[:, 0]
        on_image = np.zeros(len(ra), dtype=bool)
        for im in images[collection]:
            on_image |= im.inside(ra, dec)
        assert not on_image.any()
        assert not served_moc(collection).contains_lonlat(ra * u.deg, dec * u.deg).any()


@pytest.mark.long
@pytest.mark.parametrize("collection", COLLECTIONS)
def test_moc_area_matches_union_of_footprints(served_moc: Callable[[str], MOC],
                                              images: dict[str, list[Image]],
                                              collection: str) -> None:
    """Sample the sky on HEALPix order-16 cells (3.2″) and count those on an image.

    The MOC must hold every sampled point that is on an image, and its area may
    exceed that union by no more than its edge cells (``MOC_AREA_EXCESS``).
    """
    depth = 16
    on_images = []
    for im in images[collection]:
        ra, dec = im.centre()
        radius = math.hypot(im.nx, im.ny) / 2 * _pixel_scale_deg(im.wcs) * 1.05
        cells, _, _ = nested.cone_search(ra * u.deg, dec * u.deg, radius * u.deg, depth,
                                          flat=True)
        cells = np.asarray(cells, dtype=np.uint64)
        lon, lat = nested.healpix_to_lonlat(cells, depth)
        on_images.append(cells[im.inside(lon.deg, lat.deg)])
    union = np.unique(np.concatenate(on_images))
    cell_area = 4 * math.pi / (12 * 4**depth) * SQDEG
    union_area = union.size * cell_area
    lon, lat = nested.healpix_to_lonlat(union, depth)
    moc = served_moc(collection)
    assert moc.contains_lonlat(lon, lat).all()
    moc_area = moc.sky_fraction * 4 * math.pi * SQDEG
    print(f"{collection}: MOC {moc_area:.5f} deg², union of footprints {union_area:.5f} deg²")
    assert union_area * 0.995 <= moc_area <= union_area * (1 + MOC_AREA_EXCESS)


def _pixel_scale_deg(wcs: WCS) -> float:
    return float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))))


def _pixel_boundary(im: Image, per_side: int = 8) -> SkyCoord:
    """The outer pixel edges of an image through its full WCS, ``per_side`` points a side."""
    t = np.arange(per_side) / per_side
    x0, x1, y0, y1 = -0.5, im.nx - 0.5, -0.5, im.ny - 0.5
    xs = np.concatenate([x0 + t * (x1 - x0), np.full(per_side, x1), x1 - t * (x1 - x0),
                         np.full(per_side, x0)])
    ys = np.concatenate([np.full(per_side, y0), y0 + t * (y1 - y0), np.full(per_side, y1),
                         y1 - t * (y1 - y0)])
    ra, dec = im.wcs.pixel_to_world_values(xs, ys)   # the header's ICRS angles
    return SkyCoord(ra, dec, unit="deg")


@pytest.mark.long
@pytest.mark.parametrize("collection", COLLECTIONS)
def test_moc_is_the_union_of_the_image_boundaries(served_moc: Callable[[str], MOC],
                                                  images: dict[str, list[Image]],
                                                  collection: str) -> None:
    """The served MOC is, cell for cell, what mocpy makes of the images' pixel boundaries.

    Each image's outer pixel edges, 8 points a side through its WCS (astropy,
    SIP included), as a mocpy polygon at the served order; their union.
    """
    moc = served_moc(collection)
    polygons = MOC.from_polygons([_pixel_boundary(im) for im in images[collection]],
                                 max_depth=moc.max_order)
    union = polygons[0]
    for polygon in polygons[1:]:
        union = union.union(polygon)
    assert moc == union


# --------------------------------------------------------------------------- HiPS

def _hips_pixel_deg(order: int) -> float:
    """Side (deg) of a HiPS pixel at ``order``: a HEALPix cell of order + 9 (HiPS 1.0 §4)."""
    return math.degrees(math.sqrt(4 * math.pi / (12 * 4 ** (order + TILE_DEPTH))))


def _tile_pixel(ra: float, dec: float, order: int) -> tuple[int, int, int]:
    """(tile, FITS row, FITS column) of a position in the tiles of a HiPS at ``order``.

    The position's HEALPix cell at order + 9 (cdshealpix) lies in the tile of its
    order-``order`` parent; the cell's low 18 bits place it in the tile by the
    bit interleaving of :func:`_interleave`.
    """
    cell = int(nested.lonlat_to_healpix(np.atleast_1d(ra) * u.deg, np.atleast_1d(dec) * u.deg,
                                        order + TILE_DEPTH)[0])
    tile, sub = cell >> (2 * TILE_DEPTH), cell & (TILE_WIDTH**2 - 1)
    rows, cols = np.nonzero(_tile_layout() == sub)
    assert rows.size == 1
    return tile, int(rows[0]), int(cols[0])


@functools.cache
def _tile_layout() -> np.ndarray:
    """Index within its tile of the cell at each (FITS row, column) of a tile."""
    row, col = np.mgrid[0:TILE_WIDTH, 0:TILE_WIDTH]
    return _interleave(TILE_WIDTH - 1 - row, col)


@pytest.mark.parametrize("key", HIPS_KEYS)
def test_hips_properties(settings: Settings, hips_properties: Callable[[str], dict[str, str]],
                         images: dict[str, list[Image]], key: str) -> None:
    props = hips_properties(key)
    collection, band = key.split(".")
    assert props["hips_frame"] == "equatorial"
    assert int(props["hips_tile_width"]) == TILE_WIDTH
    # the HiPS order is the one whose pixel is nearest (in ratio) the products' own
    # pixel, measured on their WCS: within a factor √2 of it
    pixel = float(np.median([_pixel_scale_deg(im.wcs) for im in images[collection]]))
    order = int(props["hips_order"])
    assert order == min(range(30), key=lambda k: abs(math.log(_hips_pixel_deg(k) / pixel)))
    assert float(props["hips_pixel_scale"]) == pytest.approx(_hips_pixel_deg(order), rel=1e-3)
    ratio = float(props["hips_pixel_scale"]) / pixel
    assert 1 / math.sqrt(2) <= ratio <= math.sqrt(2)
    assert props["creator_did"] == f"ivo://{_authority(settings)}/{collection}/hips/{band}"
    assert IVOID.match(props["creator_did"])
    assert set(props["hips_tile_format"].split()) == {"png", "fits"}
    assert props["dataproduct_type"] == "image"
    assert props["hips_status"].startswith("public")
    assert props["obs_title"]


@pytest.mark.parametrize("key", HIPS_KEYS)
def test_hips_properties_are_plain_text(endpoints: dict, key: str) -> None:
    response = _get(endpoints["hips"][key] + "/properties")
    assert response.headers["content-type"].startswith("text/plain")


def _progenitors(settings: Settings, props: dict[str, str], collection: str) -> list[Path]:
    names = [n.strip() for n in props["prov_progenitor"].split(",")]
    paths = [next((settings.data_dir / "products" / collection).glob(f"2*/{n}"), None)
             for n in names]
    assert all(paths), f"progenitors {names} not all found"
    return paths  # type: ignore[return-value]


def _tile(url: str) -> np.ndarray:
    response = _get(url)
    assert response.status_code == 200, url
    with fits.open(io.BytesIO(response.content)) as hdul:
        return np.asarray(hdul[0].data, dtype=np.float64)


def _tile_url(base: str, order: int, tile: int, ext: str) -> str:
    return f"{base}/Norder{order}/Dir{tile // 10000 * 10000}/Npix{tile}.{ext}"


@pytest.mark.parametrize("key", HIPS_KEYS)
def test_norder3_tile_at_an_image_centre(settings: Settings, endpoints: dict,
                                         hips_properties: Callable[[str], dict[str, str]],
                                         key: str) -> None:
    from PIL import Image as PILImage

    collection = key.split(".")[0]
    path = _progenitors(settings, hips_properties(key), collection)[0]
    with fits.open(path) as hdul:
        h = hdul[-1].header
        ra, dec = _wcs(h).all_pix2world([[h["NAXIS1"] / 2, h["NAXIS2"] / 2]], 0)[0]
    tile, row, col = _tile_pixel(float(ra), float(dec), 3)
    base = endpoints["hips"][key]
    data = _tile(_tile_url(base, 3, tile, "fits"))
    assert data.shape == (512, 512)
    assert np.isfinite(data[row, col])
    response = _get(_tile_url(base, 3, tile, "png"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    png = PILImage.open(io.BytesIO(response.content))
    assert png.size == (512, 512)
    # PNG rows run top-down, FITS rows bottom-up; blank pixels are transparent
    pixel = png.convert("RGBA").getpixel((col, 511 - row))
    assert pixel[3] > 0


def _bilinear(data: np.ndarray, x: float, y: float) -> float:
    x0, y0 = int(math.floor(x)), int(math.floor(y))
    fx, fy = x - x0, y - y0
    patch = data[y0:y0 + 2, x0:x0 + 2]
    if patch.shape != (2, 2) or not np.isfinite(patch).all():
        return math.nan
    return float(patch[0, 0] * (1 - fx) * (1 - fy) + patch[0, 1] * fx * (1 - fy)
                 + patch[1, 0] * (1 - fx) * fy + patch[1, 1] * fx * fy)


def _star(path: Path) -> tuple[float, float, float]:
    """(ra, dec, sky noise) of a bright, unsaturated, isolated star in a product."""
    with fits.open(path) as hdul:
        ext = max((i for i, h in enumerate(hdul) if h.header.get("NAXIS") == 2),
                  key=lambda i: hdul[i].header["NAXIS1"] * hdul[i].header["NAXIS2"])
        data = np.asarray(hdul[ext].data, dtype=np.float64)
        wcs = _wcs(hdul[ext].header)
    finite = data[np.isfinite(data)]
    sky = float(np.median(finite))
    noise = 1.4826 * float(np.median(np.abs(finite - sky)))
    inner = np.full(data.shape, -np.inf)
    inner[20:-20, 20:-20] = np.nan_to_num(data[20:-20, 20:-20], nan=-np.inf)
    # brightest star below a third of the brightest pixel: well clear of saturation
    inner[inner > finite.max() / 3] = -np.inf
    y, x = np.unravel_index(np.argmax(inner), inner.shape)
    assert data[y, x] > sky + 50 * noise
    ra, dec = wcs.all_pix2world([[x, y]], 0)[0]
    return float(ra), float(dec), noise


@pytest.mark.parametrize("key", HIPS_KEYS)
def test_deepest_tile_has_the_image_value_at_a_star(
        settings: Settings, endpoints: dict, hips_properties: Callable[[str], dict[str, str]],
        key: str) -> None:
    """The HiPS pixel on a star equals the products' pixels there (bilinear, averaged)."""
    props = hips_properties(key)
    collection = key.split(".")[0]
    order = int(props["hips_order"])
    progenitors = _progenitors(settings, props, collection)
    ra, dec, noise = _star(progenitors[0])
    tile, row, col = _tile_pixel(ra, dec, order)
    data = _tile(_tile_url(endpoints["hips"][key], order, tile, "fits"))
    got = data[row, col]
    # the sky position of that HiPS pixel's centre, and the products' values there
    cell = (tile << (2 * TILE_DEPTH)) + int(_interleave(TILE_WIDTH - 1 - row, col))
    lon, lat = nested.healpix_to_lonlat(np.array([cell], dtype=np.uint64), order + TILE_DEPTH)
    values = []
    for path in progenitors:
        with fits.open(path) as hdul:
            for hdu in hdul:
                if hdu.header.get("NAXIS") != 2:
                    continue
                with warnings.catch_warnings():
                    # the SIP inversion of a detector far from the star meets only NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    try:
                        x, y = _wcs(hdu.header).all_world2pix(lon.deg, lat.deg, 0)
                    except NoConvergence:   # far off this detector
                        continue
                value = _bilinear(np.asarray(hdu.data, dtype=np.float64), x[0], y[0])
                if np.isfinite(value):
                    values.append(value)
    assert values
    expected = float(np.mean(values))
    print(f"{key}: star at {ra:.5f} {dec:+.5f}: HiPS {got:.1f}, products {expected:.1f} "
          f"({len(values)} images), noise {noise:.1f}")
    assert expected > 20 * noise
    assert got == pytest.approx(expected, rel=STAR_TOLERANCE)


def _interleave(x: int | np.ndarray, y: int | np.ndarray) -> int | np.ndarray:
    """Index within its tile of the HEALPix cell at tile position (x, y).

    HiPS 1.0 (§4.3): the cells of a tile are in nested order, whose index
    interleaves the bits of x (even bits) and y (odd bits); Hipsgen writes x
    from the top row down (FITS row = width − 1 − x) and y as the column.
    """
    return sum((((x >> b) & 1) << (2 * b)) | (((y >> b) & 1) << (2 * b + 1))
               for b in range(TILE_DEPTH))


# --------------------------------------------------------------------------- HiPS list

def test_hipslist_lists_every_hips(endpoints: dict, settings: Settings) -> None:
    response = _get(endpoints["hipslist"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    records = [_parse_properties(block) for block in re.split(r"\n\s*\n", response.text)]
    records = [r for r in records if r]
    by_did = {r["creator_did"]: r for r in records}
    assert len(by_did) == len(records)
    for key in HIPS_KEYS:
        collection, band = key.split(".")
        record = by_did[f"ivo://{_authority(settings)}/{collection}/hips/{band}"]
        assert record["hips_service_url"] == endpoints["hips"][key]
        for required in ("hips_status", "hips_release_date", "hips_frame", "hips_order",
                         "hips_tile_format", "dataproduct_type", "obs_title"):
            assert record.get(required), f"{key}: no {required}"
        assert _get(record["hips_service_url"] + "/properties").status_code == 200


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("suffix", [
    "vista/J/Norder3/Dir0/Npix99999.fits",     # no such tile
    "vista/J/Norder25/Dir0/Npix1.png",         # no such order
    "vista/Y/properties",                      # no such HiPS
    "nosuch/hipslist",
])
def test_missing_hips_file_is_404(endpoints: dict, suffix: str) -> None:
    base = endpoints["hipslist"].rsplit("/", 1)[0]
    assert _get(f"{base}/{suffix}").status_code == 404


def test_missing_moc_is_404(endpoints: dict) -> None:
    assert _get(endpoints["moc"]["vista"].replace("vista.moc", "gaia.moc")).status_code == 404


def test_path_escape_is_refused(endpoints: dict) -> None:
    base = endpoints["hipslist"].rsplit("/", 1)[0]
    status = _get(f"{base}/%2e%2e/%2e%2e/gavo.rc").status_code
    assert status in (403, 404)


# --------------------------------------------------------------------------- idempotence

@pytest.mark.long
def test_coverage_rerun_changes_nothing(casuvo_bin: Path, settings: Settings) -> None:
    outputs = sorted((settings.data_dir / "hips").glob("*/*/properties")) + sorted(
        (settings.data_dir / "coverage").glob("*.moc.fits"))
    assert outputs
    before = {p: p.stat().st_mtime_ns for p in outputs}
    proc = subprocess.run([str(casuvo_bin), "coverage"], capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "made in" not in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in outputs} == before


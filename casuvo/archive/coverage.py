# SPDX-License-Identifier: BSD-3-Clause
"""Sky coverage of the imaging collections for Aladin: a MOC per collection, a HiPS per band.

Aladin (and Aladin Lite, TOPCAT, ipyaladin) find what a data centre holds through
two IVOA products besides the SIA/ObsCore footprints:

* a **MOC** (MOC 2.0, FITS) per collection — the union of the WCS footprints of
  every science image extension (stacked pawprints and tiles).  The footprint of
  an image is its pixel *boundary* mapped through the full WCS (TAN-SIP), sampled
  along each edge, so that distortion is followed; :data:`MOC_ORDER` 15 (6.4″
  cells) keeps the MOC within ~2 % of the exact union area on the demo's
  shrunken detectors (order 12, 52″ cells, overstates it by ~10 % there and
  blurs the gaps between the 54″-wide OmegaCAM demo detectors).
* a **HiPS** per instrument and band, made by Aladin's own Hipsgen (Debian's
  ``aladin`` package) from the tile products (``*_st_tl.fit``), plus the
  stacked pawprints of any field without a tile.  FITS tiles keep the products'
  pixel values (ADU), PNG tiles are an asinh-stretched quick look.

Hipsgen reads the WCS from ``CDi_j`` or ``CDELTi``/``CROTA`` only: given the
products' ``PCi_j`` + ``CDELTi = 1`` it takes the pixels for one degree each.  So
every image extension is *staged* as a single-HDU FITS file with a ``CDi_j``
matrix (SIP kept) and its unexposed pixels (confidence 0) blanked, and Hipsgen
runs on the staging directory (which also spares it the catalogues and
confidence maps beside the products).  Hipsgen would also rewrite
``creator_did`` into CDS's ``AUTHORITY/P/…`` form; casuvo's HiPS identifiers are
``ivo://<authority>/<collection>/hips/<band>`` and the ``properties`` file is
completed with the survey's metadata after the run.

Everything is generated under ``var/data`` (``hips/<collection>/<band>/``,
``coverage/<collection>.moc.fits``, the HiPS list ``hips/hipslist``), built aside
in ``var/data/coverage-build`` and moved into place when complete, so the
server never shows a half-made HiPS.  A build is skipped when its recorded
inputs (names, sizes, modification times) and parameters are unchanged.

This module runs in the service environment (mocpy, astropy 5.3) as well as
the compute one; Hipsgen is Java (``java -jar /usr/share/java/aladin.jar``).
"""

from __future__ import annotations

import configparser
import json
import logging
import math
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from casuvo.archive.endpoints import hips_service_url
from casuvo.archive.imagemeta import ImageFile, image_files, survey_name
from casuvo.config import Settings
from casuvo.surveys.instruments import instrument

__all__ = [
    "COLLECTIONS",
    "HIPSGEN_JAR",
    "MOC_ORDER",
    "CoverageError",
    "HipsResult",
    "HipsSpec",
    "MocResult",
    "build_coverage",
    "build_hips",
    "build_moc",
    "cd_matrix_header",
    "collection_moc",
    "creator_did",
    "footprint",
    "hips_order",
    "hips_pixel_resolution",
    "hips_specs",
    "hips_tile_pixel",
    "image_footprints",
    "moc_path",
    "pixel_cut",
    "read_properties",
    "update_properties",
    "write_hipslist",
]

log = logging.getLogger(__name__)

#: the image collections (survey instruments) with pipeline products
COLLECTIONS = ("vista", "vst")

#: HEALPix order of the collection MOCs: 6.4″ cells (see the module docstring)
MOC_ORDER = 15

#: points per image edge of a footprint polygon (follows the SIP distortion)
EDGE_SAMPLES = 8

#: Hipsgen from Debian's ``aladin`` package
HIPSGEN_JAR = Path("/usr/share/java/aladin.jar")

#: pixels per side of a HiPS tile (Hipsgen's default, 2^9)
TILE_WIDTH = 512

#: Java heap of one Hipsgen run; the demo bands need far less
HIPSGEN_HEAP = "1g"

#: Hipsgen actions: spatial index, FITS tiles (+ Allsky, MOC), PNG tiles, check codes
HIPSGEN_ACTIONS = ("INDEX", "TILES", "PNG", "CHECKCODE")

#: the HiPS ``obs_regime`` of each collection's camera
REGIME = {"vista": "Infrared", "vst": "Optical"}

_SQDEG_PER_SKY = 4 * math.pi * (180 / math.pi) ** 2
_STRUCTURAL_KEYS = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT",
                    "GCOUNT", "EXTEND", "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM",
                    "EXTNAME", "EXTVER", "INHERIT"}
#: primary-header keywords copied into each staged image (Hipsgen's metadata index)
_PRIMARY_KEYS = ("TELESCOP", "INSTRUME", "FILTER", "OBJECT", "DATE-OBS", "MJD-OBS", "MJD-END",
                 "EXPTIME", "TEXPTIME", "PROG_ID")


class CoverageError(RuntimeError):
    """A MOC or HiPS could not be made; the message names the collection, band or file."""


# --------------------------------------------------------------------------- footprints

def _image_hdus(hdul: fits.HDUList) -> Iterable[tuple[int, fits.ImageHDU | fits.PrimaryHDU]]:
    """The 2-D image HDUs of a product that carry a celestial WCS."""
    for index, hdu in enumerate(hdul):
        h = hdu.header
        if h.get("NAXIS") == 2 and str(h.get("CTYPE1", "")).startswith("RA"):
            yield index, hdu


def _wcs(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        # SIP headers with CTYPE ...-SIP are fine; astropy's notes about them are not news.
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


def footprint(header: fits.Header, samples: int = EDGE_SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees of the outer pixel boundary of one image, counter-clockwise.

    The boundary runs along the pixel *edges* (−0.5 … N−0.5, zero-based), so the
    polygon encloses every pixel; ``samples`` points per edge follow the SIP
    distortion, which a four-corner ``calc_footprint`` would cut across.
    """
    nx, ny = int(header["NAXIS1"]), int(header["NAXIS2"])
    t = np.linspace(0.0, 1.0, samples, endpoint=False)
    x0, x1, y0, y1 = -0.5, nx - 0.5, -0.5, ny - 0.5
    xs = np.concatenate([x0 + t * (x1 - x0), np.full(samples, x1),
                         x1 - t * (x1 - x0), np.full(samples, x0)])
    ys = np.concatenate([np.full(samples, y0), y0 + t * (y1 - y0),
                         np.full(samples, y1), y1 - t * (y1 - y0)])
    ra, dec = _wcs(header).all_pix2world(xs, ys, 0)
    return np.mod(ra, 360.0), dec


def image_footprints(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Footprints of every science image extension of a product file."""
    with fits.open(path, memmap=True) as hdul:
        return [footprint(hdu.header) for _, hdu in _image_hdus(hdul)]


def collection_moc(products: Sequence[Path], order: int = MOC_ORDER):  # -> mocpy.MOC
    """The MOC (union of footprint polygons) of some product files at ``order``.

    mocpy includes every cell a polygon touches, so the MOC is a superset of the
    footprints: a point on an image is always inside its collection's MOC.
    """
    from astropy.coordinates import SkyCoord
    from mocpy import MOC

    polygons = [SkyCoord(ra, dec, unit="deg")
                for path in products for ra, dec in image_footprints(path)]
    if not polygons:
        raise CoverageError("no image footprints: nothing to make a MOC of")
    mocs = MOC.from_polygons(polygons, max_depth=order)
    union = mocs[0]
    for moc in mocs[1:]:
        union = union.union(moc)
    return union


# --------------------------------------------------------------------------- HiPS geometry

def hips_pixel_resolution(order: int, tile_width: int = TILE_WIDTH) -> float:
    """Size (arcsec) of a HiPS pixel at tile order ``order``: √(sky / 12·4^(k+log2 w))."""
    nside = (2 ** order) * tile_width
    return math.degrees(math.sqrt(4 * math.pi / (12 * nside**2))) * 3600.0


def hips_order(pixel_scale_arcsec: float, tile_width: int = TILE_WIDTH) -> int:
    """HiPS order whose pixels are closest (in ratio) to the images' own pixels.

    Hipsgen's default is the coarsest order not coarser than the data; for
    VIRCAM's 0.339″ that is order 11 (0.201″), i.e. 2.8 times the pixels (time
    and disk) for no information.  The nearest order is 10 (0.403″) for VIRCAM
    and 11 (0.201″) for OmegaCAM's 0.214″: never more than a factor √2 off.
    """
    best = min(range(3, 30), key=lambda k: abs(math.log(
        hips_pixel_resolution(k, tile_width) / pixel_scale_arcsec)))
    return best


def hips_tile_pixel(ra: np.ndarray, dec: np.ndarray, order: int,
                    tile_width: int = TILE_WIDTH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tile index, row, column) of sky positions in the FITS tiles of a HiPS at ``order``.

    A tile of order k holds the nested HEALPix cells of order k + log2(width)
    inside tile cell k; the low bits of a cell's index interleave its x (even
    bits) and y (odd bits) in the tile, and Hipsgen writes rows from the top
    (FITS row = width − 1 − x), columns as y.  Checked against star positions
    in the integration tests.
    """
    from casuvo.sky.healpix import lonlat_to_nested

    depth = int(round(math.log2(tile_width)))
    cells = lonlat_to_nested(np.atleast_1d(ra), np.atleast_1d(dec), order + depth)
    tile = cells >> (2 * depth)
    sub = cells & ((1 << (2 * depth)) - 1)
    x = np.zeros_like(sub)
    y = np.zeros_like(sub)
    for bit in range(depth):
        x |= ((sub >> (2 * bit)) & 1) << bit
        y |= ((sub >> (2 * bit + 1)) & 1) << bit
    return tile, tile_width - 1 - x, y


# --------------------------------------------------------------------------- staging

def cd_matrix_header(header: fits.Header) -> fits.Header:
    """An image header for a single-HDU file, its linear WCS as a ``CDi_j`` matrix.

    Hipsgen ignores ``PCi_j`` and would take ``CDELTi = 1`` for the pixel size;
    ``CDi_j = CDELTi · PCi_j`` is the same transformation in the form it reads.
    SIP and every other keyword are kept; structural keywords are left to astropy.
    """
    out = fits.Header([card for card in header.cards if card.keyword not in _STRUCTURAL_KEYS])
    if not any(k in out for k in ("CD1_1", "CD1_2", "CD2_1", "CD2_2")):
        for i in (1, 2):
            for j in (1, 2):
                pc = float(out.get(f"PC{i}_{j}", 1.0 if i == j else 0.0))
                out[f"CD{i}_{j}"] = pc * float(out.get(f"CDELT{i}", 1.0))
    for i in (1, 2):
        out.remove(f"CDELT{i}", ignore_missing=True)
        for j in (1, 2):
            out.remove(f"PC{i}_{j}", ignore_missing=True)
    return out


def _stage_product(product: ImageFile, dest: Path) -> list[Path]:
    """Write each image extension of ``product`` as ``dest/<stem>_<ext>.fits``."""
    staged = []
    conf_hdul = fits.open(product.conf, memmap=True) if product.conf.exists() else None
    try:
        with fits.open(product.path, memmap=True) as hdul:
            primary = hdul[0].header
            for index, hdu in _image_hdus(hdul):
                header = cd_matrix_header(hdu.header)
                for key in _PRIMARY_KEYS:
                    if key in primary and key not in header:
                        header[key] = primary[key]
                data = np.array(hdu.data, dtype=np.float32)
                if conf_hdul is not None and index < len(conf_hdul):
                    conf = conf_hdul[index].data
                    if conf is not None and conf.shape == data.shape:
                        data[conf <= 0] = np.nan   # never exposed: blank, not zero
                out = dest / f"{product.path.name[: -len('.fit')]}_{index:02d}.fits"
                fits.PrimaryHDU(data, header).writeto(out, overwrite=True)
                staged.append(out)
    finally:
        if conf_hdul is not None:
            conf_hdul.close()
    return staged


def pixel_cut(files: Sequence[Path], max_samples: int = 2_000_000) -> tuple[float, float]:
    """Display range for the PNG tiles: sky − 2σ … the 99.9th percentile.

    σ is the robust (MAD) scatter of the staged pixels, so the faint sky is
    visible above black, and with Hipsgen's asinh transfer bright stars keep
    their cores without the 0.1 % brightest pixels setting the scale.
    """
    samples = []
    per_file = max(1, max_samples // max(1, len(files)))
    for path in files:
        data = fits.getdata(path).ravel()
        data = data[np.isfinite(data)]
        step = max(1, data.size // per_file)
        samples.append(data[::step])
    values = np.concatenate(samples) if samples else np.zeros(0)
    if values.size == 0:
        raise CoverageError("no finite pixels in " + ", ".join(p.name for p in files[:3]))
    median = float(np.median(values))
    sigma = 1.4826 * float(np.median(np.abs(values - median)))
    high = float(np.percentile(values, 99.9))
    low = median - 2 * sigma
    if not high > low:
        high = low + max(sigma, 1.0)
    return round(low, 2), round(high, 2)


# --------------------------------------------------------------------------- properties

def read_properties(text: str) -> dict[str, str]:
    """``key = value`` lines of a HiPS properties file (comments and blanks skipped)."""
    props = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        props.setdefault(key.strip(), value.strip())
    return props


def update_properties(text: str, updates: dict[str, str]) -> str:
    """``text`` with the keys of ``updates`` set (in place, also over ``#key`` templates).

    Hipsgen writes commented templates (``#obs_description = …``) for the keys it
    does not know; filling them keeps its layout and order.  Keys not present
    are appended.
    """
    pending = dict(updates)
    lines = []
    for line in text.splitlines():
        stripped = line.strip().lstrip("#").strip()
        key = stripped.split("=", 1)[0].strip() if "=" in stripped else None
        if key in pending:
            lines.append(f"{key:<20} = {pending.pop(key)}")
        elif key in updates:
            continue   # a second occurrence of a key already set
        else:
            lines.append(line)
    lines += [f"{key:<20} = {value}" for key, value in pending.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- layout

def _authority(settings: Settings) -> str:
    """The data centre's IVOA authority (``[ivoa] authority`` of the DaCHS configuration)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(settings.home / "services" / "gavo.rc.template")
    return parser.get("ivoa", "authority", fallback="casuvo.example.org")


def creator_did(settings: Settings, collection: str, band: str) -> str:
    """The HiPS identifier, ``ivo://<authority>/<collection>/hips/<band>``."""
    return f"ivo://{_authority(settings)}/{collection}/hips/{band}"


def hips_root(settings: Settings) -> Path:
    """Served HiPS tree: ``<collection>/<band>/`` and the ``hipslist``."""
    return settings.data_dir / "hips"


def moc_path(settings: Settings, collection: str) -> Path:
    """The served MOC of a collection."""
    return settings.data_dir / "coverage" / f"{collection}.moc.fits"


def _work_dir(settings: Settings) -> Path:
    """Staging, half-made outputs, build records and Hipsgen logs (never served)."""
    return settings.data_dir / "coverage-build"


def _manifest(files: Iterable[Path], params: dict[str, object]) -> dict[str, object]:
    """What a build depends on: the inputs' names, sizes and times, and its parameters."""
    inputs = {}
    for path in sorted(files):
        st = path.stat()
        inputs[str(path)] = [st.st_size, st.st_mtime_ns]
    return {"inputs": inputs, "params": params}


def _up_to_date(record: Path, output: Path, manifest: dict[str, object]) -> bool:
    if not output.exists() or not record.exists():
        return False
    try:
        previous = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    return {k: previous.get(k) for k in manifest} == manifest


def _write_record(record: Path, manifest: dict[str, object], **extra: object) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(f".{record.name}.tmp")
    tmp.write_text(json.dumps({**manifest, **extra}, indent=1))
    os.replace(tmp, record)


# --------------------------------------------------------------------------- MOC

@dataclass(frozen=True)
class MocResult:
    """A collection's MOC: where, how much sky, from how many files."""

    collection: str
    path: Path
    order: int
    area_deg2: float
    n_products: int
    built: bool
    """False when the existing MOC was up to date."""


def build_moc(settings: Settings, collection: str, *, order: int = MOC_ORDER,
              force: bool = False) -> MocResult:
    """Write ``coverage/<collection>.moc.fits`` from all finished science images."""
    from mocpy import MOC

    products = [f.path for f in image_files(settings.data_dir / "products" / collection)]
    if not products:
        raise CoverageError(f"no finished image products of {collection} under "
                            f"{settings.data_dir / 'products' / collection}")
    out = moc_path(settings, collection)
    record = _work_dir(settings) / "state" / f"moc-{collection}.json"
    manifest = _manifest(products, {"order": order, "edge_samples": EDGE_SAMPLES})
    if not force and _up_to_date(record, out, manifest):
        moc = MOC.from_fits(out)
        log.info("%s MOC up to date (%d products)", collection, len(products))
        return MocResult(collection, out, order, moc.sky_fraction * _SQDEG_PER_SKY,
                         len(products), built=False)
    start = time.monotonic()
    moc = collection_moc(products, order)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.fits")
    # NUNIQ ordering: MOC 2.0 that MOC 1.x readers (older Aladin, TOPCAT) also read.
    moc.save(str(tmp), format="fits", overwrite=True, v1_compatible=True)
    os.replace(tmp, out)
    area = moc.sky_fraction * _SQDEG_PER_SKY
    _write_record(record, manifest, area_deg2=area)
    log.info("%s MOC: %d products, order %d, %.4f deg², %.1f s -> %s", collection,
             len(products), order, area, time.monotonic() - start, out)
    return MocResult(collection, out, order, area, len(products), built=True)


# --------------------------------------------------------------------------- HiPS

@dataclass(frozen=True)
class HipsSpec:
    """One HiPS to make: a collection's band and the products it is made from."""

    collection: str
    band: str
    products: tuple[ImageFile, ...]
    order: int
    creator_did: str
    title: str
    properties: dict[str, str] = field(default_factory=dict)
    """Metadata keywords completed in ``properties`` after Hipsgen."""


@dataclass(frozen=True)
class HipsResult:
    """A HiPS made (or found up to date)."""

    collection: str
    band: str
    path: Path
    order: int
    n_products: int
    seconds: float
    built: bool


def _primary(path: Path) -> fits.Header:
    return fits.getheader(path, 0)


def _choose_products(files: Sequence[ImageFile]) -> list[ImageFile]:
    """Tiles, plus the pawprints whose centre no tile of the band covers.

    A tile is the filled mosaic of its OB's pawprints: taking both would only
    average the same pixels twice, but a field whose tile failed still belongs
    in the HiPS.
    """
    tiles = [f for f in files if f.is_tile]
    pawprints = [f for f in files if not f.is_tile]
    if not tiles:
        return list(pawprints)
    if not pawprints:
        return tiles
    tile_moc = collection_moc([t.path for t in tiles], order=12)
    chosen = list(tiles)
    for paw in pawprints:
        primary = _primary(paw.path)
        ra, dec = primary.get("RA"), primary.get("DEC")
        if ra is None or dec is None or not tile_moc.contains_lonlat(
                np.atleast_1d(float(ra)) * u.deg, np.atleast_1d(float(dec)) * u.deg)[0]:
            chosen.append(paw)
    return chosen


def hips_specs(settings: Settings, collection: str) -> list[HipsSpec]:
    """The HiPS of a collection: one per band found in its finished products."""
    files = image_files(settings.data_dir / "products" / collection)
    by_band: dict[str, list[ImageFile]] = {}
    for f in files:
        by_band.setdefault(str(_primary(f.path).get("FILTER", "")).strip(), []).append(f)
    by_band.pop("", None)
    inst = instrument(collection)
    survey = survey_name(settings.home, collection)
    specs = []
    for band in sorted(by_band, key=lambda b: (list(inst.filters).index(b)
                                               if b in inst.filters else 99, b)):
        products = _choose_products(by_band[band])
        mjds = [(_primary(p.path).get("MJD-OBS"), _primary(p.path).get("MJD-END"))
                for p in by_band[band]]
        props = {
            "obs_collection": f"casuvo {collection}",
            "obs_description": (
                f"{inst.name} {band} images of the casuvo {survey}-like demo survey "
                f"({inst.telescope}), reduced by casuvo's CASU-style pipeline: "
                f"{sum(p.is_tile for p in products)} tiles and "
                f"{sum(not p.is_tile for p in products)} stacked pawprints. FITS tiles "
                "hold the products' pixel values (ADU, sky subtracted)."),
            "obs_regime": REGIME.get(collection, "Optical"),
            "hips_creator": "casuvo survey data centre",
            "obs_copyright": "Simulated demonstration data; free to use for any purpose.",
            "prov_progenitor": ", ".join(p.path.name for p in products),
        }
        if band in inst.filters:
            filt = inst.filters[band]
            props["em_min"] = f"{(filt.wavelength_nm - filt.width_nm / 2) * 1e-9:.4e}"
            props["em_max"] = f"{(filt.wavelength_nm + filt.width_nm / 2) * 1e-9:.4e}"
        starts = [float(a) for a, _ in mjds if a is not None]
        ends = [float(b) for _, b in mjds if b is not None]
        if starts:
            props["t_min"] = f"{min(starts):.5f}"
            props["t_max"] = f"{max(ends or starts):.5f}"
        specs.append(HipsSpec(
            collection=collection, band=band, products=tuple(products),
            order=hips_order(inst.pixel_scale),
            creator_did=creator_did(settings, collection, band),
            title=f"casuvo {survey} {inst.name} {band}",
            properties={k: v for k, v in props.items() if v}))
    return specs


def _hipsgen_command(spec: HipsSpec, staging: Path, out: Path, cut: tuple[float, float]
                     ) -> list[str]:
    """The Hipsgen command line (one argument per key=value; no shell)."""
    java = shutil.which("java")
    if java is None or not HIPSGEN_JAR.exists():
        raise CoverageError(f"Hipsgen needs java and {HIPSGEN_JAR} (Debian package "
                            "`aladin`, installed by deploy/local/install.sh)")
    return [
        java, f"-Xmx{HIPSGEN_HEAP}", "-Djava.awt.headless=true", "-jar", str(HIPSGEN_JAR),
        "-hipsgen", f"in={staging}", f"out={out}", f"creator_did={spec.creator_did}",
        f"obs_title={spec.title}", "hips_frame=equatorial",
        f"hips_order={spec.order}", f"hips_tile_width={TILE_WIDTH}",
        f"hips_pixel_cut={cut[0]:g} {cut[1]:g} asinh", f"maxThread={os.cpu_count() or 1}",
        "hips_creator=casuvo survey data centre", *HIPSGEN_ACTIONS,
    ]


def build_hips(settings: Settings, spec: HipsSpec, *, force: bool = False) -> HipsResult:
    """Make (or keep) the HiPS ``hips/<collection>/<band>/`` of ``spec`` with Hipsgen."""
    dest = hips_root(settings) / spec.collection / spec.band
    work = _work_dir(settings)
    record = work / "state" / f"hips-{spec.collection}-{spec.band}.json"
    inputs = [p.path for p in spec.products] + [p.conf for p in spec.products
                                                 if p.conf.exists()]
    manifest = _manifest(inputs, {"order": spec.order, "creator_did": spec.creator_did,
                                  "title": spec.title, "tile_width": TILE_WIDTH,
                                  "properties": spec.properties})
    if not force and _up_to_date(record, dest / "properties", manifest):
        log.info("HiPS %s %s up to date", spec.collection, spec.band)
        return HipsResult(spec.collection, spec.band, dest, spec.order, len(spec.products),
                          0.0, built=False)
    start = time.monotonic()
    staging = work / "staging" / spec.collection / spec.band
    building = work / "building" / spec.collection / spec.band
    for path in (staging, building):
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    staged = [out for p in spec.products for out in _stage_product(p, staging)]
    cut = pixel_cut(staged)
    logfile = work / "logs" / f"hipsgen-{spec.collection}-{spec.band}.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    command = _hipsgen_command(spec, staging, building, cut)
    log.info("HiPS %s %s: Hipsgen on %d images of %d products, order %d, cut %g..%g "
             "(log: %s)", spec.collection, spec.band, len(staged), len(spec.products),
             spec.order, cut[0], cut[1], logfile)
    with logfile.open("w") as logf:
        proc = subprocess.run(command, stdout=logf, stderr=subprocess.STDOUT, check=False,
                              timeout=3600)
    text = logfile.read_text(errors="replace")
    properties = building / "properties"
    errors = [line for line in text.splitlines() if line.lstrip("\x1b[0123456789;m")
              .startswith("ERROR")]
    if proc.returncode or not properties.exists() or errors:
        tail = "\n".join(errors or text.splitlines()[-15:])
        raise CoverageError(f"Hipsgen failed for {spec.collection} {spec.band} "
                            f"(exit {proc.returncode}); see {logfile}:\n{tail}")
    # Our identifier, not Hipsgen's AUTHORITY/P/... form, and the survey's metadata.
    properties.write_text(update_properties(properties.read_text(), {
        "creator_did": spec.creator_did, "obs_title": spec.title, **spec.properties}))
    # The spatial index names the staging files: meaningless to clients, gone after this.
    shutil.rmtree(building / "HpxFinder", ignore_errors=True)
    _replace_dir(building, dest)
    shutil.rmtree(staging, ignore_errors=True)
    seconds = time.monotonic() - start
    _write_record(record, manifest, seconds=round(seconds, 1), pixel_cut=list(cut))
    log.info("HiPS %s %s done in %.1f s -> %s", spec.collection, spec.band, seconds, dest)
    return HipsResult(spec.collection, spec.band, dest, spec.order, len(spec.products),
                      seconds, built=True)


def _replace_dir(new: Path, dest: Path) -> None:
    """Put the finished directory ``new`` at ``dest``, replacing an older one."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    old = new.with_name(f"{new.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.replace(dest, old)
    os.replace(new, dest)
    shutil.rmtree(old, ignore_errors=True)


def write_hipslist(settings: Settings) -> Path:
    """The HiPS list (HiPS 1.0 §4.4) of every casuvo HiPS, at ``hips/hipslist``.

    One record per HiPS — ``creator_did`` first, then ``hips_service_url`` (this
    server's URL of the directory) and the keywords of its ``properties`` —
    records separated by a blank line.
    """
    root = hips_root(settings)
    records = []
    for properties in sorted(root.glob("*/*/properties")):
        collection, band = properties.parent.parent.name, properties.parent.name
        props = read_properties(properties.read_text())
        if "creator_did" not in props:
            continue
        lines = [f"{'creator_did':<20} = {props.pop('creator_did')}",
                 f"{'hips_service_url':<20} = "
                 f"{hips_service_url(settings, collection, band)}"]
        props.pop("hips_service_url", None)
        lines += [f"{key:<20} = {value}" for key, value in props.items()]
        records.append("\n".join(lines))
    out = root / "hipslist"
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / ".hipslist.tmp"
    tmp.write_text("# casuvo HiPS list (IVOA HiPS 1.0, section 4.4); made by "
                   "`casuvo coverage`\n\n" + "\n\n".join(records) + "\n")
    os.replace(tmp, out)
    log.info("HiPS list with %d HiPS -> %s", len(records), out)
    return out


# --------------------------------------------------------------------------- everything

@dataclass
class CoverageReport:
    """What ``casuvo coverage`` made."""

    mocs: list[MocResult] = field(default_factory=list)
    hips: list[HipsResult] = field(default_factory=list)
    hipslist: Path | None = None


def build_coverage(settings: Settings, collections: Sequence[str] = COLLECTIONS, *,
                   moc: bool = True, hips: bool = True, force: bool = False,
                   moc_order: int = MOC_ORDER, bands: Sequence[str] | None = None
                   ) -> CoverageReport:
    """MOCs and HiPS of ``collections``, then the HiPS list; resumable and idempotent.

    A collection without finished products is skipped with a warning, so that the
    demo's coverage step does not fail for a survey that was not run.
    """
    report = CoverageReport()
    for collection in collections:
        if not image_files(settings.data_dir / "products" / collection):
            log.warning("no finished image products of %s: no MOC or HiPS", collection)
            continue
        if moc:
            report.mocs.append(build_moc(settings, collection, order=moc_order, force=force))
        if hips:
            for spec in hips_specs(settings, collection):
                if bands and spec.band not in bands:
                    continue
                report.hips.append(build_hips(settings, spec, force=force))
    if hips:
        report.hipslist = write_hipslist(settings)
    return report


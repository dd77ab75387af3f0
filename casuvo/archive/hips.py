# SPDX-License-Identifier: BSD-3-Clause
"""A HiPS per image collection and band, made by Aladin's Hipsgen, and the HiPS list.

Each HiPS (``var/data/hips/<collection>/<band>/``) is made by Hipsgen (Debian's
``aladin`` package) from the tile products (``*_st_tl.fit``), plus the stacked
pawprints of any field without a tile.  FITS tiles keep the products' pixel
values (ADU), PNG tiles are an asinh-stretched quick look.

Hipsgen reads the WCS from ``CDi_j`` or ``CDELTi``/``CROTA`` only: given the
products' ``PCi_j`` + ``CDELTi = 1`` it takes the pixels for one degree each.  So
every image extension is *staged* as a single-HDU FITS file with a ``CDi_j``
matrix (SIP kept) and its unexposed pixels (confidence 0) blanked, and Hipsgen
runs on the staging directory (which also spares it the catalogues and
confidence maps beside the products).  Hipsgen would also rewrite
``creator_did`` into CDS's ``AUTHORITY/P/…`` form; casuvo's HiPS identifiers are
``ivo://<authority>/<collection>/hips/<band>`` and the ``properties`` file is
completed with the survey's metadata after the run.  A HiPS is built aside in
``var/data/coverage-build`` and swapped into place when complete, so the server
never shows a half-made one; the HiPS list (``hips/hipslist``, HiPS 1.0 §4.4)
names them all.

Hipsgen is Java (``java -jar /usr/share/java/aladin.jar``); this module runs in
the service environment (astropy 5.3) as well as the compute one.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

from casuvo.archive._builds import CoverageError, work_dir
from casuvo.archive.endpoints import hips_service_url
from casuvo.archive.imagemeta import ImageFile, ledger_release_overrides, public_image_files
from casuvo.archive.moc import collection_moc
from casuvo.config import Settings, ivoa_authority
from casuvo.sky.footprint import celestial_images
from casuvo.storage import uptodate
from casuvo.storage.files import write_text
from casuvo.surveys.registry import load_registry

__all__ = [
    "HIPSGEN_JAR",
    "TILE_WIDTH",
    "HipsResult",
    "HipsSpec",
    "build_hips",
    "cd_matrix_header",
    "creator_did",
    "hips_order",
    "hips_pixel_resolution",
    "hips_root",
    "hips_specs",
    "pixel_cut",
    "read_properties",
    "update_properties",
    "write_hipslist",
]

log = logging.getLogger(__name__)

#: Hipsgen from Debian's ``aladin`` package
HIPSGEN_JAR = Path("/usr/share/java/aladin.jar")

#: pixels per side of a HiPS tile (Hipsgen's default, 2^9)
TILE_WIDTH = 512

#: Java heap of one Hipsgen run; the demo bands need far less
HIPSGEN_HEAP = "1g"

#: JVM options of a Hipsgen run: the client compiler only.  A run lasts seconds, too
#: short for the optimising compiler to pay for itself: it took 10–20 % more CPU
#: time (its compiler threads compete with Hipsgen's two on a 2-core machine) for
#: the same tiles, check codes equal.
HIPSGEN_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1",)

#: Hipsgen actions: spatial index, FITS tiles (+ Allsky, MOC), PNG tiles, check codes
HIPSGEN_ACTIONS = ("INDEX", "TILES", "PNG", "CHECKCODE")

_STRUCTURAL_KEYS = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT",
                    "GCOUNT", "EXTEND", "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM",
                    "EXTNAME", "EXTVER", "INHERIT"}
#: primary-header keywords copied into each staged image (Hipsgen's metadata index)
_PRIMARY_KEYS = ("TELESCOP", "INSTRUME", "FILTER", "OBJECT", "DATE-OBS", "MJD-OBS", "MJD-END",
                 "EXPTIME", "TEXPTIME", "PROG_ID")


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
            for index, hdu in celestial_images(hdul):
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

def creator_did(settings: Settings, collection: str, band: str) -> str:
    """The HiPS identifier, ``ivo://<authority>/<collection>/hips/<band>``."""
    return f"ivo://{ivoa_authority(settings)}/{collection}/hips/{band}"


def hips_root(settings: Settings) -> Path:
    """Served HiPS tree: ``<collection>/<band>/`` and the ``hipslist``."""
    return settings.data_dir / "hips"


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
    """The HiPS of a collection: one per HiPS band of its survey found in its products."""
    entry = load_registry(settings).by_collection(collection)
    files = public_image_files(settings.data_dir / "products" / collection, entry.access,
                               releases=ledger_release_overrides(settings.dsn, entry.key))
    by_band: dict[str, list[ImageFile]] = {}
    for f in files:
        by_band.setdefault(str(_primary(f.path).get("FILTER", "")).strip(), []).append(f)
    for band in set(by_band) - set(entry.hips_bands):
        del by_band[band]
    inst = entry.instrument
    survey = entry.name
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
            "obs_regime": entry.regime,
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
        java, f"-Xmx{HIPSGEN_HEAP}", *HIPSGEN_JVM_OPTIONS, "-Djava.awt.headless=true",
        "-jar", str(HIPSGEN_JAR),
        "-hipsgen", f"in={staging}", f"out={out}", f"creator_did={spec.creator_did}",
        f"obs_title={spec.title}", "hips_frame=equatorial",
        f"hips_order={spec.order}", f"hips_tile_width={TILE_WIDTH}",
        f"hips_pixel_cut={cut[0]:g} {cut[1]:g} asinh", f"maxThread={os.cpu_count() or 1}",
        "hips_creator=casuvo survey data centre", *HIPSGEN_ACTIONS,
    ]


def build_hips(settings: Settings, spec: HipsSpec, *, force: bool = False) -> HipsResult:
    """Make (or keep) the HiPS ``hips/<collection>/<band>/`` of ``spec`` with Hipsgen."""
    dest = hips_root(settings) / spec.collection / spec.band
    inputs = [p.path for p in spec.products] + [p.conf for p in spec.products
                                                 if p.conf.exists()]
    fp = uptodate.fingerprint(f"hips:{spec.collection}/{spec.band}", inputs, {
        "order": spec.order, "creator_did": spec.creator_did, "title": spec.title,
        "tile_width": TILE_WIDTH, "properties": spec.properties})
    outcome = uptodate.ensure_current(settings.dsn, fp, [dest],
                                      lambda: _make_hips(settings, spec, dest), force=force)
    if outcome.skipped:
        log.info("HiPS %s %s up to date", spec.collection, spec.band)
        return HipsResult(spec.collection, spec.band, dest, spec.order, len(spec.products),
                          0.0, built=False)
    return HipsResult(spec.collection, spec.band, dest, spec.order, len(spec.products),
                      outcome.result["seconds"], built=True)


def _make_hips(settings: Settings, spec: HipsSpec, dest: Path) -> dict[str, object]:
    """Run Hipsgen for ``spec`` and put the finished HiPS at ``dest``; returns its facts."""
    work = work_dir(settings)
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
    log.info("HiPS %s %s done in %.1f s -> %s", spec.collection, spec.band, seconds, dest)
    return {"seconds": round(seconds, 1), "pixel_cut": list(cut)}


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
    write_text(out, "# casuvo HiPS list (IVOA HiPS 1.0, section 4.4); made by "
               "`casuvo coverage`\n\n" + "\n\n".join(records) + "\n")
    log.info("HiPS list with %d HiPS -> %s", len(records), out)
    return out

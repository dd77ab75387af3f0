# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: image services (SODA, SIA2, client cutouts) against their local baselines.

Three parts, every baseline measured in the same run:

1. SODA sync cutouts (``CIRCLE ra dec r`` on ``dlget``) of 1′ and 10′ (r = 0.5′
   and 5′; the service cuts the circle's bounding box), interleaved request by
   request against two baselines on the same image: DaCHS's *stock* SODA
   (``//soda#fits_genDesc`` + ``//soda#fits_standardDLFuncs``, served by the
   never-published ``bench/soda_baseline.rd`` on a single-HDU copy of the
   extension, because stock DaCHS 2.7 cuts only a file's primary HDU) and
   astropy's ``Cutout2D`` in-process: open the file (memmap), build the WCS,
   cut, copy the pixels out.  Goals for 1′ (p50): ≤ 0.5× stock and ≤ 2×
   Cutout2D.  For 10′ of a tile, the time per MB sent is compared with the
   whole image's (``#this``, no cut): a cutout whose cost followed the file
   would pay (image size / cutout size) times more per MB, one costing what
   streaming the file costs would pay 1×.
   The demo's detectors are miniatures (VIRCAM 512² at 0.34″/px ≈ 2.9′,
   OmegaCAM 256×512 at 0.214″/px), so each size takes the first image type,
   pawprint detector or tile, that holds the whole cutout; the table names it
   and gives the cutout's pixel shape from both sides.  ``--json PATH`` writes
   the figures as ``{"bench": "images", "figures": [...]}``.
2. SIA2 queries (``POS=CIRCLE``, HTTP) against the SQL DaCHS runs for them on
   ``ivoa.obscore`` (``s_region && scircle``, the service's ``source_table``
   condition, the same row limit), over psycopg; row counts must agree.
3. ``casuvo.client.Archive.cutouts`` for 100 (image, position) pairs: the
   default thread pool against ``scheduler="synchronous"`` (one at a time).

Every request is anonymous, so the images cut and the positions searched are
public ones, and the SQL of part 2 reads as the public does (release control,
``bench/public.py``): the services answer the public's rows only.
"""

from __future__ import annotations

import argparse
import io
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import public  # bench/public.py, beside this script
import requests
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits, votable
from astropy.nddata import Cutout2D
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from report import figure, write_json  # bench/report.py, beside this script

from casuvo.archive.endpoints import endpoints
from casuvo.client import Archive
from casuvo.client.archive import CutoutRequest
from casuvo.config import Settings
from casuvo.simulate.fields import DEMO_FIELDS

SURVEYS = ("vista", "vst")
#: Full widths of the SODA cutouts (arcmin); the SODA circle has half this radius.
SIZES_ARCMIN = (1.0, 10.0)
#: SIA2 cone radii (degrees): a position (few images) and half a degree (most of a field).
SIA_RADII_DEG = (1 / 60, 0.5)
#: Pixels kept clear between a cutout and its image's edge (so neither side crops).
EDGE_PIX = 10
#: SIA2 MAXREC, and the row limit of the SQL baseline (DaCHS asks for one more row).
MAXREC = 10000

warnings.filterwarnings("ignore", category=FITSFixedWarning)


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    p50, p95 = np.percentile(seconds, [50, 95]) * 1e3
    return float(p50), float(p95)


# -- 1. SODA against Cutout2D ---------------------------------------------------------


def _image_candidates(conn: psycopg.Connection, survey: str) -> list[tuple[str, str, str]]:
    """(publisher DID, accref, imagetype) of the survey's images ``conn`` may see
    (the public's: :func:`public.connect`), pawprints first."""
    return conn.execute(
        f"SELECT obs_publisher_did, accref, imagetype FROM {survey}.images"
        " ORDER BY imagetype = 'tile', accref").fetchall()


def _grid(path: Path, ext: int) -> tuple[WCS, int, int, float]:
    """(WCS, nx, ny, pixel scale in arcsec) of one image extension."""
    header = fits.getheader(path, ext)
    wcs = WCS(header)
    scale = float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600)   # degrees
    return wcs, int(header["NAXIS1"]), int(header["NAXIS2"]), scale


def _pick_image(settings: Settings, images: list[tuple[str, str, str]], size_arcmin: float
                ) -> tuple[str, Path, int, str, WCS, int, int, float] | None:
    """The first image (pawprints before tiles) that holds a cutout of this size whole.

    When none does, the largest image: both sides then crop the cutout at its edges.
    """
    seen: set[str] = set()
    largest: tuple[str, Path, int, str, WCS, int, int, float] | None = None
    for did, accref, imagetype in images:
        if imagetype in seen:       # one look per image type: all its images are alike
            continue
        rel, ext = accref.rsplit("/", 1)
        path = settings.data_dir / rel
        wcs, nx, ny, scale = _grid(path, int(ext))
        found = (did, path, int(ext), imagetype, wcs, nx, ny, scale)
        if min(nx, ny) > size_arcmin * 60 / scale + 2 * EDGE_PIX:
            return found
        if largest is None or min(nx, ny) * scale > min(largest[5:7]) * largest[7]:
            largest = found
        seen.add(imagetype)
    return largest


def _positions(rng: np.random.Generator, wcs: WCS, nx: int, ny: int, half_pix: float,
               n: int) -> list[tuple[float, float]]:
    """Random cutout centres whose whole cutout lies on the image."""
    m = half_pix + EDGE_PIX
    x = rng.uniform(m, nx - 1 - m, n)
    y = rng.uniform(m, ny - 1 - m, n)
    ra, dec = wcs.celestial.pixel_to_world_values(x, y)
    return list(zip(np.asarray(ra, float).tolist(), np.asarray(dec, float).tolist(),
                    strict=True))


def _local_cutout(path: Path, ext: int, ra: float, dec: float, size: u.Quantity
                  ) -> tuple[int, int]:
    """The baseline: what SODA does for one request, in-process (open, WCS, cut, copy)."""
    with fits.open(path, memmap=True) as hdul:
        hdu = hdul[ext]
        cut = Cutout2D(hdu.data, SkyCoord(ra, dec, unit="deg"), size,
                       wcs=WCS(hdu.header), mode="trim")
        data = np.array(cut.data)
    return data.shape


# -- the stock DaCHS baseline (bench/soda_baseline.rd) ------------------------------------

BASELINE_RD = Path(__file__).with_name("soda_baseline.rd")
BASELINE_NAME = "sodabaseline"


def _single_hdu_copy(path: Path, ext: int, out: Path) -> None:
    """One image extension as a single-HDU FITS file: the same pixels, header and WCS."""
    with fits.open(path) as hdul:
        hdu = hdul[ext]
        header = hdu.header.copy()
        for key in ("XTENSION", "PCOUNT", "GCOUNT", "CHECKSUM", "DATASUM", "INHERIT"):
            header.remove(key, ignore_missing=True)
        primary = fits.PrimaryHDU(data=hdu.data, header=header)
    tmp = out.with_suffix(".tmp")
    primary.writeto(tmp, overwrite=True)
    tmp.replace(out)


def stock_baseline(settings: Settings, images: list[tuple[str, Path, int]]
                   ) -> tuple[str, dict[tuple[Path, int], str]]:
    """(dlget URL, {(file, ext): ID}) of stock DaCHS SODA on single-HDU copies of images.

    Stock DaCHS 2.7 SODA cuts only a file's primary HDU, so each measured image
    extension is written once as its own file under ``var/bench/sodabaseline``;
    ``bench/soda_baseline.rd`` (linked there) serves them with DaCHS's
    ``//soda#fits_genDesc`` and ``//soda#fits_standardDLFuncs`` and nothing
    else.  It is imported, never published.
    """
    from casuvo.dachs import instance

    folder = settings.var / "bench" / BASELINE_NAME
    folder.mkdir(parents=True, exist_ok=True)
    rd = folder / "baseline.rd"
    if not rd.is_symlink() or rd.resolve() != BASELINE_RD.resolve():
        rd.unlink(missing_ok=True)
        rd.symlink_to(BASELINE_RD)
    link = settings.dachs_root / "inputs" / BASELINE_NAME
    if not link.is_symlink() or link.resolve() != folder.resolve():
        link.unlink(missing_ok=True)
        link.symlink_to(folder, target_is_directory=True)
    changed = False
    ids: dict[tuple[Path, int], str] = {}
    for did, path, ext in images:
        out = folder / f"{path.stem}_e{ext}.fits"
        if not out.exists() or out.stat().st_mtime < path.stat().st_mtime:
            _single_hdu_copy(path, ext, out)
            changed = True
        ids[(path, ext)] = did.split("~?", 1)[0] + f"~?{BASELINE_NAME}/{out.name}"
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        known = {r[0] for r in conn.execute(
            "SELECT accref FROM dc.products WHERE accref LIKE %s", (f"{BASELINE_NAME}/%",))}
    if changed or not {i.split("~?", 1)[1] for i in ids.values()} <= known:
        instance.dachs(settings, "imp", f"{BASELINE_NAME}/baseline")
    return f"{settings.server_url}/{BASELINE_NAME}/baseline/dl/dlget", ids


def _soda_get(session: requests.Session, url: str, did: str, ra: float, dec: float,
              radius_deg: float) -> tuple[float, tuple[int, ...], int]:
    """(seconds, pixel shape, bytes) of one SODA CIRCLE cutout over HTTP."""
    t = time.perf_counter()
    resp = session.get(url, params={"ID": did, "CIRCLE": f"{ra!r} {dec!r} {radius_deg!r}"},
                       timeout=120)
    resp.raise_for_status()
    body = resp.content
    seconds = time.perf_counter() - t
    with fits.open(io.BytesIO(body)) as hdul:
        shape = next(h.data.shape for h in hdul if h.data is not None)
    return seconds, shape, len(body)


def _figure(name: str, value: float, baseline: str, baseline_value: float,
            goal: str | None, limit: float | None, unit: str = "ms") -> dict[str, Any]:
    """One figure (bench/report.py's shape): value, same-run baseline, ratio, goal."""
    ratio = value / baseline_value
    return figure(name, round(value, 3), unit, baseline=baseline,
                  baseline_value=round(baseline_value, 3), ratio=round(ratio, 3),
                  goal=goal, met=None if limit is None else bool(ratio <= limit))


def bench_soda(settings: Settings, soda: dict[str, str], n: int,
               session: requests.Session) -> list[dict[str, Any]]:
    """SODA 1′/10′ cutouts: casuvo, stock DaCHS and in-process Cutout2D, interleaved."""
    rng = np.random.default_rng(11)
    with public.connect(settings) as conn:
        images = {s: _image_candidates(conn, s) for s in SURVEYS}
    picks = {(survey, size): _pick_image(settings, images[survey], size)
             for survey in SURVEYS for size in SIZES_ARCMIN}
    stock_url, stock_ids = stock_baseline(
        settings, [(p[0], p[1], p[2]) for p in picks.values() if p is not None])
    print(f"1. SODA sync cutouts: casuvo vs stock DaCHS SODA (single-HDU copy of the same "
          f"image) vs in-process Cutout2D (memmap), {n} cutouts each, interleaved")
    print(f"{'survey':<6} {'size':>4} {'image':<8} {'SODA shape':>19} {'MB':>5} "
          f"{'C2D p50/p95 ms':>15} {'stock p50/p95':>15} {'casuvo p50/p95':>15} "
          f"{'/stock':>7} {'/C2D':>6}")
    figures: list[dict[str, Any]] = []
    for (survey, size_arcmin), picked in picks.items():
        if picked is None:
            print(f"{survey:<6} {size_arcmin:3.0f}′  no image holds a cutout this size")
            continue
        did, path, ext, imagetype, wcs, nx, ny, scale = picked
        stock_did = stock_ids[(path, ext)]
        radius_deg = size_arcmin / 2 / 60
        size = size_arcmin * u.arcmin
        half_pix = size_arcmin * 30 / scale
        cropped = min(nx, ny) <= 2 * (half_pix + EDGE_PIX)
        # an image smaller than the cutout: centres near its middle, cropped on all sides
        positions = _positions(rng, wcs, nx, ny,
                               min(nx, ny) / 2 - EDGE_PIX - 5 if cropped else half_pix, n)
        # warm the page cache and both services (RD load, first connection)
        _local_cutout(path, ext, *positions[0], size)
        _soda_get(session, soda[survey], did, *positions[0], radius_deg)
        _soda_get(session, stock_url, stock_did, *positions[0], radius_deg)
        local_t, soda_t, stock_t, nbytes = [], [], [], []
        soda_shapes, stock_shapes, local_shapes = set(), set(), set()
        for ra, dec in positions:
            t = time.perf_counter()
            local_shapes.add(_local_cutout(path, ext, ra, dec, size))
            local_t.append(time.perf_counter() - t)
            seconds, shape, length = _soda_get(session, soda[survey], did, ra, dec,
                                               radius_deg)
            soda_t.append(seconds)
            soda_shapes.add(shape)
            nbytes.append(length)
            seconds, shape, _ = _soda_get(session, stock_url, stock_did, ra, dec, radius_deg)
            stock_t.append(seconds)
            stock_shapes.add(shape)
        l50, l95 = _percentiles(local_t)
        s50, s95 = _percentiles(soda_t)
        k50, k95 = _percentiles(stock_t)
        same = "" if stock_shapes == soda_shapes else f" stock shape {_shapes(stock_shapes)}"
        print(f"{survey:<6} {size_arcmin:3.0f}′ {imagetype:<8} {_shapes(soda_shapes):>19} "
              f"{np.median(nbytes) / 1e6:5.2f} {l50:7.1f}/{l95:<7.1f} {k50:7.1f}/{k95:<7.1f} "
              f"{s50:7.1f}/{s95:<7.1f} {s50 / k50:6.2f}x {s50 / l50:5.2f}x{same}")
        print(f"{'':<12}({imagetype} {nx}×{ny} px = {nx * scale / 60:.1f}′×"
              f"{ny * scale / 60:.1f}′ at {scale:.3f}″/px, {path.name}[{ext}]; "
              f"Cutout2D shape {_shapes(local_shapes)}"
              f"{'; smaller than the cutout: cropped to the image' if cropped else ''})")
        label = f"SODA {size_arcmin:.0f}′ {survey} {imagetype} p50"
        one = size_arcmin == 1.0
        figures.append(_figure(label, s50, "stock DaCHS SODA p50", k50,
                               "≤ 0.5× stock DaCHS" if one else None,
                               0.5 if one else None))
        figures.append(_figure(label, s50, "in-process Cutout2D p50", l50,
                               "≤ 2× Cutout2D" if one else None, 2.0 if one else None))
        if not one and not cropped:     # a cutout cropped to the whole image scales trivially
            figures.append(_scaling(settings, session, soda[survey], did, path, ext, s50,
                                    float(np.median(nbytes)), survey, imagetype))
    return figures


def _scaling(settings: Settings, session: requests.Session, url: str, did: str, path: Path,
             ext: int, cut_ms: float, cut_bytes: float, survey: str, imagetype: str
             ) -> dict[str, Any]:
    """The 10′ cutout's time per MB sent against the whole image's (``#this``, no cut).

    A cutout whose cost followed the file rather than the bytes it sends would
    cost (image size / cutout size) times more per MB than the whole image;
    one that costs the same per MB as streaming the file would score 1.  The
    cutout's extra per-byte work (strided reads, a checksum pass, one more
    copy) puts it between the two.
    """
    times, size = [], 0
    for _ in range(9):
        t = time.perf_counter()
        resp = session.get(url, params={"ID": did}, timeout=120)
        resp.raise_for_status()
        size = len(resp.content)
        times.append(time.perf_counter() - t)
    full_ms = float(np.median(times)) * 1e3
    per_mb_cut = cut_ms / (cut_bytes / 1e6)
    per_mb_full = full_ms / (size / 1e6)
    print(f"{'':<12}10′ cutout {cut_bytes / 1e6:.2f} MB in {cut_ms:.1f} ms = "
          f"{per_mb_cut:.1f} ms/MB; whole image ({path.name}[{ext}], {size / 1e6:.2f} MB) "
          f"{full_ms:.1f} ms = {per_mb_full:.1f} ms/MB: ratio {per_mb_cut / per_mb_full:.2f}")
    # cost following the file would make a cutout's MB (file / cutout) times dearer
    limit = size / cut_bytes
    return _figure(f"SODA 10′ {survey} {imagetype}: ms per MB sent", per_mb_cut,
                   "whole image (#this) ms per MB", per_mb_full,
                   f"< {limit:.1f}× (whole image / cutout bytes): follows the bytes sent, "
                   "not the file", limit, "ms/MB")


def _shapes(shapes: set[tuple[int, ...]]) -> str:
    """``NX×NY`` of the cutouts (a range when they differ by a pixel)."""
    def span(values: set[int]) -> str:
        lo, hi = min(values), max(values)
        return str(lo) if lo == hi else f"{lo}-{hi}"

    return f"{span({s[1] for s in shapes})}×{span({s[0] for s in shapes})}"


# -- 2. SIA2 against SQL ------------------------------------------------------------------


#: What DaCHS's SIA2 core runs for POS=CIRCLE (//siap2#parameters: s_region && the circle
#: as a pgSphere scircle) plus the service's source_table condition, limit MAXREC + 1.
SIA_SQL = ("SELECT * FROM ivoa.obscore WHERE s_region && scircle(spoint(radians(%s),"
           " radians(%s)), radians(%s)) AND source_table = %s LIMIT %s")


def bench_sia(settings: Settings, sia: dict[str, str], n: int,
              session: requests.Session) -> None:
    rng = np.random.default_rng(12)
    print(f"\n2. SIA2 POS=CIRCLE (HTTP, MAXREC={MAXREC}) vs the same SQL on ivoa.obscore "
          f"(psycopg, as the public), {n} public images' centres each")
    print(f"{'survey':<6} {'radius':>7} {'rows':>7} {'SQL p50':>9} {'SQL p95':>9} "
          f"{'SIA p50':>9} {'SIA p95':>9} {'SIA/SQL p50':>12}  counts")
    with public.connect(settings) as conn:
        for survey in SURVEYS:
            centres = conn.execute(
                f"SELECT centeralpha, centerdelta FROM {survey}.images").fetchall()
            for radius in SIA_RADII_DEG:
                sql_t, sia_t, rows, mismatches = [], [], [], 0
                for i in rng.choice(len(centres), size=n, replace=len(centres) < n):
                    ra, dec = (float(v) for v in centres[i])
                    t = time.perf_counter()
                    got = conn.execute(SIA_SQL, (ra, dec, radius, f"{survey}.images",
                                                 MAXREC + 1)).fetchall()
                    sql_t.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    resp = session.get(sia[survey], params={
                        "POS": f"CIRCLE {ra!r} {dec!r} {radius!r}", "MAXREC": str(MAXREC)},
                        timeout=120)
                    resp.raise_for_status()
                    body = resp.content
                    sia_t.append(time.perf_counter() - t)
                    n_sia = _votable_rows(body)
                    rows.append(len(got))
                    mismatches += n_sia != min(len(got), MAXREC)
                q50, q95 = _percentiles(sql_t)
                s50, s95 = _percentiles(sia_t)
                agree = "agree" if not mismatches else f"{mismatches} DIFFER"
                print(f"{survey:<6} {radius * 60:6.0f}′ {np.mean(rows):7.1f} {q50:7.2f}ms "
                      f"{q95:7.2f}ms {s50:7.1f}ms {s95:7.1f}ms {s50 / q50:11.1f}x  {agree}")


def _votable_rows(body: bytes) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return len(votable.parse_single_table(io.BytesIO(body)).array)


# -- 3. client cutouts, parallel against serial --------------------------------------------


def bench_client(settings: Settings, n_cutouts: int, size_arcsec: float) -> None:
    rng = np.random.default_rng(13)
    field = DEMO_FIELDS[0]
    archive = Archive("vista", settings=settings)
    table = archive.query_radec(field.ra, field.dec, 1.0 * u.deg, imagetype="pawprint")
    if not len(table):
        raise SystemExit(f"no VISTA pawprints around the field {field.name}")
    idx = rng.choice(len(table), size=n_cutouts, replace=len(table) < n_cutouts)
    rows = table[idx]
    # positions within ±50″ of each detector's centre: a 30″ cutout stays on the 174″ detector
    # TAP names the //siap#pgs centre columns centerAlpha, centerDelta
    col = {c.lower(): c for c in rows.colnames}
    ra0 = np.asarray(rows[col["centeralpha"]], float)
    dec0 = np.asarray(rows[col["centerdelta"]], float)
    ra = ra0 + rng.uniform(-50, 50, n_cutouts) / 3600 / np.cos(np.radians(dec0))
    dec = dec0 + rng.uniform(-50, 50, n_cutouts) / 3600
    size = size_arcsec * u.arcsec
    print(f"\n3. casuvo.client Archive('vista').cutouts: {n_cutouts} (image, position) pairs "
          f"({len(set(rows['obs_publisher_did']))} distinct images), {size_arcsec:g}″ wide")

    t = time.perf_counter()
    reqs, _ = archive.cutout_requests(rows, ra, dec, size)
    datalink_s = time.perf_counter() - t
    results: dict[str, tuple[float, list[Any]]] = {}
    for label, kwargs in [("serial (scheduler='synchronous')", {"scheduler": "synchronous"}),
                          ("parallel (default: 8 threads)", {})]:
        t = time.perf_counter()
        cuts = archive.cutouts(rows, ra, dec, size, **kwargs)
        results[label] = (time.perf_counter() - t, cuts)
    (serial_s, serial), (parallel_s, parallel) = results.values()
    same = all(a is not None and b is not None
               and np.array_equal(a.data, b.data, equal_nan=True)
               for a, b in zip(serial, parallel, strict=True))
    shapes = {c.data.shape for c in parallel if c is not None}
    # cutouts() resolves DataLink first (one POST, not parallel), then fetches
    print(f"{'run':<36} {'wall s':>8} {'ms/cutout':>10} {'speed-up':>9} "
          f"{'− DataLink s':>13} {'speed-up':>9}")
    print(f"{'DataLink resolution alone (1 POST)':<36} {datalink_s:8.2f} "
          f"{datalink_s / n_cutouts * 1e3:10.1f}")
    serial_fetch = serial_s - datalink_s
    for label, (seconds, _) in results.items():
        fetch = seconds - datalink_s
        print(f"{label:<36} {seconds:8.2f} {seconds / n_cutouts * 1e3:10.1f} "
              f"{serial_s / seconds:8.2f}x {fetch:13.2f} {serial_fetch / fetch:8.2f}x")
    print(f"parallel / serial speed-up: {serial_s / parallel_s:.2f}x "
          f"({sum(not isinstance(r, CutoutRequest) for r in reqs)} without a SODA service; "
          f"cutout shapes {sorted(shapes)[:3]}{'...' if len(shapes) > 3 else ''}; "
          f"serial and parallel pixels {'identical' if same else 'DIFFER'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="SODA cutouts per size and survey")
    parser.add_argument("--sia-n", type=int, default=15, help="SIA2 positions per radius")
    parser.add_argument("--cutouts", type=int, default=100, help="client cutouts")
    parser.add_argument("--size", type=float, default=30.0,
                        help="client cutout width (arcsec)")
    parser.add_argument("--only", choices=("soda", "sia", "client"), action="append",
                        help="run only these parts (repeatable; default: all)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    parts = set(args.only or ("soda", "sia", "client"))
    settings = Settings.from_env()
    urls = endpoints(settings)
    session = requests.Session()
    figures: list[dict[str, Any]] = []
    if "soda" in parts:
        figures += bench_soda(settings, urls["soda"], args.n, session)
    if "sia" in parts:
        bench_sia(settings, urls["sia"], args.sia_n, session)
    if "client" in parts:
        bench_client(settings, args.cutouts, args.size)
    if figures:
        print("\nGoals (SODA, p50):")
        for f in figures:
            if f["met"] is not None:
                print(f"  {f['name']}: {f['value']:.1f} {f['unit']} vs {f['baseline']} "
                      f"{f['baseline_value']:.1f}: {f['ratio']:.2f}x, goal {f['goal']}: "
                      f"{'met' if f['met'] else 'NOT met'}")
    if args.json:
        write_json(args.json, "images", figures)


if __name__ == "__main__":
    main()

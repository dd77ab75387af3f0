# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: PSF photometry for crowded fields, against the truth, by source density.

Which PSF photometry the VISTA catalogues get is decided by measurement (issue:
PSFEx from Debian or photutils).  One VIRCAM-like detector quadrant
(``--size`` pixels square) is simulated at several source densities, from a
disc field to beyond the Bulge's (:mod:`casuvo.simulate.crowded`: a PSF that
varies over the detector, a known sky, Poisson noise).  Every method gets the
same sky-subtracted image:

- **aperture**: casuvo's detection and CASU apertures (``imaging.detect``: sep),
  the 1″ core aperture with an aperture correction from the curve of growth of
  bright isolated stars (as the pipeline does);
- **psfex**: SExtractor (LDAC vignettes) → PSFEx (a PSF varying as a 2nd-degree
  polynomial of x, y) → SExtractor again fitting that PSF (``FLUX_PSF``), the
  Debian binaries, on SExtractor's own detections;
- **casuvo psf**: what the pipeline runs (:mod:`casuvo.imaging.psf`): the same
  two binaries, the PSF stars chosen from casuvo's catalogue, the fluxes put on
  casuvo's detections;
- **photutils**: ePSFs built (``EPSFBuilder``) from the 40 bright isolated
  stars nearest each centre of a 3 × 3 grid of the image, joined into a
  ``GriddedPSFModel``, fitted at casuvo's detections (``PSFPhotometry``,
  position and flux free).

Against the truth (match within 1 pixel, one to one): completeness per
magnitude, the bias (median of measured − true, each method's bright-star
offset removed: a zero point is calibrated on Gaia anyway) and the scatter
(1.4826 MAD) per magnitude, and the time per detector.

Run in the compute environment: ``var/venv-compute/bin/python bench/psf.py``
(``--json PATH`` for ``bench/report.py``).
"""

from __future__ import annotations

import argparse
import itertools
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import NDData
from astropy.table import Table
from scipy.spatial import cKDTree

from casuvo.imaging.detect import DetectionParams, detect_sources
from casuvo.imaging.psf import catalogue_psf
from casuvo.simulate.crowded import PIXEL, SKY, ZP, crowded_field

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import figure, write_json  # bench/report.py: standard library only

#: Sources per square degree to MAG_RANGE's faint end: a disc field, the Bulge
#: (VVV's inner fields: ~10⁶ deg⁻² to Ks 18), and a denser, Galactic-Centre-like one.
DENSITIES = (1.5e5, 1.0e6, 3.0e6)
MAG_BINS = np.arange(12.0, 20.01, 1.0)
MATCH_PIX = 1.0


# ------------------------------------------------------------------ the methods


def _catalogue(image: np.ndarray) -> Table:
    return detect_sources(image, float(np.sqrt(SKY)), PIXEL, 1e9, params=DetectionParams())


def aperture(image: np.ndarray) -> tuple[Table, float]:
    """casuvo's detection + core-aperture magnitude with the curve-of-growth correction."""
    t0 = time.perf_counter()
    cat = _catalogue(image)
    f3, f7 = np.asarray(cat["Aper_flux_3"], float), np.asarray(cat["Aper_flux_7"], float)
    x, y = np.asarray(cat["X_coordinate"], float) - 1, np.asarray(cat["Y_coordinate"], float) - 1
    isolated = _isolated(x, y, 6.0 / PIXEL)
    snr = f3 / np.asarray(cat["Aper_flux_3_err"], float)
    bright = isolated & (snr > 100) & (f3 > 0) & (f7 > 0)
    apcor = float(np.median(-2.5 * np.log10(f7[bright] / f3[bright]))) if bright.sum() >= 5 \
        else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        mag = ZP - 2.5 * np.log10(f3) + apcor
    return Table({"x": x, "y": y, "mag": mag}), time.perf_counter() - t0


def casuvo_psf(image: np.ndarray) -> tuple[Table, float]:
    """The pipeline's PSF fluxes (casuvo.imaging.psf) on casuvo's detections."""
    t0 = time.perf_counter()
    cat = _catalogue(image)
    result = catalogue_psf(image, np.full(image.shape, 100.0, np.float32), cat,
                           pixel_scale=PIXEL, params=DetectionParams(), saturation=1e9,
                           gain=1.0)
    x, y = np.asarray(cat["X_coordinate"], float), np.asarray(cat["Y_coordinate"], float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mag = np.where(result.flux > 0, ZP - 2.5 * np.log10(result.flux), np.nan)
    return Table({"x": x - 1, "y": y - 1, "mag": mag}), time.perf_counter() - t0


def _isolated(x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    if len(x) < 2:
        return np.ones(len(x), bool)
    d, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)
    return d[:, 1] > radius


SEX_PARAMS_1 = ("VIGNET(35,35)", "X_IMAGE", "Y_IMAGE", "FLUX_APER(1)", "FLUXERR_APER(1)",
                "FLUX_RADIUS", "ELONGATION", "FLAGS", "SNR_WIN")
SEX_PARAMS_2 = ("X_IMAGE", "Y_IMAGE", "XPSF_IMAGE", "YPSF_IMAGE", "FLUX_PSF", "FLUXERR_PSF",
                "FLAGS")


def _sextractor(image: Path, work: Path, params: tuple[str, ...], out: Path,
                *extra: str) -> None:
    names = work / f"{out.stem}.param"
    names.write_text("\n".join(params) + "\n")
    subprocess.run(["source-extractor", str(image), "-c", "/dev/null",
                    "-CATALOG_NAME", str(out), "-CATALOG_TYPE", "FITS_LDAC",
                    "-PARAMETERS_NAME", str(names), "-FILTER", "N",
                    "-DETECT_THRESH", "1.5", "-ANALYSIS_THRESH", "1.5", "-DETECT_MINAREA", "5",
                    "-DEBLEND_MINCONT", "0.005", "-BACK_TYPE", "MANUAL", "-BACK_VALUE", "0",
                    "-GAIN", "1", "-SATUR_LEVEL", "1e9", "-PIXEL_SCALE", str(PIXEL),
                    "-MAG_ZEROPOINT", str(ZP), "-PHOT_APERTURES", "20",
                    "-VERBOSE_TYPE", "QUIET", "-CHECKIMAGE_TYPE", "NONE",
                    "-MEMORY_OBJSTACK", "30000", "-MEMORY_PIXSTACK", "3000000",
                    "-MEMORY_BUFSIZE", "4096", *extra],
                   check=True, capture_output=True, text=True, cwd=work)


def psfex(image: np.ndarray, work: Path) -> tuple[Table, float]:
    """SExtractor → PSFEx (2nd-degree spatial variation) → SExtractor with the PSF."""
    path = work / "image.fits"
    fits.PrimaryHDU(image).writeto(path, overwrite=True)
    t0 = time.perf_counter()
    stars = work / "stars.cat"
    _sextractor(path, work, SEX_PARAMS_1, stars, "-DETECT_THRESH", "5")
    subprocess.run(["psfex", str(stars), "-c", "/dev/null", "-PSFVAR_KEYS", "X_IMAGE,Y_IMAGE",
                    "-PSFVAR_GROUPS", "1,1", "-PSFVAR_DEGREES", "2", "-PSF_SIZE", "35,35",
                    "-PSF_SAMPLING", "1.0", "-SAMPLE_FWHMRANGE", "1.5,10",
                    "-SAMPLE_MINSN", "50", "-SAMPLE_MAXELLIP", "0.3",
                    "-PHOTFLUX_KEY", "FLUX_APER(1)", "-PHOTFLUXERR_KEY", "FLUXERR_APER(1)",
                    "-CHECKPLOT_TYPE", "NONE", "-CHECKIMAGE_TYPE", "NONE", "-WRITE_XML", "N",
                    "-VERBOSE_TYPE", "QUIET", "-PSF_DIR", str(work)],
                   check=True, capture_output=True, text=True, cwd=work)
    measured = work / "measured.cat"
    _sextractor(path, work, SEX_PARAMS_2, measured, "-PSF_NAME", str(work / "stars.psf"))
    elapsed = time.perf_counter() - t0
    cat = Table.read(measured, hdu=2)
    flux = np.asarray(cat["FLUX_PSF"], float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mag = np.where(flux > 0, ZP - 2.5 * np.log10(flux), np.nan)
    return Table({"x": np.asarray(cat["XPSF_IMAGE"], float) - 1,
                  "y": np.asarray(cat["YPSF_IMAGE"], float) - 1, "mag": mag}), elapsed


def photutils_psf(image: np.ndarray) -> tuple[Table, float]:
    """ePSFs from bright isolated stars per 3 × 3 cell → GriddedPSFModel → PSFPhotometry."""
    from photutils.psf import EPSFBuilder, GriddedPSFModel, PSFPhotometry, extract_stars

    t0 = time.perf_counter()
    start, _ = aperture(image)
    size = image.shape[0]
    snr_flux = 10 ** (-0.4 * (start["mag"] - ZP))
    # bright (S/N ≳ 50 in the core), isolated, away from the edges; per cell of a 3 × 3
    # grid the 40 such stars nearest its centre (a cell of a sparse field has few)
    good = np.isfinite(start["mag"]) & _isolated(start["x"], start["y"], 10.0) \
        & (snr_flux > 50 * math.sqrt(SKY) * 4) & (start["x"] > 12) \
        & (start["x"] < size - 13) & (start["y"] > 12) & (start["y"] < size - 13)
    gx, gy = np.asarray(start["x"])[good], np.asarray(start["y"])[good]
    epsfs, centres = [], []
    nddata = NDData(image.astype(np.float64))
    for i in range(3):
        for j in range(3):
            cx, cy = (j + 0.5) * size / 3, (i + 0.5) * size / 3
            near = np.argsort(np.hypot(gx - cx, gy - cy))[:40]
            stars = extract_stars(nddata, Table({"x": gx[near], "y": gy[near]}), size=25)
            epsf = EPSFBuilder(oversampling=2, maxiters=5, progress_bar=False)(stars).epsf
            epsfs.append(epsf)
            centres.append((cx, cy))
    model = GriddedPSFModel(NDData(np.stack([e.data for e in epsfs]),
                                   meta={"grid_xypos": centres, "oversampling": 2}))
    init = Table({"x": start["x"], "y": start["y"],
                  "flux": np.nan_to_num(snr_flux, nan=1.0)})
    phot = PSFPhotometry(model, (7, 7), aperture_radius=3)
    result = phot(image.astype(np.float64), init_params=init)
    elapsed = time.perf_counter() - t0
    flux = np.asarray(result["flux_fit"], float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mag = np.where(flux > 0, ZP - 2.5 * np.log10(flux), np.nan)
    return Table({"x": np.asarray(result["x_fit"], float),
                  "y": np.asarray(result["y_fit"], float), "mag": mag}), elapsed


# ------------------------------------------------------------------ scoring


def score(truth: Table, found: Table) -> dict[str, list[float]]:
    """Completeness, bias (bright offset removed) and scatter per magnitude bin."""
    ok = np.isfinite(found["mag"])
    found = found[ok]
    tree = cKDTree(np.column_stack([found["x"], found["y"]]))
    d, k = tree.query(np.column_stack([truth["x"], truth["y"]]), distance_upper_bound=MATCH_PIX)
    hit = np.isfinite(d)
    # one to one: a detection claimed by two true stars counts for the nearer
    order = np.argsort(d)
    taken: set[int] = set()
    for i in order[hit[order]]:
        if int(k[i]) in taken:
            hit[i] = False
        else:
            taken.add(int(k[i]))
    delta = np.full(len(truth), np.nan)
    delta[hit] = np.asarray(found["mag"])[k[hit]] - np.asarray(truth["mag"])[hit]
    mag = np.asarray(truth["mag"])
    bright = hit & (mag < 15)
    offset = float(np.median(delta[bright])) if bright.any() else 0.0
    out: dict[str, list[float]] = {"completeness": [], "bias": [], "scatter": [], "n": []}
    for lo, hi in itertools.pairwise(MAG_BINS):
        inbin = (mag >= lo) & (mag < hi)
        m = inbin & hit
        out["n"].append(float(inbin.sum()))
        out["completeness"].append(float(m.sum() / max(inbin.sum(), 1)))
        dd = delta[m] - offset
        out["bias"].append(float(np.median(dd)) if m.sum() >= 5 else math.nan)
        out["scatter"].append(float(1.4826 * np.median(np.abs(dd - np.median(dd))))
                              if m.sum() >= 5 else math.nan)
    out["offset"] = [offset]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=1024, help="image side, pixels")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("source-extractor") or not shutil.which("psfex"):
        print("bench/psf.py needs source-extractor and psfex (Debian packages)")
        return 2
    figures, rows = [], []
    for density in DENSITIES:
        image, truth = crowded_field(args.size, density, args.seed)
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            methods = {"aperture": aperture, "psfex": lambda im, t=tmp: psfex(im, Path(t)),
                       "casuvo psf": casuvo_psf, "photutils": photutils_psf}
            for name, fn in methods.items():
                found, seconds = fn(image)
                results[name] = (score(truth, found), seconds)
        label = f"{density:.1e} deg⁻²"
        times = ", ".join(f"{n} {s:.1f}" for n, (_, s) in results.items())
        print(f"\n{len(truth)} stars ({label}, {args.size}² pixels); seconds: {times}")
        print(f"{'mag':>6} {'n':>6} " + " ".join(f"{n + ' c/b/σ':>24}" for n in results))
        for b, lo in enumerate(MAG_BINS[:-1]):
            cells = []
            for sc, _ in results.values():
                cells.append(f"{sc['completeness'][b]:6.3f} {sc['bias'][b]:+7.3f} "
                             f"{sc['scatter'][b]:6.3f}")
            print(f"{lo:4.0f}–{lo + 1:<2.0f} {sc['n'][b]:6.0f} " + "   ".join(cells))
        ap, ap_s = results["aperture"]
        for name in ("psfex", "casuvo psf", "photutils"):
            sc, secs = results[name]
            for b, lo in enumerate(MAG_BINS[:-1]):
                if lo in (16.0, 18.0):
                    figures.append(figure(
                        f"{name} scatter, Ks {lo:.0f}–{lo + 1:.0f}, {label}", sc["scatter"][b],
                        "mag", baseline="aperture (casuvo, 1″ core)",
                        baseline_value=ap["scatter"][b], goal="≤ 1× in every bin",
                        met=bool(sc["scatter"][b] <= ap["scatter"][b])))
            figures.append(figure(f"{name} time, {args.size}² pixels, {label}", secs, "s",
                                  baseline="aperture (casuvo)", baseline_value=ap_s))
        rows.append({"density": density, "stars": len(truth),
                     "results": {n: {"seconds": s, **sc} for n, (sc, s) in results.items()}})
    if args.json:
        write_json(args.json, "psf", figures, size=args.size, rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

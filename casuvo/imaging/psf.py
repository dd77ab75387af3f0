# SPDX-License-Identifier: BSD-3-Clause
"""PSF photometry for crowded fields: PSFEx's spatially varying model, fitted by SExtractor.

Chosen by measurement (``bench/psf.py``, ``docs/psf.md``): on simulated VIRCAM
detectors from a disc field to three times the Bulge's density, SExtractor +
PSFEx (Debian's binaries) gave a lower photometric scatter than the 1″ core
aperture in every magnitude bin down to the limit and higher completeness, in
2–3 s per 1024² image; photutils' ``PSFPhotometry`` with gridded ePSFs was
noisier than the aperture on bright stars and 15–45× slower.

Three runs, on the sky-subtracted image with its confidence map as weight:
SExtractor at a high threshold writes vignettes of the bright stars; PSFEx
models the PSF as a 2nd-degree polynomial of the position (``PSFVAR_DEGREES``),
normalised to the flux in the "total" aperture (CASU aperture 7, radius 4 ×
RCORE).  In a crowded field that aperture holds neighbours' light too (at the
Bulge's density every PSF flux came out 0.37 mag too bright), so a PSF flux's
scale is set per image, as DAOPHOT users do: by the median offset of bright
stars' PSF magnitudes from their aperture-corrected core magnitudes.
Normalising to the core aperture instead avoids the offset but carries the
core's position-dependent aperture loss into every PSF flux (bright-star
scatter 0.032 instead of 0.014 mag at the Bulge's density).  SExtractor again, at the
detection's threshold, fits that PSF to every source (``FLUX_PSF``) and is
associated with the catalogue's own sources (``ASSOC``: the nearest within
``MATCH_PIX``) so that the fluxes land on the catalogue's rows.  A source
SExtractor did not deblend or fit gets NaN.

Worker code: no database, only the two binaries (``source-extractor``,
``psfex``: Debian packages of the same names).
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from casuvo.imaging.detect import DetectionParams

log = logging.getLogger(__name__)

#: How far (pixels) SExtractor's PSF position may be from the catalogue's to be its.
MATCH_PIX = 1.5
#: PSFEx's stamp (pixels): eight FWHM of a 0.8″ PSF on 0.34″ pixels, and room for worse.
PSF_SIZE = 31
#: Fewest stars PSFEx must accept for a model; fewer and the image gets no PSF fluxes.
MIN_STARS = 10
#: PSF stars per cell of a 3 × 3 grid: PSFEx's time grows faster than the number of
#: stars (measured on a demo tile: 19 s for 522, 5.9 s for 180), and 2nd-degree variation needs
#: stars all over the image, not many.
STARS_PER_CELL = 15


def choose_psf_stars(x: np.ndarray, y: np.ndarray, shape: tuple[int, int], snr: np.ndarray,
                     classification: np.ndarray, flags: np.ndarray, peak: np.ndarray,
                     saturation: float, isolation_pix: float) -> np.ndarray:
    """The catalogue rows to model the PSF from: stellar (class −1), clean (no bad
    pixels), S/N ≥ 50, peak below 80 % of saturation, no other source within
    ``isolation_pix`` (halved while fewer than 90 stars qualify); per cell of a
    3 × 3 grid the :data:`STARS_PER_CELL` of highest S/N.
    """
    from scipy.spatial import cKDTree

    ok = (classification == -1) & (flags == 0) & (snr >= 50) & (peak < 0.8 * saturation)
    if len(x) > 1:
        d, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)
        # in the most crowded fields hardly a star is isolated: halve the radius until
        # there are stars enough (PSFEx's own neighbour rejection does the rest)
        radius = isolation_pix
        while (ok & (d[:, 1] > radius)).sum() < 9 * MIN_STARS and radius > 2.0:
            radius /= 2
        ok &= d[:, 1] > radius
    ny, nx = shape
    cell = np.clip((y - 1) * 3 // ny, 0, 2).astype(int) * 3 + \
        np.clip((x - 1) * 3 // nx, 0, 2).astype(int)
    chosen = np.zeros(len(x), bool)
    for c in range(9):
        rows = np.flatnonzero(ok & (cell == c))
        chosen[rows[np.argsort(-snr[rows])][:STARS_PER_CELL]] = True
    return chosen


class PSFError(RuntimeError):
    """A PSF run failed outright (a binary missing or crashing); the message says which."""


@dataclass(frozen=True)
class PSFResult:
    """PSF fluxes per catalogue row (NaN: not fitted) and the model's summary."""

    flux: np.ndarray
    flux_err: np.ndarray
    fwhm_pix: float
    """The model's FWHM at the image centre (PSFEx's PSF_FWHM), NaN without a model."""
    n_stars: int
    """Stars PSFEx accepted (0: no model)."""
    chi2: float


def _run(cmd: list[str], cwd: Path) -> None:
    t0 = time.perf_counter()
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=cwd)
    except FileNotFoundError as exc:
        raise PSFError(f"{cmd[0]} not found: install the Debian package "
                       f"{'psfex' if cmd[0] == 'psfex' else 'source-extractor'}") from exc
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
        raise PSFError(f"{cmd[0]} failed: {' / '.join(tail)}") from exc
    log.debug("%s: %.1f s", " ".join(cmd[:2]), time.perf_counter() - t0)


def _sextractor(work: Path, image: Path, weight: Path, catalogue: str, params: list[str],
                settings: dict[str, str]) -> Path:
    names = work / f"{catalogue}.param"
    names.write_text("\n".join(params) + "\n")
    out = work / f"{catalogue}.cat"
    cmd = ["source-extractor", str(image), "-c", "/dev/null", "-CATALOG_NAME", str(out),
           "-CATALOG_TYPE", "FITS_LDAC", "-PARAMETERS_NAME", str(names),
           "-WEIGHT_IMAGE", str(weight), "-WEIGHT_TYPE", "MAP_WEIGHT", "-FILTER", "N",
           "-BACK_TYPE", "MANUAL", "-BACK_VALUE", "0", "-VERBOSE_TYPE", "QUIET",
           "-CHECKIMAGE_TYPE", "NONE", "-MEMORY_OBJSTACK", "30000",
           "-MEMORY_PIXSTACK", "3000000", "-MEMORY_BUFSIZE", "4096"]
    for key, value in settings.items():
        cmd += [f"-{key}", value]
    _run(cmd, work)
    return out


def psf_photometry(sky: np.ndarray, conf: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                   pixel_scale: float, rcore_arcsec: float, saturation: float, gain: float,
                   threshold: float, min_area: int, deblend_cont: float,
                   psf_stars: np.ndarray, work_dir: Path | None = None) -> PSFResult:
    """PSF fluxes at the catalogue's sources (``x``, ``y``: 1-based FITS pixels).

    ``sky``: the sky-subtracted image; ``conf``: its confidence map (the weight);
    the detection settings are the catalogue's own so that SExtractor finds the
    same sources.  ``psf_stars``: the rows PSFEx models the PSF from
    (:func:`choose_psf_stars`).
    """
    n = len(x)
    none = PSFResult(np.full(n, np.nan), np.full(n, np.nan), np.nan, 0, np.nan)
    if n == 0:
        return none
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="psf-") as tmp:
        work = Path(tmp)
        image, weight = work / "image.fits", work / "weight.fits"
        fits.PrimaryHDU(np.asarray(sky, np.float32)).writeto(image)
        fits.PrimaryHDU(np.asarray(conf, np.float32)).writeto(weight)
        total_diameter = 2 * 4 * rcore_arcsec / pixel_scale   # CASU aperture 7
        common = {"PIXEL_SCALE": f"{pixel_scale}", "SATUR_LEVEL": f"{saturation}",
                  "GAIN": f"{gain}", "DEBLEND_MINCONT": f"{deblend_cont}",
                  "PHOT_APERTURES": f"{total_diameter:.2f}"}
        chosen = work / "chosen.txt"
        pick = np.flatnonzero(psf_stars)
        np.savetxt(chosen, np.column_stack([x[pick], y[pick], pick + 1]), fmt="%.4f %.4f %d")
        stars = _sextractor(
            work, image, weight, "stars",
            [f"VIGNET({PSF_SIZE},{PSF_SIZE})", "X_IMAGE", "Y_IMAGE", "FLUX_APER(1)",
             "FLUXERR_APER(1)", "FLUX_RADIUS", "ELONGATION", "FLAGS", "SNR_WIN",
             "VECTOR_ASSOC(1)"],
            {**common, "DETECT_THRESH": "5", "ANALYSIS_THRESH": "5",
             "DETECT_MINAREA": f"{min_area}", "ASSOC_NAME": str(chosen),
             "ASSOC_PARAMS": "1,2", "ASSOC_DATA": "3", "ASSOC_RADIUS": f"{MATCH_PIX}",
             "ASSOC_TYPE": "NEAREST", "ASSOCSELEC_TYPE": "MATCHED"})
        _run(["psfex", str(stars), "-c", "/dev/null", "-PSFVAR_KEYS", "X_IMAGE,Y_IMAGE",
              "-PSFVAR_GROUPS", "1,1", "-PSFVAR_DEGREES", "2",
              "-PSF_SIZE", f"{PSF_SIZE},{PSF_SIZE}", "-PSF_SAMPLING", "1.0",
              "-SAMPLE_FWHMRANGE", "1.5,15", "-SAMPLE_MINSN", "50", "-SAMPLE_MAXELLIP", "0.3",
              "-SAMPLE_FLAGMASK", "0x00fe",
              "-PHOTFLUX_KEY", "FLUX_APER(1)", "-PHOTFLUXERR_KEY", "FLUXERR_APER(1)",
              "-CHECKPLOT_TYPE", "NONE", "-CHECKIMAGE_TYPE", "NONE", "-WRITE_XML", "N",
              "-VERBOSE_TYPE", "QUIET", "-PSF_DIR", str(work)], work)
        model = work / "stars.psf"
        if not model.is_file():
            log.warning("PSFEx made no model (too few stars)")
            return none
        header = fits.getheader(model, 1)
        accepted = int(header.get("ACCEPTED", 0))
        if accepted < MIN_STARS:
            log.warning("PSFEx accepted %d stars, fewer than %d: no PSF fluxes", accepted,
                        MIN_STARS)
            return none
        assoc = work / "assoc.txt"
        np.savetxt(assoc, np.column_stack([x, y, np.arange(1, n + 1)]), fmt="%.4f %.4f %d")
        measured = _sextractor(
            work, image, weight, "measured",
            ["VECTOR_ASSOC(1)", "XPSF_IMAGE", "YPSF_IMAGE", "FLUX_PSF", "FLUXERR_PSF"],
            {**common, "DETECT_THRESH": f"{threshold}", "ANALYSIS_THRESH": f"{threshold}",
             "DETECT_MINAREA": f"{min_area}", "PSF_NAME": str(model),
             "ASSOC_NAME": str(assoc), "ASSOC_PARAMS": "1,2", "ASSOC_DATA": "3",
             "ASSOC_RADIUS": f"{MATCH_PIX}", "ASSOC_TYPE": "NEAREST",
             "ASSOCSELEC_TYPE": "MATCHED"})
        with fits.open(measured) as hdul:
            rows = hdul[2].data
            index = np.asarray(rows["VECTOR_ASSOC"], dtype=np.int64).reshape(-1) - 1
            flux_psf = np.asarray(rows["FLUX_PSF"], float)
            err_psf = np.asarray(rows["FLUXERR_PSF"], float)
    flux, err = np.full(n, np.nan), np.full(n, np.nan)
    ok = (index >= 0) & (index < n) & np.isfinite(flux_psf) & (err_psf > 0)
    # two SExtractor sources on one catalogue row (a split): the row keeps neither
    counts = np.bincount(index[ok], minlength=n)
    ok &= counts[np.clip(index, 0, n - 1)] == 1
    flux[index[ok]] = flux_psf[ok]
    err[index[ok]] = err_psf[ok]
    return PSFResult(flux, err, float(header.get("PSF_FWHM", np.nan)), accepted,
                     float(header.get("CHI2", np.nan)))


def catalogue_psf(sky: np.ndarray, conf: np.ndarray, catalogue: Table, *, pixel_scale: float,
                  params: DetectionParams, saturation: float, gain: float,
                  isolation_arcsec: float = 5.0) -> PSFResult:
    """PSF fluxes for every row of a casuvo (CASU-column) catalogue of ``sky``: the PSF
    stars chosen from it (:func:`choose_psf_stars`), the detection settings its own."""
    x = np.asarray(catalogue["X_coordinate"], float)
    y = np.asarray(catalogue["Y_coordinate"], float)
    f3 = np.asarray(catalogue["Aper_flux_3"], float)
    e3 = np.asarray(catalogue["Aper_flux_3_err"], float)
    snr = np.divide(f3, e3, out=np.zeros_like(f3), where=e3 > 0)
    stars = choose_psf_stars(x, y, sky.shape, snr, np.asarray(catalogue["Classification"]),
                             np.asarray(catalogue["Error_bit_flag"]),
                             np.asarray(catalogue["Peak_height"], float), saturation,
                             isolation_arcsec / pixel_scale)
    return psf_photometry(sky, conf, x, y, pixel_scale=pixel_scale,
                          rcore_arcsec=params.rcore_arcsec, saturation=saturation, gain=gain,
                          threshold=params.threshold, min_area=params.min_area,
                          deblend_cont=params.deblend_cont, psf_stars=stars)

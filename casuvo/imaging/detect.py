# SPDX-License-Identifier: BSD-3-Clause
"""Source detection and aperture photometry of one sky-subtracted detector (with sep).

The catalogue follows CASU's imcore conventions (shared/reference/formats.md
§2.4): a core radius RCORE of 1″, apertures of {0.5, 1/√2, 1, √2, 2, 2√2, 4,
5, 6, 7, 8, 10, 12} × RCORE, Gaussian sigma, ellipticity 1 − b/a, position
angle, peak height, Kron and half-light radii, error-bit flag (bad pixels in
the default aperture), average confidence, and a morphological class
(−1 stellar, +1 non-stellar, 0 noise, −2 borderline stellar, −9 saturated).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sep
from astropy.table import Table

__all__ = ["APERTURE_FACTORS", "DetectionParams", "detect_sources", "fill_gaps"]

#: sep's pixel stack: sep allocates it on every call, so a large one is a fixed cost per
#: image (0.18 s for 10 million pixels — more than detecting a miniature detector).
PIXSTACK = 300_000

APERTURE_FACTORS = (0.5, 1 / np.sqrt(2), 1.0, np.sqrt(2), 2.0, 2 * np.sqrt(2), 4.0, 5.0, 6.0,
                    7.0, 8.0, 10.0, 12.0)


@dataclass(frozen=True)
class DetectionParams:
    """Detection settings (from the survey configuration)."""

    threshold: float = 1.5
    """Detection threshold in units of the sky noise."""
    min_area: int = 5
    """Minimum connected pixels."""
    rcore_arcsec: float = 1.0
    """CASU core radius; aperture 3 has this radius."""
    deblend_cont: float = 0.005


def _classify(fwhm: np.ndarray, ell: np.ndarray, peak: np.ndarray, snr: np.ndarray,
              saturation: float) -> tuple[np.ndarray, np.ndarray]:
    """Stellarness statistic (σ from the stellar-locus FWHM) and CASU class."""
    # Single hot pixels and cosmic rays are bright and sharp: keep them out of the
    # stellar locus (a PSF is always wider than 1.5 pixels when sampled properly).
    bright = (snr > 20) & (peak < 0.8 * saturation) & np.isfinite(fwhm) & (fwhm > 1.5)
    if bright.sum() >= 5:
        locus = np.median(fwhm[bright])
        spread = 1.4826 * np.median(np.abs(fwhm[bright] - locus)) or 0.05 * locus
    else:
        locus, spread = np.nanmedian(fwhm), 0.1 * np.nanmedian(fwhm)
    # The error on a size grows as the signal falls: scale the spread by 20/snr.
    sigma = spread * np.maximum(1.0, 20.0 / np.maximum(snr, 1e-3))
    stat = (fwhm - locus) / sigma
    cls = np.where(np.abs(stat) < 2, -1, np.where(stat >= 3, 1, -2)).astype(np.int16)
    cls[(np.abs(stat) >= 2) & (stat < 3)] = -2
    cls[(stat < -5) | (fwhm < 0.5 * locus)] = 0  # sharper than the PSF: a hot pixel or spike
    cls[snr < 3] = 0
    cls[peak >= saturation] = -9
    cls[(ell > 0.5) & (cls == -1)] = 1
    return stat.astype(np.float32), cls


#: Images larger than this on a side are detected in blocks of this size (plus
#: ``BLOCK_MARGIN`` on every side).  sep's cleaning pass (SExtractor's CLEAN:
#: dropping detections that are only the wings of brighter neighbours) grows faster
#: than the number of sources: a crowded VVV tile of 12.5 million pixels spent 25 s
#: cleaning in one piece and none in 1024² blocks.
BLOCK = 1024
#: Margin around a block, larger than a bright star's isophote: a source belongs to
#: the block whose core holds its centroid, and is measured whole there.
BLOCK_MARGIN = 128
_POSITION_FIELDS = (("x", "xcpeak", "xpeak", "xmin", "xmax"),
                    ("y", "ycpeak", "ypeak", "ymin", "ymax"))


#: Longest run of bad pixels along a row that :func:`fill_gaps` interpolates over.
MAX_GAP = 4


def fill_gaps(sky: np.ndarray, max_gap: int = MAX_GAP) -> tuple[np.ndarray, np.ndarray]:
    """The image with short runs of bad (NaN) pixels interpolated along rows, and the mask
    of the pixels still bad.

    SExtractor's INTERP for the same reason: a bad column or a blanked cosmic ray
    through a star leaves a valley the deblender splits the star at (one star, two
    detections 0.9″ apart).  Interpolated pixels are measured as if good, as in
    SExtractor; ``Error_bit_flag`` still counts them (from the confidence map).
    Wider holes stay masked (zero, infinite noise).
    """
    mask = ~np.isfinite(sky)
    data = np.where(mask, 0.0, sky).astype(np.float32)
    if not mask.any():
        return data, mask
    # Runs of bad pixels from the edges of the mask along rows (scanning only the
    # runs: running extrema over the whole image cost 0.3 s per 2048² detector).
    ny, nx = data.shape
    edges = np.zeros((ny, nx + 2), np.int8)
    edges[:, 1:-1] = mask
    step = np.diff(edges, axis=1)
    rows, start = np.nonzero(step == 1)
    end = np.nonzero(step == -1)[1]  # row-major order pairs each run's start and end
    keep = (start > 0) & (end < nx) & (end - start <= max_gap)
    rows, start, end = rows[keep], start[keep], end[keep]
    length = end - start
    rows = np.repeat(rows, length)
    lo, hi = np.repeat(start - 1, length), np.repeat(end, length)
    c = lo + 1 + np.arange(len(rows)) - np.repeat(np.cumsum(length) - length, length)
    w = (c - lo) / (hi - lo)
    data[rows, c] = data[rows, lo] * (1 - w) + data[rows, hi] * w
    remaining = mask.copy()
    remaining[rows, c] = False
    return data, remaining


def _extract_one(data: np.ndarray, mask: np.ndarray, noise: float,
                 params: DetectionParams) -> np.ndarray:
    """sep.extract with the default pixel stack, and one as large as the image where
    that overflows (crowded Galactic-plane fields and bright nebulae hold millions of
    pixels above a 1.5σ threshold at once)."""
    for pixstack in (PIXSTACK, max(PIXSTACK, data.size)):
        sep.set_extract_pixstack(pixstack)
        try:
            return sep.extract(data, params.threshold, err=noise, mask=mask,
                               minarea=params.min_area, deblend_cont=params.deblend_cont)
        except Exception as exc:  # sep raises a bare Exception when its buffers overflow
            if "pixel buffer full" not in str(exc) or pixstack >= data.size:
                raise
    raise AssertionError("unreachable")


def _extract(data: np.ndarray, mask: np.ndarray, noise: float,
             params: DetectionParams) -> np.ndarray:
    """Detect on the whole image, in overlapping blocks where it is large (see BLOCK)."""
    ny, nx = data.shape
    if max(ny, nx) <= BLOCK + 2 * BLOCK_MARGIN:
        return _extract_one(data, mask, noise, params)
    parts = []
    for y0 in range(0, ny, BLOCK):
        for x0 in range(0, nx, BLOCK):
            ya, yb = max(y0 - BLOCK_MARGIN, 0), min(y0 + BLOCK + BLOCK_MARGIN, ny)
            xa, xb = max(x0 - BLOCK_MARGIN, 0), min(x0 + BLOCK + BLOCK_MARGIN, nx)
            objs = _extract_one(np.ascontiguousarray(data[ya:yb, xa:xb]),
                                np.ascontiguousarray(mask[ya:yb, xa:xb]), noise, params)
            for names, offset in ((_POSITION_FIELDS[0], xa), (_POSITION_FIELDS[1], ya)):
                for name in names:
                    objs[name] += offset
            core = ((objs["x"] >= x0 - 0.5) & (objs["x"] < x0 + BLOCK - 0.5)
                    & (objs["y"] >= y0 - 0.5) & (objs["y"] < y0 + BLOCK - 0.5))
            parts.append(objs[core])
    return np.concatenate(parts)


def detect_sources(sky: np.ndarray, noise: float, pixel_scale: float, saturation: float,
                   conf: np.ndarray | None = None,
                   params: DetectionParams | None = None,
                   n_apertures: int = len(APERTURE_FACTORS)) -> Table:
    """Detect and measure sources; pixel coordinates are 1-based as in FITS/CASU.

    ``n_apertures`` < 13 measures only the first apertures: a single exposure's
    catalogue is internal (astrometry, zero point, aperture corrections up to the
    "total" aperture 7), and apertures 8–13 hold two thirds of the pixels summed.
    """
    if not 7 <= n_apertures <= len(APERTURE_FACTORS):
        raise ValueError(f"n_apertures must be 7..{len(APERTURE_FACTORS)}, got {n_apertures}")
    params = params or DetectionParams()
    data, mask = fill_gaps(sky)
    objs = _extract(data, mask, noise, params)
    objs = objs[(objs["a"] > 0) & (objs["b"] > 0)]
    x, y = objs["x"], objs["y"]
    rcore = params.rcore_arcsec / pixel_scale
    t = Table()
    t["Sequence_number"] = np.arange(1, len(objs) + 1, dtype=np.int32)
    t["Isophotal_flux"] = objs["flux"].astype(np.float32)
    t["X_coordinate"] = (x + 1).astype(np.float32)
    t["Y_coordinate"] = (y + 1).astype(np.float32)
    t["X_coordinate_err"] = np.sqrt(np.maximum(objs["errx2"], 0)).astype(np.float32)
    t["Y_coordinate_err"] = np.sqrt(np.maximum(objs["erry2"], 0)).astype(np.float32)
    t["Gaussian_sigma"] = np.sqrt(0.5 * (objs["a"] ** 2 + objs["b"] ** 2)).astype(np.float32)
    t["Ellipticity"] = (1 - objs["b"] / objs["a"]).astype(np.float32)
    t["Position_angle"] = np.degrees(objs["theta"]).astype(np.float32)
    t["Peak_height"] = objs["peak"].astype(np.float32)
    for i, factor in enumerate(APERTURE_FACTORS[:n_apertures], start=1):
        # subpix=0: the exact overlap of circle and pixel (faster than sampling it)
        flux, ferr, _ = sep.sum_circle(data, x, y, factor * rcore, err=noise, mask=mask,
                                       subpix=0)
        t[f"Aper_flux_{i}"] = flux.astype(np.float32)
        t[f"Aper_flux_{i}_err"] = ferr.astype(np.float32)
    kron, _ = sep.kron_radius(data, x, y, objs["a"], objs["b"], objs["theta"], 6.0)
    half, _ = sep.flux_radius(data, x, y, np.full(len(objs), 6 * rcore), 0.5,
                              normflux=t["Aper_flux_7"], subpix=1)
    t["Kron_radius"] = kron.astype(np.float32)
    t["Half_radius"] = half.astype(np.float32)
    fwhm = 2.0 * half  # for a Gaussian-like core, FWHM ≈ 2 × half-light radius
    t["FWHM"] = fwhm.astype(np.float32)
    # Error_bit_flag: bad pixels in the default aperture, and the aperture running
    # off the detector (a truncated PSF biases centroid and flux alike).
    npix = np.pi * rcore**2
    if conf is not None:
        cconf, _, trunc = sep.sum_circle(conf.astype(np.float32), x, y, rcore, subpix=1)
        bad, _, _ = sep.sum_circle((conf <= 0).astype(np.float32), x, y, rcore, subpix=1)
        t["Av_conf"] = (cconf / npix).astype(np.float32)
    else:
        bad = np.zeros(len(objs))
        _, _, trunc = sep.sum_circle(data, x, y, rcore, subpix=1)
        t["Av_conf"] = np.full(len(objs), 100.0, np.float32)
    off_edge = (trunc & sep.APER_TRUNC) != 0
    t["Error_bit_flag"] = (np.rint(bad) + np.where(off_edge, np.ceil(npix / 2), 0)
                           ).astype(np.int16)
    t["Sky_level"] = np.zeros(len(objs), np.float32)
    t["Sky_rms"] = np.full(len(objs), noise, np.float32)
    snr = t["Aper_flux_3"] / np.maximum(t["Aper_flux_3_err"], 1e-9)
    stat, cls = _classify(np.asarray(fwhm, float), np.asarray(t["Ellipticity"], float),
                          np.asarray(objs["peak"], float), np.asarray(snr, float), saturation)
    t["Classification"] = cls
    t["Statistic"] = stat
    return t

# SPDX-License-Identifier: BSD-3-Clause
"""The sky rendered onto one detector: PSF stamps, galaxies and the planetary nebula.

Point sources are elliptical Moffat (β = 3) stamps with sub-pixel centring,
each normalised to its total flux and large enough for its wings to fall
below a tenth of the sky noise; galaxies are exponential discs convolved
with the PSF; the planetary nebula is its analytic shell smoothed by a
Gaussian of the seeing.  Everything lands in ADU before the flat-field
response; :func:`render_detector` returns the truth table of what landed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve

from casuvo.simulate.detectors import bias_level, saturation_level
from casuvo.simulate.optics import tangent_wcs
from casuvo.simulate.skymodel import POINT_KINDS, pn_surface_brightness
from casuvo.surveys.instruments import Instrument

__all__ = ["MAX_STAMP_HALF", "MOFFAT_BETA", "STAMP_FWHM", "WING_NOISE", "MoffatPSF",
           "render_detector"]

#: Moffat β of every PSF (the truth header's MOFFBETA).
MOFFAT_BETA = 3.0
#: Smallest stamp half-width in FWHM; stamps grow until the PSF wing is below
#: WING_NOISE × the sky noise, up to MAX_STAMP_HALF pixels.
STAMP_FWHM, WING_NOISE, MAX_STAMP_HALF = 4.0, 0.1, 256
_RENDER_CHUNK = 1_000_000  # stamp pixels evaluated at once (memory ~ 60 bytes each)


@dataclass(frozen=True)
class MoffatPSF:
    """Elliptical Moffat in pixel units."""

    fwhm: float
    a: float
    b: float
    cos: float
    sin: float
    beta: float = MOFFAT_BETA

    @classmethod
    def make(cls, fwhm_arcsec: float, ellipticity: float, pa_deg: float,
             pixel_scale: float) -> MoffatPSF:
        fwhm = fwhm_arcsec / pixel_scale
        alpha = fwhm / (2 * math.sqrt(2 ** (1 / MOFFAT_BETA) - 1))
        q = math.sqrt(max(1.0 - ellipticity, 0.05))
        pa = math.radians(pa_deg)
        # Major axis towards (east, north) = (sin pa, cos pa), i.e. pixel (−sin pa, cos pa).
        return cls(fwhm, alpha / q, alpha * q, -math.sin(pa), math.cos(pa))

    def profile(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Unnormalised Moffat at pixel offsets (broadcast; float32 stays float32)."""
        u = dx * self.cos + dy * self.sin
        v = dy * self.cos - dx * self.sin
        u *= u
        u *= 1.0 / self.a**2
        v *= v
        v *= 1.0 / self.b**2
        u += v
        u += 1.0
        np.reciprocal(u, out=u)
        if self.beta == 3.0:
            v = u * u
            v *= u
            return v
        return u**self.beta

    def peak_fraction(self) -> float:
        return (self.beta - 1) / (math.pi * self.a * self.b)

    def half_width(self, flux: np.ndarray, threshold: float) -> np.ndarray:
        """Stamp half-width (pixels) where the wing falls below ``threshold`` ADU."""
        base = math.ceil(STAMP_FWHM * self.fwhm)
        ratio = np.maximum(flux * self.peak_fraction() / max(threshold, 1e-3), 1.0)
        r = self.a * np.sqrt(np.maximum(ratio ** (1 / self.beta) - 1.0, 0.0))
        h = np.clip(np.ceil(r), base, MAX_STAMP_HALF)
        # Quantise to base × 2^(k/2) so that stars share a few stamp sizes.
        k = np.ceil(2 * np.log2(h / base))
        return np.minimum(np.ceil(base * 2 ** (k / 2)), MAX_STAMP_HALF).astype(np.int64)

    def kernel(self) -> np.ndarray:
        h = math.ceil(STAMP_FWHM * self.fwhm)
        off = np.arange(-h, h + 1, dtype=np.float64)
        k = self.profile(off[None, :], off[:, None])
        return k / k.sum()


class _Accumulator:
    """Adds weighted pixel indices to an image in few full-image passes (np.bincount)."""

    def __init__(self, image: np.ndarray) -> None:
        self.flat = image.ravel()
        self.idx: list[np.ndarray] = []
        self.w: list[np.ndarray] = []
        self.pending = 0

    def add(self, idx: np.ndarray, w: np.ndarray) -> None:
        self.idx.append(idx)
        self.w.append(w)
        self.pending += len(idx)
        if self.pending >= max(self.flat.size, 2 * _RENDER_CHUNK):
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.flat += np.bincount(np.concatenate(self.idx), weights=np.concatenate(self.w),
                                     minlength=self.flat.size)
        self.idx, self.w, self.pending = [], [], 0


def _render_points(acc: _Accumulator, shape: tuple[int, int], x: np.ndarray, y: np.ndarray,
                   flux: np.ndarray, psf: MoffatPSF, half: int) -> np.ndarray:
    """Add PSF stamps of half-width ``half``; return each stamp's peak (ADU).

    The profile is evaluated in float32 (relative error ~1e-7) and each stamp is
    normalised to its total flux in float64.
    """
    ny, nx = shape
    size = 2 * half + 1
    off = np.arange(-half, half + 1, dtype=np.float32)
    ioff = np.arange(-half, half + 1, dtype=np.int64)
    peaks = np.empty(len(x))
    step = max(1, _RENDER_CHUNK // (size * size))
    for lo in range(0, len(x), step):
        sl = slice(lo, lo + step)
        ix = np.floor(x[sl] + 0.5).astype(np.int64)
        iy = np.floor(y[sl] + 0.5).astype(np.int64)
        dx = off[None, None, :] - (x[sl] - ix).astype(np.float32)[:, None, None]
        dy = off[None, :, None] - (y[sl] - iy).astype(np.float32)[:, None, None]
        prof = psf.profile(dx, dy)
        norm = flux[sl] / prof.sum(axis=(1, 2), dtype=np.float64)
        prof *= norm.astype(np.float32)[:, None, None]
        peaks[sl] = prof.max(axis=(1, 2))
        px = ix[:, None, None] + ioff[None, None, :]
        py = iy[:, None, None] + ioff[None, :, None]
        ok = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
        acc.add((py * nx + px)[ok], prof[ok])
    return peaks


def _add_stamp(image: np.ndarray, stamp: np.ndarray, x0: int, y0: int) -> float:
    """Add ``stamp`` with its [0, 0] pixel at image (x0, y0), clipped to the image; return
    the flux that landed."""
    ny, nx = image.shape
    sy, sx = stamp.shape
    xa, ya = max(x0, 0), max(y0, 0)
    xb, yb = min(x0 + sx, nx), min(y0 + sy, ny)
    if xa >= xb or ya >= yb:
        return 0.0
    part = stamp[ya - y0:yb - y0, xa - x0:xb - x0]
    image[ya:yb, xa:xb] += part
    return float(part.sum())


def _render_galaxy(image: np.ndarray, x: float, y: float, flux: float, r_eff_pix: float,
                   axis_ratio: float, pa_deg: float, psf: MoffatPSF, kernel: np.ndarray) -> float:
    """Exponential disc (Sérsic n = 1) convolved with the PSF; returns the peak (ADU)."""
    h = math.ceil(5 * r_eff_pix + 3 * psf.fwhm)
    ix, iy = math.floor(x + 0.5), math.floor(y + 0.5)
    off = np.arange(-h, h + 1, dtype=np.float64)
    dx, dy = off[None, :] - (x - ix), off[:, None] - (y - iy)
    pa = math.radians(pa_deg)
    u = -dx * math.sin(pa) + dy * math.cos(pa)
    v = dx * math.cos(pa) + dy * math.sin(pa)
    rad = np.sqrt(u**2 + (v / max(axis_ratio, 0.05)) ** 2)
    prof = fftconvolve(np.exp(-1.678 * rad / r_eff_pix), kernel, mode="same")
    prof = np.maximum(prof, 0.0)
    prof *= flux / prof.sum()
    _add_stamp(image, prof, ix - h, iy - h)
    return float(prof.max())


def _render_nebula(image: np.ndarray, wcs: WCS, ra: float, dec: float, flux: float,
                   semi_major: float, axis_ratio: float, pa_deg: float, psf: MoffatPSF,
                   pixel_scale: float) -> bool:
    """Add the nebula's shell, smoothed by a Gaussian of the seeing; True if any of it landed."""
    ny, nx = image.shape
    (x0, y0), = wcs.all_world2pix([[ra, dec]], 0)
    sigma = psf.fwhm / 2.3548
    margin = math.ceil(4 * sigma) + 1
    reach = 1.2 * semi_major / pixel_scale + margin
    xa, xb = max(math.floor(x0 - reach), -margin), min(math.ceil(x0 + reach), nx + margin)
    ya, yb = max(math.floor(y0 - reach), -margin), min(math.ceil(y0 + reach), ny + margin)
    if xa >= xb or ya >= yb:
        return False
    gx, gy = np.meshgrid(np.arange(xa, xb, dtype=np.float64),
                         np.arange(ya, yb, dtype=np.float64))
    world = wcs.all_pix2world(np.column_stack([gx.ravel(), gy.ravel()]), 0)
    off = tangent_wcs(ra, dec).wcs_world2pix(world, 0)
    sb = pn_surface_brightness(off[:, 0], off[:, 1], semi_major, axis_ratio, pa_deg)
    stamp = gaussian_filter((flux * pixel_scale**2) * sb.reshape(gx.shape), sigma)
    return _add_stamp(image, stamp, xa, ya) > 0.0


def render_detector(image: np.ndarray, inst: Instrument, wcs: WCS, sub: Table, ra: np.ndarray,
                     dec: np.ndarray, mag: np.ndarray, flux: np.ndarray, kinds: np.ndarray,
                     psf: MoffatPSF, kernel: np.ndarray, wing: float, sky_adu: float, chip: int,
                     ndit: int) -> Table:
    """Render the selected sources onto ``image`` (ADU); the truth table of what landed."""
    ny, nx = image.shape
    n = len(sub)
    if n:
        xy = wcs.all_world2pix(np.column_stack([ra, dec]), 0, tolerance=1e-6, maxiter=50,
                               quiet=True)
        x, y = xy[:, 0], xy[:, 1]
    else:
        x = y = np.zeros(0)
    peak = np.zeros(n)
    keep = np.zeros(n, dtype=bool)
    point = np.isin(kinds, list(POINT_KINDS))
    half = psf.half_width(flux, wing)
    reach = np.where(point, half, 0)
    overlaps = ((x + reach >= -0.5) & (x - reach < nx - 0.5) & (y + reach >= -0.5)
                & (y - reach < ny - 0.5))
    pts = np.flatnonzero(point & overlaps)
    acc = _Accumulator(image)
    for h in np.unique(half[pts]):
        grp = pts[half[pts] == h]
        peak[grp] = _render_points(acc, image.shape, x[grp], y[grp], flux[grp], psf, int(h))
        keep[grp] = True
    acc.flush()
    s = inst.pixel_scale
    for i in np.flatnonzero(kinds == "galaxy"):
        r_eff = float(sub["r_eff_arcsec"][i]) / s
        h = 5 * r_eff + 3 * psf.fwhm
        if -h <= x[i] < nx + h and -h <= y[i] < ny + h:
            peak[i] = _render_galaxy(image, x[i], y[i], flux[i], r_eff,
                                     float(sub["axis_ratio"][i]), float(sub["pa_deg"][i]),
                                     psf, kernel)
            keep[i] = True
    for i in np.flatnonzero(kinds == "pn_nebula"):
        keep[i] = _render_nebula(image, wcs, float(ra[i]), float(dec[i]), float(flux[i]),
                                 float(sub["r_eff_arcsec"][i]), float(sub["axis_ratio"][i]),
                                 float(sub["pa_deg"][i]), psf, s)
    on_chip = (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
    rows = np.flatnonzero(keep & (on_chip | (kinds == "pn_nebula")))
    saturate = saturation_level(inst, ndit)
    return Table({
        "sky_id": np.asarray(sub["sky_id"], dtype=np.int64)[rows],
        "kind": kinds[rows].astype("U15"),
        "x": x[rows], "y": y[rows], "ra": ra[rows], "dec": dec[rows],
        "mag": mag[rows].astype(np.float32), "flux_adu": flux[rows],
        "peak_adu": peak[rows].astype(np.float32),
        "saturated": (peak[rows] + sky_adu + bias_level(inst, chip)) >= saturate,
        "on_chip": on_chip[rows],
    })

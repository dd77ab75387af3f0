# SPDX-License-Identifier: BSD-3-Clause
"""Per-image quality control: the numbers survey teams grade images by, and the verdict.

Per detector: seeing (FWHM of the point sources' pooled profile, arcsec), ellipticity, sky level and
noise (ADU), zero point and its error, 5σ point-source depth in the 2″
aperture (Vega), astrometric RMS.  The survey configuration holds the
thresholds; ``qcstatus`` is 'pass' when every criterion is met, else 'fail'
with the failing criteria named in ``qcflags``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields

import numpy as np
from astropy.table import Table
from scipy.optimize import curve_fit
from scipy.spatial import cKDTree

__all__ = [
    "DetectorQC",
    "ImageQC",
    "QCMeasures",
    "Thresholds",
    "camera_seeing",
    "combine",
    "depth_5sigma", "isolated",
    "measure_seeing",
    "point_sources",
]


@dataclass(frozen=True)
class Thresholds:
    """QC limits from a survey configuration (``[qc]`` table)."""

    max_seeing_arcsec: float = 1.4
    max_ellipticity: float = 0.2
    max_astrometric_rms_arcsec: float = 0.15
    max_zp_error: float = 0.05
    min_depth: Mapping[str, float] = field(default_factory=dict)
    """Minimum 5σ depth per band (Vega mag)."""


@dataclass(frozen=True)
class QCMeasures:
    """The numbers an image is graded by: of one detector, or their medians over a product."""

    seeing_arcsec: float
    ellipticity: float
    sky_level: float
    sky_noise: float
    magzpt: float
    magzrr: float
    depth: float
    astrometric_rms: float


@dataclass(frozen=True)
class DetectorQC(QCMeasures):
    """QC of one detector: its measures and the star counts behind them."""

    n_astrometric: int
    n_photometric: int
    n_sources: int


@dataclass(frozen=True)
class ImageQC(QCMeasures):
    """QC of a whole product (medians over detectors) and the verdict."""

    n_sources: int
    qcstatus: str
    qcflags: tuple[str, ...]

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


#: Fewest point sources a detector's own seeing is measured from; fewer, and the
#: camera's median stands in (a detector of a sparse or nebulous field).
MIN_SEEING_STARS = 8
#: Most point sources pooled into one profile (the brightest; more add time, not accuracy).
MAX_SEEING_STARS = 60


def point_sources(cat: Table, saturation: float, isolation_pix: float,
                  reference: np.ndarray | None = None) -> np.ndarray:
    """Detections fit to measure the PSF: stars and nothing else.

    Stellar class, no bad pixels, S/N > 20, peak below 70 % of saturation, no other
    detection within ``isolation_pix``, and — where ``reference`` (bool per detection:
    matched to a Gaia star) is given — a reference star.  Nebular knots, galaxies and
    blends have no Gaia counterpart; in a field full of them (the planetary nebula)
    the class alone lets them into the stellar locus and double the seeing.
    """
    if len(cat) == 0:
        return np.zeros(0, bool)
    snr = np.asarray(cat["Aper_flux_3"] / np.maximum(cat["Aper_flux_3_err"], 1e-9))
    use = ((np.asarray(cat["Classification"]) == -1) & (np.asarray(cat["Error_bit_flag"]) == 0)
           & (snr > 20) & (np.asarray(cat["Peak_height"]) < 0.7 * saturation))
    if reference is not None:
        use &= reference
    return use & isolated(cat, isolation_pix)


def isolated(cat: Table, radius_pix: float) -> np.ndarray:
    """Detections with no other detection within ``radius_pix`` (neighbours bias apertures
    and widen profiles)."""
    xy = np.column_stack([cat["X_coordinate"], cat["Y_coordinate"]])
    if len(xy) < 2:
        return np.ones(len(xy), bool)
    dist, _ = cKDTree(xy).query(xy, k=2)
    return dist[:, 1] > radius_pix


def _moffat(r: np.ndarray, peak: float, alpha: float, beta: float) -> np.ndarray:
    return peak * (1 + (r / alpha) ** 2) ** -beta


def _profile(sky: np.ndarray, cat: Table, stars: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    """Pooled profile points (r, flux-normalised value), the stars' ellipticities, a
    first FWHM guess (pixels) and the number of stars used; see :func:`measure_seeing`."""
    idx = np.flatnonzero(stars)
    empty = np.zeros(0)
    if idx.size == 0:
        return empty, empty, empty, float("nan"), 0
    flux = np.asarray(cat["Aper_flux_7"], float)
    idx = idx[np.argsort(-flux[idx])][:MAX_SEEING_STARS]
    half = np.asarray(cat["Half_radius"], float)[idx]
    guess = float(np.nanmedian(half)) * 2 / 1.26
    box = int(np.clip(np.ceil(2.5 * guess), 3, 25)) if np.isfinite(guess) else 10
    ny, nx = sky.shape
    dy, dx = np.mgrid[-box:box + 1, -box:box + 1]
    rs, vs, used = [], [], []
    for k in idx:
        x, y = float(cat["X_coordinate"][k]) - 1, float(cat["Y_coordinate"][k]) - 1
        ix, iy = int(round(x)), int(round(y))
        if ix - box < 0 or iy - box < 0 or ix + box >= nx or iy + box >= ny or flux[k] <= 0:
            continue
        cut = sky[iy - box:iy + box + 1, ix - box:ix + box + 1]
        r = np.hypot(dx + ix - x, dy + iy - y)
        ok = np.isfinite(cut) & (r <= box)
        # the local sky: a nebula or a galaxy under the star would widen its wings
        ring = ok & (r > box - 2)
        local = float(np.median(cut[ring])) if ring.sum() >= 8 else 0.0
        rs.append(r[ok])
        vs.append((cut[ok] - local) / flux[k])
        used.append(k)
    if not rs:
        return empty, empty, empty, guess, 0
    ell = np.asarray(cat["Ellipticity"], float)[used]
    return np.concatenate(rs), np.concatenate(vs), ell, guess, len(rs)


def _fit_fwhm(r: np.ndarray, v: np.ndarray, guess: float) -> float:
    """FWHM (pixels) of the Moffat profile fitted to pooled profile points."""
    alpha0 = max(guess if np.isfinite(guess) else 3.0, 1.0) / (2 * np.sqrt(2 ** (1 / 3) - 1))
    peak0 = float(np.max(v)) if np.max(v) > 0 else 0.1
    try:
        (_, alpha, beta), _ = curve_fit(_moffat, r, v, p0=(peak0, alpha0, 3.0),
                                        bounds=([0, 0.1, 1.2], [np.inf, 50, 20]),
                                        maxfev=2000)
    except (RuntimeError, ValueError):
        return float("nan")
    return float(2 * alpha * np.sqrt(2 ** (1 / beta) - 1))


def measure_seeing(sky: np.ndarray, cat: Table, stars: np.ndarray, pixel_scale: float
                   ) -> tuple[float, float, int]:
    """FWHM (arcsec), median ellipticity and star count of the point sources ``stars``.

    Every star's pixels, divided by its flux in the 4 × RCORE aperture, go into one
    radial profile about its centroid; stars fall at every sub-pixel phase, so the
    pooled profile samples the PSF finely even where a star spans two pixels
    (VIRCAM in good seeing).  A Moffat profile fitted to it gives the FWHM — of the
    image's PSF as sampled, as CASU's SEEING.  (Twice the half-light radius, the
    per-source FWHM column, is 1.26 × the FWHM of a β = 3 Moffat and grows with
    undersampling: no QC figure.)  Each star's local sky (the median of the outer
    ring of its box) is taken off first.  NaN when fewer than ``MIN_SEEING_STARS``
    stars: a handful of stars gives a profile too noisy to grade an image by
    (:func:`camera_seeing` pools the detectors of a camera image instead).
    """
    r, v, ell, guess, n = _profile(sky, cat, stars)
    if n < MIN_SEEING_STARS:
        return float("nan"), float("nan"), n
    return _checked(_fit_fwhm(r, v, guess), guess) * pixel_scale, float(np.nanmedian(ell)), n


def _checked(fwhm: float, guess: float) -> float:
    """The fitted FWHM, or the half-light estimate where the fit ran away.

    A noisy pooled profile (few faint stars: u band) can send the fit's core
    radius to its bound; a PSF more than twice as wide or half as wide as its
    stars' half-light radii say is such a fit, not the image's seeing."""
    if np.isfinite(fwhm) and np.isfinite(guess) and 0.5 * guess <= fwhm <= 2 * guess:
        return fwhm
    return guess


def camera_seeing(images: Sequence[tuple[np.ndarray, Table, np.ndarray]],
                  pixel_scale: float) -> tuple[float, float] | None:
    """FWHM (arcsec) and ellipticity of the stars of all the detectors (sky, catalogue,
    star mask) pooled: for a camera image none of whose detectors holds
    ``MIN_SEEING_STARS`` on its own (u band in a sparse field).  None if all of them
    together have fewer."""
    parts = [_profile(sky, cat, stars) for sky, cat, stars in images]
    n = sum(p[4] for p in parts)
    if n < MIN_SEEING_STARS:
        return None
    r = np.concatenate([p[0] for p in parts])
    v = np.concatenate([p[1] for p in parts])
    guess = float(np.nanmedian([p[3] for p in parts if p[4]]))
    fwhm = _checked(_fit_fwhm(r, v, guess), guess)
    if not np.isfinite(fwhm):
        return None
    return fwhm * pixel_scale, float(np.nanmedian(np.concatenate([p[2] for p in parts])))


def depth_5sigma(sky_noise: float, pixel_scale: float, magzpt: float, exptime: float,
                 apcor3: float, extinction: float, airmass: float,
                 rcore_arcsec: float = 1.0) -> float:
    """5σ point-source limit in the RCORE aperture, aperture-corrected (Vega)."""
    npix = np.pi * (rcore_arcsec / pixel_scale) ** 2
    flux5 = 5.0 * sky_noise * np.sqrt(npix)
    return float(magzpt - 2.5 * np.log10(flux5 / exptime) - apcor3
                 - extinction * (airmass - 1.0))


def combine(detectors: Sequence[DetectorQC], band: str, limits: Thresholds) -> ImageQC:
    """Product-level QC (medians over detectors) and its verdict against ``limits``."""
    def med(name: str) -> float:
        values = np.array([getattr(d, name) for d in detectors], float)
        return float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")

    qc = {f.name: med(f.name) for f in fields(QCMeasures)}
    flags = []
    if not qc["seeing_arcsec"] <= limits.max_seeing_arcsec:
        flags.append("seeing")
    if not qc["ellipticity"] <= limits.max_ellipticity:
        flags.append("ellipticity")
    if not qc["astrometric_rms"] <= limits.max_astrometric_rms_arcsec:
        flags.append("astrometry")
    if not qc["magzrr"] <= limits.max_zp_error:
        flags.append("zeropoint")
    if band in limits.min_depth and not qc["depth"] >= limits.min_depth[band]:
        flags.append("depth")
    return ImageQC(**qc, n_sources=int(sum(d.n_sources for d in detectors)),
                   qcstatus="fail" if flags else "pass", qcflags=tuple(flags))

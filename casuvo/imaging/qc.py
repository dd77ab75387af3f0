# SPDX-License-Identifier: BSD-3-Clause
"""Per-image quality control: the numbers survey teams grade images by, and the verdict.

Per detector: seeing (median FWHM of stars, arcsec), ellipticity, sky level and
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

__all__ = ["DetectorQC", "ImageQC", "QCMeasures", "Thresholds", "combine", "depth_5sigma",
           "measure_seeing"]


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


def measure_seeing(cat: Table, pixel_scale: float) -> tuple[float, float]:
    """Median FWHM (arcsec) and ellipticity of unsaturated stellar detections."""
    snr = cat["Aper_flux_3"] / np.maximum(cat["Aper_flux_3_err"], 1e-9)
    stars = (cat["Classification"] == -1) & (cat["Error_bit_flag"] == 0) & (snr > 20)
    if stars.sum() < 3:
        stars = np.ones(len(cat), bool)
    fwhm = np.asarray(cat["FWHM"], float)[stars] * pixel_scale
    ell = np.asarray(cat["Ellipticity"], float)[stars]
    return float(np.nanmedian(fwhm)), float(np.nanmedian(ell))


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

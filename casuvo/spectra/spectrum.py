# SPDX-License-Identifier: BSD-3-Clause
"""The one in-memory spectrum every reader returns, whatever the file's own convention."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Spectrum"]


@dataclass
class Spectrum:
    """A 1D spectrum: wavelengths, flux and its 1σ error, with the product's keywords.

    Readers convert the file's error convention (inverse variance for WEAVE)
    into ``sigma`` on reading; the file keeps its own.  ``sigma`` is NaN where
    a pixel has no data (zero inverse variance, masked).
    """

    wave: np.ndarray
    """Vacuum Å, in the frame the product states (``meta['SPECSYS']``)."""
    flux: np.ndarray
    """In ``flux_unit``."""
    sigma: np.ndarray
    """1σ error of ``flux``, same unit."""
    flux_unit: str
    meta: dict[str, Any] = field(default_factory=dict)
    """The product's keywords (primary and spectrum header, upper-case names)."""

    def __post_init__(self) -> None:
        self.wave = np.asarray(self.wave, dtype=float)
        self.flux = np.asarray(self.flux, dtype=float)
        self.sigma = np.asarray(self.sigma, dtype=float)
        if not self.wave.shape == self.flux.shape == self.sigma.shape or self.wave.ndim != 1:
            raise ValueError(f"wave, flux and sigma must be 1D arrays of one length, not "
                             f"{self.wave.shape}, {self.flux.shape}, {self.sigma.shape}")

    def __len__(self) -> int:
        return int(self.wave.size)

    def band(self, wmin: float, wmax: float) -> Spectrum:
        """The pixels with ``wmin <= wave <= wmax`` (Å), same metadata."""
        keep = (self.wave >= wmin) & (self.wave <= wmax)
        return Spectrum(self.wave[keep], self.flux[keep], self.sigma[keep], self.flux_unit,
                        dict(self.meta))

    @property
    def snr(self) -> float:
        """Median S/N per pixel over the pixels with data (NaN if none)."""
        good = np.isfinite(self.flux) & np.isfinite(self.sigma) & (self.sigma > 0)
        if not good.any():
            return float("nan")
        return float(np.median(self.flux[good] / self.sigma[good]))

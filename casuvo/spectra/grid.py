# SPDX-License-Identifier: BSD-3-Clause
"""The linear wavelength axis of a rows = spectra image (``CRVAL1``/``CD1_1``), as WEAVE L1
and the 4MOST per-arm files carry it, and its resampling onto another such axis."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from astropy.io import fits

from casuvo.spectra.fitsread import ProductFileError

__all__ = ["Grid"]


@dataclass(frozen=True)
class Grid:
    """λ_i = crval1 + i·cd1_1 (Å, vacuum), i = 0 … naxis1 − 1 (``CRPIX1`` = 1)."""

    crval1: float
    cd1_1: float
    naxis1: int

    @classmethod
    def spanning(cls, lo: float, hi: float, step: float) -> Grid:
        """The grid from ``lo`` in ``step`` up to ``hi`` (included when it falls on a pixel)."""
        return cls(float(lo), float(step), int(np.floor((hi - lo) / step + 1e-6)) + 1)

    @property
    def wave(self) -> np.ndarray:
        """The pixel wavelengths (Å, float64)."""
        return self.crval1 + self.cd1_1 * np.arange(self.naxis1, dtype=np.float64)

    @property
    def last(self) -> float:
        """The last pixel's wavelength."""
        return self.crval1 + self.cd1_1 * (self.naxis1 - 1)

    def header(self) -> fits.Header:
        """The WCS keywords of a rows = spectra image on this grid (a fresh copy)."""
        return _wcs_header(self).copy()

    @classmethod
    def from_header(cls, header: fits.Header, name: str) -> Grid:
        """The grid a data HDU's header states; ``name`` (the file's) for the error."""
        try:
            crpix = float(header.get("CRPIX1", 1.0))
            step = float(header["CD1_1"])
            return cls(float(header["CRVAL1"]) - (crpix - 1.0) * step, step,
                       int(header["NAXIS1"]))
        except KeyError as exc:
            raise ProductFileError(f"{name}: keyword {exc.args[0]} missing from the "
                                   "wavelength axis") from exc

    def resample(self, rows: np.ndarray, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``rows`` (spectra × pixels on this grid) linearly interpolated at ``wave``, and
        the mask of the ``wave`` values this grid covers (outside: NaN)."""
        position = (np.asarray(wave, dtype=np.float64) - self.crval1) / self.cd1_1
        inside = (position >= -1e-9) & (position <= self.naxis1 - 1 + 1e-9)
        position = np.clip(position, 0.0, self.naxis1 - 1)
        j0 = np.minimum(np.floor(position).astype(np.int64), self.naxis1 - 2)
        t = position - j0
        rows = np.asarray(rows, dtype=np.float64)
        out = rows[:, j0] * (1.0 - t) + rows[:, j0 + 1] * t
        out[:, ~inside] = np.nan
        return out, inside


@functools.lru_cache(maxsize=32)
def _wcs_header(grid: Grid) -> fits.Header:
    header = fits.Header()
    header["CTYPE1"] = ("WAVE", "Vacuum wavelength, linear")
    header["CUNIT1"] = ("Angstrom", "Unit of the wavelength axis")
    header["CRPIX1"] = (1.0, "Reference pixel")
    header["CRVAL1"] = (grid.crval1, "[Angstrom] Wavelength at the reference pixel")
    header["CD1_1"] = (grid.cd1_1, "[Angstrom] Wavelength step per pixel")
    header["CTYPE2"] = ("LINEAR", "Spectrum number (NSPEC)")
    header["CRPIX2"] = (1.0, "Reference pixel")
    header["CRVAL2"] = (1.0, "NSPEC of the first row")
    header["CD2_2"] = (1.0, "Step")
    return header

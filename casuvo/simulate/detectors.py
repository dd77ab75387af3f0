# SPDX-License-Identifier: BSD-3-Clause
"""The cameras' detectors: defects, flat field, dark current, bias and the read-out.

Flat-field response (±3 % large scale and 1 % pixel to pixel,
:func:`flat_field`), dark current with hot pixels and columns
(:func:`dark_current_map`), dead pixels and a dead column segment, Poisson
noise on everything, read noise per read, gain, bias (:func:`bias_level`)
and saturation (:func:`read_out`).  All detector defects are fixed per
camera and chip, the same in every exposure and calibration frame, so a
pipeline's master calibrations can recover them.

VIRCAM raw data are float32 holding integer ADU, the *sum* of the NDIT reads,
with SATURATE = NDIT × the per-read saturation; OmegaCAM raw data are
unsigned 16-bit integers, as the camera writes them (:func:`raw_dtype`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from casuvo.simulate.optics import field_edge_arcsec
from casuvo.surveys.instruments import Instrument

__all__ = ["POISSON_GAUSS_E", "bias_level", "dark_current_map", "flat_field", "raw_dtype",
           "read_out", "saturation_level", "to_raw"]

#: Expected electrons above which Poisson noise is drawn from its normal approximation.
POISSON_GAUSS_E = 1000.0
_DEFECT_SEED = 0x0DEFEC7
_FLAT_SEED = 0x0F1A7


def saturation_level(inst: Instrument, ndit: int) -> float:
    """SATURATE of a raw frame: the sum of NDIT reads for VIRCAM, one read for OmegaCAM."""
    return inst.saturation * (ndit if inst.name == "VIRCAM" else 1)


def raw_dtype(inst: Instrument) -> type:
    """Pixel type of the camera's raw files (float32 VIRCAM, uint16 OmegaCAM)."""
    return np.uint16 if inst.name == "OMEGACAM" else np.float32


_CACHE: dict[tuple, np.ndarray] = {}
#: Detector truth maps of detectors up to this many pixels are cached (demo miniatures);
#: full-size ones are recomputed, to keep one detector in memory at a time.
_CACHE_MAX_PIXELS = 1 << 20


def _cached(kind: str, inst: Instrument, chip: int, make: Callable[[], np.ndarray]
            ) -> np.ndarray:
    """``make()``, cached (read-only) for small detectors."""
    if inst.nx * inst.ny > _CACHE_MAX_PIXELS:
        return make()
    key = (kind, inst.name, inst.nx, inst.ny, inst.layout, chip)
    if key not in _CACHE:
        if len(_CACHE) >= 256:
            _CACHE.clear()
        arr = make()
        arr.setflags(write=False)
        _CACHE[key] = arr
    return _CACHE[key]


def _chip_rng(seed: int, inst: Instrument, chip: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(inst.name.encode()), chip, inst.nx, inst.ny])


@dataclass(frozen=True)
class _Defects:
    dead: np.ndarray  # flat indices
    hot: np.ndarray  # flat indices
    hot_rate: np.ndarray  # e-/s
    dead_col: tuple[int, int]  # column, first dead row
    hot_col: tuple[int, int]  # column, first hot row


def _defects(inst: Instrument, chip: int) -> _Defects:
    rng = _chip_rng(_DEFECT_SEED, inst, chip)
    npix = inst.nx * inst.ny
    ndead = max(2, round(2e-4 * npix))
    nhot = max(2, round(2e-4 * npix))
    pix = rng.choice(npix, ndead + nhot, replace=False)
    cols = rng.choice(inst.nx, 2, replace=False)
    rows = rng.integers(0, inst.ny // 2, 2)
    return _Defects(dead=pix[:ndead], hot=pix[ndead:],
                    hot_rate=np.exp(rng.uniform(np.log(20.0), np.log(3000.0), nhot)),
                    dead_col=(int(cols[0]), int(rows[0])), hot_col=(int(cols[1]), int(rows[1])))


def flat_field(inst: Instrument, chip: int) -> np.ndarray:
    """The true flat-field response of detector ``chip`` ((ny, nx) float32, ~1; read-only).

    Chip sensitivity (±2.5 %), a smooth quadratic surface (±1.2 %), vignetting
    across the focal plane (−1.5 % at the edge), 1 % pixel-to-pixel, dead pixels
    (0.02) and a dead column segment (0.05).  Same for every exposure.
    """
    return _cached("flat", inst, chip, lambda: _make_flat(inst, chip))


def _make_flat(inst: Instrument, chip: int) -> np.ndarray:
    rng = _chip_rng(_FLAT_SEED, inst, chip)
    ny, nx = inst.ny, inst.nx
    xs = np.linspace(-1.0, 1.0, nx, dtype=np.float32)[None, :]
    ys = np.linspace(-1.0, 1.0, ny, dtype=np.float32)[:, None]
    c = rng.normal(0.0, 1.0, 5).astype(np.float32)
    surf = c[0] * xs + c[1] * ys + c[2] * (xs**2 - 1 / 3) + c[3] * xs * ys + c[4] * (ys**2 - 1 / 3)
    surf *= np.float32(0.012 / max(float(np.abs(surf).max()), 1e-6))
    x_k, y_k = inst.layout[chip - 1]
    s = inst.pixel_scale
    fx = x_k - (np.arange(nx, dtype=np.float32) - (nx - 1) / 2) * s  # east is −x
    fy = y_k + (np.arange(ny, dtype=np.float32) - (ny - 1) / 2) * s
    r2 = (fx[None, :] ** 2 + fy[:, None] ** 2) / np.float32(field_edge_arcsec(inst) ** 2)
    gain = np.float32(1.0 + np.clip(rng.normal(0.0, 0.012), -0.025, 0.025))
    flat = gain * (1 + surf) * (1 - np.float32(0.015) * r2)
    flat *= 1 + np.float32(0.01) * rng.standard_normal((ny, nx), dtype=np.float32)
    d = _defects(inst, chip)
    flat.ravel()[d.dead] = 0.02
    col, row = d.dead_col
    flat[row:, col] = 0.05
    return flat.astype(np.float32)


def dark_current_map(inst: Instrument, chip: int) -> np.ndarray:
    """Dark current (e-/s, (ny, nx) float32, read-only): the camera's level, hot pixels, a hot
    column."""
    return _cached("dark", inst, chip, lambda: _make_dark(inst, chip))


def _make_dark(inst: Instrument, chip: int) -> np.ndarray:
    d = _defects(inst, chip)
    dark = np.full((inst.ny, inst.nx), inst.dark_current, dtype=np.float32)
    dark.ravel()[d.hot] += d.hot_rate.astype(np.float32)
    col, row = d.hot_col
    dark[row:, col] += 5.0
    return dark


def bias_level(inst: Instrument, chip: int) -> float:
    """Bias of detector ``chip`` (ADU): the camera's level plus a fixed per-chip offset
    (none for VIRCAM, whose reads are reset-corrected)."""
    if inst.bias == 0:
        return 0.0
    return inst.bias + float(np.round(_chip_rng(0xB1A5, inst, chip).uniform(-30.0, 30.0), 1))


def to_raw(inst: Instrument, adu: np.ndarray) -> np.ndarray:
    """Quantise ADU to the camera's raw pixel type (clipped to what the type holds)."""
    adu = np.rint(adu)
    if raw_dtype(inst) is np.uint16:
        np.clip(adu, 0, 65535, out=adu)
        return adu.astype(np.uint16)
    return adu.astype(np.float32)


def read_out(inst: Instrument, chip: int, electrons: np.ndarray, ndit: int,
             rng: np.random.Generator) -> np.ndarray:
    """Poisson noise on the expected electrons, read noise, gain, bias, saturation → raw pixels.

    Above :data:`POISSON_GAUSS_E` electrons the Poisson draw is replaced by its
    normal approximation (same mean and variance; skewness < 3 %), which numpy
    draws several times faster — NIR skies are thousands of electrons.
    """
    lam = np.maximum(electrons, 0.0)
    high = lam >= POISSON_GAUSS_E
    n_high = int(np.count_nonzero(high))
    if n_high == lam.size:
        counts = rng.standard_normal(lam.shape)
        counts *= np.sqrt(lam)
        counts += lam
    else:
        counts = rng.poisson(np.where(high, 0.0, lam)).astype(np.float64)
        if n_high:
            bright = lam[high]
            counts[high] = bright + np.sqrt(bright) * rng.standard_normal(n_high)
    counts += rng.normal(0.0, inst.read_noise * math.sqrt(ndit), counts.shape)
    counts /= inst.gain
    adu = counts
    adu += bias_level(inst, chip)
    return to_raw(inst, np.minimum(adu, saturation_level(inst, ndit)))

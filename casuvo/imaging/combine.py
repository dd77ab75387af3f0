# SPDX-License-Identifier: BSD-3-Clause
"""Combining images: jittered exposures into a pawprint stack, stacks into a tile.

Both resample onto a target WCS (:mod:`casuvo.imaging.resample`: a cubic
spline that keeps the seeing, over a pixel map interpolated between exact WCS
nodes), scale every input to a common zero point, and weight by confidence.  A stack keeps the first
exposure's detector grid; a tile gets the optimal celestial TAN grid of all
its inputs.  Confidence of the result is the summed input confidence scaled
to a median of 100, so shallow edges and gaps show as low confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS
from reproject.mosaicking import find_optimal_celestial_wcs

from casuvo.imaging.resample import resample

__all__ = ["Combined", "Input", "Piece", "TileGrid", "coadd", "mosaic", "resample_piece", "stack",
           "tile_grid"]


@dataclass(frozen=True)
class Input:
    """An image to combine: sky-subtracted data, confidence, solved WCS and zero point."""

    data: np.ndarray
    conf: np.ndarray
    wcs: WCS
    magzpt: float
    exptime: float


@dataclass(frozen=True)
class Combined:
    data: np.ndarray
    conf: np.ndarray
    wcs: WCS
    magzpt: float
    """Zero point (1 s, airmass 1 convention) of the combined data."""


def _scale(inp: Input, zp: float) -> float:
    """Multiplier bringing ``inp`` (counts per exptime) to zero point ``zp`` per second."""
    return 10 ** (0.4 * (zp - inp.magzpt))


def _normalise_conf(weight: np.ndarray) -> np.ndarray:
    positive = weight[weight > 0]
    norm = np.median(positive) if positive.size else 1.0
    return np.clip(np.rint(100.0 * weight / norm), 0, 32767).astype(np.int16)


def stack(inputs: Sequence[Input]) -> Combined:
    """Weighted mean of jittered exposures of one detector on the first one's grid.

    The result is in ADU per second × the mean exposure time, at the median
    zero point, so it keeps the look (and noise) of a single long exposure.
    """
    if not inputs:
        raise ValueError("nothing to stack")
    ref = inputs[0]
    zp = float(np.median([i.magzpt for i in inputs]))
    texp = float(np.sum([i.exptime for i in inputs]))
    acc = np.zeros(ref.data.shape, np.float64)
    wsum = np.zeros(ref.data.shape, np.float64)
    for inp in inputs:
        scale = _scale(inp, zp) / inp.exptime * texp
        if inp is ref:
            data = np.nan_to_num(inp.data) * scale
            weight = inp.conf.astype(np.float64) * np.isfinite(inp.data)
        else:
            data, weight = resample(inp.data * np.float32(scale), inp.conf, inp.wcs, ref.wcs,
                                    ref.data.shape)
        acc += data * weight
        wsum += weight
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(wsum > 0, acc / wsum, np.nan).astype(np.float32)
    # Expressed per total exposure time: MAGZPT stays a 1-second zero point.
    return Combined(out, _normalise_conf(wsum), ref.wcs, zp)


@dataclass(frozen=True)
class TileGrid:
    """The pixel grid of a tile and the zero point its inputs are scaled to."""

    wcs: WCS
    shape: tuple[int, int]
    magzpt: float


@dataclass(frozen=True)
class Piece:
    """One input resampled into the box ``[y0:y1, x0:x1]`` of a tile grid, with its
    weight: what an input adds to the weighted mean of the tile."""

    y0: int
    y1: int
    x0: int
    x1: int
    data: np.ndarray
    weight: np.ndarray


def tile_grid(inputs: Sequence[tuple[tuple[int, int], WCS, float]]) -> TileGrid:
    """The optimal TAN grid of a tile over (shape, WCS, zero point) of all its inputs,
    and the median zero point it is made at.

    Only geometry and zero points: the pieces of a tile can be resampled apart
    (on different workers) onto the same grid.
    """
    if not inputs:
        raise ValueError("nothing to mosaic")
    wcs, shape = find_optimal_celestial_wcs([(s, w) for s, w, _ in inputs], projection="TAN")
    return TileGrid(wcs, tuple(shape), float(np.median([z for _, _, z in inputs])))


def resample_piece(inp: Input, grid: TileGrid, total_exptime: float) -> Piece | None:
    """``inp`` resampled into the part of the tile grid it covers (None: it covers none)."""
    data = inp.data * np.float32(_scale(inp, grid.magzpt) / inp.exptime * total_exptime)
    ny, nx = inp.data.shape
    corners = inp.wcs.pixel_to_world([0, nx - 1, 0, nx - 1], [0, 0, ny - 1, ny - 1])
    xo, yo = grid.wcs.world_to_pixel(corners)
    x0, x1 = max(int(np.floor(xo.min())) - 2, 0), min(int(np.ceil(xo.max())) + 3, grid.shape[1])
    y0, y1 = max(int(np.floor(yo.min())) - 2, 0), min(int(np.ceil(yo.max())) + 3, grid.shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    out, weight = resample(data, inp.conf, inp.wcs, grid.wcs[y0:y1, x0:x1],
                           (y1 - y0, x1 - x0))
    return Piece(y0, y1, x0, x1, out, weight)


def coadd(pieces: Sequence[Piece | None], grid: TileGrid) -> Combined:
    """The weighted mean of resampled pieces on their tile grid (pieces in input order:
    the sums, and so the tile, are then those of :func:`mosaic`)."""
    acc = np.zeros(grid.shape, np.float64)
    wsum = np.zeros(grid.shape, np.float64)
    for piece in pieces:
        if piece is None:
            continue
        box = (slice(piece.y0, piece.y1), slice(piece.x0, piece.x1))
        acc[box] += piece.data * piece.weight
        wsum[box] += piece.weight
    with np.errstate(invalid="ignore", divide="ignore"):
        data = np.where(wsum > 0, acc / wsum, np.nan).astype(np.float32)
    return Combined(data, _normalise_conf(wsum), grid.wcs, grid.magzpt)


def mosaic(inputs: Sequence[Input], total_exptime: float) -> Combined:
    """Co-add detector images into one tile on an optimal TAN grid.

    Each input and its weight map are resampled into the part of the tile grid
    they cover, and accumulated as a weighted mean.  (:func:`tile_grid`,
    :func:`resample_piece` and :func:`coadd` are its steps, for a tile whose
    inputs are resampled in parallel.)
    """
    grid = tile_grid([(i.data.shape, i.wcs, i.magzpt) for i in inputs])
    return coadd([resample_piece(i, grid, total_exptime) for i in inputs], grid)

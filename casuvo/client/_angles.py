# SPDX-License-Identifier: BSD-3-Clause
"""Positions and sizes from what a notebook user types: degrees or angular Quantities.

Every check raises :class:`ValueError` naming the argument, before any request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from astropy import units as u

__all__ = ["angles", "degrees", "per_row", "position"]


def degrees(value: float | u.Quantity, name: str) -> float:
    """An angle in degrees from a number (degrees) or an angular Quantity."""
    if isinstance(value, u.Quantity):
        try:
            value = value.to_value(u.deg)
        except u.UnitConversionError:
            raise ValueError(f"{name} must be an angle, not {value.unit}") from None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of degrees or an angle") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, not {out}")
    return out


def position(ra: float | u.Quantity, dec: float | u.Quantity) -> tuple[float, float]:
    """(ra in [0, 360), dec in [-90, 90]) in degrees."""
    ra_deg, dec_deg = degrees(ra, "ra") % 360.0, degrees(dec, "dec")
    if not -90.0 <= dec_deg <= 90.0:
        raise ValueError(f"dec must lie in [-90, 90] degrees, not {dec_deg}")
    return ra_deg, dec_deg


def angles(value: float | u.Quantity | Sequence[float], name: str) -> np.ndarray:
    """Degrees from a number, a sequence of numbers or an angular Quantity (array)."""
    if isinstance(value, u.Quantity):
        try:
            arr = np.asarray(value.to_value(u.deg), dtype=float)
        except u.UnitConversionError:
            raise ValueError(f"{name} must be an angle, not {value.unit}") from None
    else:
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be degrees or an angle") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if name == "dec" and np.any(np.abs(arr) > 90):
        raise ValueError("dec must lie in [-90, 90] degrees")
    return arr % 360.0 if name == "ra" else arr


def per_row(values: np.ndarray, n: int, name: str) -> np.ndarray:
    """One value for all ``n`` rows, or one per row: anything else is a usage error."""
    flat = np.ravel(values)
    if flat.size == 1:
        return np.full(n, float(flat[0]))
    if flat.size != n:
        raise ValueError(f"{name} must be one value or one per row ({n}), not {flat.size}")
    return flat

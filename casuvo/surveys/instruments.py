# SPDX-License-Identifier: BSD-3-Clause
"""The survey cameras: VISTA/VIRCAM and VST/OmegaCAM, as plain data.

One owner for the instrument facts both the simulator and the pipelines use:
detector geometry and focal-plane layout, pixel scale, detector electronics,
filters (ESO filter names, Vega zero points, extinction, sky brightness, Vega→AB)
and the observing patterns (VISTA's jitter and six-pawprint tile; OmegaCAM's
dither).  Values are the published nominal ones (VISTA/VIRCAM and
OmegaCAM user manuals; CASU documentation; shared/reference/formats.md §5)
rounded to what a simulator needs.

``scale`` makes a *miniature* of an instrument for fast demos: detectors of
``scale`` × the pixels on a side at the same pixel scale, with the focal-plane
layout and observing offsets shrunk by the same factor, so gaps, tile pattern
and overlaps keep their proportions (a documented demo option; the pipelines
run unchanged on full-size data, ``scale=1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["OMEGACAM", "VIRCAM", "Filter", "Instrument", "instrument"]


@dataclass(frozen=True)
class Filter:
    """A filter: ESO name, short band name and the photometric model of the site."""

    name: str
    """Short band name used in file and column names (``J``, ``Ks``, ``r``, ``Halpha``)."""
    eso_name: str
    """``HIERARCH ESO INS FILT1 NAME``."""
    wavelength_nm: float
    """Central wavelength."""
    width_nm: float
    """Effective width (for ObsCore em_min/em_max)."""
    zeropoint: float
    """Vega magnitude giving 1 ADU/s at airmass 1 (MAGZPT convention)."""
    extinction: float
    """Atmospheric extinction coefficient, mag per airmass."""
    sky_mag: float
    """Dark-sky surface brightness, Vega mag/arcsec²."""
    ab_minus_vega: float
    """AB − Vega offset, for ABMAGLIM/ABMAGSAT."""


@dataclass(frozen=True)
class Instrument:
    """A wide-field camera on its telescope."""

    name: str
    """``INSTRUME`` value."""
    telescope: str
    """``TELESCOP`` value."""
    prefix: str
    """Raw file prefix (``VCAM``, ``OMEGACAM``) and CASU product prefix (``v``, ``o``)."""
    casu_prefix: str
    nx: int
    """Detector columns (pixels)."""
    ny: int
    """Detector rows."""
    pixel_scale: float
    """arcsec per pixel."""
    layout: tuple[tuple[float, float], ...]
    """Detector centres in the focal plane, arcsec from the optical axis (x=E, y=N), in
    extension order (``DET1`` ... ``DETn``)."""
    gain: float
    """e-/ADU."""
    read_noise: float
    """e- per read."""
    saturation: float
    """ADU where the detector saturates."""
    bias: float
    """Bias / reset level in ADU (subtracted with the dark for VIRCAM)."""
    dark_current: float
    """e-/s per pixel."""
    filters: dict[str, Filter] = field(default_factory=dict)
    jitter: tuple[tuple[float, float], ...] = ()
    """Offsets (arcsec) of the exposures stacked into one pawprint / dithered stack."""
    tile_offsets: tuple[tuple[float, float], ...] = ((0.0, 0.0),)
    """Pawprint offsets (arcsec) that make a filled tile (VISTA's six-pawprint tile)."""
    scale: float = 1.0
    """Miniature factor (1 = the real instrument)."""

    @property
    def n_detectors(self) -> int:
        return len(self.layout)

    def miniature(self, scale: float) -> Instrument:
        """The instrument shrunk by ``scale`` (pixels per side and all offsets)."""
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        shrink = lambda pts: tuple((x * scale, y * scale) for x, y in pts)  # noqa: E731
        return replace(self, nx=max(int(round(self.nx * scale)), 16),
                       ny=max(int(round(self.ny * scale)), 16), layout=shrink(self.layout),
                       jitter=shrink(self.jitter), tile_offsets=shrink(self.tile_offsets),
                       scale=self.scale * scale)

    def filter(self, band: str) -> Filter:
        try:
            return self.filters[band]
        except KeyError:
            raise ValueError(f"{self.name} has no filter {band!r}; it has "
                             f"{', '.join(self.filters)}") from None

    @property
    def detector_size_arcsec(self) -> tuple[float, float]:
        return self.nx * self.pixel_scale, self.ny * self.pixel_scale


def _grid(ncols: int, nrows: int, pitch_x: float, pitch_y: float) -> tuple[
        tuple[float, float], ...]:
    """Detector centres of a regular ncols×nrows mosaic, row by row from the south-west."""
    xs = (np.arange(ncols) - (ncols - 1) / 2) * pitch_x
    ys = (np.arange(nrows) - (nrows - 1) / 2) * pitch_y
    return tuple((float(x), float(y)) for y in ys for x in xs)


# VIRCAM: 4×4 detectors of 2048², 0.339″/pixel; gaps of 90 % (x) and 42.5 %
# (y) of a detector, filled by the six-pawprint tile (offsets of 0.95 and 0.475
# detector widths).  http://www.eso.org/sci/facilities/paranal/instruments/vircam
_VIRCAM_PIX = 0.339
_VIRCAM_DET = 2048 * _VIRCAM_PIX
VIRCAM = Instrument(
    name="VIRCAM", telescope="ESO-VISTA", prefix="VCAM", casu_prefix="v",
    nx=2048, ny=2048, pixel_scale=_VIRCAM_PIX,
    layout=_grid(4, 4, _VIRCAM_DET * 1.90, _VIRCAM_DET * 1.425),
    gain=4.2, read_noise=24.0, saturation=33000.0, bias=0.0, dark_current=0.1,
    filters={f.name: f for f in (
        Filter("Z", "Z", 877.0, 97.0, 23.9, 0.05, 18.4, 0.521),
        Filter("Y", "Y", 1020.0, 93.0, 23.5, 0.05, 17.3, 0.618),
        Filter("J", "J", 1252.0, 172.0, 23.9, 0.09, 15.9, 0.937),
        Filter("H", "H", 1645.0, 291.0, 24.2, 0.05, 13.9, 1.384),
        Filter("Ks", "Ks", 2147.0, 309.0, 23.3, 0.07, 13.0, 1.839),
    )},
    # A typical VVV-like 2-point jitter; pawprint stacks combine the jitters.
    jitter=((0.0, 0.0), (6.4, 6.4)),
    tile_offsets=tuple((dx * _VIRCAM_DET, dy * _VIRCAM_DET)
                       for dy in (-0.475, 0.0, 0.475) for dx in (-0.475, 0.475)),
)

# OmegaCAM: 8×4 CCDs of 2048×4096, 0.214″/pixel; narrow gaps filled by dithers.
_OMEGA_PIX = 0.214
OMEGACAM = Instrument(
    name="OMEGACAM", telescope="ESO-VST", prefix="OMEGACAM", casu_prefix="o",
    nx=2048, ny=4096, pixel_scale=_OMEGA_PIX,
    layout=_grid(8, 4, 2048 * _OMEGA_PIX * 1.025, 4096 * _OMEGA_PIX * 1.02),
    gain=2.5, read_noise=5.0, saturation=60000.0, bias=500.0, dark_current=0.0,
    filters={f.name: f for f in (
        Filter("u", "u_SDSS", 355.0, 60.0, 23.8, 0.45, 22.0, 0.90),
        Filter("g", "g_SDSS", 475.0, 140.0, 25.3, 0.18, 22.0, -0.10),
        Filter("r", "r_SDSS", 625.0, 140.0, 25.2, 0.09, 21.1, 0.15),
        Filter("i", "i_SDSS", 763.0, 150.0, 24.9, 0.05, 20.2, 0.37),
        Filter("Halpha", "NB_659", 658.8, 10.7, 21.7, 0.08, 20.5, 0.30),
    )},
    # VPHAS+-like three-point offsets filling the CCD gaps.
    jitter=((0.0, 0.0), (25.0, 85.0), (50.0, -85.0)),
)

_INSTRUMENTS = {"vista": VIRCAM, "vircam": VIRCAM, "vst": OMEGACAM, "omegacam": OMEGACAM}


def instrument(name: str, scale: float = 1.0) -> Instrument:
    """The instrument by telescope or camera name, optionally as a miniature."""
    try:
        inst = _INSTRUMENTS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown instrument {name!r}; known: vista, vst") from None
    return inst if scale == 1.0 else inst.miniature(scale)

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

__all__ = ["FOURMOST", "GIRAFFE", "OMEGACAM", "VIRCAM", "WEAVE", "Arm", "Filter", "Instrument",
           "Mode", "Spectrograph", "instrument", "spectrograph"]


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


# ------------------------------------------------------------------ spectrographs

@dataclass(frozen=True)
class Arm:
    """One arm (or one GIRAFFE setting) of a spectrograph: its wavelength grid and resolution.

    The grid is linear in vacuum Å: ``wave = wmin + i * dispersion`` for
    ``i = 0 .. npix - 1`` (WEAVE L1's ``CRVAL1``/``CD1_1``, GES's ``CRVAL1``/``CD1_1``).
    """

    name: str
    """Arm name in file and extension names (``HR10``, ``BLUE``, ``RED``, ``LB``)."""
    wmin: float
    """First pixel, vacuum Å."""
    wmax: float
    """Last pixel (at most), vacuum Å."""
    dispersion: float
    """Å per pixel."""
    resolution: float
    """Resolving power λ/Δλ (FWHM)."""
    throughput: float = 0.1
    """Peak end-to-end efficiency (atmosphere, telescope, fibre, spectrograph, detector)."""

    @property
    def npix(self) -> int:
        return int(np.floor((self.wmax - self.wmin) / self.dispersion + 1e-6)) + 1

    def wave(self) -> np.ndarray:
        """The arm's wavelength grid (vacuum Å, float64)."""
        return self.wmin + self.dispersion * np.arange(self.npix)

    def miniature(self, factor: int) -> Arm:
        """The arm sampled ``factor`` times more coarsely (fast demos; resolution kept
        at most what the sampling carries)."""
        if factor <= 1:
            return self
        return replace(self, dispersion=self.dispersion * factor)


@dataclass(frozen=True)
class Mode:
    """An instrument configuration an OB is observed in: its resolution class and arms."""

    name: str
    """``HR10``, ``LR``, ``HR``: the setting / mode name."""
    resolution_class: str
    """``LR`` or ``HR`` (the OB monitor's mode)."""
    arms: tuple[Arm, ...]
    grating: str = ""
    """Grating name as the archive pages show it (``H548.8``)."""

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise ValueError(f"mode {self.name} has no arm {name!r}")

    @property
    def em_min(self) -> float:
        return min(a.wmin for a in self.arms)

    @property
    def em_max(self) -> float:
        return max(a.wave()[-1] for a in self.arms)

    @property
    def resolution(self) -> float:
        """The mode's resolving power (mean over its arms)."""
        return float(np.mean([a.resolution for a in self.arms]))


@dataclass(frozen=True)
class Spectrograph:
    """A multi-object fibre spectrograph on its telescope (plain data for simulator and
    pipeline).  Values: ``shared/reference/formats-spectra.md`` §1 (#5, #8, #10)."""

    name: str
    """``INSTRUME`` value."""
    telescope: str
    """``TELESCOP`` value."""
    site: tuple[float, float, float]
    """Observatory longitude (deg E), latitude (deg), height (m): heliocentric corrections."""
    area_cm2: float
    """Collecting area of the primary."""
    fibre_arcsec: float
    """Fibre diameter on the sky."""
    gain: float
    """e-/ADU of the extracted spectra."""
    read_noise: float
    """e- per extracted pixel."""
    modes: dict[str, Mode] = field(default_factory=dict)

    def mode(self, name: str) -> Mode:
        try:
            return self.modes[name]
        except KeyError:
            raise ValueError(f"{self.name} has no mode {name!r}; it has "
                             f"{', '.join(self.modes)}") from None


_PARANAL = (-70.4045, -24.6272, 2635.0)
_VISTA_SITE = (-70.3975, -24.6157, 2518.0)
_LA_PALMA = (-17.8816, 28.7606, 2332.0)

# FLAMES/GIRAFFE (Medusa fibres, 1.2"), the Gaia-ESO settings: HR10 (grating
# central wavelength 548.8 nm) and HR21; GES resamples to 0.05 Å.  R per setting
# from the ESO GIRAFFE tables (formats.md §4; HR10 R 19800, HR21 R 16200).
GIRAFFE = Spectrograph(
    name="GIRAFFE", telescope="ESO-VLT-U2", site=_PARANAL, area_cm2=4.9e5,
    fibre_arcsec=1.2, gain=1.0, read_noise=4.0, modes={m.name: m for m in (
        Mode("HR10", "HR", (Arm("HR10", 5339.0, 5619.0, 0.05, 19800.0, 0.12),),
             grating="H548.8"),
        Mode("HR21", "HR", (Arm("HR21", 8484.0, 9001.0, 0.05, 16200.0, 0.15),),
             grating="H875.7"),
    )})

# WEAVE on the WHT: LR (BLUE 3660–6060 Å, RED 5790–9590 Å, R 5000) and HR
# (RED 5950–6850 Å with BLUE 4040–4650 Å, R 20000); dispersions 0.30/0.48 (LR)
# and 0.076/0.11 Å/px (HR) (formats-spectra.md #8).  MOS fibres 1.3".
WEAVE = Spectrograph(
    name="WEAVE", telescope="WHT", site=_LA_PALMA, area_cm2=1.1e5,
    fibre_arcsec=1.3, gain=1.0, read_noise=3.0, modes={m.name: m for m in (
        Mode("LR", "LR", (Arm("BLUE", 3660.0, 6060.0, 0.30, 5000.0, 0.20),
                          Arm("RED", 5790.0, 9590.0, 0.48, 5000.0, 0.25))),
        Mode("HR", "HR", (Arm("BLUE", 4040.0, 4650.0, 0.076, 20000.0, 0.15),
                          Arm("RED", 5950.0, 6850.0, 0.11, 20000.0, 0.20))),
    )})

# 4MOST on VISTA, low-resolution spectrographs: blue/green/red arms joined into
# one 3700–9500 Å spectrum at 0.25 Å (23201 px); the QL1 template's average
# resolving power is 4933 (formats-spectra.md #9, #10).  Fibres 1.4".
FOURMOST = Spectrograph(
    name="QMOST", telescope="ESO-VISTA", site=_VISTA_SITE, area_cm2=1.0e5,
    fibre_arcsec=1.4, gain=1.0, read_noise=3.0, modes={m.name: m for m in (
        Mode("LRS", "LR", (Arm("LB", 3700.0, 5540.0, 0.25, 4100.0, 0.18),
                           Arm("LG", 5300.0, 7200.0, 0.25, 4900.0, 0.22),
                           Arm("LR", 6900.0, 9500.0, 0.25, 5800.0, 0.20))),
    )})

_SPECTROGRAPHS = {"giraffe": GIRAFFE, "flames": GIRAFFE, "weave": WEAVE,
                  "4most": FOURMOST, "qmost": FOURMOST}


def spectrograph(name: str) -> Spectrograph:
    """The spectrograph by name (``giraffe``, ``weave``, ``4most``)."""
    try:
        return _SPECTROGRAPHS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown spectrograph {name!r}; known: giraffe, weave, "
                         "4most") from None

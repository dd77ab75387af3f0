# SPDX-License-Identifier: BSD-3-Clause
"""Synthetic stellar templates and the night sky, analytic so any grid and resolution is exact.

A star is a black-body continuum times the absorption of a real line list
(Balmer and Paschen series, Ca II H&K and the infrared triplet, Mg b, Na D,
K I, O I, and Fe I/II, Ca I, Ni I, Ti I, Cr I, Mg I, Ba II, Sr II lines; air
wavelengths of the usual tables converted to vacuum), plus a seeded forest
of weak blends so that every arm has lines to measure a velocity with.  Line
strengths follow the effective temperature, gravity and metallicity with
simple rules (metal lines weaken with Teff and [Fe/H]; hydrogen strengthens
with Teff; Ca II and Mg b respond to gravity): a template set with which a
cross-correlation behaves like on real stars, not a model atmosphere.

Profiles are Gaussian in optical depth; the instrument's resolving power
widens them (equivalent width kept), so the simulator and the pipeline
evaluate the very same model: :func:`stellar_flux` at any wavelengths,
velocity and resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["LINES", "SKY_LINES", "Template", "air_to_vacuum", "line_absorption", "sky_spectrum",
           "stellar_flux", "template_grid"]

C_KMS = 299792.458
_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


def air_to_vacuum(wave_air: np.ndarray | float) -> np.ndarray:
    """Air → vacuum wavelengths (Å), the VALD/Piskunov refraction formula."""
    w = np.asarray(wave_air, dtype=float)
    s2 = (1e4 / w) ** 2
    n = (1.0 + 0.00008336624212083 + 0.02408926869968 / (130.1065924522 - s2)
         + 0.0001599740894897 / (38.92568793293 - s2))
    return w * n


# (species, air Å, strength at the reference star, intrinsic Gaussian σ Å, class)
# Classes: H (hydrogen), M (neutral metals), I (ionised metals), C (Ca II),
# G (Mg b, Mg I: gravity), A (alkali: Na, K), O (O I triplet).
_LINE_TABLE: tuple[tuple[str, float, float, float, str], ...] = (
    ("H I", 6562.80, 2.2, 2.2, "H"), ("H I", 4861.33, 2.4, 1.8, "H"),
    ("H I", 4340.46, 2.2, 1.6, "H"), ("H I", 4101.74, 2.0, 1.5, "H"),
    ("H I", 3970.07, 1.8, 1.4, "H"), ("H I", 3889.05, 1.5, 1.3, "H"),
    ("H I", 3835.38, 1.3, 1.2, "H"),
    ("H I", 8467.25, 0.25, 1.0, "H"), ("H I", 8502.48, 0.3, 1.0, "H"),
    ("H I", 8545.38, 0.35, 1.0, "H"), ("H I", 8598.39, 0.4, 1.0, "H"),
    ("H I", 8665.02, 0.45, 1.1, "H"), ("H I", 8750.47, 0.5, 1.2, "H"),
    ("H I", 8862.78, 0.55, 1.3, "H"), ("H I", 9014.91, 0.6, 1.4, "H"),
    ("Ca II", 3933.66, 3.0, 2.0, "C"), ("Ca II", 3968.47, 2.8, 1.9, "C"),
    ("Ca II", 8498.02, 1.2, 0.9, "C"), ("Ca II", 8542.09, 1.8, 1.2, "C"),
    ("Ca II", 8662.14, 1.6, 1.1, "C"),
    ("Mg I", 5167.32, 1.4, 0.45, "G"), ("Mg I", 5172.68, 1.6, 0.5, "G"),
    ("Mg I", 5183.60, 1.8, 0.55, "G"), ("Mg I", 5528.41, 0.9, 0.2, "G"),
    ("Mg I", 4571.10, 0.6, 0.12, "G"), ("Mg I", 4702.99, 0.7, 0.15, "G"),
    ("Mg I", 8806.76, 0.8, 0.3, "G"), ("Mg I", 8736.02, 0.4, 0.2, "G"),
    ("Na I", 5889.95, 2.0, 0.35, "A"), ("Na I", 5895.92, 1.8, 0.33, "A"),
    ("Na I", 8183.26, 0.6, 0.2, "A"), ("Na I", 8194.82, 0.7, 0.2, "A"),
    ("Na I", 5682.63, 0.3, 0.1, "A"), ("Na I", 5688.21, 0.35, 0.1, "A"),
    ("K I", 7664.90, 0.9, 0.25, "A"), ("K I", 7698.96, 0.7, 0.22, "A"),
    ("O I", 7771.94, 0.25, 0.15, "O"), ("O I", 7774.17, 0.22, 0.15, "O"),
    ("O I", 7775.39, 0.18, 0.15, "O"),
    ("Ca I", 4226.73, 1.6, 0.3, "M"), ("Ca I", 4454.78, 0.6, 0.1, "M"),
    ("Ca I", 5588.75, 0.5, 0.08, "M"), ("Ca I", 5857.45, 0.45, 0.08, "M"),
    ("Ca I", 6102.72, 0.45, 0.08, "M"), ("Ca I", 6122.22, 0.6, 0.09, "M"),
    ("Ca I", 6162.17, 0.65, 0.09, "M"), ("Ca I", 6439.08, 0.5, 0.08, "M"),
    ("Ca I", 6462.57, 0.45, 0.08, "M"), ("Ca I", 6717.68, 0.4, 0.08, "M"),
    ("Ca I", 5270.27, 0.5, 0.08, "M"),
    ("Ni I", 5476.90, 0.5, 0.08, "M"), ("Ni I", 6643.64, 0.35, 0.07, "M"),
    ("Ni I", 6767.77, 0.3, 0.07, "M"), ("Ti I", 4981.73, 0.4, 0.07, "M"),
    ("Ti I", 4991.07, 0.4, 0.07, "M"), ("Ti I", 4999.50, 0.35, 0.07, "M"),
    ("Ti I", 5064.65, 0.3, 0.07, "M"), ("Cr I", 5206.04, 0.55, 0.08, "M"),
    ("Cr I", 5208.42, 0.6, 0.08, "M"), ("Cr I", 5409.78, 0.4, 0.07, "M"),
    ("Mn I", 4030.75, 0.7, 0.1, "M"), ("Si I", 8556.78, 0.25, 0.08, "M"),
    ("Ba II", 4554.03, 0.6, 0.08, "I"), ("Ba II", 6141.71, 0.4, 0.08, "I"),
    ("Ba II", 6496.90, 0.35, 0.08, "I"), ("Sr II", 4077.71, 0.7, 0.1, "I"),
    ("Sr II", 4215.52, 0.55, 0.1, "I"),
    ("Fe II", 4923.92, 0.5, 0.08, "I"), ("Fe II", 5018.44, 0.55, 0.08, "I"),
    ("Fe II", 5169.03, 0.5, 0.08, "I"), ("Fe II", 5197.58, 0.3, 0.07, "I"),
    ("Fe II", 5234.62, 0.3, 0.07, "I"), ("Fe II", 5316.62, 0.35, 0.07, "I"),
    ("Fe II", 5425.25, 0.2, 0.06, "I"), ("Fe II", 6247.56, 0.2, 0.06, "I"),
    ("Fe II", 6456.38, 0.25, 0.06, "I"),
    *(("Fe I", w, s, 0.07, "M") for w, s in (
        (4045.81, 1.0), (4063.59, 0.8), (4071.74, 0.8), (4143.87, 0.6), (4202.03, 0.6),
        (4250.79, 0.6), (4260.47, 0.6), (4271.76, 0.7), (4307.90, 0.8), (4325.76, 0.7),
        (4383.55, 0.9), (4404.75, 0.8), (4415.12, 0.6), (4528.61, 0.5), (4859.74, 0.4),
        (4890.76, 0.4), (4891.49, 0.5), (4920.50, 0.6), (4957.60, 0.6), (5006.12, 0.4),
        (5012.07, 0.4), (5049.82, 0.4), (5079.74, 0.3), (5083.34, 0.35), (5110.41, 0.4),
        (5166.28, 0.4), (5171.60, 0.45), (5191.45, 0.45), (5192.34, 0.45), (5227.19, 0.55),
        (5232.94, 0.5), (5266.56, 0.45), (5269.54, 0.7), (5283.62, 0.35), (5324.18, 0.45),
        (5328.04, 0.6), (5339.93, 0.35), (5341.02, 0.4), (5367.47, 0.35), (5369.96, 0.35),
        (5371.49, 0.55), (5383.37, 0.35), (5393.17, 0.3), (5397.13, 0.55), (5404.15, 0.35),
        (5405.77, 0.55), (5410.91, 0.3), (5415.20, 0.3), (5424.07, 0.3), (5429.70, 0.55),
        (5434.52, 0.5), (5446.92, 0.55), (5455.61, 0.5), (5497.52, 0.4), (5501.47, 0.4),
        (5506.78, 0.4), (5569.62, 0.3), (5572.84, 0.35), (5576.09, 0.3), (5586.76, 0.4),
        (5615.64, 0.4), (5624.54, 0.25), (5658.82, 0.25), (6065.48, 0.3), (6136.61, 0.3),
        (6137.69, 0.3), (6191.56, 0.3), (6213.43, 0.25), (6230.72, 0.3), (6246.32, 0.25),
        (6252.56, 0.3), (6265.13, 0.25), (6335.33, 0.25), (6336.82, 0.25), (6393.60, 0.3),
        (6400.00, 0.3), (6411.65, 0.25), (6421.35, 0.25), (6430.85, 0.25), (6494.98, 0.3),
        (6546.24, 0.2), (6592.91, 0.25), (6677.99, 0.25), (6750.15, 0.2), (7495.07, 0.2),
        (7511.02, 0.2), (8327.06, 0.3), (8387.77, 0.3), (8468.41, 0.3), (8514.07, 0.3),
        (8611.80, 0.25), (8621.60, 0.25), (8674.75, 0.3), (8688.62, 0.4), (8824.22, 0.3),
        (8838.43, 0.25))),
)

#: how many weak blends per 100 Å in the seeded forest
_FOREST_DENSITY = 12


@dataclass(frozen=True)
class _LineList:
    wave: np.ndarray        # vacuum Å
    strength: np.ndarray    # peak optical depth of the reference star, intrinsic width
    width: np.ndarray       # intrinsic σ, Å
    kind: np.ndarray        # class letter


@lru_cache(maxsize=1)
def _lines() -> _LineList:
    wave = air_to_vacuum(np.array([row[1] for row in _LINE_TABLE]))
    strength = np.array([row[2] for row in _LINE_TABLE])
    width = np.array([row[3] for row in _LINE_TABLE])
    kind = np.array([row[4] for row in _LINE_TABLE])
    # the forest of weak metal blends: fixed seed, so every run has the same lines
    rng = np.random.default_rng(20240311)
    n = int((9700 - 3600) / 100 * _FOREST_DENSITY)
    fw = np.sort(rng.uniform(3600.0, 9700.0, n))
    fs = rng.uniform(0.03, 0.25, n)
    return _LineList(np.concatenate([wave, fw]), np.concatenate([strength, fs]),
                     np.concatenate([width, np.full(n, 0.06)]),
                     np.concatenate([kind, np.full(n, "M")]))


LINES = _LINE_TABLE
"""The named lines: (species, air Å, strength, intrinsic σ Å, class)."""

# Night-sky emission lines (vacuum Å, relative intensity): [O I], Na D, and the
# strongest OH lines in the red; continuum ~ 21.5 mag/arcsec² in V.
SKY_LINES: tuple[tuple[float, float], ...] = tuple(
    (float(air_to_vacuum(w)), i) for w, i in (
        (5577.34, 60.0), (5889.95, 8.0), (5895.92, 6.0), (6300.30, 25.0), (6363.78, 8.0),
        (6498.73, 3.0), (6553.61, 3.0), (6863.96, 8.0), (6923.22, 4.0), (7316.28, 12.0),
        (7340.89, 12.0), (7369.25, 6.0), (7750.64, 14.0), (7794.11, 14.0), (7821.50, 12.0),
        (7913.71, 16.0), (7964.65, 16.0), (7993.33, 20.0), (8344.60, 30.0), (8399.17, 30.0),
        (8430.17, 25.0), (8465.36, 22.0), (8505.00, 10.0), (8761.32, 28.0), (8767.92, 28.0),
        (8827.10, 35.0), (8885.85, 35.0), (8919.64, 20.0), (8958.10, 30.0), (8988.38, 24.0),
        (9001.38, 26.0), (9375.96, 40.0), (9439.67, 40.0), (9476.91, 35.0)))


def _strength_factor(kind: np.ndarray, teff: float, logg: float, feh: float) -> np.ndarray:
    """How the line classes respond to the star (1 at 5500 K, log g 4.5, solar)."""
    metal = 10.0 ** (0.7 * feh)
    cool = np.clip((7800.0 - teff) / 2300.0, 0.08, 2.0)
    out = np.ones(kind.shape)
    out[kind == "M"] = metal * cool ** 1.3
    out[kind == "I"] = metal * np.clip((8200.0 - teff) / 2700.0, 0.2, 1.6) * (
        1.0 + 0.25 * (4.5 - logg))
    out[kind == "H"] = np.clip((teff - 3300.0) / 2200.0, 0.05, 3.0)
    out[kind == "C"] = 10.0 ** (0.35 * feh) * (1.0 + 0.2 * (4.5 - logg)) * np.clip(
        (8500.0 - teff) / 3000.0, 0.3, 1.5)
    out[kind == "G"] = 10.0 ** (0.5 * feh) * (1.0 + 0.15 * (logg - 4.5)) * cool
    out[kind == "A"] = 10.0 ** (0.4 * feh) * np.clip((7200.0 - teff) / 1700.0, 0.1, 2.5)
    out[kind == "O"] = np.clip((teff - 4000.0) / 2000.0, 0.2, 2.0)
    return out


def line_absorption(wave: np.ndarray, teff: float, logg: float, feh: float,
                    resolution: float, rv_kms: float = 0.0) -> np.ndarray:
    """exp(−τ): the lines of a star seen at ``rv_kms`` through resolving power ``resolution``.

    ``wave`` are the observed (vacuum) wavelengths; the rest-frame profile is
    evaluated at ``wave / (1 + rv/c)``.  Instrumental broadening adds in
    quadrature to the intrinsic width with the optical depth scaled to keep
    the line's integral.
    """
    wave = np.asarray(wave, dtype=float)
    rest = wave / (1.0 + rv_kms / C_KMS)
    lines = _lines()
    lo, hi = rest.min() - 60.0, rest.max() + 60.0
    sel = (lines.wave > lo) & (lines.wave < hi)
    lw, ls, lsig = lines.wave[sel], lines.strength[sel], lines.width[sel]
    factor = _strength_factor(lines.kind[sel], teff, logg, feh)
    inst = lw / (resolution * _FWHM)
    sig = np.sqrt(lsig ** 2 + inst ** 2)
    peak = ls * factor * lsig / sig
    tau = np.zeros_like(rest)
    order = np.argsort(rest)
    rs = rest[order]
    for w0, s, p in zip(lw, sig, peak, strict=True):
        i0, i1 = np.searchsorted(rs, (w0 - 6.0 * s, w0 + 6.0 * s))
        if i1 > i0:
            tau[order[i0:i1]] += p * np.exp(-0.5 * ((rs[i0:i1] - w0) / s) ** 2)
    return np.exp(-tau)


def _planck(wave: np.ndarray, teff: float) -> np.ndarray:
    """B_λ(T) normalised to 1 at 5500 Å."""
    hc_k = 1.4387769e8  # Å K
    x = hc_k / (np.asarray(wave, dtype=float) * teff)
    x0 = hc_k / (5500.0 * teff)
    return (5500.0 / wave) ** 5 * np.expm1(x0) / np.expm1(x)


def stellar_flux(wave: np.ndarray, teff: float, logg: float, feh: float, resolution: float,
                 rv_kms: float = 0.0) -> np.ndarray:
    """A star's spectrum, 1 at 5500 Å in the continuum: black body × line absorption."""
    return _planck(wave, teff) * line_absorption(wave, teff, logg, feh, resolution, rv_kms)


@dataclass(frozen=True)
class Template:
    """A grid point of the RV templates."""

    teff: float
    logg: float
    feh: float

    @property
    def name(self) -> str:
        """``t5500g45m00``-style name (``rv_template`` of the spectra table)."""
        sign = "m" if self.feh < 0 else "p"
        return (f"t{self.teff:.0f}g{self.logg * 10:02.0f}{sign}"
                f"{abs(self.feh) * 10:02.0f}")


def template_grid(teff: tuple[float, ...] = (4000, 4750, 5500, 6250, 7000),
                  logg: tuple[float, ...] = (2.5, 4.5),
                  feh: tuple[float, ...] = (-1.0, 0.0)) -> tuple[Template, ...]:
    """Every combination of the grid's values, in a stable order."""
    return tuple(Template(float(t), float(g), float(f)) for t in teff for g in logg for f in feh)


def sky_spectrum(wave: np.ndarray, resolution: float) -> np.ndarray:
    """The night sky per arcsec², in units of the continuum at 5500 Å (lines on a continuum).

    Multiply by the continuum's flux (1e-17 erg/s/cm²/Å/arcsec² ≈ 21.5 mag/arcsec²
    in V is 0.9 of these units) to get a flux.
    """
    wave = np.asarray(wave, dtype=float)
    cont = 0.9 * (1.0 + 0.35 * np.clip((wave - 5500.0) / 3500.0, -1, 1.5))
    out = cont.copy()
    for w0, inten in SKY_LINES:
        s = w0 / (resolution * _FWHM)
        # the line's integral is `inten` continuum-Å, whatever the resolution
        m = np.abs(wave - w0) < 6.0 * s
        if m.any():
            out[m] += inten * np.exp(-0.5 * ((wave[m] - w0) / s) ** 2) / (s * np.sqrt(2 * np.pi))
    return out

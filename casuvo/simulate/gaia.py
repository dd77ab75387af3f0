# SPDX-License-Identifier: BSD-3-Clause
"""A seeded simulator of a Gaia DR3-like reference catalogue (gaia_source) for one field.

The sky is simple but physically coherent, so that astrometric calibration,
cross-matching and cone/ADQL queries behave as they would on Gaia DR3:

* **Counts.**  The number of catalogue sources per deg² follows a thin plus a
  thick exponential law in \\|b\\| with a mild longitude factor
  (:func:`source_density`): ~1e5 in the plane at \\|b\\| ~ 2°, a few 1e4 at
  \\|b\\| ~ 5°, ~1.5e4 at \\|b\\| ~ 11°.  ``scale`` multiplies the counts.
* **Magnitudes.**  dN/dG ∝ 10^(0.35 G) from G = 6 with a logistic
  completeness rollover at G = 20.7, brighter (down to 20.0) in crowded fields.
* **Distances.**  For each G a star's distance and class (dwarf/giant) are
  drawn along the line of sight from ρ(d) d² × luminosity function, where ρ is
  a thin + thick exponential disc and the absolute magnitude includes the
  extinction to that distance; parallax = 1/d.
* **Colours.**  A main-sequence colour–magnitude relation (giants redder than
  the clump), plus E(BP−RP) = 0.05/sin\\|b\\| (≤ 3.5) reached over the dust
  layer (scale height 120 pc), A_G = 1.9 E(BP−RP); BP and RP from G and
  BP−RP through a quadratic G−RP(BP−RP) relation.
* **Kinematics.**  Flat rotation curve (233 km/s, R0 = 8.122 kpc), solar
  motion (11.1, 12.24, 7.25) km/s, Gaussian dispersions and asymmetric drift
  per disc; (μ_l*, μ_b) are rotated to ICRS with astropy.
* **Clusters** (:data:`~casuvo.simulate.fields.CLUSTERS`) in the field add
  members with a King (1962) profile, a common parallax and proper motion with
  small dispersions and a colour–magnitude locus.
* **Central stars of planetary nebulae**
  (:data:`~casuvo.simulate.fields.PLANETARY_NEBULAE`) in the field: one row
  each, with the nebula's true values (exactly where the sky model puts the
  star), measured like every other row.  They are drawn from their own
  random streams after everything else, so every other row is the same with
  or without them; their random_index values follow those of all the demo
  fields' other rows.
* **Measurement.**  Catalogue value = truth + Gaussian noise with the quoted
  error.  σ_ϖ[µas] = sqrt(40 + 800 z + 30 z²), z = 10^(0.4 (max(G, 13) − 15))
  (EDR3-like), position errors 0.8 σ_ϖ, proper-motion errors σ_ϖ per year,
  scaled by RUWE (lognormal around 1, a few per cent above 1.4).  Sources
  fainter than G = 20.5 and a few per cent of the others get 2-parameter
  solutions (NaN parallax and proper motion, larger position errors).  BP/RP
  go missing towards the faint end; radial velocities exist only for G < 15.

Positions are the J2016.0 positions; source_id encodes the level-12 HEALPix
index of the catalogue (ra, dec) exactly (:mod:`casuvo.sky.healpix`), with the
field's :attr:`~casuvo.simulate.fields.Field.key` as chunk.  Everything is
drawn from ``numpy.random.default_rng([seed, field.key])``, so each field is
reproducible on its own.
"""

from __future__ import annotations

import logging
import math
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Column, Table
from astropy.utils.exceptions import AstropyWarning

from casuvo.simulate.fields import (
    DEMO_FIELDS,
    Cluster,
    Field,
    PlanetaryNebula,
    clusters_in,
    nebulae_in,
)
from casuvo.sky.healpix import CHUNK_BITS, gaia_source_ids
from casuvo.storage.files import write_fits

__all__ = [
    "CATALOGUE_COLUMNS",
    "REF_EPOCH",
    "SIM_VERSION",
    "TRUTH_COLUMNS",
    "GaiaFiles",
    "existing_gaia",
    "expected_rows",
    "gaia_paths",
    "simulate_gaia",
    "source_density",
    "write_gaia",
]

log = logging.getLogger(__name__)

#: Bumped whenever the model changes, so that files from another version are rebuilt.
SIM_VERSION = 1
REF_EPOCH = 2016.0
#: Gaia DR3 G-band zero point (Vega), mag = ZP − 2.5 log10(flux [e⁻/s]).
G_ZERO_POINT = 25.6874
_K = 4.740470446  # km/s per (kpc · mas/yr)
_MAS_PER_DEG = 3.6e6

#: Catalogue columns: name -> (numpy dtype, unit).  Gaia DR3 gaia_source names.
CATALOGUE_COLUMNS: dict[str, tuple[str, str | None]] = {
    "source_id": ("int64", None), "random_index": ("int64", None),
    "ref_epoch": ("float64", "yr"),
    "ra": ("float64", "deg"), "ra_error": ("float32", "mas"),
    "dec": ("float64", "deg"), "dec_error": ("float32", "mas"),
    "parallax": ("float64", "mas"), "parallax_error": ("float32", "mas"),
    "parallax_over_error": ("float32", None), "pm": ("float32", "mas/yr"),
    "pmra": ("float64", "mas/yr"), "pmra_error": ("float32", "mas/yr"),
    "pmdec": ("float64", "mas/yr"), "pmdec_error": ("float32", "mas/yr"),
    "ra_dec_corr": ("float32", None), "astrometric_params_solved": ("int16", None),
    "ruwe": ("float32", None),
    "phot_g_mean_flux": ("float64", "electron/s"),
    "phot_g_mean_flux_error": ("float32", "electron/s"),
    "phot_g_mean_mag": ("float32", "mag"), "phot_bp_mean_mag": ("float32", "mag"),
    "phot_rp_mean_mag": ("float32", "mag"), "bp_rp": ("float32", "mag"),
    "bp_g": ("float32", "mag"), "g_rp": ("float32", "mag"),
    "radial_velocity": ("float32", "km/s"), "radial_velocity_error": ("float32", "km/s"),
    "phot_variable_flag": ("str", None),
    "l": ("float64", "deg"), "b": ("float64", "deg"),
    "ecl_lon": ("float64", "deg"), "ecl_lat": ("float64", "deg"),
}

#: Truth columns, row for row with the catalogue.
TRUTH_COLUMNS: dict[str, tuple[str, str | None]] = {
    "source_id": ("int64", None), "ra_true": ("float64", "deg"),
    "dec_true": ("float64", "deg"), "parallax_true": ("float64", "mas"),
    "pmra_true": ("float64", "mas/yr"), "pmdec_true": ("float64", "mas/yr"),
    "radial_velocity_true": ("float64", "km/s"), "g_true": ("float64", "mag"),
    "bp_rp_true": ("float64", "mag"), "is_member": ("bool", None), "field": ("str", None),
}

# -- the Galaxy ---------------------------------------------------------------------------

_R_SUN, _V_CIRC = 8.122, 233.0  # kpc, km/s
_SUN_UVW = (11.1, 12.24, 7.25)  # km/s relative to the LSR (Schönrich et al. 2010)


@dataclass(frozen=True)
class _Disc:
    h_r: float  # radial scale length, kpc
    h_z: float  # scale height, kpc
    norm: float  # local density relative to the thin disc
    sigma: tuple[float, float, float]  # (σ_R, σ_φ, σ_z), km/s
    lag: float  # asymmetric drift, km/s


_THIN = _Disc(2.6, 0.30, 1.0, (35.0, 25.0, 18.0), 8.0)
_THICK = _Disc(2.0, 0.90, 0.12, (65.0, 45.0, 40.0), 40.0)


@lru_cache(maxsize=64)
def _galactic(ra: float, dec: float) -> tuple[float, float]:
    g = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs").galactic
    return float(g.l.deg), float(g.b.deg)


def source_density(l_deg: float, b_deg: float) -> float:
    """Catalogue sources per deg² (after completeness) at Galactic (l, b), at scale 1.

    Σ = (0.4 + 0.3 (1 + cos l)) × (2.66e5 e^(−|b|/1.5°) + 7e4 e^(−|b|/8°)): a
    thin and a thick component in |b|, richer towards the inner Galaxy.
    Gives ~1.1e5 (vvv_disc), ~6e4 (vphas_pn), ~4.5e4 (ges_1528), ~1.5e4 (ngc6791).
    """
    lon = 0.4 + 0.3 * (1 + math.cos(math.radians(l_deg)))
    ab = abs(b_deg)
    return lon * (2.66e5 * math.exp(-ab / 1.5) + 7.0e4 * math.exp(-ab / 8.0))


def _crowding(density: float) -> float:
    """0 for ≤ 2e4 sources/deg², 1 for ≥ 1e5, log-linear between."""
    return float(np.clip(math.log10(density / 2e4) / math.log10(5.0), 0.0, 1.0))


def _completeness(g: np.ndarray, crowd: float) -> np.ndarray:
    g50 = 20.7 - 0.7 * crowd
    return 1.0 / (1.0 + np.exp((g - g50) / 0.2))


def _reddening(d: np.ndarray, b_deg: float) -> np.ndarray:
    """E(BP−RP) to distance d (kpc): cosecant law through a 120 pc dust layer."""
    sinb = max(abs(math.sin(math.radians(b_deg))), 1e-3)
    return min(0.05 / sinb, 3.5) * (1.0 - np.exp(-d * sinb / 0.12))


_A_G = 1.9  # A_G / E(BP−RP)


def _densities(d: np.ndarray, l_deg: float, b_deg: float) -> tuple[np.ndarray, np.ndarray]:
    lr, br = math.radians(l_deg), math.radians(b_deg)
    x, y, z = d * math.cos(br) * math.cos(lr), d * math.cos(br) * math.sin(lr), d * math.sin(br)
    r = np.hypot(x - _R_SUN, y)
    return tuple(disc.norm * np.exp(-(r - _R_SUN) / disc.h_r - np.abs(z) / disc.h_z)
                 for disc in (_THIN, _THICK))  # type: ignore[return-value]


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _lf_dwarf(m: np.ndarray) -> np.ndarray:
    return 10 ** (0.12 * m) * _logistic((m - 1.5) / 0.3) * _logistic((13.5 - m) / 0.4)


def _lf_giant(m: np.ndarray) -> np.ndarray:
    return 0.02 * np.exp(-0.5 * ((m - 0.7) / 1.0) ** 2)


_MS_M = np.array([-1, 0, 1, 1.5, 2, 3, 4, 4.5, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14.0])
_MS_C = np.array([-0.2, -0.05, 0.1, 0.2, 0.35, 0.55, 0.7, 0.8, 0.87, 1.05, 1.35, 1.7, 2.05,
                  2.4, 2.7, 3.0, 3.3, 3.6])

# -- sampling helpers ---------------------------------------------------------------------

_G_MIN, _G_MAX, _G_STEP = 6.0, 21.6, 0.05
_D_EDGES = np.geomspace(0.005, 30.0, 401)  # kpc
_EDGE_MARGIN_DEG = 1.0 / 3600  # true positions stay 1″ inside the square


def _sample_pdf(rng: np.random.Generator, x: np.ndarray, pdf: np.ndarray, n: int) -> np.ndarray:
    """n draws from a tabulated density (inverse CDF, linear between grid points)."""
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(x))])
    return np.interp(rng.random(n), cdf / cdf[-1], x)


def _accepted(n: int, draw: Callable[[int], tuple[dict[str, np.ndarray], np.ndarray]]
              ) -> dict[str, np.ndarray]:
    """Exactly n accepted draws: ``draw(m)`` returns m candidates and an accept mask."""
    parts: list[dict[str, np.ndarray]] = []
    have = 0
    while have < n:
        cand, ok = draw(2 * (n - have) + 16)
        parts.append({k: v[ok] for k, v in cand.items()})
        have += int(ok.sum())
    return {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0]}


def _uniform_square(rng: np.random.Generator, field: Field, n: int) -> tuple[np.ndarray, ...]:
    half = field.size_deg / 2 - _EDGE_MARGIN_DEG
    return field.from_tangent(rng.uniform(-half, half, n), rng.uniform(-half, half, n))


# -- field stars --------------------------------------------------------------------------


def _field_rows(field: Field, scale: float) -> int:
    return round(source_density(*_galactic(field.ra, field.dec)) * field.size_deg**2 * scale)


def _population_rows(field: Field, scale: float) -> int:
    """Field stars and cluster members: the rows that scale with ``scale``."""
    return _field_rows(field, scale) + sum(round(c.members * scale) for c in clusters_in(field))


def expected_rows(field: Field, scale: float) -> int:
    """Rows :func:`simulate_gaia` produces for ``field`` at ``scale`` (no randomness)."""
    return _population_rows(field, scale) + len(nebulae_in(field))


def _field_stars(rng: np.random.Generator, field: Field, n: int, crowd: float
                 ) -> dict[str, np.ndarray]:
    l0, b0 = _galactic(field.ra, field.dec)
    ggrid = np.arange(_G_MIN, _G_MAX + 1e-9, 0.01)
    g = _sample_pdf(rng, ggrid, 10 ** (0.35 * (ggrid - 21)) * _completeness(ggrid, crowd), n)

    # Line of sight: weight of each (G bin, distance cell, class) ∝ ρ d³ Δln d × LF(M).
    d = np.sqrt(_D_EDGES[1:] * _D_EDGES[:-1])
    thin, thick = _densities(d, l0, b0)
    gcent = np.arange(_G_MIN + _G_STEP / 2, _G_MAX, _G_STEP)
    absmag = (gcent[:, None] - 5 * np.log10(d * 100.0) - _A_G * _reddening(d, b0))
    w = (thin + thick) * d**3
    cells = np.concatenate([w * _lf_dwarf(absmag), w * _lf_giant(absmag)], axis=1)
    cdf = np.cumsum(cells, axis=1)
    cdf = cdf / cdf[:, -1:] + np.arange(len(gcent))[:, None]
    gbin = np.clip(((g - _G_MIN) / _G_STEP).astype(np.int64), 0, len(gcent) - 1)
    cell = np.searchsorted(cdf.ravel(), gbin + rng.random(n), side="right") - gbin * len(d) * 2
    cell = np.clip(cell, 0, 2 * len(d) - 1)
    giant, k = cell >= len(d), cell % len(d)
    dist = np.exp(np.log(_D_EDGES[k]) + rng.random(n) * np.log(_D_EDGES[k + 1] / _D_EDGES[k]))

    ebprp = _reddening(dist, b0)
    m = g - 5 * np.log10(dist * 100.0) - _A_G * ebprp
    c0 = np.where(giant, np.clip(1.15 + 0.22 * (0.7 - m), 0.95, 2.8), np.interp(m, _MS_M, _MS_C))
    bp_rp = c0 + rng.normal(0.0, 0.05, n) + ebprp

    ra, dec = _uniform_square(rng, field, n)
    thin_d, thick_d = _densities(dist, l0, b0)
    is_thick = rng.random(n) < thick_d / (thin_d + thick_d)
    pmra, pmdec, rv = _disc_kinematics(rng, ra, dec, dist, is_thick)
    return {"ra": ra, "dec": dec, "parallax": 1.0 / dist, "pmra": pmra, "pmdec": pmdec,
            "rv": rv, "g": g, "bp_rp": bp_rp, "member": np.zeros(n, dtype=bool)}


def _disc_kinematics(rng: np.random.Generator, ra: np.ndarray, dec: np.ndarray, d: np.ndarray,
                     thick: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ICRS (μ_α*, μ_δ) in mas/yr and RV in km/s of disc stars at distance d (kpc)."""
    if len(d) == 0:  # astropy drops the differentials of empty coordinates
        return np.zeros(0), np.zeros(0), np.zeros(0)
    gal = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs").galactic
    lr, br = gal.l.rad, gal.b.rad
    cl, sl, cb, sb = np.cos(lr), np.sin(lr), np.cos(br), np.sin(br)
    gx, gy = d * cb * cl - _R_SUN, d * cb * sl  # Galactocentric, Sun at (−R0, 0)
    r = np.hypot(gx, gy)
    sig = np.where(thick[:, None], _THICK.sigma, _THIN.sigma)
    v_r = rng.normal(0.0, 1.0, len(d)) * sig[:, 0]
    v_phi = (_V_CIRC - np.where(thick, _THICK.lag, _THIN.lag)
             + rng.normal(0.0, 1.0, len(d)) * sig[:, 1])
    v_z = rng.normal(0.0, 1.0, len(d)) * sig[:, 2]
    # e_R = (X, Y)/R; the rotation direction (+y at the Sun) is e_φ = (Y, −X)/R.
    vx = (v_r * gx + v_phi * gy) / r - _SUN_UVW[0]
    vy = (v_r * gy - v_phi * gx) / r - (_V_CIRC + _SUN_UVW[1])
    vz = v_z - _SUN_UVW[2]
    rv = vx * cb * cl + vy * cb * sl + vz * sb
    v_l = -vx * sl + vy * cl
    v_b = -vx * sb * cl - vy * sb * sl + vz * cb
    pmra, pmdec = _galactic_pm_to_icrs(ra, dec, v_l / (_K * d), v_b / (_K * d))
    return pmra, pmdec, rv


def _galactic_pm_to_icrs(ra: np.ndarray, dec: np.ndarray, pm_l: np.ndarray, pm_b: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Rotate (μ_l*, μ_b) into (μ_α*, μ_δ) at ICRS (ra, dec).

    The two frames differ by a rigid rotation, so the proper-motion vector
    turns by the position angle between the directions to the north Galactic
    and north celestial poles (Poleski 2013, arXiv:1306.2945); the Galactic
    pole is astropy's, so this agrees with astropy's own transformation (the
    latter is ~10× slower).
    """
    ra_p, dec_p = _galactic_pole()
    a, dl = np.radians(dec), np.radians(ra - ra_p)
    c1 = math.sin(dec_p) * np.cos(a) - math.cos(dec_p) * np.sin(a) * np.cos(dl)
    c2 = math.cos(dec_p) * np.sin(dl)
    norm = np.hypot(c1, c2)  # = cos b
    return (c1 * pm_l - c2 * pm_b) / norm, (c2 * pm_l + c1 * pm_b) / norm


@lru_cache(maxsize=1)
def _galactic_pole() -> tuple[float, float]:
    """ICRS right ascension (deg) and declination (rad) of the north Galactic pole."""
    pole = SkyCoord(l=0 * u.deg, b=90 * u.deg, frame="galactic").icrs
    return float(pole.ra.deg), float(pole.dec.rad)


# -- cluster members ----------------------------------------------------------------------


def _cluster_members(rng: np.random.Generator, field: Field, cluster: Cluster, n: int,
                     crowd: float) -> dict[str, np.ndarray]:
    """n members of ``cluster``: King profile, common motion, CMD locus, all in the field."""
    rc, rt = cluster.core_radius_arcmin, cluster.tidal_radius_arcmin
    rgrid = np.linspace(0.0, rt, 2001)
    king = (1 / np.sqrt(1 + (rgrid / rc) ** 2) - 1 / np.sqrt(1 + (rt / rc) ** 2)) ** 2
    xi0, eta0 = field.to_tangent(cluster.ra, cluster.dec)
    half = field.size_deg / 2 - _EDGE_MARGIN_DEG

    def positions(m: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        r = _sample_pdf(rng, rgrid, rgrid * king, m) / 60.0
        theta = rng.uniform(0.0, 2 * np.pi, m)
        xi, eta = xi0 + r * np.cos(theta), eta0 + r * np.sin(theta)
        return {"xi": xi, "eta": eta}, (np.abs(xi) <= half) & (np.abs(eta) <= half)

    locus = np.asarray(cluster.locus, dtype=np.float64)
    weights = locus[:-1, 2] / locus[:-1, 2].sum()
    turnoff = int(np.argmin(locus[:, 1]))
    g_rc, c_rc, f_rc = cluster.red_clump

    def photometry(m: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        seg = rng.choice(len(weights), size=m, p=weights)
        t = rng.random(m)
        g = locus[seg, 0] + t * (locus[seg + 1, 0] - locus[seg, 0])
        c = locus[seg, 1] + t * (locus[seg + 1, 1] - locus[seg, 1])
        binary = (seg < turnoff) & (rng.random(m) < 0.25)  # unresolved MS binaries
        g = g - binary * rng.uniform(0.0, 0.75, m)
        clump = rng.random(m) < f_rc
        g = np.where(clump, rng.normal(g_rc, 0.05, m), g) + rng.normal(0.0, 0.02, m)
        c = np.where(clump, rng.normal(c_rc, 0.02, m), c) + rng.normal(0.0, 0.015, m)
        return {"g": g, "bp_rp": c}, rng.random(m) < _completeness(g, crowd)

    pos = _accepted(n, positions)
    phot = _accepted(n, photometry)
    ra, dec = field.from_tangent(pos["xi"], pos["eta"])
    return {"ra": ra, "dec": dec, "parallax": rng.normal(cluster.parallax, 0.003, n),
            "pmra": rng.normal(cluster.pmra, cluster.pm_dispersion, n),
            "pmdec": rng.normal(cluster.pmdec, cluster.pm_dispersion, n),
            "rv": rng.normal(cluster.radial_velocity, cluster.rv_dispersion, n),
            "g": phot["g"], "bp_rp": phot["bp_rp"], "member": np.ones(n, dtype=bool)}


# -- central stars of planetary nebulae ---------------------------------------------------

#: Seed word of the central stars' random streams ("PN"), apart from the field's stream.
_PN_STREAM = 0x504E


def _central_star_truth(pn: PlanetaryNebula) -> dict[str, np.ndarray]:
    return {"ra": np.array([pn.ra]), "dec": np.array([pn.dec]),
            "parallax": np.array([pn.parallax]), "pmra": np.array([pn.pmra]),
            "pmdec": np.array([pn.pmdec]), "rv": np.array([pn.radial_velocity]),
            "g": np.array([pn.g]), "bp_rp": np.array([pn.bp_rp]),
            "member": np.zeros(1, dtype=bool)}


def _well_measured(obs: dict[str, np.ndarray]) -> bool:
    """A five-parameter solution with BP/RP, RUWE < 1.4 and no variability flag."""
    return bool(obs["astrometric_params_solved"][0] == 31
                and np.isfinite(obs["bp_rp"][0]) and obs["ruwe"][0] < 1.4
                and obs["phot_variable_flag"][0] == "NOT_AVAILABLE")


def _central_stars(field: Field, seed: int, crowd: float
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """Truth and catalogue columns of the central stars of the nebulae in ``field``.

    Measured by :func:`_observe`, each from its own stream: the first draw that
    gives a well-measured source (the real central stars of catalogued nebulae
    as bright as these have clean five-parameter solutions) is kept.  Gaia DR3
    has no radial velocities for stars this hot, so there are none.
    """
    truths, cats = [], []
    for pn in nebulae_in(field):
        t = _central_star_truth(pn)
        for attempt in range(1000):
            rng = np.random.default_rng(
                [seed, field.key, _PN_STREAM, zlib.crc32(pn.name.encode()), attempt])
            obs = _observe(rng, t, crowd)
            if _well_measured(obs):
                break
        obs["radial_velocity"][:] = obs["radial_velocity_error"][:] = np.nan
        truths.append(t)
        cats.append(obs)
    if not truths:
        return None
    return ({k: np.concatenate([t[k] for t in truths]) for k in truths[0]},
            {k: np.concatenate([c[k] for c in cats]) for k in cats[0]})


def _central_star_random_index(field: Field, seed: int, scale: float) -> np.ndarray:
    """random_index of the central stars of ``field``: after every other demo row."""
    layout = list(DEMO_FIELDS) if field in DEMO_FIELDS else [*DEMO_FIELDS, field]
    start = sum(_population_rows(f, scale) for f in layout)
    start += sum(len(nebulae_in(f)) for f in layout[: layout.index(field)])
    return np.arange(start, start + len(nebulae_in(field)), dtype=np.int64)


# -- measurement --------------------------------------------------------------------------


def _g_minus_rp(bp_rp: np.ndarray) -> np.ndarray:
    c = np.clip(bp_rp, -0.5, 4.0)
    return -0.02 + 0.68 * c - 0.08 * c**2


def _lognormal(rng: np.random.Generator, sigma: float, n: int) -> np.ndarray:
    return np.exp(rng.normal(0.0, sigma, n))


def _observe(rng: np.random.Generator, t: dict[str, np.ndarray], crowd: float
             ) -> dict[str, np.ndarray]:
    """Catalogue columns (no identifiers, no derived coordinates) from the truth ``t``."""
    n = len(t["g"])
    nan = np.float64("nan")
    # G flux and magnitude.
    flux_true = 10 ** (0.4 * (G_ZERO_POINT - t["g"]))
    sig_g = np.hypot(3e-4, 2.5e-3 * 10 ** (0.2 * (t["g"] - 19))) * (1 + 0.5 * crowd)
    flux_err = flux_true * sig_g / (2.5 / np.log(10))
    flux = flux_true + rng.normal(0.0, 1.0, n) * flux_err
    g = G_ZERO_POINT - 2.5 * np.log10(flux)
    # BP, RP: missing towards the faint end, earlier in crowded fields.
    rp_true = t["g"] - _g_minus_rp(t["bp_rp"])
    bp_true = rp_true + t["bp_rp"]
    sig_bp = np.hypot(1e-3, 8e-3 * 10 ** (0.4 * (t["g"] - 19))) * (1 + crowd)
    bp = bp_true + rng.normal(0.0, 1.0, n) * sig_bp
    rp = rp_true + rng.normal(0.0, 1.0, n) * 0.7 * sig_bp
    no_bprp = rng.random(n) < 0.003 + _logistic((g - (20.8 - 0.6 * crowd)) / 0.25)
    bp[no_bprp] = rp[no_bprp] = nan
    # Astrometry.
    ruwe = _lognormal(rng, 0.07, n)
    tail = rng.random(n) < 0.03 + 0.02 * crowd
    ruwe[tail] = 1.4 + rng.exponential(0.6, int(tail.sum()))
    five = (g <= 20.5) & (rng.random(n) >= 0.03 + 0.04 * crowd)
    z = 10 ** (0.4 * (np.maximum(g, 13.0) - 15.0))
    sig_plx = (np.sqrt(40 + 800 * z + 30 * z**2) / 1000 * _lognormal(rng, 0.1, n) * ruwe
               * (1 + 0.2 * crowd))
    pos_err = 0.8 * sig_plx * np.where(five, 1.0, 2.0)
    ra_error = pos_err * _lognormal(rng, 0.05, n)
    dec_error = pos_err * _lognormal(rng, 0.05, n)
    pmra_error = sig_plx * _lognormal(rng, 0.05, n)
    pmdec_error = sig_plx * _lognormal(rng, 0.05, n)
    corr = np.clip(rng.normal(0.0, 0.2, n), -0.8, 0.8)
    e1, e2 = rng.normal(0.0, 1.0, (2, n))
    ra = (t["ra"] + e1 * ra_error / (_MAS_PER_DEG * np.cos(np.radians(t["dec"])))) % 360.0
    dec = t["dec"] + (corr * e1 + np.sqrt(1 - corr**2) * e2) * dec_error / _MAS_PER_DEG
    parallax = t["parallax"] + rng.normal(0.0, 1.0, n) * sig_plx
    pmra = t["pmra"] + rng.normal(0.0, 1.0, n) * pmra_error
    pmdec = t["pmdec"] + rng.normal(0.0, 1.0, n) * pmdec_error
    for arr in (parallax, sig_plx, pmra, pmra_error, pmdec, pmdec_error):
        arr[~five] = nan
    # Radial velocities: bright stars only.
    has_rv = (g < 15.0) & (rng.random(n) < 1 / (1 + np.exp((g - 14.3) / 0.2)))
    rv_error = (0.2 + 4.0 * 10 ** (0.3 * (g - 14))) * _lognormal(rng, 0.15, n)
    rv = t["rv"] + rng.normal(0.0, 1.0, n) * rv_error
    rv[~has_rv] = rv_error[~has_rv] = nan
    variable = (rng.random(n) < 0.02) & (g < 20.0)
    return {
        "ref_epoch": np.full(n, REF_EPOCH), "ra": ra, "ra_error": ra_error, "dec": dec,
        "dec_error": dec_error, "parallax": parallax, "parallax_error": sig_plx,
        "parallax_over_error": parallax / sig_plx, "pm": np.hypot(pmra, pmdec),
        "pmra": pmra, "pmra_error": pmra_error, "pmdec": pmdec, "pmdec_error": pmdec_error,
        "ra_dec_corr": corr, "astrometric_params_solved": np.where(five, 31, 3),
        "ruwe": ruwe, "phot_g_mean_flux": flux, "phot_g_mean_flux_error": flux_err,
        "phot_g_mean_mag": g, "phot_bp_mean_mag": bp, "phot_rp_mean_mag": rp,
        "bp_rp": bp - rp, "bp_g": bp - g, "g_rp": g - rp,
        "radial_velocity": rv, "radial_velocity_error": rv_error,
        "phot_variable_flag": np.where(variable, "VARIABLE", "NOT_AVAILABLE"),
    }


def _keep_inside(field: Field, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, ...]:
    """Clip measured positions into the square (a no-op unless noise exceeds the margin)."""
    if bool(field.contains(ra, dec).all()):
        return ra, dec
    half = field.size_deg / 2 * (1 - 1e-12)
    xi, eta = field.to_tangent(ra, dec)
    return field.from_tangent(np.clip(xi, -half, half), np.clip(eta, -half, half))


def _random_index(field: Field, seed: int, scale: float, n: int) -> np.ndarray:
    """This field's slice of one permutation of 0..N−1 over all demo fields.

    Row counts are known in advance (:func:`expected_rows`), so every field
    takes its own block of the same seeded permutation: the demo catalogue's
    random_index is a permutation of 0..N−1 (as in Gaia) although each field is
    generated independently.  A non-demo field is placed after the demo fields.
    The central stars of nebulae come after all of these
    (:func:`_central_star_random_index`).
    """
    layout = list(DEMO_FIELDS) if field in DEMO_FIELDS else [*DEMO_FIELDS, field]
    sizes = [_population_rows(f, scale) for f in layout]
    offset = sum(sizes[: layout.index(field)])
    perm = np.random.default_rng([seed, 0x52494458]).permutation(sum(sizes))
    return perm[offset: offset + n].astype(np.int64)


def _table(columns: dict[str, tuple[str, str | None]], data: dict[str, np.ndarray],
           meta: dict[str, object]) -> Table:
    cols = []
    for name, (dtype, unit) in columns.items():
        arr = np.asarray(data[name])
        cols.append(Column(arr if dtype == "str" else arr.astype(dtype), name=name,
                           unit=u.Unit(unit) if unit else None))
    return Table(cols, meta=dict(meta))


def simulate_gaia(field: Field, seed: int, scale: float = 1.0) -> tuple[Table, Table]:
    """The simulated catalogue of ``field`` and its truth (same rows, same order).

    Rows are sorted by source_id (HEALPix order).  The result depends only on
    (field, seed, scale).
    """
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, not {scale}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, not {seed}")
    rng = np.random.default_rng([seed, field.key])
    crowd = _crowding(source_density(*_galactic(field.ra, field.dec)))
    parts = [_field_stars(rng, field, _field_rows(field, scale), crowd)]
    parts += [_cluster_members(rng, field, c, round(c.members * scale), crowd)
              for c in clusters_in(field)]
    truth = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    cat = _observe(rng, truth, crowd)
    cat["ra"], cat["dec"] = _keep_inside(field, cat["ra"], cat["dec"])
    n_pop = len(cat["ra"])
    # Central stars last: the source_id counters of the other rows do not change.
    stars = _central_stars(field, seed, crowd)
    if stars is not None:
        truth = {k: np.concatenate([v, stars[0][k]]) for k, v in truth.items()}
        cat = {k: np.concatenate([v, stars[1][k]]) for k, v in cat.items()}

    ids = gaia_source_ids(cat["ra"], cat["dec"], chunk=field.key % 2**CHUNK_BITS)
    order = np.argsort(ids, kind="stable")
    cat = {k: v[order] for k, v in cat.items()}
    truth = {k: v[order] for k, v in truth.items()}
    n = len(ids)
    cat["source_id"] = truth["source_id"] = ids[order]
    is_star = order >= n_pop
    random_index = np.empty(n, dtype=np.int64)
    random_index[~is_star] = _random_index(field, seed, scale, n_pop)
    random_index[is_star] = _central_star_random_index(field, seed, scale)[order[is_star] - n_pop]
    cat["random_index"] = random_index
    sky = SkyCoord(cat["ra"] * u.deg, cat["dec"] * u.deg, frame="icrs")
    gal, ecl = sky.galactic, sky.barycentrictrueecliptic
    cat.update(l=gal.l.deg, b=gal.b.deg, ecl_lon=ecl.lon.deg, ecl_lat=ecl.lat.deg)

    meta = {"FIELD": field.name, "SEED": seed, "SCALE": scale, "REFEPOCH": REF_EPOCH,
            "SIMVERS": SIM_VERSION}
    truth_cols = {"ra_true": truth["ra"], "dec_true": truth["dec"],
                  "parallax_true": truth["parallax"], "pmra_true": truth["pmra"],
                  "pmdec_true": truth["pmdec"], "radial_velocity_true": truth["rv"],
                  "g_true": truth["g"], "bp_rp_true": truth["bp_rp"],
                  "is_member": truth["member"], "field": np.full(n, field.name),
                  "source_id": truth["source_id"]}
    return _table(CATALOGUE_COLUMNS, cat, meta), _table(TRUTH_COLUMNS, truth_cols, meta)


# -- files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GaiaFiles:
    """The files of one simulated field and their row count."""

    field: Field
    catalogue: Path
    truth: Path
    rows: int
    skipped: bool = False


def gaia_paths(field: Field, outdir: Path) -> tuple[Path, Path]:
    """(catalogue, truth) file paths of ``field`` under ``outdir``."""
    outdir = Path(outdir)
    return (outdir / "gaia" / f"gaia_{field.name}.fits",
            outdir / "truth" / f"gaia_{field.name}_truth.fits")


def _fits_unit(unit: u.UnitBase | None, spelled: str | None) -> str | None:
    """FITS spelling of a unit; units FITS lacks (electron/s) keep Gaia's spelling."""
    if unit is None:
        return None
    try:
        return unit.to_string(format="fits")
    except ValueError:
        return spelled


def _hdu(table: Table, columns: dict[str, tuple[str, str | None]], extname: str,
         field: Field) -> fits.BinTableHDU:
    cols = []
    for name, (_, spelled) in columns.items():
        arr = np.asarray(table[name])
        if arr.dtype.kind == "U":
            width = max(1, arr.dtype.itemsize // 4)
            arr, fmt = arr.astype(f"S{width}"), f"{width}A"  # ASCII only (UnicodeEncodeError)
        else:
            fmt = {"i2": "I", "i4": "J", "i8": "K", "f4": "E", "f8": "D",
                   "b1": "L"}[f"{arr.dtype.kind}{arr.dtype.itemsize}"]
        cols.append(fits.Column(name=name, format=fmt, array=arr,
                                unit=_fits_unit(table[name].unit, spelled)))
    hdu = fits.BinTableHDU.from_columns(cols, name=extname)
    m = table.meta
    hdu.header["FIELD"] = (m["FIELD"], "casuvo demo field")
    hdu.header["SEED"] = (m["SEED"], "random seed of the simulation")
    hdu.header["SCALE"] = (m["SCALE"], "source-count multiplier")
    hdu.header["REFEPOCH"] = (m["REFEPOCH"], "[yr] reference epoch of positions (TCB)")
    hdu.header["SIMVERS"] = (m["SIMVERS"], "casuvo Gaia simulator version")
    hdu.header["FIELDRA"] = (field.ra, "[deg] field centre, ICRS")
    hdu.header["FIELDDE"] = (field.dec, "[deg] field centre, ICRS")
    hdu.header["FIELDSZ"] = (field.size_deg, "[deg] side of the square field")
    return hdu


def write_table_file(hdu: fits.BinTableHDU, path: Path) -> None:
    """Write a primary + ``hdu`` FITS file so that ``path`` is either complete or untouched.

    Written and fsync'ed under a hidden temporary name in the same directory
    (which no ``gaia_*.fits`` glob matches), then renamed over ``path``
    (:func:`casuvo.storage.files.write_fits` with ``fsync``): every later step
    trusts these files.
    """
    write_fits(fits.HDUList([fits.PrimaryHDU(), hdu]), path, fsync=True)


def write_gaia(field: Field, outdir: Path, seed: int, scale: float = 1.0) -> GaiaFiles:
    """Simulate ``field`` and write outdir/gaia/gaia_<field>.fits and its truth file.

    The catalogue is one BINTABLE HDU named GAIA_SOURCE, the truth one named
    TRUTH; both carry FIELD, SEED, SCALE, REFEPOCH and SIMVERS.  The truth is
    written first, so a complete catalogue file implies its truth file exists.
    """
    cat, truth = simulate_gaia(field, seed, scale)
    cat_path, truth_path = gaia_paths(field, outdir)
    write_table_file(_hdu(truth, TRUTH_COLUMNS, "TRUTH", field), truth_path)
    write_table_file(_hdu(cat, CATALOGUE_COLUMNS, "GAIA_SOURCE", field), cat_path)
    log.info("%s: %d sources -> %s", field.name, len(cat), cat_path)
    return GaiaFiles(field, cat_path, truth_path, len(cat))


def existing_gaia(field: Field, outdir: Path, seed: int, scale: float) -> GaiaFiles | None:
    """The files of an earlier identical simulation (same field, seed, scale, version).

    Files whose row count is not :func:`expected_rows` are from another model
    (e.g. before the field's central stars of planetary nebulae were added)
    and are not taken, so only the fields the change touches are simulated again.
    """
    cat_path, truth_path = gaia_paths(field, outdir)
    headers = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyWarning)
        for path in (cat_path, truth_path):
            try:
                headers.append(fits.getheader(path, 1))
            except (OSError, ValueError, IndexError, KeyError, AstropyWarning):
                return None
    for h in headers:
        try:
            same = (h["FIELD"] == field.name and h["SEED"] == seed
                    and h["SIMVERS"] == SIM_VERSION and math.isclose(h["SCALE"], scale)
                    and math.isclose(h["FIELDRA"], field.ra)
                    and math.isclose(h["FIELDDE"], field.dec)
                    and math.isclose(h["FIELDSZ"], field.size_deg))
        except (KeyError, TypeError):
            return None
        if not same:
            return None
    rows = int(headers[0]["NAXIS2"])
    if int(headers[1]["NAXIS2"]) != rows or rows != expected_rows(field, scale):
        return None
    return GaiaFiles(field, cat_path, truth_path, rows, skipped=True)

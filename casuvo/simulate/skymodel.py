# SPDX-License-Identifier: BSD-3-Clause
"""The sky the imaging simulator observes: every source with a magnitude in every survey band.

One table per field (:func:`build_sky`), so that VISTA and VST images of the
same field show the same stars, and so that the truth of every image is a
subset of one table (``sky_id`` is the key).  What is in it, and why:

* **Gaia stars** — every row of the Gaia truth table (``sky_id`` = Gaia
  source_id), with survey magnitudes from (G, BP−RP) through published colour
  transformations (:func:`survey_mags_from_gaia`), so that pipelines
  calibrating against the Gaia reference see the colour terms real data have.
* **Faint stars** — the Gaia counts continued beyond Gaia's completeness to
  r ≈ 23.5 / Ks ≈ 20.5 (``kind='faint_star'``, ``in_gaia=False``): they set
  the confusion background and fill the catalogues below the Gaia limit.
* **Galaxies** — a few hundred per deg² to r = 23, exponential discs.
* **NGC 5189** — in a field that contains it: the planetary nebula as an
  elliptical shell bright in Hα (``pn_nebula``) and its blue central star
  (``pn_central_star``), a Gaia star (the Gaia simulator puts it there).
  Central stars of planetary nebulae take no part in the field-star
  statistics (faint-star counts, the choice of variables), so that adding
  them to the Gaia catalogue leaves every other source of the sky as it was.
* **Variables** (0.5 % of the G < 18 stars) and **one transient** in the
  fields listed in :data:`TRANSIENT_FIELDS`, on for the last observing night
  and off for the first — the thing a difference-imaging test has to find.

Faint stars and galaxies are drawn per cell of a fixed 0.05° grid, each cell
from its own seed, so the sky of a small footprint (``region``) is exactly
the part of the whole field's sky inside it: a miniature survey sees the same
sources as the full-size one.  Positions are ICRS at the Gaia epoch J2016.0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from astropy.table import Column, Table

from casuvo.simulate import fields as _fields
from casuvo.simulate.fields import Field
from casuvo.simulate.nebulae import central_star_rows
from casuvo.surveys.instruments import OMEGACAM, VIRCAM
from casuvo.surveys.photometry import survey_mags_from_gaia

__all__ = ["ALL_BANDS", "CENTRAL_STAR_MAGS", "KINDS", "NGC5189", "PN_PEAK_SB", "POINT_KINDS",
           "REF_EPOCH_MJD", "SKY_VERSION", "TRANSIENT_FIELDS", "build_sky", "central_star_rows",
           "mag_at", "pn_surface_brightness", "propagate", "survey_mags_from_gaia"]

#: Bumped when the sky model changes (files from another version are rebuilt).
SKY_VERSION = 1
#: Every band of both cameras, in the order of the mag_<band> columns.
ALL_BANDS: tuple[str, ...] = (*VIRCAM.filters, *OMEGACAM.filters)
KINDS = ("star", "faint_star", "galaxy", "pn_nebula", "pn_central_star", "variable",
         "transient")
#: Kinds rendered with the PSF alone.
POINT_KINDS = frozenset({"star", "faint_star", "pn_central_star", "variable", "transient"})
#: J2016.0 (Gaia DR3 reference epoch) as an MJD.
REF_EPOCH_MJD = 57388.5
_MAS_PER_DEG = 3.6e6

#: Non-Gaia sources get sky_id = -(code * 10**10 + n), n = 1, 2, ...
_ID_CODE = {"faint_star": 1, "galaxy": 2, "pn_nebula": 3, "pn_central_star": 4, "transient": 5}

# -- NGC 5189 -----------------------------------------------------------------------------

#: NGC 5189 (SIMBAD position of the nebula's central star, rounded): :data:`fields.NGC5189`.
NGC5189 = (_fields.NGC5189.ra, _fields.NGC5189.dec)
#: Shell of the nebula: semi-axes (arcsec) and position angle of the major axis
#: (deg, N through E).  The real nebula is quadrupolar; an elliptical shell
#: 140″×90″ is what the tests need.
PN_SEMI_AXES = (_fields.NGC5189.major_diam_arcsec / 2, _fields.NGC5189.minor_diam_arcsec / 2)
PN_PA_DEG = _fields.NGC5189.pa_deg
#: Peak surface brightness of the shell, Vega mag/arcsec², per band: very bright in Hα
#: (plus [N II] in the 10.7 nm filter), ≥ 3 mag fainter per arcsec² in every broad band
#: (g is helped by [O III] 5007 in this high-excitation nebula).
PN_PEAK_SB: dict[str, float] = {"Halpha": 17.0, "r": 20.0, "g": 20.2, "u": 21.0, "i": 21.5,
                                "Z": 21.6, "Y": 21.6, "J": 21.0, "H": 21.6, "Ks": 21.2}
#: The central star (a hot [WO] star, V ≈ 14.5): blue, u−g ≈ −0.4 (Vega mags).
CENTRAL_STAR_MAGS: dict[str, float] = {"u": 14.1, "g": 14.5, "r": 14.75, "Halpha": 14.75,
                                       "i": 14.95, "Z": 15.05, "Y": 15.15, "J": 15.25,
                                       "H": 15.4, "Ks": 15.45}
_SHELL_RADIUS, _SHELL_WIDTH, _INNER = 0.8, 0.12, 0.35  # in units of the semi-axes


def _shell(rho: np.ndarray, cos2t: np.ndarray) -> np.ndarray:
    """Relative surface brightness: a limb-brightened shell, brighter along the major axis."""
    ring = np.exp(-0.5 * ((rho - _SHELL_RADIUS) / _SHELL_WIDTH) ** 2)
    inner = _INNER * np.exp(-0.5 * (rho / 0.6) ** 2)
    return (ring + inner) * (1.0 + 0.3 * cos2t) * (rho < 1.15)


def _shell_integral() -> float:
    """∫ shell over the unit-semi-axis plane (the cos 2θ term integrates to zero)."""
    rho = np.linspace(0.0, 1.15, 20001)
    ring = np.exp(-0.5 * ((rho - _SHELL_RADIUS) / _SHELL_WIDTH) ** 2)
    f = (ring + _INNER * np.exp(-0.5 * (rho / 0.6) ** 2)) * rho
    return float(2 * np.pi * np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(rho)))


def _shell_peak() -> float:
    """Shell value at the ring radius, azimuthal mean: the reference of PN_PEAK_SB."""
    return float(_shell(np.array([_SHELL_RADIUS]), np.array([0.0]))[0])


def pn_surface_brightness(dx_arcsec: np.ndarray, dy_arcsec: np.ndarray, semi_major: float,
                          axis_ratio: float, pa_deg: float) -> np.ndarray:
    """Fraction of the nebula's total flux per arcsec² at (east, north) offsets from its centre.

    Multiply by the total flux and the pixel area to get counts per pixel.
    """
    pa = math.radians(pa_deg)
    along = dx_arcsec * math.sin(pa) + dy_arcsec * math.cos(pa)
    across = dx_arcsec * math.cos(pa) - dy_arcsec * math.sin(pa)
    a, b = semi_major, semi_major * axis_ratio
    rho2 = (along / a) ** 2 + (across / b) ** 2
    rho = np.sqrt(rho2)
    cos2t = np.where(rho2 > 0, ((along / a) ** 2 - (across / b) ** 2) / np.maximum(rho2, 1e-30),
                     0.0)
    return _shell(rho, cos2t) / (_shell_integral() * a * b)


def _pn_total_mag(band: str) -> float:
    """Total magnitude of the shell whose ring has surface brightness PN_PEAK_SB[band]."""
    a, b = PN_SEMI_AXES
    return PN_PEAK_SB[band] - 2.5 * math.log10(_shell_integral() * a * b / _shell_peak())


# -- faint stars and galaxies -------------------------------------------------------------

#: Cell of the grid on which faint stars and galaxies are drawn (degrees, tangent plane).
CELL_DEG = 0.05
#: Faint stars are kept when brighter than these in r or Ks (Vega).
FAINT_R_LIMIT, FAINT_KS_LIMIT = 23.5, 20.5
_G_FIT = (14.0, 18.5)  # G range where the Gaia truth is complete: fits the count slope
_G_BREAK, _G_FAINT_MAX, _ALPHA_FAINT = 20.0, 25.5, 0.2
#: Galaxies per deg² brighter than r = 23 (Vega), dN/dm ∝ 10^(0.35 m) from r = 17.
GALAXY_DENSITY = 400.0
#: Galaxy colours, Vega magnitude in each band minus r, for a typical z ≈ 0.3 galaxy.
_GALAXY_COLOURS = {"u": 1.45, "g": 0.95, "r": 0.0, "Halpha": -0.05, "i": -0.57, "Z": -1.0,
                   "Y": -1.3, "J": -1.7, "H": -2.4, "Ks": -2.9}


def _star_count_model(field: Field, truth: Table) -> tuple[np.ndarray, np.ndarray]:
    """(G bin centres, missing stars per deg² per bin): Gaia counts continued past Gaia's limit.

    dN/dG = A 10^(α G) fitted on the complete G range of the non-member Gaia stars,
    flattening to α = 0.2 beyond G = 20; the missing stars are the model minus what the
    Gaia truth holds in each 0.1-mag bin.
    """
    g = np.asarray(truth["g_true"], dtype=np.float64)
    if "is_member" in truth.colnames:
        g = g[~np.asarray(truth["is_member"], dtype=bool)]
    edges = np.arange(12.0, _G_FAINT_MAX + 1e-9, 0.1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    have = np.histogram(g, edges)[0].astype(np.float64)
    fit = (centres >= _G_FIT[0]) & (centres <= _G_FIT[1]) & (have > 0)
    alpha = 0.35
    if fit.sum() >= 10:
        alpha = float(np.clip(np.polyfit(centres[fit], np.log10(have[fit]), 1)[0], 0.2, 0.45))
    ref = (centres >= 17.0) & (centres <= _G_FIT[1])
    model = 10 ** (alpha * (centres - _G_FIT[1]))
    model *= have[ref].sum() / model[ref].sum() if have[ref].sum() > 0 else 0.0
    faint = centres > _G_BREAK
    brk = model[np.searchsorted(centres, _G_BREAK) - 1]
    model[faint] = brk * 10 ** (_ALPHA_FAINT * (centres[faint] - _G_BREAK))
    missing = np.where(centres >= 17.0, np.maximum(model - have, 0.0), 0.0)
    return centres, missing / field.size_deg**2


def _cells(field: Field, region: Sequence[tuple[float, float, float]] | None
           ) -> list[tuple[int, int, float, float]]:
    """Grid cells (i, j, xi0, eta0) of the field, those touching ``region`` if given."""
    n = math.ceil(field.size_deg / CELL_DEG - 1e-9)
    half = field.size_deg / 2
    out = []
    circles = None
    if region is not None:
        circles = [(*field.to_tangent(ra, dec), r) for ra, dec, r in region]
    for j in range(n):
        for i in range(n):
            xi0, eta0 = -half + i * CELL_DEG, -half + j * CELL_DEG
            if circles is not None:
                cx, cy = xi0 + CELL_DEG / 2, eta0 + CELL_DEG / 2
                if not any(math.hypot(float(x) - cx, float(y) - cy) <= r + CELL_DEG * 0.75
                           for x, y, r in circles):
                    continue
            out.append((i, j, xi0, eta0))
    return out


def _serials(field: Field, i: int, j: int, n: int) -> np.ndarray:
    """Serial numbers of the n sources of cell (i, j): (cell number) × 10^5 + 1, 2, ...

    They depend on the cell only, so a source keeps its sky_id whatever region is built.
    """
    ncell = math.ceil(field.size_deg / CELL_DEG - 1e-9)
    if n >= 10**5 or ncell * ncell >= 10**5:
        raise ValueError("too many sources per cell or cells per field for the sky_id scheme")
    return (j * ncell + i) * 10**5 + np.arange(1, n + 1, dtype=np.int64)


def _cell_positions(rng: np.random.Generator, field: Field, xi0: float, eta0: float,
                    n: int) -> tuple[np.ndarray, np.ndarray]:
    half = field.size_deg / 2
    xi = np.clip(xi0 + rng.random(n) * CELL_DEG, -half, half)
    eta = np.clip(eta0 + rng.random(n) * CELL_DEG, -half, half)
    return field.from_tangent(xi, eta)


def _faint_pool(truth: Table) -> dict[str, np.ndarray]:
    """Colours and proper motions of the faintest Gaia stars, resampled for the fainter ones."""
    g = np.asarray(truth["g_true"], dtype=np.float64)
    sel = g >= 18.5
    if sel.sum() < 50:
        sel = g >= np.quantile(g, 0.8) if len(g) else sel
    return {"bp_rp": np.nan_to_num(np.asarray(truth["bp_rp_true"], np.float64)[sel], nan=1.5),
            "pmra": np.asarray(truth["pmra_true"], np.float64)[sel],
            "pmdec": np.asarray(truth["pmdec_true"], np.float64)[sel]}


def _faint_stars(field: Field, truth: Table, seed: int, cells: list, bands: Sequence[str]
                 ) -> dict[str, np.ndarray]:
    centres, density = _star_count_model(field, truth)
    cdf = np.concatenate([[0.0], np.cumsum(density)])
    total = cdf[-1] * CELL_DEG**2
    pool = _faint_pool(truth)
    parts = []
    for i, j, xi0, eta0 in cells:
        rng = np.random.default_rng([seed, field.key, 1, i, j])
        n = int(rng.poisson(total))
        if n == 0:
            continue
        gmag = np.interp(rng.random(n) * cdf[-1], cdf, np.append(centres - 0.05,
                                                                 centres[-1] + 0.05))
        ra, dec = _cell_positions(rng, field, xi0, eta0, n)
        if len(pool["bp_rp"]):
            k = rng.integers(0, len(pool["bp_rp"]), n)
            bp_rp = pool["bp_rp"][k] + rng.normal(0.0, 0.1, n) + 0.15 * (gmag - 20.0)
            pmra, pmdec = pool["pmra"][k], pool["pmdec"][k]
        else:
            bp_rp = rng.normal(1.5, 0.3, n)
            pmra, pmdec = rng.normal(0.0, 3.0, (2, n))
        parts.append({"ra": ra, "dec": dec, "g": gmag, "bp_rp": bp_rp, "pmra": pmra,
                      "pmdec": pmdec, "serial": _serials(field, i, j, n)})
    if not parts:
        return {k: np.zeros(0) for k in ("ra", "dec", "pmra", "pmdec", "serial", *bands)}
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    mags = survey_mags_from_gaia(cat["g"], cat["bp_rp"], ALL_BANDS)
    keep = (mags["r"] < FAINT_R_LIMIT) | (mags["Ks"] < FAINT_KS_LIMIT)
    out = {k: cat[k][keep] for k in ("ra", "dec", "pmra", "pmdec", "serial")}
    out.update({b: mags[b][keep] for b in bands})
    return out


def _galaxies(field: Field, seed: int, cells: list, bands: Sequence[str],
              density_factor: float = 1.0) -> dict[str, np.ndarray]:
    per_cell = GALAXY_DENSITY * density_factor * CELL_DEG**2
    parts = []
    for i, j, xi0, eta0 in cells:
        rng = np.random.default_rng([seed, field.key, 2, i, j])
        n = int(rng.poisson(per_cell))
        if n == 0:
            continue
        # Inverse CDF of dN/dr ∝ 10^(0.35 r) on [17, 23].
        lo, hi = 10 ** (0.35 * 17.0), 10 ** (0.35 * 23.0)
        r = np.log10(lo + rng.random(n) * (hi - lo)) / 0.35
        ra, dec = _cell_positions(rng, field, xi0, eta0, n)
        colour = rng.normal(0.0, 0.25, n)
        r_eff = np.exp(rng.uniform(np.log(0.5), np.log(3.0), n)) * 10 ** (-0.05 * (r - 21))
        part = {"ra": ra, "dec": dec, "r_eff": np.clip(r_eff, 0.5, 3.0),
                "q": rng.uniform(0.3, 1.0, n), "pa": rng.uniform(0.0, 180.0, n),
                "serial": _serials(field, i, j, n)}
        part.update({b: r + _GALAXY_COLOURS[b] * (1.0 + colour) for b in bands})
        parts.append(part)
    keys = ["ra", "dec", "r_eff", "q", "pa", "serial", *bands]
    if not parts:
        return {k: np.zeros(0) for k in keys}
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


# -- the table ----------------------------------------------------------------------------

#: Fields that get exactly one transient.
TRANSIENT_FIELDS = ("vvv_disc", "vphas_pn")
#: The transient lies this far from the field centre (deg): inside every demo footprint,
#: miniatures included, and clear of NGC 5189.
TRANSIENT_RADIUS = (0.025, 0.045)
VARIABLE_FRACTION = 0.005


def _empty_columns(n: int, bands: Sequence[str]) -> dict[str, np.ndarray]:
    nan = np.full(n, np.nan)
    cols: dict[str, np.ndarray] = {
        "sky_id": np.zeros(n, np.int64), "kind": np.full(n, "star", dtype="U15"),
        "ra": np.zeros(n), "dec": np.zeros(n), "pmra": np.zeros(n), "pmdec": np.zeros(n)}
    cols.update({f"mag_{b}": nan.copy() for b in bands})
    cols.update({"r_eff_arcsec": np.zeros(n), "axis_ratio": np.ones(n), "pa_deg": np.zeros(n),
                 "var_amp": np.zeros(n), "var_period_d": nan.copy(), "var_phase": nan.copy(),
                 "t_on_mjd": nan.copy(), "t_off_mjd": nan.copy(),
                 "in_gaia": np.zeros(n, dtype=bool)})
    return cols


def _block(kind: str, data: dict[str, np.ndarray], bands: Sequence[str]
           ) -> dict[str, np.ndarray]:
    """Columns for ``data``; non-Gaia sky_id = -(code 10^10 + data['serial'] or 1, 2, ...)."""
    n = len(data["ra"])
    cols = _empty_columns(n, bands)
    cols["kind"][:] = kind
    if kind in _ID_CODE:
        serial = np.asarray(data.get("serial", np.arange(1, n + 1)), dtype=np.int64)
        cols["sky_id"] = -(_ID_CODE[kind] * 10**10 + serial)
    for k in ("ra", "dec", "pmra", "pmdec"):
        if k in data:
            cols[k] = np.asarray(data[k], dtype=np.float64)
    for b in bands:
        cols[f"mag_{b}"] = np.asarray(data[b], dtype=np.float64)
    return cols


def _gaia_block(truth: Table, seed: int, field: Field, bands: Sequence[str]
                ) -> dict[str, np.ndarray]:
    g = np.asarray(truth["g_true"], dtype=np.float64)
    bp_rp = np.nan_to_num(np.asarray(truth["bp_rp_true"], dtype=np.float64), nan=1.0)
    data = {"ra": truth["ra_true"], "dec": truth["dec_true"], "pmra": truth["pmra_true"],
            "pmdec": truth["pmdec_true"], **survey_mags_from_gaia(g, bp_rp, bands)}
    cols = _block("star", data, bands)
    cols["sky_id"] = np.asarray(truth["source_id"], dtype=np.int64)
    cols["in_gaia"][:] = True
    cols["pmra"] = np.nan_to_num(cols["pmra"])
    cols["pmdec"] = np.nan_to_num(cols["pmdec"])
    # Variables: a fixed fraction of the G < 18 stars (central stars of nebulae aside).
    rng = np.random.default_rng([seed, field.key, 3])
    bright = np.flatnonzero((g < 18.0) & ~central_star_rows(field, truth))
    nvar = round(VARIABLE_FRACTION * len(bright))
    if nvar:
        pick = np.sort(rng.choice(bright, nvar, replace=False))
        cols["kind"][pick] = "variable"
        cols["var_amp"][pick] = rng.uniform(0.2, 1.0, nvar)
        cols["var_period_d"][pick] = np.exp(rng.uniform(np.log(0.2), np.log(30.0), nvar))
        cols["var_phase"][pick] = rng.random(nvar)
    return cols


def _planetary_nebula(gaia: dict[str, np.ndarray], bands: Sequence[str]
                      ) -> list[dict[str, np.ndarray]]:
    """The central star (relabelled Gaia star or an added one) and the shell around it."""
    ra0, dec0 = NGC5189
    cosd = math.cos(math.radians(dec0))
    sep = np.hypot((gaia["ra"] - ra0) * cosd, gaia["dec"] - dec0) * 3600.0
    star_mags = {b: np.array([CENTRAL_STAR_MAGS[b]]) for b in bands}
    blocks = []
    if len(sep) and sep.min() <= 1.0:
        k = int(np.argmin(sep))
        gaia["kind"][k] = "pn_central_star"
        for b in bands:
            gaia[f"mag_{b}"][k] = CENTRAL_STAR_MAGS[b]
        gaia["var_amp"][k] = 0.0
        gaia["var_period_d"][k] = gaia["var_phase"][k] = np.nan
        ra, dec, pmra, pmdec = (float(gaia[c][k]) for c in ("ra", "dec", "pmra", "pmdec"))
    else:
        # Not in the Gaia truth (a Gaia file of an older simulator): add it where the
        # Gaia simulator puts it; in_gaia=True with a negative sky_id marks it.
        ra, dec = ra0, dec0
        pmra, pmdec = _fields.NGC5189.pmra, _fields.NGC5189.pmdec
        star = _block("pn_central_star", {"ra": [ra], "dec": [dec], "pmra": [pmra],
                                          "pmdec": [pmdec], **star_mags}, bands)
        star["in_gaia"][:] = True
        blocks.append(star)
    neb = _block("pn_nebula", {"ra": [ra], "dec": [dec], "pmra": [pmra], "pmdec": [pmdec],
                               **{b: [_pn_total_mag(b)] for b in bands}}, bands)
    neb["r_eff_arcsec"][:] = PN_SEMI_AXES[0]
    neb["axis_ratio"][:] = PN_SEMI_AXES[1] / PN_SEMI_AXES[0]
    neb["pa_deg"][:] = PN_PA_DEG
    blocks.append(neb)
    return blocks


def _transient(field: Field, seed: int, bands: Sequence[str],
               epoch_range: tuple[float, float]) -> dict[str, np.ndarray]:
    start, end = epoch_range
    if end - start < 2.0:
        raise ValueError(f"epoch_range {epoch_range} must span two nights at least two "
                         f"days apart to place a transient off on the first and on on the last")
    rng = np.random.default_rng([seed, field.key, 5])
    r = rng.uniform(*TRANSIENT_RADIUS)
    theta = rng.uniform(0.0, 2 * np.pi)
    ra, dec = field.from_tangent(r * np.cos(theta), r * np.sin(theta))
    base = rng.uniform(16.0, 17.0)
    mags = {b: [base + rng.normal(0.0, 0.1)] for b in bands}
    cols = _block("transient", {"ra": [float(ra)], "dec": [float(dec)], "pmra": [0.0],
                                "pmdec": [0.0], **mags}, bands)
    cols["t_on_mjd"][:] = rng.uniform(start + 1.0, end - 1.0)
    cols["t_off_mjd"][:] = end + rng.uniform(5.0, 30.0)
    return cols


def build_sky(field: Field, gaia_truth: Table, seed: int, bands: Sequence[str],
              epoch_range: tuple[float, float], *,
              region: Sequence[tuple[float, float, float]] | None = None,
              density_factor: float = 1.0) -> Table:
    """The sky of ``field``: Gaia stars, faint stars, galaxies, NGC 5189, variables, transient.

    ``epoch_range`` is (start of the first night's observations, end of the last
    night's) in MJD: the transient (fields in :data:`TRANSIENT_FIELDS`) turns on
    at least a day after the start and stays on until well after the end, so it
    is absent on the first night and present on the last.  ``region``, a list
    of circles (ra, dec, radius in degrees), limits faint stars and galaxies to
    the grid cells that touch them (the rest of the sky is always complete).
    ``density_factor`` (``CASUVO_SCALE``) multiplies the galaxy counts; the Gaia
    and faint stars follow ``gaia_truth``, which was simulated with it.  The same
    arguments give the same table.
    """
    bands = tuple(bands)
    unknown = [b for b in bands if b not in ALL_BANDS]
    if unknown:
        raise ValueError(f"unknown bands {unknown}; known: {', '.join(ALL_BANDS)}")
    cells = _cells(field, region)
    gaia = _gaia_block(gaia_truth, seed, field, bands)
    blocks = [gaia]
    if bool(field.contains(*NGC5189)):
        blocks += _planetary_nebula(gaia, bands)
    field_stars = gaia_truth[~central_star_rows(field, gaia_truth)]
    blocks.append(_block("faint_star", _faint_stars(field, field_stars, seed, cells, bands),
                         bands))
    gal = _galaxies(field, seed, cells, bands, density_factor)
    galaxies = _block("galaxy", gal, bands)
    galaxies["r_eff_arcsec"], galaxies["axis_ratio"], galaxies["pa_deg"] = (
        gal["r_eff"], gal["q"], gal["pa"])
    blocks.append(galaxies)
    if field.name in TRANSIENT_FIELDS:
        blocks.append(_transient(field, seed, bands, epoch_range))
    cols = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    where = ("FULL" if region is None else
             ";".join(f"{ra:.5f},{dec:.5f},{r:.4f}" for ra, dec, r in region))
    meta = {"FIELD": field.name, "SEED": seed, "SKYVERS": SKY_VERSION, "REFEPOCH": 2016.0,
            "TSTART": float(epoch_range[0]), "TEND": float(epoch_range[1]), "REGION": where}
    if density_factor != 1.0:  # the demo's sky files stay as they were
        meta["DENSITY"] = float(density_factor)
    return _to_table(cols, bands, meta)


_UNITS = {"ra": "deg", "dec": "deg", "pmra": "mas / yr", "pmdec": "mas / yr",
          "r_eff_arcsec": "arcsec", "pa_deg": "deg", "var_amp": "mag", "var_period_d": "d",
          "t_on_mjd": "d", "t_off_mjd": "d"}
_FLOAT32 = ("pmra", "pmdec", "r_eff_arcsec", "axis_ratio", "pa_deg", "var_amp",
            "var_period_d", "var_phase")


def _to_table(cols: dict[str, np.ndarray], bands: Sequence[str], meta: dict) -> Table:
    out = []
    for name, arr in cols.items():
        if name in _FLOAT32 or name.startswith("mag_"):
            arr = arr.astype(np.float32)
        unit = "mag" if name.startswith("mag_") else _UNITS.get(name)
        out.append(Column(arr, name=name, unit=unit))
    return Table(out, meta=meta)


# -- epochs -------------------------------------------------------------------------------


def propagate(sky: Table, mjd: float) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees at ``mjd``: proper motion applied linearly from J2016.0.

    Linear in the tangent plane, which is exact to far below a milliarcsecond for
    the proper motions and the years involved here (parallax is ignored).
    """
    years = (mjd - REF_EPOCH_MJD) / 365.25
    dec0 = np.asarray(sky["dec"], dtype=np.float64)
    dec = dec0 + np.asarray(sky["pmdec"], dtype=np.float64) * years / _MAS_PER_DEG
    dra = (np.asarray(sky["pmra"], dtype=np.float64) * years / _MAS_PER_DEG
           / np.cos(np.radians(dec0)))
    return (np.asarray(sky["ra"], dtype=np.float64) + dra) % 360.0, dec


def mag_at(sky: Table, band: str, mjd: float) -> np.ndarray:
    """Magnitudes in ``band`` at ``mjd``: variables follow their sinusoid, transients are NaN
    when off; for the nebula, the total magnitude of the shell.

    ``var_amp`` is the peak-to-peak amplitude about the tabulated (mean) magnitude.
    """
    mag = np.asarray(sky[f"mag_{band}"], dtype=np.float64).copy()
    amp = np.asarray(sky["var_amp"], dtype=np.float64)
    var = amp > 0
    if var.any():
        period = np.asarray(sky["var_period_d"], dtype=np.float64)[var]
        phase = np.asarray(sky["var_phase"], dtype=np.float64)[var]
        mag[var] += 0.5 * amp[var] * np.sin(2 * np.pi * (mjd / period + phase))
    t_on = np.asarray(sky["t_on_mjd"], dtype=np.float64)
    t_off = np.asarray(sky["t_off_mjd"], dtype=np.float64)
    timed = np.isfinite(t_on)
    off = timed & ~((mjd >= np.where(timed, t_on, 0)) & (mjd < np.where(timed, t_off, 0)))
    mag[off] = np.nan
    return mag

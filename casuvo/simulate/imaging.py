# SPDX-License-Identifier: BSD-3-Clause
"""One raw VIRCAM or OmegaCAM exposure of the simulated sky, and its truth.

The image is built the way the camera builds it, so that a pipeline has to do
the real work to undo it:

* **Geometry.**  Each detector has a *nominal* TAN WCS in its header (CD from
  the pixel scale, CRPIX at the detector centre, CRVAL the detector centre
  projected from the commanded pointing).  The *true* mapping differs by the
  telescope's pointing error and a radial cubic distortion about the optical
  axis (:data:`DISTORTION_EDGE_ARCSEC` at the field edge).  The true mapping is
  an exact TAN-SIP WCS with its tangent point at the true optical axis
  (:func:`true_wcs`), so the truth is a FITS WCS a pipeline can evaluate.
* **Light.**  Point sources are elliptical Moffat (β = 3) stamps with
  sub-pixel centring, each normalised to its total flux and large enough for
  its wings to fall below a tenth of the sky noise; galaxies are exponential
  discs convolved with the PSF; the planetary nebula is its analytic shell
  smoothed by a Gaussian of the seeing.  Counts in ADU are
  ``EXPTIME × 10^(−0.4 (m − ZPTRUE))`` with ``ZPTRUE = Filter.zeropoint −
  extinction (X − 1) + zp_offset`` (the CASU MAGZPT convention, X the mean
  airmass); the sky is ``Filter.sky_mag`` × airmass × ``sky_scale``.
* **Detector.**  Flat-field response (±3 % large scale and 1 % pixel to pixel,
  :func:`flat_field`), dark current with hot pixels and columns
  (:func:`dark_current_map`), dead pixels and a dead column segment, Poisson
  noise on everything, read noise per read, gain, bias (:func:`bias_level`)
  and saturation.  All detector defects are fixed per camera and chip, the same
  in every exposure and calibration frame.

Data conventions: VIRCAM raw data are float32 holding integer ADU, the *sum*
of the NDIT reads (so fluxes scale with EXPTIME = DIT × NDIT, as in the CASU
MAGZPT convention), with SATURATE = NDIT × the per-read saturation; OmegaCAM
raw data are unsigned 16-bit integers (BITPIX = 16, BZERO = 32768), as the
camera writes them, with a 500 ADU bias.  There are no overscan regions.

Raw header keywords (primary HDU, NAXIS = 0): ORIGIN, TELESCOP, INSTRUME,
OBJECT, RA, DEC, EQUINOX, RADESYS, DATE-OBS, DATE, MJD-OBS, EXPTIME, ARCFILE
and the ESO hierarchical keywords ``DPR CATG/TYPE/TECH``, ``OBS ID/NAME/PROG
ID``, ``TPL ID/NEXP/EXPNO``, ``DET DIT/NDIT``, ``INS FILT1 NAME``, ``TEL AIRM
START/END`` and ``TEL AMBI FWHM START`` (DIMM seeing), plus two casuvo
keywords: ``CASUTILE`` (pawprint number 1–6 inside a VISTA tile, 1 otherwise)
and ``CASUJITR`` (jitter / dither number inside the pawprint, from 1).  Image
extensions: EXTNAME ``DETn.CHIP1``, INHERIT, BUNIT, the nominal WCS (CTYPE,
CRVAL, CRPIX, CD, CUNIT), GAIN, READNOIS, SATURATE and ``ESO DET CHIP NO/ID/
LIVE``.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from astropy.wcs import WCS
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve

from casuvo.simulate.skymodel import POINT_KINDS, mag_at, pn_surface_brightness, propagate
from casuvo.surveys.instruments import Instrument

__all__ = ["DISTORTION_EDGE_ARCSEC", "IMAGING_VERSION", "MAX_STAMP_HALF", "MOFFAT_BETA",
           "POISSON_GAUSS_E", "DetectorTruth", "ExposureTruth", "Pointing", "bad_pixel_mask",
           "bias_level", "dark_current_map", "detector_header", "distortion_coefficient",
           "exposure_truth", "extname", "field_edge_arcsec", "flat_field", "iter_exposure",
           "nominal_wcs", "nominal_wcs_cards", "primary_header", "raw_dtype", "read_out",
           "read_truth", "saturation_level", "simulate_exposure", "sky_level_adu", "to_raw",
           "true_wcs", "truth_wcs", "zeropoint_true"]

#: Bumped when the image model changes (truth files carry it as SIMVERS).
IMAGING_VERSION = 1
MOFFAT_BETA = 3.0
#: Displacement of the radial cubic distortion at the corner of the mosaic farthest from the
#: optical axis (arcsec): δ = k r³ with k = DISTORTION_EDGE_ARCSEC / r_edge³.
DISTORTION_EDGE_ARCSEC = 0.8
#: Smallest stamp half-width in FWHM; stamps grow until the PSF wing is below
#: WING_NOISE × the sky noise, up to MAX_STAMP_HALF pixels.
STAMP_FWHM, WING_NOISE, MAX_STAMP_HALF = 4.0, 0.1, 256
#: Expected electrons above which Poisson noise is drawn from its normal approximation.
POISSON_GAUSS_E = 1000.0
_RENDER_CHUNK = 1_000_000  # stamp pixels evaluated at once (memory ~ 60 bytes each)
_DEFECT_SEED = 0x0DEFEC7
_FLAT_SEED = 0x0F1A7
_TPL_SCIENCE = {"VIRCAM": "VIRCAM_img_obs_tile6", "OMEGACAM": "OMEGACAM_img_obs_dither"}
_TECH_SCIENCE = {"VIRCAM": "IMAGE,JITTER", "OMEGACAM": "IMAGE,DITHER"}
#: Detector identifiers (plausible spellings: VIRCAM's Raytheon VIRGO arrays, OmegaCAM's
#: e2v 44-82 CCDs).
_CHIP_ID = {"VIRCAM": "ESO-VIRGO-{n:02d}", "OMEGACAM": "ESO-CCD-44-82-{n:02d}"}


@dataclass(frozen=True)
class Pointing:
    """One exposure as the telescope was asked to take it, plus what actually happened."""

    field: str
    """Sky-model field name."""
    ra: float
    """Commanded pointing centre (optical axis), ICRS degrees; RA/DEC of the header."""
    dec: float
    band: str | None
    """Short band name (``Ks``, ``r``); None for darks and biases."""
    mjd_obs: float
    """Start of the exposure (UTC MJD)."""
    dit: float
    """Detector integration time per read (s)."""
    ndit: int = 1
    airmass: float = 1.0
    """Airmass at the start (ESO TEL AIRM START)."""
    airmass_end: float | None = None
    """Airmass at the end (ESO TEL AIRM END); the start value if None."""
    seeing_arcsec: float = 0.8
    """Delivered PSF FWHM (arcsec) — the truth; the header carries the DIMM value."""
    ellipticity: float = 0.05
    """PSF ellipticity 1 − b/a."""
    psf_pa_deg: float = 0.0
    """PSF major-axis position angle, N through E (deg)."""
    sky_scale: float = 1.0
    """Sky brightness relative to Filter.sky_mag at that airmass (moon, NIR variability)."""
    pointing_error_arcsec: tuple[float, float] = (0.0, 0.0)
    """(east, north) offset of the true optical axis from the commanded one (arcsec); it
    shifts the true WCS only, the header WCS stays nominal."""
    zp_offset: float = 0.0
    """The night's zero-point offset (mag, truth; transparency)."""
    dimm_seeing: float | None = None
    """DIMM seeing for ESO TEL AMBI FWHM START; seeing_arcsec if None."""
    obs_id: int = 0
    ob_name: str = ""
    tpl_expno: int = 1
    tpl_nexp: int = 1
    tile_index: int = 1
    """CASUTILE: pawprint number inside the tile (1–6; 1 without a tile)."""
    jitter_index: int = 1
    """CASUJITR: jitter / dither number inside the pawprint (from 1)."""
    prog_id: str = "60.A-9999(A)"
    object: str = ""
    """OBJECT; the field name if empty."""

    @property
    def exptime(self) -> float:
        """EXPTIME = DIT × NDIT."""
        return self.dit * self.ndit

    @property
    def mean_airmass(self) -> float:
        end = self.airmass if self.airmass_end is None else self.airmass_end
        return 0.5 * (self.airmass + end)

    @property
    def mjd_mid(self) -> float:
        return self.mjd_obs + 0.5 * self.exptime / 86400.0

    @property
    def date_obs(self) -> str:
        """DATE-OBS, ISO to the millisecond (also the ESO archive file name's time stamp)."""
        return _isot(self.mjd_obs)


def _isot(mjd: float) -> str:
    t = Time(mjd, format="mjd", scale="utc")
    t.precision = 3
    return str(t.isot)


# -- geometry -----------------------------------------------------------------------------


def extname(chip: int) -> str:
    """EXTNAME of detector ``chip`` (1-based)."""
    return f"DET{chip}.CHIP1"


def _tangent_wcs(ra: float, dec: float) -> WCS:
    """Gnomonic projection about (ra, dec) in arcsec, x towards east, y north; pixel 0 = centre."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [1.0, 1.0]
    w.wcs.cdelt = [1 / 3600.0, 1 / 3600.0]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.radesys = "ICRS"
    w.wcs.set()
    return w


def _offset(ra: float, dec: float, east: float, north: float) -> tuple[float, float]:
    """The sky position at (east, north) arcsec in the tangent plane about (ra, dec)."""
    r, d = _tangent_wcs(ra, dec).wcs_pix2world([[east, north]], 0)[0]
    return float(r), float(d)


def field_edge_arcsec(inst: Instrument) -> float:
    """Distance from the optical axis to the farthest detector corner (arcsec)."""
    hx, hy = inst.nx * inst.pixel_scale / 2, inst.ny * inst.pixel_scale / 2
    return max(math.hypot(abs(x) + hx, abs(y) + hy) for x, y in inst.layout)


def distortion_coefficient(inst: Instrument) -> float:
    """k (arcsec⁻²) of the true radial distortion δ = k r³ about the optical axis."""
    return DISTORTION_EDGE_ARCSEC / field_edge_arcsec(inst) ** 3


def _wcs_from_cards(cards: dict[str, object], inst: Instrument) -> WCS:
    w = WCS(fits.Header(cards))
    w.pixel_shape = (inst.nx, inst.ny)
    return w


def nominal_wcs_cards(inst: Instrument, pointing: Pointing, chip: int) -> dict[str, object]:
    x_k, y_k = inst.layout[chip - 1]
    ra, dec = _offset(pointing.ra, pointing.dec, x_k, y_k)
    s = inst.pixel_scale / 3600.0
    return {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": ra, "CRVAL2": dec,
            "CRPIX1": (inst.nx + 1) / 2, "CRPIX2": (inst.ny + 1) / 2, "CD1_1": -s,
            "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": s, "CUNIT1": "deg", "CUNIT2": "deg",
            "RADESYS": "ICRS"}


def _true_axis(pointing: Pointing) -> tuple[float, float]:
    return _offset(pointing.ra, pointing.dec, *pointing.pointing_error_arcsec)


def _true_cards(inst: Instrument, pointing: Pointing, chip: int) -> dict[str, object]:
    """TAN-SIP about the true optical axis; the SIP terms are the radial cubic distortion."""
    x_k, y_k = inst.layout[chip - 1]
    ra, dec = _true_axis(pointing)
    s = inst.pixel_scale
    k_pix = distortion_coefficient(inst) * s**2  # δ[pix] = k_pix r[pix]³
    cards: dict[str, object] = {
        "CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRVAL1": ra, "CRVAL2": dec,
        "CRPIX1": (inst.nx + 1) / 2 + x_k / s, "CRPIX2": (inst.ny + 1) / 2 - y_k / s,
        "CD1_1": -s / 3600.0, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": s / 3600.0,
        "CUNIT1": "deg", "CUNIT2": "deg", "RADESYS": "ICRS", "A_ORDER": 3, "B_ORDER": 3,
        "A_3_0": k_pix, "A_1_2": k_pix, "B_2_1": k_pix, "B_0_3": k_pix}
    return cards


def nominal_wcs(inst: Instrument, pointing: Pointing, chip: int) -> WCS:
    """The header WCS of detector ``chip`` (1-based): TAN about the detector's nominal centre."""
    return _wcs_from_cards(nominal_wcs_cards(inst, pointing, chip), inst)


def true_wcs(inst: Instrument, pointing: Pointing, chip: int) -> WCS:
    """The true pixel→sky mapping of detector ``chip``: pointing error and distortion."""
    return _wcs_from_cards(_true_cards(inst, pointing, chip), inst)


_WCS_KEY = re.compile(r"^(CTYPE[12]|CRVAL[12]|CRPIX[12]|CD[12]_[12]|CUNIT[12]|RADESYS|"
                      r"[AB]_ORDER|[AB]_\d_\d)$")


def truth_wcs(header: fits.Header) -> WCS:
    """The true WCS stored in a truth table header (table keywords are left out)."""
    cards = {k: header[k] for k in header if _WCS_KEY.match(k)}
    w = WCS(fits.Header(cards))
    if "DETNX" in header:
        w.pixel_shape = (header["DETNX"], header["DETNY"])
    return w


# -- photometric model --------------------------------------------------------------------


def zeropoint_true(inst: Instrument, pointing: Pointing) -> float:
    """Magnitude giving 1 ADU/s in this exposure (MAGZPT − EXTINCT (X − 1) + night offset)."""
    f = inst.filter(pointing.band or "")
    return f.zeropoint - f.extinction * (pointing.mean_airmass - 1.0) + pointing.zp_offset


def sky_level_adu(inst: Instrument, pointing: Pointing) -> float:
    """Mean sky per pixel in the exposure (ADU, before the flat-field response)."""
    f = inst.filter(pointing.band or "")
    rate = 10 ** (-0.4 * (f.sky_mag - f.zeropoint)) * inst.pixel_scale**2
    return rate * pointing.mean_airmass * pointing.sky_scale * pointing.exptime


def saturation_level(inst: Instrument, ndit: int) -> float:
    """SATURATE of a raw frame: the sum of NDIT reads for VIRCAM, one read for OmegaCAM."""
    return inst.saturation * (ndit if inst.name == "VIRCAM" else 1)


def raw_dtype(inst: Instrument) -> type:
    """Pixel type of the camera's raw files (float32 VIRCAM, uint16 OmegaCAM)."""
    return np.uint16 if inst.name == "OMEGACAM" else np.float32


# -- detector truth -----------------------------------------------------------------------


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


def bad_pixel_mask(inst: Instrument, chip: int) -> np.ndarray:
    """True where detector ``chip`` has a dead or hot pixel or a bad column segment."""
    d = _defects(inst, chip)
    mask = np.zeros((inst.ny, inst.nx), dtype=bool)
    mask.ravel()[d.dead] = True
    mask.ravel()[d.hot] = True
    mask[d.dead_col[1]:, d.dead_col[0]] = True
    mask[d.hot_col[1]:, d.hot_col[0]] = True
    return mask


def bias_level(inst: Instrument, chip: int) -> float:
    """Bias of detector ``chip`` (ADU): the camera's level plus a fixed per-chip offset
    (none for VIRCAM, whose reads are reset-corrected)."""
    if inst.bias == 0:
        return 0.0
    return inst.bias + float(np.round(_chip_rng(0xB1A5, inst, chip).uniform(-30.0, 30.0), 1))


# -- headers ------------------------------------------------------------------------------


def primary_header(inst: Instrument, pointing: Pointing, *, catg: str = "SCIENCE",
                   dpr_type: str = "OBJECT", tech: str | None = None,
                   tpl_id: str | None = None) -> fits.Header:
    """The raw primary header (NAXIS = 0) with the ESO keywords the pipelines use."""
    filt = inst.filter(pointing.band).eso_name if pointing.band else "NONE"
    airm_end = pointing.airmass if pointing.airmass_end is None else pointing.airmass_end
    dimm = pointing.seeing_arcsec if pointing.dimm_seeing is None else pointing.dimm_seeing
    arcfile = f"{inst.prefix}.{pointing.date_obs}.fits"
    h = fits.Header()
    cards: list[tuple[str, object, str]] = [
        ("ORIGIN", "ESO-PARANAL", "European Southern Observatory"),
        ("DATE", _isot(pointing.mjd_obs + pointing.exptime / 86400.0), "file written"),
        ("TELESCOP", inst.telescope, "ESO telescope name"),
        ("INSTRUME", inst.name, "instrument used"),
        ("OBJECT", pointing.object or pointing.field or dpr_type, "target"),
        ("RA", round(pointing.ra, 6), "[deg] telescope pointing (J2000)"),
        ("DEC", round(pointing.dec, 6), "[deg] telescope pointing (J2000)"),
        ("EQUINOX", 2000.0, "standard FK5 (years)"),
        ("RADESYS", "ICRS", "coordinate reference frame"),
        ("EXPTIME", float(pointing.exptime), "[s] DIT x NDIT"),
        ("MJD-OBS", round(pointing.mjd_obs, 8), "start of observation (UTC)"),
        ("DATE-OBS", pointing.date_obs, "start of observation (UTC)"),
        ("ARCFILE", arcfile, "archive file name"),
        ("ESO DPR CATG", catg, ""), ("ESO DPR TYPE", dpr_type, ""),
        ("ESO DPR TECH", tech or _TECH_SCIENCE[inst.name], ""),
        ("ESO OBS ID", int(pointing.obs_id), ""), ("ESO OBS NAME", pointing.ob_name, ""),
        ("ESO OBS PROG ID", pointing.prog_id, ""),
        ("ESO TPL ID", tpl_id or _TPL_SCIENCE[inst.name], ""),
        ("ESO TPL NEXP", int(pointing.tpl_nexp), ""),
        ("ESO TPL EXPNO", int(pointing.tpl_expno), ""),
        ("ESO DET DIT", float(pointing.dit), "[s]"), ("ESO DET NDIT", int(pointing.ndit), ""),
        ("ESO INS FILT1 NAME", filt, ""),
        ("ESO TEL AIRM START", round(pointing.airmass, 4), ""),
        ("ESO TEL AIRM END", round(airm_end, 4), ""),
        ("ESO TEL AMBI FWHM START", round(dimm, 3), "[arcsec] DIMM"),
        ("CASUTILE", int(pointing.tile_index), "casuvo: pawprint number in the tile"),
        ("CASUJITR", int(pointing.jitter_index), "casuvo: jitter number in the pawprint"),
    ]
    for key, value, comment in cards:
        key = f"HIERARCH {key}" if " " in key else key
        h[key] = (value, comment) if comment else value
    return h


def detector_header(inst: Instrument, chip: int, wcs_cards: dict[str, object],
                    ndit: int) -> fits.Header:
    """An image extension header: EXTNAME, nominal WCS, detector electronics."""
    h = fits.Header()
    h["EXTNAME"] = extname(chip)
    h["INHERIT"] = True
    h["BUNIT"] = "ADU"
    for k, v in wcs_cards.items():
        h[k] = v
    h["GAIN"] = (inst.gain, "[e-/ADU]")
    h["READNOIS"] = (inst.read_noise, "[e-] per read")
    h["SATURATE"] = (saturation_level(inst, ndit), "[ADU]")
    h["HIERARCH ESO DET CHIP NO"] = chip
    h["HIERARCH ESO DET CHIP ID"] = _CHIP_ID[inst.name].format(n=chip)
    h["HIERARCH ESO DET CHIP LIVE"] = True
    return h


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


# -- rendering ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _PSF:
    """Elliptical Moffat in pixel units."""

    fwhm: float
    a: float
    b: float
    cos: float
    sin: float
    beta: float = MOFFAT_BETA

    @classmethod
    def make(cls, fwhm_arcsec: float, ellipticity: float, pa_deg: float,
             pixel_scale: float) -> _PSF:
        fwhm = fwhm_arcsec / pixel_scale
        alpha = fwhm / (2 * math.sqrt(2 ** (1 / MOFFAT_BETA) - 1))
        q = math.sqrt(max(1.0 - ellipticity, 0.05))
        pa = math.radians(pa_deg)
        # Major axis towards (east, north) = (sin pa, cos pa), i.e. pixel (−sin pa, cos pa).
        return cls(fwhm, alpha / q, alpha * q, -math.sin(pa), math.cos(pa))

    def profile(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Unnormalised Moffat at pixel offsets (broadcast; float32 stays float32)."""
        u = dx * self.cos + dy * self.sin
        v = dy * self.cos - dx * self.sin
        u *= u
        u *= 1.0 / self.a**2
        v *= v
        v *= 1.0 / self.b**2
        u += v
        u += 1.0
        np.reciprocal(u, out=u)
        if self.beta == 3.0:
            v = u * u
            v *= u
            return v
        return u**self.beta

    def peak_fraction(self) -> float:
        return (self.beta - 1) / (math.pi * self.a * self.b)

    def half_width(self, flux: np.ndarray, threshold: float) -> np.ndarray:
        """Stamp half-width (pixels) where the wing falls below ``threshold`` ADU."""
        base = math.ceil(STAMP_FWHM * self.fwhm)
        ratio = np.maximum(flux * self.peak_fraction() / max(threshold, 1e-3), 1.0)
        r = self.a * np.sqrt(np.maximum(ratio ** (1 / self.beta) - 1.0, 0.0))
        h = np.clip(np.ceil(r), base, MAX_STAMP_HALF)
        # Quantise to base × 2^(k/2) so that stars share a few stamp sizes.
        k = np.ceil(2 * np.log2(h / base))
        return np.minimum(np.ceil(base * 2 ** (k / 2)), MAX_STAMP_HALF).astype(np.int64)

    def kernel(self) -> np.ndarray:
        h = math.ceil(STAMP_FWHM * self.fwhm)
        off = np.arange(-h, h + 1, dtype=np.float64)
        k = self.profile(off[None, :], off[:, None])
        return k / k.sum()


class _Accumulator:
    """Adds weighted pixel indices to an image in few full-image passes (np.bincount)."""

    def __init__(self, image: np.ndarray) -> None:
        self.flat = image.ravel()
        self.idx: list[np.ndarray] = []
        self.w: list[np.ndarray] = []
        self.pending = 0

    def add(self, idx: np.ndarray, w: np.ndarray) -> None:
        self.idx.append(idx)
        self.w.append(w)
        self.pending += len(idx)
        if self.pending >= max(self.flat.size, 2 * _RENDER_CHUNK):
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.flat += np.bincount(np.concatenate(self.idx), weights=np.concatenate(self.w),
                                     minlength=self.flat.size)
        self.idx, self.w, self.pending = [], [], 0


def _render_points(acc: _Accumulator, shape: tuple[int, int], x: np.ndarray, y: np.ndarray,
                   flux: np.ndarray, psf: _PSF, half: int) -> np.ndarray:
    """Add PSF stamps of half-width ``half``; return each stamp's peak (ADU).

    The profile is evaluated in float32 (relative error ~1e-7) and each stamp is
    normalised to its total flux in float64.
    """
    ny, nx = shape
    size = 2 * half + 1
    off = np.arange(-half, half + 1, dtype=np.float32)
    ioff = np.arange(-half, half + 1, dtype=np.int64)
    peaks = np.empty(len(x))
    step = max(1, _RENDER_CHUNK // (size * size))
    for lo in range(0, len(x), step):
        sl = slice(lo, lo + step)
        ix = np.floor(x[sl] + 0.5).astype(np.int64)
        iy = np.floor(y[sl] + 0.5).astype(np.int64)
        dx = off[None, None, :] - (x[sl] - ix).astype(np.float32)[:, None, None]
        dy = off[None, :, None] - (y[sl] - iy).astype(np.float32)[:, None, None]
        prof = psf.profile(dx, dy)
        norm = flux[sl] / prof.sum(axis=(1, 2), dtype=np.float64)
        prof *= norm.astype(np.float32)[:, None, None]
        peaks[sl] = prof.max(axis=(1, 2))
        px = ix[:, None, None] + ioff[None, None, :]
        py = iy[:, None, None] + ioff[None, :, None]
        ok = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
        acc.add((py * nx + px)[ok], prof[ok])
    return peaks


def _add_stamp(image: np.ndarray, stamp: np.ndarray, x0: int, y0: int) -> float:
    """Add ``stamp`` with its [0, 0] pixel at image (x0, y0), clipped to the image; return
    the flux that landed."""
    ny, nx = image.shape
    sy, sx = stamp.shape
    xa, ya = max(x0, 0), max(y0, 0)
    xb, yb = min(x0 + sx, nx), min(y0 + sy, ny)
    if xa >= xb or ya >= yb:
        return 0.0
    part = stamp[ya - y0:yb - y0, xa - x0:xb - x0]
    image[ya:yb, xa:xb] += part
    return float(part.sum())


def _render_galaxy(image: np.ndarray, x: float, y: float, flux: float, r_eff_pix: float,
                   axis_ratio: float, pa_deg: float, psf: _PSF, kernel: np.ndarray) -> float:
    """Exponential disc (Sérsic n = 1) convolved with the PSF; returns the peak (ADU)."""
    h = math.ceil(5 * r_eff_pix + 3 * psf.fwhm)
    ix, iy = math.floor(x + 0.5), math.floor(y + 0.5)
    off = np.arange(-h, h + 1, dtype=np.float64)
    dx, dy = off[None, :] - (x - ix), off[:, None] - (y - iy)
    pa = math.radians(pa_deg)
    u = -dx * math.sin(pa) + dy * math.cos(pa)
    v = dx * math.cos(pa) + dy * math.sin(pa)
    rad = np.sqrt(u**2 + (v / max(axis_ratio, 0.05)) ** 2)
    prof = fftconvolve(np.exp(-1.678 * rad / r_eff_pix), kernel, mode="same")
    prof = np.maximum(prof, 0.0)
    prof *= flux / prof.sum()
    _add_stamp(image, prof, ix - h, iy - h)
    return float(prof.max())


def _render_nebula(image: np.ndarray, wcs: WCS, ra: float, dec: float, flux: float,
                   semi_major: float, axis_ratio: float, pa_deg: float, psf: _PSF,
                   pixel_scale: float) -> bool:
    """Add the nebula's shell, smoothed by a Gaussian of the seeing; True if any of it landed."""
    ny, nx = image.shape
    (x0, y0), = wcs.all_world2pix([[ra, dec]], 0)
    sigma = psf.fwhm / 2.3548
    margin = math.ceil(4 * sigma) + 1
    reach = 1.2 * semi_major / pixel_scale + margin
    xa, xb = max(math.floor(x0 - reach), -margin), min(math.ceil(x0 + reach), nx + margin)
    ya, yb = max(math.floor(y0 - reach), -margin), min(math.ceil(y0 + reach), ny + margin)
    if xa >= xb or ya >= yb:
        return False
    gx, gy = np.meshgrid(np.arange(xa, xb, dtype=np.float64),
                         np.arange(ya, yb, dtype=np.float64))
    world = wcs.all_pix2world(np.column_stack([gx.ravel(), gy.ravel()]), 0)
    off = _tangent_wcs(ra, dec).wcs_world2pix(world, 0)
    sb = pn_surface_brightness(off[:, 0], off[:, 1], semi_major, axis_ratio, pa_deg)
    stamp = gaussian_filter((flux * pixel_scale**2) * sb.reshape(gx.shape), sigma)
    return _add_stamp(image, stamp, xa, ya) > 0.0


# -- the exposure -------------------------------------------------------------------------


@dataclass
class DetectorTruth:
    """What one detector of one exposure really saw."""

    chip: int
    wcs: WCS
    """The TRUE pixel→sky mapping (0-based pixels with origin=0 in astropy calls)."""
    sources: Table
    """sky_id, kind, x, y (0-based, true), ra, dec (at the epoch), mag, flux_adu (total
    counts before the flat), peak_adu, saturated, on_chip (centre on the detector)."""
    bias_adu: float
    sky_adu: float
    """Mean sky per pixel before the flat (ADU)."""
    dark_adu: float
    """Typical dark per pixel (ADU; hot pixels aside)."""
    saturate: float
    wcs_cards: dict[str, object] = field(default_factory=dict)
    """The true WCS as FITS keywords (CD matrix, SIP terms)."""

    @property
    def extname(self) -> str:
        return extname(self.chip)


@dataclass
class ExposureTruth:
    """Everything the raw exposure was made from."""

    instrument: str
    pointing: Pointing
    zp_true: float
    """Magnitude giving 1 ADU/s in this exposure (airmass and night included)."""
    sky_level: float
    """Mean sky per pixel before the flat (ADU)."""
    true_axis: tuple[float, float]
    """(ra, dec) of the true optical axis."""
    distortion_k: float
    """k of δ = k r³ (arcsec⁻², r from the true optical axis in arcsec)."""
    detectors: list[DetectorTruth] = field(default_factory=list)

    @property
    def seeing(self) -> float:
        return self.pointing.seeing_arcsec

    @property
    def ellipticity(self) -> float:
        return self.pointing.ellipticity

    @property
    def pointing_error(self) -> tuple[float, float]:
        return self.pointing.pointing_error_arcsec

    def primary_header(self) -> fits.Header:
        p = self.pointing
        h = fits.Header()
        h["SIMVERS"] = (IMAGING_VERSION, "casuvo imaging simulator version")
        h["INSTRUME"] = self.instrument
        h["FIELD"] = p.field
        h["BAND"] = p.band or "NONE"
        h["MJD-OBS"] = p.mjd_obs
        h["EXPTIME"] = p.exptime
        h["AIRMASS"] = (p.mean_airmass, "mean airmass used for ZPTRUE")
        h["ZPTRUE"] = (self.zp_true, "mag giving 1 ADU/s in this exposure")
        h["ZPOFFSET"] = (p.zp_offset, "night zero-point offset included in ZPTRUE")
        h["SEEING"] = (p.seeing_arcsec, "[arcsec] true PSF FWHM")
        h["ELLIPTIC"] = (p.ellipticity, "true PSF ellipticity 1-b/a")
        h["PSFPA"] = (p.psf_pa_deg, "[deg] PSF major axis, N through E")
        h["MOFFBETA"] = (MOFFAT_BETA, "Moffat beta of the PSF")
        h["SKYLEVEL"] = (self.sky_level, "[ADU] mean sky per pixel before flat")
        h["SKYSCALE"] = (p.sky_scale, "sky relative to the filter's dark sky")
        h["PNTERR1"] = (p.pointing_error_arcsec[0], "[arcsec] true - nominal axis, east")
        h["PNTERR2"] = (p.pointing_error_arcsec[1], "[arcsec] true - nominal axis, north")
        h["TRUERA"] = (self.true_axis[0], "[deg] true optical axis")
        h["TRUEDEC"] = (self.true_axis[1], "[deg] true optical axis")
        h["DISTK"] = (self.distortion_k, "[arcsec-2] distortion d = k r^3")
        return h

    def to_hdulist(self) -> fits.HDUList:
        """Primary with the exposure truth, one BINTABLE per detector with its TRUE WCS."""
        hdus: list[fits.hdu.base.ExtensionHDU] = []
        for det in self.detectors:
            hdu = fits.table_to_hdu(det.sources)
            hdu.name = det.extname
            hdr = hdu.header
            for k, v in det.wcs_cards.items():
                hdr[k] = v
            hdr["DETNX"], hdr["DETNY"] = det.wcs.pixel_shape
            hdr["CHIPNO"] = det.chip
            hdr["BIASADU"] = (det.bias_adu, "[ADU] bias level")
            hdr["SKYADU"] = (det.sky_adu, "[ADU] mean sky per pixel before flat")
            hdr["DARKADU"] = (det.dark_adu, "[ADU] typical dark per pixel")
            hdr["SATURATE"] = (det.saturate, "[ADU]")
            hdus.append(hdu)
        return fits.HDUList([fits.PrimaryHDU(header=self.primary_header()), *hdus])


def read_truth(path: str) -> tuple[fits.Header, dict[str, tuple[WCS, Table]]]:
    """The exposure truth keywords and, per EXTNAME, the true WCS and the sources table."""
    with fits.open(path) as hdul:
        head = hdul[0].header.copy()
        dets = {h.name: (truth_wcs(h.header), Table.read(h, character_as_bytes=False))
                for h in hdul[1:]}
    return head, dets


def _select(sky: Table, ra: float, dec: float, radius_deg: float) -> np.ndarray:
    """Indices of sky rows within a box of ``radius_deg`` about (ra, dec) (cheap pre-cut)."""
    sra = np.asarray(sky["ra"], dtype=np.float64)
    sdec = np.asarray(sky["dec"], dtype=np.float64)
    cosd = max(math.cos(math.radians(min(abs(dec) + radius_deg, 89.9))), 1e-3)
    dra = (sra - ra + 180.0) % 360.0 - 180.0
    return np.flatnonzero((np.abs(sdec - dec) <= radius_deg)
                          & (np.abs(dra) * cosd <= radius_deg))


def iter_exposure(inst: Instrument, sky: Table, pointing: Pointing, rng: np.random.Generator
                  ) -> Iterator[tuple[fits.ImageHDU, DetectorTruth]]:
    """Detector by detector (one in memory at a time): the raw image HDU and its truth."""
    band = pointing.band
    if band is None:
        raise ValueError("a science exposure needs a band")
    zp = zeropoint_true(inst, pointing)
    sky_adu = sky_level_adu(inst, pointing)
    s = inst.pixel_scale
    psf = _PSF.make(pointing.seeing_arcsec, pointing.ellipticity, pointing.psf_pa_deg, s)
    kernel = psf.kernel()
    noise = math.sqrt(sky_adu * inst.gain + pointing.ndit * inst.read_noise**2) / inst.gain
    t_ra, t_dec = _true_axis(pointing)
    margin = MAX_STAMP_HALF * s + 10.0
    reach = (field_edge_arcsec(inst) + margin) / 3600.0
    # Nebula rows reach further than their centre.
    near = _select(sky, t_ra, t_dec, reach + 0.05)
    sub = sky[near]
    ra, dec = propagate(sub, pointing.mjd_mid)
    mag = mag_at(sub, band, pointing.mjd_mid)
    live = np.isfinite(mag)
    sub, ra, dec, mag = sub[live], ra[live], dec[live], mag[live]
    fp = _tangent_wcs(t_ra, t_dec).wcs_world2pix(np.column_stack([ra, dec]), 0)
    kinds = np.asarray(sub["kind"]).astype(str)
    flux = pointing.exptime * 10 ** (-0.4 * (mag - zp))
    extended = (kinds == "pn_nebula")
    reach_x = np.where(extended, 1.2 * np.asarray(sub["r_eff_arcsec"], np.float64), 0.0)
    for chip in range(1, inst.n_detectors + 1):
        x_k, y_k = inst.layout[chip - 1]
        hx, hy = inst.nx * s / 2 + margin, inst.ny * s / 2 + margin
        pick = np.flatnonzero((np.abs(fp[:, 0] - x_k) <= hx + reach_x)
                              & (np.abs(fp[:, 1] - y_k) <= hy + reach_x))
        cards = _true_cards(inst, pointing, chip)
        wcs = _wcs_from_cards(cards, inst)
        image = np.zeros((inst.ny, inst.nx), dtype=np.float64)
        truth = _render_detector(image, inst, wcs, sub[pick], ra[pick], dec[pick], mag[pick],
                                 flux[pick], kinds[pick], psf, kernel, WING_NOISE * noise,
                                 sky_adu, chip, pointing.ndit)
        electrons = inst.gain * flat_field(inst, chip) * (image + sky_adu)
        del image
        electrons += dark_current_map(inst, chip) * pointing.exptime
        data = read_out(inst, chip, electrons, pointing.ndit, rng)
        del electrons
        header = detector_header(inst, chip, nominal_wcs_cards(inst, pointing, chip),
                                 pointing.ndit)
        det = DetectorTruth(chip=chip, wcs=wcs, sources=truth, bias_adu=bias_level(inst, chip),
                            sky_adu=sky_adu, dark_adu=inst.dark_current * pointing.exptime
                            / inst.gain, saturate=saturation_level(inst, pointing.ndit),
                            wcs_cards=cards)
        yield fits.ImageHDU(data=data, header=header), det


def _render_detector(image: np.ndarray, inst: Instrument, wcs: WCS, sub: Table, ra: np.ndarray,
                     dec: np.ndarray, mag: np.ndarray, flux: np.ndarray, kinds: np.ndarray,
                     psf: _PSF, kernel: np.ndarray, wing: float, sky_adu: float, chip: int,
                     ndit: int) -> Table:
    """Render the selected sources onto ``image`` (ADU); the truth table of what landed."""
    ny, nx = image.shape
    n = len(sub)
    if n:
        xy = wcs.all_world2pix(np.column_stack([ra, dec]), 0, tolerance=1e-6, maxiter=50,
                               quiet=True)
        x, y = xy[:, 0], xy[:, 1]
    else:
        x = y = np.zeros(0)
    peak = np.zeros(n)
    keep = np.zeros(n, dtype=bool)
    point = np.isin(kinds, list(POINT_KINDS))
    half = psf.half_width(flux, wing)
    reach = np.where(point, half, 0)
    overlaps = ((x + reach >= -0.5) & (x - reach < nx - 0.5) & (y + reach >= -0.5)
                & (y - reach < ny - 0.5))
    pts = np.flatnonzero(point & overlaps)
    acc = _Accumulator(image)
    for h in np.unique(half[pts]):
        grp = pts[half[pts] == h]
        peak[grp] = _render_points(acc, image.shape, x[grp], y[grp], flux[grp], psf, int(h))
        keep[grp] = True
    acc.flush()
    s = inst.pixel_scale
    for i in np.flatnonzero(kinds == "galaxy"):
        r_eff = float(sub["r_eff_arcsec"][i]) / s
        h = 5 * r_eff + 3 * psf.fwhm
        if -h <= x[i] < nx + h and -h <= y[i] < ny + h:
            peak[i] = _render_galaxy(image, x[i], y[i], flux[i], r_eff,
                                     float(sub["axis_ratio"][i]), float(sub["pa_deg"][i]),
                                     psf, kernel)
            keep[i] = True
    for i in np.flatnonzero(kinds == "pn_nebula"):
        keep[i] = _render_nebula(image, wcs, float(ra[i]), float(dec[i]), float(flux[i]),
                                 float(sub["r_eff_arcsec"][i]), float(sub["axis_ratio"][i]),
                                 float(sub["pa_deg"][i]), psf, s)
    on_chip = (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
    rows = np.flatnonzero(keep & (on_chip | (kinds == "pn_nebula")))
    saturate = saturation_level(inst, ndit)
    return Table({
        "sky_id": np.asarray(sub["sky_id"], dtype=np.int64)[rows],
        "kind": kinds[rows].astype("U15"),
        "x": x[rows], "y": y[rows], "ra": ra[rows], "dec": dec[rows],
        "mag": mag[rows].astype(np.float32), "flux_adu": flux[rows],
        "peak_adu": peak[rows].astype(np.float32),
        "saturated": (peak[rows] + sky_adu + bias_level(inst, chip)) >= saturate,
        "on_chip": on_chip[rows],
    })


def simulate_exposure(inst: Instrument, sky: Table, pointing: Pointing,
                      rng: np.random.Generator) -> tuple[fits.HDUList, ExposureTruth]:
    """The raw MEF (primary + one image extension per detector) and its truth."""
    primary = fits.PrimaryHDU(header=primary_header(inst, pointing))
    truth = exposure_truth(inst, pointing)
    hdus: list[fits.ImageHDU] = []
    for hdu, det in iter_exposure(inst, sky, pointing, rng):
        hdus.append(hdu)
        truth.detectors.append(det)
    return fits.HDUList([primary, *hdus]), truth


def exposure_truth(inst: Instrument, pointing: Pointing) -> ExposureTruth:
    """An ExposureTruth for ``pointing`` without detectors (they are appended as made)."""
    return ExposureTruth(instrument=inst.name, pointing=pointing,
                         zp_true=zeropoint_true(inst, pointing),
                         sky_level=sky_level_adu(inst, pointing),
                         true_axis=_true_axis(pointing),
                         distortion_k=distortion_coefficient(inst))


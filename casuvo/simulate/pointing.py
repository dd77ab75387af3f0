# SPDX-License-Identifier: BSD-3-Clause
"""One exposure as the telescope was asked to take it, what actually happened, and the
zero point and sky level that follow from it.

Counts in ADU are ``EXPTIME × 10^(−0.4 (m − ZPTRUE))`` with ``ZPTRUE =
Filter.zeropoint − extinction (X − 1) + zp_offset`` (the CASU MAGZPT
convention, X the mean airmass); the sky is ``Filter.sky_mag`` × airmass ×
``sky_scale``.  :class:`Pointing` is shared by the science exposures, the
calibration frames (:mod:`casuvo.simulate.calibration`) and the survey plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from astropy.time import Time

from casuvo.surveys.instruments import Instrument

__all__ = ["Pointing", "isot", "sky_level_adu", "zeropoint_true"]


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
        return isot(self.mjd_obs)


def isot(mjd: float) -> str:
    """UTC ``mjd`` in ISO format to the millisecond, as DATE-OBS and the archive's file
    names write it."""
    t = Time(mjd, format="mjd", scale="utc")
    t.precision = 3
    return str(t.isot)


def zeropoint_true(inst: Instrument, pointing: Pointing) -> float:
    """Magnitude giving 1 ADU/s in this exposure (MAGZPT − EXTINCT (X − 1) + night offset)."""
    f = inst.filter(pointing.band or "")
    return f.zeropoint - f.extinction * (pointing.mean_airmass - 1.0) + pointing.zp_offset


def sky_level_adu(inst: Instrument, pointing: Pointing) -> float:
    """Mean sky per pixel in the exposure (ADU, before the flat-field response)."""
    f = inst.filter(pointing.band or "")
    rate = 10 ** (-0.4 * (f.sky_mag - f.zeropoint)) * inst.pixel_scale**2
    return rate * pointing.mean_airmass * pointing.sky_scale * pointing.exptime

# SPDX-License-Identifier: BSD-3-Clause
"""The truth of a raw exposure: what each detector really saw, written beside the raw file.

One FITS file per raw frame: a primary header with the exposure truth (true
zero point, seeing, PSF, sky level, pointing error, true optical axis,
distortion) and one BINTABLE per detector holding the sources that landed on
it, with the detector's TRUE WCS (TAN-SIP) as keywords.  :func:`read_truth`
reads it back for the tests that check the pipelines against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from casuvo.simulate.headers import extname
from casuvo.simulate.optics import distortion_coefficient, true_axis
from casuvo.simulate.pointing import Pointing, sky_level_adu, zeropoint_true
from casuvo.simulate.rendering import MOFFAT_BETA
from casuvo.surveys.instruments import Instrument

__all__ = ["IMAGING_VERSION", "DetectorTruth", "ExposureTruth", "exposure_truth",
           "read_truth", "truth_header", "truth_wcs"]

#: Bumped when the image model changes (truth files carry it as SIMVERS).
IMAGING_VERSION = 1


def truth_header(instrument: str, frame: tuple[str, str], band: str | None, mjd_obs: float,
                 exptime: float) -> fits.Header:
    """The keywords every truth file starts with, science frame or calibration.

    ``frame`` is the (keyword, value) that says what the frame is: ``("FIELD",
    sky-model field)`` or ``("CALTYPE", DPR TYPE)``; BAND is 'NONE' without a band.
    """
    h = fits.Header()
    h["SIMVERS"] = (IMAGING_VERSION, "casuvo imaging simulator version")
    h["INSTRUME"] = instrument
    h[frame[0]] = frame[1]
    h["BAND"] = band or "NONE"
    h["MJD-OBS"] = mjd_obs
    h["EXPTIME"] = exptime
    return h


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

    def primary_header(self) -> fits.Header:
        p = self.pointing
        h = truth_header(self.instrument, ("FIELD", p.field), p.band, p.mjd_obs, p.exptime)
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


def exposure_truth(inst: Instrument, pointing: Pointing) -> ExposureTruth:
    """An ExposureTruth for ``pointing`` without detectors (they are appended as made)."""
    return ExposureTruth(instrument=inst.name, pointing=pointing,
                         zp_true=zeropoint_true(inst, pointing),
                         sky_level=sky_level_adu(inst, pointing),
                         true_axis=true_axis(pointing),
                         distortion_k=distortion_coefficient(inst))


_WCS_KEY = re.compile(r"^(CTYPE[12]|CRVAL[12]|CRPIX[12]|CD[12]_[12]|CUNIT[12]|RADESYS|"
                      r"[AB]_ORDER|[AB]_\d_\d)$")


def truth_wcs(header: fits.Header) -> WCS:
    """The true WCS stored in a truth table header (table keywords are left out)."""
    cards = {k: header[k] for k in header if _WCS_KEY.match(k)}
    w = WCS(fits.Header(cards))
    if "DETNX" in header:
        w.pixel_shape = (header["DETNX"], header["DETNY"])
    return w


def read_truth(path: str) -> tuple[fits.Header, dict[str, tuple[WCS, Table]]]:
    """The exposure truth keywords and, per EXTNAME, the true WCS and the sources table."""
    with fits.open(path) as hdul:
        head = hdul[0].header.copy()
        dets = {h.name: (truth_wcs(h.header), Table.read(h, character_as_bytes=False))
                for h in hdul[1:]}
    return head, dets

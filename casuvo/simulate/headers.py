# SPDX-License-Identifier: BSD-3-Clause
"""The FITS headers of a raw VIRCAM or OmegaCAM file, as the cameras write them.

Raw header keywords (primary HDU, NAXIS = 0): ORIGIN, TELESCOP, INSTRUME,
OBJECT, RA, DEC, EQUINOX, RADESYS, DATE-OBS, DATE, MJD-OBS, EXPTIME, ARCFILE
and the ESO hierarchical keywords ``DPR CATG/TYPE/TECH``, ``OBS ID/NAME/PROG
ID``, ``TPL ID/NEXP/EXPNO``, ``DET DIT/NDIT``, ``INS FILT1 NAME``, ``TEL AIRM
START/END`` and ``TEL AMBI FWHM START`` (DIMM seeing), plus two casuvo
keywords: ``CASUTILE`` (pawprint number 1–6 inside a VISTA tile, 1 otherwise)
and ``CASUJITR`` (jitter / dither number inside the pawprint, from 1).  Image
extensions: EXTNAME ``DETn.CHIP1``, INHERIT, BUNIT, the nominal WCS (CTYPE,
CRVAL, CRPIX, CD, CUNIT), GAIN, READNOIS, SATURATE and ``ESO DET CHIP NO/ID/
LIVE``.  OmegaCAM files are BITPIX = 16 with BZERO = 32768 (astropy writes
that for uint16 data); there are no overscan regions.
"""

from __future__ import annotations

from astropy.io import fits

from casuvo.simulate.detectors import saturation_level
from casuvo.simulate.pointing import Pointing, isot
from casuvo.surveys.instruments import Instrument

__all__ = ["detector_header", "extname", "primary_header"]

_TPL_SCIENCE = {"VIRCAM": "VIRCAM_img_obs_tile6", "OMEGACAM": "OMEGACAM_img_obs_dither"}
_TECH_SCIENCE = {"VIRCAM": "IMAGE,JITTER", "OMEGACAM": "IMAGE,DITHER"}
#: Detector identifiers (plausible spellings: VIRCAM's Raytheon VIRGO arrays, OmegaCAM's
#: e2v 44-82 CCDs).
_CHIP_ID = {"VIRCAM": "ESO-VIRGO-{n:02d}", "OMEGACAM": "ESO-CCD-44-82-{n:02d}"}


def extname(chip: int) -> str:
    """EXTNAME of detector ``chip`` (1-based)."""
    return f"DET{chip}.CHIP1"


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
        ("DATE", isot(pointing.mjd_obs + pointing.exptime / 86400.0), "file written"),
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

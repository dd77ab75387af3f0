# SPDX-License-Identifier: BSD-3-Clause
"""Gaia-ESO (CASU GIRAFFE) products: per-pointing "manyspec" and per-object "singlespec".

As the CASU GES archive makes them (``shared/reference/formats-spectra.md``
§1 #1 and §2.2):

- **manyspec** (one per OB and setting, the OB's exposures stacked): the
  PRIMARY holds the flux image (NAXIS1 = wavelength, NAXIS2 = fibres, linear
  WCS in vacuum Å), ``ERROR`` the 1σ image, then the ``Fibinfo`` table (one
  row per fibre, OzPoz allocation counts in its header) and the ``velclass``
  table (classification and velocity per fibre);
- **singlespec** (one per object and setting, all its epochs stacked on the
  heliocentric grid): PRIMARY = the 1D flux, ``ERROR`` = 1σ, ``INPUTINFO`` =
  one row per epoch (OB, input manyspec file, dates, S/N, velocity).

Errors are sigma (GES's convention); flux in the calibrated unit ``BUNIT``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from casuvo.spectra.fitsio import header_dict, table_hdu, write_atomic
from casuvo.spectra.products import OBData, ObjectData
from casuvo.spectra.spectrum import Spectrum

__all__ = ["FIBINFO_COLUMNS", "INPUTINFO_COLUMNS", "VELCLASS_COLUMNS", "read_manyspec",
           "read_object", "read_singlespec", "write_manyspec", "write_ob", "write_object",
           "write_singlespec"]

FIBINFO_COLUMNS = ("NSPEC", "NSPEC_OLD", "CNAME", "TYPE", "OBJ_CLASS", "RA", "DEC", "MAGNITUDE",
                   "SOURCE_ID", "TARGID", "FIB_STATUS", "S_N", "SKY_OFF", "SKY_SCALE",
                   "EXPTIME", "RMS_ARC", "HELIO_COR", "RV", "RV_ERR", "CCFMAX", "BEST_TMPL",
                   "TMPL_TEMP", "TMPL_LOGG", "TMPL_FEH")
VELCLASS_COLUMNS = ("NSPEC", "CNAME", "SPCLASS", "VEL", "EVEL", "VROT", "CHI2_DOF", "LOGG",
                    "LOGTEFF", "FEH")
INPUTINFO_COLUMNS = ("OBID", "ARCFILE", "INPUT_FILENAME", "DATE_OBS", "MJD_OBS", "MJD_END",
                     "EXPTIME", "AIRMASS_START", "AIRMASS_END", "SEEING", "UTC", "S_N", "VEL",
                     "EVEL", "RV", "RV_ERR", "HELIO_COR", "SPCLASS", "NSPEC")


def _wcs(header: fits.Header, wave: np.ndarray, two_d: bool) -> None:
    header["CTYPE1"] = ("WAVE", "vacuum wavelength")
    header["CUNIT1"] = "Angstrom"
    header["CRPIX1"] = 1.0
    header["CRVAL1"] = float(wave[0])
    header["CD1_1"] = float(wave[1] - wave[0])
    if two_d:
        header["CTYPE2"] = ("PIXEL", "fibre (row = NSPEC)")
        header["CUNIT2"] = ""
        header["CRPIX2"] = 1.0
        header["CRVAL2"] = 1.0
        header["CD1_2"] = 0.0
        header["CD2_1"] = 0.0
        header["CD2_2"] = 1.0


def _put(header: fits.Header, keywords: Mapping[str, Any]) -> None:
    for key, value in keywords.items():
        comment = None
        if isinstance(value, tuple):
            value, comment = value
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            value = None
        header[key] = value if comment is None else (value, comment)


def write_manyspec(path: Path, wave: np.ndarray, flux: np.ndarray, sigma: np.ndarray,
                   keywords: Mapping[str, Any], fibinfo: Mapping[str, Any],
                   velclass: Mapping[str, Any],
                   fibinfo_keywords: Mapping[str, Any]) -> Path:
    """Write one manyspec file (see the module's description); returns its path."""
    primary = fits.PrimaryHDU(np.asarray(flux, dtype=np.float32))
    _put(primary.header, keywords)
    _wcs(primary.header, wave, two_d=True)
    err = fits.ImageHDU(np.asarray(sigma, dtype=np.float32), name="ERROR")
    _wcs(err.header, wave, two_d=True)
    err.header["BUNIT"] = primary.header.get("BUNIT", "")
    units = {"RA": "deg", "DEC": "deg", "HELIO_COR": "km/s", "RV": "km/s", "RV_ERR": "km/s",
             "EXPTIME": "s", "VEL": "km/s", "EVEL": "km/s", "VROT": "km/s", "TMPL_TEMP": "K"}
    fib = table_hdu({k: fibinfo[k] for k in FIBINFO_COLUMNS}, "Fibinfo", units,
                    fibinfo_keywords)
    vel = table_hdu({k: velclass[k] for k in VELCLASS_COLUMNS}, "velclass", units)
    return write_atomic(fits.HDUList([primary, err, fib, vel]), path)


def write_singlespec(path: Path, wave: np.ndarray, flux: np.ndarray, sigma: np.ndarray,
                     keywords: Mapping[str, Any], inputinfo: Mapping[str, Any]) -> Path:
    """Write one singlespec file (see the module's description); returns its path."""
    primary = fits.PrimaryHDU(np.asarray(flux, dtype=np.float32))
    _put(primary.header, keywords)
    _wcs(primary.header, wave, two_d=False)
    err = fits.ImageHDU(np.asarray(sigma, dtype=np.float32), name="ERROR")
    _wcs(err.header, wave, two_d=False)
    err.header["BUNIT"] = primary.header.get("BUNIT", "")
    units = {"MJD_OBS": "d", "MJD_END": "d", "EXPTIME": "s", "SEEING": "arcsec",
             "VEL": "km/s", "EVEL": "km/s", "RV": "km/s", "RV_ERR": "km/s", "HELIO_COR": "km/s"}
    info = table_hdu({k: inputinfo[k] for k in INPUTINFO_COLUMNS}, "INPUTINFO", units)
    return write_atomic(fits.HDUList([primary, err, info]), path)


def _wave(header: fits.Header, n: int) -> np.ndarray:
    step = header.get("CD1_1", header.get("CDELT1"))
    return (float(header["CRVAL1"]) + float(step) * (np.arange(n) + 1 - float(
        header.get("CRPIX1", 1.0))))


def read_singlespec(path: Path) -> Spectrum:
    """A singlespec file as a :class:`Spectrum` (σ as stored)."""
    with fits.open(path, memmap=False) as hdul:
        primary = hdul[0]
        flux = np.asarray(primary.data, dtype=float)
        sigma = np.asarray(hdul["ERROR"].data, dtype=float)
        meta = header_dict(primary.header)
        meta["N_EPOCHS"] = len(hdul["INPUTINFO"].data) if "INPUTINFO" in hdul else 1
        wave = _wave(primary.header, flux.size)
    return Spectrum(wave, flux, sigma, str(meta.get("BUNIT", "")), meta)


def read_manyspec(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any, dict[str, Any]]:
    """A manyspec file: wave, flux (fibres × pixels), sigma, the Fibinfo table, keywords."""
    with fits.open(path, memmap=False) as hdul:
        flux = np.asarray(hdul[0].data, dtype=float)
        sigma = np.asarray(hdul["ERROR"].data, dtype=float)
        fib = hdul["Fibinfo"].data.copy()
        meta = header_dict(hdul[0].header)
        wave = _wave(hdul[0].header, flux.shape[1])
    return wave, flux, sigma, fib, meta


# ------------------------------------------------------------------ pipeline writers

def _ra_hours(ra: float) -> float:
    return float(ra) / 15.0


def manyspec_name(ob: dict[str, Any]) -> str:
    """``C<night>_<run5>_fn.fits`` (CASU style: night and first exposure's run number)."""
    return f"C{ob['night']}_{int(ob.get('run', 0)) % 100000:05d}_{ob['setting']}_fn.fits"


def write_ob(ob: OBData, out_dir: Path) -> list[Path]:
    """The OB's manyspec file (one setting: GIRAFFE has one arm per OB)."""
    o = ob.ob
    arm = ob.arms[0]
    f = ob.fibres
    n = f["fibre"].size
    is_obj = f["obj_type"] == "OBJ"
    keywords = {
        "DATE": o.get("date", ""), "ORIGIN": "CASU", "TELESCOP": o["telescope"],
        "INSTRUME": o["instrument"], "HIERARCH ESO INS GRAT WLEN": o.get("grat_wlen", ""),
        "GES_TYPE": "GE_MW", "GES_FLD": o["ob_name"], "OBJECT": o["ob_name"],
        "RA": (_ra_hours(o["ra"]), "pointing RA, hours"), "DEC": (float(o["dec"]), "deg"),
        "EQUINOX": 2000.0, "RADECSYS": "ICRS", "EXPTIME": float(o["exptime"]),
        "MJD-OBS": float(o["mjd_obs"]), "MJD-END": float(o["mjd_end"]),
        "DATE-OBS": o["date_obs"], "UTC": float(o["utc"]), "LST": float(o.get("lst", 0.0)),
        "PI-COI": o.get("author", ""), "OBSERVER": "casuvo", "SKYSUB": "median of sky fibres",
        "TIPRES": "none", "ORIGFILE": o["raw_files"][0].split("/")[-1],
        "ARCFILE": o["raw_files"][0].split("/")[-1], "TRACFILE": "none", "PROFFILE": "none",
        "WAVEFILE": "none", "FLATFILE": "none", "CIR_VERS": "casuvo",
        "SOFTVERS": o.get("version", ""), "SOFTDATE": o.get("date", "")[:10],
        "SOFTAUTH": "CASU", "SOFTINST": "CASU",
        "OBID": int(o["ob_id"]), "SETUP": o["setting"], "NCOMBINE": len(o["raw_files"]),
        "AIRMASS": float(o["airmass"]), "SEEING": float(o["seeing"]),
        "BUNIT": ob.flux_unit, "SPECSYS": ("TOPOCENT", "wavelengths in the observatory frame"),
        "FLUXCAL": "ABSOLUTE", "SPEC_RES": float(arm.resolution),
        "MEDSNR": float(ob.qc.get("snr_median", np.nan)), "QCSTATUS": ob.qc.get("status", ""),
        **{f"PROV{i + 1}": p.split("/")[-1] for i, p in enumerate(o["raw_files"])},
    }
    fib = {
        "NSPEC": np.arange(1, n + 1), "NSPEC_OLD": f["fibre"], "CNAME": f["target_name"],
        "TYPE": np.where(is_obj, "M", "S"), "OBJ_CLASS": np.where(is_obj, "STAR", "SKY"),
        "RA": f["ra"], "DEC": f["dec"], "MAGNITUDE": f["mag_g"], "SOURCE_ID": f["source_id"],
        "TARGID": f["target_id"], "FIB_STATUS": f["fibre_status"], "S_N": f["snr"],
        "SKY_OFF": np.zeros(n), "SKY_SCALE": f["sky_scale"],
        "EXPTIME": np.full(n, float(o["exptime"])), "RMS_ARC": np.full(n, 0.002),
        "HELIO_COR": f["helio_cor"], "RV": f["rv"], "RV_ERR": f["rv_error"],
        "CCFMAX": f["ccf_peak"], "BEST_TMPL": f["rv_template"], "TMPL_TEMP": f["teff"],
        "TMPL_LOGG": f["logg"], "TMPL_FEH": f["feh"],
    }
    n_sky = int((~is_obj).sum())
    fib_kw = {"ALLOCOBJ": int(is_obj.sum()), "ALLOCSKY": n_sky, "ALLOCGUI": 4,
              "UNALLOBJ": int(o.get("n_unallocated", 0)), "UNALLSKY": 0, "UNALLGUI": 0,
              "ACTMJD": float(o["mjd_obs"]), "CENRA": float(o["ra"]), "CENDEC": float(o["dec"]),
              "CENEQNX": 2000.0, "FILENAME": f"{o['ob_name']}.ins", "LABEL": o["ob_name"],
              "PLATE": 1 + int(o["ob_id"]) % 2, "WLEN": o.get("grat_wlen", "")}
    spclass = np.where(~is_obj, "SKY", np.where(
        (f["fibre_status"] == "OK") & np.isfinite(f["rv"]), "STAR", "LOWSN"))
    vel = {"NSPEC": np.arange(1, n + 1), "CNAME": f["target_name"], "SPCLASS": spclass,
           "VEL": f["rv"], "EVEL": f["rv_error"], "VROT": np.zeros(n),
           "CHI2_DOF": f["chi2_dof"], "LOGG": f["logg"], "LOGTEFF": np.log10(f["teff"]),
           "FEH": f["feh"]}
    path = out_dir / str(o["night"]) / manyspec_name(o)
    return [write_manyspec(path, arm.wave, arm.flux, arm.sigma, keywords, fib, vel, fib_kw)]


def singlespec_name(obj: ObjectData) -> str:
    """``<CNAME>_<setting>_ss.fits``: one file per object and setting."""
    return f"{obj.target_name}_{obj.setting}_ss.fits"


def write_object(obj: ObjectData, out_dir: Path) -> Path:
    """The object's singlespec file: the stack of its epochs, ``INPUTINFO`` per epoch."""
    arm = obj.arms[0]
    e = obj.epochs
    keywords = {
        "ORIGIN": "CASU", "TELESCOP": obj.keywords.get("TELESCOP", ""),
        "INSTRUME": obj.keywords.get("INSTRUME", ""), "OBJECT": obj.target_name,
        "CNAME": obj.target_name, "TARGID": obj.target_id, "SOURCEID": int(obj.source_id),
        "GES_TYPE": "GE_MW", "SETUP": obj.setting, "RA": float(obj.ra), "DEC": float(obj.dec),
        "EQUINOX": 2000.0, "RADECSYS": "ICRS", "MAG_G": float(obj.mag_g),
        "MJD-OBS": min(x.mjd_obs for x in e), "MJD-END": max(x.mjd_end for x in e),
        "EXPTIME": float(sum(x.exptime for x in e)), "NCOMBINE": len(e),
        "BUNIT": obj.flux_unit, "SPECSYS": ("BARYCENT", "heliocentric (barycentric) frame"),
        "SPEC_RES": float(arm.resolution), "S_N": float(obj.snr), "VRAD": float(obj.rv),
        "E_VRAD": float(obj.rv_error), "BESTTMPL": obj.rv_template,
        "SPEC_ID": obj.spectrum_id, **obj.keywords,
    }
    info = {
        "OBID": np.array([x.ob_id for x in e], dtype=np.int64),
        "ARCFILE": np.array([x.product_file.split("/")[-1] for x in e]),
        "INPUT_FILENAME": np.array([x.product_file.split("/")[-1] for x in e]),
        "DATE_OBS": np.array([_iso_from_mjd(x.mjd_obs) for x in e]),
        "MJD_OBS": np.array([x.mjd_obs for x in e]), "MJD_END": np.array([x.mjd_end for x in e]),
        "EXPTIME": np.array([x.exptime for x in e]),
        "AIRMASS_START": np.array([x.airmass for x in e]),
        "AIRMASS_END": np.array([x.airmass for x in e]),
        "SEEING": np.array([x.seeing for x in e]),
        "UTC": np.array([(x.mjd_obs % 1.0) * 86400.0 for x in e]),
        "S_N": np.array([x.snr for x in e]), "VEL": np.array([x.rv for x in e]),
        "EVEL": np.array([x.rv_error for x in e]), "RV": np.array([x.rv for x in e]),
        "RV_ERR": np.array([x.rv_error for x in e]),
        "HELIO_COR": np.array([x.helio_cor for x in e]),
        "SPCLASS": np.array(["STAR" if np.isfinite(x.rv) else "LOWSN" for x in e]),
        "NSPEC": np.array([x.fibre for x in e]),
    }
    return write_singlespec(out_dir / "objects" / singlespec_name(obj), arm.wave, arm.flux,
                            arm.sigma, keywords, info)


def read_object(path: Path) -> Spectrum:
    """A per-object product of this format (the :func:`read_spectrum` protocol)."""
    return read_singlespec(path)


def _iso_from_mjd(mjd: float) -> str:
    from datetime import UTC, datetime, timedelta

    t = datetime(1858, 11, 17, tzinfo=UTC) + timedelta(days=float(mjd))
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}"

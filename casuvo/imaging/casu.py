# SPDX-License-Identifier: BSD-3-Clause
"""CASU-style product files: names, MEF images, confidence maps and catalogues.

One owner for how a product looks on disk (shared/reference/formats.md §1.3,
§2.1–2.4): ``v20240510_00023_st.fit`` (stacked pawprint, one image extension
per detector), ``…_st_conf.fit`` (confidence map), ``…_st_cat.fits``
(catalogue, one BINTABLE per detector), ``…_st_tl.fit`` (tile, one image
extension) and so on; ESO Phase 3 keywords (PRODCATG, PHOTZP, ABMAGLIM, …)
beside CASU's (MAGZPT, MAGZRR, SEEING, ELLIPTIC, SKYLEVEL, SKYNOISE, APCORn,
STDCRMS, NUMBRMS, RCORE), CHECKSUM/DATASUM in every HDU, and provenance.
Files are written to a temporary name and renamed, so a crash never leaves
half a product behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from casuvo._version import __version__
from casuvo.storage.files import write_fits
from casuvo.surveys.instruments import Filter, Instrument

__all__ = [
    "CATALOGUE_UNITS",
    "CatalogueTable",
    "DetectorProduct",
    "ProductMeta",
    "product_name",
    "write_catalogue",
    "write_image",
]

PROCSOFT = f"casuvo/{__version__}"

CATALOGUE_UNITS = {
    "Sequence_number": "", "Isophotal_flux": "adu", "X_coordinate": "pix",
    "X_coordinate_err": "pix", "Y_coordinate": "pix", "Y_coordinate_err": "pix",
    "Gaussian_sigma": "pix", "Ellipticity": "", "Position_angle": "deg",
    "Peak_height": "adu", "Kron_radius": "pix", "Half_radius": "pix", "FWHM": "pix",
    "Error_bit_flag": "", "Av_conf": "", "Sky_level": "adu", "Sky_rms": "adu",
    "Classification": "", "Statistic": "", "RA": "deg", "DEC": "deg",
}


def product_name(inst: Instrument, night: str, run: int, kind: str) -> str:
    """CASU name: ``<v|o><YYYYMMDD>_<run5>_<kind>`` (+ .fit for images, .fits for tables)."""
    suffix = {"st": "_st.fit", "st_conf": "_st_conf.fit", "st_cat": "_st_cat.fits",
              "tl": "_st_tl.fit", "tl_conf": "_st_tl_conf.fit",
              "tl_cat": "_st_tl_cat.fits"}[kind]
    return f"{inst.casu_prefix}{night}_{run:05d}{suffix}"


@dataclass(frozen=True)
class ProductMeta:
    """Primary-header facts shared by an image, its confidence map and catalogue."""

    inst: Instrument
    filt: Filter
    obj: str
    ra: float
    dec: float
    mjd_obs: float
    mjd_end: float
    exptime: float
    texptime: float
    ncombine: int
    obs_ids: Sequence[int]
    prog_id: str
    obstech: str
    prodcatg: str
    provenance: Sequence[str]
    airmass: float
    dit: float
    ndit: int
    njitter: int
    noffsets: int
    obstatus: str
    qc: Mapping[str, object]
    extra: Mapping[str, object] | None = None


@dataclass(frozen=True)
class DetectorProduct:
    """One image extension: data, confidence, solved WCS and its calibration keywords."""

    name: str
    data: np.ndarray
    conf: np.ndarray
    wcs: WCS
    keywords: Mapping[str, object]


@dataclass(frozen=True)
class CatalogueTable:
    """One BINTABLE of a CASU catalogue: the sources of one image extension."""

    extname: str
    """EXTNAME of the image extension the sources were measured on."""
    table: Table
    keywords: Mapping[str, object]
    """The extension's calibration keywords (MAGZPT, SEEING, …), repeated in the table."""


def _primary(meta: ProductMeta, prodcatg: str, assoc: str | None) -> fits.PrimaryHDU:
    h = fits.Header()
    h["ORIGIN"] = ("ESO-PARANAL", "European Southern Observatory")
    h["TELESCOP"] = meta.inst.telescope
    h["INSTRUME"] = meta.inst.name
    h["FILTER"] = meta.filt.name
    h["OBJECT"] = meta.obj
    h["RA"] = (round(meta.ra, 6), "[deg] image centre")
    h["DEC"] = (round(meta.dec, 6), "[deg] image centre")
    h["EQUINOX"] = 2000.0
    h["RADESYS"] = "ICRS"
    h["EXPTIME"] = (meta.exptime, "[s] effective exposure per pixel")
    h["TEXPTIME"] = (meta.texptime, "[s] total of all contributing exposures")
    h["MJD-OBS"] = (meta.mjd_obs, "start of first exposure")
    h["MJD-END"] = (meta.mjd_end, "end of last exposure")
    from astropy.time import Time

    h["DATE-OBS"] = Time(meta.mjd_obs, format="mjd").isot
    h["DATE"] = Time.now().isot[:19]
    h["PROG_ID"] = meta.prog_id
    for i, obid in enumerate(sorted(set(meta.obs_ids)), start=1):
        h[f"OBID{i}"] = int(obid)
    h["NCOMBINE"] = meta.ncombine
    h["OBSTECH"] = meta.obstech
    h["PRODCATG"] = prodcatg
    h["FLUXCAL"] = "ABSOLUTE"
    h["PROCSOFT"] = PROCSOFT
    h["REFERENC"] = ""
    h["CASUVERS"] = PROCSOFT
    for i, prov in enumerate(meta.provenance, start=1):
        h[f"PROV{i}"] = Path(prov).name
    if assoc:
        h["ASSON1"] = assoc
    h["DIT"] = (meta.dit, "[s] detector integration time")
    h["NDIT"] = meta.ndit
    if meta.inst.name == "VIRCAM":
        h["NJITTER"] = meta.njitter
        h["NOFFSETS"] = meta.noffsets
        h["NUSTEP"] = 1
    h["AMSTART"] = meta.airmass
    h["AMEND"] = meta.airmass
    h["OBSTATUS"] = meta.obstatus
    for key, value in meta.qc.items():
        h[key] = value
    for key, value in (meta.extra or {}).items():
        h[key] = value
    h["HIERARCH ESO INS FILT1 NAME"] = meta.filt.eso_name
    return fits.PrimaryHDU(header=h)


def write_image(path: Path, conf_path: Path, meta: ProductMeta,
                detectors: Sequence[DetectorProduct]) -> None:
    """Write an image MEF and its confidence map (same geometry, ASSON1 pointing to it)."""
    img = [_primary(meta, meta.prodcatg, conf_path.name)]
    conf = [_primary(meta, "ANCILLARY.WEIGHTMAP", None)]
    for det in detectors:
        h = det.wcs.to_header(relax=True)
        h["EXTNAME"] = det.name
        h["INHERIT"] = True
        h["BUNIT"] = "adu"
        h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
        for key, value in det.keywords.items():
            h[key] = value
        img.append(fits.ImageHDU(det.data.astype(np.float32), header=h))
        ch = h.copy()
        ch["BUNIT"] = ""
        conf.append(fits.ImageHDU(det.conf.astype(np.int16), header=ch))
    write_fits(fits.HDUList(conf), conf_path)
    write_fits(fits.HDUList(img), path)


def write_catalogue(path: Path, meta: ProductMeta, image_name: str,
                    tables: Sequence[CatalogueTable]) -> None:
    """Write a CASU catalogue: one BINTABLE per image extension (SCIENCE.SRCTBL)."""
    primary = _primary(meta, "SCIENCE.SRCTBL", None)
    primary.header["PROV1"] = image_name
    hdus: list[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU] = [primary]
    for entry in tables:
        t = entry.table.copy(copy_data=False)
        for col in t.colnames:
            unit = CATALOGUE_UNITS.get(col, "adu" if col.startswith("Aper_flux") else "")
            t[col].unit = unit or None
        hdu = fits.table_to_hdu(t)
        hdu.header["EXTNAME"] = entry.extname
        hdu.header["PHOTSYS"] = "VEGA"
        for key, value in entry.keywords.items():
            hdu.header[key] = value
        hdus.append(hdu)
    write_fits(fits.HDUList(hdus), path)

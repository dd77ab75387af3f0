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

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from casuvo._version import __version__
from casuvo.storage.files import atomic_path, write_fits
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
    """Write an image MEF and its confidence map (same geometry, ASSON1 pointing to it).

    The extensions are encoded directly (:func:`_image_bytes`, as the catalogue's
    tables): astropy's HDU verification and card handling cost a miniature
    stack's 64 extensions a second, more than their pixels.
    """
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
    _write_mef(fits.HDUList(conf), conf_path)
    _write_mef(fits.HDUList(img), path)


def _write_mef(hdul: fits.HDUList, path: Path) -> None:
    """Write a primary header and image extensions with CHECKSUM/DATASUM, encoding the
    extensions directly (astropy's writer where one is not a plain 2-D image)."""
    encoded = [_image_bytes(np.asarray(h.data), h.header) for h in hdul[1:]]
    if any(e is None for e in encoded):
        write_fits(hdul, path)
        return
    _write_with_primary(hdul[0], [e for e in encoded if e is not None], path)


def _write_with_primary(primary: fits.PrimaryHDU, extensions: Sequence[bytes],
                        path: Path) -> None:
    """Write ``primary`` (by astropy, with checksums) and the encoded extensions."""
    # written alone, the primary header would lack EXTEND (astropy adds it to a file
    # with extensions, and finds the checksum wrong when reading one without it)
    primary.header.set("EXTEND", True, after="NAXIS")
    head = io.BytesIO()
    fits.HDUList([primary]).writeto(head, checksum=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"".join([head.getvalue(), *extensions]))


def write_catalogue(path: Path, meta: ProductMeta, image_name: str,
                    tables: Sequence[CatalogueTable]) -> None:
    """Write a CASU catalogue: one BINTABLE per image extension (SCIENCE.SRCTBL).

    The tables are encoded directly (:func:`_bintable_bytes`), not through
    astropy's Table → BinTableHDU → writeto: a catalogue of 32 miniature detectors
    spent 2.6 s (half its stack's time) in that machinery's per-column and
    per-card overheads, for the same bytes.  A table that needs more than plain
    numbers (masked, text or unsigned columns) takes astropy's path.
    """
    primary = _primary(meta, "SCIENCE.SRCTBL", None)
    # a source list's provenance is its image alone (SDP: SRCTBL PROVi → the image)
    for key in [k for k in primary.header if k.startswith("PROV")]:
        del primary.header[key]
    primary.header["PROV1"] = image_name
    cards = [list({"EXTNAME": entry.extname, "PHOTSYS": "VEGA", **entry.keywords}.items())
             for entry in tables]
    encoded = [_bintable_bytes(entry.table, c) for entry, c in zip(tables, cards, strict=True)]
    if any(e is None for e in encoded):
        hdus: list[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU] = [primary]
        for entry, extra in zip(tables, cards, strict=True):
            t = entry.table.copy(copy_data=False)
            for col in t.colnames:
                t[col].unit = _unit(col) or None
            hdu = fits.table_to_hdu(t)
            for key, value in extra:
                hdu.header[key] = value
            hdus.append(hdu)
        write_fits(fits.HDUList(hdus), path)
        return
    _write_with_primary(primary, [e for e in encoded if e is not None], path)


def _unit(col: str) -> str:
    return CATALOGUE_UNITS.get(col, "adu" if col.startswith("Aper_flux") else "")


# ------------------------------------------------------------------ direct FITS encoding

BLOCK = 2880
_TFORM = {np.dtype(np.float32): "E", np.dtype(np.float64): "D", np.dtype(np.int16): "I",
          np.dtype(np.int32): "J", np.dtype(np.int64): "K", np.dtype(np.uint8): "B"}
_KEY = re.compile(r"[A-Z0-9_-]{1,8}")


def _format_value(value: object) -> str | None:
    """A header value as astropy writes it (fixed format), or None to let astropy do it."""
    if isinstance(value, bool | np.bool_):
        return f"{'T' if value else 'F':>20}"
    if isinstance(value, int | np.integer):
        return f"{int(value):>20d}"
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return None
        text = str(value).replace("e", "E")
        if len(text) > 20:
            e = text.find("E")
            text = text[:20] if e < 0 else text[: 20 - (len(text) - e)] + text[e:]
        return f"{text:>20}"
    if isinstance(value, str) and value.isascii() and value.isprintable():
        if not value:
            return "''"
        quoted = "'{:8}'".format(value.replace("'", "''"))
        return f"{quoted:20}"
    return None


def card(key: str, value: object, comment: str = "") -> str:
    """One header card of 80 characters (more: CONTINUE cards) as astropy writes it."""
    if isinstance(value, tuple):
        value, comment = value
    text = _format_value(value) if _KEY.fullmatch(key) else None
    if text is not None:
        out = f"{key:8}= {text}" + (f" / {comment}" if comment else "")
        if len(out) <= 80:
            return f"{out:80}"
    return fits.Card(key, value, comment).image


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % BLOCK)


def ones_complement_sum(data: bytes, start: int = 0) -> int:
    """The FITS checksum sum: 32-bit big-endian words added with end-around carry."""
    total = int(np.frombuffer(data, ">u4").sum(dtype=np.uint64)) + start
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


_EXCLUDE = b":;<=>?@[\\]^_`"


def encode_checksum(value: int) -> str:
    """The 16-character ASCII encoding of a 32-bit checksum (FITS checksum convention)."""
    asc = [0] * 16
    for i in range(4):
        byte = (value >> (24 - 8 * i)) & 0xFF
        quotient, remainder = byte // 4 + ord("0"), byte % 4
        ch = [quotient + remainder, quotient, quotient, quotient]
        changed = True
        while changed:
            changed = False
            for j in (0, 2):
                while ch[j] in _EXCLUDE or ch[j + 1] in _EXCLUDE:
                    ch[j] += 1
                    ch[j + 1] -= 1
                    changed = True
        for j in range(4):
            asc[4 * j + i] = ch[j]
    return bytes(asc[15:] + asc[:15]).decode("ascii")


_BITPIX = {np.dtype(np.float32): -32, np.dtype(np.float64): -64, np.dtype(np.int16): 16,
           np.dtype(np.int32): 32, np.dtype(np.uint8): 8}
_STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT",
               "EXTEND", "CHECKSUM", "DATASUM", "END"}


def _image_bytes(data: np.ndarray, header: fits.Header) -> bytes | None:
    """An IMAGE extension (header and data, with CHECKSUM and DATASUM) as astropy writes
    it; None where ``data`` is not a plain 2-D array or the header asks for scaling."""
    bitpix = _BITPIX.get(data.dtype.newbyteorder("="))
    if bitpix is None or data.ndim != 2 or "BZERO" in header or "BSCALE" in header:
        return None
    ny, nx = data.shape
    cards = [card("XTENSION", "IMAGE", "Image extension"),
             card("BITPIX", bitpix, "array data type"),
             card("NAXIS", 2, "number of array dimensions"),
             card("NAXIS1", nx), card("NAXIS2", ny),
             card("PCOUNT", 0, "number of parameters"),
             card("GCOUNT", 1, "number of groups")]
    cards += [c.image for c in header.cards if c.keyword not in _STRUCTURAL]
    return _hdu_bytes(cards, data.astype(data.dtype.newbyteorder(">"), copy=False).tobytes())


def _hdu_bytes(cards: Sequence[str], data: bytes) -> bytes:
    """Header cards + data of an extension, padded, with its CHECKSUM and DATASUM."""
    data = _pad(data, b"\0")
    datasum = ones_complement_sum(data)
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    blank = card("CHECKSUM", "0" * 16, f"HDU checksum updated {when}")
    tail = [blank, card("DATASUM", str(datasum), f"data unit checksum updated {when}"),
            "END".ljust(80)]
    head = _pad("".join([*cards, *tail]).encode("ascii"), b" ")
    checksum = encode_checksum(~ones_complement_sum(head, datasum) & 0xFFFFFFFF)
    return head.replace(blank.encode(), card("CHECKSUM", checksum,
                                             f"HDU checksum updated {when}").encode(), 1) + data


def _bintable_bytes(table: Table, cards: Sequence[tuple[str, object]]) -> bytes | None:
    """A BINTABLE HDU (header and data, with CHECKSUM and DATASUM) of ``table``'s plain
    numeric columns, units from :data:`CATALOGUE_UNITS`; None where a column is not plain."""
    if table.meta or table.masked:
        return None
    columns = []
    for name in table.colnames:
        col = table[name]
        if getattr(col, "mask", None) is not None or col.ndim != 1:
            return None
        form = _TFORM.get(col.dtype.newbyteorder("="))
        if form is None:
            return None
        columns.append((name, form, col))
    rec = np.empty(len(table), dtype=[(n, col.dtype.newbyteorder(">")) for n, _, col in columns])
    for name, _, col in columns:
        rec[name] = col
    header = [card("XTENSION", "BINTABLE", "binary table extension"),
              card("BITPIX", 8, "array data type"),
              card("NAXIS", 2, "number of array dimensions"),
              card("NAXIS1", rec.dtype.itemsize, "length of dimension 1"),
              card("NAXIS2", len(rec), "length of dimension 2"),
              card("PCOUNT", 0, "number of group parameters"),
              card("GCOUNT", 1, "number of groups"),
              card("TFIELDS", len(columns), "number of table fields")]
    for i, (name, form, _) in enumerate(columns, start=1):
        header += [card(f"TTYPE{i}", name), card(f"TFORM{i}", form)]
        if unit := _unit(name):
            header.append(card(f"TUNIT{i}", unit))
    header += [card(key, value) for key, value in cards]
    return _hdu_bytes(header, rec.tobytes())

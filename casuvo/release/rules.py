# SPDX-License-Identifier: BSD-3-Clause
"""The ESO SDP keyword rules of one file, per product category: :func:`check_file`.

The rules are those of the SDP standard (v8 keyword table) and of ESO's
published Phase 3 check list, as summarised in casuvo's format reference:
mandatory keywords per category and HDU, allowed values, and consistency
(MJD-END ≥ MJD-OBS, EXPTIME ≤ TEXPTIME, the position inside the footprint,
TELAPSE and TMID of a spectrum against its MJDs, …).  Each failure is a
:class:`Problem` naming the file, the HDU and the keyword, so that an
operator can act on it.  No database, no network: the batch checks across
files (provenance, checksums of the manifest, fitsverify) are
:mod:`casuvo.release.validate`'s.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits

__all__ = ["CATEGORIES", "Problem", "check_file", "check_hdul", "inside_footprint", "iter_prov"]

#: Categories casuvo releases (and validates).
CATEGORIES = ("SCIENCE.MEFIMAGE", "SCIENCE.IMAGE", "ANCILLARY.WEIGHTMAP", "SCIENCE.SRCTBL",
              "SCIENCE.CATALOG", "SCIENCE.SPECTRUM")

#: Primary keywords of every SCIENCE.* file (check list, "SCIENCE.* always needs").
SCIENCE_PRIMARY = ("ORIGIN", "OBSTECH", "DATE", "MJD-OBS", "MJD-END", "PROCSOFT", "REFERENC",
                   "TELESCOP", "INSTRUME", "PROG_ID", "OBJECT", "PRODLVL")
#: Category → further mandatory primary keywords.
PRIMARY = {
    "SCIENCE.MEFIMAGE": ("FILTER", "RA", "DEC", "RADESYS", "EXPTIME", "TEXPTIME", "NCOMBINE",
                         "OBID1", "FLUXCAL", "PROV1", "ASSON1"),
    "SCIENCE.IMAGE": ("FILTER", "RA", "DEC", "RADESYS", "EXPTIME", "TEXPTIME", "NCOMBINE",
                      "OBID1", "FLUXCAL", "PROV1", "ASSON1", "BUNIT", "PHOTZP", "PHOTSYS",
                      "ABMAGLIM", "ABMAGSAT", "PSF_FWHM", "ELLIPTIC", "CTYPE1", "CTYPE2",
                      "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1",
                      "CD2_2", "CUNIT1", "CUNIT2"),
    "ANCILLARY.WEIGHTMAP": (),
    "SCIENCE.SRCTBL": ("FILTER", "RA", "DEC", "RADESYS", "OBID1", "NCOMBINE", "EXPTIME",
                       "TEXPTIME", "PROV1"),
    "SCIENCE.CATALOG": ("FILTER", "PHOTSYS", "PROV1", "OBID1"),
    "SCIENCE.SPECTRUM": ("SPECSYS", "FLUXCAL", "RA", "DEC", "RADESYS", "WAVELMIN", "WAVELMAX",
                         "SPEC_BIN", "FLUXERR", "EXPTIME", "TEXPTIME", "SNR", "SPEC_RES",
                         "TOT_FLUX", "CONTNORM", "EXT_OBJ", "NCOMBINE", "OBID1", "PROV1"),
}
#: Category → mandatory keywords of each extension.
EXTENSION = {
    "SCIENCE.MEFIMAGE": ("EXTNAME", "BUNIT", "PHOTZP", "PHOTSYS", "ABMAGLIM", "ABMAGSAT",
                         "PSF_FWHM", "ELLIPTIC", "CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2",
                         "CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2", "CUNIT1",
                         "CUNIT2"),
    "SCIENCE.SRCTBL": ("EXTNAME", "PHOTSYS", "ABMAGLIM", "ABMAGSAT", "PSF_FWHM", "ELLIPTIC"),
    "SCIENCE.CATALOG": ("EXTNAME", "TFIELDS"),
    "SCIENCE.SPECTRUM": ("EXTNAME", "OBJECT", "RA", "DEC", "NELEM", "VOCLASS", "VOPUB", "TITLE",
                         "APERTURE", "TELAPSE", "TMID", "SPEC_VAL", "SPEC_BW", "TDMIN1",
                         "TDMAX1", "TUTYP1", "TUTYP2", "TUTYP3", "TUCD1", "TUCD2", "TUCD3",
                         "TUNIT1", "TUNIT2", "TUNIT3"),
    "ANCILLARY.WEIGHTMAP": ("EXTNAME",),
}
ALLOWED = {
    "RADESYS": {"ICRS", "FK5"},
    "PHOTSYS": {"VEGA", "AB"},
    "FLUXCAL": {"ABSOLUTE", "UNCALIBRATED"},
    "SPECSYS": {"BARYCENT", "TOPOCENT", "HELIOCEN", "LSRK", "GEOCENTR"},
}
_REFERENC = re.compile(r"^(|\d{4}[A-Za-z&.]{5}[\w.]{4}[\w.]{4}[A-Z.]|10\.\d{4,9}/\S+)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_TTYPE = re.compile(r"^[A-Za-z][A-Za-z_0-9]*$")
_SQL_RESERVED = {"select", "from", "where", "order", "group", "by", "table", "index", "and",
                 "or", "not", "null", "join", "union", "distinct", "as", "in", "is", "like",
                 "between", "case", "when", "then", "else", "end", "key", "values", "user"}
MJD_UNIX_EPOCH = 40587.0


@dataclass(frozen=True)
class Problem:
    """One failed rule: which file, HDU (None: the file), keyword, and what is wrong."""

    file: str
    hdu: int | None
    keyword: str | None
    message: str

    def sort_key(self) -> tuple[str, int, str, str]:
        """File, HDU (the file first), keyword, message."""
        return (self.file, -1 if self.hdu is None else self.hdu, self.keyword or "",
                self.message)

    def __str__(self) -> str:
        where = self.file + (f"[{self.hdu}]" if self.hdu is not None else "")
        return f"{where} {self.keyword}: {self.message}" if self.keyword else \
            f"{where}: {self.message}"


def _num(header: fits.Header, key: str) -> float | None:
    try:
        value = header[key]
    except KeyError:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return None
    return float(value)


class _Checker:
    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[Problem] = []

    def add(self, hdu: int | None, keyword: str | None, message: str) -> None:
        self.problems.append(Problem(self.name, hdu, keyword, message))

    def require(self, header: fits.Header, hdu: int, keys: Iterable[str]) -> None:
        for key in keys:
            if key not in header:
                self.add(hdu, key, "mandatory keyword missing")
            elif header[key] is None or (isinstance(header[key], str) and key not in (
                    "REFERENC", "BUNIT", "TUNIT1", "TUNIT2", "TUNIT3", "TUTYP1", "TUTYP2",
                    "TUTYP3") and not header[key].strip()):
                self.add(hdu, key, "mandatory keyword is empty")

    def allowed(self, header: fits.Header, hdu: int) -> None:
        for key, values in ALLOWED.items():
            if key in header and str(header[key]).strip() not in values:
                self.add(hdu, key, f"{header[key]!r} is not one of {sorted(values)}")


def check_file(path: str, hdul: fits.HDUList | None = None) -> list[Problem]:
    """Every rule of the file's category (from its PRODCATG) on the file at ``path``."""
    from pathlib import Path

    name = Path(path).name
    if hdul is not None:
        return check_hdul(name, hdul)
    try:
        with fits.open(path, memmap=True, do_not_scale_image_data=True) as opened:
            return check_hdul(name, opened)
    except (OSError, ValueError) as exc:
        return [Problem(name, None, None, f"not a readable FITS file: {exc}")]


def check_hdul(name: str, hdul: fits.HDUList) -> list[Problem]:
    """The rules on an open file named ``name``."""
    c = _Checker(name)
    primary = hdul[0].header
    if len(name) > 68:
        c.add(None, None, f"file name longer than 68 characters ({len(name)})")
    category = str(primary.get("PRODCATG", "")).strip()
    if not category:
        c.add(0, "PRODCATG", "mandatory keyword missing: the product category")
        return c.problems
    if category not in CATEGORIES:
        c.add(0, "PRODCATG", f"{category!r} is not a category casuvo releases "
                             f"({', '.join(CATEGORIES)})")
        return c.problems
    _generic(c, hdul, category)
    if category.startswith("SCIENCE."):
        c.require(primary, 0, SCIENCE_PRIMARY)
        _times(c, primary)
        _origin(c, primary, category)
    c.require(primary, 0, PRIMARY[category])
    c.allowed(primary, 0)
    for i, hdu in enumerate(hdul[1:], start=1):
        c.require(hdu.header, i, EXTENSION.get(category, ("EXTNAME",)))
        c.allowed(hdu.header, i)
    {"SCIENCE.MEFIMAGE": _mefimage, "SCIENCE.IMAGE": _image, "ANCILLARY.WEIGHTMAP": _weight,
     "SCIENCE.SRCTBL": _srctbl, "SCIENCE.CATALOG": _catalog,
     "SCIENCE.SPECTRUM": _spectrum}[category](c, hdul)
    return c.problems


def _generic(c: _Checker, hdul: fits.HDUList, category: str) -> None:
    """File-level rules: checksums, reserved and forbidden keywords, duplicates."""
    names: set[str] = set()
    for i, hdu in enumerate(hdul):
        header = hdu.header
        for key in ("CHECKSUM", "DATASUM"):
            if key not in header:
                c.add(i, key, "mandatory in every HDU")
        if "CHECKSUM" in header and hdu.verify_checksum() != 1:
            c.add(i, "CHECKSUM", "does not match the HDU (file changed or corrupted)")
        if "DATASUM" in header and hdu.verify_datasum() != 1:
            c.add(i, "DATASUM", "does not match the data (file changed or corrupted)")
        seen: set[str] = set()
        for card in header.cards:
            key = card.keyword
            if key in ("COMMENT", "HISTORY", ""):
                continue
            if key == "CONTINUE" and category.startswith("SCIENCE."):
                c.add(i, key, "long-string (CONTINUE) cards are not allowed")
            if key in seen:
                c.add(i, key, "keyword appears more than once")
            seen.add(key)
        if "LONGSTRN" in header and category.startswith("SCIENCE."):
            c.add(i, "LONGSTRN", "long-string convention is not allowed")
        for key in header:
            if re.match(r"^(PROV|OBID)0", key):
                c.add(i, key, "zero-padded index not allowed (PROV1, OBID1, …)")
            if re.match(r"^CDELT\d$", key) and "CTYPE1" in header:
                c.add(i, key, "CDELTi not allowed: use the CDi_j matrix")
            if re.match(r"^PC\d_\d$", key):
                c.add(i, key, "PCi_j not allowed: use the CDi_j matrix")
        if i > 0:
            for key in ("PRODCATG", "ORIGFILE"):
                if key in header:
                    c.add(i, key, "allowed in the primary HDU only")
            if "EXTNAME" in header:
                extname = str(header["EXTNAME"])
                if extname in names:
                    c.add(i, "EXTNAME", f"{extname!r} is not unique in the file")
                names.add(extname)
        if i > 0:
            for key in header:
                if re.match(r"^PROV\d+$", key):
                    c.add(i, key, "PROVi belongs in the primary HDU")
    for key, value in hdul[0].header.items():
        if re.match(r"^(PROV|ASSON)\d+$", key) and ("[" in str(value) or "/" in str(value)):
            c.add(0, key, f"{value!r}: a plain file name, without path or [extension]")


def _times(c: _Checker, h: fits.Header) -> None:
    start, end = _num(h, "MJD-OBS"), _num(h, "MJD-END")
    if start is not None and start < MJD_UNIX_EPOCH:
        c.add(0, "MJD-OBS", f"{start} is before 1970 (MJD {MJD_UNIX_EPOCH})")
    if start is not None and end is not None and end < start:
        c.add(0, "MJD-END", f"{end} is before MJD-OBS {start}")
    if end is not None and end > time.time() / 86400 + MJD_UNIX_EPOCH:
        c.add(0, "MJD-END", f"{end} is in the future")
    exptime, texptime = _num(h, "EXPTIME"), _num(h, "TEXPTIME")
    if exptime is not None and texptime is not None and exptime >= texptime + 0.01:
        c.add(0, "EXPTIME", f"{exptime} s exceeds TEXPTIME {texptime} s")
    if texptime is not None and start is not None and end is not None \
            and texptime > (end - start) * 86400 + 1:
        c.add(0, "TEXPTIME", f"{texptime} s is longer than MJD-END − MJD-OBS "
                             f"({(end - start) * 86400:.1f} s)")
    if "DATE" in h and not _DATE.match(str(h["DATE"])):
        c.add(0, "DATE", f"{h['DATE']!r} is not yyyy-mm-dd[Thh:mm:ss]")
    if "REFERENC" in h and not _REFERENC.match(str(h["REFERENC"]).strip()):
        c.add(0, "REFERENC", f"{h['REFERENC']!r} is neither a bibcode, a DOI nor empty")
    ncombine = h.get("NCOMBINE")
    if ncombine is not None and (not isinstance(ncombine, int) or isinstance(ncombine, bool)
                                 or ncombine < 1):
        c.add(0, "NCOMBINE", f"{ncombine!r} must be an integer > 0")
    for key in h:
        if re.match(r"^OBID\d+$", key) and not isinstance(h[key], int):
            c.add(0, key, f"{h[key]!r} must be an integer OB id")
    if str(h.get("RADESYS", "")).strip() == "FK5" and _num(h, "EQUINOX") != 2000.0:
        c.add(0, "EQUINOX", "RADESYS FK5 needs EQUINOX = 2000.0")


def _origin(c: _Checker, h: fits.Header, category: str) -> None:
    origin = str(h.get("ORIGIN", "")).strip()
    if origin and not origin.startswith("ESO") and h.get("NOESODAT") is not True:
        c.add(0, "NOESODAT", f"ORIGIN {origin!r} is not an ESO facility: NOESODAT = T needed")
    instrument = str(h.get("INSTRUME", "")).strip()
    if instrument == "OMEGACAM":
        if str(h.get("TELESCOP", "")).strip() != "ESO-VST":
            c.add(0, "TELESCOP", "OmegaCAM products must say 'ESO-VST'")
        if origin != "ESO-PARANAL":
            c.add(0, "ORIGIN", "OmegaCAM products must say 'ESO-PARANAL'")
    if instrument in ("VIRCAM", "OMEGACAM") and category != "SCIENCE.CATALOG":
        allowed = {"IMAGE,JITTER", "IMAGE,OFFSET", "IMAGE,STARE", "IMAGE,DITHER"}
        if str(h.get("OBSTECH", "")).strip() not in allowed:
            c.add(0, "OBSTECH", f"{h.get('OBSTECH')!r} is not one of {sorted(allowed)}")


def _photometry(c: _Checker, h: fits.Header, hdu: int) -> float | None:
    """PSF_FWHM (>0 or −1), ABMAGLIM in [0, 99] above ABMAGSAT; returns PSF_FWHM."""
    lim, sat = _num(h, "ABMAGLIM"), _num(h, "ABMAGSAT")
    if lim is not None and not 0 <= lim <= 99:
        c.add(hdu, "ABMAGLIM", f"{lim} is outside [0, 99]")
    if lim is not None and sat is not None and lim <= sat:
        c.add(hdu, "ABMAGLIM", f"{lim} is not fainter than ABMAGSAT {sat}")
    fwhm = _num(h, "PSF_FWHM")
    if fwhm is not None and not (fwhm > 0 or fwhm == -1):
        c.add(hdu, "PSF_FWHM", f"{fwhm} must be > 0 (or −1: unknown)")
    return fwhm


def _image_bounds(header: fits.Header) -> Any:
    from astropy.wcs import WCS

    return WCS(header), int(header.get("NAXIS1", 0)), int(header.get("NAXIS2", 0))


def inside_footprint(headers: Sequence[fits.Header], ra: float, dec: float) -> bool:
    """Whether (ra, dec) lies in the area the images cover together: for one
    image, on it; for a MEF pawprint, within the outline of its detectors
    (its centre may fall in a gap between them), measured in the first
    image's pixel frame."""
    import warnings

    if not headers:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame, _, _ = _image_bounds(headers[0])
        xs, ys = [], []
        for header in headers:
            wcs, nx, ny = _image_bounds(header)
            corners = wcs.all_pix2world([[-0.5, -0.5], [nx - 0.5, -0.5], [nx - 0.5, ny - 0.5],
                                         [-0.5, ny - 0.5]], 0)
            px = frame.all_world2pix(corners, 0, quiet=True)
            xs.extend(px[:, 0])
            ys.extend(px[:, 1])
        x, y = frame.all_world2pix([[ra, dec]], 0, quiet=True)[0]
    return bool(min(xs) <= x <= max(xs) and min(ys) <= y <= max(ys))


def _position(c: _Checker, hdul: fits.HDUList, image_hdus: list[int]) -> None:
    ra, dec = _num(hdul[0].header, "RA"), _num(hdul[0].header, "DEC")
    if ra is None or dec is None or not image_hdus:
        return
    headers = [hdul[i].header for i in image_hdus]
    if not inside_footprint(headers, ra, dec):
        c.add(0, "RA", f"RA/DEC ({ra:.6f}, {dec:.6f}) lie outside the image footprint")


def _mefimage(c: _Checker, hdul: fits.HDUList) -> None:
    if hdul[0].header.get("NAXIS", 0) != 0:
        c.add(0, "NAXIS", "a MEF image has no data in its primary HDU (NAXIS = 0)")
    fwhms = []
    for i, hdu in enumerate(hdul[1:], start=1):
        if hdu.header.get("NAXIS") != 2:
            c.add(i, "NAXIS", "every extension of a MEF image is a 2-D image")
        fwhms.append(_photometry(c, hdu.header, i))
    if fwhms and all(f == -1 for f in fwhms):
        c.add(None, "PSF_FWHM", "−1 (unknown) in every extension")
    _instrument_image(c, hdul[0].header)
    _position(c, hdul, list(range(1, len(hdul))))


def _instrument_image(c: _Checker, h: fits.Header) -> None:
    instrument = str(h.get("INSTRUME", "")).strip()
    if instrument in ("VIRCAM", "OMEGACAM"):
        c.require(h, 0, ("DIT",))
    if instrument == "VIRCAM":
        c.require(h, 0, ("NJITTER", "NOFFSETS", "NUSTEP", "NDIT"))


def _image(c: _Checker, hdul: fits.HDUList) -> None:
    h = hdul[0].header
    if h.get("NAXIS") != 2:
        c.add(0, "NAXIS", "a simple SCIENCE.IMAGE holds its image in the primary HDU")
        return
    fwhm = _photometry(c, h, 0)
    if fwhm is not None and fwhm <= 0:
        c.add(0, "PSF_FWHM", f"{fwhm}: a simple image needs its measured PSF FWHM (> 0)")
    if str(h.get("CUNIT1", "")).strip() != "deg" or str(h.get("CUNIT2", "")).strip() != "deg":
        c.add(0, "CUNIT1", "CUNITi must be 'deg'")
    _instrument_image(c, h)
    _position(c, hdul, [0])


def _weight(c: _Checker, hdul: fits.HDUList) -> None:
    images = [i for i, hdu in enumerate(hdul) if hdu.header.get("NAXIS") == 2]
    if not images:
        c.add(None, "NAXIS", "a weight map holds at least one 2-D image")


def _srctbl(c: _Checker, hdul: fits.HDUList) -> None:
    h = hdul[0].header
    if any(re.match(r"^FILTER\d+$", k) for k in h):
        c.add(0, "FILTER1", "a source list is single-band: FILTERi not allowed")
    for i, hdu in enumerate(hdul[1:], start=1):
        if hdu.header.get("XTENSION") != "BINTABLE":
            c.add(i, "XTENSION", "source lists are binary tables")
        _photometry(c, hdu.header, i)


def _catalog(c: _Checker, hdul: fits.HDUList) -> None:
    h = hdul[0].header
    if h.get("NAXIS", 0) != 0:
        c.add(0, "NAXIS", "a catalogue's primary HDU has no data")
    if "EXTNAME" in h:
        c.add(0, "EXTNAME", "not allowed in a catalogue's primary HDU")
    bands = sorted(k for k in h if re.match(r"^FILTER\d+$", k))
    if str(h.get("FILTER", "")).strip() == "MULTI":
        if len(bands) < 2:
            c.add(0, "FILTER1", "FILTER = 'MULTI' needs FILTER1, FILTER2, …")
        for key in bands:
            if f"MAGLIM{key[6:]}" not in h:
                c.add(0, f"MAGLIM{key[6:]}", f"limiting magnitude of {key} missing")
    elif "ABMAGLIM" not in h:
        c.add(0, "ABMAGLIM", "a single-band catalogue needs ABMAGLIM")
    if len(hdul) < 2:
        c.add(None, None, "no catalogue table (extension 1)")
        return
    t = hdul[1].header
    if str(t.get("EXTNAME", "")).strip() != "PHASE3CATALOG":
        c.add(1, "EXTNAME", f"{t.get('EXTNAME')!r}: the catalogue table is 'PHASE3CATALOG'")
    for key in ("EXTVER", "EXTLEVEL"):
        if key in t:
            c.add(1, key, "not allowed in a catalogue")
    n = int(t.get("TFIELDS", 0))
    names: set[str] = set()
    main_id = []
    for i in range(1, n + 1):
        ttype = str(t.get(f"TTYPE{i}", ""))
        if not _TTYPE.match(ttype):
            c.add(1, f"TTYPE{i}", f"{ttype!r} is not a valid column name")
        if ttype.lower() in _SQL_RESERVED:
            c.add(1, f"TTYPE{i}", f"{ttype!r} is an SQL reserved word")
        if ttype.lower() in names:
            c.add(1, f"TTYPE{i}", f"{ttype!r} repeats another column's name")
        names.add(ttype.lower())
        for key in (f"TZERO{i}", f"TSCAL{i}"):
            if key in t:
                c.add(1, key, "not allowed in a catalogue")
        if not str(t.get(f"TCOMM{i}", "")).strip():
            c.add(1, f"TCOMM{i}", f"column {ttype}: description missing")
        ucd = str(t.get(f"TUCD{i}", "")).strip()
        if not ucd:
            c.add(1, f"TUCD{i}", f"column {ttype}: UCD missing")
        if f"TUNIT{i}" not in t:
            c.add(1, f"TUNIT{i}", f"column {ttype}: unit missing ('' for none)")
        if ucd == "meta.id;meta.main":
            main_id.append(i)
        if ucd in ("pos.eq.ra;meta.main", "pos.eq.dec;meta.main") and \
                str(t.get(f"TUNIT{i}", "")).strip() != "deg":
            c.add(1, f"TUNIT{i}", f"main position column {ttype} must be in 'deg'")
    if len(main_id) != 1:
        c.add(1, "TUCD", f"exactly one column must have UCD 'meta.id;meta.main' "
                         f"(found {len(main_id)})")
    else:
        column = hdul[1].data.field(main_id[0] - 1)
        if np.ma.is_masked(column) or (np.issubdtype(column.dtype, np.floating)
                                       and not np.isfinite(column).all()):
            c.add(1, f"TTYPE{main_id[0]}", "the main identifier has null values")
    ucds = {str(t.get(f"TUCD{i}", "")).strip() for i in range(1, n + 1)}
    for needed in ("pos.eq.ra;meta.main", "pos.eq.dec;meta.main"):
        if needed not in ucds:
            c.add(1, "TUCD", f"no column with UCD {needed!r}")


def _spectrum(c: _Checker, hdul: fits.HDUList) -> None:
    h = hdul[0].header
    if h.get("NAXIS", 0) != 0:
        c.add(0, "NAXIS", "a spectrum's primary HDU has no data")
    for i, hdu in enumerate(hdul):
        if "BUNIT" in hdu.header:
            c.add(i, "BUNIT", "not allowed in a SCIENCE.SPECTRUM")
    if "CD1_1" in h:
        c.add(0, "CD1_1", "not allowed in a spectrum's primary HDU")
    if len(hdul) < 2 or hdul[1].header.get("XTENSION") != "BINTABLE":
        c.add(1, "XTENSION", "the spectrum is a binary table in extension 1")
        return
    t, data = hdul[1].header, hdul[1].data
    if t.get("NAXIS2") != 1:
        c.add(1, "NAXIS2", f"{t.get('NAXIS2')}: a spectrum table has exactly one row")
        return
    if str(t.get("TTYPE1", "")).upper() not in ("WAVE", "FREQ", "ENER"):
        c.add(1, "TTYPE1", f"{t.get('TTYPE1')!r}: the first column is WAVE, FREQ or ENER")
    if not str(t.get("TTYPE2", "")).upper().startswith("FLUX"):
        c.add(1, "TTYPE2", f"{t.get('TTYPE2')!r}: the second column is a FLUX")
    if not str(t.get("TTYPE3", "")).upper().startswith("ERR"):
        c.add(1, "TTYPE3", f"{t.get('TTYPE3')!r}: the third column is its ERR")
    if t.get("TUNIT2") != t.get("TUNIT3"):
        c.add(1, "TUNIT3", "flux and error have different units (TUNIT2 ≠ TUNIT3)")
    forms = {t.get(f"TFORM{i}") for i in range(1, 4)}
    if len(forms) != 1:
        c.add(1, "TFORM1", f"the array columns differ in length ({sorted(map(str, forms))})")
    wave = np.asarray(data.field(0)[0], dtype=float)
    if t.get("NELEM") != wave.size:
        c.add(1, "NELEM", f"{t.get('NELEM')} ≠ {wave.size} wavelengths")
    if wave.size < 2 or not np.all(np.diff(wave) > 0):
        c.add(1, "TTYPE1", "wavelengths are not strictly increasing")
        return
    if not np.isfinite(wave).all():
        c.add(1, "TTYPE1", "infinite or NaN wavelengths")
    for i in range(2, 4):
        values = np.asarray(data.field(i - 1)[0], dtype=float)
        if np.isinf(values).any():
            c.add(1, f"TTYPE{i}", "infinite values")
    to_nm = {"angstrom": 0.1, "nm": 1.0, "um": 1000.0}.get(str(t.get("TUNIT1", "")).lower())
    if to_nm is None:
        c.add(1, "TUNIT1", f"{t.get('TUNIT1')!r}: wavelengths in angstrom, nm or um")
        return
    step = float(np.median(np.diff(wave)))
    lo, hi = wave[0] * to_nm, wave[-1] * to_nm
    wmin, wmax = _num(h, "WAVELMIN"), _num(h, "WAVELMAX")
    half = step * to_nm / 2 + 1e-6
    if wmin is not None and abs(wmin - lo) > half:
        c.add(0, "WAVELMIN", f"{wmin} nm ≠ first wavelength {lo:.4f} nm")
    if wmax is not None and abs(wmax - hi) > half:
        c.add(0, "WAVELMAX", f"{wmax} nm ≠ last wavelength {hi:.4f} nm")
    spec_bin = _num(h, "SPEC_BIN")
    if spec_bin is not None and not 0.5 * step * to_nm <= spec_bin <= 1.5 * step * to_nm:
        c.add(0, "SPEC_BIN", f"{spec_bin} nm is not within 0.5–1.5 × the median bin "
                             f"({step * to_nm:.5f} nm)")
    for key, first in (("TDMIN1", wave[0]), ("TDMAX1", wave[-1])):
        value = _num(t, key)
        if value is not None and abs(value - first) > step / 2 + 1e-9:
            c.add(1, key, f"{value} ≠ {first} (first/last wavelength)")
    if wmin is not None and wmax is not None:
        for key, expected in (("SPEC_VAL", (wmin + wmax) / 2), ("SPEC_BW", wmax - wmin)):
            value = _num(t, key)
            if value is not None and abs(value - expected) > 1e-3:
                c.add(1, key, f"{value} ≠ {expected:.4f} nm")
    start, end = _num(h, "MJD-OBS"), _num(h, "MJD-END")
    if start is not None and end is not None:
        telapse, tmid = _num(t, "TELAPSE"), _num(t, "TMID")
        if telapse is not None and abs(telapse - (end - start) * 86400) > 0.1:
            c.add(1, "TELAPSE", f"{telapse} s ≠ (MJD-END − MJD-OBS) = "
                                f"{(end - start) * 86400:.1f} s")
        if tmid is not None and abs(tmid - (start + end) / 2) > 1e-4:
            c.add(1, "TMID", f"{tmid} ≠ (MJD-OBS + MJD-END)/2")
    for key in ("OBJECT", "RA", "DEC"):
        if key in h and key in t:
            a, b = h[key], t[key]
            same = abs(float(a) - float(b)) <= 1e-7 if key != "OBJECT" else a == b
            if not same:
                c.add(1, key, f"{b!r} differs from the primary HDU's {a!r}")
    aperture = _num(t, "APERTURE")
    if aperture is not None and not 0 < aperture < 0.1:
        c.add(1, "APERTURE", f"{aperture} deg is not within (0, 0.1)")
    fluxerr = _num(h, "FLUXERR")
    fluxcal = str(h.get("FLUXCAL", "")).strip()
    if fluxerr is not None and fluxcal == "UNCALIBRATED" and fluxerr != -1:
        c.add(0, "FLUXERR", "an uncalibrated spectrum has FLUXERR = −1")
    if h.get("TOT_FLUX") is True and fluxcal != "ABSOLUTE":
        c.add(0, "TOT_FLUX", "T requires FLUXCAL = 'ABSOLUTE'")
    if (_num(h, "SPEC_RES") or 0) <= 0:
        c.add(0, "SPEC_RES", "resolving power must be > 0")


def iter_prov(header: fits.Header) -> Iterator[tuple[str, str]]:
    """(keyword, file name) of every PROVi of a primary header, in order."""
    keys = sorted((k for k in header if re.match(r"^PROV\d+$", k)), key=lambda k: int(k[4:]))
    for key in keys:
        yield key, str(header[key]).strip()

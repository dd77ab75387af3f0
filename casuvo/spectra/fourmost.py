# SPDX-License-Identifier: BSD-3-Clause
"""4MOST files: raw exposures and per-OB files per arm (rows = fibres), and the L1
per-target spectrum in ESO Phase 3 form (CASU's QL1 template, corrected).

Facts followed (``formats-spectra.md`` §1 rows 9–10, §2.3): the per-target product is a
PRIMARY (``PRODCATG = 'SCIENCE.SPECTRUM'``, ``ORIGIN = 'ESO-PARANAL'``, ``TELESCOP =
'ESO-VISTA'``, ``INSTRUME = 'QMOST'``, ``OBID1``, ``NCOMBINE``, ``PROV1..3``, ``SPECSYS``,
``PROG_ID`` …) and a one-row BINTABLE ``PHASE3SPECTRUM`` with ``WAVE``, ``FLUX``,
``ERR_FLUX``, ``QUAL``, ``FLUX_NOSS``, ``ERR_FLUX_NOSS`` of ``NELEM`` = 23201 elements
(3700–9500 Å every 0.25 Å: the LRS arms joined), the FIBINFO-derived keywords and the
OB's S/N keywords (``MINSNR``, ``SPCMINSN``, ``FIBMINSN``, ``MAXSNR``, ``SPCMAXSN``,
``FIBMAXSN``, ``MEDSNR``); ``TUTYP``/``TUCD``/``TCOMM``/``TDMIN``/``TDMAX`` per column
without the template's defects (real ``VOCLASS``, ``meta.code.qual`` for QUAL, no
``stat.uncalib`` on an absolutely calibrated flux, parallax in mas); CHECKSUM/DATASUM.
Errors are 1σ (``ERR_FLUX``), never inverse variance.

File names (the demo's choice — the template gives only the per-arm provenance names
``qmost_<RAdec>_<YYYYMMDD>_<runid>_LR1/LG1/LB1.fits``, which this module reads as the
per-pointing files of one arm of the first LRS spectrograph):

* per-OB file of one arm: ``qmost_<RAdec>_<YYYYMMDD>_<run:07d>_<ARM>1.fits`` — RAdec
  the OB's pointing as ``HHMMSSss±DDMMSSs``, the night (evening date), the OB's first
  exposure's run; HDUs PRIMARY, ``FLUX``, ``ERR_FLUX``, ``QUAL``, ``FLUX_NOSS``,
  ``ERR_FLUX_NOSS`` (images, rows = fibres, linear wavelength WCS), ``FIBINFO``;
* raw exposure of one arm: ``QMOST.<DATE-OBS>_<ARM>.fits`` (ESO archive style) —
  PRIMARY, ``COUNTS`` (extracted counts, rows = fibres, sky included), ``FIBINFO``
  (:func:`write_raw`); the demo simulator's raw files keep the pipeline's input HDUs
  (``COUNTS``, ``VARIANCE``, its ``FIBINFO``) and get the ESO keywords from
  :func:`raw_hdus`;
* per-target product: ``qmost_<CNAME coordinates>_<YYYYMMDD>_<obid:07d>.fits``, one per
  target and OB; its ``PROV1..3`` name the OB's three per-arm files.

Arms: ``LB``, ``LG``, ``LR`` (blue, green, red).  Worker-safe: numpy and astropy only.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from casuvo.spectra.fitsread import (
    ProductFileError,
    card,
    open_product,
    records,
    table_hdu,
    write_product,
)
from casuvo.spectra.grid import Grid
from casuvo.spectra.products import OBData, ObjectData
from casuvo.spectra.spectrum import Spectrum

__all__ = [
    "ARMS",
    "FIBINFO_COLUMNS",
    "FLUX_UNIT",
    "JOINED",
    "NELEM",
    "OB_EXTENSIONS",
    "OBArmFile",
    "RawFile",
    "TargetFile",
    "identify",
    "join_arms",
    "night_of",
    "ob_file_name",
    "ob_snr_keywords",
    "qmost_cname",
    "raw_name",
    "read_ob_arm",
    "read_object",
    "read_raw",
    "read_target",
    "target_name",
    "targets_from_ob",
    "validate",
    "write_ob",
    "write_ob_arm",
    "write_object",
    "write_raw",
    "write_target",
]

#: The low-resolution arms, blue to red.
ARMS = ("LB", "LG", "LR")
#: The joined L1 axis: 3700–9500 Å at 0.25 Å (SPEC_BIN 0.025 nm).
JOINED = Grid.spanning(3700.0, 9500.0, 0.25)
NELEM = JOINED.naxis1
#: Flux unit of FLUX/ERR_FLUX (pipelines/fourmost/config.toml ``flux_unit``).
FLUX_UNIT = "1e-17 erg/(s cm2 Angstrom)"
_TUNIT_FLUX = "10**(-17) erg/(s.cm2.Angstrom)"   # FITS-standard unit string
#: QL1's average resolving power of the joined LRS spectrum (§1 row 10).
SPEC_RES = 4933.0
OB_EXTENSIONS = ("PRIMARY", "FLUX", "ERR_FLUX", "QUAL", "FLUX_NOSS", "ERR_FLUX_NOSS", "FIBINFO")
RAW_EXTENSIONS = ("PRIMARY", "COUNTS", "FIBINFO")
#: QUAL bits: 1 no data (outside the arms, or no valid error), 2 fibre disabled.
QUAL_NODATA, QUAL_DISABLED = 1, 2
#: Paranal (VISTA) longitude, for the evening date of a night.
_LONGITUDE = -70.3975

#: FIBINFO columns (name, FITS format, unit): §2.3's FIBINFO-derived keywords.
FIBINFO_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("NSPEC", "J", ""), ("FIB_ID", "J", ""), ("CNAME", "24A", ""), ("TRG_UID", "K", ""),
    ("TRG_NME", "32A", ""), ("TRG_CTID", "K", ""), ("TRG_RA", "D", "deg"),
    ("TRG_DEC", "D", "deg"), ("TRG_PMRA", "E", "mas/yr"), ("TRG_PMDE", "E", "mas/yr"),
    ("TRG_PRLX", "E", "mas"), ("TRG_EPOC", "E", "yr"), ("TRG_BIT", "K", ""),
    ("TRG_PRIO", "J", ""), ("FIB_PHI", "E", "deg"), ("FIB_THET", "E", "deg"),
    ("FIB_ST", "I", ""), ("FIB_USE", "I", ""), ("FIB_ROOT", "I", ""), ("SLIT_POS", "J", ""),
    ("TRG_BL", "E", "mag"), ("TRG_BLER", "E", "mag"), ("TRG_GR", "E", "mag"),
    ("TRG_GRER", "E", "mag"), ("TRG_RD", "E", "mag"), ("TRG_RDER", "E", "mag"),
    ("RMS_ARC", "E", "Angstrom"), ("HELIOCR", "E", "km/s"), ("WAVCR", "E", "Angstrom"),
    ("SKYLNOFF", "E", "Angstrom"), ("SKYSCALE", "E", ""), ("EXPTIME", "E", "s"),
    ("SNR", "E", ""), ("RESOL", "E", ""), ("TOT_FLX", "E", _TUNIT_FLUX),
    ("FLX_PIX", "E", _TUNIT_FLUX),
)
_FIBINFO_COMMENTS = {
    "NSPEC": "Spectrum number in the per-OB files", "FIB_ID": "Fibre id",
    "CNAME": "4MOST object name", "TRG_UID": "Unique target id", "TRG_NME": "Target name",
    "TRG_CTID": "Target id in its input catalogue", "TRG_RA": "[deg] Target RA (ICRS)",
    "TRG_DEC": "[deg] Target Dec (ICRS)", "TRG_PMRA": "[mas/yr] Proper motion in RA",
    "TRG_PMDE": "[mas/yr] Proper motion in Dec", "TRG_PRLX": "[mas] Parallax",
    "TRG_EPOC": "[yr] Epoch of the position", "TRG_BIT": "Survey and subsurvey bitmask",
    "TRG_PRIO": "Target priority", "FIB_PHI": "[deg] Fibre positioner phi",
    "FIB_THET": "[deg] Fibre positioner theta",
    "FIB_ST": "Fibre status: 0 disabled, 1 parked, 2 allocated",
    "FIB_USE": "Fibre use: 1 OBJ 2 REF 3 SKY 4 CAL 5/6 GUIDE", "FIB_ROOT": "1 LRSA, 2 LRSB, 3 HRS",
    "SLIT_POS": "Position along the slit", "TRG_BL": "[mag] Blue-arm magnitude",
    "TRG_BLER": "[mag] Error", "TRG_GR": "[mag] Green-arm magnitude", "TRG_GRER": "[mag] Error",
    "TRG_RD": "[mag] Red-arm magnitude", "TRG_RDER": "[mag] Error",
    "RMS_ARC": "[Angstrom] Arc fit rms", "HELIOCR": "[km/s] Heliocentric correction",
    "WAVCR": "[Angstrom] Wavelength correction", "SKYLNOFF": "[Angstrom] Sky line offset",
    "SKYSCALE": "Sky scaling", "EXPTIME": "[s] Total exposure time",
    "SNR": "Median S/N per pixel", "RESOL": "Resolving power",
    "TOT_FLX": "Total flux", "FLX_PIX": "Median flux per pixel",
}

#: PHASE3SPECTRUM columns: (name, utype, ucd, unit, comment).
_COLUMNS = (
    ("WAVE", "spec:Data.SpectralAxis.Value", "em.wl", "Angstrom",
     "Vacuum wavelength, heliocentric as SPECSYS states"),
    ("FLUX", "spec:Data.FluxAxis.Value", "phot.flux.density;em.wl;meta.main", _TUNIT_FLUX,
     "Flux, sky subtracted"),
    ("ERR_FLUX", "spec:Data.FluxAxis.Accuracy.StatError",
     "stat.error;phot.flux.density;em.wl", _TUNIT_FLUX, "1-sigma error of FLUX"),
    ("QUAL", "spec:Data.FluxAxis.Accuracy.QualityStatus", "meta.code.qual", "",
     "Quality: 0 good, 1 no data, 2 fibre disabled"),
    ("FLUX_NOSS", "eso:Data.FluxAxis.Value", "phot.flux.density;em.wl", _TUNIT_FLUX,
     "Flux, sky not subtracted"),
    ("ERR_FLUX_NOSS", "eso:Data.FluxAxis.Accuracy.StatError",
     "stat.error;phot.flux.density;em.wl", _TUNIT_FLUX, "1-sigma error of FLUX_NOSS"),
)
_SNR_KEYS = ("MINSNR", "SPCMINSN", "FIBMINSN", "MAXSNR", "SPCMAXSN", "FIBMAXSN", "MEDSNR")
_OB_REQUIRED = ("OBID", "RUN", "MJD-OBS", "EXPTIME", "RA", "DEC")
_COMMENTS = {
    "OBID": "Observing block id", "OBID1": "Observing block id", "RUN": "Run of the first exposure",
    "MJD-OBS": "[d] Start of the first exposure", "MJD-END": "[d] End of the last exposure",
    "EXPTIME": "[s] Total exposure time", "TEXPTIME": "[s] Total exposure time",
    "RA": "[deg] Pointing or target RA (ICRS)", "DEC": "[deg] Pointing or target Dec (ICRS)",
    "PROG_ID": "ESO programme id", "NCOMBINE": "Number of exposures combined",
    "MINSNR": "Lowest median S/N of the OB's targets", "SPCMINSN": "NSPEC of MINSNR",
    "FIBMINSN": "Fibre of MINSNR", "MAXSNR": "Highest median S/N of the OB's targets",
    "SPCMAXSN": "NSPEC of MAXSNR", "FIBMAXSN": "Fibre of MAXSNR",
    "MEDSNR": "Median of the OB's target S/N", "ARM": "LRS arm (LB blue, LG green, LR red)",
    "NIGHT": "Evening date of the night (YYYYMMDD)",
}


def qmost_cname(ra: float, dec: float) -> str:
    """4MOST object name: ``QMOST`` + ``HHMMSSss±DDMMSSs`` (coordinates truncated)."""
    return "QMOST" + _radec(ra, dec)


def _radec(ra: float, dec: float) -> str:
    hours = (ra % 360.0) / 15.0
    hh = int(hours)
    mm = int((hours - hh) * 60)
    ss = int(round(((hours - hh) * 60 - mm) * 60 * 100, 6))
    d = abs(dec)
    dd = int(d)
    dm = int((d - dd) * 60)
    ds = int(round(((d - dd) * 60 - dm) * 60 * 10, 6))
    return f"{hh:02d}{mm:02d}{ss:04d}{'-' if dec < 0 else '+'}{dd:02d}{dm:02d}{ds:03d}"


def night_of(mjd: float) -> int:
    """The evening date (YYYYMMDD) of the Paranal night holding ``mjd`` (UTC)."""
    local = mjd + _LONGITUDE / 360.0 - 0.5   # local solar time, minus 12 h
    z = int(math.floor(local)) + 2400001      # Julian day number of the date
    a = z + 32044
    b = (4 * a + 3) // 146097
    c = a - 146097 * b // 4
    d = (4 * c + 3) // 1461
    e = c - 1461 * d // 4
    m = (5 * e + 2) // 153
    day = e - (153 * m + 2) // 5 + 1
    month = m + 3 - 12 * (m // 10)
    year = 100 * b + d - 4800 + m // 10
    return year * 10000 + month * 100 + day


def ob_file_name(header: Mapping[str, Any], arm: str) -> str:
    """``qmost_<RAdec>_<YYYYMMDD>_<run:07d>_<ARM>1.fits`` of an OB's arm."""
    night = int(header.get("NIGHT") or night_of(float(header["MJD-OBS"])))
    return (f"qmost_{_radec(float(header['RA']), float(header['DEC']))}_{night}_"
            f"{int(header['RUN']):07d}_{arm}1.fits")


def raw_name(header: Mapping[str, Any], arm: str) -> str:
    """``QMOST.<DATE-OBS>_<ARM>.fits`` of an exposure's arm (ESO archive style)."""
    return f"QMOST.{header['DATE-OBS']}_{arm}.fits"


def target_name(cname: str, night: int, obid: int) -> str:
    """``qmost_<coordinates>_<YYYYMMDD>_<obid:07d>.fits`` of one target in one OB."""
    coords = cname.strip()
    coords = coords[5:] if coords.startswith("QMOST") else coords
    return f"qmost_{coords}_{int(night)}_{int(obid):07d}.fits"


@dataclass
class OBArmFile:
    """One arm of one OB: the stacked spectra, rows = fibres in NSPEC order (σ errors)."""

    arm: str
    header: dict[str, Any]
    grid: Grid
    flux: np.ndarray
    err: np.ndarray
    flux_noss: np.ndarray
    err_noss: np.ndarray
    qual: np.ndarray
    fibinfo: Any

    @property
    def name(self) -> str:
        return ob_file_name(self.header, self.arm)


@dataclass
class RawFile:
    """One arm of one exposure: extracted counts (adu), rows = fibres, sky included."""

    arm: str
    header: dict[str, Any]
    grid: Grid
    counts: np.ndarray
    fibinfo: Any

    @property
    def name(self) -> str:
        return raw_name(self.header, self.arm)


@dataclass
class TargetFile:
    """One target in one OB: the joined spectrum on :data:`JOINED` and its keywords."""

    cname: str
    primary: dict[str, Any]
    extension: dict[str, Any]
    flux: np.ndarray
    err: np.ndarray
    qual: np.ndarray
    flux_noss: np.ndarray
    err_noss: np.ndarray
    wave: np.ndarray = field(default_factory=lambda: JOINED.wave)

    @property
    def name(self) -> str:
        return target_name(self.cname, int(self.primary["NIGHT"]), int(self.primary["OBID1"]))


# -- writing ---------------------------------------------------------------------------

def _header(keywords: Mapping[str, Any]) -> fits.Header:
    header = fits.Header()
    for key, value in keywords.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            continue
        header.append(card(key if len(key) <= 8 else f"HIERARCH {key}", value,
                           _COMMENTS.get(key, _FIBINFO_COMMENTS.get(key, ""))))
    return header


def _fibinfo(rows: Any, nspec: int, name: str) -> fits.BinTableHDU:
    """FIBINFO in the format's column order; absent columns get their null, a column
    the format lacks is refused (naming it)."""
    names = list(rows) if isinstance(rows, Mapping) else list(
        getattr(rows, "colnames", None) or rows.dtype.names)
    known = {c[0] for c in FIBINFO_COLUMNS}
    extra = [n for n in names if n.upper() not in known]
    if extra:
        raise ValueError(f"{name}: FIBINFO has no column {', '.join(extra)}")
    given = {n.upper(): n for n in names}
    columns = []
    for col, fmt, unit in FIBINFO_COLUMNS:
        if col in given:
            array = np.asarray(rows[given[col]])
        elif col == "NSPEC":
            array = np.arange(1, nspec + 1)
        elif fmt.endswith("A"):
            array = np.full(nspec, "", dtype="U1")
        elif fmt in ("J", "K", "I"):
            array = np.zeros(nspec, dtype=np.int64)
        else:
            array = np.full(nspec, np.nan)
        if len(array) != nspec:
            raise ValueError(f"{name}: FIBINFO column {col} has {len(array)} rows for "
                             f"{nspec} spectra")
        columns.append((col, fmt, unit, array))
    return table_hdu(columns, "FIBINFO")


def ob_snr_keywords(fibinfo: Any) -> dict[str, Any]:
    """The OB's S/N keywords from its FIBINFO: over allocated object fibres (FIB_USE 1,
    FIB_ST 2) with a finite SNR; empty when there is none."""
    snr = np.asarray(fibinfo["SNR"], dtype=np.float64)
    use = np.asarray(fibinfo["FIB_USE"]) == 1
    ok = use & (np.asarray(fibinfo["FIB_ST"]) == 2) & np.isfinite(snr)
    if not ok.any():
        return {}
    index = np.nonzero(ok)[0]
    lo, hi = index[np.argmin(snr[ok])], index[np.argmax(snr[ok])]
    nspec, fib = np.asarray(fibinfo["NSPEC"]), np.asarray(fibinfo["FIB_ID"])
    return {"MINSNR": round(float(snr[lo]), 3), "SPCMINSN": int(nspec[lo]),
            "FIBMINSN": int(fib[lo]), "MAXSNR": round(float(snr[hi]), 3),
            "SPCMAXSN": int(nspec[hi]), "FIBMAXSN": int(fib[hi]),
            "MEDSNR": round(float(np.median(snr[ok])), 3)}


def _target(path: Path | str, name: str) -> Path:
    path = Path(path)
    return path / name if path.is_dir() else path


def _missing(keywords: Mapping[str, Any], required: Sequence[str], name: str) -> None:
    missing = [k for k in required if k not in keywords]
    if missing:
        raise ValueError(f"{name}: keywords missing: {', '.join(missing)}")


def _base(keywords: Mapping[str, Any]) -> dict[str, Any]:
    return {"ORIGIN": "ESO-PARANAL", "TELESCOP": "ESO-VISTA", "INSTRUME": "QMOST",
            "RADESYS": "ICRS", "OBSTECH": "MOS", **keywords}


def write_ob_arm(path: Path | str, ob: OBArmFile) -> Path:
    """Write one arm of an OB (σ errors, rows = fibres); the S/N keywords are computed
    from FIBINFO's SNR."""
    if ob.arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, not {ob.arm!r}")
    _missing(ob.header, _OB_REQUIRED, f"{ob.arm} OB file")
    path = _target(path, ob.name)
    nspec, npix = np.shape(ob.flux)
    for label, array in (("ERR_FLUX", ob.err), ("FLUX_NOSS", ob.flux_noss),
                         ("ERR_FLUX_NOSS", ob.err_noss), ("QUAL", ob.qual)):
        if np.shape(array) != (nspec, npix):
            raise ValueError(f"{path.name}: {label} has shape {np.shape(array)}, FLUX "
                             f"{(nspec, npix)}")
    if npix != ob.grid.naxis1:
        raise ValueError(f"{path.name}: FLUX has {npix} pixels, the grid {ob.grid.naxis1}")
    fibinfo = _fibinfo(ob.fibinfo, nspec, path.name)
    snr = ob_snr_keywords(records(_fibinfo(ob.fibinfo, nspec, path.name).data))
    night = int(ob.header.get("NIGHT") or night_of(float(ob.header["MJD-OBS"])))
    primary = _header(_base({**ob.header, "NIGHT": night, "ARM": ob.arm,
                             **snr}))
    hdus: list[Any] = [fits.PrimaryHDU(header=primary)]
    flux_unit = _TUNIT_FLUX
    for label, array, dtype, unit in (
            ("FLUX", ob.flux, np.float32, flux_unit), ("ERR_FLUX", ob.err, np.float32, flux_unit),
            ("QUAL", ob.qual, np.int32, ""), ("FLUX_NOSS", ob.flux_noss, np.float32, flux_unit),
            ("ERR_FLUX_NOSS", ob.err_noss, np.float32, flux_unit)):
        header = ob.grid.header()
        if unit:
            header["BUNIT"] = unit
        hdus.append(fits.ImageHDU(np.asarray(array, dtype=dtype), header=header, name=label))
    hdus.append(fibinfo)
    write_product(fits.HDUList(hdus), path)
    return path


def write_raw(path: Path | str, raw: RawFile) -> Path:
    """Write one arm of one exposure (PRIMARY, COUNTS, FIBINFO)."""
    if raw.arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, not {raw.arm!r}")
    _missing(raw.header, ("RUN", "OBID", "MJD-OBS", "DATE-OBS", "EXPTIME", "RA", "DEC"),
             "raw file")
    path = _target(path, raw.name)
    nspec, npix = np.shape(raw.counts)
    if npix != raw.grid.naxis1:
        raise ValueError(f"{path.name}: COUNTS has {npix} pixels, the grid {raw.grid.naxis1}")
    night = int(raw.header.get("NIGHT") or night_of(float(raw.header["MJD-OBS"])))
    header = raw.grid.header()
    header["BUNIT"] = "adu"
    hdul = fits.HDUList([
        fits.PrimaryHDU(header=_header(_base({"GAIN": 1.0, "RDNOISE": 3.0, **raw.header,
                                              "NIGHT": night, "ARM": raw.arm}))),
        fits.ImageHDU(np.asarray(raw.counts, dtype=np.float32), header=header, name="COUNTS"),
        _fibinfo(raw.fibinfo, nspec, path.name)])
    write_product(hdul, path)
    return path


def targets_from_ob(arms: Sequence[OBArmFile], *, extra: Mapping[str, Any] | None = None
                    ) -> list[TargetFile]:
    """The per-target spectra of an OB: each allocated object fibre (FIB_USE 1, FIB_ST 2)
    with its arms joined on :data:`JOINED` — linear interpolation of each arm, then an
    inverse-variance mean where arms overlap; QUAL 1 where no arm has a valid error.
    ``extra``: more primary keywords (SPECSYS, RELEASE …)."""
    if not arms:
        return []
    arms = sorted(arms, key=lambda a: ARMS.index(a.arm))
    first = arms[0]
    info = records(_fibinfo(first.fibinfo, np.shape(first.flux)[0], first.name).data)
    wanted = np.nonzero((info["FIB_USE"] == 1) & (info["FIB_ST"] == 2))[0]
    if len(wanted) == 0:
        return []
    flux, err, flux_noss, err_noss, qual = join_arms(
        [(a.grid, np.asarray(a.flux)[wanted], np.asarray(a.err)[wanted],
          np.asarray(a.flux_noss)[wanted], np.asarray(a.err_noss)[wanted],
          np.asarray(a.qual)[wanted]) for a in arms])
    wave = JOINED.wave
    header = first.header
    night = int(header.get("NIGHT") or night_of(float(header["MJD-OBS"])))
    snr = ob_snr_keywords(info)
    prov = {f"PROV{n}": a.name for n, a in enumerate(arms, start=1)}
    out = []
    for k, row in enumerate(wanted):
        fib = info[row]
        cname = str(fib["CNAME"]).strip() or qmost_cname(float(fib["TRG_RA"]),
                                                          float(fib["TRG_DEC"]))
        primary = {
            "PRODCATG": "SCIENCE.SPECTRUM", "OBJECT": cname,
            "RA": float(fib["TRG_RA"]), "DEC": float(fib["TRG_DEC"]),
            "PROG_ID": header.get("PROG_ID", ""), "OBID1": int(header["OBID"]),
            "NCOMBINE": int(header.get("NCOMBINE", 1)), "NIGHT": night,
            "MJD-OBS": float(header["MJD-OBS"]), "MJD-END": float(header.get(
                "MJD-END", float(header["MJD-OBS"]) + float(header["EXPTIME"]) / 86400.0)),
            "EXPTIME": float(header["EXPTIME"]), "TEXPTIME": float(header["EXPTIME"]),
            **prov, "SPECSYS": "HELIOCEN", "FLUXCAL": "ABSOLUTE", "TOT_FLUX": False,
            "SPEC_RES": SPEC_RES, "SPEC_BIN": 0.025, "WAVELMIN": 370.0, "WAVELMAX": 950.0,
            "SNR": float(fib["SNR"]), "PROCSOFT": "casuvo", "SKYSUB": True,
            "PCASUB": False, "TELLSUB": False, "TELLCOR": False,
            "DXUDOC": "VIS-TNO-4MOST-47110-0143-0001",
            **{k2: v for k2, v in header.items() if k2 in ("AIRMASS", "SEEING", "PROCSOFT")},
            **(extra or {}),
        }
        extension = {name: _plain(fib[name]) for name, _, _ in FIBINFO_COLUMNS
                     if name in info.dtype.names}
        extension["CNAME"] = cname
        extension.update(snr)
        out.append(TargetFile(cname, primary, extension, flux[k], err[k], qual[k],
                              flux_noss[k], err_noss[k], wave))
    return out


def join_arms(parts: Sequence[tuple[Grid, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                     np.ndarray | None]]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arms (grid, flux, σ, flux_noss, σ_noss, qual; rows = spectra) joined on
    :data:`JOINED`: each arm interpolated linearly, then the inverse-variance mean where
    arms overlap; returns flux, σ, flux_noss, σ_noss (NaN where no arm has a valid
    value) and QUAL (1 there, else 0)."""
    wave = JOINED.wave
    nrows = np.atleast_2d(parts[0][1]).shape[0]
    sums = {k: np.zeros((nrows, NELEM)) for k in ("w", "wf", "wn", "wfn")}
    for grid, flux, err, flux_n, err_n, qual in parts:
        q = None
        if qual is not None:
            q, _ = grid.resample(np.atleast_2d(qual), wave)
        for key_w, key_f, f0, e0 in (("w", "wf", flux, err), ("wn", "wfn", flux_n, err_n)):
            f, _ = grid.resample(np.atleast_2d(f0), wave)
            e, _ = grid.resample(np.atleast_2d(e0), wave)
            good = np.isfinite(f) & np.isfinite(e) & (e > 0)
            if q is not None:
                good &= q == 0
            weight = np.where(good, 1.0 / np.where(good, e, 1.0) ** 2, 0.0)
            sums[key_w] += weight
            sums[key_f] += weight * np.where(good, f, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        flux = sums["wf"] / sums["w"]
        err = 1.0 / np.sqrt(sums["w"])
        flux_noss = sums["wfn"] / sums["wn"]
        err_noss = 1.0 / np.sqrt(sums["wn"])
    qual = np.where(sums["w"] > 0, 0, QUAL_NODATA).astype(np.int32)
    return flux, err, flux_noss, err_noss, qual


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value.strip() if isinstance(value, str) else value


def write_target(path: Path | str, target: TargetFile) -> Path:
    """Write a per-target L1 product (PRIMARY + one-row PHASE3SPECTRUM)."""
    path = _target(path, target.name)
    arrays = {"WAVE": target.wave, "FLUX": target.flux, "ERR_FLUX": target.err,
              "QUAL": target.qual, "FLUX_NOSS": target.flux_noss,
              "ERR_FLUX_NOSS": target.err_noss}
    for label, array in arrays.items():
        if np.shape(array) != (NELEM,):
            raise ValueError(f"{path.name}: {label} has shape {np.shape(array)}, not "
                             f"({NELEM},)")
    table = table_hdu([(name, f"{NELEM}J" if name == "QUAL" else f"{NELEM}E", unit,
                        np.asarray(arrays[name])[None, :])
                       for name, _utype, _ucd, unit, _comment in _COLUMNS], "PHASE3SPECTRUM")
    th = table.header
    for n, (name, utype, ucd, _unit, comment) in enumerate(_COLUMNS, start=1):
        th[f"TUTYP{n}"] = utype
        th[f"TUCD{n}"] = ucd
        th[f"TCOMM{n}"] = comment
        values = np.asarray(arrays[name], dtype=np.float64)
        values = values[np.isfinite(values)]
        if name == "QUAL":
            th[f"TNULL{n}"] = -1
        if values.size:
            th[f"TDMIN{n}"] = float(values.min())
            th[f"TDMAX{n}"] = float(values.max())
    mjd0, mjd1 = float(target.primary["MJD-OBS"]), float(target.primary["MJD-END"])
    good = np.isfinite(target.flux) & (target.qual == 0)
    ext = {"OBJECT": target.primary.get("OBJECT", target.cname),
           "RA": target.primary.get("RA"), "DEC": target.primary.get("DEC"),
           "NELEM": NELEM, "VOCLASS": "SPECTRUM V2.0", "VOPUB": "ESO/SAF",
           "TITLE": f"{target.cname} OB {target.primary['OBID1']}", "APERTURE": 0.00039,
           "TELAPSE": round((mjd1 - mjd0) * 86400.0, 3), "TMID": 0.5 * (mjd0 + mjd1),
           "SPEC_VAL": 660.0, "SPEC_BW": 580.0,
           "TOT_FLX": float(np.sum(target.flux[good]) * JOINED.cd1_1) if good.any() else 0.0,
           "FLX_PIX": float(np.median(target.flux[good])) if good.any() else 0.0,
           **{k: v for k, v in target.extension.items() if k not in ("TOT_FLX", "FLX_PIX")}}
    ext = {k: v for k, v in ext.items() if v is not None}
    th.extend(_header(ext).cards)
    primary = fits.PrimaryHDU(header=_header(_base({
        "DATE": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "FLUXERR": -2.0,
        "CONTNORM": False, "EXT_OBJ": False, "REFERENC": "", **target.primary})))
    write_product(fits.HDUList([primary, table]), path)
    return path


# -- reading ---------------------------------------------------------------------------

def identify(path: Path | str) -> str | None:
    """``raw``, ``ob`` or ``target`` for a 4MOST file name, else None."""
    name = Path(path).name
    if re.fullmatch(r"QMOST\.\d{4}-\d\d-\d\dT[\d:.]+_L[BGR]\.fits", name):
        return "raw"
    if re.fullmatch(r"qmost_\d{8}[+-]\d{7}_\d{8}_\d{7}_L[BGR]1\.fits", name):
        return "ob"
    if re.fullmatch(r"qmost_\d{8}[+-]\d{7}_\d{8}_\d{7}\.fits", name):
        return "target"
    return None


def _keywords(header: fits.Header) -> dict[str, Any]:
    skip = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "CHECKSUM", "DATASUM",
            "COMMENT", "HISTORY", "XTENSION", "PCOUNT", "GCOUNT", "TFIELDS", "EXTNAME", ""}
    return {k: header[k] for k in header if k not in skip and not re.match(
        r"T(TYPE|FORM|UNIT|UTYP|UCD|COMM|DMIN|DMAX|NULL)\d+$", k)}


def read_ob_arm(path: Path | str) -> OBArmFile:
    """One arm of an OB, checked (HDU order by index and name, shapes, checksums)."""
    path = Path(path)
    with open_product(path, names=OB_EXTENSIONS, what="4MOST per-OB file") as hdul:
        header = _keywords(hdul[0].header)
        grid = Grid.from_header(hdul["FLUX"].header, path.name)
        arrays = [np.asarray(hdul[i].data) for i in range(1, 6)]
        fibinfo = records(hdul["FIBINFO"].data)
    shape = (len(fibinfo), grid.naxis1)
    if any(a.shape != shape for a in arrays):
        raise ProductFileError(f"{path.name}: arrays {[a.shape for a in arrays]} do not "
                               f"match {shape[0]} fibres × {shape[1]} pixels")
    flux, err, qual, flux_noss, err_noss = arrays
    return OBArmFile(str(header.get("ARM", "")), header, grid, flux, err, flux_noss,
                     err_noss, qual, fibinfo)


def read_raw(path: Path | str) -> RawFile:
    """One arm of one exposure, checked."""
    path = Path(path)
    with open_product(path, names=RAW_EXTENSIONS, what="4MOST raw file") as hdul:
        header = _keywords(hdul[0].header)
        grid = Grid.from_header(hdul["COUNTS"].header, path.name)
        counts = np.asarray(hdul["COUNTS"].data, dtype=np.float32)
        fibinfo = records(hdul["FIBINFO"].data)
    if counts.shape != (len(fibinfo), grid.naxis1):
        raise ProductFileError(f"{path.name}: COUNTS {counts.shape} does not match "
                               f"{len(fibinfo)} fibres × {grid.naxis1} pixels")
    return RawFile(str(header.get("ARM", "")), header, grid, counts, fibinfo)


def read_target(path: Path | str) -> TargetFile:
    """A per-target product as written (σ errors, QUAL)."""
    path = Path(path)
    with open_product(path, names=("PRIMARY", "PHASE3SPECTRUM"),
                      what="4MOST L1 spectrum") as hdul:
        primary = _keywords(hdul[0].header)
        table = hdul["PHASE3SPECTRUM"]
        extension = _keywords(table.header)
        names = [c.name for c in table.columns]
        missing = [c[0] for c in _COLUMNS if c[0] not in names]
        if missing or len(table.data) != 1:
            raise ProductFileError(f"{path.name}: PHASE3SPECTRUM must be one row with "
                                   f"{', '.join(c[0] for c in _COLUMNS)}; missing "
                                   f"{', '.join(missing) or 'nothing'}, "
                                   f"{len(table.data)} rows")
        row = {c[0]: np.asarray(table.data[c[0]][0]) for c in _COLUMNS}
    nelem = int(extension.get("NELEM", -1))
    if any(a.shape != (nelem,) for a in row.values()):
        raise ProductFileError(f"{path.name}: columns are not NELEM = {nelem} long")
    return TargetFile(str(extension.get("CNAME", primary.get("OBJECT", ""))), primary,
                      extension, row["FLUX"].astype(np.float64),
                      row["ERR_FLUX"].astype(np.float64), row["QUAL"].astype(np.int32),
                      row["FLUX_NOSS"].astype(np.float64),
                      row["ERR_FLUX_NOSS"].astype(np.float64),
                      row["WAVE"].astype(np.float64))


def read_object(path: Path | str) -> Spectrum:
    """The spectrum of a per-target product: wave (Å), FLUX, sigma = ERR_FLUX (NaN where
    QUAL ≠ 0 or the error is not positive), meta = primary and extension keywords."""
    target = read_target(path)
    bad = (target.qual != 0) | ~(target.err > 0)
    sigma = np.where(bad, np.nan, target.err)
    return Spectrum(wave=target.wave, flux=target.flux, sigma=sigma, flux_unit=FLUX_UNIT,
                    meta={**target.primary, **target.extension})


def validate(path: Path | str) -> None:
    """Raise :class:`ProductFileError` unless ``path`` reads as the 4MOST file its name
    says it is."""
    kind = identify(path)
    if kind is None:
        raise ProductFileError(f"{Path(path).name}: not a 4MOST file name")
    {"raw": read_raw, "ob": read_ob_arm, "target": read_target}[kind](path)


# -- the pipeline's writer protocol (casuvo.spectra.products) --------------------------

def _grid_of(wave: np.ndarray) -> Grid:
    wave = np.asarray(wave, dtype=np.float64)
    return Grid(float(wave[0]), float(wave[1] - wave[0]) if wave.size > 1 else 1.0,
                int(wave.size))


def _ob_header(o: Mapping[str, Any], qc: Mapping[str, Any]) -> dict[str, Any]:
    header = {
        "OBID": int(o["ob_id"]), "RUN": int(o.get("run", 0)), "OBNAME": str(o["ob_name"]),
        "NIGHT": int(o["night"]), "MJD-OBS": float(o["mjd_obs"]),
        "MJD-END": float(o["mjd_end"]), "DATE-OBS": str(o.get("date_obs", "")),
        "EXPTIME": float(o["exptime"]), "NCOMBINE": int(o.get("n_exposures", 1)),
        "RA": float(o["ra"]), "DEC": float(o["dec"]), "AIRMASS": float(o["airmass"]),
        "SEEING": float(o["seeing"]), "PROG_ID": str(o.get("prog_id", "")),
        "PROCSOFT": f"casuvo {o.get('version', '')}".strip(), "SPECSYS": "TOPOCENT",
        "SKYSUB": True, "FLUXCAL": "ABSOLUTE", "QCSTATUS": str(qc.get("status", "")),
    }
    return {k: v for k, v in header.items() if not (isinstance(v, float) and not np.isfinite(v))}


def write_ob(ob: OBData, out_dir: Path) -> list[Path]:
    """The OB's three per-arm files under ``<out_dir>/<night>/`` (rows = fibres, σ
    errors, the S/N keywords), blue first: the OB's ``product_file``."""
    o, f = ob.ob, ob.fibres
    header = _ob_header(o, ob.qc)
    n = len(f["fibre"])
    is_obj = np.asarray(f["obj_type"]) == "OBJ"
    dead = np.asarray(f["fibre_status"]) == "DEAD"
    paths = []
    for arm in sorted(ob.arms, key=lambda a: ARMS.index(a.arm)):
        fibinfo = {
            "FIB_ID": f["fibre"], "CNAME": np.asarray(f["target_name"]).astype(str),
            "TRG_UID": np.asarray(f["target_id"]).astype(np.int64),
            "TRG_NME": np.asarray(f["target_name"]).astype(str),
            "TRG_CTID": np.asarray(f["source_id"]).astype(np.int64),
            "TRG_RA": f["ra"], "TRG_DEC": f["dec"], "TRG_EPOC": np.full(n, 2016.0),
            "FIB_ST": np.where(dead, 0, 2), "FIB_USE": np.where(is_obj, 1, 3),
            "FIB_ROOT": np.ones(n, dtype=np.int64), "SLIT_POS": f["fibre"],
            "TRG_GR": f["mag_g"], "HELIOCR": f["helio_cor"], "SKYSCALE": f["sky_scale"],
            "EXPTIME": np.full(n, float(o["exptime"])), "SNR": f["snr"],
            "RESOL": np.full(n, float(arm.resolution)),
        }
        bad = ~(np.isfinite(arm.flux) & np.isfinite(arm.sigma) & (arm.sigma > 0))
        qual = np.where(bad, QUAL_NODATA, 0) | np.where(dead[:, None], QUAL_DISABLED, 0)
        part = OBArmFile(arm.arm, header, _grid_of(arm.wave), arm.flux, arm.sigma,
                         arm.flux_noss, arm.sigma_noss, qual.astype(np.int32), fibinfo)
        paths.append(write_ob_arm(Path(out_dir) / str(o["night"]) / part.name, part))
    return paths


@functools.lru_cache(maxsize=32)
def _ob_file_info(path: str, mtime_ns: int) -> tuple[dict[str, Any], np.ndarray]:
    """An OB file's primary keywords and FIBINFO, read once for all its objects (keyed
    by the file's modification time, so a rewritten file is read again)."""
    with fits.open(path, memmap=False) as hdul:
        return _keywords(hdul[0].header), records(hdul["FIBINFO"].data)


def write_object(obj: ObjectData, out_dir: Path) -> Path:
    """The object's L1 product under ``<out_dir>/objects/``: its epochs' stack
    (heliocentric) with the arms joined on 3700–9500 Å at 0.25 Å, named and keyed by
    its newest OB (``OBIDn``/``PROVn`` list every epoch's OB and per-arm files; the
    S/N and FIBINFO keywords are the newest OB's)."""
    root = Path(out_dir).parents[1]
    epochs = sorted(obj.epochs, key=lambda e: e.mjd_obs)
    newest = epochs[-1]
    first_file = root / newest.product_file
    ob_keys, info = _ob_file_info(str(first_file), first_file.stat().st_mtime_ns)
    row = info[info["FIB_ID"] == newest.fibre]
    extension = {name: _plain(row[name][0]) for name, _, _ in FIBINFO_COLUMNS} if len(row) \
        else {}
    extension.update({k: ob_keys[k] for k in _SNR_KEYS if k in ob_keys})
    prov: dict[str, str] = {}
    for e in epochs:
        base = Path(e.product_file).name
        for arm in ARMS:
            prov[f"PROV{len(prov) + 1}"] = re.sub(r"_L[BGR]1\.fits$", f"_{arm}1.fits", base)
    flux, err, flux_n, err_n, qual = join_arms(
        [(_grid_of(a.wave), a.flux, a.sigma, a.flux_noss, a.sigma_noss, None)
         for a in obj.arms])
    primary = {
        "PRODCATG": "SCIENCE.SPECTRUM", "OBJECT": obj.target_name,
        "RA": float(obj.ra), "DEC": float(obj.dec),
        "PROG_ID": str(obj.keywords.get("PROG_ID", ob_keys.get("PROG_ID", ""))),
        **{f"OBID{i}": int(e.ob_id) for i, e in enumerate(epochs, start=1)},
        "NCOMBINE": len(epochs), "NIGHT": int(ob_keys.get("NIGHT", night_of(newest.mjd_obs))),
        "MJD-OBS": float(epochs[0].mjd_obs), "MJD-END": float(max(e.mjd_end for e in epochs)),
        "EXPTIME": float(sum(e.exptime for e in epochs)),
        "TEXPTIME": float(sum(e.exptime for e in epochs)), **prov,
        "SPECSYS": "HELIOCEN", "FLUXCAL": "ABSOLUTE", "TOT_FLUX": False,
        "SPEC_RES": SPEC_RES, "SPEC_BIN": 0.025, "WAVELMIN": 370.0, "WAVELMAX": 950.0,
        "SNR": round(float(obj.snr), 3), "VRAD": round(float(obj.rv), 3),
        "VRADERR": round(float(obj.rv_error), 3), "BESTTMPL": obj.rv_template,
        "SOURCEID": int(obj.source_id), "SPEC_ID": obj.spectrum_id,
        "PROCSOFT": ob_keys.get("PROCSOFT", "casuvo"), "SKYSUB": True, "PCASUB": False,
        "TELLSUB": False, "TELLCOR": False, "DXUDOC": "VIS-TNO-4MOST-47110-0143-0001",
        **{k: v for k, v in obj.keywords.items() if k not in ("TELESCOP", "INSTRUME")},
    }
    primary = {k: v for k, v in primary.items()
               if not (isinstance(v, float) and not np.isfinite(v))}
    extension["CNAME"] = obj.target_name
    target = TargetFile(obj.target_name, primary, extension, flux[0], err[0], qual[0],
                        flux_n[0], err_n[0])
    name = target_name(obj.target_name, int(ob_keys.get("NIGHT", night_of(newest.mjd_obs))),
                       newest.ob_id)
    return write_target(Path(out_dir) / "objects" / name, target)


def raw_hdus(hdus: list[Any], ob: Mapping[str, Any], arm: str) -> list[Any]:
    """The simulator's raw exposure of one arm with the ESO keywords of a 4MOST raw
    frame (``ARCFILE``, ``HIERARCH ESO OBS ID/NAME``, ``HIERARCH ESO DPR CATG/TYPE/
    TECH``); its HDUs (the pipeline's input) stay as they are."""
    header = hdus[0].header
    keywords = {"ARCFILE": raw_name(header, arm),
                "HIERARCH ESO OBS ID": int(ob["ob_id"]),
                "HIERARCH ESO OBS NAME": str(ob["ob_name"]),
                "HIERARCH ESO DPR CATG": "SCIENCE", "HIERARCH ESO DPR TYPE": "OBJECT",
                "HIERARCH ESO DPR TECH": "MOS", "HIERARCH ESO INS ARM": arm}
    for key, value in keywords.items():
        header[key] = value
    return hdus

# SPDX-License-Identifier: BSD-3-Clause
"""WEAVE files as CASU's core processing writes them: raw runs, L1 singles and stacks,
and the per-object ("supertarget") files.

Facts followed (``formats-spectra.md`` §1 row 6, §2.1, §3):

* one file = one run of ONE arm (``RED``/``BLUE``; the HR "green" grating is the blue
  camera, ``VPH`` 3);
* raw ``r<run:07d>.fit``: PRIMARY, ``COUNTS`` (the extracted count spectra of the
  arm, rows = fibres, sky not subtracted — the demo draws no 2D frames, see
  ``docs/spectroscopy.md``), ``FIBTABLE``, ``GUIDINFO``, ``METINFO`` (the last two
  only in raw files);
* L1 ``single_<run:07d>.fit`` per run, ``stack_<run:07d>.fit`` per OB and arm and
  ``superstack_<run:07d>.fit`` per OBSpec (``CAT-NAME``) and arm — the singles of
  all the OBs observed from one OB specification with one instrument configuration —
  each named after the lowest contributing run, with the FIXED order 0 PRIMARY,
  1 ``<ARM>_DATA``, 2 ``<ARM>_IVAR``, 3 ``<ARM>_DATA_NOSS``, 4 ``<ARM>_IVAR_NOSS``,
  5 ``<ARM>_SENSFUNC``, 6 ``FIBTABLE``; rows = spectra, ``FIBTABLE.NSPEC`` (1-based)
  indexes them; linear wavelength WCS ``λ = CRVAL1 + i·CD1_1`` (Å, i from 0 at
  CRPIX1 = 1); stacks list their runs as ``RUNS0nn`` (primary) and their singles
  as ``PROV0nn`` (HDU 1);
* errors are INVERSE VARIANCE; the calibrated flux is ``DATA × SENSFUNC`` and its
  inverse variance ``IVAR / SENSFUNC²``;
* per-object file ``WVE_<coordinates>_<mode>.fit`` (WEAVE's CNAME already reads
  ``WVE_HHMMSSss+DDMMSSs``; the mode, LR or HR, because an object may have both):
  the stack of the object's epochs per arm (``RED_*`` then ``BLUE_*``, each in the L1
  order, one row, heliocentric), and a one-row ``FIBTABLE``; ``PROV0nn`` name the
  epochs' stacks.

Units (the demo's choice, stated in BUNIT): ``DATA`` in electrons per second,
``SENSFUNC`` in 10⁻¹⁷ erg cm⁻² Å⁻¹ per electron, so the flux is in
:data:`FLUX_UNIT` (10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹, the survey's configured unit).
Reading gives sigma = SENSFUNC / √IVAR and NaN where IVAR ≤ 0 (no information).
Worker-safe: numpy and astropy only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
from casuvo.spectra.products import ArmData, OBData, ObjectData
from casuvo.spectra.spectrum import Spectrum

__all__ = [
    "ARMS",
    "FIBTABLE_COLUMNS",
    "FLUX_UNIT",
    "L1_EXTENSIONS",
    "ArmSpectra",
    "Grid",
    "L1File",
    "ObjectFile",
    "RawFile",
    "arm_grid",
    "calibrated",
    "identify",
    "l1_extension_names",
    "object_from_stacks",
    "object_name",
    "objects_from_stacks",
    "obspec_name",
    "parse_progtemp",
    "progtemp_code",
    "raw_hdus",
    "raw_name",
    "read_l1",
    "read_object",
    "read_object_file",
    "read_raw",
    "single_name",
    "stack_name",
    "superstack",
    "superstack_name",
    "validate",
    "weave_cname",
    "write_l1",
    "write_ob",
    "write_object",
    "write_object_file",
    "write_raw",
    "write_superstacks",
]

#: The two arms; one file holds one of them.
ARMS = ("RED", "BLUE")
#: The L1 data extensions after PRIMARY, in their fixed order (each ``<ARM>_`` prefixed).
L1_EXTENSIONS = ("DATA", "IVAR", "DATA_NOSS", "IVAR_NOSS", "SENSFUNC")
CAMERAS = {"RED": "WEAVERED", "BLUE": "WEAVEBLUE"}
RAW_EXTENSIONS = ("PRIMARY", "COUNTS", "FIBTABLE", "GUIDINFO", "METINFO")

#: (mode, arm, green) → (λmin, λmax, Å per pixel unbinned); ING's figures (§1 row 8).
_RANGES: dict[tuple[str, str, bool], tuple[float, float, float]] = {
    ("LR", "BLUE", False): (3660.0, 6060.0, 0.30),
    ("LR", "RED", False): (5790.0, 9590.0, 0.48),
    ("HR", "BLUE", False): (4040.0, 4650.0, 0.076),
    ("HR", "BLUE", True): (4730.0, 5450.0, 0.090),
    ("HR", "RED", False): (5950.0, 6850.0, 0.11),
}
#: Resolving power per mode (MOS).
RESOLVING_POWER = {"LR": 5000.0, "HR": 20000.0}
#: The calibrated flux's unit (pipelines/weave/config.toml ``flux_unit``).
FLUX_UNIT = "1e-17 erg/(s cm2 Angstrom)"

#: The primary keywords of every WEAVE file here, with their comments; those in
#: ``_REQUIRED`` must be given by the writer's caller (CAMERA and VPH are derived).
PRIMARY_KEYWORDS: dict[str, str] = {
    "TELESCOP": "William Herschel Telescope",
    "INSTRUME": "WEAVE multi-object spectrograph",
    "ORIGIN": "Archive that wrote the file",
    "RUN": "Run number (7 digits, one arm)",
    "CAMERA": "WEAVERED or WEAVEBLUE",
    "VPH": "VPH grating: 1 LR, 2 HR, 3 HR green (blue arm)",
    "OBTITLE": "OB title",
    "CAT-NAME": "OBSpec XML file (the OB's specification)",
    "INFILE": "Input file",
    "OBID": "Observing block id",
    "OBSTART": "[d] MJD at the start of the OB",
    "CASUID": "CASU processing id",
    "SYSVER": "Processing system version",
    "PROGTEMP": "Processing template (mode, length, exposures, binning)",
    "OBSTEMP": "Observing template (seeing, transp., airmass, moon, sky)",
    "MJD-OBS": "[d] MJD at the start of the exposure",
    "DATE-OBS": "UTC at the start of the exposure",
    "OBSTYPE": "Observation type",
    "EXPTIME": "[s] Exposure time",
    "AIRMASS": "Airmass at mid-exposure",
    "SEEINGB": "[arcsec] Seeing at the start",
    "SEEINGE": "[arcsec] Seeing at the end",
    "WINDSPB": "[m/s] Wind speed at the start",
    "WINDSPE": "[m/s] Wind speed at the end",
    "WINDDIRB": "[deg] Wind direction at the start",
    "WINDDIRE": "[deg] Wind direction at the end",
    "TELHUMB": "[%] Relative humidity at the start",
    "TELHUME": "[%] Relative humidity at the end",
    "TELTEMPB": "[deg C] Air temperature at the start",
    "TELTEMPE": "[deg C] Air temperature at the end",
    "SKYBRTEL": "[mag/arcsec2] Sky brightness",
    "OBSERVER": "Observer(s)",
    "RA": "[deg] Field centre right ascension (ICRS)",
    "DEC": "[deg] Field centre declination (ICRS)",
    "RADESYS": "Reference frame",
    "GAIN": "[e-/adu] Detector gain",
    "RDNOISE": "[e-] Read noise per pixel",
    "TRIMESTR": "Observing trimester",
    "AUTHOR": "OB author",
    "STATUS": "OB status",
    "NCOMBINE": "Number of runs combined",
    "NOBS": "Number of OBs combined (superstack)",
    "CNAME": "WEAVE object name (from coordinates)",
}
_REQUIRED = ("RUN", "OBTITLE", "CAT-NAME", "OBID", "OBSTART", "PROGTEMP", "OBSTEMP",
             "MJD-OBS", "EXPTIME", "AIRMASS", "SEEINGB", "SEEINGE")

#: FIBTABLE: (name, FITS format, unit); §2.1's list (configuration + L1 QC columns).
FIBTABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("FIBREID", "J", ""), ("NSPEC", "J", ""), ("TARGSRVY", "20A", ""),
    ("TARGPROG", "40A", ""), ("TARGCAT", "30A", ""), ("CNAME", "20A", ""),
    ("TARGID", "30A", ""), ("TARGNAME", "30A", ""), ("TARGRA", "D", "deg"),
    ("TARGDEC", "D", "deg"), ("EPOCH", "E", "yr"), ("TARGUSE", "1A", ""),
    ("TARGCLASS", "12A", ""), ("TARGPMRA", "E", "mas/yr"), ("TARGPDEC", "E", "mas/yr"),
    ("TARGPARAL", "E", "mas"), ("TARGPRIO", "E", ""),
    ("MAG_G", "E", "mag"), ("EMAG_G", "E", "mag"), ("MAG_R", "E", "mag"),
    ("EMAG_R", "E", "mag"), ("MAG_I", "E", "mag"), ("EMAG_I", "E", "mag"),
    ("MAG_GG", "E", "mag"), ("EMAG_GG", "E", "mag"), ("MAG_BP", "E", "mag"),
    ("EMAG_BP", "E", "mag"), ("MAG_RP", "E", "mag"), ("EMAG_RP", "E", "mag"),
    ("FIBRERA", "D", "deg"), ("FIBREDEC", "D", "deg"), ("STATUS", "1A", ""),
    ("ORIENTATION", "E", "deg"), ("NRETRIES", "J", ""), ("XPOSITION", "E", "mm"),
    ("YPOSITION", "E", "mm"), ("TARGX", "E", "mm"), ("TARGY", "E", "mm"),
    ("SNR", "E", ""), ("MEAN_FLUX_G", "E", "10**(-17) erg/(s.cm2.Angstrom)"),
    ("RMS_ARC1", "E", "Angstrom"), ("RMS_ARC2", "E", "Angstrom"), ("RESOL", "E", ""),
    ("HELIO_COR", "E", "km/s"), ("WAVE_COR1", "E", "Angstrom"),
    ("WAVE_COR2", "E", "Angstrom"), ("WAVE_CORRMS1", "E", "Angstrom"),
    ("WAVE_CORRMS2", "E", "Angstrom"), ("SKYLINE_OFF1", "E", "Angstrom"),
    ("SKYLINE_RMS1", "E", "Angstrom"), ("SKYLINE_OFF2", "E", "Angstrom"),
    ("SKYLINE_RMS2", "E", "Angstrom"), ("SKY_SHIFT", "E", "Angstrom"),
    ("SKY_SCALE", "E", ""),
)
#: FIBTABLE STATUS codes (the demo's): A allocated and working, D dead, P parked.
FIBRE_STATUS = {"A": "OK", "D": "DEAD", "P": "PARKED"}
#: TARGUSE codes: T science target, S sky, G guide star.
TARGUSE = {"T": "OBJ", "S": "SKY", "G": "GUIDE"}


def arm_grid(mode: str, arm: str, *, green: bool = False, binning: int = 1) -> Grid:
    """The wavelength grid of one arm in ``mode`` (``LR``/``HR``), ``binning`` pixels
    summed in the spectral direction (PROGTEMP digit 4), as the demo lays it out."""
    lo, hi, step = _RANGES[(mode, arm, bool(green) and arm == "BLUE")]
    return Grid.spanning(lo, hi, step * binning)


def vph(mode: str, arm: str, green: bool = False) -> int:
    """The VPH keyword: 1 LR, 2 HR, 3 HR green (blue arm only)."""
    if mode == "LR":
        return 1
    return 3 if green and arm == "BLUE" else 2


def progtemp_code(mode: str, n_exposures: int, *, binning: int = 1, green: bool = False,
                  exposure_code: int = 3) -> str:
    """A MOS PROGTEMP: digit 1 mode×resolution (1 LR, 2 HR, 3 HR green), digit 2 the OB
    length in exposures, digit 3 the exposure code, digit 4 the spectral binning."""
    first = 1 if mode == "LR" else (3 if green else 2)
    return f"{first}{n_exposures}{exposure_code}{binning}1.1"


def parse_progtemp(code: str) -> tuple[str, bool, int, int]:
    """(mode, green, exposures in the OB, spectral binning) of a MOS PROGTEMP."""
    if not re.fullmatch(r"[1-3]\d{4}(\.\d+)?", code.strip()):
        raise ValueError(f"PROGTEMP {code!r} is not a MOS processing template")
    first = int(code[0])
    return ("LR" if first == 1 else "HR", first == 3, int(code[1]), int(code[3]))


def weave_cname(ra: float, dec: float) -> str:
    """WEAVE's object name from ICRS degrees: ``WVE_HHMMSSss+DDMMSSs`` (truncated, as
    IAU-style names are)."""
    hours = (ra % 360.0) / 15.0
    hh = int(hours)
    mm = int((hours - hh) * 60)
    ss = int(round(((hours - hh) * 60 - mm) * 60 * 100, 6))
    sign = "-" if dec < 0 else "+"
    d = abs(dec)
    dd = int(d)
    dm = int((d - dd) * 60)
    ds = int(round(((d - dd) * 60 - dm) * 60 * 10, 6))
    return f"WVE_{hh:02d}{mm:02d}{ss:04d}{sign}{dd:02d}{dm:02d}{ds:03d}"


def raw_name(run: int) -> str:
    """``r<run:07d>.fit``."""
    return f"r{int(run):07d}.fit"


def single_name(run: int) -> str:
    """``single_<run:07d>.fit``."""
    return f"single_{int(run):07d}.fit"


def stack_name(runs: Iterable[int]) -> str:
    """``stack_<run:07d>.fit`` after the lowest contributing run."""
    return f"stack_{min(int(r) for r in runs):07d}.fit"


def superstack_name(runs: Iterable[int]) -> str:
    """``superstack_<run:07d>.fit`` after the lowest contributing run."""
    return f"superstack_{min(int(r) for r in runs):07d}.fit"


def obspec_name(ob: Mapping[str, Any]) -> str:
    """The OB's specification (``CAT-NAME`` without ``./`` and ``.xml``): the plan's
    ``obspec`` where it has one, else the OB's own name (one OB per specification)."""
    return str(ob.get("obspec") or ob["ob_name"])


def object_name(cname: str, setting: str = "") -> str:
    """The per-object file of a CNAME: ``WVE_<coordinates>.fit``, or with the
    instrument mode, ``WVE_<coordinates>_<LR|HR>.fit``, when one object has a spectrum
    per mode."""
    cname = cname.strip()
    stem = cname if cname.startswith("WVE_") else f"WVE_{cname}"
    return f"{stem}_{setting}.fit" if setting else f"{stem}.fit"


def l1_extension_names(arm: str) -> tuple[str, ...]:
    """The L1 HDU names in order: PRIMARY, ``<ARM>_DATA`` … ``<ARM>_SENSFUNC``, FIBTABLE."""
    return ("PRIMARY", *(f"{arm}_{ext}" for ext in L1_EXTENSIONS), "FIBTABLE")


@dataclass
class ArmSpectra:
    """One arm's L1 arrays: rows = spectra in NSPEC order, columns = pixels of ``grid``.

    ``data``/``data_noss`` in e⁻ s⁻¹ (sky subtracted / not), ``ivar``/``ivar_noss``
    their inverse variances (0 = no information), ``sensfunc`` (one per arm) in
    erg cm⁻² Å⁻¹ per e⁻.
    """

    grid: Grid
    data: np.ndarray
    ivar: np.ndarray
    data_noss: np.ndarray
    ivar_noss: np.ndarray
    sensfunc: np.ndarray

    def rows(self, index: Sequence[int] | np.ndarray) -> ArmSpectra:
        """The spectra at 0-based ``index`` (NSPEC − 1)."""
        index = np.asarray(index, dtype=int)
        return ArmSpectra(self.grid, self.data[index], self.ivar[index],
                          self.data_noss[index], self.ivar_noss[index], self.sensfunc)


@dataclass
class L1File:
    """An L1 single (one run) or stack (one OB and arm) of one arm."""

    arm: str
    header: dict[str, Any]
    spectra: ArmSpectra
    fibtable: np.ndarray
    runs: tuple[int, ...] = ()
    kind: str = "single"

    @property
    def name(self) -> str:
        """The file name the format gives it."""
        if self.kind == "stack":
            return stack_name(self.runs)
        if self.kind == "superstack":
            return superstack_name(self.runs)
        return single_name(int(self.header["RUN"]))


@dataclass
class RawFile:
    """A raw run of one arm: extracted counts (adu), rows = fibres, sky included."""

    arm: str
    header: dict[str, Any]
    grid: Grid
    counts: np.ndarray
    fibtable: np.ndarray
    guidinfo: np.ndarray | None = None
    metinfo: np.ndarray | None = None

    @property
    def name(self) -> str:
        """``r<run:07d>.fit``."""
        return raw_name(int(self.header["RUN"]))


@dataclass
class ObjectFile:
    """A per-object file: the object's row of its stacks, per arm, and its FIBTABLE row."""

    cname: str
    header: dict[str, Any]
    arms: dict[str, ArmSpectra]
    fibrow: np.ndarray | Mapping[str, Any]
    """One row: a structured array (as read) or a mapping of one-element columns."""
    provenance: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``WVE_<coordinates>.fit``."""
        return object_name(self.cname)


# -- writing ---------------------------------------------------------------------------

def _primary(keywords: Mapping[str, Any], arm: str, name: str) -> fits.PrimaryHDU:
    """The primary HDU with the required keywords (CAMERA and VPH derived from arm and
    PROGTEMP); refuses an unknown arm or a missing keyword, naming it."""
    if arm not in ARMS:
        raise ValueError(f"{name}: arm must be one of {ARMS}, not {arm!r}")
    missing = [key for key in _REQUIRED if key not in keywords]
    if missing:
        raise ValueError(f"{name}: primary keywords missing: {', '.join(missing)}")
    try:
        mode, green, _, _ = parse_progtemp(str(keywords["PROGTEMP"]))
    except ValueError:
        mode, green = str(keywords.get("MODE", "LR")), False
    header = fits.Header()
    values = {"TELESCOP": "WHT", "INSTRUME": "WEAVE", "ORIGIN": "casuvo", "RADESYS": "ICRS",
              "OBSTYPE": "OBJECT", "CAMERA": CAMERAS[arm], "VPH": vph(mode, arm, green),
              **keywords}
    for key, value in values.items():
        if isinstance(value, np.generic):
            value = value.item()
        header.append(card(key, value, PRIMARY_KEYWORDS.get(key, "")))
    return fits.PrimaryHDU(header=header)


def _fibtable(rows: np.ndarray | Mapping[str, Any], nspec: int, name: str) -> fits.BinTableHDU:
    """FIBTABLE in the format's column order; columns not given get their null
    (NaN, 0 or blank); a column the format lacks is refused, naming it."""
    names = _colnames(rows)
    known = {c[0] for c in FIBTABLE_COLUMNS}
    extra = [n for n in names if n.upper() not in known]
    if extra:
        raise ValueError(f"{name}: FIBTABLE has no column {', '.join(extra)}")
    given = {n.upper(): n for n in names}
    columns = []
    for col, fmt, unit in FIBTABLE_COLUMNS:
        if col in given:
            array = np.asarray(rows[given[col]])
        elif col == "NSPEC":
            array = np.arange(1, nspec + 1)
        elif fmt.endswith("A"):
            array = np.full(nspec, "", dtype="U1")
        elif fmt == "J":
            array = np.zeros(nspec, dtype=np.int32)
        else:
            array = np.full(nspec, np.nan)
        if len(array) != nspec:
            raise ValueError(f"{name}: FIBTABLE column {col} has {len(array)} rows, the "
                             f"file has {nspec} spectra")
        columns.append((col, fmt, unit, array))
    return table_hdu(columns, "FIBTABLE")


def _colnames(rows: np.ndarray | Mapping[str, Any]) -> list[str]:
    if isinstance(rows, Mapping):
        return list(rows)
    names = getattr(rows, "colnames", None) or getattr(getattr(rows, "dtype", None), "names", None)
    if not names:
        raise ValueError("FIBTABLE rows must be a mapping of columns or a structured array")
    return list(names)


def _image(array: np.ndarray, extname: str, grid: Grid | None, bunit: str) -> fits.ImageHDU:
    header = grid.header() if grid is not None else fits.Header()
    header["BUNIT"] = bunit
    return fits.ImageHDU(np.asarray(array, dtype=np.float32), header=header, name=extname)


def _l1_hdus(arm: str, spectra: ArmSpectra, prov: Sequence[str] = ()) -> list[fits.ImageHDU]:
    """The five per-arm L1 data HDUs, in order; PROV0nn on the first."""
    nspec, npix = np.shape(spectra.data)
    for label, array in (("IVAR", spectra.ivar), ("DATA_NOSS", spectra.data_noss),
                         ("IVAR_NOSS", spectra.ivar_noss)):
        if np.shape(array) != (nspec, npix):
            raise ValueError(f"{arm}_{label} has shape {np.shape(array)}, {arm}_DATA "
                             f"{(nspec, npix)}")
    if npix != spectra.grid.naxis1 or np.shape(spectra.sensfunc) != (npix,):
        raise ValueError(f"{arm}: the grid has {spectra.grid.naxis1} pixels, DATA {npix}, "
                         f"SENSFUNC {np.shape(spectra.sensfunc)}")
    rate, ivar = "ct/s", "s2/ct2"      # FITS-standard unit strings (ct: electrons)
    hdus = [
        _image(spectra.data, f"{arm}_DATA", spectra.grid, rate),
        _image(spectra.ivar, f"{arm}_IVAR", spectra.grid, ivar),
        _image(spectra.data_noss, f"{arm}_DATA_NOSS", spectra.grid, rate),
        _image(spectra.ivar_noss, f"{arm}_IVAR_NOSS", spectra.grid, ivar),
        _image(spectra.sensfunc, f"{arm}_SENSFUNC", None, "10**(-17) erg/(cm2.Angstrom.ct)"),
    ]
    sens = hdus[-1].header
    for key in ("CRVAL1", "CD1_1"):
        sens[key] = hdus[0].header[key]
    sens["CTYPE1"], sens["CUNIT1"], sens["CRPIX1"] = "WAVE", "Angstrom", 1.0
    for n, value in enumerate(prov, start=1):
        hdus[0].header[f"PROV{n:03d}"] = (value, "Input file")
    return hdus


def write_l1(path: Path | str, l1: L1File) -> Path:
    """Write an L1 single or stack to ``path`` (a directory: the format's name is used)
    atomically with checksums; returns the file written."""
    path = _target(path, l1.name)
    nspec = np.shape(l1.spectra.data)[0]
    keywords = dict(l1.header)
    prov: list[str] = []
    if l1.kind in ("stack", "superstack"):
        if not l1.runs:
            raise ValueError(f"{path.name}: a stack needs its contributing runs")
        keywords["RUN"] = min(l1.runs)
        keywords["NCOMBINE"] = len(l1.runs)
        for n, run in enumerate(sorted(l1.runs), start=1):
            keywords[f"RUNS{n:03d}"] = int(run)
        prov = [single_name(run) for run in sorted(l1.runs)]
    elif l1.kind != "single":
        raise ValueError(f"{path.name}: kind must be single, stack or superstack, not "
                         f"{l1.kind!r}")
    hdul = fits.HDUList([_primary(keywords, l1.arm, path.name),
                         *_l1_hdus(l1.arm, l1.spectra, prov),
                         _fibtable(l1.fibtable, nspec, path.name)])
    write_product(hdul, path)
    return path


def write_raw(path: Path | str, raw: RawFile) -> Path:
    """Write a raw run of one arm (PRIMARY, COUNTS, FIBTABLE, GUIDINFO, METINFO)."""
    path = _target(path, raw.name)
    nspec, npix = np.shape(raw.counts)
    if npix != raw.grid.naxis1:
        raise ValueError(f"{path.name}: COUNTS has {npix} pixels, the grid {raw.grid.naxis1}")
    keywords = {"GAIN": 1.0, "RDNOISE": 3.0, **raw.header}
    counts = _image(raw.counts, "COUNTS", raw.grid, "adu")
    guid = raw.guidinfo if raw.guidinfo is not None else _default_guidinfo(keywords)
    met = raw.metinfo if raw.metinfo is not None else _default_metinfo(keywords)
    hdul = fits.HDUList([_primary(keywords, raw.arm, path.name), counts,
                         _fibtable(raw.fibtable, nspec, path.name),
                         fits.BinTableHDU(guid, name="GUIDINFO"),
                         fits.BinTableHDU(met, name="METINFO")])
    write_product(hdul, path)
    return path


def _default_guidinfo(keywords: Mapping[str, Any]) -> np.ndarray:
    """Guider samples at the start and end of the run (seeing as the header has it)."""
    mjd = float(keywords["MJD-OBS"])
    end = mjd + float(keywords["EXPTIME"]) / 86400.0
    table = np.zeros(2, dtype=[("MJD", "f8"), ("SEEING", "f4"), ("XOFFSET", "f4"),
                               ("YOFFSET", "f4"), ("FLUX", "f4")])
    table["MJD"] = (mjd, end)
    table["SEEING"] = (float(keywords["SEEINGB"]), float(keywords["SEEINGE"]))
    table["FLUX"] = 1.0
    return table


def _default_metinfo(keywords: Mapping[str, Any]) -> np.ndarray:
    """Meteorological samples at the start and end of the run."""
    mjd = float(keywords["MJD-OBS"])
    table = np.zeros(2, dtype=[("MJD", "f8"), ("WINDSP", "f4"), ("WINDDIR", "f4"),
                               ("HUMIDITY", "f4"), ("TEMPERATURE", "f4")])
    table["MJD"] = (mjd, mjd + float(keywords["EXPTIME"]) / 86400.0)
    for col, b, e in (("WINDSP", "WINDSPB", "WINDSPE"), ("WINDDIR", "WINDDIRB", "WINDDIRE"),
                      ("HUMIDITY", "TELHUMB", "TELHUME"),
                      ("TEMPERATURE", "TELTEMPB", "TELTEMPE")):
        table[col] = (float(keywords.get(b, np.nan)), float(keywords.get(e, np.nan)))
    return table


def object_from_stacks(stacks: Sequence[L1File], cname: str) -> ObjectFile:
    """The per-object file of ``cname`` from its OB's stacks (one per arm); raises
    ``KeyError`` naming the CNAME when no stack holds it."""
    found = objects_from_stacks(stacks, [cname])
    if not found:
        raise KeyError(f"{cname} is in none of the stacks {[s.name for s in stacks]}")
    return found[0]


def objects_from_stacks(stacks: Sequence[L1File], cnames: Iterable[str] | None = None
                        ) -> list[ObjectFile]:
    """The per-object files of an OB's stacks (one per arm): for each CNAME (default:
    every science target, TARGUSE ``T``, whose fibre is not dead), its row of each
    stack, the FIBTABLE row and the OB keywords of the first stack (red when there is
    one), the stacks' names as provenance."""
    stacks = sorted(stacks, key=lambda s: ARMS.index(s.arm))
    tables = [records(_fibtable(s.fibtable, np.shape(s.spectra.data)[0], s.name).data)
              for s in stacks]
    if cnames is None:
        first = tables[0] if tables else np.zeros(0, dtype=[("CNAME", "U1")])
        keep = (first["TARGUSE"] == "T") & (first["STATUS"] != "D") & (first["CNAME"] != "")
        cnames = list(first["CNAME"][keep])
    out = []
    for cname in cnames:
        cname = str(cname).strip()
        arms: dict[str, ArmSpectra] = {}
        fibrow = None
        header: dict[str, Any] = {}
        prov = []
        for stack, table in zip(stacks, tables, strict=True):
            (hits,) = np.nonzero(table["CNAME"] == cname)
            if len(hits) == 0:
                continue
            arms[stack.arm] = stack.spectra.rows([int(table["NSPEC"][hits[0]]) - 1])
            prov.append(stack.name)
            if fibrow is None:
                fibrow = table[hits[:1]]
                header = {k: v for k, v in stack.header.items()
                          if not k.startswith("RUNS") and k not in ("CAMERA", "VPH")}
        if fibrow is not None:
            header["CNAME"] = cname
            out.append(ObjectFile(cname, header, arms, fibrow, prov))
    return out


def write_object_file(path: Path | str, obj: ObjectFile) -> Path:
    """Write a per-object file: PRIMARY, then per arm (RED, BLUE) the five L1 HDUs of
    one row, then a one-row FIBTABLE."""
    path = _target(path, obj.name)
    if not obj.arms:
        raise ValueError(f"{path.name}: no arm to write")
    arm0 = next(a for a in ARMS if a in obj.arms)
    keywords = {"RUN": 0, **obj.header, "NCOMBINE": len(obj.provenance)}
    primary = _primary(keywords, arm0, path.name)
    del primary.header["CAMERA"], primary.header["VPH"]
    for n, name in enumerate(obj.provenance, start=1):
        primary.header[f"PROV{n:03d}"] = (name, "Stack the spectrum comes from")
    hdus: list[Any] = [primary]
    for arm in ARMS:
        if arm in obj.arms:
            hdus.extend(_l1_hdus(arm, obj.arms[arm]))
    hdus.append(_fibtable(obj.fibrow, 1, path.name))
    write_product(fits.HDUList(hdus), path)
    return path


def _target(path: Path | str, name: str) -> Path:
    path = Path(path)
    return path / name if path.is_dir() else path


# -- reading ---------------------------------------------------------------------------

def identify(path: Path | str) -> str | None:
    """``raw``, ``single``, ``stack`` or ``object`` for a WEAVE file name, else None."""
    name = Path(path).name
    for kind, pattern in (("raw", r"r\d{7}\.fit"), ("single", r"single_\d{7}\.fit"),
                          ("stack", r"stack_\d{7}\.fit"),
                          ("superstack", r"superstack_\d{7}\.fit"), ("object", r"WVE_.+\.fit")):
        if re.fullmatch(pattern, name):
            return kind
    return None


def _arm_of(hdul: fits.HDUList, name: str) -> str:
    camera = str(hdul[0].header.get("CAMERA", ""))
    for arm, cam in CAMERAS.items():
        if cam == camera:
            return arm
    raise ProductFileError(f"{name}: CAMERA {camera!r} is neither WEAVERED nor WEAVEBLUE")


def _header_dict(header: fits.Header) -> dict[str, Any]:
    skip = {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "CHECKSUM", "DATASUM", "COMMENT", "HISTORY", ""}
    return {key: header[key] for key in header if key not in skip}


def _arm_spectra(hdul: fits.HDUList, arm: str, name: str) -> ArmSpectra:
    try:
        data = hdul[f"{arm}_DATA"]
        grid = Grid.from_header(data.header, name)
        arrays = [np.asarray(hdul[f"{arm}_{ext}"].data, dtype=np.float32)
                  for ext in L1_EXTENSIONS]
    except KeyError as exc:
        raise ProductFileError(f"{name}: no {arm} extension {exc}") from exc
    shape = arrays[0].shape
    if len(shape) != 2 or shape[1] != grid.naxis1 or any(a.shape != shape for a in arrays[1:4]) \
            or arrays[4].shape != (grid.naxis1,):
        raise ProductFileError(f"{name}: {arm} arrays of inconsistent shapes "
                               f"{[a.shape for a in arrays]}")
    return ArmSpectra(grid, *arrays)


def read_l1(path: Path | str) -> L1File:
    """An L1 single or stack, checked (HDU order by index and name, shapes, checksums)."""
    path = Path(path)
    with open_product(path, what="WEAVE L1 file") as hdul:
        arm = _arm_of(hdul, path.name)
        names = l1_extension_names(arm)
        found = [h.name for h in hdul]
        if found[:7] != list(names):
            raise ProductFileError(f"{path.name}: HDUs {found} are not in the L1 order "
                                   f"{list(names)}")
        spectra = _arm_spectra(hdul, arm, path.name)
        fibtable = records(hdul["FIBTABLE"].data)
        if len(fibtable) != spectra.data.shape[0]:
            raise ProductFileError(f"{path.name}: FIBTABLE has {len(fibtable)} rows, "
                                   f"{arm}_DATA {spectra.data.shape[0]} spectra")
        header = _header_dict(hdul[0].header)
    runs = tuple(int(v) for k, v in header.items() if re.fullmatch(r"RUNS\d{3}", k))
    kind = ("superstack" if path.name.startswith("superstack_") else "stack") if runs \
        else "single"
    return L1File(arm, header, spectra, fibtable, runs or (int(header["RUN"]),), kind)


def read_raw(path: Path | str) -> RawFile:
    """A raw run, checked (RAW_EXTENSIONS in order)."""
    path = Path(path)
    with open_product(path, names=RAW_EXTENSIONS, what="WEAVE raw file") as hdul:
        arm = _arm_of(hdul, path.name)
        grid = Grid.from_header(hdul["COUNTS"].header, path.name)
        counts = np.asarray(hdul["COUNTS"].data, dtype=np.float32)
        fibtable = records(hdul["FIBTABLE"].data)
        if counts.ndim != 2 or counts.shape != (len(fibtable), grid.naxis1):
            raise ProductFileError(f"{path.name}: COUNTS {counts.shape} does not match "
                                   f"{len(fibtable)} fibres × {grid.naxis1} pixels")
        return RawFile(arm, _header_dict(hdul[0].header), grid, counts, fibtable,
                       records(hdul["GUIDINFO"].data), records(hdul["METINFO"].data))


def read_object_file(path: Path | str) -> ObjectFile:
    """A per-object file, as written (per arm, inverse variance)."""
    path = Path(path)
    with open_product(path, what="WEAVE per-object file") as hdul:
        found = [h.name for h in hdul]
        arms = [a for a in ARMS if f"{a}_DATA" in found]
        expected = ["PRIMARY"] + [f"{a}_{e}" for a in arms for e in L1_EXTENSIONS] + ["FIBTABLE"]
        if not arms or found != expected:
            raise ProductFileError(f"{path.name}: HDUs {found}, expected {expected}")
        spectra = {arm: _arm_spectra(hdul, arm, path.name) for arm in arms}
        fibrow = records(hdul["FIBTABLE"].data)
        header = _header_dict(hdul[0].header)
    if len(fibrow) != 1 or any(s.data.shape[0] != 1 for s in spectra.values()):
        raise ProductFileError(f"{path.name}: a per-object file has one row per arm")
    prov = [str(v) for k, v in header.items() if re.fullmatch(r"PROV\d{3}", k)]
    return ObjectFile(str(header.get("CNAME", "")), header, spectra, fibrow, prov)


def calibrated(spectra: ArmSpectra, row: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wave Å, flux, sigma) of one row: flux = DATA × SENSFUNC, sigma = SENSFUNC/√IVAR,
    NaN where IVAR ≤ 0 or is not finite."""
    sens = spectra.sensfunc.astype(np.float64)
    ivar = spectra.ivar[row].astype(np.float64)
    flux = spectra.data[row].astype(np.float64) * sens
    good = np.isfinite(ivar) & (ivar > 0)
    sigma = np.full(ivar.shape, np.nan)
    sigma[good] = np.abs(sens[good]) / np.sqrt(ivar[good])
    return spectra.grid.wave, flux, sigma


def read_object(path: Path | str) -> Spectrum:
    """The calibrated spectrum of a per-object file, both arms joined on wavelength:
    the blue arm below the split, the red above it; the split is the middle of the
    arms' overlap (5925 Å in LR) or the gap between them (HR).  sigma is 1σ from the
    inverse variance, NaN where IVAR is 0."""
    obj = read_object_file(path)
    parts = {arm: calibrated(spec) for arm, spec in obj.arms.items()}
    if len(parts) == 2:
        blue, red = parts["BLUE"], parts["RED"]
        lo, hi = red[0][0], blue[0][-1]
        split = 0.5 * (lo + hi) if hi >= lo else hi + 0.5 * (lo - hi)
        keep_b, keep_r = blue[0] < split, red[0] >= split
        wave, flux, sigma = (np.concatenate([b[keep_b], r[keep_r]])
                             for b, r in zip(blue, red, strict=True))
    else:
        wave, flux, sigma = next(iter(parts.values()))
    meta = dict(obj.header)
    meta["ARMS"] = " ".join(a for a in ARMS if a in obj.arms)
    row = obj.fibrow[0]
    for col in ("TARGID", "TARGNAME", "TARGRA", "TARGDEC", "SNR", "FIBREID", "TARGSRVY"):
        if col in obj.fibrow.dtype.names:
            value = row[col]
            meta[col] = value.strip() if isinstance(value, str) else value.item() \
                if isinstance(value, np.generic) else value
    return Spectrum(wave=wave, flux=flux, sigma=sigma,
                    flux_unit=FLUX_UNIT, meta=meta)


def validate(path: Path | str) -> None:
    """Raise :class:`ProductFileError` unless ``path`` reads as the WEAVE file its name
    says it is."""
    kind = identify(path)
    if kind is None:
        raise ProductFileError(f"{Path(path).name}: not a WEAVE file name")
    {"raw": read_raw, "single": read_l1, "stack": read_l1, "superstack": read_l1,
     "object": read_object_file}[kind](path)


# -- the pipeline's writer protocol (casuvo.spectra.products) --------------------------

def _grid_of(wave: np.ndarray) -> Grid:
    """The linear grid of a wavelength array (the pipeline's arms are linear)."""
    wave = np.asarray(wave, dtype=np.float64)
    step = float(wave[1] - wave[0]) if wave.size > 1 else 1.0
    return Grid(float(wave[0]), step, int(wave.size))


def _from_sigma(arm: ArmData) -> ArmSpectra:
    """An arm in WEAVE's convention: DATA = flux × response (e⁻ s⁻¹; the extracted
    spectra are in electrons, gain 1), IVAR = 1/(σ × response)² (0 where σ is not
    finite), SENSFUNC = 1/response, so that DATA × SENSFUNC is the flux again."""
    response = np.asarray(arm.sensfunc, dtype=np.float64)
    flux, sigma = np.atleast_2d(arm.flux), np.atleast_2d(arm.sigma)
    flux_n, sigma_n = np.atleast_2d(arm.flux_noss), np.atleast_2d(arm.sigma_noss)

    def convert(f: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = np.isfinite(f) & np.isfinite(s) & (s > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ivar = np.where(ok, 1.0 / (s * response) ** 2, 0.0)
        return np.where(ok, f * response, 0.0), ivar

    data, ivar = convert(flux, sigma)
    data_n, ivar_n = convert(flux_n, sigma_n)
    return ArmSpectra(_grid_of(arm.wave), data.astype(np.float32), ivar.astype(np.float32),
                      data_n.astype(np.float32), ivar_n.astype(np.float32),
                      (1.0 / response).astype(np.float32))


def _ob_keywords(o: Mapping[str, Any]) -> dict[str, Any]:
    """The WEAVE primary keywords of a reduced OB (the pipeline's OB row)."""
    return {
        "OBTITLE": str(o["ob_name"]), "CAT-NAME": f"./{obspec_name(o)}.xml",
        "INFILE": f"./{obspec_name(o)}.xml", "OBID": int(o["ob_id"]),
        "OBSTART": float(o["mjd_obs"]), "CASUID": f"casuvo-{o.get('version', '')}",
        "SYSVER": str(o.get("version", "")), "PROGTEMP": str(o["proc_template"]),
        "OBSTEMP": str(o["obs_template"]), "MODE": str(o.get("mode", "LR")),
        "MJD-OBS": float(o["mjd_obs"]), "DATE-OBS": str(o.get("date_obs", "")),
        "EXPTIME": float(o["exptime"]), "AIRMASS": float(o["airmass"]),
        "SEEINGB": float(o["seeing"]), "SEEINGE": float(o["seeing"]),
        "RA": float(o["ra"]), "DEC": float(o["dec"]), "TRIMESTR": str(o.get("trimester", "")),
        "AUTHOR": str(o.get("author", "")), "OBSERVER": "casuvo",
    }


def _fibres_table(f: Mapping[str, np.ndarray], o: Mapping[str, Any],
                  resolution: float) -> dict[str, Any]:
    """FIBTABLE columns from the pipeline's fibre rows."""
    is_obj = np.asarray(f["obj_type"]) == "OBJ"
    progs = "|".join(str(o.get(k, "")) for k in ("srv1", "srv2", "srv3") if o.get(k, ""))
    n = len(is_obj)
    source = np.asarray(f["source_id"]).astype(np.int64)
    return {
        "FIBREID": np.asarray(f["fibre"]), "TARGSRVY": np.full(n, str(o.get("srv1", ""))),
        "TARGPROG": np.full(n, progs), "TARGCAT": np.full(n, str(o.get("field", ""))),
        "CNAME": np.asarray(f["target_name"]).astype(str),
        "TARGID": np.asarray(f["target_id"]).astype(str),
        "TARGNAME": np.where(is_obj, np.char.add("Gaia DR3 ", source.astype(str)), "sky"),
        "TARGRA": f["ra"], "TARGDEC": f["dec"], "EPOCH": np.full(n, 2016.0),
        "TARGUSE": np.where(is_obj, "T", "S"), "TARGCLASS": np.where(is_obj, "STAR", "SKY"),
        "MAG_G": f["mag_g"], "FIBRERA": f["ra"], "FIBREDEC": f["dec"],
        "STATUS": np.where(np.asarray(f["fibre_status"]) == "DEAD", "D", "A"),
        "SNR": f["snr"], "RESOL": np.full(n, resolution), "HELIO_COR": f["helio_cor"],
        "SKY_SCALE": f["sky_scale"],
    }


#: The pipeline's sky-residual term (casuvo.pipeline.spectro_tasks.SKY_RESIDUAL): the
#: singles below are its per-exposure spectra, whose inverse-variance mean is its stack
#: (tests/compute/test_weave_fourmost_products.py holds the two to each other).
SKY_RESIDUAL = 0.02


def _singles(ob: OBData, root: Path) -> list[tuple[dict[str, Any], ArmData]]:
    """Each raw run of the OB reduced as the pipeline reduces it before stacking: sky =
    median of the sky fibres, its error and a 2 % residual added to the variance, flux
    = (counts − sky) / (response × EXPTIME); dead fibres NaN.  Returns (the run's
    primary keywords, its arm)."""
    f = ob.fibres
    order_fibres = np.asarray(f["fibre"])
    good_sky = (np.asarray(f["obj_type"]) == "SKY") & (np.asarray(f["fibre_status"]) != "DEAD")
    dead = np.asarray(f["fibre_status"]) == "DEAD"
    arms = {a.arm: a for a in ob.arms}
    out = []
    for rel in ob.ob.get("raw_files", ()):
        with fits.open(root / rel, memmap=False) as hdul:
            header = hdul[0].header
            arm = arms.get(str(header.get("ARM", "")))
            if arm is None:
                continue
            fibre = np.asarray(hdul["FIBINFO"].data["FIBRE"])
            rows = np.argsort(fibre)
            if not np.array_equal(fibre[rows], order_fibres):
                raise ProductFileError(f"{Path(rel).name}: fibres differ from the OB's")
            counts = np.asarray(hdul["COUNTS"].data, dtype=np.float64)[rows]
            var = np.asarray(hdul["VARIANCE"].data, dtype=np.float64)[rows]
            keys = {"RUN": int(header["RUN"]), "MJD-OBS": float(header["MJD-OBS"]),
                    "DATE-OBS": str(header.get("DATE-OBS", "")),
                    "EXPTIME": float(header["EXPTIME"]),
                    "AIRMASS": float(header.get("AIRMASS", np.nan))}
        sky = np.median(counts[good_sky], axis=0)
        sky_var = np.pi / 2 * np.mean(var[good_sky], axis=0) / max(int(good_sky.sum()), 1)
        scale = np.asarray(arm.sensfunc, dtype=np.float64) * keys["EXPTIME"]
        flux = (counts - sky) / scale
        sigma = np.sqrt(var + sky_var + (SKY_RESIDUAL * sky) ** 2) / scale
        flux[dead] = np.nan
        sigma[dead] = np.nan
        out.append((keys, ArmData(arm.arm, arm.wave, flux, sigma, counts / scale,
                                  np.sqrt(var) / scale, arm.sensfunc, arm.resolution)))
    return out


def write_ob(ob: OBData, out_dir: Path) -> list[Path]:
    """The OB's L1 files under ``<out_dir>/<night>/``: per arm its stack
    (``stack_<lowest run of the arm>.fit``), red first — the OB's ``product_file`` —
    then a ``single_<run>.fit`` per raw run (each exposure's arm reduced as the
    pipeline reduces it before stacking)."""
    o = ob.ob
    root = Path(out_dir).parents[1]
    night_dir = Path(out_dir) / str(o["night"])
    singles = _singles(ob, root)
    runs: dict[str, list[int]] = {}
    for keys, arm in singles:
        runs.setdefault(arm.arm, []).append(int(keys["RUN"]))
    keywords = {**_ob_keywords(o), "SPECSYS": "TOPOCENT",
                "SNR": round(float(ob.qc.get("snr_median", np.nan)), 3),
                "QCSTATUS": str(ob.qc.get("status", ""))}
    keywords = _finite(keywords)
    paths = []
    for arm in sorted(ob.arms, key=lambda a: ARMS.index(a.arm)):
        stack = L1File(arm.arm, keywords, _from_sigma(arm),
                       _fibres_table(ob.fibres, o, arm.resolution),
                       runs=tuple(runs.get(arm.arm) or (int(o.get("run", 0)),)), kind="stack")
        paths.append(write_l1(night_dir / stack.name, stack))
    for keys, arm in singles:
        single = L1File(arm.arm, _finite({**keywords, **keys, "SEEINGB": o["seeing"],
                                          "SEEINGE": o["seeing"]}),
                        _from_sigma(arm), _fibres_table(ob.fibres, o, arm.resolution))
        single.header.pop("SNR", None)
        paths.append(write_l1(night_dir / single.name, single))
    return paths


#: Primary keywords of one run or one OB that a superstack (many OBs) does not keep.
#: (OBID, OBTITLE, AIRMASS, seeing, weather: the first OB's; MJD-OBS, OBSTART: the earliest.)
_PER_OB = ("RUN", "NCOMBINE", "DATE-OBS", "SNR", "QCSTATUS")


def superstack(singles: Sequence[L1File]) -> L1File:
    """The superstack of one arm's singles (those of all the OBs of one OBSpec): per
    target the inverse-variance mean of ``DATA`` and of ``DATA_NOSS``, ``IVAR`` and
    ``IVAR_NOSS`` their sums (pixels with IVAR 0 add nothing; DATA is 0 where no single
    has information).  Rows follow the first single's FIBTABLE; the others' rows are
    matched to them by ``CNAME``, so an OB whose fibre allocation differs adds to the
    targets it shares and nothing to the others (its targets not in the first OB are
    left out).  The singles must share the arm, the wavelength grid and the sensitivity
    function (one instrument configuration), else ValueError naming the single."""
    if not singles:
        raise ValueError("a superstack needs at least one single")
    first = singles[0]
    ref = first.spectra
    row_of = dict(_keyed(first.fibtable["CNAME"]))
    shape = np.shape(ref.data)
    sums = {k: np.zeros(shape) for k in ("w", "s", "wn", "sn")}
    runs: list[int] = []
    for l1 in singles:
        sp = l1.spectra
        if l1.arm != first.arm or sp.grid != ref.grid or not np.allclose(
                sp.sensfunc, ref.sensfunc, rtol=1e-6):
            raise ValueError(f"{l1.name}: arm, wavelength grid or sensitivity function "
                             f"differs from {first.name}'s (another instrument configuration)")
        rows = np.array([row_of.get(k, -1) for k, _ in _keyed(l1.fibtable["CNAME"])])
        keep = rows >= 0
        for data, ivar, w, s in ((sp.data, sp.ivar, "w", "s"),
                                 (sp.data_noss, sp.ivar_noss, "wn", "sn")):
            iv = np.where(np.isfinite(ivar) & (ivar > 0), ivar, 0.0).astype(np.float64)[keep]
            d = np.where(iv > 0, np.asarray(data, dtype=np.float64)[keep], 0.0)
            np.add.at(sums[w], rows[keep], iv)
            np.add.at(sums[s], rows[keep], iv * d)
        runs.extend(int(r) for r in l1.runs)
    with np.errstate(divide="ignore", invalid="ignore"):
        data = np.where(sums["w"] > 0, sums["s"] / sums["w"], 0.0)
        data_n = np.where(sums["wn"] > 0, sums["sn"] / sums["wn"], 0.0)
        snr = np.nanmedian(np.where(sums["w"] > 0, data * np.sqrt(sums["w"]), np.nan), axis=1)
    fib = first.fibtable.copy()
    alive = (sums["w"] > 0).any(axis=1)
    if "STATUS" in fib.dtype.names:
        fib["STATUS"] = np.where(alive, "A", "D")
    if "SNR" in fib.dtype.names:
        fib["SNR"] = snr
    header = {k: v for k, v in first.header.items()
              if k not in _PER_OB and not re.fullmatch(r"(RUNS|PROV)\d{3}", k)}
    header.update({"MJD-OBS": min(float(x.header["MJD-OBS"]) for x in singles),
                   "OBSTART": min(float(x.header["OBSTART"]) for x in singles),
                   "EXPTIME": float(sum(float(x.header["EXPTIME"]) for x in singles)),
                   "NOBS": len({x.header.get("OBID") for x in singles})})
    spectra = ArmSpectra(ref.grid, data.astype(np.float32), sums["w"].astype(np.float32),
                         data_n.astype(np.float32), sums["wn"].astype(np.float32),
                         np.asarray(ref.sensfunc, dtype=np.float32))
    return L1File(first.arm, header, spectra, fib, tuple(sorted(runs)), "superstack")


def _keyed(cnames: Iterable[Any]) -> list[tuple[tuple[str, int], int]]:
    """(CNAME, its occurrence number) per row, and the row: a name given to several
    fibres (blank sky positions) matches the other file's rows in order."""
    seen: dict[str, int] = {}
    out = []
    for i, c in enumerate(cnames):
        c = str(c).strip()
        seen[c] = seen.get(c, -1) + 1
        out.append(((c, seen[c]), i))
    return out


def write_superstacks(singles: Sequence[Path | str], out_dir: Path | str) -> list[Path]:
    """The superstacks of one OBSpec from its singles' files (all its OBs, both arms):
    one ``superstack_<lowest run>.fit`` per arm under ``out_dir``, red first."""
    by_arm: dict[str, list[L1File]] = {}
    for path in singles:
        l1 = read_l1(path)
        by_arm.setdefault(l1.arm, []).append(l1)
    return [write_l1(Path(out_dir) / (s := superstack(
                sorted(by_arm[arm], key=lambda x: min(x.runs)))).name, s)
            for arm in sorted(by_arm, key=ARMS.index)]


def _finite(keywords: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords without NaN or infinite values (FITS has no NaN keyword)."""
    return {k: v for k, v in keywords.items() if not (isinstance(v, float) and
                                                       not np.isfinite(v))}


@functools.lru_cache(maxsize=32)
def _stack_keywords(path: str, mtime_ns: int) -> dict[str, Any]:
    """A stack's primary keywords, read once for all its objects (keyed by the file's
    modification time, so a rewritten stack is read again)."""
    return _header_dict(fits.getheader(path))


def write_object(obj: ObjectData, out_dir: Path) -> Path:
    """The object's ``WVE_<coordinates>_<mode>.fit`` under ``<out_dir>/objects/`` (an
    object observed in LR and HR has two spectra): per arm its spectrum (the
    epochs' stack, heliocentric), the OB keywords of its newest epoch's stack, one
    FIBTABLE row; ``PROV0nn`` the epochs' stacks."""
    root = Path(out_dir).parents[1]
    newest = max(obj.epochs, key=lambda e: e.mjd_obs)
    stack = root / newest.product_file
    stack_header = _stack_keywords(str(stack), stack.stat().st_mtime_ns)
    header = {k: v for k, v in stack_header.items()
              if not re.fullmatch(r"RUNS\d{3}", k) and k not in ("CAMERA", "VPH", "SNR",
                                                                  "QCSTATUS", "NCOMBINE")}
    header.update({
        "MJD-OBS": min(e.mjd_obs for e in obj.epochs),
        "EXPTIME": float(sum(e.exptime for e in obj.epochs)), "SPECSYS": "HELIOCEN",
        "SOURCEID": int(obj.source_id), "SNR": round(float(obj.snr), 3),
        "VRAD": round(float(obj.rv), 3), "VRADERR": round(float(obj.rv_error), 3),
        "BESTTMPL": obj.rv_template, "SPEC_ID": obj.spectrum_id, "NEPOCHS": len(obj.epochs),
        **{k: v for k, v in obj.keywords.items() if k not in ("TELESCOP", "INSTRUME")},
    })
    header = {k: v for k, v in header.items()
              if not (isinstance(v, float) and not np.isfinite(v))}
    fibrow = {
        "FIBREID": [newest.fibre], "CNAME": [obj.target_name], "TARGID": [obj.target_id],
        "TARGNAME": [f"Gaia DR3 {obj.source_id}"], "TARGRA": [obj.ra], "TARGDEC": [obj.dec],
        "TARGUSE": ["T"], "TARGCLASS": ["STAR"], "MAG_G": [obj.mag_g], "FIBRERA": [obj.ra],
        "FIBREDEC": [obj.dec], "STATUS": ["A"], "SNR": [obj.snr],
        "HELIO_COR": [newest.helio_cor], "EPOCH": [2016.0],
    }
    arms = {a.arm: _from_sigma(a) for a in obj.arms}
    prov = [Path(e.product_file).name for e in sorted(obj.epochs, key=lambda e: e.mjd_obs)]
    target = ObjectFile(obj.target_name, header, arms, fibrow, prov)
    return write_object_file(
        Path(out_dir) / "objects" / object_name(obj.target_name, obj.setting), target)


def raw_hdus(hdus: list[Any], ob: Mapping[str, Any], arm: str) -> list[Any]:
    """The simulator's raw exposure of one arm made a WEAVE raw run: the WEAVE primary
    keywords (CAMERA, VPH, OBTITLE, CAT-NAME, OBSTART, SEEINGB/E, the weather pairs …)
    added and GUIDINFO and METINFO appended — after the pipeline's own input HDUs
    (``COUNTS``, ``VARIANCE``, ``FIBINFO``), which stay as they are.  The weather is a
    fixed function of the OB id (the archive shows it; nothing reduces with it)."""
    header = hdus[0].header
    ob_id = int(ob["ob_id"])
    mode = str(ob.get("mode", "LR"))
    seeing = float(ob.get("seeing", np.nan))
    weather = {"WINDSPB": 2.0 + ob_id % 7, "WINDSPE": 2.5 + ob_id % 7,
               "WINDDIRB": float(ob_id * 37 % 360), "WINDDIRE": float(ob_id * 37 % 360 + 5),
               "TELHUMB": 20.0 + ob_id % 30, "TELHUME": 21.0 + ob_id % 30,
               "TELTEMPB": 8.0 + ob_id % 5, "TELTEMPE": 7.5 + ob_id % 5,
               "SKYBRTEL": 21.0 + 0.1 * (ob_id % 7)}
    keywords = {"CAMERA": CAMERAS.get(arm, ""), "VPH": vph(mode, arm),
                "OBTITLE": str(ob["ob_name"]), "CAT-NAME": f"./{obspec_name(ob)}.xml",
                "INFILE": f"./{obspec_name(ob)}.xml", "OBSTART": float(ob["mjd_obs"]),
                "SEEINGB": seeing, "SEEINGE": seeing, **weather, "OBSERVER": "casuvo"}
    for key, value in keywords.items():
        if not (isinstance(value, float) and not np.isfinite(value)):
            header.append(card(key, value, PRIMARY_KEYWORDS.get(key, "")), end=True)
    values = {k: header[k] for k in ("MJD-OBS", "EXPTIME")} | keywords
    return [*hdus, fits.BinTableHDU(_default_guidinfo(values), name="GUIDINFO"),
            fits.BinTableHDU(_default_metinfo(values), name="METINFO")]

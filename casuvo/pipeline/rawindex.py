# SPDX-License-Identifier: BSD-3-Clause
"""The raw files of a survey, classified from their own headers.

Real pipelines trust headers, not directory listings: every raw file is
opened, its ESO keywords read and checked, and it becomes a :class:`RawFile`
(science exposure, dark, bias or twilight flat) or a :class:`RawProblem`
naming the file and what is wrong with it (unreadable, truncated, a missing
keyword).  Run numbers follow CASU: the position of the exposure in its
night, counting all raw files of the instrument in time order from 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from astropy.io import fits
from astropy.time import Time
from astropy.utils.exceptions import AstropyWarning

__all__ = ["RawFile", "RawIndex", "RawProblem", "build_index", "index_raw", "night_of",
           "read_raw"]

REQUIRED = ("INSTRUME", "MJD-OBS", "EXPTIME", "HIERARCH ESO DPR TYPE",
            "HIERARCH ESO INS FILT1 NAME")
SCIENCE_REQUIRED = ("RA", "DEC", "OBJECT", "HIERARCH ESO OBS ID",
                    "HIERARCH ESO TEL AIRM START", "HIERARCH ESO DET DIT",
                    "HIERARCH ESO DET NDIT")


@dataclass(frozen=True)
class RawFile:
    path: Path
    kind: str
    """'science', 'dark', 'bias' or 'flat'."""
    instrument: str
    night: str
    band: str
    mjd: float
    exptime: float
    dit: float
    ndit: int
    obj: str = ""
    ra: float = 0.0
    dec: float = 0.0
    obs_id: int = 0
    tile: int = 1
    jitter: int = 1
    airmass: float = 1.0
    prog_id: str = ""
    run: int = 0


@dataclass(frozen=True)
class RawProblem:
    path: Path
    message: str


@dataclass(frozen=True)
class RawIndex:
    files: tuple[RawFile, ...]
    problems: tuple[RawProblem, ...]

    def science(self, night: str | None = None) -> list[RawFile]:
        return [f for f in self.files if f.kind == "science" and night in (None, f.night)]

    def calibrations(self, night: str, kind: str) -> list[RawFile]:
        return [f for f in self.files if f.kind == kind and f.night == night]


def night_of(mjd: float) -> str:
    """ESO night (YYYYMMDD of the evening): the date 12 h before the exposure, in UT."""
    return Time(mjd - 0.5, format="mjd").strftime("%Y%m%d")


_KINDS = {"OBJECT": "science", "DARK": "dark", "BIAS": "bias", "FLAT,TWILIGHT": "flat",
          "FLAT,SKY": "flat"}


def read_raw(path: Path, filters: dict[str, str]) -> RawFile | RawProblem:
    """One raw file classified from its headers, or what is wrong with it (a Dask
    worker may read many at once: this is most of a run's start)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyWarning)
        try:
            with fits.open(path, memmap=False) as hdul:
                hdul.verify("exception")
                h = hdul[0].header
                n_ext = len(hdul) - 1
                sizes_ok = all(hdu.data is not None for hdu in hdul[1:])
        except Exception as exc:  # astropy raises many types for broken files
            return RawProblem(path, f"{path.name}: unreadable or truncated FITS ({exc})")
    if n_ext == 0 or not sizes_ok:
        return RawProblem(path, f"{path.name}: no detector data")
    missing = [k for k in REQUIRED if k not in h]
    kind = _KINDS.get(str(h.get("HIERARCH ESO DPR TYPE", "")).upper())
    if kind == "science":
        missing += [k for k in SCIENCE_REQUIRED if k not in h]
    if missing:
        return RawProblem(path, f"{path.name}: missing header keyword(s) "
                                f"{', '.join(k.replace('HIERARCH ', '') for k in missing)}")
    if kind is None:
        return RawProblem(path, f"{path.name}: unknown ESO DPR TYPE "
                                f"{h['HIERARCH ESO DPR TYPE']!r}")
    eso_filter = str(h["HIERARCH ESO INS FILT1 NAME"])
    band = filters.get(eso_filter, eso_filter)
    common = dict(path=path, kind=kind, instrument=str(h["INSTRUME"]),
                  night=night_of(float(h["MJD-OBS"])), band=band, mjd=float(h["MJD-OBS"]),
                  exptime=float(h["EXPTIME"]),
                  dit=float(h.get("HIERARCH ESO DET DIT", h["EXPTIME"])),
                  ndit=int(h.get("HIERARCH ESO DET NDIT", 1)))
    if kind != "science":
        return RawFile(**common)
    return RawFile(**common, obj=str(h["OBJECT"]), ra=float(h["RA"]), dec=float(h["DEC"]),
                   obs_id=int(h["HIERARCH ESO OBS ID"]), tile=int(h.get("CASUTILE", 1)),
                   jitter=int(h.get("CASUJITR", 1)),
                   airmass=float(h["HIERARCH ESO TEL AIRM START"]),
                   prog_id=str(h.get("HIERARCH ESO OBS PROG ID", "")))


def index_raw(paths: Iterable[Path], filters: dict[str, str]) -> RawIndex:
    """Classify raw files; ``filters`` maps ESO filter names to band names."""
    return build_index([read_raw(path, filters) for path in sorted(paths)])


def build_index(items: Iterable[RawFile | RawProblem]) -> RawIndex:
    """The index of files classified by :func:`read_raw` (in the order of their paths)."""
    files: list[RawFile] = []
    problems: list[RawProblem] = []
    for item in items:
        (files if isinstance(item, RawFile) else problems).append(item)
    files.sort(key=lambda f: f.mjd)
    runs: dict[str, int] = {}
    numbered = []
    for f in files:
        runs[f.night] = runs.get(f.night, 0) + 1
        numbered.append(replace(f, run=runs[f.night]))
    return RawIndex(tuple(numbered), tuple(problems))

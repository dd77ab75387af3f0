# SPDX-License-Identifier: BSD-3-Clause
"""The demo imaging survey: what VISTA and VST observe on which night, and the writer.

:data:`DEMO_PLAN` is two nights, 2024-05-10 (new moon) and 2024-05-24 (full
moon), at Paranal:

* **VISTA** observes ``vvv_disc`` VVV-like: one tile (6 pawprints × 2 jitters)
  per band, J (DIT 6 s), H (4 s) and Ks (2 s × NDIT 2) on night 1 and Ks on
  night 2;
* **VST** observes ``vphas_pn`` VPHAS+-like in u, g, r, i and Hα on night 1
  and r on night 2 (3 dithered exposures each), and ``ngc6791`` in g and r on
  night 1 (NGC 6791 never rises above airmass ~2.1 at Paranal: its airmass is
  the real one).

Every night has twilight flats per band (evening), and darks for each DIT/NDIT
(VIRCAM, morning) or biases (OmegaCAM, afternoon).  Schedules and file names do
not depend on the seed; the conditions do: seeing from a nightly DIMM value
(scaled by λ^−0.2 and airmass^0.6, plus 0.3″ in quadrature, kept in
0.6–1.2″), PSF ellipticity, sky level (NIR variability; the moon in the
optical), a pointing error per OB, a zero-point offset per night and
telescope.  Airmasses are computed with astropy for Paranal at the start and
end of each exposure.

:func:`write_survey` writes, under ``out``::

    raw/<vista|vst>/<YYYYMMDD>/<VCAM|OMEGACAM>.<DATE-OBS>.fits   raw frames (night = evening date)
    raw/manifest.json                                         every raw frame, described
    truth/imaging/<raw file stem>.truth.fits                  truth per raw frame
    truth/sky_<field>.fits                                    the sky model of each field

Files are written under a hidden temporary name and renamed
(:func:`casuvo.storage.files.atomic_path`; with CHECKSUM and DATASUM, same bytes
for the same frame); a frame whose raw file and truth (same seed, detector
scale, frame parameters and sky inputs) exist is skipped, so an interrupted run
resumes where it stopped.

Two factors shape the survey, and they are not the same thing:

* the **detector scale** (:data:`DEMO_DETECTOR_SCALE`, ``detector_scale``)
  makes *miniature cameras* — detectors of that fraction of the real pixels on
  a side, at the real pixel scale — so that the demo runs in minutes; truth
  files record it as ``SCALE`` and raw/manifest.json as ``"scale"``;
* the **density factor** (``density_factor``; ``CASUVO_SCALE`` and ``casuvo
  simulate --scale``) multiplies the number of sources on the sky: the Gaia
  truth of a field is simulated with it (and read with it from the Gaia files
  ``casuvo simulate`` wrote), and the galaxy counts of the sky model follow it.

The sky models hold the Gaia stars of the whole field but faint stars and
galaxies only in the grid cells that the survey's footprint (plus stamp
margins) touches (header keyword REGION).  The sky is the Gaia field's
1°×1° square: at detector scale 1 a full VISTA tile (1.5°×1.2°) reaches past it,
and its outer detectors see an empty sky there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing
import os
import warnings
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from astropy.utils import iers
from astropy.utils.exceptions import AstropyWarning

from casuvo.simulate.calibration import (
    Calibration,
    calibration_primary_header,
    calibration_truth_header,
    iter_calibration,
)
from casuvo.simulate.detectors import bias_level, saturation_level
from casuvo.simulate.exposure import iter_exposure
from casuvo.simulate.fields import Field, field_by_name
from casuvo.simulate.headers import primary_header
from casuvo.simulate.optics import field_edge_arcsec
from casuvo.simulate.pointing import Pointing, isot
from casuvo.simulate.rendering import MAX_STAMP_HALF
from casuvo.simulate.skymodel import ALL_BANDS, SKY_VERSION, build_sky
from casuvo.simulate.truth import IMAGING_VERSION, exposure_truth
from casuvo.storage.files import atomic_path, write_text
from casuvo.surveys.instruments import Instrument, instrument

__all__ = ["DEMO_DETECTOR_SCALE", "DEMO_PLAN", "PARANAL", "SURVEY_VERSION", "Block",
           "ManifestEntry", "Night", "PlannedFrame", "SurveyManifest", "SurveyPlan", "plan_frames",
           "write_survey"]

log = logging.getLogger(__name__)

#: Bumped when the plan's realisation or the file layout changes.
SURVEY_VERSION = 1
#: Detector scales (miniature factors) of the demo (1 = full-size detectors): 512² VIRCAM
#: and 256×512 OmegaCAM detectors at the real pixel scales.
DEMO_DETECTOR_SCALE: dict[str, float] = {"vista": 0.25, "vst": 0.125}
#: Paranal (VLT platform; VISTA and VST are within 1.5 km of it).
PARANAL = EarthLocation.from_geodetic(-70.4042 * u.deg, -24.6272 * u.deg, 2635.0 * u.m)
_CAMERA = {"vista": "vircam", "vst": "omegacam"}
#: Overheads (s) between exposures: VIRCAM jitter / pawprint offset, OmegaCAM readout+dither,
#: and between OBs.  Odd milliseconds make file names look like the archive's.
_OVERHEAD = {"jitter": 9.361, "pawprint": 31.724, "dither": 41.591, "ob": 183.417,
             "vista_cal": 10.283, "vst_cal": 35.137}
#: Sky brightening by a full moon per optical band (factor on the dark-sky level, rough).
_MOON_SKY = {"u": 6.0, "g": 4.0, "r": 2.5, "i": 1.8, "Halpha": 2.5}
#: Twilight flat levels: first frame at this fraction of saturation, each next one darker.
_FLAT_LEVEL, _FLAT_FADE = 0.55, 0.77
_FLAT_DIT_VST = 5.0
#: Telescope + instrument contribution to the delivered FWHM, added in quadrature (arcsec).
_DOME_SEEING = 0.3


@dataclass(frozen=True)
class Night:
    """An observing night, named by its evening date (CASU/ESO night convention)."""

    date: str
    """Evening date, YYYY-MM-DD."""
    moon: float
    """Illuminated fraction of the moon (brightens the optical sky)."""

    @property
    def yyyymmdd(self) -> str:
        return self.date.replace("-", "")

    def utc(self, hms: str, next_day: bool = False) -> float:
        """MJD of UTC time ``hms`` on the evening date (or the next day)."""
        mjd = float(Time(f"{self.date}T00:00:00", scale="utc").mjd) + (1 if next_day else 0)
        h, m, s = (float(v) for v in hms.split(":"))
        return mjd + (h * 3600 + m * 60 + s) / 86400.0


@dataclass(frozen=True)
class Block:
    """One observation block (OB): one band of one field with one telescope."""

    telescope: str
    """'vista' (VVV-like tile: 6 pawprints × 2 jitters) or 'vst' (3 dithers)."""
    field: str
    night: int
    """Index into SurveyPlan.nights."""
    band: str
    dit: float
    ndit: int
    survey: str
    """Short survey name for the OB name."""
    prog_id: str
    start: str | None = None
    """UTC of the first exposure (ISO); None: after the previous OB of the same telescope."""


@dataclass(frozen=True)
class SurveyPlan:
    """Nights, OBs and calibration schedule (UTC times of day)."""

    nights: tuple[Night, ...]
    blocks: tuple[Block, ...]
    n_calib: int = 3
    """Frames per calibration set (darks per DIT/NDIT, flats per band, biases)."""
    bias_start: str = "20:31:12.500"
    """Biases (OmegaCAM), afternoon of the evening date."""
    flat_start: str = "22:20:07.250"
    """Evening twilight flats, evening date."""
    dark_start: str = "10:42:31.750"
    """Darks (VIRCAM), morning after."""


_VVV, _VPHAS, _N6791 = "179.B-2002(A)", "177.D-3023(A)", "0113.D-0123(A)"  # last one made up
DEMO_PLAN = SurveyPlan(
    nights=(Night("2024-05-10", 0.08), Night("2024-05-24", 0.99)),
    blocks=(
        Block("vista", "vvv_disc", 0, "J", 6.0, 1, "VVV", _VVV, "2024-05-11T01:40:13.417"),
        Block("vista", "vvv_disc", 0, "H", 4.0, 1, "VVV", _VVV),
        Block("vista", "vvv_disc", 0, "Ks", 2.0, 2, "VVV", _VVV),
        Block("vista", "vvv_disc", 1, "Ks", 2.0, 2, "VVV", _VVV, "2024-05-25T01:20:41.205"),
        Block("vst", "vphas_pn", 0, "u", 150.0, 1, "VPHAS", _VPHAS, "2024-05-11T02:05:27.611"),
        Block("vst", "vphas_pn", 0, "g", 40.0, 1, "VPHAS", _VPHAS),
        Block("vst", "vphas_pn", 0, "r", 25.0, 1, "VPHAS", _VPHAS),
        Block("vst", "vphas_pn", 0, "i", 25.0, 1, "VPHAS", _VPHAS),
        Block("vst", "vphas_pn", 0, "Halpha", 120.0, 1, "VPHAS", _VPHAS),
        Block("vst", "ngc6791", 0, "g", 60.0, 1, "NGC6791", _N6791, "2024-05-11T08:20:05.902"),
        Block("vst", "ngc6791", 0, "r", 40.0, 1, "NGC6791", _N6791),
        Block("vst", "vphas_pn", 1, "r", 25.0, 1, "VPHAS", _VPHAS, "2024-05-25T01:50:44.318"),
    ),
)


@dataclass(frozen=True)
class PlannedFrame:
    """One raw frame of the plan: a science Pointing or a Calibration."""

    telescope: str
    kind: str
    """'science', 'dark', 'flat' or 'bias'."""
    night: Night
    prefix: str
    pointing: Pointing | None = None
    calibration: Calibration | None = None
    offset_arcsec: tuple[float, float] = (0.0, 0.0)
    """Pawprint + jitter offset of the pointing from the field centre (east, north)."""

    @property
    def frame(self) -> Pointing | Calibration:
        frame = self.pointing if self.pointing is not None else self.calibration
        assert frame is not None
        return frame

    @property
    def date_obs(self) -> str:
        return isot(self.frame.mjd_obs)

    @property
    def raw_name(self) -> str:
        return f"{self.prefix}.{self.date_obs}.fits"

    @property
    def raw_relpath(self) -> str:
        return f"raw/{self.telescope}/{self.night.yyyymmdd}/{self.raw_name}"

    @property
    def truth_relpath(self) -> str:
        return f"truth/imaging/{self.raw_name[:-len('.fits')]}.truth.fits"

    @property
    def key(self) -> str:
        """Identifies the frame's parameters (reruns with another plan/seed do not match)."""
        return f"{zlib.crc32(repr(self.frame).encode()):08x}"


# -- planning -----------------------------------------------------------------------------


def _offset(ra: float, dec: float, east: float, north: float) -> tuple[float, float]:
    """The position (east, north) arcsec from (ra, dec) in the tangent plane."""
    r, d = Field("_", ra, dec, 1.0, "").from_tangent(east / 3600.0, north / 3600.0)
    # Rounded to ~4 µas so that the plan is bit-identical across numpy/libm versions.
    return round(float(r), 9), round(float(d), 9)


def _block_offsets(inst: Instrument, telescope: str) -> list[tuple[int, int, float, float]]:
    """(tile index, jitter index, east, north) of each exposure of an OB, in order."""
    tiles = inst.tile_offsets if telescope == "vista" else ((0.0, 0.0),)
    return [(t + 1, j + 1, tx + jx, ty + jy) for t, (tx, ty) in enumerate(tiles)
            for j, (jx, jy) in enumerate(inst.jitter)]


@contextlib.contextmanager
def _offline_earth_rotation() -> Iterator[None]:
    """Use the IERS tables astropy ships, never the network, whatever their coverage.

    UT1 − UTC (< 1 s) and polar motion change airmasses and sidereal times far
    below what the plan rounds to, and the simulator must run offline.
    """
    with iers.conf.set_temp("auto_download", False), iers.conf.set_temp("auto_max_age", None), \
            iers.conf.set_temp("iers_degraded_accuracy", "ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Tried to get polar motions", AstropyWarning)
        warnings.filterwarnings("ignore", "leap-second", AstropyWarning)
        yield


def _airmass(ra: np.ndarray, dec: np.ndarray, mjd: np.ndarray) -> np.ndarray:
    if len(mjd) == 0:
        return np.zeros(0)
    with _offline_earth_rotation():
        frame = AltAz(obstime=Time(mjd, format="mjd", scale="utc"), location=PARANAL)
        altaz = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs").transform_to(frame)
        return np.asarray(altaz.secz, dtype=np.float64)


def _science(plan: SurveyPlan, seed: int, insts: dict[str, Instrument]) -> list[PlannedFrame]:
    frames: list[dict] = []
    clock: dict[tuple[str, int], float] = {}
    for b_idx, block in enumerate(plan.blocks):
        inst = insts[block.telescope]
        night = plan.nights[block.night]
        fld = field_by_name(block.field)
        t = (float(Time(block.start, scale="utc").mjd) if block.start
             else clock[block.telescope, block.night] + _OVERHEAD["ob"] / 86400.0)
        rng = np.random.default_rng([seed, 0x5C1, b_idx])
        preset = rng.normal(0.0, 1.5, 2)
        offsets = _block_offsets(inst, block.telescope)
        for n, (tile, jit, east, north) in enumerate(offsets):
            if n:
                step = "pawprint" if tile != offsets[n - 1][0] else (
                    "jitter" if block.telescope == "vista" else "dither")
                t += _OVERHEAD[step] / 86400.0
            ra, dec = _offset(fld.ra, fld.dec, east, north)
            frames.append({"block": block, "b_idx": b_idx, "night": night, "mjd": t, "ra": ra,
                           "dec": dec, "tile": tile, "jitter": jit, "expno": n + 1,
                           "nexp": len(offsets), "offset": (east, north), "rng": rng,
                           "pnterr": preset + rng.normal(0.0, 0.1, 2)})
            t += block.dit * block.ndit / 86400.0
        clock[block.telescope, block.night] = t
    mjd = np.array([f["mjd"] for f in frames])
    exptime = np.array([f["block"].dit * f["block"].ndit for f in frames])
    ras, decs = np.array([f["ra"] for f in frames]), np.array([f["dec"] for f in frames])
    am0 = _airmass(ras, decs, mjd)
    am1 = _airmass(ras, decs, mjd + exptime / 86400.0)
    out = []
    for f, a0, a1 in zip(frames, am0, am1, strict=True):
        out.append(_science_frame(plan, seed, insts, f, float(a0), float(a1)))
    return out


def _night_rng(seed: int, night: int, telescope: str) -> np.random.Generator:
    return np.random.default_rng([seed, 0x4E16, night, zlib.crc32(telescope.encode())])


def _science_frame(plan: SurveyPlan, seed: int, insts: dict[str, Instrument], f: dict,
                   am0: float, am1: float) -> PlannedFrame:
    block: Block = f["block"]
    inst = insts[block.telescope]
    rng: np.random.Generator = f["rng"]
    nrng = _night_rng(seed, block.night, block.telescope)
    zp_offset, dimm_night = float(nrng.normal(0.0, 0.02)), float(nrng.uniform(0.5, 0.85))
    airmass = 0.5 * (am0 + am1)
    dimm = float(np.clip(dimm_night * rng.lognormal(0.0, 0.1), 0.4, 1.6))
    lam = inst.filter(block.band).wavelength_nm
    atmosphere = dimm * (lam / 500.0) ** -0.2 * airmass**0.6 * rng.lognormal(0.0, 0.05)
    seeing = math.hypot(atmosphere, _DOME_SEEING)
    if block.telescope == "vista":
        sky_scale = float(rng.uniform(0.85, 1.25))
    else:
        moon = 1.0 + f["night"].moon * (_MOON_SKY[block.band] - 1.0)
        sky_scale = moon * float(rng.uniform(0.95, 1.05))
    pointing = Pointing(
        field=block.field, ra=f["ra"], dec=f["dec"], band=block.band, mjd_obs=f["mjd"],
        dit=block.dit, ndit=block.ndit, airmass=round(am0, 3), airmass_end=round(am1, 3),
        seeing_arcsec=round(float(np.clip(seeing, 0.6, 1.2)), 3),
        ellipticity=round(float(rng.uniform(0.02, 0.12)), 3),
        psf_pa_deg=round(float(rng.uniform(0.0, 180.0)), 1), sky_scale=round(sky_scale, 3),
        pointing_error_arcsec=(round(float(f["pnterr"][0]), 3), round(float(f["pnterr"][1]), 3)),
        zp_offset=round(zp_offset, 4), dimm_seeing=round(dimm, 2),
        obs_id=3_000_001 + f["b_idx"], ob_name=f"{block.survey}-{block.field}-{block.band}",
        tpl_expno=f["expno"], tpl_nexp=f["nexp"], tile_index=f["tile"],
        jitter_index=f["jitter"], prog_id=block.prog_id, object=block.field)
    return PlannedFrame(block.telescope, "science", f["night"], inst.prefix, pointing=pointing,
                        offset_arcsec=(round(f["offset"][0], 3), round(f["offset"][1], 3)))


def _zenith(mjd: float) -> tuple[float, float]:
    """(ra, dec) of the zenith at Paranal: where flats, darks and biases are 'pointed'."""
    with _offline_earth_rotation():
        lst = Time(mjd, format="mjd", scale="utc").sidereal_time("mean", longitude=PARANAL.lon)
    return round(float(lst.deg), 2), round(float(PARANAL.lat.deg), 4)


def _calibrations(plan: SurveyPlan, insts: dict[str, Instrument],
                  science: list[PlannedFrame]) -> list[PlannedFrame]:
    out: list[PlannedFrame] = []
    obs_id = 9_000_001
    for night in plan.nights:
        for tel, inst in insts.items():
            mine = [f.pointing for f in science if f.telescope == tel and f.night == night
                    and f.pointing is not None]
            if not mine:
                continue
            if tel == "vista":  # flats with the science DIT/NDIT, so that the darks fit both
                bands = list(dict.fromkeys((p.band, p.dit, p.ndit) for p in mine))
            else:
                bands = list(dict.fromkeys((p.band, _FLAT_DIT_VST, 1) for p in mine))
            sets: list[tuple[str, str | None, float, int, float]] = []
            start = {"bias": night.utc(plan.bias_start), "flat": night.utc(plan.flat_start),
                     "dark": night.utc(plan.dark_start, next_day=True)}
            if tel == "vst":
                sets.append(("bias", None, 0.0, 1, start["bias"]))
            t = start["flat"]
            gap = _OVERHEAD[f"{tel}_cal"] / 86400.0
            for band, dit, ndit in bands:
                sets.append(("flat", band, dit, ndit, t))
                t += plan.n_calib * (dit * ndit / 86400.0 + gap)
            if tel == "vista":
                t = start["dark"]
                for dit, ndit in dict.fromkeys((d, n) for _, d, n in bands):
                    sets.append(("dark", None, dit, ndit, t))
                    t += plan.n_calib * (dit * ndit / 86400.0 + gap)
            for kind, band, dit, ndit, t0 in sets:
                for k in range(plan.n_calib):
                    mjd = t0 + k * (dit * ndit / 86400.0 + gap)
                    ra, dec = _zenith(mjd)
                    level = 0.0
                    if kind == "flat":
                        level = round(_FLAT_LEVEL * _FLAT_FADE**k
                                      * (saturation_level(inst, ndit) - inst.bias), 1)
                    cal = Calibration(
                        kind={"dark": "DARK", "flat": "FLAT,TWILIGHT", "bias": "BIAS"}[kind],
                        mjd_obs=mjd, dit=dit, ndit=ndit, band=band, level_adu=level, ra=ra,
                        dec=dec, obs_id=obs_id, ob_name=f"CAL-{kind}-{band or dit}",
                        tpl_expno=k + 1, tpl_nexp=plan.n_calib)
                    out.append(PlannedFrame(tel, kind, night, inst.prefix, calibration=cal))
                obs_id += 1
    return out


def plan_frames(plan: SurveyPlan, seed: int, detector_scales: dict[str, float]
                ) -> list[PlannedFrame]:
    """Every raw frame of ``plan`` with its conditions, in time order per telescope
    (``detector_scales``: the miniature factor per telescope)."""
    insts = {tel: instrument(_CAMERA[tel], detector_scales[tel]) for tel in ("vista", "vst")}
    science = _science(plan, seed, insts)
    frames = science + _calibrations(plan, insts, science)
    return sorted(frames, key=lambda f: (f.telescope, f.frame.mjd_obs))


# -- manifest -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestEntry:
    """One raw file as listed in raw/manifest.json (paths relative to the output root)."""

    path: str
    truth: str
    kind: str
    telescope: str
    instrument: str
    night: str
    date_obs: str
    mjd_obs: float
    band: str | None
    field: str | None
    object: str
    obs_id: int
    ob_name: str
    tpl_expno: int
    tpl_nexp: int
    tile: int
    jitter: int
    offset_arcsec: tuple[float, float]
    ra: float
    dec: float
    dit: float
    ndit: int
    exptime: float


@dataclass
class SurveyManifest:
    """What :func:`write_survey` produced (``written``/``skipped`` are this run's bookkeeping)."""

    seed: int
    detector_scale: dict[str, float]
    """Miniature factor per telescope (``"scale"`` in the file)."""
    files: list[ManifestEntry] = field(default_factory=list)
    sky: dict[str, str] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        doc = {"version": SURVEY_VERSION, "seed": self.seed, "scale": self.detector_scale,
               "sky": self.sky, "files": [asdict(e) for e in self.files]}
        return json.dumps(doc, indent=1)

    @classmethod
    def read(cls, path: Path) -> SurveyManifest:
        doc = json.loads(Path(path).read_text())
        files = [ManifestEntry(**{**e, "offset_arcsec": tuple(e["offset_arcsec"])})
                 for e in doc["files"]]
        return cls(seed=doc["seed"], detector_scale=doc["scale"], files=files, sky=doc["sky"])


def _entry(frame: PlannedFrame, inst: Instrument) -> ManifestEntry:
    p = frame.pointing
    c = frame.calibration
    src = p if p is not None else c.pointing()  # type: ignore[union-attr]
    return ManifestEntry(
        path=frame.raw_relpath, truth=frame.truth_relpath, kind=frame.kind,
        telescope=frame.telescope, instrument=inst.name, night=frame.night.yyyymmdd,
        date_obs=frame.date_obs, mjd_obs=src.mjd_obs, band=src.band,
        field=p.field if p is not None else None, object=src.object or src.field,
        obs_id=src.obs_id, ob_name=src.ob_name, tpl_expno=src.tpl_expno, tpl_nexp=src.tpl_nexp,
        tile=src.tile_index, jitter=src.jitter_index, offset_arcsec=frame.offset_arcsec,
        ra=src.ra, dec=src.dec, dit=src.dit, ndit=src.ndit, exptime=src.exptime)


# -- writing ------------------------------------------------------------------------------


def _stamp(header: fits.Header, seed: int, detector_scale: float, frame: PlannedFrame,
           key: str) -> None:
    header["SEED"] = (seed, "casuvo survey seed")
    header["SCALE"] = (detector_scale, "instrument miniature factor")
    header["SURVVERS"] = (SURVEY_VERSION, "casuvo survey plan version")
    header["SKYVERS"] = (SKY_VERSION, "casuvo sky model version")
    header["FRAMEKEY"] = (key, "CRC of the frame parameters and sky inputs")
    header["RAWFILE"] = (frame.raw_name, "raw file")


def _is_complete(raw: Path, truth: Path, seed: int, detector_scale: float, key: str) -> bool:
    if not raw.exists():
        return False
    try:
        h = fits.getheader(truth, 0)
        return bool(h["SEED"] == seed and math.isclose(h["SCALE"], detector_scale)
                    and h["SIMVERS"] == IMAGING_VERSION and h["SURVVERS"] == SURVEY_VERSION
                    and h["SKYVERS"] == SKY_VERSION and h["FRAMEKEY"] == key)
    except (OSError, KeyError, IndexError, ValueError):
        return False


def _gaia_truth_path(field_name: str, gaia_dir: Path | None) -> Path | None:
    if gaia_dir is None:
        return None
    path = Path(gaia_dir).parent / "truth" / f"gaia_{field_name}_truth.fits"
    return path if path.exists() else None


def _gaia_truth(field_name: str, seed: int, gaia_dir: Path | None, density_factor: float
                ) -> Table:
    """The Gaia truth of a field: the file ``casuvo simulate`` wrote (made with its own source
    density), else simulated here with ``density_factor``."""
    path = _gaia_truth_path(field_name, gaia_dir)
    if path is not None:
        return Table.read(path, hdu=1, character_as_bytes=False)
    from casuvo.simulate.gaia import simulate_gaia

    return simulate_gaia(field_by_name(field_name), seed, density_factor)[1]


def _gaia_signature(field_name: str, seed: int, gaia_dir: Path | None,
                    density_factor: float) -> str:
    """What the Gaia truth of a field was made from (file header keywords, or the seed)."""
    from casuvo.simulate.gaia import SIM_VERSION

    path = _gaia_truth_path(field_name, gaia_dir)
    if path is None:
        return f"sim:{seed}:{float(density_factor)}:{SIM_VERSION}"
    h = fits.getheader(path, 1)
    return ":".join(str(h.get(k)) for k in ("SEED", "SCALE", "SIMVERS", "NAXIS2"))


def _sky_regions(frames: list[PlannedFrame], insts: dict[str, Instrument]
                 ) -> dict[str, list[tuple[float, float, float]]]:
    """Per field, circles about the field centre covering every exposure plus stamp margins."""
    reach: dict[tuple[str, str], float] = {}
    for f in frames:
        if f.pointing is None:
            continue
        inst = insts[f.telescope]
        r = (math.hypot(*f.offset_arcsec) + field_edge_arcsec(inst)
             + MAX_STAMP_HALF * inst.pixel_scale + 60.0) / 3600.0
        key = (f.pointing.field, f.telescope)
        reach[key] = max(reach.get(key, 0.0), r)
    out: dict[str, list[tuple[float, float, float]]] = {}
    for (name, _), r in sorted(reach.items()):
        fld = field_by_name(name)
        out.setdefault(name, []).append((fld.ra, fld.dec, round(r, 5)))
    return out


def _epoch_ranges(frames: list[PlannedFrame]) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for f in frames:
        if f.pointing is None:
            continue
        p = f.pointing
        lo, hi = out.get(p.field, (math.inf, -math.inf))
        out[p.field] = (min(lo, p.mjd_obs), max(hi, p.mjd_obs + p.exptime / 86400.0))
    return out


class _Skies:
    """Sky models built on first use, and written to truth/sky_<field>.fits when stale."""

    def __init__(self, out: Path, seed: int, gaia_dir: Path | None,
                 regions: dict[str, list[tuple[float, float, float]]],
                 epochs: dict[str, tuple[float, float]], density_factor: float) -> None:
        self.out, self.seed, self.gaia_dir = out, seed, gaia_dir
        self.regions, self.epochs = regions, epochs
        self.density_factor = float(density_factor)
        self._built: dict[str, Table] = {}
        self._keys: dict[str, str] = {}

    def path(self, name: str) -> Path:
        return self.out / "truth" / f"sky_{name}.fits"

    def _key(self, name: str) -> str:
        """Identifies the sky model's inputs (seed aside): region, epochs, Gaia truth and,
        when it is not 1 (so that the demo's keys stay as they were), the density factor."""
        if name not in self._keys:
            sig = _gaia_signature(name, self.seed, self.gaia_dir, self.density_factor)
            inputs: tuple = (self.regions[name], self.epochs[name], sig)
            if self.density_factor != 1.0:
                inputs += (self.density_factor,)
            text = repr(inputs)
            self._keys[name] = f"{zlib.crc32(text.encode()):08x}"
        return self._keys[name]

    def frame_key(self, frame: PlannedFrame) -> str:
        """The frame's key, with its field's sky inputs for a science frame."""
        if frame.pointing is None:
            return frame.key
        return f"{zlib.crc32((frame.key + self._key(frame.pointing.field)).encode()):08x}"

    def get(self, name: str) -> Table:
        if name not in self._built:
            truth = _gaia_truth(name, self.seed, self.gaia_dir, self.density_factor)
            log.info("%s: building the sky model", name)
            self._built[name] = build_sky(field_by_name(name), truth, self.seed, ALL_BANDS,
                                          self.epochs[name], region=self.regions[name],
                                          density_factor=self.density_factor)
        return self._built[name]

    def ensure_file(self, name: str) -> None:
        path = self.path(name)
        with contextlib.suppress(OSError, KeyError, IndexError):
            h = fits.getheader(path, 1)
            if (h["SEED"] == self.seed and h["SKYVERS"] == SKY_VERSION
                    and h["SKYKEY"] == self._key(name)):
                return
        sky = self.get(name)
        sky.meta["SKYKEY"] = self._key(name)
        with atomic_path(path) as tmp:
            sky.write(tmp, format="fits", overwrite=True)


#: Fewer frames to write than this are written in this process: starting worker
#: processes (numpy, astropy imports) costs more than it saves.
PARALLEL_MIN_FRAMES = 24


def _n_workers(workers: int | None, n_frames: int) -> int:
    """Worker processes for ``n_frames`` frames: ``workers``, or by default the cores (4 at
    most); 1 (this process) for a few frames."""
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if n_frames >= PARALLEL_MIN_FRAMES else 1
    return max(1, min(workers, n_frames))


def write_survey(out: Path, seed: int, detector_scale: float | None = None,
                 gaia_dir: Path | None = None, *, density_factor: float = 1.0,
                 plan: SurveyPlan = DEMO_PLAN, workers: int | None = None) -> SurveyManifest:
    """Write the raw frames, their truth, the sky models and raw/manifest.json under ``out``.

    ``detector_scale`` is the instrument miniature factor for both cameras; None
    means :data:`DEMO_DETECTOR_SCALE`.  ``density_factor`` multiplies the number
    of sources (``CASUVO_SCALE``).  The Gaia truth of a field is read from
    ``gaia_dir/../truth/gaia_<field>_truth.fits`` when that exists, else
    simulated with :func:`~casuvo.simulate.gaia.simulate_gaia` (same seed,
    ``density_factor``).

    The frames are written by ``workers`` processes (default: one per core, see
    :func:`_n_workers`), each building the sky models it needs itself.  Every
    frame draws from its own generator (seed and file name) and the sky models
    from the seed, so the files are the same bytes however many write them.
    """
    if not (math.isfinite(density_factor) and density_factor > 0):
        raise ValueError(f"density_factor must be a positive number, not {density_factor}")
    out = Path(out)
    scales = (dict(DEMO_DETECTOR_SCALE) if detector_scale is None
              else {t: float(detector_scale) for t in DEMO_DETECTOR_SCALE})
    insts = {tel: instrument(_CAMERA[tel], scales[tel]) for tel in scales}
    frames = plan_frames(plan, seed, scales)
    skies = _Skies(out, seed, gaia_dir, _sky_regions(frames, insts), _epoch_ranges(frames),
                   density_factor)
    manifest = SurveyManifest(seed=seed, detector_scale=scales)
    todo: list[tuple[PlannedFrame, str]] = []
    for frame in frames:
        raw, truth = out / frame.raw_relpath, out / frame.truth_relpath
        manifest.files.append(_entry(frame, insts[frame.telescope]))
        key = skies.frame_key(frame)
        if _is_complete(raw, truth, seed, scales[frame.telescope], key):
            manifest.skipped.append(frame.raw_relpath)
            continue
        todo.append((frame, key))
    for relpath in _write_all(todo, skies, scales, _n_workers(workers, len(todo))):
        manifest.written.append(relpath)
        log.info("wrote %s", relpath)
    for name in sorted(skies.regions):
        manifest.sky[name] = str(skies.path(name).relative_to(out))
    write_text(out / "raw" / "manifest.json", manifest.to_json())
    return manifest


def _write_all(todo: list[tuple[PlannedFrame, str]], skies: _Skies, scales: dict[str, float],
               n: int) -> Iterator[str]:
    """Write the sky model files, then the frames of ``todo`` (in ``n`` processes); yield
    each frame's raw path as it is written (in plan order)."""
    if n == 1:
        _init_worker(skies, scales)
        try:
            for name in sorted(skies.regions):
                _ensure_sky(name)
            yield from map(_write_planned, todo)
        finally:
            _WORKER.clear()
        return
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(skies, scales)) as pool:
        list(pool.map(_ensure_sky, sorted(skies.regions)))
        yield from pool.map(_write_planned, todo)


#: What the frame writer of this process uses: the sky models and detector scales.
_WORKER: dict[str, object] = {}


def _init_worker(skies: _Skies, scales: dict[str, float]) -> None:
    _WORKER.update(skies=skies, scales=scales,
                   insts={tel: instrument(_CAMERA[tel], scales[tel]) for tel in scales})


def _ensure_sky(name: str) -> None:
    skies = _WORKER["skies"]
    assert isinstance(skies, _Skies)
    skies.ensure_file(name)


def _write_planned(item: tuple[PlannedFrame, str]) -> str:
    """Write one planned frame (in a worker process, or this one); its raw path."""
    frame, key = item
    skies, scales, insts = _WORKER["skies"], _WORKER["scales"], _WORKER["insts"]
    assert isinstance(skies, _Skies) and isinstance(scales, dict) and isinstance(insts, dict)
    raw, truth = skies.out / frame.raw_relpath, skies.out / frame.truth_relpath
    with contextlib.suppress(FileNotFoundError):
        raw.unlink()  # never leave a raw file next to a truth of other parameters
    rng = np.random.default_rng([skies.seed, zlib.crc32(frame.raw_name.encode())])
    _write_frame(frame, insts[frame.telescope], raw, truth, rng, skies, skies.seed,
                 scales[frame.telescope], key)
    return frame.raw_relpath


def _write_frame(frame: PlannedFrame, inst: Instrument, raw: Path, truth: Path,
                 rng: np.random.Generator, skies: _Skies, seed: int, detector_scale: float,
                 key: str) -> None:
    """Simulate one frame and write its truth, then the raw file (each atomically).

    The detectors are computed one at a time; only the finished raw pixels
    (float32 / uint16) of the whole frame are held until it is written.
    """
    if frame.pointing is not None:
        p = frame.pointing
        etruth = exposure_truth(inst, p)
        hdus: list[fits.hdu.base.ExtensionHDU] = []
        for hdu, det in iter_exposure(inst, skies.get(p.field), p, rng):
            hdus.append(hdu)
            etruth.detectors.append(det)
        raw_hdul = fits.HDUList([fits.PrimaryHDU(header=primary_header(inst, p)), *hdus])
        truth_hdul = etruth.to_hdulist()
    else:
        cal = frame.calibration
        assert cal is not None
        raw_hdul = fits.HDUList([fits.PrimaryHDU(header=calibration_primary_header(inst, cal)),
                                 *iter_calibration(inst, cal, rng)])
        head = calibration_truth_header(inst, cal)
        for chip in range(1, inst.n_detectors + 1):
            head[f"BIAS{chip}"] = (bias_level(inst, chip), f"[ADU] bias of detector {chip}")
        truth_hdul = fits.HDUList([fits.PrimaryHDU(header=head)])
    _stamp(truth_hdul[0].header, seed, detector_scale, frame, key)
    _write_fits(truth_hdul, truth)
    _write_fits(raw_hdul, raw)


def _write_fits(hdul: fits.HDUList, path: Path) -> None:
    """Write atomically with CHECKSUM/DATASUM whose comments carry no time stamp, so that the
    same frame gives the same bytes."""
    for hdu in hdul:
        hdu.add_checksum(when="checksum (casuvo)")
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True)

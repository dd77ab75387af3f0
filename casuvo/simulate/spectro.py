# SPDX-License-Identifier: BSD-3-Clause
"""The seeded spectroscopic demo surveys: OB plans, raw extracted spectra and their truth.

For each spectroscopic survey of the registry (``[spectro]`` of its config)
and each of its demo fields: an OB plan over nights of 2024 (modes,
templates, authors, trimesters, planned outcomes: observed, partial,
aborted, scheduled), one target list drawn from the field's Gaia catalogue
(true ``source_id``, positions, G, and the true radial velocity where the
catalogue has one), sky fibres on empty sky, a few dead fibres per OB, and
per exposure and arm a raw file of extracted fibre spectra in detector
counts (sky not subtracted, not flux calibrated, observed frame) with its
variance — decision "Raw = extracted count spectra" of docs/spectroscopy.md.
Stars are the analytic templates of :mod:`casuvo.spectra.templates` at their
true Teff/log g/[Fe/H], shifted by the topocentric velocity (true
heliocentric velocity minus the barycentric correction of the OB's mean
time), seen through the fibre (seeing losses, ±2 % throughput), with the
night sky's continuum and lines, Poisson and read noise.

Files: ``raw/<survey>/obs_blocks.fits`` (the OB database), ``raw/<survey>/
<night>/<file>.fits`` (exposures), ``raw/<survey>/calib/sensfunc_<mode>_<arm>
.fits`` (the instrument's response, counts s⁻¹ pixel⁻¹ per flux unit) and
``truth/<survey>/targets_truth.fits``.  A survey whose manifest records the
same seed and config is left alone (reruns cost nothing).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from casuvo.simulate.fields import Field, field_by_name
from casuvo.spectra.fitsio import table_hdu, write_atomic
from casuvo.spectra.rv import helio_correction
from casuvo.spectra.templates import sky_spectrum, stellar_flux
from casuvo.surveys.instruments import Arm, Mode, Spectrograph
from casuvo.surveys.registry import SpectroConfig, Survey

__all__ = ["SpectroManifest", "cname", "flux_zero", "sensitivity", "write_spectro_survey"]

log = logging.getLogger(__name__)

#: flux (in 1e-17 erg/s/cm²/Å) of a G = 0 star's continuum at 5500 Å
FLUX_G0 = 3.6e8
#: photon energy × λ: erg Å
_HC = 1.98645e-8
#: radius (deg) about the field centre where targets are allocated (inside the
#: imaging tiles of the demo fields, so images cover many spectra)
TARGET_RADIUS = 0.12
#: fibre-to-fibre throughput scatter (unknown to the pipeline: sky residuals)
THROUGHPUT_SCATTER = 0.02
#: raw file format version (bump to remake the raw data)
RAW_VERSION = 2   # 2: WEAVE OB specifications (obspec, CAT-NAME)


def flux_zero(g: np.ndarray | float) -> np.ndarray:
    """Continuum flux at 5500 Å (1e-17 erg/s/cm²/Å) of a star of Gaia magnitude G."""
    return FLUX_G0 * 10.0 ** (-0.4 * np.asarray(g, dtype=float))


def sensitivity(spec: Spectrograph, arm: Arm, wave: np.ndarray | None = None) -> np.ndarray:
    """Counts per second per pixel for a flux of 1e-17 erg/s/cm²/Å: the arm's response."""
    wave = arm.wave() if wave is None else wave
    centre = 0.5 * (arm.wmin + arm.wmax)
    half = 0.5 * (arm.wmax - arm.wmin)
    shape = np.exp(-0.5 * ((wave - centre) / (1.1 * half)) ** 2)
    return 1e-17 * spec.area_cm2 * arm.throughput * shape * arm.dispersion * wave / _HC


def cname(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """The survey object name from coordinates, ``HHMMSSss±DDMMSSs`` (16 characters)."""
    out = []
    for r, d in zip(np.atleast_1d(ra), np.atleast_1d(dec), strict=True):
        h = (r / 15.0) % 24.0
        hh = int(h)
        mm = int((h - hh) * 60)
        ss = (h - hh - mm / 60.0) * 3600.0
        sign = "-" if d < 0 else "+"
        a = abs(d)
        dd = int(a)
        dm = int((a - dd) * 60)
        ds = (a - dd - dm / 60.0) * 3600.0
        out.append(f"{hh:02d}{mm:02d}{int(ss * 100):04d}{sign}{dd:02d}{dm:02d}"
                   f"{int(ds * 10):03d}")
    return np.array(out)


@dataclass(frozen=True)
class SpectroManifest:
    """What one survey's simulation wrote."""

    survey: str
    raw_files: tuple[str, ...]
    n_obs: int
    n_spectra: int
    seconds: float


def _iso(mjd: float) -> str:
    t = datetime(1858, 11, 17, tzinfo=UTC) + timedelta(days=float(mjd))
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def _night_mjd(night: int) -> float:
    """MJD of 00:00 UTC after the evening of ``night`` (YYYYMMDD)."""
    d = datetime.strptime(str(night), "%Y%m%d").replace(tzinfo=UTC) + timedelta(days=1)
    return (d - datetime(1858, 11, 17, tzinfo=UTC)).days + 0.0


def _teff(bp_rp: np.ndarray) -> np.ndarray:
    c = np.clip(np.nan_to_num(bp_rp, nan=0.9), 0.2, 2.0)
    return np.clip(5040.0 / (0.4929 + 0.5092 * c - 0.0353 * c * c), 3900.0, 7200.0)


def _targets(field: Field, cfg: SpectroConfig, data_dir: Path, rng: np.random.Generator,
             code: int, fidx: int) -> dict[str, np.ndarray]:
    """The field's plate: objects from the Gaia catalogue and its truth, then sky fibres."""
    with fits.open(data_dir / "gaia" / f"gaia_{field.name}.fits", memmap=False) as h:
        cat = h[1].data
        sid, ra, dec, g = (np.asarray(cat[c]) for c in ("source_id", "ra", "dec",
                                                          "phot_g_mean_mag"))
    with fits.open(data_dir / "truth" / f"gaia_{field.name}_truth.fits", memmap=False) as h:
        tru = h[1].data
        tsid = np.asarray(tru["source_id"])
        order = np.argsort(tsid)
        tsid = tsid[order]
        trv = np.asarray(tru["radial_velocity_true"], dtype=float)[order]
        tbprp = np.asarray(tru["bp_rp_true"], dtype=float)[order]
        tmem = np.asarray(tru["is_member"], dtype=bool)[order]
    xi, eta = field.to_tangent(ra, dec)
    near = np.hypot(xi, eta) < TARGET_RADIUS
    ok = near & (g >= cfg.mag_range[0]) & (g <= cfg.mag_range[1]) & np.isfinite(g)
    idx = np.flatnonzero(ok)
    if idx.size < cfg.n_objects:
        raise ValueError(f"field {field.name}: only {idx.size} Gaia stars with G in "
                         f"{cfg.mag_range} within {TARGET_RADIUS} deg for {cfg.n_objects} fibres")
    pick = np.sort(rng.choice(idx, cfg.n_objects, replace=False))
    pos = np.clip(np.searchsorted(tsid, sid[pick]), 0, tsid.size - 1)
    matched = tsid[pos] == sid[pick]
    rv = np.where(matched & np.isfinite(trv[pos]), trv[pos], np.nan)
    draw = ~np.isfinite(rv)
    rv[draw] = rng.normal(-10.0, 45.0, int(draw.sum()))
    teff = _teff(np.where(matched, tbprp[pos], np.nan))
    giant = (teff < 5200) & (rng.random(cfg.n_objects) < 0.5)
    logg = np.where(giant, rng.uniform(1.8, 3.2, cfg.n_objects),
                    rng.uniform(4.0, 4.7, cfg.n_objects))
    member = matched & tmem[pos]
    feh = np.where(member, 0.3 if field.name == "ngc6791" else -0.1,
                   np.clip(rng.normal(-0.25, 0.35, cfg.n_objects), -1.5, 0.5))
    # sky: random positions at least 5" from any catalogue star
    sky_ra, sky_dec = [], []
    while len(sky_ra) < cfg.n_sky:
        r = TARGET_RADIUS * np.sqrt(rng.random())
        t = rng.uniform(0, 2 * np.pi)
        sra, sdec = field.from_tangent(r * np.cos(t), r * np.sin(t))
        sep = np.hypot((ra - sra) * np.cos(np.radians(sdec)), dec - sdec)
        if sep.min() * 3600 > 5.0:
            sky_ra.append(float(sra))
            sky_dec.append(float(sdec))
    n = cfg.n_objects + cfg.n_sky
    obj_ra = np.concatenate([ra[pick], sky_ra])
    obj_dec = np.concatenate([dec[pick], sky_dec])
    base = code * 10_000_000 + fidx * 100_000
    return {
        "fibre": np.arange(1, n + 1),
        "obj_type": np.array(["OBJ"] * cfg.n_objects + ["SKY"] * cfg.n_sky),
        "ra": obj_ra, "dec": obj_dec,
        "target_name": cname(obj_ra, obj_dec),
        "target_id": np.array([str(base + i) for i in range(1, n + 1)]),
        "source_id": np.concatenate([sid[pick], np.full(cfg.n_sky, -1)]).astype(np.int64),
        "mag_g": np.concatenate([g[pick], np.full(cfg.n_sky, np.nan)]),
        "rv_true": np.concatenate([rv, np.full(cfg.n_sky, np.nan)]),
        "teff": np.concatenate([teff, np.full(cfg.n_sky, np.nan)]),
        "logg": np.concatenate([logg, np.full(cfg.n_sky, np.nan)]),
        "feh": np.concatenate([feh, np.full(cfg.n_sky, np.nan)]),
        # the fibres shuffle across the slit: fibre numbers are not in target order
        "slit": rng.permutation(n) + 1,
    }


def _raw_name(survey: Survey, mjd: float, run: int, arm: str) -> str:
    if survey.key == "weave":
        return f"r{run:07d}.fit"
    if survey.spectrograph.name == "GIRAFFE":
        return f"GIRAF.{_iso(mjd)}.fits"
    return f"QMOST.{_iso(mjd)}_{arm}.fits"


def _config_hash(survey: Survey, seed: int) -> str:
    text = json.dumps({"config": survey.config, "seed": seed, "version": RAW_VERSION},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_spectro_survey(survey: Survey, data_dir: Path, seed: int) -> SpectroManifest:
    """Simulate one spectroscopic survey under ``data_dir`` (see the module's description)."""
    import time

    t0 = time.perf_counter()
    cfg = survey.spectro
    spec = survey.spectrograph
    raw_dir = data_dir / "raw" / survey.key
    truth_dir = data_dir / "truth" / survey.key
    manifest_path = raw_dir / "manifest.json"
    stamp = _config_hash(survey, seed)
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        if old.get("stamp") == stamp and all((data_dir / f).is_file() for f in old["files"]):
            return SpectroManifest(survey.key, tuple(old["files"]), old["n_obs"],
                                   old["n_spectra"], 0.0)
    if manifest_path.is_file():   # another simulation: its files go first
        for rel in json.loads(manifest_path.read_text()).get("files", ()):
            (data_dir / rel).unlink(missing_ok=True)
    rng = np.random.default_rng([seed, survey.code])
    modes = survey.modes()
    files: list[str] = []
    obs_rows: list[dict[str, Any]] = []
    truth_rows: list[dict[str, np.ndarray]] = []
    run = 1_000_000 * survey.code // 3 + 1001   # WEAVE-like 7-digit run numbers
    # the instrument's response, one file per mode and arm (a calibration product)
    for mode in modes:
        for arm0 in mode.arms:
            arm = arm0.miniature(cfg.resample)
            hdu = fits.PrimaryHDU(sensitivity(spec, arm).astype(np.float32))
            hdu.header.update({"INSTRUME": spec.name, "MODE": mode.name, "ARM": arm.name,
                               "CRVAL1": arm.wmin, "CD1_1": arm.dispersion, "CRPIX1": 1.0,
                               "CTYPE1": "WAVE", "CUNIT1": "Angstrom",
                               "BUNIT": "adu s-1 pixel-1 / (1e-17 erg s-1 cm-2 Angstrom-1)"})
            rel = f"raw/{survey.key}/calib/sensfunc_{mode.name}_{arm.name}.fits"
            write_atomic(fits.HDUList([hdu]), data_dir / rel)
            files.append(rel)
    n_spectra = 0
    for fidx, fname in enumerate(cfg.fields, start=1):
        field = field_by_name(fname)
        plate = _targets(field, cfg, data_dir, rng, survey.code, fidx)
        prefix = {"weave": "WVE_", "fourmost": "QMOST"}.get(survey.key, "")  # survey CNAMEs
        plate["target_name"] = np.char.add(prefix, plate["target_name"])
        n = plate["fibre"].size
        fibre_tp = 1.0 + THROUGHPUT_SCATTER * rng.standard_normal(n)
        for i in range(cfg.n_obs):
            status = cfg.statuses[i % len(cfg.statuses)] if cfg.statuses else "observed"
            mode = modes[i % len(modes)]
            night = cfg.nights[i % len(cfg.nights)]
            ob_id = survey.code * 1_000_000 + fidx * 1000 + i + 1
            mjd0 = _night_mjd(night) + rng.uniform(0.05, 0.2) - (fidx - 1) * 0.0
            seeing = float(rng.uniform(0.6, 1.3)) if i != 3 else 2.4
            airmass = float(rng.uniform(1.03, 1.5))
            n_exp = {"observed": cfg.exposures, "partial": 1}.get(status, 0)
            dead = np.zeros(n, bool)
            dead[rng.choice(cfg.n_objects, cfg.n_dead, replace=False)] = True
            ob = {
                "ob_id": ob_id, "ob_name": f"{survey.name}_{fname.upper()}_{mode.name}_"
                f"F{fidx}P{i // len(modes) + 1}", "field": fname, "night": night,
                "mjd_obs": mjd0, "proc_template": cfg.proc_templates[modes.index(mode)],
                "obs_template": cfg.obs_templates[i % len(cfg.obs_templates)],
                "mode": mode.resolution_class, "setting": mode.name,
                "binning": 1 + (i % 2 if survey.key == "weave" else 0),
                "n_targets": cfg.n_objects, "n_sky": cfg.n_sky,
                "n_unallocated": int(rng.integers(0, 4)),
                "srv1": cfg.programmes[0], "srv2": cfg.programmes[1 % len(cfg.programmes)],
                "srv3": cfg.programmes[2 % len(cfg.programmes)] if i % 2 else "",
                "author": cfg.authors[i % len(cfg.authors)],
                "trimester": cfg.trimesters[i % len(cfg.trimesters)],
                "planned": status, "n_exposures_planned": cfg.exposures,
                "n_exposures": n_exp, "ra": field.ra, "dec": field.dec,
                "airmass": airmass if n_exp else np.nan, "seeing": seeing if n_exp else np.nan,
                "exptime": cfg.exptime * n_exp,
            }
            if survey.key == "weave":
                # the OB's specification (CAT-NAME): one per field and mode, so the
                # mode's later passes repeat it (the same targets and configuration) and
                # the pipeline makes its superstacks
                ob["obspec"] = f"{survey.name}_{fname.upper()}_{mode.name}_F{fidx}"
            obs_rows.append(ob)
            if not n_exp:
                continue
            # the OB's mean mid-exposure time (the pipeline's too): one correction per OB
            mjd_mid = float(np.mean([mjd0 + (e * (cfg.exptime + 60.0) + cfg.exptime / 2)
                                     / 86400.0 for e in range(n_exp)]))
            vcorr = helio_correction(plate["ra"], plate["dec"], mjd_mid, spec.site)
            truth_rows.append({**{k: plate[k] for k in ("fibre", "target_name", "source_id",
                                                         "ra", "dec", "obj_type", "rv_true",
                                                         "teff", "logg", "feh", "mag_g")},
                               "ob_id": np.full(n, ob_id), "dead": dead,
                               "slit": plate["slit"]})
            n_spectra += int((~dead[:cfg.n_objects]).sum())
            # the fibre's share of a star's light: a Gaussian seeing disc in a round fibre
            r = spec.fibre_arcsec / 2
            s = seeing / 2.3548
            aperture = 1.0 - np.exp(-r * r / (2 * s * s))
            fib_area = np.pi * r * r
            for arm0 in mode.arms:
                arm = arm0.miniature(cfg.resample)
                wave = arm.wave()
                sens = sensitivity(spec, arm, wave)
                sky = sky_spectrum(wave, arm.resolution) * fib_area
                star = np.zeros((n, wave.size))
                for k in range(cfg.n_objects):
                    star[k] = flux_zero(plate["mag_g"][k]) * aperture * stellar_flux(
                        wave, plate["teff"][k], plate["logg"][k], plate["feh"][k],
                        arm.resolution, plate["rv_true"][k] - vcorr[k])
                signal = (star + sky) * fibre_tp[:, None]
                for e in range(n_exp):
                    mjd = mjd0 + e * (cfg.exptime + 60.0) / 86400.0
                    expected = signal * sens * cfg.exptime
                    expected[dead] = 0.0
                    var = expected / spec.gain + (spec.read_noise / spec.gain) ** 2
                    counts = expected + np.sqrt(var) * rng.standard_normal(expected.shape)
                    # rows are in slit order
                    rows = np.argsort(plate["slit"])
                    run += 1
                    name = _raw_name(survey, mjd, run, arm.name)
                    rel = f"raw/{survey.key}/{night}/{name}"
                    _write_raw(data_dir / rel, survey, spec, mode, arm, ob, plate, rows,
                               counts[rows], var[rows], mjd, e + 1, n_exp, run)
                    files.append(rel)
    # the OB database and the truth
    obs_cols = {k: np.array([row[k] for row in obs_rows]) for k in obs_rows[0]}
    write_atomic(fits.HDUList([fits.PrimaryHDU(), table_hdu(obs_cols, "OBS_BLOCKS")]),
                 raw_dir / "obs_blocks.fits")
    files.append(f"raw/{survey.key}/obs_blocks.fits")
    if truth_rows:
        cols = ("ob_id", "fibre", "target_name", "source_id", "ra", "dec", "obj_type", "dead",
                "rv_true", "teff", "logg", "feh", "mag_g")
        truth = {c: np.concatenate([t[c] for t in truth_rows]) for c in cols}
        # the fibre number of the truth is the slit position, as in the raw files
        truth["fibre"] = np.concatenate([t["slit"] for t in truth_rows])
        write_atomic(fits.HDUList([fits.PrimaryHDU(), table_hdu(truth, "TRUTH")]),
                     truth_dir / "targets_truth.fits")
    seconds = time.perf_counter() - t0
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps({"stamp": stamp, "files": files,
                                         "n_obs": len(obs_rows), "n_spectra": n_spectra},
                                        indent=1))
    return SpectroManifest(survey.key, tuple(files), len(obs_rows), n_spectra, seconds)


def _write_raw(path: Path, survey: Survey, spec: Spectrograph, mode: Mode, arm: Arm,
               ob: dict[str, Any], plate: dict[str, np.ndarray], rows: np.ndarray,
               counts: np.ndarray, var: np.ndarray, mjd: float, expno: int, n_exp: int,
               run: int) -> None:
    """One raw exposure of one arm: counts, variance and the fibre table (slit order)."""
    primary = fits.PrimaryHDU()
    h = primary.header
    h["TELESCOP"] = spec.telescope
    h["INSTRUME"] = spec.name
    h["ORIGIN"] = "casuvo simulator"
    h["OBJECT"] = ob["ob_name"]
    h["OBSTYPE"] = ("OBJECT", "extracted fibre spectra, sky not subtracted")
    h["RA"] = (float(ob["ra"]), "pointing, deg")
    h["DEC"] = (float(ob["dec"]), "pointing, deg")
    h["EQUINOX"] = 2000.0
    h["RADECSYS"] = "ICRS"
    h["MJD-OBS"] = mjd
    h["DATE-OBS"] = _iso(mjd)
    h["EXPTIME"] = float(survey.spectro.exptime)
    h["AIRMASS"] = float(ob["airmass"])
    h["SEEING"] = (float(ob["seeing"]), "arcsec, DIMM")
    h["OBID"] = int(ob["ob_id"])
    h["OBNAME"] = ob["ob_name"]
    h["FIELD"] = ob["field"]
    h["NIGHT"] = str(ob["night"])
    h["RUN"] = run
    h["EXPNO"] = (expno, "exposure of the OB")
    h["NEXP"] = (n_exp, "exposures taken")
    h["NEXPPLAN"] = (int(ob["n_exposures_planned"]), "exposures planned")
    h["MODE"] = mode.name
    h["RESCLASS"] = mode.resolution_class
    h["ARM"] = arm.name
    h["RESOL"] = arm.resolution
    h["GAIN"] = spec.gain
    h["RON"] = spec.read_noise
    h["PROGTEMP"] = ob["proc_template"]
    h["OBSTEMP"] = ob["obs_template"]
    h["SURVEY"] = survey.key
    if spec.name == "GIRAFFE":
        h["HIERARCH ESO INS GRAT WLEN"] = f"{float(mode.grating[1:]):.1f}"
        h["HIERARCH ESO OBS ID"] = int(ob["ob_id"])
    data = fits.ImageHDU(counts.astype(np.float32), name="COUNTS")
    for hdu in (data,):
        hdu.header["CTYPE1"] = "WAVE"
        hdu.header["CUNIT1"] = "Angstrom"
        hdu.header["CRPIX1"] = 1.0
        hdu.header["CRVAL1"] = arm.wmin
        hdu.header["CD1_1"] = arm.dispersion
        hdu.header["BUNIT"] = "adu"
    varh = fits.ImageHDU(var.astype(np.float32), name="VARIANCE")
    varh.header["BUNIT"] = "adu2"
    fib = table_hdu({"FIBRE": plate["slit"][rows], "TYPE": plate["obj_type"][rows],
                     "CNAME": plate["target_name"][rows], "TARGID": plate["target_id"][rows],
                     "RA": plate["ra"][rows], "DEC": plate["dec"][rows],
                     "MAG_G": plate["mag_g"][rows], "SOURCE_ID": plate["source_id"][rows]},
                    "FIBINFO", {"RA": "deg", "DEC": "deg", "MAG_G": "mag"})
    hdus = [primary, data, varh, fib]
    if survey.key in ("weave", "fourmost"):   # the survey format's raw keywords and HDUs
        from casuvo.spectra import fourmost, weave
        hdus = {"weave": weave, "fourmost": fourmost}[survey.key].raw_hdus(hdus, ob, arm.name)
    write_atomic(fits.HDUList(hdus), path)

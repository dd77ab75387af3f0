# SPDX-License-Identifier: BSD-3-Clause
"""The spectroscopic pipeline's tasks (Dask workers): reduce an OB, make an object's spectrum.

:func:`reduce_ob`, per exposure and arm: dead fibres found (no light: median
counts below a third of the sky fibres'), sky = median of the OB's good sky
fibres (its error, and a 2 % sky-residual term, added to every fibre's
variance), flux calibration by the sensitivity function; then the
inverse-variance stack of the exposures, S/N per fibre (median per pixel),
the radial velocity of every object by cross-correlation
(:func:`casuvo.spectra.rv.measure_rv`, per arm, combined), the heliocentric
correction, QC per fibre and per OB, and the survey's per-OB product.
:func:`make_object` resamples each epoch to the heliocentric frame, stacks
the epochs and writes the per-object product.  Every input file is checked
first (readable, complete, consistent with the other exposures of the OB):
a bad one fails the OB with a message naming it, and nothing of the OB is
written.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from casuvo.spectra.products import ArmData, Epoch, OBData, ObjectData
from casuvo.spectra.rv import helio_correction, measure_rv
from casuvo.spectra.templates import C_KMS

__all__ = ["OBFailed", "OBResult", "ObjectResult", "SuperstackResult", "load_previous",
           "make_object", "make_superstacks", "reduce_ob", "writer"]

#: sky-subtraction residual (fraction of the sky) added to the variance
SKY_RESIDUAL = 0.02
#: a fibre with less light than this fraction of the sky fibres' median is dead
DEAD_FRACTION = 0.3
#: 2: Pearson CCF; 3: χ² weights floored at their running median; 4: RV floor 1 %
RESULT_VERSION = 4


@dataclass
class OBFailed:
    """An OB that could not be reduced: the message names the bad input."""

    ob_id: int
    message: str
    inputs: tuple[str, ...] = ()


@dataclass
class OBResult:
    """A reduced OB: its data (for the objects), its product files, QC and timings."""

    ob: OBData
    files: list[str]
    seconds: float
    resumed: bool
    inputs: tuple[str, ...] = ()
    key: str = ""
    """The OB's input key (raw and sensitivity-function sizes and times, result version):
    the objects made from it are up to date while it is unchanged."""


@dataclass
class ObjectResult:
    spectrum_id: str
    row: dict[str, Any]
    file: str
    seconds: float
    resumed: bool
    inputs: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class SuperstackResult:
    """The superstacks of one OB specification (one file per arm)."""

    obspec: str
    files: list[str]
    inputs: tuple[str, ...]
    ob_ids: tuple[int, ...]
    runs: tuple[int, ...]
    seconds: float
    resumed: bool


def writer(survey: str):  # -> module with write_ob / write_object / read_object
    """The survey's format module; GES's layout where the survey has none yet."""
    try:
        module = importlib.import_module(f"casuvo.spectra.{survey}")
        if hasattr(module, "write_ob") and hasattr(module, "write_object"):
            return module
    except ImportError:
        pass
    return importlib.import_module("casuvo.spectra.ges")


class BadInputError(ValueError):
    pass


def _read_raw(path: Path, ref: dict[str, Any] | None) -> dict[str, Any]:
    """One raw exposure, checked: every extension present and whole, shapes agreeing."""
    try:
        with warnings.catch_warnings(), fits.open(path, memmap=False) as hdul:
            warnings.simplefilter("error", VerifyWarning)
            names = [h.name for h in hdul]
            for ext in ("COUNTS", "VARIANCE", "FIBINFO"):
                if ext not in names:
                    raise BadInputError(f"{path.name}: no {ext} extension")
            h = hdul[0].header
            counts = np.asarray(hdul["COUNTS"].data, dtype=float)
            var = np.asarray(hdul["VARIANCE"].data, dtype=float)
            fib = hdul["FIBINFO"].data
            wh = hdul["COUNTS"].header
            out = {"header": h.copy(), "counts": counts, "var": var,
                   "fibre": np.asarray(fib["FIBRE"]), "type": np.asarray(fib["TYPE"]).astype(str),
                   "cname": np.asarray(fib["CNAME"]).astype(str),
                   "targid": np.asarray(fib["TARGID"]).astype(str),
                   "ra": np.asarray(fib["RA"], dtype=float),
                   "dec": np.asarray(fib["DEC"], dtype=float),
                   "mag_g": np.asarray(fib["MAG_G"], dtype=float),
                   "source_id": np.asarray(fib["SOURCE_ID"]).astype(np.int64),
                   "crval": float(wh["CRVAL1"]), "cd": float(wh["CD1_1"])}
    except BadInputError:
        raise
    except (OSError, ValueError, TypeError, KeyError, IndexError, VerifyWarning) as exc:
        reason = str(exc).splitlines()[0]
        raise BadInputError(f"{path.name}: unreadable or truncated ({reason})") from exc
    if counts.ndim != 2 or counts.shape != var.shape or counts.shape[0] != out["fibre"].size:
        raise BadInputError(f"{path.name}: COUNTS {counts.shape}, VARIANCE {var.shape} and "
                       f"{out['fibre'].size} FIBINFO rows disagree")
    if not np.isfinite(counts).all() or not (var > 0).all():
        raise BadInputError(f"{path.name}: COUNTS or VARIANCE has non-finite or non-positive "
                            "values")
    if ref is not None:
        if counts.shape != ref["counts"].shape or (out["crval"], out["cd"]) != (
                ref["crval"], ref["cd"]):
            raise BadInputError(f"{path.name}: wavelength grid or shape {counts.shape} differs "
                                f"from the OB's other exposures {ref['counts'].shape}")
        if not np.array_equal(out["cname"], ref["cname"]):
            raise BadInputError(f"{path.name}: fibre table differs from the OB's other exposures")
        if h.get("OBID") != ref["header"].get("OBID"):
            raise BadInputError(f"{path.name}: OBID {h.get('OBID')} is not the OB's "
                           f"{ref['header'].get('OBID')}")
    return out


def _sha(paths: list[Path], params: Any = None) -> str:
    """The key of a reduction: its inputs' names, sizes and times, the parameters that
    change its result (template grid, QC limits, flux unit) and the result version."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for p in paths:
        st = p.stat()
        digest.update(f"{p.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    digest.update(str(RESULT_VERSION).encode())
    return digest.hexdigest()[:16]


def _cache_path(work_dir: Path, ob_id: int) -> Path:
    return work_dir / f"ob_{ob_id}.npz"


def _save(ob: OBData, files: list[str], key: str, path: Path) -> None:
    arrays: dict[str, Any] = {}
    for i, a in enumerate(ob.arms):
        for name in ("wave", "flux", "sigma", "flux_noss", "sigma_noss", "sensfunc"):
            arrays[f"arm{i}_{name}"] = getattr(a, name)
    for k, v in ob.fibres.items():
        arrays[f"fib_{k}"] = np.asarray(v)
    meta = {"key": key, "files": files, "survey": ob.survey, "ob": ob.ob, "qc": ob.qc,
            "arms": [[a.arm, a.resolution] for a in ob.arms], "flux_unit": ob.flux_unit}
    arrays["meta"] = np.array(json.dumps(meta, default=float))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")   # what remove_stale_parts finds after a kill
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def _load(path: Path, key: str, root: Path) -> tuple[OBData, list[str]] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("key") != key or not all((root / f).is_file() for f in meta["files"]):
                return None
            arms = [ArmData(name, *(z[f"arm{i}_{k}"] for k in (
                "wave", "flux", "sigma", "flux_noss", "sigma_noss", "sensfunc")), res)
                for i, (name, res) in enumerate(meta["arms"])]
            fibres = {k[4:]: z[k] for k in z.files if k.startswith("fib_")}
    except (OSError, ValueError, KeyError):
        return None
    return OBData(meta["survey"], meta["ob"], arms, fibres, meta["qc"], meta["flux_unit"]), \
        meta["files"]


def reduce_ob(survey: str, ob_row: dict[str, Any], raws: list[Path], sensfuncs: dict[str, Path],
              site: tuple[float, float, float], root: Path, out_dir: Path, qc_limits:
              dict[str, float], flux_unit: str, rv_grid: tuple[tuple[float, ...], ...] | None,
              version: str = "") -> OBResult | OBFailed:
    """Reduce one OB (see the module's description); a bad input fails it, naming the file."""
    t0 = time.perf_counter()
    ob_id = int(ob_row["ob_id"])
    inputs = tuple(str(p) for p in raws)
    key = _sha([*raws, *sensfuncs.values()], [rv_grid, qc_limits, flux_unit, survey])
    cache = _cache_path(out_dir / "work", ob_id)
    if cache.is_file():
        loaded = _load(cache, key, root)
        if loaded is not None:
            return OBResult(loaded[0], loaded[1], time.perf_counter() - t0, True, inputs, key)
    try:
        by_arm: dict[str, list[dict[str, Any]]] = {}
        ref: dict[str, Any] | None = None
        for p in raws:
            try:
                arm = str(fits.getheader(p).get("ARM", ""))
            except (OSError, ValueError) as exc:
                raise BadInputError(f"{p.name}: unreadable ({exc})") from exc
            # checked against the arm's first exposure
            raw = _read_raw(p, by_arm[arm][0] if arm in by_arm else None)
            if ref is not None and not np.array_equal(raw["cname"], ref["cname"]):
                raise BadInputError(f"{p.name}: fibre table differs from the OB's other exposures")
            ref = ref or raw
            by_arm.setdefault(arm, []).append(raw)
        for arm in by_arm:
            if arm not in sensfuncs or not sensfuncs[arm].is_file():
                raise BadInputError(f"no sensitivity function for arm {arm!r} of OB {ob_id}")
    except BadInputError as exc:
        return OBFailed(ob_id, f"OB {ob_id}: {exc}", inputs)
    assert ref is not None
    # fibres in fibre-number order
    order = np.argsort(ref["fibre"])
    n = order.size
    is_sky = ref["type"][order] == "SKY"
    exposures = by_arm[next(iter(by_arm))]
    mjd_mid = float(np.mean([float(r["header"]["MJD-OBS"]) + float(r["header"]["EXPTIME"]) / 2
                             / 86400.0 for r in exposures]))
    vcorr = helio_correction(ref["ra"][order], ref["dec"][order], mjd_mid, site)
    dead = np.zeros(n, bool)
    arms: list[ArmData] = []
    for arm_name, exps in by_arm.items():
        with fits.open(sensfuncs[arm_name], memmap=False) as h:
            sens = np.asarray(h[0].data, dtype=float)
        stack_w = stack_f = stack_wn = stack_fn = 0.0
        resolution = float(exps[0]["header"].get("RESOL", 5000.0))
        for raw in exps:
            counts = raw["counts"][order]
            var = raw["var"][order]
            if sens.size != counts.shape[1]:
                return OBFailed(ob_id, f"OB {ob_id}: sensitivity function of arm {arm_name} "
                                f"has {sens.size} pixels, the exposures {counts.shape[1]}",
                                inputs)
            level = np.median(counts, axis=1)
            sky_level = np.median(level[is_sky])
            dead |= level < DEAD_FRACTION * sky_level
            good_sky = is_sky & ~dead
            sky = np.median(counts[good_sky], axis=0)
            sky_var = np.pi / 2 * np.mean(var[good_sky], axis=0) / max(good_sky.sum(), 1)
            t = float(raw["header"]["EXPTIME"])
            scale = sens * t
            f_ss = (counts - sky) / scale
            v_ss = (var + sky_var + (SKY_RESIDUAL * sky) ** 2) / scale ** 2
            f_ns = counts / scale
            v_ns = var / scale ** 2
            stack_w = stack_w + 1.0 / v_ss
            stack_f = stack_f + f_ss / v_ss
            stack_wn = stack_wn + 1.0 / v_ns
            stack_fn = stack_fn + f_ns / v_ns
        wave = exps[0]["crval"] + exps[0]["cd"] * np.arange(sens.size)
        arms.append(ArmData(arm_name, wave, stack_f / stack_w, 1.0 / np.sqrt(stack_w),
                            stack_fn / stack_wn, 1.0 / np.sqrt(stack_wn), sens, resolution))
    for a in arms:   # a dead fibre has no spectrum
        a.flux[dead] = np.nan
        a.sigma[dead] = np.nan
    snr = np.full(n, np.nan)
    rv = np.full(n, np.nan)
    rv_err = np.full(n, np.nan)
    tmpl = np.array([""] * n, dtype=object)
    peak = np.full(n, np.nan)
    chi2 = np.full(n, np.nan)
    params = np.full((n, 3), np.nan)
    for i in range(n):
        if dead[i]:
            continue
        ratios = np.concatenate([a.flux[i] / a.sigma[i] for a in arms])
        snr[i] = float(np.nanmedian(ratios))
        if is_sky[i]:
            continue
        results = [measure_rv(a.wave, a.flux[i], a.sigma[i], a.resolution, rv_grid)
                   for a in arms]
        usable = [r for r in results if np.isfinite(r.rv) and r.rv_error > 0]
        if not usable:
            continue
        w = np.array([1.0 / r.rv_error ** 2 for r in usable])
        rv[i] = float(np.sum(w * [r.rv for r in usable]) / w.sum()) + vcorr[i]
        rv_err[i] = float(1.0 / np.sqrt(w.sum()))
        best = max(usable, key=lambda r: r.ccf_peak)
        tmpl[i], peak[i], chi2[i] = best.template, best.ccf_peak, best.chi2_dof
        params[i] = best.template_params
    is_obj = ~is_sky
    snr_median = float(np.nanmedian(snr[is_obj & ~dead])) if (is_obj & ~dead).any() else np.nan
    seeing = float(ref["header"].get("SEEING", np.nan))
    passed = (np.isfinite(snr_median) and snr_median >= qc_limits.get("min_snr", 0.0)
              and seeing <= qc_limits.get("max_seeing_arcsec", 99.0))
    h0 = ref["header"]
    mjd_obs = min(float(r["header"]["MJD-OBS"]) for r in exposures)
    mjd_end = max(float(r["header"]["MJD-OBS"]) + float(r["header"]["EXPTIME"]) / 86400.0
                  for r in exposures)
    from datetime import UTC, datetime

    ob_info = {**{k: (v.item() if isinstance(v, np.generic) else v) for k, v in ob_row.items()},
               "mjd_obs": mjd_obs, "mjd_end": mjd_end, "mjd_mid": mjd_mid,
               "exptime": float(sum(float(r["header"]["EXPTIME"]) for r in exposures)),
               "n_exposures": len(exposures), "airmass": float(h0.get("AIRMASS", np.nan)),
               "seeing": seeing, "date_obs": str(h0.get("DATE-OBS", "")),
               "utc": (mjd_obs % 1.0) * 86400.0, "instrument": str(h0.get("INSTRUME", "")),
               "telescope": str(h0.get("TELESCOP", "")),
               "grat_wlen": str(h0.get("HIERARCH ESO INS GRAT WLEN", "")),
               "run": int(h0.get("RUN", 0)), "resolution": float(np.mean(
                   [a.resolution for a in arms])),
               "em_min": float(min(a.wave[0] for a in arms)),
               "em_max": float(max(a.wave[-1] for a in arms)),
               "raw_files": [str(p.relative_to(root)) for p in raws],
               "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "version": version}
    fibres = {
        "fibre": ref["fibre"][order], "target_name": ref["cname"][order],
        "target_id": ref["targid"][order], "obj_type": np.where(is_sky, "SKY", "OBJ"),
        "ra": ref["ra"][order], "dec": ref["dec"][order], "mag_g": ref["mag_g"][order],
        "source_id": ref["source_id"][order], "fibre_status": np.where(dead, "DEAD", "OK"),
        "snr": snr, "rv": rv, "rv_error": rv_err, "helio_cor": vcorr,
        "rv_template": tmpl.astype(str), "ccf_peak": peak, "chi2_dof": chi2,
        "teff": params[:, 0], "logg": params[:, 1], "feh": params[:, 2],
        "sky_scale": np.ones(n)}
    qc = {"snr_median": snr_median, "n_dead": int(dead.sum()),
          "n_rv": int(np.isfinite(rv).sum()), "seeing": seeing,
          "status": "pass" if passed else "fail"}
    ob = OBData(survey, ob_info, arms, fibres, qc, flux_unit)
    files = [str(p.relative_to(root)) for p in writer(survey).write_ob(ob, out_dir)]
    ob.ob["product_file"] = files[0]
    _save(ob, files, key, cache)
    return OBResult(ob, files, time.perf_counter() - t0, False, inputs, key)


def _resample(arm: ArmData, row: int, grid: np.ndarray, vcorr: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Fibre ``row`` of an OB arm moved to the heliocentric frame, on ``grid``."""
    helio = arm.wave * (1.0 + vcorr / C_KMS)
    flux = np.interp(grid, helio, arm.flux[row], left=np.nan, right=np.nan)
    sigma = np.interp(grid, helio, arm.sigma[row], left=np.nan, right=np.nan)
    return flux, sigma


def make_object(survey: str, spectrum_id: str, setting: str, mode: str,
                epochs: list[tuple[OBResult | OBFailed, int]], root: Path, out_dir: Path,
                keywords: dict[str, Any]) -> ObjectResult | None:
    """The object's per-object product from its epochs (None when no epoch has data)."""
    t0 = time.perf_counter()
    usable = [(r, i) for r, i in epochs if isinstance(r, OBResult)
              and r.ob.fibres["fibre_status"][i] == "OK"]
    if not usable:
        return None
    usable.sort(key=lambda e: e[0].ob.ob["mjd_obs"])
    mod = writer(survey)
    key = _object_key(spectrum_id, mod.__name__, keywords, usable)
    marker = _object_marker(out_dir, spectrum_id)
    done = _object_done(marker, key, root)
    if done is not None:
        return ObjectResult(spectrum_id, done["row"], done["row"]["file"],
                            time.perf_counter() - t0, True,
                            tuple(r.ob.ob["product_file"] for r, _ in usable))
    first_ob, first_i = usable[0]
    f0 = first_ob.ob.fibres
    ep: list[Epoch] = []
    for r, i in usable:
        o, f = r.ob.ob, r.ob.fibres
        arms = []
        for a in r.ob.arms:
            grid = first_ob.ob.arms[[x.arm for x in first_ob.ob.arms].index(a.arm)].wave
            fl, sg = _resample(a, i, grid, float(f["helio_cor"][i]))
            fn, sn = (np.interp(grid, a.wave * (1 + float(f["helio_cor"][i]) / C_KMS),
                                v[i], left=np.nan, right=np.nan)
                      for v in (a.flux_noss, a.sigma_noss))
            arms.append(ArmData(a.arm, grid, fl, sg, fn, sn, a.sensfunc, a.resolution))
        ep.append(Epoch(int(o["ob_id"]), int(f["fibre"][i]), o["product_file"],
                        float(o["mjd_obs"]), float(o["mjd_end"]), float(o["exptime"]),
                        float(o["airmass"]), float(o["seeing"]), float(f["snr"][i]),
                        float(f["rv"][i]), float(f["rv_error"][i]), float(f["helio_cor"][i]),
                        arms))
    stacked = []
    for k, a in enumerate(ep[0].arms):
        w = np.zeros_like(a.flux)
        s = np.zeros_like(a.flux)
        wn = np.zeros_like(a.flux)
        sn = np.zeros_like(a.flux)
        for e in ep:
            x = e.arms[k]
            ok = np.isfinite(x.flux) & np.isfinite(x.sigma) & (x.sigma > 0)
            w[ok] += 1.0 / x.sigma[ok] ** 2
            s[ok] += x.flux[ok] / x.sigma[ok] ** 2
            okn = np.isfinite(x.flux_noss) & (x.sigma_noss > 0)
            wn[okn] += 1.0 / x.sigma_noss[okn] ** 2
            sn[okn] += x.flux_noss[okn] / x.sigma_noss[okn] ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            stacked.append(ArmData(a.arm, a.wave, np.where(w > 0, s / w, np.nan),
                                   np.where(w > 0, 1 / np.sqrt(w), np.nan),
                                   np.where(wn > 0, sn / wn, np.nan),
                                   np.where(wn > 0, 1 / np.sqrt(wn), np.nan),
                                   a.sensfunc, a.resolution))
    good = [e for e in ep if np.isfinite(e.rv) and e.rv_error > 0]
    if good:
        wts = np.array([1 / e.rv_error ** 2 for e in good])
        rv = float(np.sum(wts * [e.rv for e in good]) / wts.sum())
        rv_err = float(1 / np.sqrt(wts.sum()))
    else:
        rv = rv_err = float("nan")
    ratios = np.concatenate([a.flux / a.sigma for a in stacked])
    snr = float(np.nanmedian(ratios)) if np.isfinite(ratios).any() else float("nan")
    best_i = max(range(len(usable)), key=lambda j: float(np.nan_to_num(
        usable[j][0].ob.fibres["ccf_peak"][usable[j][1]], nan=-1)))
    br, bi = usable[best_i]
    obj = ObjectData(survey, spectrum_id, str(f0["target_name"][first_i]),
                     str(f0["target_id"][first_i]), int(f0["source_id"][first_i]),
                     float(f0["ra"][first_i]), float(f0["dec"][first_i]),
                     float(f0["mag_g"][first_i]), mode, setting, ep, stacked, snr, rv, rv_err,
                     str(br.ob.fibres["rv_template"][bi]),
                     {"TELESCOP": first_ob.ob.ob["telescope"],
                      "INSTRUME": first_ob.ob.ob["instrument"], **keywords},
                     first_ob.ob.flux_unit)
    path = mod.write_object(obj, out_dir)
    rel = str(path.relative_to(root))
    newest = ep[-1]
    row = {"spectrum_id": spectrum_id, "target_name": obj.target_name,
           "source_id": obj.source_id, "ra": obj.ra, "dec": obj.dec, "ob_id": newest.ob_id,
           "n_epochs": len(ep), "mode": mode, "setting": setting, "fibre": newest.fibre,
           "snr": snr, "rv": rv, "rv_error": rv_err, "rv_template": obj.rv_template,
           "em_min": float(min(a.wave[0] for a in stacked)) * 1e-10,
           "em_max": float(max(a.wave[-1] for a in stacked)) * 1e-10,
           "resolving_power": float(np.mean([a.resolution for a in stacked])),
           "t_min": min(e.mjd_obs for e in ep), "t_max": max(e.mjd_end for e in ep),
           "exptime": float(sum(e.exptime for e in ep)), "file": rel,
           "progenitors": " ".join(e.product_file for e in ep),
           "file_size": path.stat().st_size}
    _write_marker(marker, {"key": key, "row": row})
    return ObjectResult(spectrum_id, row, rel, time.perf_counter() - t0, False,
                        tuple(e.product_file for e in ep))


def _object_key(spectrum_id: str, module: str, keywords: dict[str, Any],
                usable: list[tuple[OBResult, int]]) -> str:
    """What an object's product is made of: its epochs (each OB's input key and the
    fibre), the format module, the keywords and the result version."""
    parts = [spectrum_id, module, RESULT_VERSION, sorted(keywords.items()),
             [(r.key, int(r.ob.fibres["fibre"][i])) for r, i in usable]]
    if any(not r.key for r, _ in usable):   # an OB without a key: never up to date
        return ""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def _object_marker(out_dir: Path, spectrum_id: str) -> Path:
    return out_dir / "work" / "objects" / f"{spectrum_id}.json"


def _object_done(marker: Path, key: str, root: Path) -> dict[str, Any] | None:
    """The marker's record when the object's product was made from the same epochs and
    its file is still there, whole (the size the row recorded)."""
    if not key or not marker.is_file():
        return None
    try:
        done = json.loads(marker.read_text(encoding="utf-8"))
        path = root / done["row"]["file"]
        if done.get("key") != key or path.stat().st_size != done["row"]["file_size"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return done


def _write_marker(marker: Path, record: dict[str, Any]) -> None:
    """Written after the product (atomically): a run killed between the two makes the
    object again, never trusts half of it."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(f".{marker.name}.part")
    tmp.write_text(json.dumps(record, default=float), encoding="utf-8")
    os.replace(tmp, marker)


def load_previous(out_dir: Path, ob_id: int) -> OBResult | None:
    """The OB's last good reduction (whatever its inputs were), if any: what stays
    published when a new input of the OB is bad."""
    cache = _cache_path(out_dir / "work", ob_id)
    if not cache.is_file():
        return None
    try:
        with np.load(cache, allow_pickle=False) as z:
            key = json.loads(str(z["meta"]))["key"]
    except (OSError, ValueError, KeyError):
        return None
    loaded = _load(cache, key, out_dir.parents[1])
    return None if loaded is None else OBResult(loaded[0], loaded[1], 0.0, True, (), key)


def make_superstacks(survey: str, obspec: str, obs: list[OBResult], root: Path,
                     out_dir: Path) -> SuperstackResult | None:
    """The superstacks of one OB specification from the singles of its reduced OBs
    (``<out_dir>/superstacks/``), when the survey's format has them (WEAVE); None
    otherwise.  Not remade while its OBs' input keys and singles are those it was
    made from and its files are there, whole (the sizes recorded)."""
    t0 = time.perf_counter()
    mod = writer(survey)
    if not hasattr(mod, "write_superstacks"):
        return None
    obs = sorted(obs, key=lambda r: int(r.ob.ob["ob_id"]))
    singles = [f for r in obs for f in r.files if Path(f).name.startswith("single_")]
    if not singles:
        return None
    ob_ids = tuple(int(r.ob.ob["ob_id"]) for r in obs)
    runs = tuple(sorted(int(Path(f).stem.split("_")[1]) for f in singles))
    key = "" if any(not r.key for r in obs) else hashlib.sha256(json.dumps(
        [obspec, mod.__name__, RESULT_VERSION, [(r.key, r.files) for r in obs]]
    ).encode()).hexdigest()[:16]
    marker = out_dir / "work" / "superstacks" / f"{obspec}.json"
    if key and marker.is_file():
        try:
            done = json.loads(marker.read_text(encoding="utf-8"))
            if done.get("key") == key and all(
                    (root / f).stat().st_size == n for f, n in done["sizes"].items()):
                return SuperstackResult(obspec, list(done["sizes"]), tuple(singles), ob_ids,
                                        runs, time.perf_counter() - t0, True)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    paths = mod.write_superstacks([root / f for f in singles], out_dir / "superstacks")
    files = [str(p.relative_to(root)) for p in paths]
    _write_marker(marker, {"key": key, "sizes": {f: (root / f).stat().st_size for f in files}})
    return SuperstackResult(obspec, files, tuple(singles), ob_ids, runs,
                            time.perf_counter() - t0, False)

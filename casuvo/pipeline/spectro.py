# SPDX-License-Identifier: BSD-3-Clause
"""The spectroscopic pipelines' driver: OB database and raws → Dask graph → products, index.

``casuvo pipeline run ges|weave|fourmost``.  The graph: one task per OB
(:func:`casuvo.pipeline.spectro_tasks.reduce_ob`: sky subtraction, flux
calibration, stack, S/N, RVs, QC, the per-OB product) and one per object
and mode (:func:`~casuvo.pipeline.spectro_tasks.make_object`: the epochs,
heliocentric, stacked; the per-object product), on Dask's threads (or the
scheduler given); then, where the survey's format has them (WEAVE), the
superstacks of every OB specification observed in several OBs with one
instrument configuration (:func:`~casuvo.pipeline.spectro_tasks.make_superstacks`).
Every product and failure goes into the processing ledger; an OB found
reduced with the same inputs is not redone.  The run ends by writing the index
tables of docs/spectroscopy.md,
``products/<survey>/index/{obs_blocks,targets,spectra,raw}.fits``,
atomically.  An OB whose input is bad is named in the run's failures; its
previous reduction (if any) stays what the index and the objects use.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dask
import numpy as np
from astropy.io import fits
from tqdm import tqdm

from casuvo._version import __version__
from casuvo.pipeline.runner import RunSummary
from casuvo.pipeline.spectro_tasks import (
    OBFailed,
    ObjectResult,
    OBResult,
    load_previous,
    make_object,
    make_superstacks,
    reduce_ob,
)
from casuvo.spectra.fitsio import table_hdu, write_atomic
from casuvo.storage.files import checksum, remove_stale_parts, write_json
from casuvo.surveys.registry import Survey

__all__ = ["SpectroRunSummary", "run_spectro_pipeline"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpectroRunSummary(RunSummary):
    """A run's summary (:class:`RunSummary`), plus the object spectra made and the CPU time."""

    n_spectra: int = 0
    cpu_seconds: float = 0.0


@dataclass(frozen=True)
class _Raw:
    path: Path
    ob_id: int
    arm: str
    mjd: float
    exptime: float
    ra: float
    dec: float
    night: str


def _index_raws(raw_dir: Path) -> tuple[list[_Raw], list[tuple[Path, str]]]:
    raws, problems = [], []
    for path in sorted(raw_dir.glob("2*/*.fit*")):
        try:
            h = fits.getheader(path)
            raws.append(_Raw(path, int(h["OBID"]), str(h["ARM"]), float(h["MJD-OBS"]),
                             float(h["EXPTIME"]), float(h["RA"]), float(h["DEC"]),
                             path.parent.name))
        except (OSError, KeyError, ValueError, TypeError) as exc:
            problems.append((path, f"{path.name}: unreadable raw header ({exc})"))
    return raws, problems


def _plan(raw_dir: Path) -> list[dict[str, Any]]:
    with fits.open(raw_dir / "obs_blocks.fits", memmap=False) as h:
        data = h[1].data
        names = data.columns.names
        return [{n: (row[n].item() if hasattr(row[n], "item") else row[n]) for n in names}
                for row in data]


def _fibinfo(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with fits.open(path, memmap=False) as h:
            fib = h["FIBINFO"].data
            return {k: np.asarray(fib[k]) for k in fib.columns.names}
    except (OSError, KeyError, ValueError, TypeError, IndexError):
        return None


def _release(entry: Survey, night: int, field: str | None) -> str:
    """Release time of a product of ``field`` on ``night``: the survey's rules
    (:meth:`casuvo.surveys.access.AccessPolicy.release`), at the start of that day."""
    return f"{entry.access.release(night, field).isoformat()}T00:00:00"


def _connect(dsn: str | None):  # -> psycopg.Connection | None
    if not dsn:
        return None
    import psycopg

    from casuvo.storage import ledger

    try:
        conn = psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        log.warning("no processing ledger (database unreachable: %s)", exc)
        return None
    ledger.ensure_products_schema(conn)
    return conn


class _Progress(dask.callbacks.Callback):
    """A tqdm bar over the graph's tasks (threaded scheduler)."""

    def __init__(self, bar: tqdm) -> None:
        super().__init__()
        self.bar = bar

    def _posttask(self, key, result, dsk, state, worker_id) -> None:
        self.bar.update(1)


def run_spectro_pipeline(entry: Survey, data_dir: Path, dsn: str | None = None,
                         night: str | None = None, scheduler: str | None = None,
                         workers: int | None = None, progress: bool = True
                         ) -> SpectroRunSummary:
    """Run a spectroscopic survey's pipeline over ``data_dir/raw/<survey>``."""
    from casuvo.storage import ledger

    t0 = time.perf_counter()
    c0 = time.process_time()
    cfg = entry.spectro
    spec = entry.spectrograph
    raw_dir = data_dir / "raw" / entry.key
    out_dir = data_dir / "products" / entry.key
    if not (raw_dir / "obs_blocks.fits").is_file():
        raise ValueError(f"no OB database {raw_dir / 'obs_blocks.fits'}: run `casuvo simulate`")
    plan = _plan(raw_dir)
    raws, problems = _index_raws(raw_dir)
    by_ob: dict[int, list[_Raw]] = defaultdict(list)
    for r in raws:
        if night is None or r.night == night:
            by_ob[r.ob_id].append(r)
    qc_limits = {k: float(v) for k, v in entry.config.get("qc", {}).items()}
    grid = cfg.rv_templates
    rv_grid = (tuple(grid["teff"]), tuple(grid["logg"]), tuple(grid["feh"])) if grid else None
    params = {"survey": entry.key, "night": night, "qc": qc_limits,
              "rv_templates": dict(grid), "resample": cfg.resample}
    run_id = uuid.uuid4().hex[:12]
    conn = _connect(dsn)
    if conn is not None:
        ledger.record_run_start(conn, run_id, entry.key, scheduler or "threads", params)
    for part in remove_stale_parts(out_dir) if out_dir.is_dir() else ():
        log.warning("removed %s, left by a writer that was killed", part)

    # ---- the graph: OBs to reduce (planned observed, all exposures there), then objects
    ob_tasks: dict[int, Any] = {}
    plan_by_id = {int(p["ob_id"]): p for p in plan}
    for ob_id, files in sorted(by_ob.items()):
        row = plan_by_id.get(ob_id)
        if row is None:
            problems.append((files[0].path, f"{files[0].path.name}: OBID {ob_id} is not in "
                             "the OB database"))
            continue
        if row["planned"] != "observed":
            continue   # partial OBs wait for their other exposures
        mode = row["setting"]
        sens = {a.name: raw_dir / "calib" / f"sensfunc_{mode}_{a.name}.fits"
                for a in spec.mode(mode).arms}
        ob_tasks[ob_id] = dask.delayed(reduce_ob, pure=False)(
            entry.key, row, [f.path for f in sorted(files, key=lambda f: (f.arm, f.mjd))], sens,
            spec.site, data_dir, out_dir, qc_limits, cfg.flux_unit, rv_grid, __version__)
    # objects: (target, setting) over the OBs' fibre tables
    epochs: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    fibtabs: dict[int, dict[str, np.ndarray]] = {}
    for ob_id in ob_tasks:
        first = sorted(by_ob[ob_id], key=lambda f: f.mjd)[0]
        fib = _fibinfo(first.path)
        if fib is None:
            continue
        fibtabs[ob_id] = fib
        order = np.argsort(fib["FIBRE"])
        for i, k in enumerate(order):
            if str(fib["TYPE"][k]) == "OBJ":
                epochs[(str(fib["CNAME"][k]), plan_by_id[ob_id]["setting"])].append((ob_id, i))
    mode_of = {m.name: m.resolution_class for m in entry.modes()}
    obj_tasks = []
    for (name, setting), eps in sorted(epochs.items()):
        sid = f"{entry.key}-{name}-{setting}"
        obj_tasks.append(dask.delayed(make_object, pure=False)(
            entry.key, sid, setting, mode_of[setting],
            [(ob_tasks[o], i) for o, i in eps], data_dir, out_dir, {"PROG_ID": entry.prog_id}))
    ob_keys = list(ob_tasks)
    total = len(ob_tasks) + len(obj_tasks)
    bar = tqdm(total=total, unit="task", desc=f"pipeline {entry.key}", disable=not progress)
    if scheduler:
        from dask.distributed import Client

        with Client(scheduler) as client:
            results = client.gather(client.compute([*ob_tasks.values(), *obj_tasks]))
        bar.update(total)
    else:
        with _Progress(bar):
            results = dask.compute(*ob_tasks.values(), *obj_tasks, scheduler="threads",
                                   num_workers=workers or 2)
    bar.close()
    ob_results: dict[int, OBResult | OBFailed] = dict(zip(ob_keys, results[:len(ob_keys)],
                                                          strict=True))
    obj_results = [r for r in results[len(ob_keys):] if r is not None]

    # ---- the ledger
    failures = [msg for _, msg in problems]
    ok = resumed = 0
    made: list[str] = []

    sums: dict[str, str | None] = {}

    def sha(name: str) -> str | None:
        """An input's SHA-256 (the ledger's input checksums, as the imaging runs record)."""
        if name not in sums:
            path = Path(name) if Path(name).is_absolute() else data_dir / name
            try:
                sums[name] = checksum(path)
            except OSError:
                sums[name] = None
        return sums[name]

    def record(product: str, kind: str, files: list[str], inputs: tuple[str, ...],
               qc: dict | None, meta: dict | None, status: str, message: str | None,
               seconds: float | None) -> None:
        if conn is None:
            return
        ledger.record_product(conn, ledger.ProductEntry(
            run_id, entry.key, product, kind, files, {f: sha(f) for f in inputs}, params, qc,
            meta, status, message, seconds))

    for path, msg in problems:
        record(path.name, "failed", [], (str(path),), None, None, "failed", msg, None)
    for ob_id, res in ob_results.items():
        if isinstance(res, OBFailed):
            failures.append(res.message)
            record(f"OB {ob_id}", "failed", [], res.inputs, None, {"ob_id": ob_id}, "failed",
                   res.message, None)
            prev = load_previous(out_dir, ob_id)
            if prev is not None:
                ob_results[ob_id] = prev
            continue
        made.extend(res.files)
        if res.resumed:
            resumed += 1
        else:
            ok += 1
        qc = res.ob.qc
        # the imaging runs' QC names too (qcstatus, seeing_arcsec): the status pages and
        # `casuvo pipeline status` summarise both kinds alike
        record(f"OB {ob_id}", "ob", res.files, res.inputs,
               {**qc, "qcstatus": qc.get("status"), "seeing_arcsec": qc.get("seeing")},
               {"ob_id": ob_id, "n_fibres": int(res.ob.fibres["fibre"].size),
                "setting": res.ob.ob.get("setting"), "night": res.ob.ob.get("night")},
               "resumed" if res.resumed else "ok", None, res.seconds)
    min_snr = qc_limits.get("min_snr", 0.0)
    for res in obj_results:
        made.append(res.file)
        if res.resumed:
            resumed += 1
        else:
            ok += 1
        r = res.row
        good = bool(np.isfinite(r["rv"]) and np.isfinite(r["snr"]) and r["snr"] >= min_snr)
        record(res.spectrum_id, "spectrum", [res.file], res.inputs,
               {"snr": r["snr"], "rv_error": r["rv_error"],
                "qcstatus": "pass" if good else "fail"},
               {"rv": r["rv"], "ob_id": r["ob_id"], "n_epochs": r["n_epochs"],
                "setting": r["setting"], "target_name": r["target_name"]},
               "resumed" if res.resumed else "ok", None, res.seconds)

    # ---- superstacks: per OB specification and instrument configuration observed in
    # more than one OB, the singles of all its OBs (WEAVE; files and ledger, no index)
    groups: dict[tuple[str, ...], list[OBResult]] = defaultdict(list)
    for res in ob_results.values():
        if isinstance(res, OBResult):
            o = res.ob.ob
            groups[(str(o.get("obspec") or o["ob_name"]), str(o["setting"]),
                    str(o.get("binning", "")), str(o.get("proc_template", "")))].append(res)
    for (obspec, setting, *_), members in sorted(groups.items()):
        if len(members) < 2:
            continue
        try:
            sup = make_superstacks(entry.key, obspec, members, data_dir, out_dir)
        except (OSError, ValueError) as exc:
            msg = f"superstack {obspec}: {exc}"
            failures.append(msg)
            record(f"superstack {obspec}", "failed", [], (), None, {"obspec": obspec},
                   "failed", msg, None)
            continue
        if sup is None:
            continue
        made.extend(sup.files)
        if sup.resumed:
            resumed += 1
        else:
            ok += 1
        record(f"superstack {obspec}", "superstack", sup.files, sup.inputs, None,
               {"obspec": obspec, "ob_ids": list(sup.ob_ids), "runs": list(sup.runs),
                "setting": setting}, "resumed" if sup.resumed else "ok", None, sup.seconds)

    # ---- the index tables
    write_index(entry, data_dir, plan, raws, ob_results, obj_results, fibtabs)
    summary = SpectroRunSummary(run_id, ok, resumed, len(failures), tuple(sorted(made)),
                                tuple(failures), time.perf_counter() - t0, len(obj_results),
                                time.process_time() - c0)
    if conn is not None:
        ledger.record_run_end(conn, run_id,
                              "completed" if not failures else "completed with failures", ok,
                              len(failures), resumed)
        conn.close()
    write_json(out_dir / "runs" / f"{run_id}.json", asdict(summary), indent=1)
    return summary


def _status(plan_row: dict[str, Any], res: OBResult | OBFailed | None) -> str:
    planned = plan_row["planned"]
    if planned in ("scheduled", "aborted"):
        return planned
    if planned == "partial" or not isinstance(res, OBResult):
        return "observed"
    return "completed" if res.ob.qc.get("status") == "pass" else "processed"


def write_index(entry: Survey, data_dir: Path, plan: list[dict[str, Any]], raws: list[_Raw],
                ob_results: dict[int, OBResult | OBFailed], objects: list[ObjectResult],
                fibtabs: dict[int, dict[str, np.ndarray]]) -> Path:
    """The four index tables of docs/spectroscopy.md under ``products/<survey>/index``."""
    spec = entry.spectrograph
    index = data_dir / "products" / entry.key / "index"
    units = {"ra": "deg", "dec": "deg", "em_min": "m", "em_max": "m", "exptime": "s",
             "mjd_obs": "d", "t_min": "d", "t_max": "d", "seeing": "arcsec", "rv": "km/s",
             "rv_error": "km/s", "mag_g": "mag", "file_size": "byte"}
    # obs_blocks
    rows = []
    for p in sorted(plan, key=lambda p: (p["night"], p["ob_id"])):
        ob_id = int(p["ob_id"])
        res = ob_results.get(ob_id)
        mode = spec.mode(p["setting"])
        done = isinstance(res, OBResult)
        o = res.ob.ob if done else {}
        exps = [r for r in raws if r.ob_id == ob_id]
        rows.append({
            "ob_id": ob_id, "ob_name": p["ob_name"], "field": p["field"],
            "night": int(p["night"]), "mjd_obs": float(min((r.mjd for r in exps),
                                                          default=p["mjd_obs"])),
            "proc_template": str(p["proc_template"]), "obs_template": str(p["obs_template"]),
            "mode": p["mode"], "binning": int(p["binning"]),
            "made": f"{p['mode']} MOS ({int(p['binning'])})",
            "n_targets": int(p["n_targets"]), "n_sky": int(p["n_sky"]),
            "n_unallocated": int(p["n_unallocated"]), "srv1": p["srv1"], "srv2": p["srv2"],
            "srv3": p["srv3"], "author": p["author"], "trimester": int(p["trimester"]),
            "status": _status(p, res), "ra": float(p["ra"]), "dec": float(p["dec"]),
            "airmass": float(p["airmass"]), "seeing": float(p["seeing"]),
            "exptime": float(sum(r.exptime for r in exps
                                 if r.arm == mode.arms[0].name)),
            "n_exposures": len({r.mjd for r in exps}) // 1 if False else
            len([r for r in exps if r.arm == mode.arms[0].name]),
            "grating": mode.grating or mode.name, "setting": mode.name,
            "resolution": float(mode.resolution), "em_min": mode.em_min * 1e-10,
            "em_max": mode.em_max * 1e-10,
            "snr_median": float(res.ob.qc["snr_median"]) if done else np.nan,
            "product_file": o.get("product_file", "") if done else "",
            "release_date": _release(entry, int(p["night"]), p["field"])})
    _write_table(index / "obs_blocks.fits", rows, "OBS_BLOCKS", units)
    # targets
    spectra_of = {}
    for obj in objects:
        spectra_of[(obj.row["target_name"], obj.spectrum_id.rsplit("-", 1)[-1])] = obj.spectrum_id
    trows = []
    for ob_id, res in sorted(ob_results.items()):
        setting = next(p["setting"] for p in plan if int(p["ob_id"]) == ob_id)
        if isinstance(res, OBResult):
            f = res.ob.fibres
            for i in range(f["fibre"].size):
                obj = f["obj_type"][i] == "OBJ" and f["fibre_status"][i] == "OK"
                trows.append({
                    "ob_id": ob_id, "fibre": int(f["fibre"][i]),
                    "target_name": str(f["target_name"][i]), "target_id": str(f["target_id"][i]),
                    "obj_type": str(f["obj_type"][i]), "ra": float(f["ra"][i]),
                    "dec": float(f["dec"][i]), "mag_g": float(f["mag_g"][i]),
                    "source_id": int(f["source_id"][i]),
                    "fibre_status": str(f["fibre_status"][i]), "snr": float(f["snr"][i]),
                    "spectrum_id": spectra_of.get((str(f["target_name"][i]), setting), "")
                    if obj else ""})
        elif ob_id in fibtabs:
            fib = fibtabs[ob_id]
            for k in np.argsort(fib["FIBRE"]):
                trows.append({
                    "ob_id": ob_id, "fibre": int(fib["FIBRE"][k]),
                    "target_name": str(fib["CNAME"][k]), "target_id": str(fib["TARGID"][k]),
                    "obj_type": str(fib["TYPE"][k]), "ra": float(fib["RA"][k]),
                    "dec": float(fib["DEC"][k]), "mag_g": float(fib["MAG_G"][k]),
                    "source_id": int(fib["SOURCE_ID"][k]), "fibre_status": "OK",
                    "snr": np.nan, "spectrum_id": ""})
    _write_table(index / "targets.fits", trows, "TARGETS", units, {"source_id": -1})
    # spectra
    authority = "casuvo.example.org"
    srows = []
    for obj in sorted(objects, key=lambda o: o.spectrum_id):
        r = dict(obj.row)
        ob_plan = next((p for p in plan if int(p["ob_id"]) == r["ob_id"]), {})
        night, field = ob_plan.get("night", 20240101), ob_plan.get("field")
        srows.append({"spectrum_id": r["spectrum_id"],
                      "obs_publisher_did": f"ivo://{authority}/~?{entry.collection}/"
                                           f"{r['spectrum_id']}",
                      **{k: r[k] for k in ("target_name", "source_id", "ra", "dec", "ob_id",
                                           "n_epochs", "mode", "setting", "fibre", "snr", "rv",
                                           "rv_error", "rv_template", "em_min", "em_max",
                                           "resolving_power", "t_min", "t_max", "exptime",
                                           "file", "progenitors", "file_size")},
                      "release_date": _release(entry, int(night), field)})
    _write_table(index / "spectra.fits", srows, "SPECTRA", units, {"source_id": -1})
    # raw
    rrows = []
    for r in raws:
        p = next((p for p in plan if int(p["ob_id"]) == r.ob_id), None)
        arm = spec.mode(p["setting"]).arm(r.arm) if p is not None else None
        rrows.append({"file": str(r.path.relative_to(data_dir)), "ob_id": r.ob_id,
                      "mjd_obs": r.mjd, "exptime": r.exptime, "ra": r.ra, "dec": r.dec,
                      "arm": r.arm, "em_min": arm.wmin * 1e-10 if arm else np.nan,
                      "em_max": arm.wmax * 1e-10 if arm else np.nan})
    _write_table(index / "raw.fits", rrows, "RAW", units)
    return index


_EMPTY = {"TARGETS": {"ob_id": np.int64, "fibre": np.int32},
          }


def _write_table(path: Path, rows: list[dict[str, Any]], name: str, units: dict[str, str],
                 nulls: dict[str, int] | None = None) -> None:
    if not rows:
        log.warning("%s: no rows", path.name)
        write_atomic(fits.HDUList([fits.PrimaryHDU()]), path)
        return
    cols: dict[str, np.ndarray] = {}
    for k in rows[0]:
        values = [row[k] for row in rows]
        if k in ("ob_id", "source_id", "file_size"):
            cols[k] = np.array(values, dtype=np.int64)
        elif k == "binning":
            cols[k] = np.array(values, dtype=np.int16)
        elif isinstance(values[0], bool | np.bool_):
            cols[k] = np.array(values, dtype=bool)
        elif isinstance(values[0], int | np.integer):
            cols[k] = np.array(values, dtype=np.int32)
        elif isinstance(values[0], float | np.floating):
            cols[k] = np.array(values, dtype=np.float64)
        else:
            cols[k] = np.array([str(v) for v in values])
    write_atomic(fits.HDUList([fits.PrimaryHDU(), table_hdu(cols, name, units,
                                                             nulls=nulls)]), path)

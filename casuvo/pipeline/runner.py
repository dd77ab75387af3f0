# SPDX-License-Identifier: BSD-3-Clause
"""The driver of an imaging pipeline run: index raws, build the Dask graph, run, record.

The graph per night: master calibrations per band → every science exposure
(all detectors) → pawprint stacks → each stack resampled onto its tile's grid →
tiles.  It runs on a Dask cluster: a
local one sized to the machine by default, or the scheduler given.  Progress
shows per finished task; every product, failure and the run itself go into
the processing ledger (``ledger.runs``, ``ledger.products``) with input
checksums, parameters, QC and timings.  Tasks that find their products
complete return them unchanged, so rerunning after a crash or a kill only
does what is missing, and a rerun of a finished night redoes nothing.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dask
import psycopg
from astropy.io import fits
from tqdm import tqdm

from casuvo.pipeline import tasks
from casuvo.pipeline.config import PipelineConfig
from casuvo.pipeline.rawindex import RawFile, RawIndex, build_index, read_raw
from casuvo.storage import ledger
from casuvo.storage.files import checksum, remove_stale_parts, write_json
from casuvo.surveys.instruments import Instrument, instrument

if TYPE_CHECKING:
    from dask.distributed import Client

__all__ = ["RunSummary", "run_pipeline"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    ok: int
    resumed: int
    failed: int
    products: tuple[str, ...]
    failures: tuple[str, ...]
    seconds: float


def _instrument_for(cfg: PipelineConfig, index: RawIndex) -> Instrument:
    """The instrument, shrunk to the miniature the raw data were taken with."""
    full = instrument(cfg.instrument)
    science = index.science()
    if not science:
        return full
    with fits.open(science[0].path) as hdul:
        ny, nx = hdul[1].data.shape
    return full if nx == full.nx else full.miniature(nx / full.nx)


@dataclass(frozen=True)
class _ObservationBlock:
    """What a tile is made of: one OB of one night."""

    night: str
    obs_id: int


@dataclass(frozen=True)
class _StackKey:
    """What a stacked pawprint is made of: one tile offset of an OB, and one exposure of it
    when the survey does not stack its jitters (``run``)."""

    night: str
    obs_id: int
    tile: int
    run: int | None = None

    @property
    def block(self) -> _ObservationBlock:
        return _ObservationBlock(self.night, self.obs_id)


def _groups(cfg: PipelineConfig, raws: Sequence[RawFile]
            ) -> tuple[dict[_StackKey, list[RawFile]],
                       dict[_ObservationBlock, list[_StackKey]]]:
    """Stack groups (OB, tile offset[, exposure]) and tile groups (OB), in time order."""
    stacks: dict[_StackKey, list[RawFile]] = defaultdict(list)
    for raw in sorted(raws, key=lambda r: r.mjd):
        key = _StackKey(raw.night, raw.obs_id, raw.tile,
                        None if cfg.stack_jitters else raw.run)
        stacks[key].append(raw)
    tiles: dict[_ObservationBlock, list[_StackKey]] = defaultdict(list)
    for key in stacks:
        tiles[key.block].append(key)
    return stacks, tiles


def _group_info(raws: Sequence[RawFile]) -> tasks.GroupInfo:
    first = raws[0]
    return tasks.GroupInfo(first.night, first.run, first.band, first.obj, first.obs_id,
                           first.prog_id, tuple(raws))


def _connect(dsn: str | None) -> psycopg.Connection | None:
    if not dsn:
        return None
    try:
        conn = psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        log.warning("no processing ledger (database unreachable: %s)", exc)
        return None
    ledger.ensure_products_schema(conn)
    return conn


def _record(conn: psycopg.Connection | None, run_id: str, cfg: PipelineConfig,
            result: tasks.ProductResult | tasks.Failed, checksums: dict[str, str]) -> None:
    if conn is None:
        return
    inputs = {f: checksums.get(f) for f in result.inputs}
    if isinstance(result, tasks.Failed):
        entry = ledger.ProductEntry(run_id, cfg.survey, result.what, "failed", [], inputs,
                                    cfg.as_params(), None, None, "failed", result.message)
    else:
        entry = ledger.ProductEntry(run_id, cfg.survey, result.name, result.kind,
                                    result.files, inputs, cfg.as_params(), result.qc,
                                    result.meta, "resumed" if result.resumed else "ok",
                                    None, result.seconds)
    ledger.record_product(conn, entry)


def run_pipeline(cfg: PipelineConfig, raw_dir: Path, gaia_dir: Path, out_dir: Path,
                 dsn: str | None = None, night: str | None = None,
                 scheduler: str | None = None, workers: int | None = None,
                 progress: bool = True, release_date: str | None = None) -> RunSummary:
    """Run the survey pipeline over ``raw_dir``; products go under ``out_dir``.

    ``release_date`` (ISO) overrides the survey's release rules for the products
    this run makes or finds made: it is recorded with the run (``ledger.runs``
    params, None without one), and publication follows the latest run of each
    product (:func:`casuvo.storage.ledger.product_release_overrides`): its date,
    or the rules again after a run without one.
    """
    from dask.distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        n_workers = workers or max(1, min(os.cpu_count() or 1, 4))
        # The dashboard (progress per task) on a free port: the log prints its link.
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        client = Client(cluster)
    try:
        return _run(client, t0, cfg, raw_dir, gaia_dir, out_dir, dsn, night, scheduler,
                    progress, release_date)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run(client: Client, t0: float, cfg: PipelineConfig, raw_dir: Path, gaia_dir: Path,
         out_dir: Path, dsn: str | None, night: str | None, scheduler: str | None,
         progress: bool, release_date: str | None = None) -> RunSummary:
    """:func:`run_pipeline` on a started cluster.

    The workers read the raw files' headers and checksum the science files (a
    run's start, done on the driver, took a tenth of a night's time and did not
    get faster with more workers)."""
    from dask.distributed import as_completed

    full = instrument(cfg.instrument)
    filters = {f.eso_name: f.name for f in full.filters.values()}
    paths = sorted(raw_dir.rglob("*.fits"))
    index = build_index(client.gather(client.map(read_raw, paths, filters=filters,
                                                 pure=False)))
    inst = _instrument_for(cfg, index)
    gaia_files = sorted(gaia_dir.glob("gaia_*.fits"))
    run_id = uuid.uuid4().hex[:12]
    conn = _connect(dsn)
    if conn is not None:
        ledger.record_run_start(conn, run_id, cfg.survey, scheduler or "local",
                                {**cfg.as_params(), "night": night,
                                 "detector_scale": inst.scale,
                                 "release_date": release_date})
    for part in remove_stale_parts(out_dir) if out_dir.is_dir() else ():
        log.warning("removed %s, left by a writer that was killed", part)
    science = index.science(night)
    checksums = dict(zip((str(r.path) for r in science),
                         client.gather(client.map(checksum, [r.path for r in science],
                                                  pure=False)), strict=True))
    failures: list[str] = []
    for problem in index.problems:
        failures.append(problem.message)
        _record(conn, run_id, cfg, tasks.Failed(problem.path.name, (str(problem.path),),
                                                problem.message), checksums)

    # ---- the graph
    calib_kind = "dark" if inst.name == "VIRCAM" else "bias"
    masters = {}
    for key in sorted({(r.night, r.band) for r in science}):
        n, band = key
        darks = index.calibrations(n, calib_kind)
        flats = [f for f in index.calibrations(n, "flat") if f.band == band]
        masters[key] = dask.delayed(tasks.make_masters, pure=False)(
            inst, n, band, darks, flats, out_dir / "calib" / n)
    exposures = {r.path: dask.delayed(tasks.reduce_exposure, pure=False)(
        cfg, inst, r, masters[(r.night, r.band)], gaia_files, out_dir / "work" / r.night)
        for r in science}
    stack_groups, tile_groups = _groups(cfg, science)
    stacks = {key: dask.delayed(tasks.make_stack, pure=False)(
        cfg, inst, _group_info(raws), [exposures[r.path] for r in raws], gaia_files,
        out_dir / key.night) for key, raws in stack_groups.items()}
    tiles = {}
    for block, keys in tile_groups.items():
        group = _group_info([r for k in keys for r in stack_groups[k]])
        members = [stacks[k] for k in keys]
        # the tile's resampling, one task per stack: it runs on every worker at once
        pieces = [dask.delayed(tasks.tile_pieces, pure=False)(
            inst, group, members, i, out_dir / block.night) for i in range(len(keys))]
        tiles[block] = dask.delayed(tasks.make_tile, pure=False)(
            cfg, inst, group, members, gaia_files, out_dir / block.night, pieces)
    everything = [*masters.values(), *exposures.values(), *stacks.values(), *tiles.values()]

    # ---- run
    ok = resumed = 0
    made: list[str] = []
    log.info("running %d tasks (%d exposures) on %s", len(everything), len(science),
             client.dashboard_link or scheduler or "a local cluster")
    try:
        futures = client.compute(everything)
        bar = tqdm(total=len(futures), unit="task", desc=f"pipeline {cfg.survey}",
                   disable=not progress)
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as exc:  # a bug in a task: record it, keep the run going
                log.exception("task %s raised", future.key)
                result = tasks.Failed(str(future.key), (), f"internal error in "
                                      f"{str(future.key).split('-')[0]}: {exc!r}")
            bar.update(1)
            _record(conn, run_id, cfg, result, checksums)
            if isinstance(result, tasks.Failed):
                failures.append(result.message)
                log.error("failed: %s", result.message)
            elif result.kind in ("stack", "tile"):
                made.append(result.name)
                if result.resumed:
                    resumed += 1
                else:
                    ok += 1
                    log.info("made %s (qc %s, %.1f s)", result.name,
                             result.qc.get("qcstatus"), result.seconds)
        bar.close()
    except BaseException:
        if conn is not None:
            conn.close()
        raise
    summary = RunSummary(run_id, ok, resumed, len(failures), tuple(sorted(made)),
                         tuple(failures), time.perf_counter() - t0)
    if conn is not None:
        ledger.record_run_end(conn, run_id,
                              "completed" if not failures else "completed with failures", ok,
                              len(failures), resumed)
        conn.close()
    write_json(out_dir / "runs" / f"{run_id}.json", asdict(summary), indent=1)
    return summary

# SPDX-License-Identifier: BSD-3-Clause
"""Run a job: the one dispatcher from a job description to the library function it names.

Compute side: ``python -m casuvo.jobs`` calls :func:`run_job` in the compute
environment.  Each runner imports its library lazily (numpy 2, Dask, hats are
only there), converts the job to the library's own parameter object, and
returns a JSON-able summary; the library's usage errors (bad parameters or
inputs, nothing written) become a ``usage-error`` result, anything else
propagates as a bug.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from casuvo.config import Settings
from casuvo.jobs.spec import (
    BandMergeJob,
    BulkCutoutJob,
    HatsExportJob,
    Job,
    JobError,
    JobResult,
    NeighbourTableJob,
    PipelinePlotsJob,
    PipelineRunJob,
    RapidJob,
    SimulateJob,
    SpectroSimulateJob,
    XmatchJob,
)

__all__ = ["run_job"]


def _survey(settings: Settings, key: str, *, sources: bool = False):  # -> Survey
    from casuvo.surveys.registry import RegistryError, load_registry

    try:
        registry = load_registry(settings)
    except RegistryError as exc:
        raise JobError(str(exc)) from exc
    keys = [s.key for s in (registry.with_sources() if sources else registry)]
    if key not in keys:
        raise JobError(f"survey: {key!r} is not one of {', '.join(sorted(keys))}")
    return registry[key]


def _simulate(job: SimulateJob, settings: Settings) -> dict[str, Any]:
    from casuvo.simulate.survey import write_survey

    manifest = write_survey(job.out, seed=job.seed, detector_scale=job.detector_scale,
                            gaia_dir=job.gaia_dir or job.out / "gaia",
                            density_factor=job.density_factor)
    return {"raw_dir": str(job.out / "raw"), "files": len(manifest.files)}


def _spectro_simulate(job: SpectroSimulateJob, settings: Settings) -> dict[str, Any]:
    from casuvo.simulate.spectro import write_spectro_survey
    from casuvo.surveys.registry import RegistryError, load_registry

    try:
        registry = load_registry(settings)
        entries = [registry[k] for k in job.surveys] if job.surveys else list(
            registry.of_kind("spectroscopy"))
        done = {e.key: write_spectro_survey(e, job.out, job.seed) for e in entries}
    except (RegistryError, ValueError) as exc:
        raise JobError(str(exc)) from exc
    return {key: {"files": len(m.raw_files), "obs": m.n_obs, "spectra": m.n_spectra,
                  "seconds": m.seconds} for key, m in done.items()}


def _pipeline_run(job: PipelineRunJob, settings: Settings) -> dict[str, Any]:
    from casuvo.pipeline.config import load_config
    from casuvo.pipeline.runner import run_pipeline
    from casuvo.surveys.registry import load_survey

    try:
        entry = load_survey(job.config)
    except (OSError, ValueError) as exc:
        raise JobError(str(exc)) from exc
    if entry.kind == "spectroscopy":
        from casuvo.pipeline.spectro import run_spectro_pipeline

        if job.release_date is not None:
            raise JobError(f"{job.config}: a release date per run is for imaging surveys; "
                           "a spectroscopic survey's come from its [[access.embargo]]")

        try:
            spectro = run_spectro_pipeline(entry, job.raw_dir.parent.parent, dsn=settings.dsn,
                                           night=job.night, scheduler=job.scheduler,
                                           workers=job.workers, progress=job.progress)
        except ValueError as exc:
            raise JobError(str(exc)) from exc
        return dataclasses.asdict(spectro)

    try:
        cfg = load_config(job.config)
    except (OSError, ValueError) as exc:
        raise JobError(str(exc)) from exc
    summary = run_pipeline(cfg, job.raw_dir, job.gaia_dir, job.products_dir, dsn=settings.dsn,
                           night=job.night, scheduler=job.scheduler, workers=job.workers,
                           progress=job.progress, release_date=job.release_date)
    return dataclasses.asdict(summary)


def _pipeline_plots(job: PipelinePlotsJob, settings: Settings) -> dict[str, Any]:
    from casuvo.pipeline.plots import make_plots

    return {"plots": {survey: [str(p) for p in make_plots(settings, survey)]
                      for survey in job.surveys}}


def _band_merge(job: BandMergeJob, settings: Settings) -> dict[str, Any]:
    from casuvo.catalogue.bandmerge import merge_survey
    from casuvo.catalogue.framesets import BandMergeError
    from casuvo.catalogue.mergedtable import write_merged

    survey = _survey(settings, job.survey, sources=True)
    try:
        table, frames = merge_survey(survey, job.products_dir)
        write_merged(table, frames, survey, job.out)
    except BandMergeError as exc:
        raise JobError(str(exc)) from exc
    return {"survey": survey.key, "sources": len(table), "tiles": len(frames),
            "out": str(job.out)}


def _neighbour_table(job: NeighbourTableJob, settings: Settings) -> dict[str, Any]:
    from casuvo.catalogue.neighbourtable import build_neighbours
    from casuvo.xmatch import XmatchError

    survey = _survey(settings, job.survey)
    try:
        state = build_neighbours(survey, job.sources, list(job.gaia), job.radius_arcsec,
                                 job.out_dir, workers=job.workers, scheduler=job.scheduler,
                                 progress=job.progress, engine=job.engine)
    except XmatchError as exc:
        raise JobError(str(exc)) from exc
    return {k: v for k, v in state.items() if k != "key"}


def _hats_export(job: HatsExportJob, settings: Settings) -> dict[str, Any]:
    from casuvo.catalogue.hatsexport import ExportArgs, ExportError, export_hats

    try:
        state = export_hats(ExportArgs(
            job.name, job.files, job.out_dir, ra=job.ra, dec=job.dec,
            pixel_threshold=job.pixel_threshold, highest_order=job.highest_order,
            margin_arcsec=job.margin_arcsec, workers=job.workers, framesets=job.framesets))
    except ExportError as exc:
        raise JobError(str(exc)) from exc
    return {k: v for k, v in state.items() if k != "key"}


def _xmatch(job: XmatchJob, settings: Settings) -> dict[str, Any]:
    from casuvo.xmatch import TableSpec, XmatchArgs, XmatchError, run_xmatch

    def spec(side) -> TableSpec:
        return TableSpec(side.path, side.ra, side.dec, side.id, side.pmra, side.pmdec,
                         side.ref_epoch, side.epoch)

    options = {} if job.rows_per_partition is None else {
        "rows_per_partition": job.rows_per_partition}
    try:
        summary = run_xmatch(XmatchArgs(
            spec(job.a), spec(job.b), job.radius_arcsec, job.out_dir, epoch=job.epoch,
            margin_arcsec=job.margin_arcsec, order=job.order, scheduler=job.scheduler,
            workers=job.workers, progress=job.progress, output_format=job.output_format,
            **options))
    except XmatchError as exc:
        raise JobError(str(exc)) from exc
    return dataclasses.asdict(summary)


def _bulk_cutouts(job: BulkCutoutJob, settings: Settings) -> dict[str, Any]:
    from casuvo.imaging.bulkcutouts import read_plan, run_bulk_cutouts

    try:
        items = read_plan(job.plan)
    except (OSError, ValueError, TypeError) as exc:
        raise JobError(f"{job.plan}: not a cutout plan ({exc})") from exc
    return run_bulk_cutouts(items, job.out_dir, job.progress, scheduler=job.scheduler,
                            workers=job.workers)


def _rapid(job: RapidJob, settings: Settings) -> dict[str, Any]:
    from casuvo.catalogue.voevents import AlertContext
    from casuvo.jobs.rapid import watch
    from casuvo.pipeline.config import load_config
    from casuvo.surveys.instruments import instrument
    from casuvo.surveys.registry import load_survey

    try:
        entry = load_survey(job.config)
        cfg = load_config(job.config)
    except (OSError, ValueError) as exc:
        raise JobError(str(exc)) from exc
    if entry.kind != "imaging":
        raise JobError(f"{entry.key}: rapid mode is for imaging surveys")
    inst = instrument(cfg.instrument)
    context = AlertContext(job.authority, entry.key, f"{inst.telescope}/{inst.name}")
    done = watch(cfg, job.raw_dir, job.products_dir, job.gaia_dir, job.out_dir, context,
                 night=job.night, extended=job.extended, once=job.once,
                 interval_s=job.interval_s, duration_s=job.duration_s, access=entry.access)
    ok = [d for d in done if "error" not in d]
    return {"exposures": len(ok), "alerts": sum(d["n_alerts"] for d in ok),
            "processed": [{k: d.get(k) for k in ("exposure", "n_alerts", "alert_counts",
                                                  "seconds", "latency_seconds",
                                                  "pipeline_seconds", "note")} for d in ok],
            "errors": [d["error"] for d in done if "error" in d]}


_RUNNERS: dict[type[Job], Callable[[Any, Settings], dict[str, Any]]] = {
    SimulateJob: _simulate,
    SpectroSimulateJob: _spectro_simulate,
    PipelineRunJob: _pipeline_run,
    PipelinePlotsJob: _pipeline_plots,
    BandMergeJob: _band_merge,
    NeighbourTableJob: _neighbour_table,
    HatsExportJob: _hats_export,
    XmatchJob: _xmatch,
    BulkCutoutJob: _bulk_cutouts,
    RapidJob: _rapid,
}


def run_job(job: Job, settings: Settings) -> JobResult:
    """Do the work ``job`` describes, here; a usage error is a result, not an exception."""
    t0 = time.perf_counter()
    try:
        summary = _RUNNERS[type(job)](job, settings)
    except JobError as exc:
        return JobResult(job.kind, "usage-error", {}, str(exc), time.perf_counter() - t0)
    return JobResult(job.kind, "ok", summary, None, time.perf_counter() - t0)

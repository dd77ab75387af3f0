# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo pipeline run|watch|status|plots``: the imaging pipelines, from the operator's side.

``watch`` is rapid mode (:mod:`casuvo.jobs.rapid`: alerts as VOEvents, then the
``<survey>.alerts`` table).  ``run``, ``watch`` and ``plots`` execute in the compute
environment (``var/venv-compute``,
design decision 12) as jobs (:class:`casuvo.jobs.PipelineRunJob`,
:class:`casuvo.jobs.PipelinePlotsJob`); ``status`` reads the processing ledger
from here.  The surveys are the imaging surveys of the registry
(``pipelines/<survey>/config.toml`` and ``CASUVO_SURVEY_DIRS``); ``run`` hands
the compute side the survey's config file.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from casuvo.config import Settings
from casuvo.surveys.registry import load_registry


def surveys(settings: Settings) -> tuple[str, ...]:
    """The surveys with an imaging pipeline: the registry's imaging surveys, in its order."""
    return load_registry(settings).keys("imaging")


def spectro_surveys(settings: Settings) -> tuple[str, ...]:
    """The surveys with a spectroscopic pipeline (``kind = "spectroscopy"``), in registry order."""
    return load_registry(settings).keys("spectroscopy")


@dataclass(frozen=True)
class RunOptions:
    """How to run a survey pipeline (``casuvo pipeline run``'s options)."""

    night: str | None = None
    scheduler: str | None = None
    workers: int | None = None
    progress: bool = True
    strict: bool = False
    """Exit status 3 if any product failed."""
    release_date: str | None = None
    """Release date (ISO) of the run's products, instead of the survey's rules."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run a survey pipeline (resumes; idempotent)")
    run.add_argument("survey", help="a survey of the registry (vista, vst, ges, weave, ...)")
    run.add_argument("--night", help="only this night (YYYYMMDD)")
    run.add_argument("--scheduler", help="Dask scheduler address (default: local cluster)")
    run.add_argument("--workers", type=int, help="workers of the local cluster")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--strict", action="store_true", help="exit 3 if any product failed")
    run.add_argument("--release-date", metavar="YYYY-MM-DD",
                     help="release date of this run's products instead of the survey's "
                          "[access] rules (e.g. an approved extension; a later run "
                          "without it gives them back to the rules)")
    status = sub.add_parser("status", help="runs, products, failures and QC summary")
    status.add_argument("--failures", type=int, default=10, help="show N recent failures")
    watch = sub.add_parser(
        "watch", help="rapid mode: alert on each new exposure as it lands (VOEvents)",
        description="Rapid mode: each new science exposure in the survey's raw area is "
                    "reduced with the existing masters, compared with the latest earlier "
                    "tile of its field and band, and its alerts (new, brightening, fading, "
                    "moving) written as VOEvent 2.0 packets under var/data/alerts/<survey>/ "
                    "and loaded into <survey>.alerts.")
    watch.add_argument("survey", help="an imaging survey of the registry (vista, vst)")
    watch.add_argument("--night", help="only this night (YYYYMMDD)")
    watch.add_argument("--once", action="store_true",
                       help="one scan of the raw area, then stop (default: keep watching)")
    watch.add_argument("--interval", type=float, default=10.0, metavar="SECONDS",
                       help="seconds between scans (default 10)")
    watch.add_argument("--for", dest="duration", type=float, metavar="SECONDS",
                       help="stop watching after this long (default: until interrupted)")
    plots = sub.add_parser("plots", help="QC plots (PNG) under var/data/qc")
    plots.add_argument("survey", nargs="?", help="one survey (default: all imaging surveys)")


def run_pipeline(settings: Settings, survey: str, options: RunOptions) -> int:
    """Run one survey's pipeline in the compute environment; print its summary."""
    from casuvo.jobs import PipelineRunJob, run_in_compute

    data = settings.data_dir
    job = PipelineRunJob(config=load_registry(settings)[survey].source,
                         raw_dir=data / "raw" / survey, gaia_dir=data / "gaia",
                         products_dir=data / "products" / survey, night=options.night,
                         scheduler=options.scheduler, workers=options.workers,
                         progress=options.progress, release_date=options.release_date)
    result = run_in_compute(settings, job)
    if result.status != "ok":
        print(f"casuvo pipeline: {result.message}")
        return result.exit_status
    summary = result.summary
    print(f"run {summary['run_id']}: {summary['ok']} products made, {summary['resumed']} "
          f"already done, {summary['failed']} failed, {summary['seconds']:.1f} s")
    for message in summary["failures"]:
        print(f"  FAILED {message}")
    return 3 if options.strict and summary["failed"] else 0


def alerts_dir(settings: Settings, survey: str):  # -> Path
    """Where rapid mode writes a survey's alerts (per night and exposure)."""
    return settings.data_dir / "alerts" / survey


def watch(settings: Settings, survey: str, *, night: str | None = None, once: bool = True,
          interval_s: float = 10.0, duration_s: float | None = None) -> int:
    """Rapid mode in the compute environment, then the alerts into ``<survey>.alerts``."""
    from casuvo.config import ivoa_authority
    from casuvo.jobs import RapidJob, run_in_compute

    data = settings.data_dir
    pn = data / "catalogues" / "pn_catalogue.fits"
    job = RapidJob(config=load_registry(settings)[survey].source, raw_dir=data / "raw" / survey,
                   products_dir=data / "products" / survey, gaia_dir=data / "gaia",
                   out_dir=alerts_dir(settings, survey), authority=ivoa_authority(settings),
                   extended=pn if pn.is_file() else None, night=night, once=once,
                   interval_s=interval_s, duration_s=duration_s)
    result = run_in_compute(settings, job)
    if result.status != "ok":
        print(f"casuvo pipeline watch: {result.message}")
        return result.exit_status
    summary = result.summary
    for item in summary["processed"]:
        if item.get("note"):
            print(f"  {item['exposure']}: {item['note']}")
            continue
        counts = ", ".join(f"{n} {k}" for k, n in item["alert_counts"].items() if n) or "none"
        pipeline = item.get("pipeline_seconds")
        print(f"  {item['exposure']}: {item['n_alerts']} alert(s) ({counts}) in "
              f"{item['seconds']:.1f} s; {item['latency_seconds']:.1f} s after arrival"
              + (f" (full pipeline: {pipeline:.0f} s)" if pipeline else ""))
    print(f"{survey}: {summary['exposures']} exposure(s) processed, {summary['alerts']} "
          "alert(s)")
    for error in summary["errors"]:
        print(f"casuvo pipeline watch: {error}")
    # the alerts of the exposures that worked are loaded all the same
    status = load_alerts(settings, survey)
    return status or (1 if summary["errors"] else 0)


def load_alerts(settings: Settings, survey: str) -> int:
    """Every alert rapid mode wrote for ``survey`` into ``<collection>.alerts`` (one COPY
    of all the nights' files, replacing the table; skipped when nothing changed)."""
    import psycopg

    from casuvo.dachs.instance import dachs
    from casuvo.storage.ingest import IngestError, ingest_catalogue
    from casuvo.storage.tables import row_count

    entry = load_registry(settings)[survey]
    files = sorted(alerts_dir(settings, survey).glob("*/*/alerts_table.fits"))
    if not files:
        return 0
    table = f"{entry.collection}.alerts"
    created = False
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        missing = row_count(conn, table) is None
    if missing:
        # `casuvo up` imports an RD's tables only the first time it sees the RD
        dachs(settings, "imp", f"{entry.collection}/q", "create_alerts")
        created = True
    try:
        result = ingest_catalogue(settings.dsn, table, files, progress=False, force=created)
    except IngestError as exc:
        print(f"casuvo pipeline watch: {exc}")
        return 1
    print(f"{table}: {result.rows} alert(s)" + (" (up to date)" if result.skipped else ""))
    return 0


def make_plots(settings: Settings, names: Sequence[str] = ()) -> int:
    """The QC plots of the named surveys (default: every imaging survey); print their paths."""
    from casuvo.jobs import PipelinePlotsJob, run_in_compute

    result = run_in_compute(settings, PipelinePlotsJob(tuple(names or surveys(settings))))
    if result.status != "ok":
        print(f"casuvo pipeline plots: {result.message}")
        return result.exit_status
    for paths in result.summary["plots"].values():
        for path in paths:
            print(path)
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action in ("run", "plots", "watch") and args.survey is not None:
        known = surveys(settings) + (spectro_surveys(settings) if args.action == "run" else ())
        if args.survey not in known:
            print(f"casuvo pipeline: unknown survey {args.survey!r}; choose from "
                  f"{', '.join(known)}")
            return 2
    if args.action == "run":
        if args.release_date is not None:
            if args.survey in spectro_surveys(settings):
                print(f"casuvo pipeline: --release-date is for imaging surveys; give "
                      f"{args.survey}'s nights or fields their release in its config "
                      "([[access.embargo]])")
                return 2
            try:
                date.fromisoformat(args.release_date)
            except ValueError:
                print(f"casuvo pipeline: --release-date {args.release_date!r} is not a date "
                      "(YYYY-MM-DD)")
                return 2
        return run_pipeline(settings, args.survey, RunOptions(
            night=args.night, scheduler=args.scheduler, workers=args.workers,
            progress=not args.no_progress, strict=args.strict,
            release_date=args.release_date))
    if args.action == "plots":
        return make_plots(settings, [args.survey] if args.survey else [])
    if args.action == "watch":
        for name, value in (("--interval", args.interval), ("--for", args.duration)):
            if value is not None and not (value > 0 and value < float("inf")):
                print(f"casuvo pipeline watch: {name} must be a positive number of seconds, "
                      f"not {value:g}")
                return 2
        if args.night is not None and not (len(args.night) == 8 and args.night.isdigit()):
            print(f"casuvo pipeline watch: --night {args.night!r} is not a night (YYYYMMDD)")
            return 2
        return watch(settings, args.survey, night=args.night, once=args.once,
                     interval_s=args.interval, duration_s=args.duration)
    from casuvo.pipeline.status import print_status

    return print_status(settings, args.failures)

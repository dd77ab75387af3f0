# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo demo``: the whole demo data centre — up, simulate, ingest, pipelines, archives.

The demo is one typed sequence of :class:`Step` s (:func:`demo_steps`), each the
same operation its own subcommand runs (``casuvo ingest``, ``casuvo xmatch``,
...), called with typed options; the per-survey steps come from the survey
registry.  Every step is idempotent (resumes, or is skipped when the ledger
says its output is up to date), so a rerun redoes only what changed.  The
demo ends with a table of its phases and their wall times, also written to
``var/logs/demo-phases.json``.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from casuvo.config import Settings


@dataclass(frozen=True)
class DemoOptions:
    """What every step is told (``casuvo demo``'s options)."""

    progress: bool = True


@dataclass(frozen=True)
class Step:
    """One phase of the demo: ``run(settings, options)`` returns an exit status."""

    name: str
    run: Callable[[Settings, DemoOptions], int]
    required: bool = True
    """A failed required step ends the demo; another is reported and passed over."""


@dataclass(frozen=True)
class Phase:
    """How one step went."""

    name: str
    seconds: float
    status: str
    """``ok``, ``exit status N`` or ``error: <message>``."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


# ------------------------------------------------------------------ the steps

def _up(settings: Settings, options: DemoOptions) -> int:
    from casuvo.dachs.stack import up

    up(settings)
    return 0


def _simulate(settings: Settings, options: DemoOptions) -> int:
    from casuvo.cli.simulate import SimulateOptions, simulate

    return simulate(settings, SimulateOptions())


def _ingest_gaia(settings: Settings, options: DemoOptions) -> int:
    from casuvo.cli.ingest import IngestOptions, ingest_collection

    return ingest_collection(settings, "gaia", (), IngestOptions(progress=options.progress))


def _pipeline(settings: Settings, options: DemoOptions, *, survey: str) -> int:
    from casuvo.cli.pipeline import RunOptions, run_pipeline

    return run_pipeline(settings, survey, RunOptions(progress=options.progress))


def _pipelines(settings: Settings, options: DemoOptions, *, surveys: Sequence[str]) -> int:
    """Every survey's pipeline at once, each a compute job with its own Dask cluster.

    One after another, each survey's last tiles kept one core busy and the other
    idle; side by side, one survey's tail overlaps the other's bulk (the
    operating system shares the cores between the clusters' workers).  The exit
    status is the first non-zero one.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, len(surveys))) as pool:
        statuses = list(pool.map(lambda s: _pipeline(settings, options, survey=s), surveys))
    return next((s for s in statuses if s), 0)


def _publish(settings: Settings, options: DemoOptions) -> int:
    from casuvo.cli.publish import publish

    return publish(settings)


def _sources(settings: Settings, options: DemoOptions, *, survey: str) -> int:
    from casuvo.cli.ingest import IngestOptions, ingest_sources

    return ingest_sources(settings, survey, options=IngestOptions(progress=options.progress))


def _xmatch(settings: Settings, options: DemoOptions, *, survey: str) -> int:
    from casuvo.cli.xmatch import XmatchOptions, build_neighbour_table

    return build_neighbour_table(settings, survey, XmatchOptions(progress=options.progress))


def _export(settings: Settings, options: DemoOptions, *, table: str) -> int:
    from casuvo.cli.export import HatsOptions, export_hats

    return export_hats(settings, table, HatsOptions())


def _plots(settings: Settings, options: DemoOptions) -> int:
    from casuvo.cli.pipeline import make_plots

    return make_plots(settings)


def _coverage(settings: Settings, options: DemoOptions) -> int:
    from casuvo.cli.coverage import CoverageOptions, make_coverage

    return make_coverage(settings, CoverageOptions())


def _endpoints(settings: Settings, options: DemoOptions) -> int:
    from casuvo.cli.endpoints import print_urls

    print()
    print_urls(settings)
    return 0


def demo_steps(settings: Settings) -> tuple[Step, ...]:
    """The demo, in order; one step per survey where the work is per survey."""
    from casuvo.cli import export, ingest, pipeline, xmatch

    def each(name: str, run: Callable[..., int], key: str, values: Sequence[str]
             ) -> list[Step]:
        return [Step(f"{name} {v}", functools.partial(run, **{key: v})) for v in values]

    return (
        Step("up", _up),
        Step("simulate", _simulate),
        Step("ingest gaia", _ingest_gaia),
        # imaging and spectroscopic pipelines side by side
        Step("pipelines " + " ".join(pipeline.surveys(settings)
                                     + pipeline.spectro_surveys(settings)),
             functools.partial(_pipelines, surveys=pipeline.surveys(settings)
                               + pipeline.spectro_surveys(settings))),
        Step("publish", _publish),
        # band-merge the tiles, load <survey>.sources
        *each("ingest sources", _sources, "survey", ingest.source_surveys(settings)),
        # <survey>.sources_x_gaia neighbour tables
        *each("xmatch", _xmatch, "survey", xmatch.surveys(settings)),
        # HATS catalogues for LSDB users
        *each("export hats", _export, "table", sorted(export.EXPORTABLE)),
        Step("pipeline plots", _plots, required=False),
        Step("coverage", _coverage),  # MOCs and HiPS for Aladin
        Step("endpoints", _endpoints),
    )


# ------------------------------------------------------------------ running them

def run_steps(settings: Settings, steps: Sequence[Step], options: DemoOptions) -> int:
    """Run ``steps`` in order, timing each; stop at a failed required one.

    The phase table is printed and written however the run ends (an exception
    is recorded as its step's status, then raised again).
    """
    phases: list[Phase] = []
    t_all = time.perf_counter()
    try:
        for step in steps:
            t0 = time.perf_counter()
            try:
                status = int(step.run(settings, options) or 0)
            except BaseException as exc:
                phases.append(Phase(step.name, time.perf_counter() - t0,
                                    f"error: {exc or type(exc).__name__}"))
                raise
            phases.append(Phase(step.name, time.perf_counter() - t0,
                                "ok" if status == 0 else f"exit status {status}"))
            if status and step.required:
                return status
        return 0
    finally:
        report_phases(settings, phases, time.perf_counter() - t_all)


def report_phases(settings: Settings, phases: Sequence[Phase], seconds: float) -> None:
    """Print the phase table and write it to ``var/logs/demo-phases.json``."""
    from casuvo.storage.files import write_json

    width = max([len(p.name) for p in phases] + [5])
    print(f"\n{'phase':<{width}}  {'seconds':>9}  status")
    for p in phases:
        print(f"{p.name:<{width}}  {p.seconds:>9.1f}  {p.status}")
    print(f"{'total':<{width}}  {seconds:>9.1f}")
    write_json(settings.log_dir / "demo-phases.json",
               {"finished": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(seconds, 1),
                "phases": [{**asdict(p), "seconds": round(p.seconds, 1)} for p in phases]},
               indent=1)


def run(args: argparse.Namespace, settings: Settings) -> int:
    return run_steps(settings, demo_steps(settings), DemoOptions(progress=not args.no_progress))

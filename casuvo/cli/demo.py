# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo demo``: the whole demo data centre — up, simulate, ingest, pipelines, archives.

The demo is one typed sequence of :class:`Step` s (:func:`demo_steps`), each the
same operation its own subcommand runs (``casuvo ingest``, ``casuvo xmatch``,
...), called with typed options; the per-survey steps come from the survey
registry.  Every step is idempotent (resumes, or is skipped when the ledger
says its output is up to date), so a rerun redoes only what changed.

A step waits for the steps listed before it, unless it names the ones it needs
(``after``): then it may run beside the others, two steps at a time (the
demo machine has two cores, and most steps keep one busy).  The database
start and the simulation overlap that way, and so do the HiPS and MOCs and the
publishing chain after the pipelines.  The demo ends with a table of its
phases, when each started and its wall time, also written to
``var/logs/demo-phases.json``.
"""

from __future__ import annotations

import argparse
import functools
import resource
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
    after: tuple[str, ...] | None = None
    """The steps this one needs finished first; None: every step listed before it.
    A step that needs fewer may run beside those it does not need, so it must not
    touch what they write."""


#: How many steps run side by side at most.
PARALLEL_STEPS = 2


@dataclass(frozen=True)
class Phase:
    """How one step went."""

    name: str
    seconds: float
    status: str
    """``ok``, ``exit status N`` or ``error: <message>``."""
    start: float = 0.0
    """Seconds from the start of the demo to the start of the step."""


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


def _alerts(settings: Settings, options: DemoOptions, *, survey: str) -> int:
    from casuvo.cli.pipeline import watch

    return watch(settings, survey, once=True)


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

    all_surveys = pipeline.surveys(settings) + pipeline.spectro_surveys(settings)
    pipelines = "pipelines " + " ".join(all_surveys)
    return (
        Step("up", _up, after=()),
        # files only, no database: beside the database and DaCHS start
        Step("simulate", _simulate, after=()),
        Step("ingest gaia", _ingest_gaia),
        # imaging and spectroscopic pipelines side by side
        Step(pipelines, functools.partial(_pipelines, surveys=all_surveys)),
        Step("publish", _publish),
        # band-merge the tiles, load <survey>.sources
        *each("ingest sources", _sources, "survey", ingest.source_surveys(settings)),
        # <survey>.sources_x_gaia neighbour tables
        *each("xmatch", _xmatch, "survey", xmatch.surveys(settings)),
        # HATS catalogues for LSDB users
        *each("export hats", _export, "table", sorted(export.EXPORTABLE)),
        # rapid mode over the raw area (<survey>.alerts, VOEvents): needs the products
        # and the published RDs only, so it runs beside the catalogue steps
        *[Step(s.name, s.run, after=("publish",))
          for s in each("alerts", _alerts, "survey", pipeline.surveys(settings))],
        Step("pipeline plots", _plots, required=False, after=(pipelines,)),
        # MOCs and HiPS for Aladin, from the products alone: beside publishing and the
        # catalogue steps
        Step("coverage", _coverage, after=(pipelines,)),
        Step("endpoints", _endpoints),
    )


# ------------------------------------------------------------------ running them

def _needs(steps: Sequence[Step]) -> dict[str, tuple[str, ...]]:
    """Each step's prerequisites by name (``after``, or every step listed before it)."""
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ValueError(f"demo steps with the same name: {names}")
    needs = {}
    for i, step in enumerate(steps):
        after = tuple(names[:i]) if step.after is None else step.after
        unknown = [n for n in after if n not in names[:i]]
        if unknown:
            raise ValueError(f"step {step.name!r} comes after {unknown}, which are not "
                             "listed before it")
        needs[step.name] = after
    return needs


def run_steps(settings: Settings, steps: Sequence[Step], options: DemoOptions,
              parallel: int = PARALLEL_STEPS) -> int:
    """Run ``steps``, each once its prerequisites are done, up to ``parallel`` at a time;
    stop starting steps at a failed required one.

    A step whose prerequisite failed without being required still runs.  The phase
    table (steps in their listed order) is printed and written however the run
    ends; an exception is recorded as its step's status, the steps already running
    are waited for, then it is raised again.
    """
    needs = _needs(steps)
    phases: dict[str, Phase] = {}
    t_all, cpu_all = time.perf_counter(), _cpu_seconds()
    status = 0
    error: BaseException | None = None

    def timed(step: Step) -> Phase:
        t0 = time.perf_counter()
        try:
            code = int(step.run(settings, options) or 0)
        except BaseException as exc:
            phase = Phase(step.name, time.perf_counter() - t0,
                          f"error: {exc or type(exc).__name__}", t0 - t_all)
            raise _StepError(phase) from exc
        return Phase(step.name, time.perf_counter() - t0,
                     "ok" if code == 0 else f"exit status {code}", t0 - t_all)

    pending = list(steps)
    running: dict[Future[Phase], Step] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="demo")
    try:
        while pending or running:
            if not status and error is None:
                for step in list(pending):
                    if len(running) >= max(1, parallel):
                        break
                    if all(n in phases for n in needs[step.name]):
                        pending.remove(step)
                        running[pool.submit(timed, step)] = step
            if not running:
                break
            try:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
            except BaseException as exc:  # interrupted: wait for what runs, then stop
                error = error or exc
                pending.clear()
                continue
            for future in sorted(done, key=lambda f: steps.index(running[f])):
                step = running.pop(future)
                try:
                    phase = future.result()
                except _StepError as exc:
                    phases[step.name] = exc.phase
                    error = error or exc.__cause__ or exc
                    continue
                phases[step.name] = phase
                if phase.status != "ok" and step.required and not status:
                    status = int(phase.status.rsplit(" ", 1)[-1])
        if error is not None:
            raise error
        return status
    finally:
        pool.shutdown(wait=True)
        report_phases(settings, [phases[s.name] for s in steps if s.name in phases],
                      time.perf_counter() - t_all, _cpu_seconds() - cpu_all)


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (user + system).

    On a shared machine the wall times depend on the others' load; the CPU time of
    the whole demo does not (the database and DaCHS servers, which are not its
    children, aside)."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                          resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class _StepError(Exception):
    """A step raised: its phase (for the table), the exception as ``__cause__``."""

    def __init__(self, phase: Phase) -> None:
        super().__init__(phase.status)
        self.phase = phase


def report_phases(settings: Settings, phases: Sequence[Phase], seconds: float,
                  cpu_seconds: float | None = None) -> None:
    """Print the phase table and write it to ``var/logs/demo-phases.json``."""
    from casuvo.storage.files import write_json

    width = max([len(p.name) for p in phases] + [5])
    print(f"\n{'phase':<{width}}  {'start':>7}  {'seconds':>9}  status")
    for p in phases:
        print(f"{p.name:<{width}}  {p.start:>7.1f}  {p.seconds:>9.1f}  {p.status}")
    print(f"{'total':<{width}}  {'':>7}  {seconds:>9.1f}"
          + (f"  ({cpu_seconds:.0f} CPU seconds)" if cpu_seconds is not None else ""))
    write_json(settings.log_dir / "demo-phases.json",
               {"finished": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(seconds, 1),
                "cpu_seconds": None if cpu_seconds is None else round(cpu_seconds, 1),
                "phases": [{**asdict(p), "seconds": round(p.seconds, 1),
                            "start": round(p.start, 1)} for p in phases]},
               indent=1)


def run(args: argparse.Namespace, settings: Settings) -> int:
    return run_steps(settings, demo_steps(settings), DemoOptions(progress=not args.no_progress))

# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo pipeline run|status|plots``: the imaging pipelines, from the operator's side.

``run`` and ``plots`` execute in the compute environment (``var/venv-compute``,
design decision 12); ``status`` reads the processing ledger from here.
"""

from __future__ import annotations

import argparse
import os
import subprocess

from casuvo.config import Settings

SURVEYS = ("vista", "vst")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run a survey pipeline (resumes; idempotent)")
    run.add_argument("survey", choices=SURVEYS)
    run.add_argument("--night", help="only this night (YYYYMMDD)")
    run.add_argument("--scheduler", help="Dask scheduler address (default: local cluster)")
    run.add_argument("--workers", type=int, help="workers of the local cluster")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--strict", action="store_true", help="exit 3 if any product failed")
    status = sub.add_parser("status", help="runs, products, failures and QC summary")
    status.add_argument("--failures", type=int, default=10, help="show N recent failures")
    plots = sub.add_parser("plots", help="QC plots (PNG) under var/data/qc")
    plots.add_argument("survey", nargs="?", choices=SURVEYS)


def compute(settings: Settings, module: str, *args: str) -> int:
    """Run ``python -m module args`` in the compute environment; its exit status."""
    python = settings.compute_python
    if not python.exists():
        print(f"casuvo pipeline: no compute environment at {python.parent.parent}; "
              "run `make demo` (or deploy/local/install.sh)")
        return 2
    env = dict(os.environ, CASUVO_HOME=str(settings.home), CASUVO_VAR=str(settings.var))
    return subprocess.run([str(python), "-m", module, *args], env=env, check=False
                          ).returncode


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "run":
        extra = [f"--{k}={v}" for k in ("night", "scheduler", "workers")
                 if (v := getattr(args, k)) is not None]
        extra += [f for f, on in (("--no-progress", args.no_progress),
                                  ("--strict", args.strict)) if on]
        config = settings.home / "pipelines" / args.survey / "config.toml"
        return compute(settings, "casuvo.pipeline", str(config), *extra)
    if args.action == "plots":
        return compute(settings, "casuvo.pipeline.plots", *([args.survey] if args.survey
                                                               else []))
    from casuvo.pipeline.status import print_status

    return print_status(settings, args.failures)

# SPDX-License-Identifier: BSD-3-Clause
"""``python -m casuvo.jobs [JOB.json]``: run one job in this (compute) environment.

Reads the job's JSON from the file named, or from standard input; logs and
progress go to standard error; standard output gets exactly one line, the
:class:`~casuvo.jobs.spec.JobResult` as JSON.  Exit status 0 (done), 2 (usage
error: bad job file or parameters, nothing written), 1 (failed; the
traceback is logged).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from casuvo.config import ConfigError, Settings
from casuvo.jobs.run import run_job
from casuvo.jobs.spec import Job, JobError, JobResult
from casuvo.logsetup import configure_logging

log = logging.getLogger("casuvo.jobs")

#: Libraries whose INFO lines drown casuvo's (Dask's lifecycle, reproject's per-input).
QUIET = ("distributed", "bokeh", "tornado", "reproject")


def _read(argv: Sequence[str]) -> str:
    if len(argv) > 1:
        raise JobError("usage: python -m casuvo.jobs [JOB.json]  (default: standard input)")
    if not argv or argv[0] == "-":
        return sys.stdin.read()
    try:
        return Path(argv[0]).read_text()
    except OSError as exc:
        raise JobError(f"{argv[0]}: {exc.strerror}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; print its result line; return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with contextlib.suppress(ImportError):
        import distributed  # noqa: F401 - configures its loggers on import; quieten them after
    configure_logging(quiet=QUIET)
    out = sys.stdout
    t0 = time.perf_counter()
    kind = "?"
    try:
        job = Job.from_json(_read(argv))
        kind = job.kind
        settings = Settings.from_env()
        # Libraries that print would corrupt the one-line result: their output goes
        # where the logs go.
        with contextlib.redirect_stdout(sys.stderr):
            result = run_job(job, settings)
    except (JobError, ConfigError) as exc:
        result = JobResult(kind, "usage-error", {}, str(exc), time.perf_counter() - t0)
    except Exception as exc:
        log.exception("%s job failed", kind)
        result = JobResult(kind, "failed", {}, f"{type(exc).__name__}: {exc}",
                           time.perf_counter() - t0)
    print(result.to_json(), file=out, flush=True)
    return result.exit_status


if __name__ == "__main__":
    sys.exit(main())

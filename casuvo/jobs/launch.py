# SPDX-License-Identifier: BSD-3-Clause
"""Start a job in the compute environment: the service side's one way to run compute work.

DaCHS pins numpy < 2 and astropy < 6, the catalogue-scale libraries need the
opposite (design decision 12), so the command line cannot import them; it
describes the work as a job and runs ``python -m casuvo.jobs`` with the compute
environment's Python, the job's JSON on standard input.  The child gets this
process's settings as ``CASUVO_*`` variables, so both sides agree on the
database, the data directory and the survey registry; its logs and progress
bars pass through to the terminal, and its one result line comes back as a
:class:`~casuvo.jobs.spec.JobResult`.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess

from casuvo.config import Settings
from casuvo.jobs.spec import Job, JobError, JobResult

__all__ = ["run_in_compute", "settings_environment"]


def settings_environment(settings: Settings) -> dict[str, str]:
    """The ``CASUVO_*`` variables that rebuild ``settings`` in another process."""
    env = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, tuple):
            value = os.pathsep.join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f"CASUVO_{f.name.upper()}"] = str(value)
    return env


def run_in_compute(settings: Settings, job: Job) -> JobResult:
    """Run ``job`` in the compute environment and return its result (never raises for it).

    A missing compute environment is a usage error (exit status 2, as before
    any work); a child that dies without a result line is a failure.
    """
    python = settings.compute_python
    if not python.exists():
        return JobResult(job.kind, "usage-error", {},
                         f"no compute environment at {python.parent.parent}; run `make demo` "
                         "(or deploy/local/install.sh)")
    env = {**os.environ, **settings_environment(settings)}
    proc = subprocess.run([str(python), "-m", "casuvo.jobs"], input=job.to_json(),
                          stdout=subprocess.PIPE, env=env, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    try:
        return JobResult.from_json(lines[-1])
    except (IndexError, JobError):
        return JobResult(job.kind, "failed", {},
                         f"the {job.kind} job exited with status {proc.returncode} "
                         "without a result")

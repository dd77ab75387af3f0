# SPDX-License-Identifier: BSD-3-Clause
"""Jobs: the one typed boundary between the service and the compute environments (layer: jobs).

The command line (service environment: DaCHS, psycopg, numpy < 2) never imports
the catalogue-scale libraries; it describes compute work as a job — a frozen
dataclass per kind of work (:mod:`~casuvo.jobs.spec`), JSON on the wire — and
starts it with :func:`~casuvo.jobs.launch.run_in_compute`, which runs
``python -m casuvo.jobs`` in the compute environment; there
:func:`~casuvo.jobs.run.run_job` calls the library function and a
:class:`~casuvo.jobs.spec.JobResult` comes back.  Whether a job needs to run at
all is decided on the service side, from the ledger
(:mod:`casuvo.storage.uptodate`).

This package sits above the compute layers (archive, pipeline, catalogue,
imaging, xmatch, simulate) and below :mod:`casuvo.dachs` and the command line;
:mod:`~casuvo.jobs.spec` and :mod:`~casuvo.jobs.launch` import only the standard
library and :mod:`casuvo.config`, so both environments can use them.
"""

from __future__ import annotations

from casuvo.jobs.launch import run_in_compute
from casuvo.jobs.spec import (
    JOB_KINDS,
    BandMergeJob,
    BulkCutoutJob,
    CatalogueColumns,
    HatsExportJob,
    Job,
    JobError,
    JobFailedError,
    JobResult,
    NeighbourTableJob,
    PipelinePlotsJob,
    PipelineRunJob,
    RapidJob,
    SimulateJob,
    SpectroSimulateJob,
    XmatchJob,
)

__all__ = [
    "JOB_KINDS",
    "BandMergeJob",
    "BulkCutoutJob",
    "CatalogueColumns",
    "HatsExportJob",
    "Job",
    "JobError",
    "JobFailedError",
    "JobResult",
    "NeighbourTableJob",
    "PipelinePlotsJob",
    "PipelineRunJob",
    "RapidJob",
    "SimulateJob",
    "SpectroSimulateJob",
    "XmatchJob",
    "run_in_compute",
]

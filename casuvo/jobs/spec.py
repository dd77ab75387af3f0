# SPDX-License-Identifier: BSD-3-Clause
"""The job descriptions: one frozen dataclass per kind of compute work, and its JSON form.

A job is what the service side asks the compute side to do, complete: every
path and parameter the library function needs, nothing read from the
environment on the way (the compute process has the same :class:`Settings`,
for the database address and the survey registry).  Its JSON form is a flat
object ``{"kind": ..., <field>: <value>, ...}`` with paths as strings and
tuples as lists; :func:`from_json` checks every field against its type and
refuses an unknown, missing or mistyped one by name (:class:`JobError`), so a
bad job file never reaches a library function.

This module imports only the standard library, so both environments use it.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

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
    "SimulateJob",
    "SpectroSimulateJob",
    "XmatchJob",
    "from_json",
    "to_json",
]


class JobError(ValueError):
    """A usage error: the job cannot run as described (bad job file or bad parameters).

    Nothing was written.  The message names the field or the file.
    """


class Job:
    """Base of the job dataclasses: ``kind`` names the work; JSON in and out."""

    kind: ClassVar[str]

    def to_json(self) -> str:
        """The job as one line of JSON (what ``python -m casuvo.jobs`` reads)."""
        return to_json(self)

    @classmethod
    def from_json(cls, text: str) -> Job:
        """The job a JSON text describes, which must be of this class (or any, on ``Job``)."""
        job = from_json(text)
        if not isinstance(job, cls):
            raise JobError(f"job: field kind must be {getattr(cls, 'kind', '?')!r}, "
                           f"not {job.kind!r}")
        return job


@dataclass(frozen=True)
class SimulateJob(Job):
    """The demo survey's raw imaging (VISTA, VST exposures, calibrations, truth) under ``out``."""

    kind: ClassVar[str] = "simulate"
    out: Path
    seed: int
    detector_scale: float | None = None
    """Instrument miniature factor (detectors of this fraction of the real pixels); None:
    the demo's."""
    density_factor: float = 1.0
    """Multiplies the number of sources on the sky (``CASUVO_SCALE``)."""
    gaia_dir: Path | None = None
    """Where the Gaia catalogue is (default ``out/gaia``)."""


@dataclass(frozen=True)
class SpectroSimulateJob(Job):
    """The spectroscopic demo surveys' OB plans, raw count spectra and truth under ``out``."""

    kind: ClassVar[str] = "spectro-simulate"
    out: Path
    seed: int
    surveys: tuple[str, ...] = ()
    """Registry keys (default: every spectroscopic survey)."""


@dataclass(frozen=True)
class PipelineRunJob(Job):
    """One survey's pipeline (imaging or spectroscopic) over its raw data (resumes; records
    in the ledger)."""

    kind: ClassVar[str] = "pipeline-run"
    config: Path
    """The survey's ``config.toml``."""
    raw_dir: Path
    gaia_dir: Path
    products_dir: Path
    night: str | None = None
    scheduler: str | None = None
    workers: int | None = None
    progress: bool = True
    release_date: str | None = None
    """Release date (ISO) of the run's products, instead of the survey's [access] rules."""


@dataclass(frozen=True)
class PipelinePlotsJob(Job):
    """The QC plots (PNG, under ``var/data/qc``) of the named surveys."""

    kind: ClassVar[str] = "pipeline-plots"
    surveys: tuple[str, ...]


@dataclass(frozen=True)
class BandMergeJob(Job):
    """A survey's tile catalogues under ``products_dir`` merged into one file ``out``."""

    kind: ClassVar[str] = "band-merge"
    survey: str
    products_dir: Path
    out: Path


@dataclass(frozen=True)
class NeighbourTableJob(Job):
    """A survey's Gaia neighbour table as files: ``out_dir/neighbours.fits`` and ``state.json``
    (engine ``memory``), or Parquet partitions and ``hats_state.json`` (engine ``hats``)."""

    kind: ClassVar[str] = "neighbour-table"
    survey: str
    sources: Path
    gaia: tuple[Path, ...]
    radius_arcsec: float
    out_dir: Path
    workers: int | None = None
    scheduler: str | None = None
    progress: bool = True
    engine: str = "memory"


@dataclass(frozen=True)
class HatsExportJob(Job):
    """A HATS collection ``out_dir/name`` (catalogue + margin) from FITS tables."""

    kind: ClassVar[str] = "hats-export"
    name: str
    files: tuple[Path, ...]
    out_dir: Path
    ra: str = "ra"
    dec: str = "dec"
    pixel_threshold: int = 100_000
    highest_order: int = 10
    margin_arcsec: float = 10.0
    workers: int = 1
    framesets: tuple[int, ...] | None = None
    """Keep only the rows of these frame sets (``frameSetID``): the frame sets the
    export's audience may see (release control); None keeps every row."""


@dataclass(frozen=True)
class CatalogueColumns:
    """One input catalogue of a cross-match and the columns used (FITS or Parquet)."""

    path: Path
    ra: str = "ra"
    dec: str = "dec"
    id: str | None = None
    """Integer id column (default: the row number)."""
    pmra: str | None = None
    pmdec: str | None = None
    ref_epoch: str | float | None = None
    """Column or Julian year of the proper motions' reference epoch."""
    epoch: str | None = None
    """Column of each row's epoch (MJD or Julian years), for the other side to move to."""


@dataclass(frozen=True)
class XmatchJob(Job):
    """A cross-match of two catalogues: all pairs within the radius, best match, VSA columns."""

    kind: ClassVar[str] = "xmatch"
    a: CatalogueColumns
    b: CatalogueColumns
    radius_arcsec: float
    out_dir: Path
    epoch: float | None = None
    margin_arcsec: float | None = None
    order: int | None = None
    rows_per_partition: int | None = None
    """None: the engine's default."""
    scheduler: str | None = None
    workers: int | None = None
    progress: bool = True
    output_format: str = "parquet"


@dataclass(frozen=True)
class BulkCutoutJob(Job):
    """The cutouts a plan lists (:mod:`casuvo.imaging.bulkcutouts`), into ``out_dir``.

    The plan (JSON lines, one cutout each) is written by the service side,
    which has already decided which images the job's owner may cut.
    """

    kind: ClassVar[str] = "bulk-cutouts"
    plan: Path
    out_dir: Path
    progress: Path
    """JSON file of cutouts done and total, rewritten as chunks finish."""
    scheduler: str | None = None
    """Dask scheduler address; None: a local in-process cluster."""
    workers: int = 2
    """Threads of the local cluster."""


@dataclass(frozen=True)
class RapidJob(Job):
    """Rapid mode (:mod:`casuvo.jobs.rapid`): the survey's new exposures alerted as they land.

    ``once``: one scan of the raw area; else scans every ``interval_s`` seconds
    until ``duration_s`` (None: until interrupted).
    """

    kind: ClassVar[str] = "rapid"
    config: Path
    """The survey's ``config.toml``."""
    raw_dir: Path
    products_dir: Path
    gaia_dir: Path
    out_dir: Path
    authority: str
    """IVOA authority of the alerts' IVORNs."""
    extended: Path | None = None
    """A planetary-nebula catalogue whose nebulae mask candidates."""
    night: str | None = None
    once: bool = True
    interval_s: float = 10.0
    duration_s: float | None = None


#: Every kind of job, by its ``kind``.
JOB_KINDS: dict[str, type[Job]] = {cls.kind: cls for cls in (
    SimulateJob, SpectroSimulateJob, PipelineRunJob, PipelinePlotsJob, BandMergeJob,
    NeighbourTableJob,
    HatsExportJob, XmatchJob, BulkCutoutJob, RapidJob)}

Status = Literal["ok", "usage-error", "failed"]
_EXIT = {"ok": 0, "failed": 1, "usage-error": 2}


@dataclass(frozen=True)
class JobResult:
    """What a job did: ``status`` and the library's summary, or the message of its error."""

    kind: str
    status: Status
    summary: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    seconds: float = 0.0

    @property
    def exit_status(self) -> int:
        """0 ok, 1 failed, 2 usage error (nothing written)."""
        return _EXIT[self.status]

    def raise_for_status(self) -> JobResult:
        """Self if the job succeeded; otherwise raise :class:`JobFailedError`."""
        if self.status != "ok":
            raise JobFailedError(self)
        return self

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> JobResult:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise JobError(f"job result: not JSON ({exc})") from exc
        if not isinstance(data, dict) or data.get("status") not in _EXIT:
            raise JobError(f"job result: no status in {text[:200]!r}")
        return cls(str(data.get("kind")), data["status"], dict(data.get("summary") or {}),
                   data.get("message"), float(data.get("seconds") or 0.0))


class JobFailedError(RuntimeError):
    """A job ended with a usage error or failed; ``result`` says which and why."""

    def __init__(self, result: JobResult) -> None:
        super().__init__(result.message or f"{result.kind} job {result.status}")
        self.result = result


# ------------------------------------------------------------------ JSON form

def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def to_json(job: Job) -> str:
    """``{"kind": ..., fields...}`` on one line."""
    return json.dumps({"kind": job.kind, **_encode(job)})


def _describe(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _decode(tp: Any, value: Any, where: str) -> Any:
    """``value`` (from JSON) as type ``tp``, or a :class:`JobError` naming ``where``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(tp):
            try:
                return _decode(member, value, where)
            except JobError:
                continue
        raise JobError(f"{where}: expected {_describe(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
    elif origin is tuple:
        (item, _) = typing.get_args(tp)
        if isinstance(value, list):
            return tuple(_decode(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return _decode_fields(tp, value, where)
    elif tp is Path:
        if isinstance(value, str) and value:
            return Path(value)
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a field type this codec was not taught
        raise TypeError(f"{where}: no JSON form for {tp!r}")
    raise JobError(f"{where}: expected {_describe(tp)}, got {value!r}")


def _decode_fields(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise JobError(f"{where}: unknown field(s) {', '.join(unknown)}")
    values = {}
    for name, f in known.items():
        if name in data:
            values[name] = _decode(hints[name], data[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise JobError(f"{where}: missing field {name}")
    return cls(**values)


def from_json(text: str) -> Job:
    """The job a JSON text describes; :class:`JobError` names what is wrong with it."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise JobError(f"job: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise JobError("job: expected a JSON object")
    kind = data.pop("kind", None)
    if kind not in JOB_KINDS:
        raise JobError(f"job: field kind must be one of {', '.join(JOB_KINDS)}, not {kind!r}")
    return _decode_fields(JOB_KINDS[kind], data, f"{kind} job")

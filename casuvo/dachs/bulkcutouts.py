# SPDX-License-Identifier: BSD-3-Clause
"""Bulk cutouts as one UWS job: DaCHS's user UWS on ``resdir/cutouts/q.rd``'s ``bulk`` service.

A client POSTs a table of positions (VOTable or CSV: ``ra``, ``dec`` in
degrees, optional ``size`` — the full width, degrees unless the VOTable
column has a unit — and optional ``obs_publisher_did`` to name the image)
with optional COLLECTION and BAND filters to ``cutouts/q/bulk/async``,
then PHASE=RUN.  DaCHS keeps the job (its row in ``uws.userjobs``, its
directory under ``[general]uwsWD``, both under ``var/``) and runs it in a
``uwsrun`` child process of the server, which calls :func:`run`:

1. the upload is parsed and checked (:func:`read_positions`); every usage
   error names the row or parameter and puts the job in ERROR before
   anything is cut;
2. acting for the job's *owner* (the user DaCHS recorded from checked
   credentials; anonymous without), each imaging collection's
   ``<collection>.images`` gives the images each position falls on — the
   table's row-level security (``docs/access.md``) leaves out what the owner
   may not see, so a job never cuts a proprietary image for someone else;
3. the plan (one line per cutout) goes to the compute environment as a
   :class:`~casuvo.jobs.BulkCutoutJob`, which cuts on Dask
   (:mod:`casuvo.imaging.bulkcutouts`) into the job's directory and rewrites
   the ``progress`` result (JSON: done, total) as it goes;
4. every cutout becomes a UWS result (``image/fits``), with ``index``
   (``text/csv``: one line per cutout, or why there is none) and
   ``cutouts.tar`` (all of them and the index).

:func:`install` is the one DaCHS adjustment this needs: the user-UWS runner
always starts as ``python -m casuvo.dachs.server uwsrun`` (with casuvo's
adjustments, at lower CPU priority), whatever ``gavo`` is first on ``PATH``.
DaCHS 2.7 keeps a file parameter of such a job as text in the job's
parameters (``uws.userjobs``); the upload is bounded by ``[web]maxUploadSize``
and :data:`~casuvo.dachs.limits.BULK_CUTOUTS`.
"""

from __future__ import annotations

import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from casuvo.config import Settings
from casuvo.dachs.limits import BULK_CUTOUTS
from casuvo.imaging.bulkcutouts import (
    ARCHIVE_NAME,
    INDEX_NAME,
    CutoutItem,
    read_plan,
    write_plan,
)
from casuvo.jobs import BulkCutoutJob, run_in_compute
from casuvo.jobs.cluster import cluster_state
from casuvo.surveys.registry import load_registry

__all__ = ["PROGRESS_NAME", "Positions", "install", "plan_cutouts", "read_positions", "run"]

#: the result that says how far an executing job is (JSON: done, total, seconds)
PROGRESS_NAME = "progress"
#: the plan in the job's directory (not a result)
PLAN_NAME = "plan.jsonl"

#: full width of a cutout when the table has no size column (the client's default)
DEFAULT_SIZE_DEG = 30 / 3600


class BulkCutoutError(ValueError):
    """A usage error of a bulk cutout job: the message names the parameter or the row."""


@dataclass(frozen=True)
class Positions:
    """The uploaded table as plain arrays (degrees), one entry per row."""

    ra: np.ndarray
    dec: np.ndarray
    size: np.ndarray
    did: list[str] | None
    """obs_publisher_did per row, when the table names the images."""

    def __len__(self) -> int:
        return len(self.ra)


def _column(table: Any, *names: str) -> Any:
    by_lower = {c.lower(): c for c in table.colnames}
    for name in names:
        if name in by_lower:
            return table[by_lower[name]]
    return None


def _degrees(column: Any, name: str) -> np.ndarray:
    from astropy import units as u

    unit = getattr(column, "unit", None)
    try:
        values = np.ma.filled(np.ma.asarray(column, dtype=float), np.nan)
    except (TypeError, ValueError) as exc:
        raise BulkCutoutError(f"positions: column {name} is not numeric") from exc
    if unit is not None and str(unit) not in ("", "deg"):
        try:
            values = (values * u.Unit(unit)).to_value(u.deg)
        except (ValueError, u.UnitsError) as exc:
            raise BulkCutoutError(
                f"positions: column {name} has unit {unit}, not an angle") from exc
    return np.asarray(values, dtype=float)


def _parse_table(data: bytes) -> Any:
    """A VOTable or a CSV table of ``data``; a usage error when it is neither."""
    from astropy.table import Table

    head = data.lstrip()[:200].lower()
    fmt = "votable" if head.startswith(b"<") else "ascii.csv"
    try:
        return Table.read(io.BytesIO(data) if fmt == "votable" else data.decode("utf-8"),
                          format=fmt)
    except Exception as exc:  # any parse failure is the upload's fault
        kind = "VOTable" if fmt == "votable" else "CSV"
        raise BulkCutoutError(f"positions: not a readable {kind} table "
                              f"({type(exc).__name__}: {str(exc)[:200]})") from exc


def read_positions(data: bytes) -> Positions:
    """The positions of an uploaded VOTable or CSV, checked row by row.

    Refused (naming the first bad row, 0-based): no ``ra``/``dec`` column,
    more rows than ``BULK_CUTOUTS.max_rows``, a position that is not finite or
    off the sky, a size not in (0, ``BULK_CUTOUTS.max_size_deg``].
    """
    limits = BULK_CUTOUTS
    if not data.strip():
        raise BulkCutoutError("positions: the uploaded table is empty")
    table = _parse_table(data)
    ra_col, dec_col = _column(table, "ra", "ra_icrs"), _column(table, "dec", "de_icrs")
    if ra_col is None or dec_col is None:
        raise BulkCutoutError(f"positions: the table needs columns ra and dec (degrees); it "
                              f"has {', '.join(table.colnames) or 'none'}")
    if not len(table):
        raise BulkCutoutError("positions: the table has no rows")
    if len(table) > limits.max_rows:
        raise BulkCutoutError(f"positions: {len(table)} rows, more than the {limits.max_rows}"
                              " a job takes; split the table into several jobs")
    ra, dec = _degrees(ra_col, "ra"), _degrees(dec_col, "dec")
    size_col = _column(table, "size")
    size = (np.full(len(table), DEFAULT_SIZE_DEG) if size_col is None
            else _degrees(size_col, "size"))
    for i in range(len(table)):
        if not (math.isfinite(ra[i]) and 0 <= ra[i] < 360):
            raise BulkCutoutError(f"positions: row {i}: ra must be in [0, 360) degrees, "
                                  f"not {ra[i]!r}")
        if not (math.isfinite(dec[i]) and -90 <= dec[i] <= 90):
            raise BulkCutoutError(f"positions: row {i}: dec must be in [-90, 90] degrees, "
                                  f"not {dec[i]!r}")
        if not (math.isfinite(size[i]) and 0 < size[i] <= limits.max_size_deg):
            raise BulkCutoutError(
                f"positions: row {i}: size must be in (0, {limits.max_size_deg:g}] degrees "
                f"(the cutout's full width), not {size[i]!r}")
    did_col = _column(table, "obs_publisher_did", "id")
    dids = None
    if did_col is not None:
        dids = [str(v).strip() if not np.ma.is_masked(v) else "" for v in did_col]
    return Positions(ra, dec, size, dids)


def _collections(settings: Settings, wanted: list[str]) -> list[str]:
    imaging = [s.collection for s in load_registry(settings).of_kind("imaging")]
    for name in wanted:
        if name not in imaging:
            raise BulkCutoutError(f"collection: {name!r} is not an image collection of this "
                                  f"archive ({', '.join(imaging)})")
    return wanted or imaging


_IMAGES_SQL = """
SELECT pos.n, i.obs_publisher_did, i.filename, i.extnum, i.filtername, p.accessPath
FROM unnest(%(n)s::int[], %(ra)s::float8[], %(dec)s::float8[]) AS pos(n, ra, dec)
JOIN {table} AS i
  ON spoint(radians(pos.ra), radians(pos.dec)) @ i.coverage
JOIN dc.products AS p ON p.accref = i.accref
WHERE (%(bands)s::text[] IS NULL OR i.filtername = ANY(%(bands)s::text[]))
ORDER BY pos.n, i.obs_publisher_did
"""

_BY_DID_SQL = """
SELECT i.obs_publisher_did, i.filename, i.extnum, i.filtername, p.accessPath
FROM {table} AS i JOIN dc.products AS p ON p.accref = i.accref
WHERE i.obs_publisher_did = ANY(%(dids)s::text[])
  AND (%(bands)s::text[] IS NULL OR i.filtername = ANY(%(bands)s::text[]))
"""


def _file_name(item: int, filename: str, ext: int) -> str:
    stem = filename.rsplit("/", 1)[-1]
    stem = stem[:-len(".fit")] if stem.endswith(".fit") else stem.rsplit(".", 1)[0]
    return f"cutout_{item:05d}_{stem}_{ext}.fits"


def plan_cutouts(conn: Any, settings: Settings, inputs: Path, positions: Positions,
                 collections: list[str], bands: list[str] | None
                 ) -> tuple[list[CutoutItem], list[str]]:
    """The cutouts of ``positions`` on the images ``conn`` may see; also the rows that got none.

    Without image names, every image of the collections (and bands) whose
    footprint contains a position is cut there; with ``obs_publisher_did``,
    that image alone (a name that is unknown, or not visible to the job's
    owner, leaves its row without a cutout).  ``conn`` acts for the owner.
    """
    found: dict[int, list[tuple[str, str, str, int, str]]] = {}
    n = list(range(len(positions)))
    for collection in collections:
        table = f"{collection}.images"
        if positions.did is None:
            rows = conn.query(_IMAGES_SQL.format(table=table),
                              {"n": n, "ra": [float(v) for v in positions.ra],
                               "dec": [float(v) for v in positions.dec], "bands": bands})
            for row, did, filename, ext, _band, path in rows:
                found.setdefault(row, []).append((collection, did, filename, ext, path))
        else:
            rows = conn.query(_BY_DID_SQL.format(table=table),
                              {"dids": sorted(set(positions.did)), "bands": bands})
            images = {r[0]: r for r in rows}
            for row, did in enumerate(positions.did):
                if did in images:
                    _, filename, ext, _band, path = images[did]
                    found.setdefault(row, []).append((collection, did, filename, ext, path))
    items: list[CutoutItem] = []
    for row in n:
        for collection, did, filename, ext, path in found.get(row, []):
            k = len(items)
            items.append(CutoutItem(
                k, row, float(positions.ra[row]), float(positions.dec[row]),
                float(positions.size[row]), collection, did, str(inputs / path), int(ext),
                _file_name(k, filename, int(ext))))
            if len(items) > BULK_CUTOUTS.max_cutouts:
                raise BulkCutoutError(
                    f"positions: the table asks for more than the {BULK_CUTOUTS.max_cutouts} "
                    "cutouts a job may make (its positions fall on that many images); split "
                    "it, or narrow it with COLLECTION or BAND")
    area = sum(item.size ** 2 for item in items)
    if area > BULK_CUTOUTS.max_area_deg2:
        raise BulkCutoutError(
            f"positions: the cutouts cover {area:.3g} deg² in all, more than the "
            f"{BULK_CUTOUTS.max_area_deg2:g} deg² a job may cut; split the table or make the "
            "sizes smaller")
    missing = [str(r) for r in n if r not in found]
    return items, missing


def _scheduler(settings: Settings) -> str | None:
    """The configured Dask scheduler, else the ``casuvo cluster up`` one, else None (local)."""
    if settings.dask_scheduler:
        return settings.dask_scheduler
    state = cluster_state(settings.var)
    return state.address if state is not None else None


def _upload(job: Any, value: Any) -> bytes:
    """The bytes of the ``positions`` upload.

    DaCHS 2.7 keeps a file parameter of a user UWS job as its text in the
    job's parameters; a DALI-style upload (``(name, "file://...")``) is a file
    in the job's directory.
    """
    if isinstance(value, tuple | list) and len(value) == 2:
        name = str(value[1]).split("/")[-1]
        try:
            with job.openFile(name) as f:
                return f.read()
        except OSError as exc:
            raise BulkCutoutError("positions: the uploaded table is missing") from exc
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    raise BulkCutoutError("positions: upload a table of positions (VOTable or CSV)")


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out = []
    for item in items:
        out += [v.strip() for v in str(item).split(",") if v.strip()]
    return out


def _register_results(job: Any, names: list[tuple[str, str]]) -> None:
    """Add results (name, media type) to the job in one write of DaCHS's results list."""
    results = [r for r in job.getResults() if r["resultName"] not in {n for n, _ in names}]
    results += [{"resultName": name, "resultType": mime} for name, mime in names]
    job._saveResults(results)  # DaCHS's addResult rewrites the list once per result


def run(service: Any, input_table: Any) -> None:
    """The bulk service's core in ``uwsrun``: check, plan, cut on Dask, publish the results.

    Raises DaCHS's ``ValidationError`` for usage errors (the job goes to
    ERROR with the message) and ``ReportableError`` when the compute side
    fails.
    """
    from gavo import base

    from casuvo.dachs import access

    job = getattr(input_table, "job", None)
    if job is None:
        raise base.ValidationError("bulk cutouts run as UWS jobs only (POST to the async renderer)",
                                   "positions")
    settings = Settings.from_env()
    wd = Path(job.getWD())
    try:
        positions = read_positions(_upload(job, input_table.getParam("positions")))
        collections = _collections(settings, _list(input_table.getParam("collection")))
        bands = _list(input_table.getParam("band")) or None
        with access.acting_for(access.owner_setting(job.owner), job.owner), \
                base.getTableConn() as conn:
            items, _ = plan_cutouts(conn, settings, Path(base.getConfig("inputsDir")),
                                    positions, collections, bands)
    except BulkCutoutError as exc:
        # DaCHS's message is "Field NAME: ..." already
        name, _, message = str(exc).partition(": ")
        raise base.ValidationError(message, name.upper()) from exc
    write_plan(wd / PLAN_NAME, items)
    (wd / PROGRESS_NAME).write_text(f'{{"done": 0, "total": {len(items)}}}\n')
    _register_results(job, [(PROGRESS_NAME, "application/json")])
    try:
        result = run_in_compute(settings, BulkCutoutJob(
            wd / PLAN_NAME, wd, wd / PROGRESS_NAME, scheduler=_scheduler(settings)))
    except KeyboardInterrupt:
        # PHASE=ABORT: DaCHS interrupts this runner (the compute child is killed
        # by subprocess.run on the way out); the phase is the runner's to set
        from gavo.protocols import uws

        with job.getWritable() as wjob:
            wjob.change(phase=uws.ABORTED)
        raise SystemExit(0) from None
    if result.status != "ok":
        raise base.ReportableError(f"the cutouts failed: {result.message}")
    made = set(result.summary.get("files", []))
    names = [(item.name, "image/fits") for item in read_plan(wd / PLAN_NAME)
             if item.name in made]
    _register_results(job, [*names, (INDEX_NAME, "text/csv"),
                            (ARCHIVE_NAME, "application/x-tar")])


def install() -> None:
    """Start user-UWS runners (``uwsrun``) through ``python -m casuvo.dachs.server``.

    DaCHS spawns ``gavo`` found on the server's ``PATH`` (the venv's, which is
    casuvo's wrapper, only while the venv's ``bin/`` comes first); this names
    the server's own interpreter, as TAP's runner does
    (:func:`casuvo.dachs.overflow.async_runner_with_adjustments`), so a job
    always runs with casuvo's adjustments, release control above all.
    """
    from gavo.protocols import useruws

    def get_command_line(self: Any, wjob: Any) -> tuple[str, list[str]]:
        return sys.executable, [sys.executable, "-m", "casuvo.dachs.server", "--ui", "stingy",
                                "uwsrun", "--", str(wjob.jobId)]

    useruws.UserUWSTransitions.getCommandLine = get_command_line
    _dequeue_when_a_runner_ends()


def _dequeue_when_a_runner_ends() -> None:
    """Start the next QUEUED user UWS job as soon as a runner process ends.

    The runner sets its job's final phase itself, in its own process, so the
    server's transitions never mark the queue for a check: a job queued
    behind two running ones waited for DaCHS's 60-s queue check.
    """
    from gavo import base
    from gavo.protocols import useruws, uws

    original = uws._UWSBackendProtocol.processEnded
    if getattr(original, "casuvo", False):
        return

    def process_ended(self: Any, status: Any) -> None:
        original(self, status)
        system = self.workerSystem
        if isinstance(system, useruws.UserUWS):
            try:
                system.scheduleProcessQueueCheck()
                system.checkProcessQueue()
            except Exception:  # the periodic check will try again
                base.ui.notifyError("user UWS queue check after a runner ended failed")

    process_ended.casuvo = True  # type: ignore[attr-defined]
    uws._UWSBackendProtocol.processEnded = process_ended

# SPDX-License-Identifier: BSD-3-Clause
"""Many cutouts of many images as one Dask graph: the compute side of a bulk cutout job.

The service side (:mod:`casuvo.dachs.bulkcutouts`) decides *what* is cut —
which images each uploaded position falls on, among those the job's owner may
see — and writes that as a plan: one :class:`CutoutItem` per cutout, with the
product file, the extension, the circle and the output name.  This module
only cuts: the items are grouped by image (an image's layout and WCS are read
once per task), the groups go to Dask workers in chunks, and each worker
writes its FITS files straight into the job's directory, with the bytes the
synchronous SODA service sends (:mod:`casuvo.imaging.cutout`: the same
geometry, header cards and checksums).  Progress (cutouts done of all) goes to
a small JSON file after every finished chunk, which the service publishes as
the job's ``progress`` result while it executes.  At the end, ``index.csv``
(one line per item: its row, position, image and file, or why there is none)
and ``cutouts.tar`` (every file and the index) are written.

It imports numpy, astropy and Dask only (it runs on Dask workers).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from casuvo.imaging.cutout import circle_limits, cut, fits_bytes, image_file, sky_wcs

__all__ = ["ARCHIVE_NAME", "INDEX_COLUMNS", "INDEX_NAME", "CutoutItem", "ItemOutcome",
           "cut_items", "read_plan", "run_bulk_cutouts", "write_plan"]

#: the job's one-file download: every cutout and the index, uncompressed (float
#: pixels of sky noise shrink by a few per cent at most)
ARCHIVE_NAME = "cutouts.tar"
#: one line per planned cutout: what it is and where it went
INDEX_NAME = "index.csv"
INDEX_COLUMNS = ("item", "row", "ra", "dec", "size", "collection", "obs_publisher_did",
                 "file", "naxis1", "naxis2", "error")
#: cutouts per Dask task: enough to amortise a task's overhead, few enough for
#: progress to move and the work to spread
CHUNK = 16


@dataclass(frozen=True)
class CutoutItem:
    """One planned cutout: ``CIRCLE ra dec size/2`` of one image, as SODA would cut it."""

    item: int
    """Position of the cutout in the plan (and in the index)."""
    row: int
    """Row of the uploaded table (0-based) the cutout is for."""
    ra: float
    dec: float
    size: float
    """Full width in degrees (SODA gets a circle of half of it)."""
    collection: str
    did: str
    """The image's obs_publisher_did."""
    path: str
    """The product file (absolute)."""
    ext: int
    """The image's extension in ``path``."""
    name: str
    """File name of the cutout in the job's directory."""


@dataclass(frozen=True)
class ItemOutcome:
    """What became of one item: its file's shape, or why there is none."""

    item: int
    naxis1: int = 0
    naxis2: int = 0
    error: str = ""


def write_plan(path: Path, items: Sequence[CutoutItem]) -> None:
    """The plan as JSON lines (what the compute job reads)."""
    with open(path, "w") as f:
        for item in items:
            f.write(json.dumps(asdict(item)) + "\n")


def read_plan(path: Path) -> list[CutoutItem]:
    """The items :func:`write_plan` wrote."""
    with open(path) as f:
        return [CutoutItem(**json.loads(line)) for line in f if line.strip()]


def cut_items(items: Sequence[CutoutItem], out_dir: str) -> list[ItemOutcome]:
    """Cut ``items`` (all of one image, or a few) into ``out_dir``: the Dask task.

    A cutout that misses its image (SODA's "no overlap") or an unreadable
    file is an outcome with an error, not an exception: one bad image never
    loses the others' cutouts.
    """
    out = []
    layouts: dict[tuple[str, int], Any] = {}
    for item in items:
        key = (item.path, item.ext)
        try:
            if key not in layouts:
                image = image_file(item.path, item.ext)
                layouts[key] = (image, sky_wcs(image.header))
            image, wcs = layouts[key]
            box = circle_limits(image, wcs, item.ra, item.dec, item.size / 2)
            if box is None:
                out.append(ItemOutcome(item.item, error="the circle does not overlap the image"))
                continue
            piece = cut(image, *box)
            target = os.path.join(out_dir, item.name)
            with open(target + ".part", "wb") as f:
                f.write(fits_bytes(piece))
            os.replace(target + ".part", target)
            out.append(ItemOutcome(item.item, piece.shape[1], piece.shape[0]))
        except (OSError, ValueError) as exc:
            out.append(ItemOutcome(item.item, error=f"{type(exc).__name__}: {exc}"))
    return out


def _chunks(items: Sequence[CutoutItem], size: int) -> list[list[CutoutItem]]:
    """Items grouped by image (file, extension), cut into chunks of at most ``size``."""
    by_image: dict[tuple[str, int], list[CutoutItem]] = {}
    for item in items:
        by_image.setdefault((item.path, item.ext), []).append(item)
    chunks: list[list[CutoutItem]] = []
    current: list[CutoutItem] = []
    for group in by_image.values():
        for item in group:
            current.append(item)
            if len(current) >= size:
                chunks.append(current)
                current = []
    if current:
        chunks.append(current)
    return chunks


def _write_progress(path: Path, done: int, total: int, started: float) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps({"done": done, "total": total,
                               "seconds": round(time.monotonic() - started, 3)}) + "\n")
    os.replace(tmp, path)


def _write_index(out_dir: Path, items: Sequence[CutoutItem],
                 outcomes: dict[int, ItemOutcome]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    for item in items:
        got = outcomes.get(item.item, ItemOutcome(item.item, error="not cut"))
        writer.writerow([item.item, item.row, repr(item.ra), repr(item.dec), repr(item.size),
                         item.collection, item.did, "" if got.error else item.name,
                         got.naxis1, got.naxis2, got.error])
    data = text.getvalue().encode("utf-8")
    (out_dir / INDEX_NAME).write_bytes(data)
    return data


def _write_archive(out_dir: Path, items: Sequence[CutoutItem],
                   outcomes: dict[int, ItemOutcome]) -> None:
    target = out_dir / ARCHIVE_NAME
    tmp = target.with_name(ARCHIVE_NAME + ".part")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for item in items:
            if not outcomes[item.item].error:
                tar.add(out_dir / item.name, arcname=item.name)
        tar.add(out_dir / INDEX_NAME, arcname=INDEX_NAME)
    os.replace(tmp, target)


def _client(scheduler: str | None, workers: int) -> tuple[Any, Any]:
    """A client of ``scheduler``, or of a local in-process cluster (then also returned)."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout=30), None
    # threads in this process: the cutouts are file reads and numpy sums, and a
    # job starts in about a second instead of spawning worker processes
    cluster = LocalCluster(n_workers=1, threads_per_worker=max(1, workers), processes=False,
                           dashboard_address=":0")
    return Client(cluster), cluster


def run_bulk_cutouts(items: Sequence[CutoutItem], out_dir: Path, progress: Path, *,
                     scheduler: str | None = None, workers: int = 2,
                     on_progress: Callable[[int, int], None] | None = None
                     ) -> dict[str, Any]:
    """Cut every item into ``out_dir`` on Dask; write progress, the index and the archive.

    ``scheduler``: a Dask scheduler address; None: a local in-process cluster
    of ``workers`` threads.  Returns the summary the job reports (counts,
    the files made, seconds).
    """
    from dask.distributed import as_completed

    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    total = len(items)
    _write_progress(progress, 0, total, started)
    outcomes: dict[int, ItemOutcome] = {}
    if items:
        client, cluster = _client(scheduler, workers)
        try:
            futures = [client.submit(cut_items, chunk, str(out_dir), pure=False)
                       for chunk in _chunks(items, CHUNK)]
            for future in as_completed(futures):
                for outcome in future.result():
                    outcomes[outcome.item] = outcome
                _write_progress(progress, len(outcomes), total, started)
                if on_progress is not None:
                    on_progress(len(outcomes), total)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    _write_index(out_dir, items, outcomes)
    _write_archive(out_dir, items, outcomes)
    made = [item.name for item in items if not outcomes[item.item].error]
    _write_progress(progress, total, total, started)
    return {"cutouts": len(made), "failed": total - len(made), "files": made,
            "archive": ARCHIVE_NAME, "index": INDEX_NAME,
            "seconds": round(time.monotonic() - started, 3)}

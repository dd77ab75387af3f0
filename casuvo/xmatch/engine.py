# SPDX-License-Identifier: BSD-3-Clause
"""The cross-match run: check, plan, match every partition on Dask, assess, write.

1. Both tables are read and checked (:mod:`casuvo.xmatch.catalogue`) and the
   kernel validated; a usage error stops the run here, before anything is
   written.
2. A's positions are moved to the target epoch (a number, or the median of
   B's per-row epochs), the partition order is chosen from the density, and
   the partitions are cut (:mod:`casuvo.xmatch.partition`).
3. Each unfinished partition becomes one Dask task on a local cluster (or the
   scheduler given): the kernel's pairs go to ``parts/<partition>.parquet``
   and then a ``.done`` marker.  A rerun with the same plan (same inputs,
   radius, epoch, order) skips every partition with a marker, so a run killed
   half-way resumes where it stopped; a changed plan starts the parts afresh.
4. The pairs are gathered, assessed (:mod:`casuvo.xmatch.quality`) and written:
   ``pairs`` (all pairs with quality), ``best`` (one row per A source, Gaia
   ``best_neighbour`` style), ``neighbours`` (VSA neighbour-table columns
   masterObjID, slaveObjID, distanceMins) and ``summary.json``.

The driver holds both catalogues' positions in memory (1M rows ≈ 50 MB) and
the workers get their partitions from it.  When both inputs are HATS
catalogues, :mod:`casuvo.xmatch.hatsrun` runs instead: each worker reads its own
partitions and the driver holds only the plan, which is how the engine goes
beyond one machine's memory.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from casuvo.sky.healpix import lonlat_to_nested
from casuvo.storage.files import atomic_path, write_json
from casuvo.xmatch.catalogue import Catalogue, TableSpec, load_catalogue
from casuvo.xmatch.errors import XmatchError
from casuvo.xmatch.kernel import KdTreeKernel, Side
from casuvo.xmatch.motion import propagate, vectors_to_radec
from casuvo.xmatch.partition import (
    DEFAULT_ROWS_PER_PARTITION,
    Partition,
    choose_order,
    deepest_order,
    partition,
)
from casuvo.xmatch.quality import assess

__all__ = ["OUTPUT_FORMATS", "PartitionCost", "XmatchArgs", "XmatchSummary", "dask_client",
           "run_xmatch", "wait_all"]

log = logging.getLogger(__name__)

#: Output formats and their file suffixes.
OUTPUT_FORMATS = {"parquet": ".parquet", "fits": ".fits"}
_PLAN_VERSION = 1


@dataclass(frozen=True)
class XmatchArgs:
    """Everything a cross-match run needs (the command line builds one).

    ``epoch``: Julian year A is moved to (needs A's proper motions); or give B
    an ``epoch`` column.  ``margin_arcsec``: how far beyond its pixel each
    partition sees B (default: the radius plus the proper-motion slack; a
    smaller one is refused).  ``order``: force the partition order (default:
    from the density, ``rows_per_partition``).  ``scheduler``: a Dask scheduler
    address (default: a local cluster of ``workers`` processes).
    """

    a: TableSpec
    b: TableSpec
    radius_arcsec: float
    out_dir: Path
    epoch: float | None = None
    margin_arcsec: float | None = None
    order: int | None = None
    rows_per_partition: int = DEFAULT_ROWS_PER_PARTITION
    scheduler: str | None = None
    workers: int | None = None
    progress: bool = True
    output_format: str = "parquet"
    pair_columns: Callable[[dict, int, int], dict] | None = None
    """HATS inputs only: the columns each partition writes, made from its pairs
    (:func:`casuvo.xmatch.hatstasks.match_partition`); None: the engine's own."""


@dataclass(frozen=True)
class PartitionCost:
    """What one partition cost: its rows, its pairs and the kernel's seconds."""

    name: str
    n_a: int
    n_b: int
    n_pairs: int
    seconds: float
    computed: bool


@dataclass(frozen=True)
class XmatchSummary:
    """The outcome of a run (also written to ``summary.json``)."""

    out_dir: str
    order: int
    margin_arcsec: float
    epoch: float | None
    slack_arcsec: float
    partitions: int
    computed: int
    resumed: int
    n_a: int
    n_b: int
    n_pairs: int
    n_best: int
    n_mutual: int
    seconds: float
    outputs: dict[str, str] = field(default_factory=dict)
    costs: tuple[PartitionCost, ...] = ()


# ---------------------------------------------------------------- the worker side

def match_partition(kernel: KdTreeKernel, a: Side, b: Side, a_rows: np.ndarray,
                    b_rows: np.ndarray, name: str, parts_dir: str) -> dict:
    """One Dask task: match a partition, write its pairs, then its completion marker.

    The pairs file is complete before the marker exists (both are renamed into
    place), so a marker always means a whole, readable result.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    pairs = kernel.match(a, b)
    seconds = time.perf_counter() - t0
    table = pa.table({"a_row": a_rows[pairs.a], "b_row": b_rows[pairs.b],
                      "separation": pairs.separation_arcsec})
    parts = Path(parts_dir)
    with atomic_path(parts / f"{name}.parquet") as tmp:
        pq.write_table(table, tmp)
    cost = {"name": name, "n_a": len(a), "n_b": len(b), "n_pairs": len(pairs),
            "seconds": seconds}
    write_json(parts / f"{name}.done", cost)
    return cost


# ---------------------------------------------------------------- the driver side

def _fingerprint(spec: TableSpec) -> dict:
    stat = Path(spec.path).stat()
    return {**spec.as_dict(), "path": str(Path(spec.path).resolve()), "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns}


def _target_epoch(args: XmatchArgs, a: Catalogue, b: Catalogue) -> tuple[float | None, float]:
    """(epoch A is moved to or None, proper-motion slack in arcsec)."""
    if args.epoch is None and b.epoch is None:
        if a.pmra is not None:
            log.info("no target epoch given: %s positions are used as they are", a.label)
        return None, 0.0
    if a.pmra is None:
        raise XmatchError("a target epoch needs A's proper motions (pmra, pmdec, ref_epoch)")
    if args.epoch is not None and b.epoch is not None:
        raise XmatchError("give either a target epoch or B's epoch column, not both")
    if args.epoch is not None:
        if not (np.isfinite(args.epoch) and 1000 < args.epoch < 3000):
            raise XmatchError(f"epoch must be a Julian year, not {args.epoch!r}")
        return float(args.epoch), 0.0
    finite = np.isfinite(b.epoch)
    if not finite.any():
        raise XmatchError(f"B ({b.path}): no row has an epoch")
    epoch = float(np.median(b.epoch[finite]))
    if not finite.all():
        log.info("B: %d rows without an epoch are taken at the median epoch %.3f",
                 int((~finite).sum()), epoch)
        b.epoch[~finite] = epoch
    pm = np.hypot(a.pmra, a.pmdec)
    pm_max = float(np.nanmax(pm)) if np.isfinite(pm).any() else 0.0
    slack = pm_max * float(np.max(np.abs(b.epoch - epoch))) / 1000.0
    return epoch, slack


def _positions_at(a: Catalogue, epoch: float | None) -> tuple[np.ndarray, np.ndarray]:
    if epoch is None or a.pmra is None:
        return a.ra, a.dec
    return vectors_to_radec(propagate(a.ra, a.dec, a.pmra, a.pmdec, epoch - a.ref_epoch))


def _sides(a: Catalogue, b: Catalogue, part: Partition, moving: bool,
           per_row_epochs: bool) -> tuple[Side, Side]:
    ia, ib = part.a_rows, part.b_rows
    side_a = Side(a.ra[ia], a.dec[ia])
    if moving:
        side_a = Side(a.ra[ia], a.dec[ia], a.pmra[ia], a.pmdec[ia], a.ref_epoch[ia])
    side_b = Side(b.ra[ib], b.dec[ib], epoch=b.epoch[ib] if per_row_epochs else None)
    return side_a, side_b


def _prepare_parts(parts_dir: Path, plan: dict, out_dir: Path) -> None:
    """Keep finished partitions of the same plan; clear those of another one."""
    plan_file = out_dir / "plan.json"
    if plan_file.exists():
        try:
            old = json.loads(plan_file.read_text())
        except ValueError:
            old = None
        if old != plan and parts_dir.exists():
            log.warning("%s: the plan changed (inputs, radius, epoch or order); "
                        "previous partitions are discarded", out_dir)
            shutil.rmtree(parts_dir)
    parts_dir.mkdir(parents=True, exist_ok=True)
    write_json(plan_file, plan, indent=1)


@contextmanager
def dask_client(args: XmatchArgs, client: object | None = None) -> Iterator[object]:
    """The client to run on: the one given, one for ``args.scheduler``, or a local cluster.

    What this makes, it closes on the way out.
    """
    from dask.distributed import Client, LocalCluster

    if client is not None:
        yield client
        return
    if args.scheduler:
        with Client(args.scheduler) as own:
            yield own
        return
    n_workers = args.workers or max(1, min(os.cpu_count() or 1, 4))
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as own:
        yield own


def wait_all(futures: list, progress: bool) -> list[dict]:
    """The tasks' results as they complete (their costs), with a progress bar."""
    from dask.distributed import as_completed
    from tqdm import tqdm

    costs = []
    with tqdm(total=len(futures), unit="partition", desc="xmatch",
              disable=not progress) as bar:
        for future in as_completed(futures):
            cost = future.result()
            costs.append(cost)
            log.debug("partition %s: %d × %d rows, %d pairs, %.2f s", cost["name"],
                      cost["n_a"], cost["n_b"], cost["n_pairs"], cost["seconds"])
            bar.update(1)
    return costs


def _run_partitions(todo: list, args: XmatchArgs, client: object | None) -> list[dict]:
    """Run the partition tasks on Dask (the given client, a scheduler or a local cluster)."""
    with dask_client(args, client) as dask:
        log.info("matching %d partitions on %s", len(todo),
                 getattr(dask, "dashboard_link", None) or args.scheduler or "a local cluster")
        # One scatter for all the partitions' rows: the graph itself stays small.
        data = dask.scatter([item for payload in todo for item in payload[1:5]])
        futures = [dask.submit(match_partition, payload[0], *data[4 * k:4 * k + 4],
                               *payload[5:], key=f"xmatch-{payload[5]}", pure=False)
                   for k, payload in enumerate(todo)]
        return wait_all(futures, args.progress)


def _gather(parts_dir: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import pyarrow.parquet as pq

    tables = [pq.read_table(parts_dir / f"{n}.parquet") for n in names]
    a_row = np.concatenate([t.column("a_row").to_numpy() for t in tables]).astype(np.int64)
    b_row = np.concatenate([t.column("b_row").to_numpy() for t in tables]).astype(np.int64)
    sep = np.concatenate([t.column("separation").to_numpy() for t in tables])
    order = np.lexsort((b_row, sep, a_row))
    return a_row[order], b_row[order], sep[order]


_UNITS = {"angular_distance": "arcsec", "distanceMins": "arcmin"}


def _write(path: Path, columns: dict[str, np.ndarray], fmt: str) -> None:
    """Write one output table, complete or not at all."""
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table(columns), tmp)
        else:
            from astropy.table import Table

            table = Table(columns)
            for name, unit in _UNITS.items():
                if name in table.colnames:
                    table[name].unit = unit
            table.write(tmp, format="fits", overwrite=True)


def run_xmatch(args: XmatchArgs, client: object | None = None) -> XmatchSummary:
    """Cross-match ``args.a`` with ``args.b``; outputs under ``args.out_dir``.

    ``client``: a ``distributed.Client`` to run on (tests share one); otherwise
    the run makes its own (``args.scheduler`` or a local cluster).
    """
    t_start = time.perf_counter()
    if args.output_format not in OUTPUT_FORMATS:
        raise XmatchError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}, "
                          f"not {args.output_format!r}")
    radius = float(args.radius_arcsec)
    if not (np.isfinite(radius) and radius > 0):
        raise XmatchError(f"radius must be a positive number of arcsec, not {args.radius_arcsec!r}")
    if args.rows_per_partition < 1:
        raise XmatchError(f"rows per partition must be >= 1, not {args.rows_per_partition}")
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise XmatchError(f"{out_dir}: exists and is not a directory")
    from casuvo.xmatch.hatsplan import is_hats

    hats_inputs = [is_hats(Path(spec.path)) for spec in (args.a, args.b)]
    if all(hats_inputs):
        from casuvo.xmatch.hatsrun import run_hats_xmatch

        return run_hats_xmatch(args, client)
    if any(hats_inputs):
        raise XmatchError("both inputs must be HATS catalogues, or both tables (FITS, Parquet)")
    if args.pair_columns is not None:
        raise XmatchError("pair_columns needs HATS inputs: the in-memory engine writes "
                          "its own columns")
    a = load_catalogue(args.a, "A")
    b = load_catalogue(args.b, "B")
    epoch, slack = _target_epoch(args, a, b)
    moving = epoch is not None
    per_row = moving and b.epoch is not None
    margin = float(args.margin_arcsec) if args.margin_arcsec is not None else radius + slack
    kernel = KdTreeKernel(radius, margin, epoch, slack)
    kernel.validate()

    a_ra, a_dec = _positions_at(a, epoch)
    deepest = deepest_order(margin) if args.order is None else None
    if args.order is not None:
        from casuvo.sky.healpix import order_for_margin

        if not 0 <= args.order <= order_for_margin(margin):
            raise XmatchError(f"partition order must be in 0..{order_for_margin(margin)} "
                              f"for a {margin:g}″ margin, not {args.order}")
        order = args.order
    else:
        order = choose_order(lonlat_to_nested(a_ra, a_dec, deepest),
                             lonlat_to_nested(b.ra, b.dec, deepest), deepest,
                             args.rows_per_partition)
    parts = partition(a_ra, a_dec, b.ra, b.dec, order, margin)
    sizes = np.array([p.a_rows.size + p.b_rows.size for p in parts])
    log.info("order %d: %d partitions of %d–%d rows (median %d), margin %.3f″, "
             "epoch %s, slack %.3f″", order, len(parts), sizes.min(), sizes.max(),
             int(np.median(sizes)), margin, "none" if epoch is None else f"{epoch:.3f}",
             slack)

    # ---- from here on, files are written
    plan = {"version": _PLAN_VERSION, "a": _fingerprint(args.a), "b": _fingerprint(args.b),
            "radius_arcsec": radius, "margin_arcsec": margin, "epoch": epoch,
            "slack_arcsec": slack, "order": order, "partitions": len(parts)}
    parts_dir = out_dir / "parts"
    out_dir.mkdir(parents=True, exist_ok=True)
    _prepare_parts(parts_dir, plan, out_dir)
    done = {p.name for p in parts if (parts_dir / f"{p.name}.done").exists()}
    todo = []
    for part in parts:
        if part.name in done:
            continue
        side_a, side_b = _sides(a, b, part, moving, per_row)
        todo.append((kernel, side_a, side_b, part.a_rows, part.b_rows, part.name,
                     str(parts_dir)))
    if done:
        log.info("resuming: %d of %d partitions already done", len(done), len(parts))
    computed = {c["name"]: c for c in (_run_partitions(todo, args, client) if todo else [])}

    costs = []
    for part in parts:
        cost = computed.get(part.name) or json.loads(
            (parts_dir / f"{part.name}.done").read_text())
        costs.append(PartitionCost(cost["name"], cost["n_a"], cost["n_b"], cost["n_pairs"],
                                   cost["seconds"], part.name in computed))
    a_row, b_row, sep = _gather(parts_dir, [p.name for p in parts])
    quality = assess(a_row, b_row, sep, len(a), len(b))

    suffix = OUTPUT_FORMATS[args.output_format]
    outputs = {name: out_dir / f"{name}{suffix}" for name in ("pairs", "best", "neighbours")}
    a_id, b_id = a.ids[a_row], b.ids[b_row]
    _write(outputs["pairs"], {
        "a_id": a_id, "b_id": b_id, "a_row": a_row, "b_row": b_row,
        "angular_distance": sep, "number_of_neighbours": quality.number_of_neighbours,
        "number_of_mates": quality.number_of_mates, "best": quality.best,
        "mutual": quality.mutual, "ambiguous": quality.ambiguous}, args.output_format)
    best = quality.best
    _write(outputs["best"], {
        "a_id": a_id[best], "b_id": b_id[best], "a_row": a_row[best], "b_row": b_row[best],
        "angular_distance": sep[best],
        "number_of_neighbours": quality.number_of_neighbours[best],
        "number_of_mates": quality.best_mates[best], "mutual": quality.mutual[best],
        "ambiguous": quality.ambiguous[best]}, args.output_format)
    _write(outputs["neighbours"], {
        "masterObjID": a_id, "slaveObjID": b_id,
        "distanceMins": (sep / 60.0).astype(np.float32)}, args.output_format)

    summary = XmatchSummary(
        str(out_dir), order, margin, epoch, slack, len(parts), len(computed),
        len(parts) - len(computed), len(a), len(b), int(a_row.size), int(best.sum()),
        int(quality.mutual.sum()), time.perf_counter() - t_start,
        {k: str(v) for k, v in outputs.items()}, tuple(costs))
    write_json(out_dir / "summary.json", asdict(summary), indent=1)
    log.info("%d pairs, %d best matches (%d one-to-one) in %.1f s; %d partitions computed, "
             "%d resumed", summary.n_pairs, summary.n_best, summary.n_mutual,
             summary.seconds, summary.computed, summary.resumed)
    return summary

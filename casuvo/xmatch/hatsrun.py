# SPDX-License-Identifier: BSD-3-Clause
"""A cross-match of two HATS catalogues, partition by partition on the Dask workers.

The driver opens both catalogues' metadata (:mod:`casuvo.xmatch.hatsplan`),
bounds the proper motion from the Parquet footer statistics, and plans one task
per A partition; it never holds rows.  Each task
(:func:`casuvo.xmatch.hatstasks.match_partition`) reads its own partition and
the rows around it, and writes that partition's pairs with their quality.

The result is ``pairs/`` — one Parquet file per A partition, in the HATS
directory layout (``Norder=k/Dir=d/Npix=p.parquet``), every pair within the
radius with the same quality columns as the in-memory engine — and
``summary.json``.  Each task's marker lets a rerun with the same plan skip
what is finished; a changed plan (inputs, radius, epoch, margin) starts afresh.

Motion: when A moves (a target epoch, or B's per-row epochs), A's rows are in
their partitions by catalogue position, so the distance ``d`` between a
matched pair's catalogue positions is the radius plus the farthest any A row
can move, ``max |μ| × max |Δt|`` from the column statistics.  The target epoch
A is searched at is the middle of B's epoch range; the pairs do not depend on
it (each candidate is measured again with A at its B row's own epoch), only
the search's slack does.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from casuvo.storage.files import write_json
from casuvo.xmatch.errors import XmatchError
from casuvo.xmatch.hatsplan import (
    HatsCatalogue,
    column_ranges,
    open_hats,
    partition_file,
    plan_json,
    plan_tasks,
)
from casuvo.xmatch.hatstasks import match_partition
from casuvo.xmatch.kernel import KdTreeKernel
from casuvo.xmatch.motion import jyear_from_mjd

__all__ = ["run_hats_xmatch"]

log = logging.getLogger(__name__)

_PLAN_VERSION = 1


def _motion(args: object, a: HatsCatalogue, b: HatsCatalogue) -> tuple[float | None, float,
                                                                        float]:
    """(target epoch or None, search slack, farthest move from A's position) in arcsec."""
    a_spec, b_spec = args.a, args.b
    if args.epoch is None and b_spec.epoch is None:
        return None, 0.0, 0.0
    if a_spec.pmra is None or a_spec.pmdec is None or a_spec.ref_epoch is None:
        raise XmatchError("a target epoch needs A's proper motions (pmra, pmdec, ref_epoch)")
    if args.epoch is not None and b_spec.epoch is not None:
        raise XmatchError("give either a target epoch or B's epoch column, not both")
    moving = [a_spec.pmra, a_spec.pmdec]
    if isinstance(a_spec.ref_epoch, str):
        moving.append(a_spec.ref_epoch)
    ranges = column_ranges(a, moving, "A")
    pm_max = float(np.hypot(*[max(abs(v) for v in ranges[name])
                              for name in (a_spec.pmra, a_spec.pmdec)]))
    if isinstance(a_spec.ref_epoch, str):
        ref_lo, ref_hi = ranges[a_spec.ref_epoch]
    else:
        ref_lo = ref_hi = float(a_spec.ref_epoch)
    if args.epoch is not None:
        if not (np.isfinite(args.epoch) and 1000 < args.epoch < 3000):
            raise XmatchError(f"epoch must be a Julian year, not {args.epoch!r}")
        lo = hi = epoch = float(args.epoch)
    else:
        lo, hi = column_ranges(b, [b_spec.epoch], "B")[b_spec.epoch]
        if "mjd" in b_spec.epoch.lower() or lo > 10_000:
            lo, hi = (float(v) for v in jyear_from_mjd(np.array([lo, hi])))
        epoch = (lo + hi) / 2.0
    slack = pm_max * (hi - lo) / 2.0 / 1000.0
    reach = pm_max * max(abs(hi - ref_lo), abs(lo - ref_hi), abs(hi - ref_hi),
                         abs(lo - ref_lo)) / 1000.0
    return epoch, slack, reach


def _prepare(work: Path, pairs: Path, plan: dict) -> None:
    """Keep the finished partitions of the same plan; discard those of another one."""
    plan_file = work / "plan.json"
    if plan_file.exists():
        try:
            old = json.loads(plan_file.read_text())
        except ValueError:
            old = None
        if old != plan:
            log.warning("%s: the plan changed (inputs, radius, epoch or margin); "
                        "finished partitions are discarded", work)
            shutil.rmtree(work)
            shutil.rmtree(pairs, ignore_errors=True)
    elif pairs.exists():
        shutil.rmtree(pairs)            # pairs without a plan: not this engine's, or torn
    work.mkdir(parents=True, exist_ok=True)
    write_json(plan_file, plan, indent=1)


def _qualified(function: object | None) -> str | None:
    """A function's importable name: the plan changes when the written columns do."""
    if function is None:
        return None
    return f"{function.__module__}.{function.__qualname__}"


def _done(marker: Path) -> dict | None:
    if not marker.exists():
        return None
    return json.loads(marker.read_text())


def run_hats_xmatch(args: object, client: object | None = None) -> object:
    """Cross-match the HATS catalogues ``args.a`` and ``args.b`` (see the module notes).

    ``args``: a :class:`casuvo.xmatch.XmatchArgs` whose paths are HATS catalogues;
    both need integer identifiers (``id``), which replace row numbers.
    """
    from casuvo.xmatch.engine import PartitionCost, XmatchSummary, dask_client, wait_all

    t_start = time.perf_counter()
    radius = float(args.radius_arcsec)
    if not (np.isfinite(radius) and radius > 0):
        raise XmatchError(f"radius must be a positive number of arcsec, not {args.radius_arcsec!r}")
    if args.output_format != "parquet":
        raise XmatchError("a HATS cross-match writes Parquet partitions (output format parquet)")
    for label, spec in (("A", args.a), ("B", args.b)):
        if spec.id is None:
            raise XmatchError(f"{label} ({spec.path}): a HATS catalogue needs an identifier "
                              "column (id): its rows have no global row numbers")
    a = open_hats(args.a.path, "A")
    b = open_hats(args.b.path, "B")
    epoch, slack, reach = _motion(args, a, b)
    reach_pair = radius + reach
    if args.margin_arcsec is not None and args.margin_arcsec < reach_pair:
        raise XmatchError(f"margin {args.margin_arcsec:g}″ is narrower than the radius plus "
                          f"the farthest proper motion ({reach_pair:g}″): pairs across "
                          "partitions would be lost")
    a_margin, b_margin = 2 * reach_pair, 3 * reach_pair
    kernel = KdTreeKernel(radius, b_margin, epoch, slack)
    kernel.validate()
    tasks = plan_tasks(a, b, a_margin, b_margin)
    log.info("A %d rows in %d partitions, B %d rows in %d partitions (margin catalogues "
             "%s, %s); %d tasks, rows read within %.3f″ (A) and %.3f″ (B), epoch %s",
             a.total_rows, a.orders.size, b.total_rows, b.orders.size,
             f"{a.margin_arcsec:g}″" if a.margin_path else "none",
             f"{b.margin_arcsec:g}″" if b.margin_path else "none", len(tasks), a_margin,
             b_margin, "none" if epoch is None else f"{epoch:.3f}")

    out_dir = Path(args.out_dir)
    work = out_dir / "work"
    plan = {"version": _PLAN_VERSION, **plan_json(a, b), "a_spec": args.a.as_dict(),
            "b_spec": args.b.as_dict(), "radius_arcsec": radius, "epoch": epoch,
            "slack_arcsec": slack, "reach_arcsec": reach, "tasks": len(tasks),
            "pair_columns": _qualified(args.pair_columns)}
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs_dir = out_dir / "pairs"
    _prepare(work, pairs_dir, plan)
    done = {t.name: _done(work / f"{t.name}.done") for t in tasks}
    todo = [(f"xmatch-{t.name}", match_partition, t, args.a, args.b, kernel, a_margin,
             b_margin, a.total_rows, b.total_rows,
             str(partition_file(pairs_dir, t.order, t.pixel)), str(work / f"{t.name}.done"),
             args.pair_columns)
            for t in tasks if done[t.name] is None]
    if len(todo) < len(tasks):
        log.info("resuming: %d of %d partitions already matched", len(tasks) - len(todo),
                 len(tasks))
    if todo:
        with dask_client(args, client) as dask:
            futures = [dask.submit(fn, *fargs, key=key, pure=False)
                       for key, fn, *fargs in todo]
            for cost in wait_all(futures, args.progress):
                done[cost["name"]] = cost | {"computed": True}

    costs = tuple(PartitionCost(t.name, c["n_a"], c["n_b"], c["n_pairs"], c["seconds"],
                                bool(c.get("computed")))
                  for t in tasks for c in [done[t.name]])
    computed = sum(c.computed for c in costs)
    summary = XmatchSummary(
        str(out_dir), int(a.max_order), b_margin, epoch, slack, len(tasks), computed,
        len(tasks) - computed, a.total_rows, b.total_rows,
        sum(c["n_pairs"] for c in done.values()), sum(c["n_best"] for c in done.values()),
        sum(c["n_mutual"] for c in done.values()), time.perf_counter() - t_start,
        {"pairs": str(pairs_dir)}, costs)
    write_json(out_dir / "summary.json", asdict(summary) | {
        "engine": "hats", "a_margin_arcsec": a_margin,
        "read_seconds": sum(c["read_seconds"] for c in done.values()),
        "kernel_seconds": sum(c["kernel_seconds"] for c in done.values())}, indent=1)
    log.info("%d pairs, %d best matches (%d one-to-one) in %.1f s; %d partitions computed, "
             "%d resumed", summary.n_pairs, summary.n_best, summary.n_mutual,
             summary.seconds, summary.computed, summary.resumed)
    return summary

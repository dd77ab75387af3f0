# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: Gaia-scale cross-matching on this machine's cluster, casuvo against LSDB.

Two synthetic catalogues of ``--rows`` rows each (default 50 million; a
``--small`` run of a fifth of that is made too, to show that memory per
worker does not grow with the catalogue) on a patch at ``--density`` sources
per deg², 62 % of B being counterparts of A with 0.3″ scatter: written as HATS
collections (hats-import through ``casuvo export``'s writer, with a 10″ margin
catalogue; timed apart, not part of either match), then cross-matched at 1″ on
a local Dask cluster of ``--workers`` worker processes (one thread each):

- ``casuvo.xmatch`` on the HATS partitions (every pair within the radius, with
  best, one-to-one and the quality columns, written as Parquet per partition);
- LSDB ``crossmatch`` on the same collections (``n_neighbors`` large enough for
  every pair), its result written with ``to_hats`` like casuvo's.

Each engine gets a fresh cluster, so each worker's peak resident memory
(``ru_maxrss``, read in the worker after the run) is its own.  Printed and
written (``--json``): rows/s per core ((rows of A + rows of B) ÷ wall ÷ cores),
peak memory per worker, casuvo's time split into partition reads and kernels
(worker seconds, from its summary), pair counts (they must agree).
``docs/scale-out.md`` extrapolates from these figures.

Run in the compute environment: ``var/venv-compute/bin/python bench/scale.py``
(≈ 8 GB of disk under ``var/bench/scale`` at 50 M; ``--keep`` reuses the
catalogues of an earlier run).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from casuvo.xmatch import TableSpec, XmatchArgs, run_xmatch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import figure, write_json  # bench/report.py: standard library only

RADIUS = 1.0          # arcsec
MARGIN = 10.0         # arcsec, the margin catalogues' threshold (as casuvo export)
PARTITION_ROWS = 1_000_000


def _patch(rng: np.random.Generator, n: int, side: float) -> tuple[np.ndarray, np.ndarray]:
    ra = 150.0 + rng.uniform(0, side, n)
    dec = np.degrees(np.arcsin(rng.uniform(-np.sin(np.radians(side / 2)),
                                           np.sin(np.radians(side / 2)), n)))
    return ra, dec


def make_catalogues(rows: int, density: float, root: Path, workers: int,
                    seed: int = 7) -> tuple[Path, Path, float]:
    """A and B as HATS collections under ``root`` (hats-import, through casuvo's exporter);
    returns their paths and the seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from casuvo.catalogue.hatsexport import ExportArgs, export_hats

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    side = float(np.sqrt(rows / density))
    chunk = 5_000_000
    files: dict[str, list[Path]] = {"a": [], "b": []}
    raw = root / "parquet"
    raw.mkdir(parents=True, exist_ok=True)
    for k, start in enumerate(range(0, rows, chunk)):
        n = min(chunk, rows - start)
        a_ra, a_dec = _patch(rng, n, side)
        m = int(0.62 * n)
        sigma = 0.3 / 3600.0
        other_ra, other_dec = _patch(rng, n - m, side)
        b_ra = np.r_[a_ra[:m] + rng.normal(0, sigma, m) / np.cos(np.radians(a_dec[:m])),
                     other_ra]
        b_dec = np.r_[a_dec[:m] + rng.normal(0, sigma, m), other_dec]
        ids = np.arange(start, start + n, dtype=np.int64)
        for name, ra, dec in (("a", a_ra, a_dec), ("b", b_ra, b_dec)):
            path = raw / f"{name}{k:03d}.parquet"
            pq.write_table(pa.table({"id": ids, "ra": ra % 360.0, "dec": dec}), path)
            files[name].append(path)
    for name in ("a", "b"):
        export_hats(ExportArgs(name, tuple(files[name]), root, pixel_threshold=PARTITION_ROWS,
                               highest_order=10, margin_arcsec=MARGIN, workers=workers))
    shutil.rmtree(raw)
    return root / "a", root / "b", time.perf_counter() - t0


def _worker_peak() -> float:
    """This process's peak resident memory in MB (VmHWM: of this address space only;
    ``ru_maxrss`` would carry the peak of the process that spawned it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def _peak_rss(client: object) -> list[float]:
    """Each worker's peak resident memory so far, in MB."""
    return sorted(client.run(_worker_peak).values())


def _cluster(workers: int, memory: str) -> tuple[object, object]:
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", memory_limit=memory)
    return cluster, Client(cluster)


def run_casuvo(a: Path, b: Path, out: Path, workers: int, memory: str) -> dict:
    cluster, client = _cluster(workers, memory)
    try:
        t = time.perf_counter()
        summary = run_xmatch(XmatchArgs(TableSpec(a, id="id"), TableSpec(b, id="id"), RADIUS,
                                        out, progress=False), client=client)
        seconds = time.perf_counter() - t
        peaks = _peak_rss(client)
    finally:
        client.close()
        cluster.close()
    detail = json.loads((out / "summary.json").read_text())
    return {"seconds": seconds, "pairs": summary.n_pairs, "mutual": summary.n_mutual,
            "tasks": summary.partitions, "peak_mb": peaks,
            "read_seconds": detail["read_seconds"], "kernel_seconds": detail["kernel_seconds"],
            "rows": summary.n_a + summary.n_b}


def run_lsdb(a: Path, b: Path, out: Path, workers: int, memory: str) -> dict:
    import lsdb

    cluster, client = _cluster(workers, memory)
    try:
        t = time.perf_counter()
        left, right = lsdb.open_catalog(a), lsdb.open_catalog(b)
        result = left.crossmatch(right, radius_arcsec=RADIUS, n_neighbors=16,
                                 suffixes=("_a", "_b"))
        result.to_hats(out, catalog_name="pairs", as_collection=False)
        seconds = time.perf_counter() - t
        peaks = _peak_rss(client)
    finally:
        client.close()
        cluster.close()
    import hats

    pairs = int(hats.read_hats(out).catalog_info.total_rows)
    return {"seconds": seconds, "pairs": pairs, "peak_mb": peaks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000_000, help="rows per catalogue")
    parser.add_argument("--small", type=int, default=None,
                        help="rows of the smaller run (default a fifth; 0: none)")
    parser.add_argument("--density", type=float, default=50_000.0, help="sources per deg²")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory", default="6GB", help="memory limit per worker")
    parser.add_argument("--work", type=Path, default=Path("var/bench/scale"))
    parser.add_argument("--keep", action="store_true", help="reuse catalogues already made")
    parser.add_argument("--no-lsdb", action="store_true")
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args()
    import distributed  # noqa: F401 - configures its loggers on import; quieten them after

    logging.basicConfig(level=logging.WARNING)
    for noisy in ("distributed", "bokeh", "tornado", "lsdb", "hats"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    small = args.rows // 5 if args.small is None else args.small
    sizes = [n for n in (small, args.rows) if n]
    results = {}
    for rows in sizes:
        root = args.work / f"{rows}"
        made = 0.0
        if not (args.keep and (root / "a").is_dir() and (root / "b").is_dir()):
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            a, b, made = make_catalogues(rows, args.density, root, args.workers)
        a, b = root / "a", root / "b"
        print(f"{rows:,} × {rows:,} rows at {args.density:g}/deg²: catalogues "
              f"{'reused' if not made else f'made in {made:.0f} s'}", flush=True)
        shutil.rmtree(root / "casuvo", ignore_errors=True)
        mine = run_casuvo(a, b, root / "casuvo", args.workers, args.memory)
        print(f"  casuvo.xmatch: {mine['seconds']:.1f} s, {mine['pairs']:,} pairs, "
              f"{mine['tasks']} tasks, peak per worker {max(mine['peak_mb']):.0f} MB, "
              f"read {mine['read_seconds']:.1f} s + kernel {mine['kernel_seconds']:.1f} s "
              "(worker seconds)", flush=True)
        theirs = None
        if not args.no_lsdb:
            shutil.rmtree(root / "lsdb", ignore_errors=True)
            theirs = run_lsdb(a, b, root / "lsdb", args.workers, args.memory)
            print(f"  LSDB crossmatch: {theirs['seconds']:.1f} s, {theirs['pairs']:,} pairs, "
                  f"peak per worker {max(theirs['peak_mb']):.0f} MB", flush=True)
        results[rows] = (mine, theirs)
        shutil.rmtree(root / "casuvo", ignore_errors=True)
        shutil.rmtree(root / "lsdb", ignore_errors=True)

    cores = args.workers
    print()
    print(f"{'rows each':>12} {'engine':<8} {'s':>8} {'rows/s/core':>12} {'peak MB/worker':>15} "
          f"{'I/O share':>9} {'pairs':>12}")
    figures = []
    for rows, (mine, theirs) in results.items():
        rate = 2 * rows / mine["seconds"] / cores
        io = mine["read_seconds"] / (mine["read_seconds"] + mine["kernel_seconds"])
        print(f"{rows:>12,} {'casuvo':<8} {mine['seconds']:8.1f} {rate:12,.0f} "
              f"{max(mine['peak_mb']):15.0f} {io:9.2f} {mine['pairs']:12,}")
        if theirs:
            lrate = 2 * rows / theirs["seconds"] / cores
            print(f"{rows:>12,} {'LSDB':<8} {theirs['seconds']:8.1f} {lrate:12,.0f} "
                  f"{max(theirs['peak_mb']):15.0f} {'':>9} {theirs['pairs']:12,}")
        label = f"{rows / 1e6:g} M × {rows / 1e6:g} M"
        figures.append(figure(f"casuvo.xmatch on HATS, {label}, rows/s per core", rate,
                              "rows/s/core",
                              baseline=None if not theirs else "LSDB crossmatch, same inputs",
                              baseline_value=None if not theirs else lrate,
                              ratio=None if not theirs else rate / lrate))
        figures.append(figure(f"casuvo.xmatch peak memory per worker, {label}",
                              max(mine["peak_mb"]), "MB",
                              baseline=None if not theirs else "LSDB, same run",
                              baseline_value=None if not theirs else max(theirs["peak_mb"])))
        figures.append(figure(f"casuvo.xmatch I/O share of worker time, {label}", io, ""))
    if len(results) == 2:
        (r1, (m1, _)), (r2, (m2, _)) = results.items()
        growth = max(m2["peak_mb"]) / max(m1["peak_mb"])
        print(f"peak memory per worker, {r2 / r1:g}× the rows: {growth:.2f}× "
              "(it must not grow with the catalogue)")
        figures.append(figure("casuvo.xmatch peak memory growth with 5× the rows", growth, "×",
                              goal="does not grow (≤ 1.2×)", met=growth <= 1.2))
    if args.json:
        write_json(args.json, "scale", figures, workers=args.workers, density=args.density,
                   radius_arcsec=RADIUS, results={str(k): v for k, v in results.items()})


if __name__ == "__main__":
    main()

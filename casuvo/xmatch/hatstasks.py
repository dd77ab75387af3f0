# SPDX-License-Identifier: BSD-3-Clause
"""The worker side of a HATS cross-match: one task per A partition, reading its own files.

A task reads the A rows of its partition ``P`` and those within ``2d`` of it,
and the B rows within ``3d`` (:mod:`casuvo.xmatch.hatsplan` says why that is
enough), matches them all with the kernel, assesses every pair with
:func:`casuvo.xmatch.quality.assess` (told the catalogues' full sizes, which
decide who chooses first in the one-to-one selection), and keeps the pairs
whose A row is in ``P``.  Rows are sorted by identifier first, so ties in
separation go to the lower identifier (the in-memory engine's row numbers;
HATS rows have none).

The task writes its Parquet file and then a ``.done`` marker (both renamed
into place), so a rerun skips whatever is finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from casuvo.sky.healpix import border_pixels, order_for_margin
from casuvo.storage.files import atomic_path, write_json
from casuvo.xmatch.catalogue import (
    Catalogue,
    TableSpec,
    arrow_values,
    checked_catalogue,
    wanted_columns,
)
from casuvo.xmatch.errors import XmatchError
from casuvo.xmatch.hatsplan import MatchTask, SourceFile
from casuvo.xmatch.kernel import KdTreeKernel, Side
from casuvo.xmatch.quality import assess

__all__ = ["match_partition", "read_rows"]


def _columns_present(path: str, names: list[str]) -> tuple[list[str], dict[str, str]]:
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    lower = {n.lower(): n for n in schema.names}
    real = sorted({lower[n.lower()] for n in names if n.lower() in lower})
    units = {}
    for name in names:
        field = schema.field(lower[name.lower()]) if name.lower() in lower else None
        if field is not None and field.metadata and b"unit" in field.metadata:
            units[name] = field.metadata[b"unit"].decode()
    return real, units


def _take(c: Catalogue, rows: np.ndarray) -> Catalogue:
    def pick(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else values[rows]
    return Catalogue(c.label, c.path, c.ids[rows], c.ra[rows], c.dec[rows], pick(c.pmra),
                     pick(c.pmdec), pick(c.ref_epoch), pick(c.epoch))


def _near(pix: np.ndarray, pix_order: int, order: int, pixel: int,
          margin_arcsec: float) -> np.ndarray:
    """Mask of rows (by their spatial index ``pix`` at ``pix_order``) in the pixel or
    within ``margin_arcsec`` of it: in it, or in one of the fine pixels around it
    (:func:`casuvo.sky.healpix.border_pixels`), fine enough to be no wider than a few
    margins, coarse enough to be at least one (so nothing within is missed)."""
    fine = order_for_margin(margin_arcsec)
    if fine <= order:
        # The pixel is narrower than the margin: its ancestor at ``fine`` and the
        # ancestor's neighbours (a superset).
        anc = pixel >> (2 * (order - fine))
        ring = np.r_[anc, border_pixels(fine, anc, 0)]
        return np.isin(pix >> (2 * (pix_order - fine)), ring)
    ring = border_pixels(order, pixel, fine - order)
    return ((pix >> (2 * (pix_order - order))) == pixel) | np.isin(
        pix >> (2 * (pix_order - fine)), ring)


def read_rows(files: tuple[SourceFile, ...], spec: TableSpec, label: str, task: MatchTask,
              margin_arcsec: float, spatial: str, spatial_order: int
              ) -> tuple[Catalogue, np.ndarray]:
    """The rows of ``files`` within the margin of the task's pixel, checked, once each,
    sorted by identifier; and a mask of those that came from the first file.

    Partitions inside the pixel are kept whole, others cut to the margin by their
    spatial index; margin-catalogue rows are kept whole (a few rows too many never
    change a pair), less those that are also in a partition read or another margin.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = wanted_columns(spec)
    real, units = _columns_present(files[0].path, [*names, spatial])
    try:
        tables = [pq.read_table(f.path, columns=real) for f in files]
    except Exception as exc:  # a damaged partition file: say which catalogue
        raise XmatchError(f"{label}: cannot read {', '.join(f.path for f in files)}: "
                          f"{exc}") from exc
    table = pa.concat_tables(tables, promote_options="default")
    values = arrow_values(table, [*names, spatial])
    catalogue = checked_catalogue(spec, label, Path(files[0].path), values, units,
                                  table.column_names, allow_empty=True)
    pix = values.get(spatial)
    if pix is None:
        raise XmatchError(f"{label} ({files[0].path}): no spatial index column {spatial!r}")
    pix = pix.astype(np.int64)
    sizes = np.array([t.num_rows for t in tables])
    source = np.repeat(np.arange(len(files)), sizes)
    keep = np.ones(len(catalogue), dtype=bool)
    for k, f in enumerate(files):
        if not (f.inside or f.margin):
            rows = source == k
            keep[rows] = _near(pix[rows], spatial_order, task.order, task.pixel,
                               margin_arcsec)
    margin = np.array([f.margin for f in files])[source]
    if margin.any():
        # In a partition read: the partition's copy is kept.
        rows = np.flatnonzero(margin)
        for f in files:
            if not f.margin:
                shift = 2 * (spatial_order - f.order)
                keep[rows[(pix[rows] >> shift) == f.pixel]] = False
        rows = rows[keep[rows]]
        _, first = np.unique(catalogue.ids[rows], return_index=True)
        repeated = np.ones(rows.size, dtype=bool)
        repeated[first] = False
        keep[rows[repeated]] = False
    rows = np.flatnonzero(keep)
    rows = rows[np.argsort(catalogue.ids[rows], kind="stable")]
    return _take(catalogue, rows), source[rows] == 0


def match_partition(task: MatchTask, a_spec: TableSpec, b_spec: TableSpec,
                    kernel: KdTreeKernel, a_margin: float, b_margin: float, n_a: int,
                    n_b: int, target: str, marker: str,
                    pair_columns: Callable[[dict, int, int], dict] | None = None) -> dict:
    """One A partition's pairs with their quality (see the module notes); returns its cost.

    ``pair_columns`` (a module-level function, pickled to the worker), if given,
    makes the columns written from every pair of the neighbourhood (``a_row``,
    ``b_row``: rows of the task's arrays, ``a_id``, ``b_id``,
    ``angular_distance``) and the catalogues' sizes, one value per pair in the
    order given; only the partition's own pairs are written.  It sees the same
    neighbourhood as the engine's quality, so it may assess the pairs with
    either side choosing (a neighbour table with B as master does).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    a, own = read_rows(task.a_files, a_spec, "A", task, a_margin, task.a_spatial,
                       task.a_spatial_order)
    b, _ = read_rows(task.b_files, b_spec, "B", task, b_margin, task.b_spatial,
                     task.b_spatial_order)
    t_read = time.perf_counter() - t0
    moving = kernel.epoch is not None and a.pmra is not None
    side_a = (Side(a.ra, a.dec, a.pmra, a.pmdec, a.ref_epoch) if moving
              else Side(a.ra, a.dec))
    side_b = Side(b.ra, b.dec, epoch=b.epoch if moving else None)
    pairs = kernel.match(side_a, side_b)
    quality = assess(pairs.a, pairs.b, pairs.separation_arcsec, n_a, n_b)
    a_id, b_id = a.ids[pairs.a], b.ids[pairs.b]
    mine = own[pairs.a]
    t_kernel = time.perf_counter() - t0 - t_read
    columns = {
        "a_id": a_id, "b_id": b_id, "angular_distance": pairs.separation_arcsec,
        "number_of_neighbours": quality.number_of_neighbours,
        "number_of_mates": quality.number_of_mates, "best": quality.best,
        "best_mates": quality.best_mates, "mutual": quality.mutual,
        "ambiguous": quality.ambiguous}
    if pair_columns is not None:
        columns = pair_columns({"a_row": pairs.a, "b_row": pairs.b, "a_id": a_id,
                                "b_id": b_id, "angular_distance": pairs.separation_arcsec},
                               n_a, n_b)
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        # no dictionary pages: pairs rarely repeat a value, and the encoding took
        # half the write (measured: 19 → 8 ms for 80 000 pairs, smaller file)
        pq.write_table(pa.table({k: v[mine] for k, v in columns.items()}), tmp,
                       use_dictionary=False)
    cost = {"name": task.name, "n_a": int(own.sum()), "n_b": len(b), "n_pairs": int(mine.sum()),
            "n_best": int(quality.best[mine].sum()),
            "n_mutual": int(quality.mutual[mine].sum()),
            "seconds": time.perf_counter() - t0, "read_seconds": t_read,
            "kernel_seconds": t_kernel}
    write_json(Path(marker), cost)
    return cost


# SPDX-License-Identifier: BSD-3-Clause
"""The worker side of a HATS cross-match: three kinds of task, each reading its own files.

1. :func:`match_partition` — one partition of A against the B rows within its
   margin (read from B's partition and margin files, de-duplicated by id and
   cut to the margin), with the quality that depends on A alone
   (``number_of_neighbours``, ``best``); each pair is tagged with its B row's
   home partition (``b_group``) and its A partition (``a_group``).
2. :func:`assess_b_group` — all pairs of one B partition, gathered from the
   first pass's files: the quality that depends on B (``number_of_mates``,
   the mates of best matches, ``ambiguous``) and the one-to-one selection
   when A chooses first (A has at least as many rows; STILTS ``find=best``).
3. :func:`assess_a_group` — only when B chooses first: each A row keeps the
   nearest of the B rows that chose it.

Every task writes its Parquet file and then a ``.done`` marker (both renamed
into place), so a rerun skips whatever is finished.  Identifiers break ties in
separation (the in-memory engine uses row numbers; HATS rows have none).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from casuvo.sky.healpix import lonlat_to_nested, order_for_margin, pixels_near
from casuvo.storage.files import atomic_path, write_json
from casuvo.xmatch.catalogue import (
    Catalogue,
    TableSpec,
    arrow_values,
    checked_catalogue,
    wanted_columns,
)
from casuvo.xmatch.errors import XmatchError
from casuvo.xmatch.hatsplan import MatchTask
from casuvo.xmatch.kernel import KdTreeKernel, Side
from casuvo.xmatch.quality import best_per_a

__all__ = ["assess_a_group", "assess_b_group", "match_partition", "read_rows"]

#: HATS's spatial index column: the nested pixel of each row at order 29.
SPATIAL_INDEX = "_healpix_29"


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


def read_rows(files: tuple[str, ...] | list[str], spec: TableSpec, label: str,
              extra: tuple[str, ...] = ()) -> tuple[Catalogue, dict[str, np.ndarray]]:
    """The match columns of some partition files, checked; rows repeated across
    files (a partition and another's margin) kept once, by identifier."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = wanted_columns(spec)
    real, units = _columns_present(files[0], [*names, *extra])
    try:
        tables = [pq.read_table(f, columns=real) for f in files]
        table = pa.concat_tables(tables, promote_options="default")
    except Exception as exc:  # a damaged partition file: say which catalogue
        raise XmatchError(f"{label}: cannot read {', '.join(files)}: {exc}") from exc
    values = arrow_values(table, [*names, *extra])
    catalogue = checked_catalogue(spec, label, Path(files[0]), values, units, table.column_names,
                                  allow_empty=True)
    more = {name: values[name] for name in extra if name in values}
    if len(files) > 1 and len(catalogue):
        _, first = np.unique(catalogue.ids, return_index=True)
        if first.size < len(catalogue):
            first.sort()
            catalogue = _take(catalogue, first)
            more = {k: v[first] for k, v in more.items()}
    return catalogue, more


def _take(c: Catalogue, rows: np.ndarray) -> Catalogue:
    def pick(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else values[rows]
    return Catalogue(c.label, c.path, c.ids[rows], c.ra[rows], c.dec[rows], pick(c.pmra),
                     pick(c.pmdec), pick(c.ref_epoch), pick(c.epoch))


def _within_margin(task: MatchTask, b: Catalogue, margin_arcsec: float) -> np.ndarray:
    """Rows of B within the margin of the task's pixel (a superset: its ancestor's)."""
    order = min(task.region_order, order_for_margin(margin_arcsec))
    target = task.pixel >> (2 * (task.order - order))
    pix = lonlat_to_nested(b.ra, b.dec, order)
    keep = pix == target
    rows, near = pixels_near(b.ra, b.dec, order, margin_arcsec)
    keep[rows[near == target]] = True
    return np.flatnonzero(keep)


def _home_groups(b: Catalogue, spatial: np.ndarray | None,
                 bounds: tuple[int, np.ndarray, np.ndarray]) -> np.ndarray:
    """Each B row's home partition (its index among B's partitions sorted by range)."""
    depth, first, last = bounds
    if spatial is not None:
        pix = np.asarray(spatial, dtype=np.int64) >> (2 * (29 - depth))
    else:
        pix = lonlat_to_nested(b.ra, b.dec, depth)
    group = np.searchsorted(first, pix, side="right") - 1
    if (group < 0).any() or (pix > last[np.maximum(group, 0)]).any():
        raise XmatchError(f"B ({b.path}): rows outside every partition of the catalogue")
    return group.astype(np.int32)


def _write_table(path: Path, columns: dict[str, np.ndarray]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(columns), tmp)


def match_partition(task: MatchTask, a_spec: TableSpec, b_spec: TableSpec,
                    kernel: KdTreeKernel, bounds: tuple[int, np.ndarray, np.ndarray],
                    out_dir: str) -> dict:
    """First pass: one A partition's pairs (see the module notes); returns its cost."""
    t0 = time.perf_counter()
    a, _ = read_rows((task.a_file,), a_spec, "A")
    b, extra = read_rows(task.b_files, b_spec, "B", (SPATIAL_INDEX,))
    keep = _within_margin(task, b, kernel.margin_arcsec)
    b = _take(b, keep)
    spatial = extra.get(SPATIAL_INDEX)
    spatial = None if spatial is None else spatial[keep]
    t_read = time.perf_counter() - t0
    moving = kernel.epoch is not None and a.pmra is not None
    side_a = (Side(a.ra, a.dec, a.pmra, a.pmdec, a.ref_epoch) if moving
              else Side(a.ra, a.dec))
    side_b = Side(b.ra, b.dec, epoch=b.epoch if moving else None)
    pairs = kernel.match(side_a, side_b)
    a_id, b_id = a.ids[pairs.a], b.ids[pairs.b]
    sep = pairs.separation_arcsec
    n_neighbours = (np.bincount(pairs.a, minlength=len(a))[pairs.a].astype(np.int32)
                    if len(pairs) else np.zeros(0, np.int32))
    b_group = _home_groups(_take(b, pairs.b), None if spatial is None else spatial[pairs.b],
                           bounds)
    t_kernel = time.perf_counter() - t0 - t_read
    out = Path(out_dir)
    _write_table(out / f"{task.name}.parquet", {
        "a_id": a_id, "b_id": b_id, "separation": sep,
        "number_of_neighbours": n_neighbours, "best": best_per_a(a_id, b_id, sep),
        "b_group": b_group, "a_group": np.full(sep.size, task.index, dtype=np.int32)})
    cost = {"name": task.name, "n_a": len(a), "n_b": len(b), "n_pairs": int(sep.size),
            "seconds": time.perf_counter() - t0, "read_seconds": t_read,
            "kernel_seconds": t_kernel, "b_groups": sorted(set(b_group.tolist()))}
    write_json(out / f"{task.name}.done", cost)
    return cost


def _counts_of(values: np.ndarray) -> np.ndarray:
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return counts[inverse]


def _nearest_per(key: np.ndarray, other: np.ndarray, sep: np.ndarray,
                 among: np.ndarray) -> np.ndarray:
    """Mask: for each ``key`` value, its nearest pair among ``among`` (ties: lower ``other``)."""
    chosen = np.zeros(key.size, dtype=bool)
    rows = np.flatnonzero(among)
    if rows.size == 0:
        return chosen
    order = rows[np.lexsort((other[rows], sep[rows], key[rows]))]
    sorted_key = key[order]
    first = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
    chosen[order[first]] = True
    return chosen


def _read_group(files: list[str], column: str, group: int) -> object:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa.concat_tables([pq.read_table(f, filters=[(column, "==", group)]) for f in files])


def assess_b_group(group: int, files: list[str], a_first: bool, target: str,
                   marker: str) -> dict:
    """Second pass: the quality of all pairs of one B partition (see the module notes)."""
    t0 = time.perf_counter()
    table = _read_group(files, "b_group", group)
    a_id = table.column("a_id").to_numpy()
    b_id = table.column("b_id").to_numpy()
    sep = table.column("separation").to_numpy()
    best = table.column("best").to_numpy(zero_copy_only=False)
    n_neighbours = table.column("number_of_neighbours").to_numpy()
    n_mates = (_counts_of(b_id) - 1).astype(np.int32)
    best_mates = np.full(sep.size, -1, dtype=np.int32)
    if best.any():
        best_mates[best] = _counts_of(b_id[best]) - 1
    if a_first:
        chosen = _nearest_per(b_id, a_id, sep, best)
    else:
        chosen = _nearest_per(b_id, a_id, sep, np.ones(sep.size, dtype=bool))
    columns = {
        "a_id": a_id, "b_id": b_id, "angular_distance": sep,
        "number_of_neighbours": n_neighbours, "number_of_mates": n_mates, "best": best,
        "best_mates": best_mates, "mutual" if a_first else "b_choice": chosen,
        "ambiguous": (n_neighbours > 1) | (n_mates > 0)}
    a_group = table.column("a_group").to_numpy()
    if not a_first:
        columns["a_group"] = a_group
    order = np.lexsort((b_id, sep, a_id))
    _write_table(Path(target), {k: v[order] for k, v in columns.items()})
    cost = {"group": group, "n_pairs": int(sep.size), "n_best": int(best.sum()),
            "n_mutual": int(chosen.sum()) if a_first else None,
            "seconds": time.perf_counter() - t0,
            "a_groups": sorted(set(a_group.tolist()))}
    write_json(Path(marker), cost)
    return cost


def assess_a_group(group: int, files: list[str], target: str, marker: str) -> dict:
    """Third pass (B chooses first): each A row keeps the nearest B row that chose it."""
    t0 = time.perf_counter()
    table = _read_group(files, "a_group", group)
    a_id = table.column("a_id").to_numpy()
    b_id = table.column("b_id").to_numpy()
    sep = table.column("angular_distance").to_numpy()
    chosen = table.column("b_choice").to_numpy(zero_copy_only=False)
    mutual = _nearest_per(a_id, b_id, sep, chosen)
    columns = {column: table.column(column).to_numpy(zero_copy_only=False)
               for column in table.column_names if column not in ("b_choice", "a_group")}
    columns["mutual"] = mutual
    order = np.lexsort((columns["b_id"], sep, a_id))
    columns = {k: v[order] for k, v in columns.items()}
    _write_table(Path(target), columns)
    cost = {"group": group, "n_pairs": int(sep.size), "n_best": int(columns["best"].sum()),
            "n_mutual": int(mutual.sum()), "seconds": time.perf_counter() - t0}
    write_json(Path(marker), cost)
    return cost

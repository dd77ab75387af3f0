# SPDX-License-Identifier: BSD-3-Clause
"""The partition plan of a cross-match of two HATS catalogues (driver side, metadata only).

The driver reads no rows: only each catalogue's partition list, its margin
catalogue's threshold and pixels, its row count and the Parquet footer
statistics of the proper-motion and epoch columns (for the motion bound).
Each task then reads its own partitions on its worker
(:mod:`casuvo.xmatch.hatstasks`).

One task per partition ``P`` of A (every A row is in exactly one, so every pair
is found once).  Its B rows are all B rows within the margin of ``P``:

* where B's partitions cover ``P`` completely and B has a margin catalogue at
  least as wide as the margin: the B partitions overlapping ``P`` and their
  margins (a point outside ``P`` near it is near one of those partitions);
* otherwise (no margin catalogue, too thin a one, or a hole in B's coverage
  inside ``P``, where the nearby B rows belong to partitions not touching
  ``P``): the B partitions overlapping ``P`` *or its eight neighbours*, at an
  order whose pixels are wider than the margin.

Reading more B rows than needed never changes the result (the kernel keeps
only pairs within the radius); reading fewer would, so both rules err on the
side of more.  LSDB's ``crossmatch`` uses only the first rule and so misses
pairs near holes in the right catalogue's coverage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from casuvo.sky.healpix import nested_neighbours, order_for_margin
from casuvo.xmatch.errors import XmatchError

__all__ = ["HatsCatalogue", "MatchTask", "is_hats", "open_hats", "plan_tasks"]


@dataclass(frozen=True)
class HatsCatalogue:
    """A HATS catalogue as the plan needs it: where its partitions are, and its margin."""

    path: Path
    """The catalogue's own directory (holding ``dataset/``)."""
    orders: np.ndarray
    pixels: np.ndarray
    total_rows: int
    margin_path: Path | None = None
    margin_arcsec: float = 0.0
    margin_pixels: frozenset[tuple[int, int]] = frozenset()

    def file(self, order: int, pixel: int) -> str:
        """The Parquet file of one partition (HATS layout)."""
        return str(partition_file(self.path, order, pixel))

    def margin_file(self, order: int, pixel: int) -> str | None:
        """The margin catalogue's file for the partition (None: no margin rows there)."""
        if self.margin_path is None or (order, pixel) not in self.margin_pixels:
            return None
        return str(partition_file(self.margin_path, order, pixel))

    @property
    def max_order(self) -> int:
        return int(self.orders.max())


def partition_file(catalogue: Path, order: int, pixel: int) -> Path:
    """``<catalogue>/dataset/Norder=k/Dir=d/Npix=p.parquet`` (the HATS layout)."""
    from hats.io import paths
    from hats.pixel_math import HealpixPixel

    return Path(str(paths.pixel_catalog_file(catalogue, HealpixPixel(order, pixel))))


def is_hats(path: Path) -> bool:
    """Whether ``path`` is a HATS catalogue or collection (a directory with properties)."""
    path = Path(path)
    return path.is_dir() and ((path / "hats.properties").is_file()
                              or (path / "collection.properties").is_file()
                              or (path / "properties").is_file())


def _pixel_arrays(catalogue: object) -> tuple[np.ndarray, np.ndarray]:
    pixels = catalogue.get_healpix_pixels()
    return (np.array([p.order for p in pixels], dtype=np.int64),
            np.array([p.pixel for p in pixels], dtype=np.int64))


def open_hats(path: Path, label: str) -> HatsCatalogue:
    """Open a HATS catalogue, or a collection (its main catalogue and default margin)."""
    import hats
    from hats.catalog import CatalogCollection

    path = Path(path)
    where = f"{label} ({path})"
    if not is_hats(path):
        raise XmatchError(f"{where}: not a HATS catalogue or collection")
    try:
        opened = hats.read_hats(path)
    except Exception as exc:  # a damaged or foreign directory: say which one
        raise XmatchError(f"{where}: cannot be read as HATS: {exc}") from exc
    margin = None
    if isinstance(opened, CatalogCollection):
        main = opened.main_catalog
        if opened.default_margin_catalog_dir is not None:
            margin = hats.read_hats(opened.default_margin_catalog_dir)
    else:
        main = opened
    if str(main.catalog_info.catalog_type) not in ("object", "source", "CatalogType.OBJECT",
                                                   "CatalogType.SOURCE"):
        raise XmatchError(f"{where}: a {main.catalog_info.catalog_type} catalogue, "
                          "not an object or source catalogue")
    orders, pixels = _pixel_arrays(main)
    if orders.size == 0:
        raise XmatchError(f"{where}: the catalogue has no partitions")
    kwargs = {}
    if margin is not None:
        m_orders, m_pixels = _pixel_arrays(margin)
        kwargs = {"margin_path": Path(str(margin.catalog_base_dir)),
                  "margin_arcsec": float(margin.catalog_info.margin_threshold),
                  "margin_pixels": frozenset(zip(m_orders.tolist(), m_pixels.tolist(),
                                                 strict=True))}
    return HatsCatalogue(Path(str(main.catalog_base_dir)), orders, pixels,
                         int(main.catalog_info.total_rows or 0), **kwargs)


def column_range(catalogue: HatsCatalogue, column: str, label: str) -> tuple[float, float]:
    """(min, max) of a numeric column from the Parquet footers, without reading rows."""
    import hats

    stats = hats.read_hats(catalogue.path).aggregate_column_statistics(
        include_columns=[column], only_numeric_columns=True)
    rows = [name for name in stats.index if name.lower() == column.lower()]
    if not rows:
        raise XmatchError(f"{label} ({catalogue.path}): no statistics for column {column!r} "
                          "(is it a numeric column of the catalogue?)")
    row = stats.loc[rows[0]]
    low, high = float(row["min_value"]), float(row["max_value"])
    if not (np.isfinite(low) and np.isfinite(high)):
        raise XmatchError(f"{label} ({catalogue.path}): column {column!r} has no finite "
                          "values")
    return low, high


@dataclass(frozen=True)
class MatchTask:
    """One partition of A and the B files whose rows may lie within its margin."""

    index: int
    order: int
    pixel: int
    a_file: str
    b_files: tuple[str, ...]
    region_order: int
    """B rows are kept when within the margin of ``pixel``'s ancestor at this order."""

    @property
    def name(self) -> str:
        return f"order{self.order}_pix{self.pixel}"


def _overlapping(b: HatsCatalogue, orders: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Indices of B's partitions overlapping any of the pixels (all at one order each)."""
    hits = np.zeros(b.orders.size, dtype=bool)
    for order, pixel in zip(orders.tolist(), pixels.tolist(), strict=True):
        coarse = b.orders <= order
        shift_up = 2 * (order - b.orders[coarse])
        hits[np.flatnonzero(coarse)[(pixel >> shift_up) == b.pixels[coarse]]] = True
        fine = ~coarse
        shift_down = 2 * (b.orders[fine] - order)
        hits[np.flatnonzero(fine)[(b.pixels[fine] >> shift_down) == pixel]] = True
    return np.flatnonzero(hits)


def _covered(b: HatsCatalogue, order: int, pixel: int, hits: np.ndarray) -> bool:
    """Whether B's partitions among ``hits`` cover the whole pixel."""
    if (b.orders[hits] <= order).any():
        return True
    finer = b.orders[hits] - order
    return bool(np.isclose(np.sum(4.0 ** -finer.astype(np.float64)), 1.0))


def plan_tasks(a: HatsCatalogue, b: HatsCatalogue, margin_arcsec: float) -> list[MatchTask]:
    """One task per A partition that has B rows within ``margin_arcsec`` (see module notes)."""
    wide_order = order_for_margin(margin_arcsec)
    tasks = []
    for order, pixel in zip(a.orders.tolist(), a.pixels.tolist(), strict=True):
        own = _overlapping(b, np.array([order]), np.array([pixel]))
        use_margins = (b.margin_path is not None and b.margin_arcsec >= margin_arcsec
                       and own.size > 0 and _covered(b, order, pixel, own))
        if use_margins:
            files = []
            for k in own.tolist():
                files.append(b.file(int(b.orders[k]), int(b.pixels[k])))
                margin = b.margin_file(int(b.orders[k]), int(b.pixels[k]))
                if margin is not None:
                    files.append(margin)
            region = order
        else:
            region = min(order, wide_order)
            anc = pixel >> (2 * (order - region))
            near = nested_neighbours(np.array([anc]), region)[0]
            around = np.r_[anc, near[near >= 0]]
            hits = _overlapping(b, np.full(around.size, region), around)
            files = [b.file(int(b.orders[k]), int(b.pixels[k])) for k in hits.tolist()]
        if files:
            tasks.append(MatchTask(len(tasks), order, pixel, a.file(order, pixel),
                                   tuple(files), region))
    return tasks


def b_partition_bounds(b: HatsCatalogue) -> tuple[int, np.ndarray, np.ndarray]:
    """(order, first, last) of B's partitions as nested ranges at B's deepest order.

    A B row's home partition is the one whose range holds its pixel at that order
    (HATS partitions do not overlap), which is how pairs are grouped for the
    second pass whatever file the row was read from (its own or a margin).
    """
    depth = b.max_order
    shift = 2 * (depth - b.orders)
    first = b.pixels << shift
    last = ((b.pixels + 1) << shift) - 1
    order = np.argsort(first)
    return depth, first[order], last[order]


def plan_json(a: HatsCatalogue, b: HatsCatalogue) -> dict:
    """What identifies the inputs in a run's plan (a changed input restarts the run)."""
    def ident(c: HatsCatalogue) -> dict:
        stat = (c.path / "partition_info.csv")
        return {"path": str(c.path.resolve()), "rows": c.total_rows,
                "partitions": int(c.orders.size),
                "mtime_ns": stat.stat().st_mtime_ns if stat.exists() else None,
                "margin": None if c.margin_path is None else str(c.margin_path.resolve()),
                "margin_arcsec": c.margin_arcsec}
    return json.loads(json.dumps({"a": ident(a), "b": ident(b)}))

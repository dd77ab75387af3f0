# SPDX-License-Identifier: BSD-3-Clause
"""The partition plan of a cross-match of two HATS catalogues (driver side, metadata only).

The driver reads no rows: only each catalogue's partition list, its margin
catalogue's threshold and pixels, its row count and the Parquet footer
statistics of the proper-motion and epoch columns (for the motion bound).
Each task then reads its own partitions on its worker
(:mod:`casuvo.xmatch.hatstasks`).

One task per partition ``P`` of A (every A row is in exactly one, so every pair
is found once).  With ``d`` the largest distance between the catalogue
positions of a matched pair (the radius, plus the proper motion), the task
reads the A rows within ``2d`` of ``P`` and the B rows within ``3d``: enough to
know, for each of ``P``'s pairs, every A row that shares its B row and every
B row of those A rows, hence the match quality and the one-to-one choice,
without a second pass over other tasks' results.  The rows of a catalogue
within a margin ``m`` of ``P`` are found:

* where the catalogue's partitions cover ``P`` completely and it has a margin
  catalogue at least ``m`` wide: in the partitions overlapping ``P`` and their
  margins (a point outside ``P`` near it is near one of those partitions);
* otherwise (no margin catalogue, too thin a one, or a hole in the coverage
  inside ``P``, where the nearby rows belong to partitions not touching
  ``P``): in the partitions overlapping ``P`` *or its eight neighbours*, at an
  order whose pixels are wider than the margin.

Reading more rows than needed never changes the result; reading fewer would,
so both rules err on the side of more.  LSDB's ``crossmatch`` uses only the
first rule and so misses pairs near holes in the right catalogue's coverage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from casuvo.sky.healpix import nested_neighbours, order_for_margin
from casuvo.xmatch.errors import XmatchError

__all__ = ["HatsCatalogue", "MatchTask", "SourceFile", "is_hats", "open_hats", "plan_tasks"]


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
    spatial_column: str = "_healpix_29"
    """HATS's spatial index: each row's nested pixel at ``spatial_order``."""
    spatial_order: int = 29

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
    info = main.catalog_info
    return HatsCatalogue(Path(str(main.catalog_base_dir)), orders, pixels,
                         int(info.total_rows or 0),
                         spatial_column=info.healpix_column or "_healpix_29",
                         spatial_order=int(info.healpix_order or 29), **kwargs)


def column_ranges(catalogue: HatsCatalogue, columns: list[str], label: str
                  ) -> dict[str, tuple[float, float]]:
    """(min, max) of numeric columns from the Parquet footers (one read), no rows read."""
    import hats

    stats = hats.read_hats(catalogue.path).aggregate_column_statistics(
        include_columns=columns, only_numeric_columns=True)
    by_name = {str(name).lower(): name for name in stats.index}
    ranges = {}
    for column in columns:
        if column.lower() not in by_name:
            raise XmatchError(f"{label} ({catalogue.path}): no statistics for column "
                              f"{column!r} (is it a numeric column of the catalogue?)")
        row = stats.loc[by_name[column.lower()]]
        low, high = float(row["min_value"]), float(row["max_value"])
        if not (np.isfinite(low) and np.isfinite(high)):
            raise XmatchError(f"{label} ({catalogue.path}): column {column!r} has no finite "
                              "values")
        ranges[column] = (low, high)
    return ranges


@dataclass(frozen=True)
class SourceFile:
    """A partition file a task reads, and whether all of its rows are needed.

    ``inside``: the file is a partition within the task's pixel (all its rows are
    wanted); otherwise its rows are cut to the task's margin.  ``margin``: a file
    of a margin catalogue (its rows may also be in another file the task reads).
    """

    path: str
    order: int
    pixel: int
    inside: bool
    margin: bool = False


@dataclass(frozen=True)
class MatchTask:
    """One partition of A, the A rows within ``a_margin`` of it and the B rows within
    ``b_margin`` (files to read; rows cut to the margins on the worker)."""

    index: int
    order: int
    pixel: int
    a_files: tuple[SourceFile, ...]
    b_files: tuple[SourceFile, ...]
    a_spatial: str = "_healpix_29"
    a_spatial_order: int = 29
    b_spatial: str = "_healpix_29"
    b_spatial_order: int = 29

    @property
    def name(self) -> str:
        return f"order{self.order}_pix{self.pixel}"


def _overlapping(c: HatsCatalogue, orders: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Indices of the partitions overlapping any of the pixels (all at one order each)."""
    hits = np.zeros(c.orders.size, dtype=bool)
    for order, pixel in zip(orders.tolist(), pixels.tolist(), strict=True):
        coarse = c.orders <= order
        shift_up = 2 * (order - c.orders[coarse])
        hits[np.flatnonzero(coarse)[(pixel >> shift_up) == c.pixels[coarse]]] = True
        fine = ~coarse
        shift_down = 2 * (c.orders[fine] - order)
        hits[np.flatnonzero(fine)[(c.pixels[fine] >> shift_down) == pixel]] = True
    return np.flatnonzero(hits)


def _covered(c: HatsCatalogue, order: int, pixel: int, hits: np.ndarray) -> bool:
    """Whether the partitions among ``hits`` cover the whole pixel."""
    if (c.orders[hits] <= order).any():
        return True
    finer = c.orders[hits] - order
    return bool(np.isclose(np.sum(4.0 ** -finer.astype(np.float64)), 1.0))


def _inside(c: HatsCatalogue, k: int, order: int, pixel: int) -> bool:
    """Whether partition ``k`` lies within the pixel (so all its rows are wanted)."""
    k_order = int(c.orders[k])
    return k_order >= order and int(c.pixels[k]) >> (2 * (k_order - order)) == pixel


def _files_near(c: HatsCatalogue, order: int, pixel: int, margin_arcsec: float
                ) -> tuple[SourceFile, ...]:
    """Files holding every row of ``c`` within ``margin_arcsec`` of the pixel (module notes)."""
    own = _overlapping(c, np.array([order]), np.array([pixel]))
    if (c.margin_path is not None and c.margin_arcsec >= margin_arcsec and own.size
            and _covered(c, order, pixel, own)):
        files = []
        for k in own.tolist():
            k_order, k_pixel = int(c.orders[k]), int(c.pixels[k])
            files.append(SourceFile(c.file(k_order, k_pixel), k_order, k_pixel,
                                    _inside(c, k, order, pixel)))
            margin = c.margin_file(k_order, k_pixel)
            if margin is not None:
                files.append(SourceFile(margin, k_order, k_pixel, inside=False, margin=True))
        return tuple(files)
    region = min(order, order_for_margin(margin_arcsec))
    anc = pixel >> (2 * (order - region))
    near = nested_neighbours(np.array([anc]), region)[0]
    around = np.r_[anc, near[near >= 0]]
    hits = _overlapping(c, np.full(around.size, region), around)
    return tuple(SourceFile(c.file(int(c.orders[k]), int(c.pixels[k])), int(c.orders[k]),
                            int(c.pixels[k]), _inside(c, k, order, pixel))
                 for k in hits.tolist())


def plan_tasks(a: HatsCatalogue, b: HatsCatalogue, a_margin: float,
               b_margin: float) -> list[MatchTask]:
    """One task per A partition with B rows near it: its own A file first, then A's rows
    within ``a_margin`` and B's within ``b_margin`` of it (see the module notes)."""
    tasks = []
    for order, pixel in zip(a.orders.tolist(), a.pixels.tolist(), strict=True):
        b_files = _files_near(b, order, pixel, b_margin)
        if not b_files:
            continue
        own = a.file(order, pixel)
        others = tuple(f for f in _files_near(a, order, pixel, a_margin) if f.path != own)
        tasks.append(MatchTask(len(tasks), order, pixel,
                               (SourceFile(own, order, pixel, inside=True), *others), b_files,
                               a.spatial_column, a.spatial_order, b.spatial_column,
                               b.spatial_order))
    return tasks


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

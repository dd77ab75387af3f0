# SPDX-License-Identifier: BSD-3-Clause
"""The two input tables of a cross-match: which columns, read and checked.

Only the columns the match needs are read (positions, identifiers, proper
motions, epochs), from a FITS binary table (memory-mapped) or a Parquet file.
Everything that would make the result wrong rather than slow is refused here,
before any output exists: a missing file or column, an empty table, a row
without a position, a declination outside ±90°, identifiers that are not
integers.  Null proper motions are allowed (those sources do not move); a
null per-row epoch on the B side means "the catalogue's median epoch".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from casuvo.xmatch.errors import XmatchError
from casuvo.xmatch.motion import jyear_from_mjd

__all__ = ["Catalogue", "TableSpec", "arrow_values", "checked_catalogue", "load_catalogue",
           "wanted_columns"]

log = logging.getLogger(__name__)

_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class TableSpec:
    """Where a catalogue is and which of its columns the match uses.

    ``id``: integer identifiers written to the outputs (None: the row number).
    ``pmra``/``pmdec``/``ref_epoch``: proper motion (mas/yr, μα* = μα cos δ) and
    its reference epoch (a column or a number, Julian years), for the side that
    moves.  ``epoch``: a column of per-row epochs (MJD or Julian years, told
    apart by unit, name or value), for the side the other is moved to.
    """

    path: Path
    ra: str = "ra"
    dec: str = "dec"
    id: str | None = None
    pmra: str | None = None
    pmdec: str | None = None
    ref_epoch: str | float | None = None
    epoch: str | None = None

    def as_dict(self) -> dict:
        return {"path": str(self.path), "ra": self.ra, "dec": self.dec, "id": self.id,
                "pmra": self.pmra, "pmdec": self.pmdec, "ref_epoch": self.ref_epoch,
                "epoch": self.epoch}


@dataclass(frozen=True)
class Catalogue:
    """The checked columns of one input table (float64 degrees, int64 ids, Julian years)."""

    label: str
    path: Path
    ids: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    pmra: np.ndarray | None = None
    pmdec: np.ndarray | None = None
    ref_epoch: np.ndarray | None = None
    epoch: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.ra.size)


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_FITS_SUFFIXES):
        return "fits"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    raise XmatchError(f"{path}: not a FITS (.fits, .fit) or Parquet (.parquet) table")


def _read_fits(path: Path, names: list[str]) -> tuple[dict, dict, list[str]]:
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        hdu = next((h for h in hdul if isinstance(h, fits.BinTableHDU)), None)
        if hdu is None:
            raise XmatchError(f"{path}: no binary table extension")
        available = list(hdu.columns.names)
        lower = {n.lower(): n for n in available}
        values, units = {}, {}
        for name in names:
            real = lower.get(name.lower())
            if real is None:
                continue
            column = hdu.columns[real]
            data = np.array(hdu.data.field(real)) if hdu.data is not None else np.empty(0)
            data = data.astype(data.dtype.newbyteorder("="))
            if column.null is not None and data.dtype.kind in "iu":
                nulls = data == column.null
                if nulls.any():
                    data = np.where(nulls, np.nan, data.astype(np.float64))
            values[name], units[name] = data, (column.unit or "")
    return values, units, available


def arrow_values(table: object, names: list[str]) -> dict[str, np.ndarray]:
    """The columns ``names`` of an Arrow table (matched without case), nulls as NaN."""
    lower = {n.lower(): n for n in table.column_names}
    values = {}
    for name in names:
        real = lower.get(name.lower())
        if real is None:
            continue
        column = table.column(real)
        data = column.to_numpy()
        if column.null_count and data.dtype.kind not in "f":
            data = np.asarray(column.cast("float64").fill_null(np.nan).to_numpy())
        values[name] = data
    return values


def _read_parquet(path: Path, names: list[str]) -> tuple[dict, dict, list[str]]:
    import pyarrow.parquet as pq

    available = list(pq.read_schema(path).names)
    lower = {n.lower(): n for n in available}
    wanted = sorted({lower[n.lower()] for n in names if n.lower() in lower})
    values = arrow_values(pq.read_table(path, columns=wanted), names)
    return values, dict.fromkeys(values, ""), available


def _epochs_in_years(name: str, values: np.ndarray, unit: str, where: str) -> np.ndarray:
    """Per-row epochs as Julian years, from MJD or years (unit, then name, then values)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    unit = unit.strip().lower()
    if unit in ("d", "day", "days") or "mjd" in name.lower():
        return jyear_from_mjd(values)
    if unit in ("yr", "year", "a", "jyear") or (finite.size and
                                               np.all((finite > 1000) & (finite < 3000))):
        return values
    if finite.size and np.all(finite > 10_000):
        return jyear_from_mjd(values)
    raise XmatchError(f"{where}: cannot tell whether epoch column {name!r} holds MJD or "
                      "Julian years (give it a unit, 'd' or 'yr')")


def load_catalogue(spec: TableSpec, label: str) -> Catalogue:
    """Read and check the columns ``spec`` names; :class:`XmatchError` says what is wrong."""
    path = Path(spec.path)
    where = f"{label} ({path})"
    if not path.is_file():
        raise XmatchError(f"{where}: no such file")
    names = wanted_columns(spec)
    reader = _read_fits if _kind(path) == "fits" else _read_parquet
    try:
        values, units, available = reader(path, names)
    except XmatchError:
        raise
    except Exception as exc:  # a damaged or foreign file: say which one
        raise XmatchError(f"{where}: cannot be read as a table: {exc}") from exc
    catalogue = checked_catalogue(spec, label, path, values, units, available)
    log.info("%s: %d rows", where, len(catalogue))
    return catalogue


def wanted_columns(spec: TableSpec) -> list[str]:
    """The columns of ``spec``'s table that a match reads."""
    names = [spec.ra, spec.dec]
    for name in (spec.id, spec.pmra, spec.pmdec, spec.epoch):
        if name is not None:
            names.append(name)
    if isinstance(spec.ref_epoch, str):
        names.append(spec.ref_epoch)
    return names


def checked_catalogue(spec: TableSpec, label: str, path: Path, values: dict,
                      units: dict, available: list[str], *,
                      allow_empty: bool = False) -> Catalogue:
    """The columns read for ``spec``, checked (see the module notes) and converted.

    ``allow_empty``: an empty table is a valid partition of a larger catalogue.
    """
    where = f"{label} ({path})"
    names = wanted_columns(spec)
    missing = [n for n in dict.fromkeys(names) if n not in values]
    if missing:
        raise XmatchError(f"{where}: no column {', '.join(map(repr, missing))} "
                          f"(columns: {', '.join(available)})")
    ra = np.asarray(values[spec.ra], dtype=np.float64)
    dec = np.asarray(values[spec.dec], dtype=np.float64)
    if ra.size == 0 and not allow_empty:
        raise XmatchError(f"{where}: the table is empty")
    bad = ~(np.isfinite(ra) & np.isfinite(dec))
    if bad.any():
        raise XmatchError(f"{where}: {int(bad.sum())} rows have no position (NaN or null "
                          f"{spec.ra}/{spec.dec}), the first is row {int(np.argmax(bad))}")
    outside = np.abs(dec) > 90.0
    if outside.any():
        raise XmatchError(f"{where}: {int(outside.sum())} rows have |{spec.dec}| > 90°, "
                          f"the first is row {int(np.argmax(outside))}")
    if spec.id is None:
        ids = np.arange(ra.size, dtype=np.int64)
    else:
        raw = values[spec.id]
        if raw.dtype.kind not in "iu":
            raise XmatchError(f"{where}: identifier column {spec.id!r} is not an integer "
                              "column (or has nulls)")
        ids = raw.astype(np.int64)
    pmra = pmdec = ref_epoch = epoch = None
    if spec.pmra is not None or spec.pmdec is not None:
        if spec.pmra is None or spec.pmdec is None or spec.ref_epoch is None:
            raise XmatchError(f"{where}: proper motions need pmra, pmdec and ref_epoch")
        pmra = np.asarray(values[spec.pmra], dtype=np.float64)
        pmdec = np.asarray(values[spec.pmdec], dtype=np.float64)
        if isinstance(spec.ref_epoch, str):
            ref_epoch = np.asarray(values[spec.ref_epoch], dtype=np.float64)
        else:
            ref_epoch = np.full(ra.size, float(spec.ref_epoch))
    if spec.epoch is not None:
        epoch = _epochs_in_years(spec.epoch, values[spec.epoch], units.get(spec.epoch, ""),
                                 where)
    return Catalogue(label, path, ids, ra % 360.0, dec, pmra, pmdec, ref_epoch, epoch)

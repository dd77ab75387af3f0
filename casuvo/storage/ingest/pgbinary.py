# SPDX-License-Identifier: BSD-3-Clause
"""Columnar encoding of PostgreSQL's binary COPY format with numpy.

psycopg's ``Copy.write_row`` converts row by row in Python, 2.5× slower than a
streamed binary COPY (reference/performance.md); catalogues arrive as columns,
so we lay out whole chunks of rows at once: each field is a 4-byte big-endian
length (-1 for NULL) followed by its big-endian payload, each row starts with
its 16-bit field count.  The result is fed to ``cursor.copy(...).write``.
Floating-point NaN becomes NULL, as in the Gaia archive, unless the caller
sends NaN as a value (``nan_is_null=False``) and turns it into NULL in SQL:
then every numeric field has its full width, rows have one fixed layout and
encoding is a strided copy per column.  ``bytea`` columns take fixed-width byte
strings whole (padding included), for the same reason.  Format reference:
https://www.postgresql.org/docs/15/sql-copy.html ("Binary Format").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["HEADER", "ISO_TYPES", "PG_DTYPES", "TRAILER", "CopyColumn", "encode_rows",
           "iter_chunks"]

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)

#: Big-endian numpy dtype of each fixed-width PostgreSQL type casuvo copies.
PG_DTYPES: dict[str, str] = {
    "smallint": ">i2",
    "integer": ">i4",
    "bigint": ">i8",
    "real": ">f4",
    "double precision": ">f8",
    "boolean": "|u1",
}
TEXT_TYPES = frozenset({"text", "character varying", "unicode"})
#: Types sent as the raw bytes of a fixed-width numpy ``S`` array, padding included.
BYTES_TYPES = frozenset({"bytea"})
#: Types that arrive as ISO text and are converted in SQL (the ingest's staging table).
ISO_TYPES = frozenset({"date"})


@dataclass(frozen=True)
class CopyColumn:
    """A column of the target table: its name and PostgreSQL type name."""

    name: str
    pg_type: str

    def __post_init__(self) -> None:
        if (self.pg_type not in PG_DTYPES and self.pg_type not in TEXT_TYPES
                and self.pg_type not in BYTES_TYPES and self.pg_type not in ISO_TYPES):
            raise ValueError(f"column {self.name}: no binary encoding for {self.pg_type!r}")


def _payload(col: CopyColumn, values: np.ndarray,
             nan_is_null: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(values in their big-endian wire dtype, payload length per row; -1 for NULL)."""
    n = len(values)
    if col.pg_type in BYTES_TYPES:
        if values.dtype.kind != "S":
            values = np.char.encode(np.asarray(values, dtype=str), "utf-8")
        if values.dtype.itemsize == 0:
            values = values.astype("S1")
        return values, np.full(n, values.dtype.itemsize, np.int64)
    if col.pg_type in TEXT_TYPES:
        if values.dtype.kind != "S":
            values = np.char.encode(np.asarray(values, dtype=str), "utf-8")
        if values.dtype.itemsize == 0:
            values = values.astype("S1")
        return values, np.char.str_len(values).astype(np.int64)
    dtype = np.dtype(PG_DTYPES[col.pg_type])
    mask = np.ma.getmaskarray(values) if np.ma.isMaskedArray(values) else np.zeros(n, bool)
    values = np.asarray(np.ma.getdata(values))
    if values.dtype.kind == "f" and (nan_is_null or dtype.kind != "f"):
        mask = mask | np.isnan(values)
        if dtype.kind != "f" and mask.any():
            raise ValueError(f"column {col.name}: NaN in an integer column")
    return values.astype(dtype, copy=False), np.where(mask, -1, dtype.itemsize)


def encode_rows(columns: Sequence[CopyColumn], arrays: Mapping[str, np.ndarray], *,
                nan_is_null: bool = True) -> bytes:
    """Encode equal-length column arrays as binary COPY tuples (no header/trailer).

    Rows are first laid out at their widest in a numpy structured array (the
    field count, then per column a length word and a full-width big-endian
    value), filled one whole column at a time; the value bytes of NULLs and
    the padding of short strings are then dropped with one boolean mask.
    """
    n = len(arrays[columns[0].name]) if columns else 0
    payloads = []
    for col in columns:
        values, lengths = _payload(col, arrays[col.name], nan_is_null)
        if len(values) != n:
            raise ValueError(f"column {col.name} has {len(values)} rows, expected {n}")
        payloads.append((values, lengths))
    dtype = np.dtype([("count", ">i2")] + [
        item for i, (values, _) in enumerate(payloads)
        for item in ((f"len{i}", ">i4"), (f"val{i}", values.dtype))])
    rows = np.empty(n, dtype)
    rows["count"] = len(columns)
    trim = []
    for i, (values, lengths) in enumerate(payloads):
        rows[f"len{i}"] = lengths
        rows[f"val{i}"] = values
        width = values.dtype.itemsize
        if not (lengths == width).all():
            trim.append((dtype.fields[f"val{i}"][1], width, lengths))
    if not trim:
        return rows.tobytes()
    keep = np.ones((n, dtype.itemsize), bool)
    for offset, width, lengths in trim:
        keep[:, offset:offset + width] = np.arange(width) < np.maximum(lengths, 0)[:, None]
    return rows.view(np.uint8).reshape(n, dtype.itemsize)[keep].tobytes()


def iter_chunks(columns: Sequence[CopyColumn], arrays: Mapping[str, np.ndarray],
                chunk_rows: int = 100_000, *, nan_is_null: bool = True) -> Iterator[bytes]:
    """Encoded tuples in chunks of ``chunk_rows``, bounding memory for big files."""
    n = len(arrays[columns[0].name]) if columns else 0
    for start in range(0, n, chunk_rows):
        part = {c.name: arrays[c.name][start:start + chunk_rows] for c in columns}
        yield encode_rows(columns, part, nan_is_null=nan_is_null)

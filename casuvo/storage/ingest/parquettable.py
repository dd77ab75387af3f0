# SPDX-License-Identifier: BSD-3-Clause
"""Reading catalogue files in Parquet for ingestion, as :mod:`.fitstable` reads FITS.

Parquet is what partitioned products arrive in: a HATS catalogue's partitions,
the HATS cross-match engine's pairs (one file per partition).  Each file is
read whole with pyarrow and handed to the binary COPY encoder as numpy
columns: integers with nulls as masked arrays (NULL), floats with NaN for
null (NULL in the table, as for FITS), strings as UTF-8 bytes (a null one as
empty: FITS has no null string, and the table gets the same).  A file
pyarrow cannot read, or one without a column the table needs, is a
:class:`CatalogueFileError` naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from casuvo.storage.ingest.fitstable import CatalogueFileError

__all__ = ["column_names", "read_rows"]


def column_names(path: Path) -> list[str]:
    """Column names of ``path`` (reads the footer only)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (OSError, pa.ArrowException) as exc:
        raise CatalogueFileError(f"{path}: not a readable Parquet file ({exc})") from exc


def _numpy(column: object) -> np.ndarray:
    """One Arrow column as numpy: nulls masked (integers), NaN (floats), bytes (strings)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.char.encode(np.asarray(column.fill_null("").to_pylist(), dtype=str),
                              "utf-8")
    if pa.types.is_boolean(kind):
        column = pc.cast(column, pa.uint8())
    if column.null_count == 0:
        return column.to_numpy()
    if pa.types.is_floating(kind):
        return column.fill_null(float("nan")).to_numpy()
    mask = column.is_null().to_numpy(zero_copy_only=False)
    return np.ma.MaskedArray(column.fill_null(0).to_numpy(), mask=mask)


def read_rows(path: Path, names: Sequence[str],
              order_by: str | None = None) -> dict[str, np.ndarray]:
    """The named columns of ``path`` (case-insensitive) for binary COPY, sorted on ``order_by``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    exact = {n.lower(): n for n in column_names(path)}
    missing = [n for n in names if n.lower() not in exact]
    if missing:
        raise CatalogueFileError(f"{path}: missing column(s) {', '.join(missing)}")
    try:
        table = pq.read_table(path, columns=[exact[n.lower()] for n in names])
    except (OSError, pa.ArrowException) as exc:
        raise CatalogueFileError(f"{path}: not a readable Parquet file ({exc})") from exc
    out = {name: _numpy(table.column(exact[name.lower()]).combine_chunks())
           for name in names}
    if order_by:
        order = np.argsort(np.ma.getdata(out[order_by]), kind="stable")
        out = {k: v[order] for k, v in out.items()}
    return out

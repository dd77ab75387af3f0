# SPDX-License-Identifier: BSD-3-Clause
"""A catalogue file for ingestion, FITS or Parquet, chosen by its name's suffix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from casuvo.storage.ingest import fitstable, parquettable

__all__ = ["column_names", "read_rows"]


def _reader(path: Path):  # -> module
    return parquettable if Path(path).suffix.lower() == ".parquet" else fitstable


def column_names(path: Path) -> list[str]:
    """The file's column names (its header or footer only)."""
    return _reader(path).column_names(path)


def read_rows(path: Path, names: Sequence[str],
              order_by: str | None = None) -> dict[str, np.ndarray]:
    """The named columns of the file, ready for binary COPY (see the readers)."""
    return _reader(path).read_rows(path, names, order_by)

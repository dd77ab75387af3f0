# SPDX-License-Identifier: BSD-3-Clause
"""Small FITS helpers shared by the survey formats (astropy 5 and 7 alike)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

__all__ = ["header_dict", "table_hdu", "write_atomic"]


def _format(values: np.ndarray) -> tuple[str, np.ndarray]:
    arr = np.asarray(values)
    if arr.dtype.kind in "US":
        arr = arr.astype(str)
        width = max(1, max((len(v) for v in arr.ravel()), default=1))
        return f"{width}A", arr
    if arr.dtype.kind == "b":
        return "L", arr
    if arr.dtype.kind in "iu":
        if arr.dtype.itemsize == 2 and arr.dtype.kind == "i":
            return "I", arr
        return ("K" if arr.dtype.itemsize > 4 or arr.dtype.kind == "u" else "J"), arr
    if arr.ndim == 2:
        return f"{arr.shape[1]}E", arr.astype(np.float32)
    return ("D" if arr.dtype.itemsize > 4 else "E"), arr


def table_hdu(columns: Mapping[str, Any], name: str,
              units: Mapping[str, str] | None = None,
              header: Mapping[str, Any] | None = None,
              nulls: Mapping[str, int] | None = None) -> fits.BinTableHDU:
    """A binary table extension from named columns (numpy arrays of one length);
    ``nulls`` gives integer columns their TNULL."""
    cols = []
    for key, values in columns.items():
        fmt, arr = _format(np.asarray(values))
        cols.append(fits.Column(name=key, format=fmt, array=arr,
                                unit=(units or {}).get(key), null=(nulls or {}).get(key)))
    hdu = fits.BinTableHDU.from_columns(cols, name=name)
    for key, value in (header or {}).items():
        hdu.header[key] = value
    return hdu


def header_dict(*headers: fits.Header) -> dict[str, Any]:
    """Keywords of the headers as one dict (later headers win; no structural keywords)."""
    skip = {"SIMPLE", "BITPIX", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT", "TFIELDS", "COMMENT",
            "HISTORY", ""}
    out: dict[str, Any] = {}
    for h in headers:
        for key, value in h.items():
            if key in skip or key.startswith(("NAXIS", "TTYPE", "TFORM", "TUNIT", "TNULL")):
                continue
            out[key] = value
    return out


def write_atomic(hdul: fits.HDUList, path: Path) -> Path:
    """Write ``hdul`` to ``path`` through a temporary name, with checksums: readers never
    see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    hdul.writeto(tmp, overwrite=True, checksum=True)
    os.replace(tmp, path)
    return path
